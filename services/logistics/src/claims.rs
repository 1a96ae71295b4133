//! Carrier claims for cargo lost or damaged in transit (DESIGN §2 row 9):
//! the carrier's `CarrierCargoException` (`gendan.ext.carrier.cargo_exception`)
//! becomes a claim against the carrier and a `CargoClaimOpened` event.
//!
//! The report is checked before anything is stored, and a report that can
//! never be right is rejected (dead-lettered) with the field named:
//! - `kind` is `lost` or `damaged`;
//! - `booking_reference` is one of the order's bookings, and not a cancelled
//!   one (no cargo travelled under it): the current one, or an earlier
//!   shipment a redelivery followed;
//! - `quantity` is at most what travelled under that booking (the packing
//!   list its goods were packed to: a redelivery's is only the claimed
//!   goods); 0 means the whole shipment and is claimed as that quantity.
//!
//! What happened to the goods is the booking's own record
//! ([`bookings::Outcome`]). A report before the warehouse reported them
//! shipped is retried, as a delivery is: the two come from different
//! systems and the shipped report may simply be late. The same kind on the same booking again (the
//! carrier repeating itself, or adding detail) records nothing and emits
//! nothing: the claim is already open.

use std::fmt;

use gendan_grpc::FieldError;
use gendan_messaging::{HandlerError, Incoming};
use gendan_proto::v1::{CargoClaimOpened, CarrierCargoException};
use sqlx::PgConnection;

use crate::Error;
use crate::clock::Clock;
use crate::commands::answer;
use crate::store;
use crate::store::bookings::{self, BOOKING_CANCELLED};
use crate::store::claims::{self, Claim};
use crate::wms::when;

/// What happened to the cargo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lost,
    Damaged,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Lost => "lost",
            Kind::Damaged => "damaged",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The report's kind, or why it is not one.
pub fn parse_kind(text: &str) -> Result<Kind, FieldError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "lost" => Ok(Kind::Lost),
        "damaged" => Ok(Kind::Damaged),
        _ => Err(FieldError::new(
            "kind",
            format!("{text:?} is not a cargo exception kind (lost or damaged)"),
        )),
    }
}

/// The quantity to claim for a report of `reported` units (0 = the whole
/// shipment) out of `shipped`.
pub fn claimed_quantity(reported: u32, shipped: u32) -> Result<u32, FieldError> {
    if shipped == 0 {
        return Err(FieldError::new(
            "quantity",
            "the order has no packed quantity to claim against",
        ));
    }
    if reported > shipped {
        return Err(FieldError::new(
            "quantity",
            format!("{reported} units is more than the {shipped} shipped"),
        ));
    }
    Ok(if reported == 0 { shipped } else { reported })
}

fn invalid(field: FieldError) -> HandlerError {
    Error::from(field).into()
}

/// Opens a claim for `event`, or records nothing when the same claim is
/// open already.
#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
pub(crate) async fn cargo_exception(
    conn: &mut PgConnection,
    message: &Incoming,
    event: CarrierCargoException,
    clock: &dyn Clock,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&event.order_id)?;
    let kind = parse_kind(&event.kind).map_err(invalid)?;
    let reference = event.booking_reference.trim();
    if reference.is_empty() {
        return Err(invalid(FieldError::new(
            "booking_reference",
            "required: the booking the cargo travelled under",
        )));
    }
    store::lock_order(conn, &order_id).await?;
    let Some(booking) = bookings::by_reference(conn, &order_id, reference).await? else {
        return Err(invalid(FieldError::new(
            "booking_reference",
            format!("order {order_id} has no booking {reference}"),
        )));
    };
    if booking.status == BOOKING_CANCELLED {
        return Err(invalid(FieldError::new(
            "booking_reference",
            format!(
                "booking {reference} of order {order_id} was cancelled ({}); no cargo travelled under it",
                booking
                    .cancel_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            ),
        )));
    }
    // The booking's own record: after a redelivery the order's shipment is
    // another booking's, and this one's goods may have arrived long ago.
    let outcome = bookings::outcome(conn, &order_id, booking.revision).await?;
    if outcome.shipped_on.is_none() {
        return Err(HandlerError::Retry(format!(
            "cargo of order {order_id} reported {kind} before the warehouse reported it shipped"
        )));
    }
    if kind == Kind::Lost && outcome.delivered_on.is_some() {
        return Err(invalid(FieldError::new(
            "kind",
            format!(
                "order {order_id} was delivered under booking {reference} (proof of delivery \
                 on file): its cargo was not lost"
            ),
        )));
    }
    let shipped = claims::shipped_quantity(conn, &order_id, booking.revision).await?;
    let quantity = claimed_quantity(event.quantity, shipped).map_err(invalid)?;
    // A repeat of a claim (same booking and kind) is answered below; a new
    // one must fit in what was shipped beside the claims already open.
    let earlier: Vec<Claim> = claims::of_order(conn, &order_id)
        .await?
        .into_iter()
        .filter(|c| c.booking_reference == booking.booking_reference && c.kind != kind.name())
        .collect();
    let already: u32 = earlier
        .iter()
        .map(|c| u32::try_from(c.quantity).unwrap_or(0))
        .sum();
    if already.saturating_add(quantity) > shipped {
        return Err(invalid(FieldError::new(
            "quantity",
            format!(
                "{quantity} units claimed beside {already} already claimed is more than the {shipped} shipped"
            ),
        )));
    }

    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let opened_at = clock.now();
    let claim = Claim {
        claim_id: format!(
            "CLM-{}-{}",
            opened_at.format("%Y%m%d"),
            suffix[suffix.len() - 12..].to_ascii_uppercase()
        ),
        order_id: order_id.clone(),
        booking_reference: booking.booking_reference.clone(),
        kind: kind.name().to_owned(),
        description: event.description.trim().to_owned(),
        quantity: i32::try_from(quantity).unwrap_or(i32::MAX),
        reported_at: when(event.at.as_ref(), message),
        opened_at,
    };
    if !claims::open(conn, &claim).await? {
        tracing::info!(%kind, booking_reference = %reference, "claim already open, nothing new");
        return Ok(());
    }
    tracing::warn!(
        claim_id = %claim.claim_id,
        %kind,
        quantity,
        booking_reference = %reference,
        "cargo claim opened"
    );
    let opened = CargoClaimOpened {
        order_id: order_id.clone(),
        claim_id: claim.claim_id,
        booking_reference: claim.booking_reference,
        kind: claim.kind,
        description: claim.description,
        quantity,
    };
    answer(conn, message, &order_id, &opened).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_lost_or_damaged() {
        assert_eq!(parse_kind("lost"), Ok(Kind::Lost));
        assert_eq!(parse_kind(" Damaged "), Ok(Kind::Damaged));
        for wrong in ["stolen", "", "delayed"] {
            let err = parse_kind(wrong).unwrap_err();
            assert_eq!(err.field, "kind", "{wrong}");
        }
    }

    #[test]
    fn a_claim_is_at_most_what_shipped() {
        assert_eq!(claimed_quantity(12, 240), Ok(12));
        assert_eq!(claimed_quantity(240, 240), Ok(240));
        assert_eq!(claimed_quantity(0, 240), Ok(240), "0 is the whole shipment");
        assert_eq!(claimed_quantity(241, 240).unwrap_err().field, "quantity");
        assert_eq!(claimed_quantity(0, 0).unwrap_err().field, "quantity");
    }
}
