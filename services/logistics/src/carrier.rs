//! Carrier events (`gendan.ext.carrier.*`).
//!
//! | subject | message | effect | emitted |
//! | --- | --- | --- | --- |
//! | `.tracking` | `CarrierTracking` | the update joins the tracking history of the booking it is about | `TrackingUpdated` (the current shipment only) |
//! | `.delivered` | `CarrierDelivered` | the order's current shipment (a redelivery's, once booked) becomes `delivered` with its proof of delivery, recorded on its booking too | `Delivered` with the booking revision, the fact of that revision ([`revision::delivered_key`]) |
//! | `.cargo_exception` | `CarrierCargoException` | a claim against the carrier for lost or damaged cargo ([`crate::claims`]); the same kind on the same booking again adds nothing | `CargoClaimOpened` (first report only) |
//!
//! Events must name the order's current shipment (and, when they carry
//! one, its booking reference), or quote the booking of an earlier
//! shipment whose goods left before a redelivery was booked; anything else
//! (another order's booking, a re-booked or cancelled one) is rejected
//! with the reason. An earlier shipment's tracking and delivery are
//! recorded against its own booking and announced to nobody: the order's
//! shipment is the redelivery, which they never complete.
//!
//! Delivery before the warehouse reported the goods shipped is retried:
//! the two come from different systems and the shipped report may simply
//! be late. A repeated delivery report answers the same `Delivered` again
//! (same event id) and changes nothing. Cargo exceptions name their booking
//! themselves and are checked by [`crate::claims`].

use std::sync::Arc;

use chrono::NaiveDate;
use gendan_messaging::{Handler, HandlerError, Incoming};
use gendan_proto::v1::{
    CarrierCargoException, CarrierDelivered, CarrierTracking, Delivered, TrackingUpdated,
};
use gendan_proto::{date_from_str, date_to_string, timestamp_from};
use sqlx::PgConnection;

use crate::claims;
use crate::clock::Clock;
use crate::commands::{answer, answer_fact};
use crate::revision;
use crate::store::bookings::{self, BOOKING_OPEN, Outcome};
use crate::store::{self, Shipment, Tracking};
use crate::wms::when;

/// Handles `gendan.ext.carrier.*`.
#[derive(Debug, Clone)]
pub struct CarrierHandler {
    /// When a claim is opened.
    clock: Arc<dyn Clock>,
}

impl CarrierHandler {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        CarrierHandler { clock }
    }
}

impl Handler for CarrierHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<CarrierTracking>() {
            return tracking(conn, message, message.payload()?).await;
        }
        if message.is::<CarrierDelivered>() {
            return delivered(conn, message, message.payload()?).await;
        }
        if message.is::<CarrierCargoException>() {
            let event = message.payload()?;
            return claims::cargo_exception(conn, message, event, self.clock.as_ref()).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown carrier event type {:?}",
            message.type_name()
        )))
    }
}

/// The shipment a carrier event is about.
enum Addressed {
    /// The order's current shipment (boxed: the larger variant by far).
    Current(Box<Shipment>),
    /// The goods of an earlier booking, which left before a redelivery
    /// became the order's shipment.
    Earlier {
        revision: i32,
        booking_reference: String,
        outcome: Outcome,
    },
}

/// The shipment a carrier event is about: the order's current one, checked
/// against the booking reference the carrier quotes (when it quotes one),
/// or an earlier shipment whose booking it quotes.
async fn addressed(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    booking_reference: &str,
) -> Result<Addressed, HandlerError> {
    store::lock_order(conn, order_id).await?;
    let shipment = store::shipment(conn, order_id).await?.ok_or_else(|| {
        HandlerError::Rejected(format!(
            "{} for order {order_id}, which has no shipment",
            message.type_name()
        ))
    })?;
    let reference = booking_reference.trim();
    if !reference.is_empty() && reference != shipment.booking_reference {
        if let Some(earlier) = earlier_shipment(conn, order_id, reference, &shipment).await? {
            return Ok(earlier);
        }
        return Err(HandlerError::Rejected(format!(
            "{} for order {order_id} quotes booking {reference}, but its booking is {}",
            message.type_name(),
            shipment.booking_reference
        )));
    }
    if shipment.status == store::SHIPMENT_CANCELLED {
        return Err(HandlerError::Rejected(format!(
            "{} for order {order_id}, whose shipment is cancelled",
            message.type_name()
        )));
    }
    Ok(Addressed::Current(Box::new(shipment)))
}

/// The earlier booking `reference` of the order when goods travelled under
/// it (open, not the current one, shipped); `None` otherwise: a re-booked
/// or cancelled booking carried nothing.
async fn earlier_shipment(
    conn: &mut PgConnection,
    order_id: &str,
    reference: &str,
    current: &Shipment,
) -> Result<Option<Addressed>, HandlerError> {
    let Some(booking) = bookings::by_reference(conn, order_id, reference).await? else {
        return Ok(None);
    };
    if booking.status != BOOKING_OPEN || booking.revision == current.revision {
        return Ok(None);
    }
    let outcome = bookings::outcome(conn, order_id, booking.revision).await?;
    if outcome.shipped_on.is_none() {
        return Ok(None);
    }
    Ok(Some(Addressed::Earlier {
        revision: booking.revision,
        booking_reference: booking.booking_reference,
        outcome,
    }))
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn tracking(
    conn: &mut PgConnection,
    message: &Incoming,
    event: CarrierTracking,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&event.order_id)?;
    let status = event.status.trim();
    if status.is_empty() {
        return Err(HandlerError::Rejected(format!(
            "tracking update for order {order_id} without a status"
        )));
    }
    // A malformed ETA is the carrier's mistake: refused, naming it.
    let eta = match event.eta.trim() {
        "" => None,
        text => Some(date_from_str(text).ok_or_else(|| {
            HandlerError::Rejected(format!(
                "tracking update for order {order_id}: eta {text:?} is not a YYYY-MM-DD date"
            ))
        })?),
    };
    let update = Tracking {
        status: status.to_owned(),
        location: event.location.trim().to_owned(),
        at: when(event.at.as_ref(), message),
    };
    let shipment = match addressed(conn, message, &order_id, &event.booking_reference).await? {
        Addressed::Current(shipment) => *shipment,
        Addressed::Earlier {
            revision,
            booking_reference,
            ..
        } => {
            // History of goods already replaced: kept, not news.
            store::add_tracking(conn, &order_id, revision, &update).await?;
            tracing::info!(
                %booking_reference,
                status = %update.status,
                "tracking of an earlier shipment recorded"
            );
            return Ok(());
        }
    };
    store::add_tracking(conn, &order_id, shipment.revision, &update).await?;
    tracing::info!(status = %update.status, location = %update.location, "tracking updated");
    let updated = TrackingUpdated {
        order_id: order_id.clone(),
        status: update.status,
        location: update.location,
        at: Some(timestamp_from(update.at)),
        eta: eta.map(date_to_string).unwrap_or_default(),
    };
    answer(conn, message, &order_id, &updated).await
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn delivered(
    conn: &mut PgConnection,
    message: &Incoming,
    event: CarrierDelivered,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&event.order_id)?;
    let proof = event.proof_of_delivery.trim();
    if proof.is_empty() {
        return Err(HandlerError::Rejected(format!(
            "delivery of order {order_id} reported without a proof of delivery"
        )));
    }
    let delivered_on = when(event.at.as_ref(), message).date_naive();
    let shipment = match addressed(conn, message, &order_id, &event.booking_reference).await? {
        Addressed::Current(shipment) => *shipment,
        Addressed::Earlier {
            revision,
            booking_reference,
            outcome,
        } => {
            return earlier_delivered(
                conn,
                &order_id,
                revision,
                &booking_reference,
                &outcome,
                proof,
                delivered_on,
            )
            .await;
        }
    };
    let revision = shipment.announced();
    let answer_event = match shipment.status.as_str() {
        store::SHIPMENT_BOOKED => {
            return Err(HandlerError::Retry(format!(
                "order {order_id} delivered before the warehouse reported it shipped"
            )));
        }
        store::SHIPMENT_SHIPPED => {
            store::mark_delivered(conn, &order_id, proof, delivered_on).await?;
            tracing::info!(%delivered_on, revision, "delivered");
            Delivered {
                order_id: order_id.clone(),
                delivered_on: date_to_string(delivered_on),
                proof_of_delivery: proof.to_owned(),
                revision,
            }
        }
        _ => {
            tracing::info!("already delivered, answering again");
            Delivered {
                order_id: order_id.clone(),
                delivered_on: shipment
                    .delivered_on
                    .map(date_to_string)
                    .unwrap_or_default(),
                proof_of_delivery: shipment.proof_of_delivery.unwrap_or_default(),
                revision,
            }
        }
    };
    let key = revision::delivered_key(revision);
    answer_fact(conn, message, &order_id, &answer_event, &key).await
}

/// The delivery of an earlier shipment's goods, reported after a
/// redelivery became the order's shipment: recorded on its booking if it
/// was not yet, and announced to nobody (the saga waits for the
/// redelivery's `Delivered`, which this must never stand in for).
async fn earlier_delivered(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
    booking_reference: &str,
    outcome: &Outcome,
    proof: &str,
    delivered_on: NaiveDate,
) -> Result<(), HandlerError> {
    if outcome.delivered_on.is_some() {
        tracing::info!(
            %booking_reference,
            "an earlier shipment reported delivered again, nothing new"
        );
        return Ok(());
    }
    bookings::record_delivered(conn, order_id, revision, proof, delivered_on).await?;
    tracing::info!(
        %booking_reference,
        %delivered_on,
        "delivery of an earlier shipment recorded on its booking"
    );
    Ok(())
}
