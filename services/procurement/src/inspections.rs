//! Quality's incoming inspection results (`gendan.evt.quality.*`); every
//! other quality event is ignored.
//!
//! - `IncomingInspectionPassed`: the lot enters stock and is reserved for the
//!   orders waiting on its purchase order; each such order whose
//!   reservations now cover everything it needs at its applied revision
//!   announces `MaterialsReady` of that revision (once per revision, see
//!   [`revisions`](crate::revisions)).
//! - `IncomingInspectionFailed`: the lot is recorded as returned to the
//!   supplier and counted as rejected on its PO. While the PO was open, the
//!   rejected quantity is re-ordered on a replacement PO chosen by the usual
//!   rule (shortest lead time, lowest price, supplier code; at least the
//!   MOQ), the orders the PO can no longer serve are moved onto it, and
//!   `PurchaseOrderPlaced` plus `MaterialsDelayed` for every order involved
//!   are announced.
//!
//! A result for an unknown PO or lot is rejected (dead letter); the same
//! result twice has no second effect; the opposite result for a lot already
//! decided is rejected, because a person must sort out which one is true.

use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::date_to_string;
use gendan_proto::v1::{
    IncomingInspectionFailed, IncomingInspectionPassed, MaterialsDelayed, ProcurementFailed,
};
use sqlx::PgConnection;

use crate::clock::Calendar;
use crate::lots::{self, LotRow};
use crate::netting::{self, Purchase};
use crate::purchasing::{self, PoRow, STATUS_ORDERED};
use crate::{SERVICE, catalog, locks, milli_to_f64, revisions, validate};

/// Handles `gendan.evt.quality.*`.
#[derive(Debug, Clone, Default)]
pub struct InspectionHandler {
    calendar: Calendar,
}

impl InspectionHandler {
    pub fn new(calendar: Calendar) -> Self {
        InspectionHandler { calendar }
    }
}

impl Handler for InspectionHandler {
    fn handles(&self, message: &Incoming) -> bool {
        message.is::<IncomingInspectionPassed>() || message.is::<IncomingInspectionFailed>()
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<IncomingInspectionPassed>() {
            let result: IncomingInspectionPassed = message.payload()?;
            let (po, lot) =
                decided_lot(conn, message, &result.purchase_order_id, &result.lot).await?;
            return passed(
                conn,
                message,
                po,
                lot,
                &result.inspection_id,
                &self.calendar,
            )
            .await;
        }
        if message.is::<IncomingInspectionFailed>() {
            let result: IncomingInspectionFailed = message.payload()?;
            let (po, lot) =
                decided_lot(conn, message, &result.purchase_order_id, &result.lot).await?;
            return failed(conn, message, po, lot, &result, &self.calendar).await;
        }
        // Final inspections and anything else quality announces are not ours.
        Ok(())
    }
}

/// The locked PO and lot an inspection result is about.
async fn decided_lot(
    conn: &mut PgConnection,
    message: &Incoming,
    purchase_order_id: &str,
    lot: &str,
) -> Result<(PoRow, LotRow), HandlerError> {
    let reject =
        |problem: String| HandlerError::Rejected(format!("{}: {problem}", message.type_name()));
    let po_id = validate::uuid(purchase_order_id, "purchase_order_id")
        .map_err(|field| reject(field.to_string()))?;
    let lot = validate::required_text(lot, "lot").map_err(|field| reject(field.to_string()))?;
    // The lot, its stock and every replacement are of the PO's material.
    locks::lock_po_material(conn, po_id).await?;
    let po = purchasing::find_po(conn, po_id, true)
        .await?
        .ok_or_else(|| reject(format!("unknown purchase order {po_id}")))?;
    let lot = lots::find(conn, po_id, &lot).await?.ok_or_else(|| {
        reject(format!(
            "no lot {lot:?} was received for purchase order {po_id}"
        ))
    })?;
    Ok((po, lot))
}

/// Events of this handling join the workflow of the PO's order.
fn cause_for(message: &Incoming, order_id: &str) -> Cause {
    Cause {
        causation_id: message.envelope.event_id.clone(),
        correlation_id: order_id.to_owned(),
    }
}

#[tracing::instrument(skip_all, fields(order_id = %po.order_id, purchase_order_id = %po.po_id, lot = %lot.lot))]
async fn passed(
    conn: &mut PgConnection,
    message: &Incoming,
    po: PoRow,
    lot: LotRow,
    inspection_id: &str,
    calendar: &Calendar,
) -> Result<(), HandlerError> {
    match lot.status.as_str() {
        "passed" => {
            tracing::info!("lot already accepted, nothing to do");
            return Ok(());
        }
        "failed" => {
            return Err(HandlerError::Rejected(format!(
                "lot {:?} of purchase order {} already failed its incoming inspection",
                lot.lot, po.po_id
            )));
        }
        _ => {}
    }
    lots::accept(conn, &po, &lot, inspection_id).await?;
    tracing::info!(
        quantity = milli_to_f64(lot.quantity_milli),
        "lot accepted into stock"
    );
    let today = calendar.today();
    let mut events = Vec::new();
    let orders = purchasing::orders_supplied_by(conn, &po).await?;
    // Readiness counts the order's other materials too, which news of
    // their POs may be changing meanwhile: their rows first (see
    // `revisions::mark_ready_if_complete`).
    locks::lock_orders(conn, &orders).await?;
    for order_id in orders {
        if let Some(ready) = revisions::mark_ready_if_complete(conn, &order_id, today).await? {
            tracing::info!(%order_id, revision = ready.revision, "materials ready");
            events.push(revisions::ready_fact(
                &ready,
                &cause_for(message, &order_id),
            ));
        }
    }
    outbox::write(conn, &events).await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(order_id = %po.order_id, purchase_order_id = %po.po_id, lot = %lot.lot))]
async fn failed(
    conn: &mut PgConnection,
    message: &Incoming,
    po: PoRow,
    lot: LotRow,
    result: &IncomingInspectionFailed,
    calendar: &Calendar,
) -> Result<(), HandlerError> {
    match lot.status.as_str() {
        "failed" => {
            tracing::info!("lot already rejected, nothing to do");
            return Ok(());
        }
        "passed" => {
            return Err(HandlerError::Rejected(format!(
                "lot {:?} of purchase order {} already passed its incoming inspection",
                lot.lot, po.po_id
            )));
        }
        _ => {}
    }
    let moved = lots::reject(conn, &po, &lot, &result.inspection_id).await?;
    tracing::info!(
        quantity = milli_to_f64(lot.quantity_milli),
        "lot rejected and returned to the supplier"
    );
    if !po.is_open() {
        // A cancelled PO is not bought again; a received one was complete
        // without this lot (an over-delivery).
        return Ok(());
    }

    let today = calendar.today();
    let mut affected = vec![po.order_id.clone()];
    for (order_id, _) in &moved {
        if !affected.contains(order_id) {
            affected.push(order_id.clone());
        }
    }
    // Their dates are of all their POs, as in `delays::announce_moved_dates`.
    locks::lock_orders(conn, &affected).await?;
    let mut waiting = Vec::new();
    for order_id in affected {
        if purchasing::status_for_update(conn, &order_id)
            .await?
            .as_deref()
            == Some(STATUS_ORDERED)
        {
            waiting.push(order_id);
        }
    }

    let offers = catalog::offers(conn, std::slice::from_ref(&po.material))
        .await
        .map_err(HandlerError::from)?;
    let best = offers
        .get(&po.material)
        .and_then(|offers| netting::best_offer(offers))
        .cloned();
    let mut events = Vec::new();
    let Some(offer) = best else {
        for order_id in &waiting {
            let failed = ProcurementFailed {
                order_id: order_id.clone(),
                reason: format!(
                    "lot {:?} of {:?} failed incoming inspection and no supplier offers the material to re-order it",
                    lot.lot, po.material
                ),
            };
            events.push(Outgoing::event(
                SERVICE,
                order_id,
                &failed,
                &cause_for(message, order_id),
            ));
        }
        outbox::write(conn, &events).await?;
        return Ok(());
    };
    let purchase = Purchase {
        quantity: netting::order_quantity(lot.quantity_milli, offer.moq),
        expected: netting::after_days(today, offer.lead_time_days),
        offer,
    };
    let (replacement, placed) = purchasing::place_purchase_order(
        conn,
        &po.order_id,
        &po.material,
        &purchase,
        Some(po.po_id),
        calendar.confirm_by(today),
    )
    .await?;
    lots::set_replacement(conn, po.po_id, &lot.lot, replacement).await?;
    for (order_id, quantity) in &moved {
        purchasing::allocate(conn, replacement, order_id, *quantity).await?;
    }
    tracing::info!(
        replacement = %replacement,
        supplier = %placed.supplier,
        quantity = placed.quantity,
        "replacement purchase order placed"
    );
    events.push(Outgoing::event(
        SERVICE,
        &po.order_id,
        &placed,
        &cause_for(message, &po.order_id),
    ));
    let reason = format!(
        "lot {:?} ({} {}) of purchase order {} failed incoming inspection{}; returned to {} and re-ordered from {}",
        lot.lot,
        milli_to_f64(lot.quantity_milli),
        po.material,
        po.po_id,
        if result.nonconformance_id.is_empty() {
            String::new()
        } else {
            format!(" (nonconformance {})", result.nonconformance_id)
        },
        po.supplier,
        placed.supplier,
    );
    for order_id in &waiting {
        let expected = purchasing::expected_ready_date(conn, order_id, today).await?;
        purchasing::set_expected_ready_date(conn, order_id, expected).await?;
        let delayed = MaterialsDelayed {
            order_id: order_id.clone(),
            purchase_order_id: replacement.to_string(),
            expected_ready_date: date_to_string(expected),
            reason: reason.clone(),
        };
        events.push(Outgoing::event(
            SERVICE,
            order_id,
            &delayed,
            &cause_for(message, order_id),
        ));
    }
    outbox::write(conn, &events).await?;
    Ok(())
}
