//! Warehouse outbound events (`gendan.ext.wms.outbound.*`).
//!
//! | subject | message | effect | emitted |
//! | --- | --- | --- | --- |
//! | `.packed` | `WmsPacked` | what was packed is compared with the order's current packing list (cartons, quantities per product, marks, barcodes, weights); the check is recorded against that list revision and the list becomes `checked` or `mismatch` | `PackingChecked` with every mismatch and the list revision checked |
//! | `.shipped` | `WmsShipped` | the order's current shipment (a redelivery's, once booked) becomes `shipped` with its bill of lading; the goods' booking records it with the packing list revision they were packed to | `Shipped` with the booking revision, the fact of that revision and bill of lading ([`revision::shipped_key`]) |
//!
//! Each packed report is checked on its own: after a repack the warehouse
//! reports again and the latest check decides the list's status. A list
//! superseded by an amended order's new list is not what the warehouse must
//! pack any more: a report that matches neither list is a mismatch against
//! the current one, and one that matches the superseded list exactly (work
//! done before the amendment) is recorded against it and answered with its
//! revision, which the saga counts as history. Every check is
//! a fact of its list revision and number
//! ([`revision::packing_check_key`]); the warehouse reporting the same
//! cartons again as the latest check of the current list records nothing
//! and answers that check again, under its event id.
//!
//! The same shipped report again answers the same `Shipped` (same event
//! id) and changes nothing. A shipped report of an earlier shipment (its
//! bill of lading is on an earlier booking's record: the goods a
//! redelivery followed) is on record already: it records nothing and says
//! nothing, and never marks the redelivery shipped.
//!
//! A report about an order without a packing list, or goods shipped without
//! a booking, cannot be made right by retrying: it is rejected
//! (dead-lettered with the reason) for a person to look at.

use chrono::{DateTime, Utc};
use gendan_messaging::{Handler, HandlerError, Incoming};
use gendan_proto::timestamp_to;
use gendan_proto::v1::{PackingChecked, Shipped, WmsPacked, WmsShipped};
use prost_types::Timestamp;
use sqlx::PgConnection;

use crate::commands::answer_fact;
use crate::packing::{self, PackedCarton};
use crate::revision;
use crate::store;
use crate::store::bookings;
use crate::store::packing_lists::{self, PackingCheck};

/// Handles `gendan.ext.wms.outbound.*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WmsHandler;

impl Handler for WmsHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<WmsPacked>() {
            return packed(conn, message, message.payload()?).await;
        }
        if message.is::<WmsShipped>() {
            return shipped(conn, message, message.payload()?).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown WMS outbound event type {:?}",
            message.type_name()
        )))
    }
}

/// When it happened in the warehouse: its timestamp, else the envelope's.
pub(crate) fn when(at: Option<&Timestamp>, message: &Incoming) -> DateTime<Utc> {
    at.and_then(timestamp_to)
        .unwrap_or_else(|| message.occurred_at())
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn packed(
    conn: &mut PgConnection,
    message: &Incoming,
    event: WmsPacked,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&event.order_id)?;
    store::lock_order(conn, &order_id).await?;
    let Some(list) = packing_lists::current(conn, &order_id).await? else {
        return Err(HandlerError::Rejected(format!(
            "goods packed for order {order_id}, which has no packing list"
        )));
    };
    let reported: Vec<PackedCarton> = event
        .cartons
        .iter()
        .map(|carton| PackedCarton {
            carton_number: carton.carton_number,
            product: carton.product.trim().to_owned(),
            quantity: carton.quantity,
            marks: carton.marks.clone(),
            label_barcode: carton.label_barcode.clone(),
            gross_weight_kg: carton.gross_weight_kg,
        })
        .collect();
    // The report as received, for the record: what the WMS said is what a
    // dispute about a short carton is settled with.
    let packed_json = serde_json::to_string(&reported)
        .map_err(|err| HandlerError::Rejected(format!("cannot record the packed report: {err}")))?;
    if let Some(latest) =
        packing_lists::latest_check(conn, &order_id, list.revision, &packed_json).await?
        && latest.same_report
    {
        // The warehouse said it twice (a new event id): same answer.
        tracing::info!(
            revision = list.revision,
            check = latest.number,
            "the same cartons as the latest check, answering it again"
        );
        return answer_checked(
            conn,
            message,
            &order_id,
            list.revision,
            latest.number,
            latest.check,
        )
        .await;
    }
    let mismatches = packing::compare(&list.cartons, list.requirements, &reported);
    // Packed exactly to the list the current one superseded (the report of
    // work done before an amendment rebuilt the list): it is recorded
    // against that list, and its answer names that revision, which the
    // saga counts as history; the new list is still to be packed.
    if !mismatches.is_empty()
        && let Some(earlier) = packing_lists::superseded_by(conn, &order_id, list.revision).await?
        && packing::compare(&earlier.cartons, earlier.requirements, &reported).is_empty()
    {
        let check = PackingCheck {
            matches: true,
            mismatches: Vec::new(),
            checked_at: when(event.at.as_ref(), message),
        };
        let number =
            packing_lists::record_check(conn, &order_id, earlier.revision, &check, &packed_json)
                .await?;
        tracing::info!(
            packed_to = earlier.revision,
            current = list.revision,
            "packed to a superseded packing list; the current one is still to be packed"
        );
        return answer_checked(conn, message, &order_id, earlier.revision, number, check).await;
    }
    let check = PackingCheck {
        matches: mismatches.is_empty(),
        mismatches,
        checked_at: when(event.at.as_ref(), message),
    };
    let number =
        packing_lists::record_check(conn, &order_id, list.revision, &check, &packed_json).await?;
    if check.matches {
        tracing::info!(
            cartons = reported.len(),
            revision = list.revision,
            "packing matches the packing list"
        );
    } else {
        tracing::warn!(
            mismatches = ?check.mismatches,
            revision = list.revision,
            "packing differs from the packing list"
        );
    }
    answer_checked(conn, message, &order_id, list.revision, number, check).await
}

/// `PackingChecked` for check `number` of list `list_revision`, as the
/// fact of that check.
async fn answer_checked(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    list_revision: u32,
    number: u32,
    check: PackingCheck,
) -> Result<(), HandlerError> {
    let checked = PackingChecked {
        order_id: order_id.to_owned(),
        matches: check.matches,
        mismatches: check.mismatches,
        revision: list_revision,
    };
    let key = revision::packing_check_key(list_revision, number);
    answer_fact(conn, message, order_id, &checked, &key).await
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn shipped(
    conn: &mut PgConnection,
    message: &Incoming,
    event: WmsShipped,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&event.order_id)?;
    let bill_of_lading = event.bill_of_lading.trim();
    if bill_of_lading.is_empty() {
        return Err(HandlerError::Rejected(format!(
            "goods of order {order_id} shipped without a bill of lading"
        )));
    }
    store::lock_order(conn, &order_id).await?;
    let Some(shipment) = store::shipment(conn, &order_id).await? else {
        return Err(HandlerError::Rejected(format!(
            "goods of order {order_id} shipped but no shipment was booked"
        )));
    };
    if shipment.bill_of_lading.as_deref() != Some(bill_of_lading)
        && let Some(earlier) = bookings::shipped_under(conn, &order_id, bill_of_lading).await?
        && earlier != shipment.revision
    {
        // The goods of an earlier booking, reported again after a
        // redelivery was booked: on record already, and not the
        // redelivery's goods.
        tracing::info!(
            %bill_of_lading,
            earlier_revision = earlier,
            "an earlier shipment reported shipped again, nothing new"
        );
        return Ok(());
    }
    let revision = shipment.announced();
    let shipped_on = when(event.at.as_ref(), message).date_naive();
    let answer_event = match shipment.status.as_str() {
        store::SHIPMENT_BOOKED => {
            store::mark_shipped(conn, &order_id, bill_of_lading, shipped_on).await?;
            tracing::info!(%bill_of_lading, revision, "shipped");
            Shipped {
                order_id: order_id.clone(),
                shipped_on: gendan_proto::date_to_string(shipped_on),
                bill_of_lading: bill_of_lading.to_owned(),
                revision,
            }
        }
        store::SHIPMENT_SHIPPED | store::SHIPMENT_DELIVERED
            if shipment.bill_of_lading.as_deref() == Some(bill_of_lading) =>
        {
            // The warehouse said it twice (a new event id): same answer.
            Shipped {
                order_id: order_id.clone(),
                shipped_on: shipment
                    .shipped_on
                    .map(gendan_proto::date_to_string)
                    .unwrap_or_default(),
                bill_of_lading: bill_of_lading.to_owned(),
                revision,
            }
        }
        status => {
            return Err(HandlerError::Rejected(format!(
                "goods of order {order_id} shipped under bill of lading {bill_of_lading} but the \
                 shipment is {status}{}",
                shipment
                    .bill_of_lading
                    .as_deref()
                    .map(|b| format!(" under bill of lading {b}"))
                    .unwrap_or_default()
            )));
        }
    };
    let key = revision::shipped_key(revision, &answer_event.bill_of_lading);
    answer_fact(conn, message, &order_id, &answer_event, &key).await
}
