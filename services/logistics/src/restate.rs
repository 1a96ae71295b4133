//! `RestateFact` (`gendan.cmd.logistics.restate_fact`): the saga asks again
//! for the fact a waiting step awaits, the step's deadline having passed
//! (its first announcement may have been lost, ADR 0010). Logistics
//! announces the fact again when it holds it, and otherwise says where
//! things stand. Nothing is stored: the answer is the only write, so a
//! re-sent `RestateFact` answers from the record the same way.
//!
//! | `awaited` | held when | answer when held | otherwise `StatusReported`, e.g. |
//! | --- | --- | --- | --- |
//! | `gendan.v1.Shipped` | the goods of the booking answering `revision` left | `Shipped` with the stored date, bill of lading and the revision, under [`revision::shipped_key`] | "booked with SEA-FRI carrier on SEA-FRI, booking SEA-FRI-20260313-0A1B2C3D (revision 2), ETD 2026-03-13; the warehouse has not reported it shipped"; "no shipment booked"; a cancelled booking with its reason |
//! | `gendan.v1.Delivered` | the goods of the booking answering `revision` were delivered | `Delivered` with the stored date, proof of delivery and the revision, under [`revision::delivered_key`] | "shipped on 2026-03-11 under bill of lading RD-889120 (booking …); the carrier has not reported it delivered; last tracking: in transit at Hamburg on 2026-03-12", or as for `Shipped` |
//! | `gendan.v1.PackingChecked` | the packing list of `revision` was checked | its latest check (a mismatch stays a mismatch) with the list revision, under [`revision::packing_check_key`] of that check's number | "packing list revision 2 (7 cartons) ready; the warehouse has not reported it packed"; "no packing list prepared" |
//!
//! `revision` 0 is the latest: the order's current shipment, answering the
//! revision it was last announced with ([`Shipment::announced`]), or its
//! current packing list. `Shipped` and `Delivered` are restated only for
//! that revision: what was announced. Any other revision (an earlier
//! booking, whose late news is announced to nobody; a revision a re-booking
//! answered without announcing it) gets a status naming the current
//! booking, never a fact nobody was told before.
//!
//! A restated fact is built from the same stored fields, under the same
//! key function, as any announcement of it, so its event id is the same:
//! when the first announcement did arrive, JetStream or the consumers'
//! inboxes drop the repeat. A status is a new observation and gets a new
//! event id each time.
//!
//! An empty order id, an `awaited` type logistics does not announce or a
//! revision too large to be one cannot be answered by retrying: rejected
//! to the dead-letter subject with the field named.

use gendan_grpc::FieldError;
use gendan_messaging::{HandlerError, Incoming};
use gendan_proto::v1::{Delivered, PackingChecked, RestateFact, Shipped, StatusReported};
use gendan_proto::{TypeName, date_to_string};
use prost::Message;
use sqlx::PgConnection;

use crate::commands::{answer, answer_fact, invalid};
use crate::revision;
use crate::store::bookings::{BOOKING_CANCELLED, Booking, Outcome};
use crate::store::packing_lists::{self, PackingList};
use crate::store::{self, Shipment, Tracking};

/// The facts logistics announces that a saga step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaited {
    Shipped,
    Delivered,
    PackingChecked,
}

impl Awaited {
    fn parse(awaited: &str) -> Result<Self, FieldError> {
        match awaited.trim() {
            Shipped::TYPE_NAME => Ok(Awaited::Shipped),
            Delivered::TYPE_NAME => Ok(Awaited::Delivered),
            PackingChecked::TYPE_NAME => Ok(Awaited::PackingChecked),
            other => Err(FieldError::new(
                "awaited",
                format!(
                    "{other:?} is not a fact logistics announces (it restates {}, {} and {})",
                    Shipped::TYPE_NAME,
                    Delivered::TYPE_NAME,
                    PackingChecked::TYPE_NAME
                ),
            )),
        }
    }
}

/// What logistics found for the awaited fact.
enum Found<F> {
    /// The fact, and the key it was (or is) announced under.
    Fact { event: F, key: String },
    /// Not held yet: where things stand, in plain words.
    Status(String),
}

/// Answers `command` under the order's lock, in the consumer's
/// transaction: the awaited fact again when logistics holds it, else
/// `StatusReported` for the step.
#[tracing::instrument(
    skip_all,
    fields(
        order_id = %message.order_id(),
        awaited = %command.awaited,
        revision = command.revision
    )
)]
pub async fn restate_fact(
    conn: &mut PgConnection,
    message: &Incoming,
    command: RestateFact,
) -> Result<(), HandlerError> {
    // order_id_or fails only when neither the payload nor the envelope
    // names the order.
    let order_id = message
        .order_id_or(&command.order_id)
        .map_err(|_| invalid(FieldError::new("order_id", "missing")))?;
    let awaited = Awaited::parse(&command.awaited).map_err(invalid)?;
    // Checked only: 0 is the latest here, not the first revision.
    revision::of_command(command.revision, "revision").map_err(invalid)?;
    let asked = command.revision;
    store::lock_order(conn, &order_id).await?;
    match awaited {
        Awaited::Shipped => {
            let found = shipped(conn, &order_id, asked).await?;
            reply(conn, message, &order_id, &command.step, found).await
        }
        Awaited::Delivered => {
            let found = delivered(conn, &order_id, asked).await?;
            reply(conn, message, &order_id, &command.step, found).await
        }
        Awaited::PackingChecked => {
            let found = packing_checked(conn, &order_id, asked).await?;
            reply(conn, message, &order_id, &command.step, found).await
        }
    }
}

/// The fact again under its key, or `StatusReported` for `step`.
async fn reply<F: Message + TypeName>(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    step: &str,
    found: Found<F>,
) -> Result<(), HandlerError> {
    match found {
        Found::Fact { event, key } => {
            tracing::info!(%key, "the awaited fact is held, announcing it again");
            answer_fact(conn, message, order_id, &event, &key).await
        }
        Found::Status(status) => {
            tracing::info!(%status, "the awaited fact is not held yet, reporting the status");
            let reported = StatusReported {
                order_id: order_id.to_owned(),
                step: step.to_owned(),
                awaited: F::TYPE_NAME.to_owned(),
                status,
            };
            answer(conn, message, order_id, &reported).await
        }
    }
}

/// A booking answering the revision asked, and what happened to its goods.
struct Answering {
    /// The revision a `Shipped` or `Delivered` of it carries.
    revision: u32,
    booking: Booking,
    outcome: Outcome,
}

/// What answers a `Shipped` or `Delivered` of the revision asked.
enum Answerer {
    Booking(Box<Answering>),
    /// No booking does: where things stand instead.
    Nobody(String),
}

async fn answerer(
    conn: &mut PgConnection,
    order_id: &str,
    asked: u32,
) -> Result<Answerer, HandlerError> {
    let Some(shipment) = store::shipment(conn, order_id).await? else {
        return Ok(Answerer::Nobody("no shipment booked".to_owned()));
    };
    let announced = shipment.announced();
    // Only what was announced is restated: the current booking's goods,
    // under the revision they were last announced with. Any other revision
    // (an earlier booking, whose late news is announced to nobody; a
    // revision a re-booking answered without announcing it) gets where
    // things stand, never a fact nobody was told before.
    let current = Booking::of(&shipment);
    if asked == 0 || asked == announced {
        return Ok(Answerer::Booking(Box::new(Answering {
            revision: announced,
            booking: current,
            outcome: outcome_of(&shipment),
        })));
    }
    let described = describe_booking(&current, &outcome_of(&shipment), None);
    Ok(Answerer::Nobody(if asked < announced {
        format!("revision {asked} is superseded; the current booking: {described}")
    } else {
        format!("no booking of revision {asked}; the current one: {described}")
    }))
}

/// What happened to the current shipment's goods, read from its row: the
/// row `Shipped` and `Delivered` were first announced from.
fn outcome_of(shipment: &Shipment) -> Outcome {
    Outcome {
        bill_of_lading: shipment.bill_of_lading.clone(),
        shipped_on: shipment.shipped_on,
        shipped_list_revision: None,
        delivered_on: shipment.delivered_on,
        proof_of_delivery: shipment.proof_of_delivery.clone(),
    }
}

async fn shipped(
    conn: &mut PgConnection,
    order_id: &str,
    asked: u32,
) -> Result<Found<Shipped>, HandlerError> {
    let answering = match answerer(conn, order_id, asked).await? {
        Answerer::Booking(answering) => answering,
        Answerer::Nobody(status) => return Ok(Found::Status(status)),
    };
    let outcome = &answering.outcome;
    let (Some(shipped_on), Some(bill_of_lading)) = (outcome.shipped_on, &outcome.bill_of_lading)
    else {
        return Ok(Found::Status(standing(conn, order_id, &answering).await?));
    };
    // As wms::shipped and a re-booking after the goods left announce it.
    let event = Shipped {
        order_id: order_id.to_owned(),
        shipped_on: date_to_string(shipped_on),
        bill_of_lading: bill_of_lading.clone(),
        revision: answering.revision,
    };
    let key = revision::shipped_key(answering.revision, bill_of_lading);
    Ok(Found::Fact { event, key })
}

async fn delivered(
    conn: &mut PgConnection,
    order_id: &str,
    asked: u32,
) -> Result<Found<Delivered>, HandlerError> {
    let answering = match answerer(conn, order_id, asked).await? {
        Answerer::Booking(answering) => answering,
        Answerer::Nobody(status) => return Ok(Found::Status(status)),
    };
    let Some(delivered_on) = answering.outcome.delivered_on else {
        return Ok(Found::Status(standing(conn, order_id, &answering).await?));
    };
    // As carrier::delivered announces it.
    let event = Delivered {
        order_id: order_id.to_owned(),
        delivered_on: date_to_string(delivered_on),
        proof_of_delivery: answering
            .outcome
            .proof_of_delivery
            .clone()
            .unwrap_or_default(),
        revision: answering.revision,
    };
    let key = revision::delivered_key(answering.revision);
    Ok(Found::Fact { event, key })
}

/// Where a booking's goods stand, with the latest tracking once they are
/// on their way: what a merchandiser chasing them asks first.
async fn standing(
    conn: &mut PgConnection,
    order_id: &str,
    answering: &Answering,
) -> Result<String, HandlerError> {
    let outcome = &answering.outcome;
    let last = if outcome.shipped_on.is_some() && outcome.delivered_on.is_none() {
        store::tracking(conn, order_id, answering.booking.revision)
            .await?
            .pop()
    } else {
        None
    };
    Ok(describe_booking(&answering.booking, outcome, last.as_ref()))
}

/// A booking and what became of its goods, in plain words.
fn describe_booking(booking: &Booking, outcome: &Outcome, last: Option<&Tracking>) -> String {
    let reference = &booking.booking_reference;
    if booking.status == BOOKING_CANCELLED {
        return format!(
            "booking {reference} (revision {}) was cancelled: {}",
            booking.revision,
            booking
                .cancel_reason
                .as_deref()
                .unwrap_or("no reason given")
        );
    }
    match (outcome.shipped_on, outcome.delivered_on) {
        (None, _) => format!(
            "booked with {} on {}, booking {reference} (revision {}), ETD {}; the warehouse has \
             not reported it shipped",
            booking.carrier,
            booking.lane_code,
            booking.revision,
            date_to_string(booking.etd)
        ),
        (Some(shipped_on), None) => format!(
            "shipped on {} under bill of lading {} (booking {reference}); the carrier has not \
             reported it delivered{}",
            date_to_string(shipped_on),
            outcome.bill_of_lading.as_deref().unwrap_or("-"),
            last.map(tracking_note).unwrap_or_default()
        ),
        (Some(_), Some(delivered_on)) => format!(
            "delivered on {} (booking {reference})",
            date_to_string(delivered_on)
        ),
    }
}

fn tracking_note(last: &Tracking) -> String {
    let place = if last.location.is_empty() {
        String::new()
    } else {
        format!(" at {}", last.location)
    };
    format!(
        "; last tracking: {}{place} on {}",
        last.status,
        date_to_string(last.at.date_naive())
    )
}

async fn packing_checked(
    conn: &mut PgConnection,
    order_id: &str,
    asked: u32,
) -> Result<Found<PackingChecked>, HandlerError> {
    let list = if asked == 0 {
        packing_lists::current(conn, order_id).await?
    } else {
        packing_lists::by_revision(conn, order_id, asked).await?
    };
    let Some(list) = list else {
        return Ok(Found::Status(no_list(conn, order_id, asked).await?));
    };
    let checks = packing_lists::checks(conn, order_id, list.revision).await?;
    let Some(latest) = checks.last() else {
        return Ok(Found::Status(describe_unpacked(&list)));
    };
    // Checks are numbered 1, 2, … per list revision in the order they were
    // recorded (packing_lists::record_check): the latest is the count.
    let number = u32::try_from(checks.len()).unwrap_or(u32::MAX);
    // As wms::answer_checked announces it.
    let event = PackingChecked {
        order_id: order_id.to_owned(),
        matches: latest.matches,
        mismatches: latest.mismatches.clone(),
        revision: list.revision,
    };
    let key = revision::packing_check_key(list.revision, number);
    Ok(Found::Fact { event, key })
}

/// No packing list of the revision asked: the current one, if any.
async fn no_list(
    conn: &mut PgConnection,
    order_id: &str,
    asked: u32,
) -> Result<String, HandlerError> {
    Ok(match packing_lists::current(conn, order_id).await? {
        Some(current) => format!(
            "no packing list of revision {asked}; the current one is revision {} ({})",
            current.revision, current.status
        ),
        None => "no packing list prepared".to_owned(),
    })
}

/// A packing list the warehouse has not reported packed.
fn describe_unpacked(list: &PackingList) -> String {
    let cartons = match list.cartons.len() {
        1 => "1 carton".to_owned(),
        n => format!("{n} cartons"),
    };
    if list.status == packing_lists::LIST_SUPERSEDED {
        return format!(
            "packing list revision {} ({cartons}) was superseded by an amended order's list; \
             the warehouse never reported it packed",
            list.revision
        );
    }
    format!(
        "packing list revision {} ({cartons}) ready; the warehouse has not reported it packed",
        list.revision
    )
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn booking() -> Booking {
        Booking {
            order_id: "o-1".into(),
            revision: 2,
            booking_reference: "SEA-FRI-20260313-0A1B2C3D".into(),
            lane_code: "SEA-FRI".into(),
            carrier: "Blue Line".into(),
            mode: "sea".into(),
            ready_date: date("2026-03-02"),
            etd: date("2026-03-13"),
            eta: date("2026-03-31"),
            freight_cost_minor: 400,
            currency: "USD".into(),
            meets_requested_date: true,
            status: crate::store::bookings::BOOKING_OPEN.into(),
            cancel_reason: None,
        }
    }

    #[test]
    fn a_status_says_where_the_goods_are() {
        let booked = describe_booking(&booking(), &Outcome::default(), None);
        assert_eq!(
            booked,
            "booked with Blue Line on SEA-FRI, booking SEA-FRI-20260313-0A1B2C3D (revision 2), \
             ETD 2026-03-13; the warehouse has not reported it shipped"
        );
        let shipped = Outcome {
            bill_of_lading: Some("BL-7".into()),
            shipped_on: Some(date("2026-03-13")),
            ..Outcome::default()
        };
        let last = Tracking {
            status: "in transit".into(),
            location: "Hamburg".into(),
            at: date("2026-03-20").and_hms_opt(8, 0, 0).unwrap().and_utc(),
        };
        assert_eq!(
            describe_booking(&booking(), &shipped, Some(&last)),
            "shipped on 2026-03-13 under bill of lading BL-7 (booking \
             SEA-FRI-20260313-0A1B2C3D); the carrier has not reported it delivered; last \
             tracking: in transit at Hamburg on 2026-03-20"
        );
        let cancelled = Booking {
            status: BOOKING_CANCELLED.into(),
            cancel_reason: Some("order cancelled".into()),
            ..booking()
        };
        assert_eq!(
            describe_booking(&cancelled, &Outcome::default(), None),
            "booking SEA-FRI-20260313-0A1B2C3D (revision 2) was cancelled: order cancelled"
        );
    }

    #[test]
    fn only_the_facts_logistics_announces_are_restated() {
        assert_eq!(
            Awaited::parse(" gendan.v1.Shipped ").ok(),
            Some(Awaited::Shipped)
        );
        let other = Awaited::parse("gendan.v1.Invoiced").unwrap_err();
        assert_eq!(other.field, "awaited");
    }
}
