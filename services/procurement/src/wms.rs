//! Warehouse goods receipts (`gendan.ext.wms.inbound.*`, payload
//! `WmsGoodsReceived` in the standard envelope).
//!
//! A receipt records the lot against its purchase order as waiting for
//! incoming inspection and announces `GoodsReceived`, from which quality
//! opens the inspection. Stock grows only when the lot passes (see
//! [`inspections`](crate::inspections)): material that has not been
//! inspected must not be issued to production.
//!
//! | case | outcome |
//! | --- | --- |
//! | unknown purchase order, material not the PO's, no lot, quantity not > 0 | rejected (dead letter with the reason) |
//! | the same lot again with the same quantity (a WMS re-send with a new id) | no effect |
//! | the same lot again with another quantity | rejected |
//! | a lot for a cancelled or already received PO | recorded and announced: the goods are at the dock and must be inspected either way |

use chrono::{DateTime, Utc};
use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::timestamp_to;
use gendan_proto::v1::{GoodsReceived, WmsGoodsReceived};
use sqlx::PgConnection;

use crate::{SERVICE, locks, lots, milli_to_f64, purchasing, validate};

/// Handles `gendan.ext.wms.inbound.*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WmsHandler;

impl Handler for WmsHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<WmsGoodsReceived>() {
            return goods_received(conn, message, message.payload()?).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown WMS inbound event type {:?}",
            message.type_name()
        )))
    }
}

fn rejected(message: &Incoming, problem: impl std::fmt::Display) -> HandlerError {
    HandlerError::Rejected(format!("{}: {problem}", message.type_name()))
}

#[tracing::instrument(skip_all, fields(purchase_order_id = %receipt.purchase_order_id, lot = %receipt.lot))]
async fn goods_received(
    conn: &mut PgConnection,
    message: &Incoming,
    receipt: WmsGoodsReceived,
) -> Result<(), HandlerError> {
    let po_id = validate::uuid(&receipt.purchase_order_id, "purchase_order_id")
        .map_err(|field| rejected(message, field))?;
    let quantity = validate::positive_quantity(receipt.quantity, "quantity")
        .map_err(|field| rejected(message, field))?;
    let lot =
        validate::required_text(&receipt.lot, "lot").map_err(|field| rejected(message, field))?;
    let received_at: DateTime<Utc> = receipt
        .at
        .as_ref()
        .and_then(timestamp_to)
        .unwrap_or_else(|| message.occurred_at());

    locks::lock_po_material(conn, po_id).await?;
    let po = purchasing::find_po(conn, po_id, true)
        .await?
        .ok_or_else(|| rejected(message, format!("unknown purchase order {po_id}")))?;
    let material = receipt.material.trim();
    if !material.is_empty() && material != po.material {
        return Err(rejected(
            message,
            format!(
                "material {material:?} does not match purchase order {po_id}, which is for {:?}",
                po.material
            ),
        ));
    }
    if let Some(existing) = lots::find(conn, po_id, &lot).await? {
        if existing.quantity_milli == quantity {
            tracing::info!("lot already recorded, nothing to do");
            return Ok(());
        }
        return Err(rejected(
            message,
            format!(
                "lot {lot:?} of purchase order {po_id} was already received with quantity {}",
                milli_to_f64(existing.quantity_milli)
            ),
        ));
    }
    lots::insert(conn, &po, &lot, quantity, received_at).await?;
    tracing::info!(quantity = milli_to_f64(quantity), "goods received");
    let received = GoodsReceived {
        order_id: po.order_id.clone(),
        purchase_order_id: po_id.to_string(),
        material: po.material.clone(),
        quantity: milli_to_f64(quantity),
        lot,
        supplier: po.supplier.clone(),
    };
    // The WMS knows nothing of orders: the receipt joins the workflow of
    // the order the purchase order was placed for.
    let cause = Cause {
        causation_id: message.envelope.event_id.clone(),
        correlation_id: po.order_id.clone(),
    };
    let event = Outgoing::event(SERVICE, &po.order_id, &received, &cause);
    outbox::write(conn, &[event]).await?;
    Ok(())
}
