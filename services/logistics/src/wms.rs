//! Warehouse outbound events (`gendan.ext.wms.outbound.*`).
//!
//! | subject | message | effect | emitted |
//! | --- | --- | --- | --- |
//! | `.packed` | `WmsPacked` | what was packed is compared with the packing list (cartons, quantities per product, marks, barcodes, weights); the check is recorded and the list becomes `checked` or `mismatch` | `PackingChecked` with every mismatch |
//! | `.shipped` | `WmsShipped` | the booked shipment becomes `shipped` with its bill of lading | `Shipped` |
//!
//! Each packed report is checked on its own: after a repack the warehouse
//! reports again and the latest check decides the list's status. A report
//! about an order without a packing list, or goods shipped without a booking,
//! cannot be made right by retrying: it is rejected (dead-lettered with the
//! reason) for a person to look at.

use chrono::{DateTime, Utc};
use gendan_messaging::{Handler, HandlerError, Incoming};
use gendan_proto::timestamp_to;
use gendan_proto::v1::{PackingChecked, Shipped, WmsPacked, WmsShipped};
use prost_types::Timestamp;
use sqlx::PgConnection;

use crate::commands::{answer, answer_fact};
use crate::packing::{self, PackedCarton};
use crate::store::{self, PackingCheck};

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
    let Some(list) = store::packing_list(conn, &order_id).await? else {
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
    let mismatches = packing::compare(&list.cartons, list.requirements, &reported);
    let check = PackingCheck {
        matches: mismatches.is_empty(),
        mismatches,
        checked_at: when(event.at.as_ref(), message),
    };
    // The report as received, for the record: what the WMS said is what a
    // dispute about a short carton is settled with.
    let packed_json = serde_json::to_string(&reported)
        .map_err(|err| HandlerError::Rejected(format!("cannot record the packed report: {err}")))?;
    store::record_check(conn, &order_id, &check, &packed_json).await?;
    if check.matches {
        tracing::info!(cartons = reported.len(), "packing matches the packing list");
    } else {
        tracing::warn!(mismatches = ?check.mismatches, "packing differs from the packing list");
    }
    let checked = PackingChecked {
        order_id: order_id.clone(),
        matches: check.matches,
        mismatches: check.mismatches,
    };
    answer(conn, message, &order_id, &checked).await
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
    let shipped_on = when(event.at.as_ref(), message).date_naive();
    let answer_event = match shipment.status.as_str() {
        store::SHIPMENT_BOOKED => {
            store::mark_shipped(conn, &order_id, bill_of_lading, shipped_on).await?;
            tracing::info!(%bill_of_lading, "shipped");
            Shipped {
                order_id: order_id.clone(),
                shipped_on: gendan_proto::date_to_string(shipped_on),
                bill_of_lading: bill_of_lading.to_owned(),
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
    let key = format!("shipped:{}", answer_event.bill_of_lading);
    answer_fact(conn, message, &order_id, &answer_event, &key).await
}
