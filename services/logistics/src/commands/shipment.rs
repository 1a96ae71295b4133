//! `BookShipment` and `CancelShipment`: booking by revision, re-booking
//! after a missed ETD, redelivery of claimed goods, and the saga's
//! compensation.
//!
//! A BookShipment names its revision (0 or 1 = the first booking) and says
//! whether it is a redelivery (`redelivery`: a replacement or reworked
//! goods for a customer's claim, its order carrying only the claimed
//! lines). Against the order's current shipment
//! ([`revision::booking_action`]):
//!
//! | command revision | shipment | answer |
//! | --- | --- | --- |
//! | any | none | books from the ready date (a revision above 1: from today if later): `ShipmentBooked` |
//! | a later one than any answered, `redelivery` set | any: booked, shipped, delivered, cancelled | books the goods of the current packing list (the redelivery's) from the ready date or today, whichever is later, as the order's current shipment: `ShipmentBooked` of the new revision with a new reference; a booking not yet shipped is cancelled, goods that left stay on record under their booking (its shipped and delivered reports keep applying to it, never to the redelivery) |
//! | any | cancelled by the saga | `ShipmentBookingFailed`: a cancelled shipment is not booked again |
//! | the current one | booked, shipped, delivered | `ShipmentBooked` from the stored booking (same reference, ETD, ETA) |
//! | an earlier one | any | `ShipmentBooked` from that revision's stored booking; nothing if it never existed (the saga has moved on) |
//! | a later one | booked | cancels the current booking (kept on record), books again from the ready date or today, whichever is later: `ShipmentBooked` of the new revision |
//! | a later one, no `redelivery` | shipped, delivered | the goods left after all: `ShipmentBooked` of the booking they left under, with the new revision, and `Shipped` again with that revision so the re-opened step completes; the booking answers that revision from then on (its `Delivered` carries it) |
//!
//! `ShipmentBooked` is the fact of one booking and revision
//! ([`revision::booked_key`]) and `Shipped` of one booking revision and
//! bill of lading ([`revision::shipped_key`]): a re-sent command answers
//! them under the same event ids. A re-booking that finds no lane answers
//! `ShipmentBookingFailed` and keeps the current booking: nothing changed,
//! a re-sent command tries again.

use std::collections::HashMap;

use chrono::NaiveDate;
use gendan_grpc::FieldError;
use gendan_messaging::{HandlerError, Incoming};
use gendan_proto::v1::{
    BookShipment, CancelShipment, Order, ShipmentBooked, ShipmentBookingFailed, ShipmentCancelled,
    Shipped,
};
use gendan_proto::{date_from_str, date_to_string};
use sqlx::PgConnection;

use super::{answer, answer_fact, invalid};
use crate::booking::{self, Load};
use crate::clock::Clock;
use crate::revision::{self, BookingAction, CurrentBooking, Shipping};
use crate::store::bookings::{self, Booking};
use crate::store::{self, Shipment, packing_lists};
use crate::{Error, catalog, validate};

/// The wire form of a stored booking, answering `revision`.
pub(crate) fn booked_event(booking: &Booking, revision: u32) -> ShipmentBooked {
    ShipmentBooked {
        order_id: booking.order_id.clone(),
        carrier: booking.carrier.clone(),
        mode: booking.mode.clone(),
        etd: date_to_string(booking.etd),
        eta: date_to_string(booking.eta),
        booking_reference: booking.booking_reference.clone(),
        freight_cost_minor: booking.freight_cost_minor,
        currency: booking.currency.clone(),
        lane_code: booking.lane_code.clone(),
        meets_requested_date: booking.meets_requested_date,
        revision,
    }
}

/// The ready date and the date the goods must arrive by of a command
/// about shipping `order` (`BookShipment`, `QuoteFreight`): `deliver_by`,
/// or when empty the order's requested delivery date. A date that is not
/// one is an invalid command, named by its field.
pub(super) fn shipping_dates(
    order: Option<&Order>,
    ready_date: &str,
    deliver_by: &str,
) -> Result<(NaiveDate, NaiveDate), HandlerError> {
    let ready = date_from_str(ready_date.trim()).ok_or_else(|| {
        invalid(FieldError::new(
            "ready_date",
            format!("{ready_date:?} is not a YYYY-MM-DD date"),
        ))
    })?;
    let (deliver_by_text, deliver_by_field) = if deliver_by.trim().is_empty() {
        (
            order
                .map(|o| o.requested_delivery_date.as_str())
                .unwrap_or_default(),
            "order.requested_delivery_date",
        )
    } else {
        (deliver_by, "deliver_by")
    };
    let deliver_by = date_from_str(deliver_by_text.trim()).ok_or_else(|| {
        invalid(FieldError::new(
            deliver_by_field,
            format!("{deliver_by_text:?} is not a YYYY-MM-DD date"),
        ))
    })?;
    Ok((ready, deliver_by))
}

/// The order's current shipment, as [`revision::booking_action`] sees it.
fn current_booking(shipment: &Shipment) -> CurrentBooking {
    let shipping = match shipment.status.as_str() {
        store::SHIPMENT_BOOKED => Shipping::Booked,
        store::SHIPMENT_CANCELLED => Shipping::Cancelled,
        _ => Shipping::Left,
    };
    CurrentBooking {
        shipping,
        revision: u32::try_from(shipment.revision).unwrap_or(1),
        announced: shipment.announced(),
    }
}

#[tracing::instrument(
    skip_all,
    fields(
        order_id = %message.order_id(),
        revision = command.revision,
        redelivery = command.redelivery
    )
)]
pub(super) async fn book_shipment(
    conn: &mut PgConnection,
    message: &Incoming,
    command: BookShipment,
    clock: &dyn Clock,
) -> Result<(), HandlerError> {
    let order = validate::order(command.order.as_ref(), "order").map_err(invalid)?;
    let order_id = message.order_id_or(&order.order_id)?;
    let (ready, deliver_by) = shipping_dates(
        command.order.as_ref(),
        &command.ready_date,
        &command.deliver_by,
    )?;
    let revision = command.revision.max(1);
    let stored_revision = i32::try_from(revision).map_err(|_| {
        invalid(FieldError::new(
            "revision",
            format!("{revision} is not a booking revision"),
        ))
    })?;
    store::lock_order(conn, &order_id).await?;

    let failed = |reason: String| ShipmentBookingFailed {
        order_id: order_id.clone(),
        reason,
    };
    let earlier = store::shipment(conn, &order_id).await?;
    if let Some(current) = &earlier {
        let action =
            revision::booking_action(revision, command.redelivery, Some(current_booking(current)));
        match action {
            BookingAction::Book => {}
            BookingAction::Refuse => {
                let reason = format!(
                    "the shipment of order {order_id} was cancelled ({}); it is not booked again",
                    current
                        .cancel_reason
                        .as_deref()
                        .unwrap_or("no reason given")
                );
                // Refused for the cancellation, once per order.
                return answer_fact(conn, message, &order_id, &failed(reason), "cancelled").await;
            }
            BookingAction::Repeat => {
                tracing::info!(
                    booking_reference = %current.booking_reference,
                    "already booked, answering again"
                );
                let booking = Booking::of(current);
                return answer_booked(conn, message, &order_id, &booking, revision).await;
            }
            BookingAction::AnswerEarlier => {
                return answer_earlier_revision(conn, message, &order_id, revision).await;
            }
            BookingAction::GoodsLeft => {
                return answer_goods_left(conn, message, current, revision).await;
            }
        }
    }

    // No booking can depart in the past: it counts from today when the
    // goods have been ready for a while (inspection, packing and documents
    // come between production's end and the booking).
    let from = ready.max(clock.today());
    let products: Vec<String> = order.lines.iter().map(|l| l.product.clone()).collect();
    let weights: HashMap<String, f64> = catalog::products(conn, &products)
        .await?
        .into_iter()
        .map(|(product, record)| (product, record.unit_net_weight_kg))
        .collect();
    // The current list: an amended order's earlier lists were superseded.
    let Some(list) = packing_lists::weighed_current(conn, &order_id, &weights).await? else {
        let reason =
            format!("order {order_id} has no packing list to book cartons and weight from");
        return answer(conn, message, &order_id, &failed(reason)).await;
    };
    let load = Load::of(&list.cartons);
    let lanes = catalog::lanes(conn).await?;
    let quote = match booking::choose(&lanes, load, from, deliver_by, &order.currency) {
        Ok(quote) => quote,
        Err(no_lane) => {
            tracing::warn!(reason = %no_lane, "no lane can be booked");
            return answer(conn, message, &order_id, &failed(no_lane.0)).await;
        }
    };
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let booking_reference = format!(
        "{}-{}-{}",
        quote.lane.code.to_ascii_uppercase(),
        quote.etd.format("%Y%m%d"),
        suffix[suffix.len() - 8..].to_ascii_uppercase()
    );
    let shipment = Shipment {
        order_id: order_id.clone(),
        status: store::SHIPMENT_BOOKED.to_owned(),
        lane_code: quote.lane.code.clone(),
        carrier: quote.lane.carrier.clone(),
        mode: quote.lane.mode.name().to_owned(),
        ready_date: from,
        etd: quote.etd,
        eta: quote.eta,
        booking_reference,
        freight_cost_minor: quote.cost_minor,
        currency: quote.lane.currency.clone(),
        meets_requested_date: quote.meets_deliver_by,
        bill_of_lading: None,
        shipped_on: None,
        delivered_on: None,
        proof_of_delivery: None,
        cancel_reason: None,
        revision: stored_revision,
        announced_revision: stored_revision,
    };
    match &earlier {
        None => store::insert_shipment(conn, &shipment).await?,
        Some(previous) if previous.status == store::SHIPMENT_BOOKED => {
            let reason = format!(
                "replaced by booking {} (revision {revision})",
                shipment.booking_reference
            );
            bookings::cancel(conn, &order_id, previous.revision, &reason).await?;
            store::rebook_shipment(conn, &shipment).await?;
            tracing::info!(
                cancelled = %previous.booking_reference,
                missed_etd = %previous.etd,
                "earlier booking cancelled for a re-booking"
            );
        }
        Some(previous) => {
            // A redelivery: the earlier goods left (or the saga called them
            // off); their booking stays on record as it is, with what
            // happened to them.
            store::rebook_shipment(conn, &shipment).await?;
            tracing::info!(
                earlier = %previous.booking_reference,
                earlier_status = %previous.status,
                "redelivery booked as the order's shipment"
            );
        }
    }
    let booking = Booking::of(&shipment);
    bookings::insert(conn, &booking).await?;
    tracing::info!(
        lane = %shipment.lane_code,
        etd = %shipment.etd,
        eta = %shipment.eta,
        freight_cost_minor = shipment.freight_cost_minor,
        on_time = shipment.meets_requested_date,
        "shipment booked"
    );
    answer_booked(conn, message, &order_id, &booking, revision).await
}

/// A re-sent command of a revision a later booking replaced: its own
/// booking again, which the saga files as history.
async fn answer_earlier_revision(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    revision: u32,
) -> Result<(), HandlerError> {
    let stored_revision = i32::try_from(revision).unwrap_or(i32::MAX);
    let Some(booking) = bookings::by_revision(conn, order_id, stored_revision).await? else {
        // Never booked (it failed, and a later revision was asked for
        // since): there is no fact to repeat, and nobody waits for it.
        tracing::info!("no booking of this superseded revision, nothing to answer");
        return Ok(());
    };
    tracing::info!(booking_reference = %booking.booking_reference, "superseded revision, answering its booking");
    answer_booked(conn, message, order_id, &booking, revision).await
}

/// A re-booking asked for goods that left meanwhile (the shipped report
/// crossed the missed-ETD report): the booking they left under answers the
/// new revision, and `Shipped` is said again, of that revision, for the
/// step waiting on it. The booking answers the revision from now on, so
/// its `Delivered` counts for the saga's re-opened steps too.
async fn answer_goods_left(
    conn: &mut PgConnection,
    message: &Incoming,
    current: &Shipment,
    revision: u32,
) -> Result<(), HandlerError> {
    tracing::info!(
        status = %current.status,
        booking_reference = %current.booking_reference,
        "the goods already left, not booking again"
    );
    let order_id = current.order_id.as_str();
    let announced = i32::try_from(revision).unwrap_or(i32::MAX);
    store::announce(conn, order_id, announced).await?;
    answer_booked(conn, message, order_id, &Booking::of(current), revision).await?;
    let shipped = Shipped {
        order_id: order_id.to_owned(),
        shipped_on: current.shipped_on.map(date_to_string).unwrap_or_default(),
        bill_of_lading: current.bill_of_lading.clone().unwrap_or_default(),
        revision,
    };
    let key = revision::shipped_key(revision, &shipped.bill_of_lading);
    answer_fact(conn, message, order_id, &shipped, &key).await
}

/// `ShipmentBooked` for a stored booking, as the fact of that booking and
/// revision: re-sent, it keeps its event id (the saga and finance's cost
/// ledger see it once).
async fn answer_booked(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    booking: &Booking,
    revision: u32,
) -> Result<(), HandlerError> {
    let key = revision::booked_key(&booking.booking_reference, revision);
    let event = booked_event(booking, revision);
    answer_fact(conn, message, order_id, &event, &key).await
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
pub(super) async fn cancel_shipment(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CancelShipment,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    store::lock_order(conn, &order_id).await?;
    let cancelled = ShipmentCancelled {
        order_id: order_id.clone(),
    };
    match store::shipment(conn, &order_id).await? {
        None => {
            tracing::info!("nothing booked, nothing to cancel");
        }
        Some(shipment) if shipment.status == store::SHIPMENT_BOOKED => {
            let reason = if command.reason.trim().is_empty() {
                "cancelled by the saga"
            } else {
                command.reason.trim()
            };
            store::cancel_shipment(conn, &order_id, reason).await?;
            tracing::info!(booking_reference = %shipment.booking_reference, "booking cancelled");
        }
        Some(shipment) if shipment.status == store::SHIPMENT_CANCELLED => {
            tracing::info!("already cancelled, answering again");
        }
        Some(shipment) => {
            return Err(Error::NotAllowed(format!(
                "the shipment of order {order_id} is {} (bill of lading {}); it cannot be cancelled",
                shipment.status,
                shipment.bill_of_lading.as_deref().unwrap_or("-")
            ))
            .into());
        }
    }
    answer_fact(conn, message, &order_id, &cancelled, "cancelled").await
}
