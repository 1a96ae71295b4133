//! Procurement's events (`gendan.evt.procurement.*`): every `GoodsReceived`
//! lot gets an incoming inspection; other procurement events are not ours
//! and are passed over.
//!
//! The lot size is the received quantity rounded up to whole units (a
//! partial unit is still a unit to sample). Critical defects are zero
//! tolerance and major defects use the material's incoming AQL (2.5 when it
//! has none). One inspection per purchase order, material and lot: a receipt
//! announced again re-emits `IncomingInspectionOpened` while it is open, and
//! does nothing once a result is recorded (the result was announced then).

use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{DefectClass, GoodsReceived};
use sqlx::PgConnection;

use crate::inspections::{self, KIND_INCOMING, NewInspection};
use crate::sampling::{Level, Severity, Tolerance};
use crate::{SERVICE, plans};

/// Handles `gendan.evt.procurement.*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceivingHandler;

impl Handler for ReceivingHandler {
    fn handles(&self, message: &Incoming) -> bool {
        message.is::<GoodsReceived>()
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<GoodsReceived>() {
            return goods_received(conn, message, message.payload()?).await;
        }
        Ok(())
    }
}

/// A received lot, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub order_id: String,
    pub purchase_order_id: String,
    pub material: String,
    pub lot: String,
    pub supplier: String,
    pub lot_size: u32,
}

/// Whole units in a received quantity (rounded up), or why it is unusable.
pub fn lot_size(quantity: f64) -> Result<u32, String> {
    if !quantity.is_finite() || quantity <= 0.0 {
        return Err(format!(
            "received quantity {quantity} is not a positive number"
        ));
    }
    let units = quantity.ceil();
    if units > f64::from(u32::MAX) {
        return Err(format!(
            "received quantity {quantity} is too large for one lot"
        ));
    }
    // In range and integral after the checks above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(units as u32)
}

pub fn receipt(event: &GoodsReceived, message: &Incoming) -> Result<Receipt, String> {
    let purchase_order_id = event.purchase_order_id.trim();
    let material = event.material.trim();
    if purchase_order_id.is_empty() {
        return Err("GoodsReceived without a purchase_order_id".to_owned());
    }
    if material.is_empty() {
        return Err(format!(
            "GoodsReceived of purchase order {purchase_order_id} without a material"
        ));
    }
    let order_id = if event.order_id.trim().is_empty() {
        message.order_id().trim()
    } else {
        event.order_id.trim()
    };
    Ok(Receipt {
        order_id: order_id.to_owned(),
        purchase_order_id: purchase_order_id.to_owned(),
        material: material.to_owned(),
        lot: event.lot.trim().to_owned(),
        supplier: event.supplier.trim().to_owned(),
        lot_size: lot_size(event.quantity).map_err(|reason| {
            format!("GoodsReceived of purchase order {purchase_order_id}: {reason}")
        })?,
    })
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), purchase_order_id = %event.purchase_order_id, lot = %event.lot))]
async fn goods_received(
    conn: &mut PgConnection,
    message: &Incoming,
    event: GoodsReceived,
) -> Result<(), HandlerError> {
    let receipt = receipt(&event, message).map_err(HandlerError::Rejected)?;
    let cause = Cause::from_incoming(message);
    // The partial unique index makes a concurrent duplicate fail its insert;
    // the retry then finds this row.
    let existing = inspections::find_incoming(
        conn,
        &receipt.purchase_order_id,
        &receipt.material,
        &receipt.lot,
    )
    .await?;
    let inspection = match existing {
        Some(open) if open.is_open() => {
            tracing::info!(inspection_id = %open.inspection_id, "incoming inspection already open, announcing again");
            open
        }
        Some(closed) => {
            tracing::info!(inspection_id = %closed.inspection_id, status = %closed.status, "lot already inspected, nothing to do");
            return Ok(());
        }
        None => {
            let (major, _) = plans::incoming_tolerance(conn, &receipt.material).await?;
            let classes = inspections::class_plans(
                receipt.lot_size,
                // The switching rules are applied to final inspections only.
                Severity::Normal,
                // Incoming lots are ours to judge, at the standard's level.
                Level::II,
                &[
                    (DefectClass::Critical, Tolerance::Zero),
                    (DefectClass::Major, major),
                ],
            );
            let opened = inspections::insert(
                conn,
                &NewInspection {
                    kind: KIND_INCOMING,
                    order_id: receipt.order_id.clone(),
                    items: Vec::new(),
                    purchase_order_id: receipt.purchase_order_id.clone(),
                    material: receipt.material.clone(),
                    lot: receipt.lot.clone(),
                    product: String::new(),
                    stage: String::new(),
                    supplier: receipt.supplier.clone(),
                    lot_size: receipt.lot_size,
                    revision: 0,
                    severity: Severity::Normal,
                    classes,
                    cause_event_id: message.envelope.event_id.clone(),
                    traceparent: gendan_telemetry::current_traceparent()
                        .or_else(|| message.traceparent.clone()),
                },
            )
            .await?;
            tracing::info!(
                inspection_id = %opened.inspection_id,
                lot_size = receipt.lot_size,
                sample_size = opened.sample_size,
                aql = %major,
                "incoming inspection opened"
            );
            opened
        }
    };
    let opened = inspections::incoming_opened_event(&inspection);
    // Announced again while open: the same fact.
    let key = format!("inspection:{}:opened", inspection.inspection_id);
    let event = Outgoing::fact(SERVICE, &receipt.order_id, &opened, &cause, &key);
    outbox::write(conn, &[event]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lots_round_up_to_whole_units() {
        assert_eq!(lot_size(120.0), Ok(120));
        assert_eq!(lot_size(120.2), Ok(121));
        assert_eq!(lot_size(0.5), Ok(1));
        assert!(lot_size(0.0).is_err());
        assert!(lot_size(-3.0).is_err());
        assert!(lot_size(f64::NAN).is_err());
        assert!(lot_size(1e12).is_err());
    }
}
