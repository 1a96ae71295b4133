//! Saga commands to procurement (`gendan.cmd.procurement.*`).
//!
//! | command | key | first time | repeat |
//! | --- | --- | --- | --- |
//! | `CheckMaterials` | none (reads only) | explodes the BOM, nets it against what the order may count on; `MaterialsChecked` (a product without a BOM or a short material nobody offers is its `problem`, not a failure: the saga needs a reply) with the order's standard material cost per currency, the whole requirement at the chosen offer's price, and the materials no offer prices ([`costing`]). An order that already holds supply (reservations, PO quantities allocated to it, received goods: an amended order checked again) counts it as its own and nets only the difference against free stock and other open POs ([`holdings`]); an order holding nothing is checked as before | the same check on the current state |
//! | `ProcureMaterials` (first, or no order record yet) | order | reserves free stock, claims unallocated quantities on open POs, places POs for the shortages; `PurchaseOrderPlaced` each, `MaterialsOrdered` with the command's `revision` (0 counts as 1; stored as the order's applied revision) and `stock_issued`, the stock reserved per material valued at the price of the offer a purchase of it would use (none: 0 and no currency; [`costing::stock_issued`]) (+ `MaterialsReady` of that revision when nothing is awaited). Cannot be done (no BOM, no offer, order cancelled): `ProcurementFailed`, nothing stored, so a repeat after the catalogue is fixed succeeds | `MaterialsOrdered` of the applied revision again (the stored answer, `stock_issued` included, same event id), nothing placed |
//! | `ProcureMaterials` (`revision` above the applied one: an amended order) | order + revision | in one transaction nets the new need against what the order holds ([`amendments`](crate::amendments)): a shortfall is netted and bought as the first time (`PurchaseOrderPlaced`); a surplus reduces or cancels the order's PO quantities not yet delivered, latest PO first (never below the supplier's MOQ, what was delivered or what other orders expect; a PO nobody expects anything from is cancelled), then releases its stock reservation; received goods stay with the order as excess (with `materials_in_use`, production had begun: no reservation is released; with `remake`, the scrapped goods used up the order's reservations: they leave stock, and the whole need is netted afresh). `MaterialsOrdered` of the revision with the order's awaited POs, one `adjustments` line per change and `stock_issued` with only what it reserved from stock in addition, valued as the first time (a reservation released is not credited) (+ `MaterialsReady` of the revision at once when everything needed is in). Cannot be done (no BOM, no offer for a shortfall): `ProcurementFailed`, nothing changed, the applied revision stays | same revision: the stored `MaterialsOrdered` again (same event id, same `stock_issued`), nothing changed; an older revision: the applied revision's `MaterialsOrdered`, nothing changed |
//! | `CancelMaterials` | order | releases reservations and allocations, cancels open POs; `MaterialsCancelled`. Before any procurement: records the order as cancelled, so a late `ProcureMaterials` buys nothing | the stored counts again |
//! | `ResourceMaterials` | purchase order | orders the late PO's open quantity from the next supplier offer (purchasing's rule, the late supplier excluded), moves the orders it served onto the new PO, cancels it; `PurchaseOrderPlaced`, `MaterialsResourced` with the new PO and its date, `MaterialsDelayed` for each order whose material date moved. PO not open, a lot awaiting inspection, or no other offer: `MaterialsResourced` with `problem`, nothing changed | `MaterialsResourced` again from what is stored, no second PO |
//! | `AcceptSupplierDelay` | purchase order + date | the PO's expected date becomes `new_expected_date` (a new date to chase); `SupplierDelayAccepted`, `MaterialsDelayed` for each order whose material date moved | `SupplierDelayAccepted` again, nothing moved |
//! | `RestateFact` (`awaited` `MaterialsReady`) | order + revision (reads only) | the order's materials ready at that revision (0: the applied one): `MaterialsReady` again, the fact as first announced (same event id); otherwise `StatusReported` with where things stand (each awaited PO: not confirmed, confirmed for a date, a lot awaiting incoming inspection), carried out by [`restate`](crate::restate) | the same answer on the current state |
//!
//! Invalid commands are dead-lettered with the field named
//! ([`HandlerError::Rejected`]): no order id, a `RestateFact` for a fact
//! procurement does not announce (`awaited`), an unknown purchase order or
//! one that does not supply the command's order (`purchase_order_id`), a
//! malformed or past `new_expected_date`, a delay for a PO that is no longer
//! open. The late-PO commands are carried out by [`delays`](crate::delays).
//!
//! "Today" (placed dates, confirm-by dates, date checks) is the service's
//! [`Calendar`]. Every answer is written to the outbox on the consumer's
//! connection, so it commits with the effect and the inbox record.
//! `MaterialsOrdered` is the fact `materials:<order>:<revision>` and
//! `MaterialsReady` the fact `materials_ready:<order>:<revision>`
//! ([`revisions`]): announced again, each keeps its event id.

use std::collections::HashMap;

use chrono::NaiveDate;
use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::date_to_string;
use gendan_proto::v1::{
    AcceptSupplierDelay, CancelMaterials, CheckMaterials, MaterialShortage, MaterialsCancelled,
    MaterialsChecked, ProcureMaterials, ProcurementFailed, ResourceMaterials, RestateFact,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::clock::Calendar;
use crate::costing::{self, MaterialCost};
use crate::locks::{self, Items};
use crate::netting::{self, Offer, Plan};
use crate::purchasing::{self, STATUS_CANCELLED};
use crate::{Error, SERVICE, catalog, delays, holdings, milli_to_f64, restate, revisions};

/// Handles `gendan.cmd.procurement.*`.
#[derive(Debug, Clone, Default)]
pub struct CommandHandler {
    calendar: Calendar,
}

impl CommandHandler {
    pub fn new(calendar: Calendar) -> Self {
        CommandHandler { calendar }
    }
}

impl Handler for CommandHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        let calendar = &self.calendar;
        if message.is::<CheckMaterials>() {
            return check_materials(conn, message, message.payload()?, calendar).await;
        }
        if message.is::<ProcureMaterials>() {
            return procure_materials(conn, message, message.payload()?, calendar).await;
        }
        if message.is::<CancelMaterials>() {
            return cancel_materials(conn, message, message.payload()?, calendar).await;
        }
        if message.is::<ResourceMaterials>() {
            return delays::resource_materials(conn, message, message.payload()?, calendar).await;
        }
        if message.is::<AcceptSupplierDelay>() {
            return delays::accept_supplier_delay(conn, message, message.payload()?, calendar)
                .await;
        }
        if message.is::<RestateFact>() {
            return restate::restate_fact(conn, message, message.payload()?).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown command type {:?} for {SERVICE}",
            message.type_name()
        )))
    }
}

/// An order's items netted and costed, with the offers both read: they
/// also value what a procurement takes from stock.
struct Planned {
    plan: Plan,
    cost: MaterialCost,
    offers: HashMap<String, Vec<Offer>>,
}

/// Explodes and nets `items` for `order_id` against the current state, and
/// costs the explosion ([`costing`]) from the offers it read. Invalid items
/// are a problem of the plan, not an error (and cost nothing).
async fn plan_order(
    conn: &mut PgConnection,
    order_id: &str,
    items: &Items,
    today: NaiveDate,
) -> Result<Planned, HandlerError> {
    let (items, boms) = match items {
        Items::Valid { items, boms } => (items, boms),
        Items::Invalid(problem) => {
            return Ok(Planned {
                plan: Plan {
                    materials: Vec::new(),
                    earliest_material_date: today,
                    problems: vec![problem.clone()],
                },
                cost: MaterialCost::default(),
                offers: HashMap::new(),
            });
        }
    };
    let (required, _) = netting::explode(items, boms);
    let materials: Vec<String> = required.keys().cloned().collect();
    let supplies = purchasing::supplies_for(conn, order_id, &materials).await?;
    let offers = catalog::offers(conn, &materials).await?;
    let cost = costing::material_cost(&required, &offers);
    Ok(Planned {
        plan: netting::plan(items, boms, &supplies, &offers, today),
        cost,
        offers,
    })
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn check_materials(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CheckMaterials,
    calendar: &Calendar,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let today = calendar.today();
    // No locks: a check claims nothing, and its answer is of one moment.
    let items = Items::read(conn, &command.items, &command.needed_by).await?;
    let held = holdings::load(conn, &order_id).await?;
    let answer = if holdings::holds_anything(&held) {
        // An amended order checked again: what it holds is its own.
        holdings::check(conn, &order_id, &held, &items, today).await?
    } else {
        checked(conn, &order_id, &items, today).await?
    };
    tracing::info!(
        shortages = answer.shortages.len(),
        uncosted_materials = answer.uncosted_materials.len(),
        earliest_material_date = %answer.earliest_material_date,
        problem = %answer.problem,
        "materials checked"
    );
    let event = Outgoing::event(SERVICE, &order_id, &answer, &Cause::from_incoming(message));
    outbox::write(conn, &[event]).await?;
    Ok(())
}

/// The check of an order that holds nothing: the items netted against
/// what it may count on.
async fn checked(
    conn: &mut PgConnection,
    order_id: &str,
    items: &Items,
    today: NaiveDate,
) -> Result<MaterialsChecked, HandlerError> {
    let Planned { plan, cost, .. } = plan_order(conn, order_id, items, today).await?;
    let units = catalog::units(conn).await.map_err(HandlerError::from)?;
    Ok(MaterialsChecked {
        order_id: order_id.to_owned(),
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
        material_cost: cost.by_currency,
        uncosted_materials: cost.uncosted,
    })
}

/// `ProcurementFailed` for `order_id`: it cannot be procured as asked.
fn cannot_procure(order_id: &str, reason: &str, cause: &Cause) -> Outgoing {
    let failed = ProcurementFailed {
        order_id: order_id.to_owned(),
        reason: format!("cannot procure materials for order {order_id}: {reason}"),
    };
    tracing::warn!(reason = %failed.reason, "procurement failed");
    Outgoing::event(SERVICE, order_id, &failed, cause)
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn procure_materials(
    conn: &mut PgConnection,
    message: &Incoming,
    command: ProcureMaterials,
    calendar: &Calendar,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let cause = Cause::from_incoming(message);
    let today = calendar.today();
    if i32::try_from(command.revision).is_err() {
        // Redelivery gives the same answer: the message itself is wrong.
        return Err(HandlerError::Rejected(format!(
            "ProcureMaterials for order {order_id}: invalid revision: {} is not a revision number",
            command.revision
        )));
    }
    let requested = revisions::requested(command.revision);
    let items = Items::read(conn, &command.items, &command.needed_by).await?;
    // Taken before the existence check so two replicas handling a re-sent
    // command at once cannot both buy for the order: both lock the same
    // materials, and the second finds the first one's record.
    match locks::lock_order(conn, &order_id, &items.materials()).await? {
        Some(status) if status == STATUS_CANCELLED => {
            let failed = ProcurementFailed {
                order_id: order_id.clone(),
                reason: format!("materials of order {order_id} were cancelled"),
            };
            // One cancellation per order: a re-sent command is refused with
            // the same fact.
            let event = Outgoing::fact(SERVICE, &order_id, &failed, &cause, "cancelled");
            outbox::write(conn, &[event]).await?;
            return Ok(());
        }
        Some(_) => {
            let applied = revisions::applied(conn, &order_id).await?;
            if requested <= applied {
                tracing::info!(
                    requested,
                    applied,
                    "revision already applied, answering again"
                );
                let ordered = revisions::answer(conn, &order_id).await?;
                // The same fact as the first answer: it keeps its event id.
                outbox::write(conn, &[revisions::ordered_fact(&ordered, &cause)]).await?;
                return Ok(());
            }
            let amended = holdings::amend(
                conn, &order_id, &command, &items, requested, calendar, &cause,
            );
            let events = match amended.await {
                Ok(events) => events,
                // Only raised by the checks `amend` makes before its first
                // write: the applied revision stays.
                Err(Error::NotAllowed(reason)) => vec![cannot_procure(&order_id, &reason, &cause)],
                Err(err) => return Err(err.into()),
            };
            outbox::write(conn, &events).await?;
            return Ok(());
        }
        None => {}
    }

    let planned = plan_order(conn, &order_id, &items, today).await?;
    if !planned.plan.problems.is_empty() {
        let event = cannot_procure(&order_id, &planned.plan.problem(), &cause);
        outbox::write(conn, &[event]).await?;
        return Ok(());
    }

    let confirm_by = calendar.confirm_by(today);
    let procured = procure(
        conn, &order_id, &planned, requested, today, confirm_by, &cause,
    );
    let events = match procured.await {
        Ok(events) => events,
        // Only raised by the checks `procure` makes before its first write.
        Err(Error::NotAllowed(reason)) => vec![cannot_procure(&order_id, &reason, &cause)],
        Err(err) => return Err(err.into()),
    };
    outbox::write(conn, &events).await?;
    Ok(())
}

/// Stores the reservations, allocations and purchase orders of the plan as
/// the order's first applied revision, `revision`, and returns the events
/// to announce; `MaterialsOrdered` lists the stock reserved, valued at the
/// offers the plan was netted with ([`costing::stock_issued`]).
async fn procure(
    conn: &mut PgConnection,
    order_id: &str,
    planned: &Planned,
    revision: u32,
    today: NaiveDate,
    confirm_by: NaiveDate,
    cause: &Cause,
) -> Result<Vec<Outgoing>, Error> {
    let plan = &planned.plan;
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
            let (po_id, placed) = purchasing::place_purchase_order(
                conn,
                order_id,
                &line.material,
                purchase,
                None,
                confirm_by,
            )
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
    let purchase_orders = purchasing::purchase_order_ids(conn, order_id).await?;
    let units = catalog::units(conn).await?;
    let issued = costing::stock_issued(&plan.materials, &planned.offers, &units);
    let ordered = revisions::record(
        conn,
        order_id,
        revision,
        &purchase_orders,
        Vec::new(),
        issued,
    )
    .await?;
    events.push(revisions::ordered_fact(&ordered, cause));
    if let Some(ready) = revisions::mark_ready_if_complete(conn, order_id, today).await? {
        tracing::info!("materials ready from stock");
        events.push(revisions::ready_fact(&ready, cause));
    }
    Ok(events)
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn cancel_materials(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CancelMaterials,
    calendar: &Calendar,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let today = calendar.today();
    let counts = match locks::lock_order(conn, &order_id, &[]).await? {
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
    // One cancellation per order: a re-sent command answers the same fact.
    let cause = Cause::from_incoming(message);
    let event = Outgoing::fact(SERVICE, &order_id, &answer, &cause, "cancelled");
    outbox::write(conn, &[event]).await?;
    Ok(())
}
