//! Saga commands to procurement (`gendan.cmd.procurement.*`).
//!
//! - `CheckMaterials` explodes the BOM and nets it against what the order
//!   may count on, without changing anything, and answers
//!   `MaterialsChecked`. A product without a BOM or a short material nobody
//!   offers is an answer (`problem`), not a failure: the saga needs a reply.
//! - `ProcureMaterials` is idempotent by order id. The first one reserves
//!   free stock, claims unallocated quantities on open POs, places POs for
//!   the shortages (one `PurchaseOrderPlaced` each) and answers
//!   `MaterialsOrdered`; when the order waits for nothing it also announces
//!   `MaterialsReady` at once. A repeat answers `MaterialsOrdered` again from
//!   what is stored and places nothing. When it cannot be done (no BOM, no
//!   offer, the order was cancelled) it answers `ProcurementFailed` and
//!   stores nothing, so a repeat after the catalogue is fixed succeeds.
//! - `CancelMaterials` releases reservations and allocations, cancels the
//!   open POs and answers `MaterialsCancelled`; a repeat answers the same
//!   counts again. A cancel that arrives before any procurement records the
//!   order as cancelled, so a late `ProcureMaterials` buys nothing.
//!
//! Every answer is written to the outbox on the consumer's connection, so it
//! commits with the effect and the inbox record.

use chrono::{NaiveDate, Utc};
use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::date_to_string;
use gendan_proto::v1::{
    CancelMaterials, CheckMaterials, MaterialShortage, MaterialsCancelled, MaterialsChecked,
    ProcureMaterials, ProcurementFailed,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::netting::{self, Plan};
use crate::purchasing::{self, STATUS_CANCELLED};
use crate::{Error, SERVICE, catalog, milli_to_f64, validate};

/// Handles `gendan.cmd.procurement.*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandHandler;

impl Handler for CommandHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<CheckMaterials>() {
            return check_materials(conn, message, message.payload()?).await;
        }
        if message.is::<ProcureMaterials>() {
            return procure_materials(conn, message, message.payload()?).await;
        }
        if message.is::<CancelMaterials>() {
            return cancel_materials(conn, message, message.payload()?).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown command type {:?} for {SERVICE}",
            message.type_name()
        )))
    }
}

/// Explodes and nets `items` for `order_id` against the current state.
/// Invalid items are a problem of the plan, not an error.
async fn plan_order(
    conn: &mut PgConnection,
    order_id: &str,
    items: &[gendan_proto::v1::ProductQuantity],
    needed_by: &str,
    today: NaiveDate,
) -> Result<Plan, HandlerError> {
    let invalid = |problem: String| Plan {
        materials: Vec::new(),
        earliest_material_date: today,
        problems: vec![problem],
    };
    let items = match validate::items(items, "items") {
        Ok(items) => items,
        Err(field) => return Ok(invalid(field.to_string())),
    };
    // needed_by is informational here (production plans against the
    // earliest material date), but a malformed one is still reported.
    if let Err(field) = validate::optional_date(needed_by, "needed_by") {
        return Ok(invalid(field.to_string()));
    }
    let products: Vec<String> = items.iter().map(|(product, _)| product.clone()).collect();
    let boms = catalog::boms(conn, &products).await?;
    let (required, _) = netting::explode(&items, &boms);
    let materials: Vec<String> = required.keys().cloned().collect();
    let supplies = purchasing::supplies_for(conn, order_id, &materials).await?;
    let offers = catalog::offers(conn, &materials).await?;
    Ok(netting::plan(&items, &boms, &supplies, &offers, today))
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn check_materials(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CheckMaterials,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let today = Utc::now().date_naive();
    let plan = plan_order(conn, &order_id, &command.items, &command.needed_by, today).await?;
    let units = catalog::units(conn).await.map_err(HandlerError::from)?;
    let answer = MaterialsChecked {
        order_id: order_id.clone(),
        shortages: plan
            .shortages()
            .map(|line| MaterialShortage {
                material: line.material.clone(),
                unit: units.get(&line.material).cloned().unwrap_or_default(),
                required: milli_to_f64(line.required),
                free_stock: milli_to_f64(line.free_stock),
                on_order: milli_to_f64(line.on_order),
                shortage: milli_to_f64(line.shortage),
                // Empty when nobody offers the material.
                earliest_date: line
                    .purchase
                    .as_ref()
                    .map(|_| date_to_string(line.earliest_date))
                    .unwrap_or_default(),
            })
            .collect(),
        earliest_material_date: if plan.problems.is_empty() {
            date_to_string(plan.earliest_material_date)
        } else {
            String::new()
        },
        problem: plan.problem(),
    };
    tracing::info!(
        shortages = answer.shortages.len(),
        earliest_material_date = %answer.earliest_material_date,
        problem = %answer.problem,
        "materials checked"
    );
    let event = Outgoing::event(SERVICE, &order_id, &answer, &Cause::from_incoming(message));
    outbox::write(conn, &[event]).await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn procure_materials(
    conn: &mut PgConnection,
    message: &Incoming,
    command: ProcureMaterials,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let cause = Cause::from_incoming(message);
    let today = Utc::now().date_naive();
    // Taken before the existence check so two replicas handling a re-sent
    // command at once cannot both buy for the order.
    purchasing::lock(conn).await?;

    match purchasing::status_for_update(conn, &order_id).await? {
        Some(status) if status == STATUS_CANCELLED => {
            let failed = ProcurementFailed {
                order_id: order_id.clone(),
                reason: format!("materials of order {order_id} were cancelled"),
            };
            let event = Outgoing::event(SERVICE, &order_id, &failed, &cause);
            outbox::write(conn, &[event]).await?;
            return Ok(());
        }
        Some(_) => {
            tracing::info!("already procured, answering again");
            let ordered = purchasing::ordered_event(conn, &order_id).await?;
            let event = Outgoing::event(SERVICE, &order_id, &ordered, &cause);
            outbox::write(conn, &[event]).await?;
            return Ok(());
        }
        None => {}
    }

    let plan = plan_order(conn, &order_id, &command.items, &command.needed_by, today).await?;
    if !plan.problems.is_empty() {
        let failed = ProcurementFailed {
            order_id: order_id.clone(),
            reason: format!(
                "cannot procure materials for order {order_id}: {}",
                plan.problem()
            ),
        };
        tracing::warn!(reason = %failed.reason, "procurement failed");
        let event = Outgoing::event(SERVICE, &order_id, &failed, &cause);
        outbox::write(conn, &[event]).await?;
        return Ok(());
    }

    let events = match procure(conn, &order_id, &plan, today, &cause).await {
        Ok(events) => events,
        // Only raised by the checks `procure` makes before its first write.
        Err(Error::NotAllowed(reason)) => {
            let failed = ProcurementFailed {
                order_id: order_id.clone(),
                reason: format!("cannot procure materials for order {order_id}: {reason}"),
            };
            tracing::warn!(reason = %failed.reason, "procurement failed");
            vec![Outgoing::event(SERVICE, &order_id, &failed, &cause)]
        }
        Err(err) => return Err(err.into()),
    };
    outbox::write(conn, &events).await?;
    Ok(())
}

/// Stores the reservations, allocations and purchase orders of `plan` and
/// returns the events to announce.
async fn procure(
    conn: &mut PgConnection,
    order_id: &str,
    plan: &Plan,
    today: NaiveDate,
    cause: &Cause,
) -> Result<Vec<Outgoing>, Error> {
    // Amounts are checked before anything is written.
    for line in &plan.materials {
        if let Some(purchase) = &line.purchase
            && netting::amount_minor(purchase.quantity, purchase.offer.unit_price_minor).is_none()
        {
            return Err(Error::NotAllowed(format!(
                "the purchase value of material {:?} does not fit in minor units",
                line.material
            )));
        }
    }
    purchasing::insert_procurement(conn, order_id, purchasing::STATUS_ORDERED, today).await?;
    let mut events = Vec::new();
    for line in &plan.materials {
        purchasing::insert_requirement(conn, order_id, &line.material, line.required).await?;
        purchasing::reserve(conn, order_id, &line.material, line.from_stock).await?;
        for (po_id, quantity) in &line.from_orders {
            // The ids came from the database a moment ago.
            let po_id = Uuid::parse_str(po_id).map_err(|_| {
                Error::Database(sqlx::Error::Protocol(format!(
                    "bad purchase order id {po_id}"
                )))
            })?;
            purchasing::allocate(conn, po_id, order_id, *quantity).await?;
        }
        if let Some(purchase) = &line.purchase {
            let (po_id, placed) =
                purchasing::place_purchase_order(conn, order_id, &line.material, purchase, None)
                    .await?;
            purchasing::allocate(conn, po_id, order_id, line.shortage).await?;
            tracing::info!(
                purchase_order_id = %po_id,
                material = %line.material,
                supplier = %purchase.offer.supplier,
                quantity = placed.quantity,
                "purchase order placed"
            );
            events.push(Outgoing::event(SERVICE, order_id, &placed, cause));
        }
    }
    let expected = purchasing::expected_ready_date(conn, order_id, today).await?;
    purchasing::set_expected_ready_date(conn, order_id, expected).await?;
    let ordered = purchasing::ordered_event(conn, order_id).await?;
    events.push(Outgoing::event(SERVICE, order_id, &ordered, cause));
    if let Some(ready) = purchasing::mark_ready_if_complete(conn, order_id, today).await? {
        tracing::info!("materials ready from stock");
        events.push(Outgoing::event(SERVICE, order_id, &ready, cause));
    }
    Ok(events)
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn cancel_materials(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CancelMaterials,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let today = Utc::now().date_naive();
    purchasing::lock(conn).await?;
    let counts = match purchasing::status_for_update(conn, &order_id).await? {
        None => {
            purchasing::insert_procurement(conn, &order_id, STATUS_CANCELLED, today).await?;
            purchasing::Cancelled::default()
        }
        Some(status) if status == STATUS_CANCELLED => {
            tracing::info!("already cancelled, answering again");
            purchasing::cancelled_counts(conn, &order_id).await?
        }
        Some(_) => purchasing::cancel_order(conn, &order_id, command.reason.trim()).await?,
    };
    let answer = MaterialsCancelled {
        order_id: order_id.clone(),
        purchase_orders_cancelled: counts.purchase_orders,
        reservations_released: counts.reservations,
    };
    tracing::info!(
        purchase_orders_cancelled = counts.purchase_orders,
        reservations_released = counts.reservations,
        "materials cancelled"
    );
    let event = Outgoing::event(SERVICE, &order_id, &answer, &Cause::from_incoming(message));
    outbox::write(conn, &[event]).await?;
    Ok(())
}
