//! The stored side of an amended order's materials: what an order holds per
//! material ([`load`]), netted against its new need by
//! [`amendments`](crate::amendments), and the result applied — requirements,
//! reservations, allocations, purchase orders reduced, cancelled or placed —
//! in the command's transaction. The caller holds the locks of the
//! materials the order holds and its items need, then the order's row
//! ([`locks::lock_order`](crate::locks::lock_order)), as for a first
//! procurement; the items' bills of materials are the ones read for those
//! locks ([`Items`]), so the plan touches no material it did not lock.
//!
//! - [`check`] answers `CheckMaterials` for an order that already holds
//!   supply: what it holds is its own, only the difference is netted (the
//!   standard cost is still of the whole requirement).
//! - [`amend`] carries out a `ProcureMaterials` of a revision above the one
//!   applied and announces `MaterialsOrdered` of that revision with one
//!   human-readable line per change (`adjustments`) and the stock it newly
//!   reserved, valued ([`costing::stock_issued`]), `PurchaseOrderPlaced`
//!   for each PO placed (as the first time), and `MaterialsReady` at once
//!   when everything the order now needs is in. A PO reduced or cancelled
//!   has no event of its own, as a PO cancelled today has none
//!   (`CancelMaterials` answers for the whole order): its adjustment line
//!   says it.

use std::collections::HashMap;

use chrono::NaiveDate;
use gendan_messaging::{Cause, Outgoing};
use gendan_proto::date_to_string;
use gendan_proto::v1::{MaterialShortage, MaterialsChecked, ProcureMaterials};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::amendments::{self, AmendmentPlan, HeldPo, Holding, MaterialChange};
use crate::clock::Calendar;
use crate::costing::{self, MaterialCost};
use crate::locks::Items;
use crate::netting::{self, Milli, Offer};
use crate::{Error, Result, SERVICE, catalog, milli_to_f64, purchasing, revisions};

/// The order's allocations on open purchase orders, oldest PO first, with
/// what the PO delivered and what other orders still expect from it.
const HELD_SQL: &str = "\
SELECT p.po_id, p.material, p.supplier, p.order_id = $1 AS own, \
       COALESCE(p.confirmed_eta, p.expected_date) AS expected, p.quantity_milli, \
       (p.accepted_milli + p.rejected_milli)::int8 AS decided_milli, \
       COALESCE((SELECT sum(l.quantity_milli) FROM lots l WHERE l.po_id = p.po_id), 0)::int8 \
         AS delivered_milli, \
       a.quantity_milli AS allocated_milli, a.received_milli, \
       COALESCE((SELECT sum(o.quantity_milli - o.received_milli) FROM po_allocations o \
                 WHERE o.po_id = p.po_id AND o.order_id <> $1), 0)::int8 AS others_milli \
FROM po_allocations a JOIN purchase_orders p ON p.po_id = a.po_id \
WHERE a.order_id = $1 AND p.status IN ('open', 'confirmed') \
ORDER BY p.created_at, p.po_id";

#[derive(Debug, sqlx::FromRow)]
struct HeldRow {
    po_id: Uuid,
    material: String,
    supplier: String,
    own: bool,
    expected: NaiveDate,
    quantity_milli: i64,
    decided_milli: i64,
    delivered_milli: i64,
    allocated_milli: i64,
    received_milli: i64,
    others_milli: i64,
}

/// What `order_id` holds, by material (see [`Holding`]).
pub async fn load(conn: &mut PgConnection, order_id: &str) -> Result<HashMap<String, Holding>> {
    let reserved: Vec<(String, i64)> = sqlx::query_as(
        "SELECT material, quantity_milli FROM reservations \
         WHERE order_id = $1 AND quantity_milli > 0",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let received: Vec<(String, i64)> = sqlx::query_as(
        "SELECT p.material, sum(a.received_milli)::int8 FROM po_allocations a \
         JOIN purchase_orders p ON p.po_id = a.po_id WHERE a.order_id = $1 GROUP BY p.material",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let rows: Vec<HeldRow> = sqlx::query_as(HELD_SQL)
        .bind(order_id)
        .fetch_all(&mut *conn)
        .await?;
    let materials: Vec<String> = rows.iter().map(|row| row.material.clone()).collect();
    let offers = catalog::offers(conn, &materials).await?;

    let mut holdings: HashMap<String, Holding> = HashMap::new();
    for (material, quantity) in reserved {
        holdings.entry(material).or_default().reserved = quantity;
    }
    for (material, quantity) in received {
        holdings.entry(material).or_default().received = quantity;
    }
    for row in rows {
        // The supplier's minimum today: a PO is not reduced below it.
        let moq = offers
            .get(&row.material)
            .and_then(|offers| offers.iter().find(|offer| offer.supplier == row.supplier))
            .map_or(0, |offer| offer.moq);
        holdings
            .entry(row.material.clone())
            .or_default()
            .on_order
            .push(HeldPo {
                purchase_order_id: row.po_id.to_string(),
                own: row.own,
                expected: row.expected,
                quantity: row.quantity_milli,
                decided: row.decided_milli,
                delivered: row.delivered_milli,
                allocated: row.allocated_milli,
                received: row.received_milli,
                others_outstanding: row.others_milli,
                moq,
            });
    }
    Ok(holdings)
}

/// Whether the order holds any supply: a reservation or something still
/// expected on a purchase order.
pub fn holds_anything(holdings: &HashMap<String, Holding>) -> bool {
    holdings.values().any(|holding| holding.held() > 0)
}

/// Explodes `items` and nets the new need against what the order holds,
/// then against what no order holds; the explosion is costed as for a
/// first check ([`costing`]), and the offers read are returned to value
/// the stock taken. Invalid items are a problem of the plan, as for a
/// first procurement.
async fn plan_for(
    conn: &mut PgConnection,
    holdings: &HashMap<String, Holding>,
    items: &Items,
    today: NaiveDate,
) -> Result<(AmendmentPlan, MaterialCost, HashMap<String, Vec<Offer>>)> {
    let (items, boms) = match items {
        Items::Valid { items, boms } => (items, boms),
        Items::Invalid(problem) => {
            let plan = AmendmentPlan {
                materials: Vec::new(),
                earliest_material_date: today,
                problems: vec![problem.clone()],
            };
            return Ok((plan, MaterialCost::default(), HashMap::new()));
        }
    };
    let (required, _) = netting::explode(items, boms);
    let mut materials: Vec<String> = required.keys().cloned().collect();
    for material in holdings.keys() {
        if !materials.contains(material) {
            materials.push(material.clone());
        }
    }
    let supplies = purchasing::unheld_supplies(conn, &materials).await?;
    let offers = catalog::offers(conn, &materials).await?;
    // Only what the new items require is costed, not what the order holds.
    let cost = costing::material_cost(&required, &offers);
    let plan = amendments::plan(items, boms, holdings, &supplies, &offers, today);
    Ok((plan, cost, offers))
}

/// The answer to `CheckMaterials` for an order that holds supply. A
/// shortage line tells what the order may count on: its own reservation
/// plus free stock, what it expects on POs plus what other POs leave.
pub async fn check(
    conn: &mut PgConnection,
    order_id: &str,
    holdings: &HashMap<String, Holding>,
    items: &Items,
    today: NaiveDate,
) -> Result<MaterialsChecked> {
    let (plan, cost, _) = plan_for(conn, holdings, items, today).await?;
    let units = catalog::units(conn).await?;
    Ok(MaterialsChecked {
        order_id: order_id.to_owned(),
        shortages: plan
            .shortages()
            .map(|change| MaterialShortage {
                material: change.material.clone(),
                unit: units.get(&change.material).cloned().unwrap_or_default(),
                required: milli_to_f64(change.need),
                free_stock: milli_to_f64(change.held_in_stock + change.netted.free_stock),
                on_order: milli_to_f64(change.held_on_order + change.netted.on_order),
                shortage: milli_to_f64(change.netted.shortage),
                // Empty when nobody offers the material.
                earliest_date: change
                    .netted
                    .purchase
                    .as_ref()
                    .map(|_| date_to_string(change.earliest_date))
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

/// What applying a plan did: one line per change, and the events.
#[derive(Default)]
struct Applied {
    adjustments: Vec<String>,
    events: Vec<Outgoing>,
}

/// Carries out `command`, whose items are `items`, as revision `revision`
/// (above the one applied) for an order whose materials are `ordered` or
/// `ready`, and returns the events to announce. `NotAllowed` before
/// anything is written when it cannot be done: invalid items, a product
/// without BOM, a shortfall nobody offers, a purchase value that does not
/// fit.
#[tracing::instrument(skip_all, fields(order_id = %order_id, revision = revision))]
pub async fn amend(
    conn: &mut PgConnection,
    order_id: &str,
    command: &ProcureMaterials,
    items: &Items,
    revision: u32,
    calendar: &Calendar,
    cause: &Cause,
) -> Result<Vec<Outgoing>> {
    let today = calendar.today();
    let mut holdings = load(conn, order_id).await?;
    if command.materials_in_use {
        // Production had begun: the whole reservation is in the goods, and
        // none of it may go back to free stock as if it were still there.
        for holding in holdings.values_mut() {
            holding.received = holding.reserved.max(holding.received);
        }
    }
    if command.remake {
        // The scrapped goods used up what the order held in stock: the need
        // is netted afresh (free stock is the same before and after the
        // consumption, which is written below with the other changes).
        for holding in holdings.values_mut() {
            holding.reserved = 0;
            holding.received = 0;
        }
    }
    let (plan, _, offers) = plan_for(conn, &holdings, items, today).await?;
    if !plan.problems.is_empty() {
        return Err(Error::NotAllowed(plan.problem()));
    }
    // Amounts are checked before anything is written.
    for change in &plan.materials {
        if let Some(purchase) = &change.netted.purchase
            && netting::amount_minor(purchase.quantity, purchase.offer.unit_price_minor).is_none()
        {
            return Err(Error::NotAllowed(format!(
                "the purchase value of material {:?} does not fit in minor units",
                change.material
            )));
        }
    }

    let units = catalog::units(conn).await?;
    let confirm_by = calendar.confirm_by(today);
    set_requirements(conn, order_id, &plan).await?;
    let mut applied = Applied::default();
    if command.remake {
        consume_reservations(conn, order_id, &units, &mut applied).await?;
    }
    for change in &plan.materials {
        let unit = units.get(&change.material).map_or("", String::as_str);
        give_back(conn, order_id, change, unit, revision, &mut applied).await?;
        acquire(
            conn,
            order_id,
            change,
            unit,
            confirm_by,
            cause,
            &mut applied,
        )
        .await?;
        if change.excess > 0 {
            applied.adjustments.push(format!(
                "{} received for the order (or at the dock) stays with it as excess",
                quantity_text(change.excess, unit, &change.material)
            ));
        }
    }

    revisions::reopen(conn, order_id).await?;
    let expected = purchasing::expected_ready_date(conn, order_id, today).await?;
    purchasing::set_expected_ready_date(conn, order_id, expected).await?;
    let awaited = revisions::awaited_purchase_order_ids(conn, order_id).await?;
    tracing::info!(
        adjustments = applied.adjustments.len(),
        expected_ready_date = %expected,
        "amended order's materials adjusted"
    );
    // Only what `acquire` reserved: a release is not credited back.
    let netted = plan.materials.iter().map(|change| &change.netted);
    let issued = costing::stock_issued(netted, &offers, &units);
    let ordered = revisions::record(
        conn,
        order_id,
        revision,
        &awaited,
        applied.adjustments,
        issued,
    )
    .await?;
    let mut events = applied.events;
    events.push(revisions::ordered_fact(&ordered, cause));
    if let Some(ready) = revisions::mark_ready_if_complete(conn, order_id, today).await? {
        tracing::info!("materials of the amended order ready at once");
        events.push(revisions::ready_fact(&ready, cause));
    }
    Ok(events)
}

/// The order's stock reservations went into goods that were scrapped: they
/// leave stock (on hand goes down by them) and the order holds none.
async fn consume_reservations(
    conn: &mut PgConnection,
    order_id: &str,
    units: &HashMap<String, String>,
    applied: &mut Applied,
) -> Result<()> {
    let consumed: Vec<(String, i64)> = sqlx::query_as(
        "WITH consumed AS ( \
           DELETE FROM reservations WHERE order_id = $1 AND quantity_milli > 0 \
           RETURNING material, quantity_milli) \
         UPDATE stock s SET on_hand_milli = s.on_hand_milli - c.quantity_milli, updated_at = now() \
         FROM consumed c WHERE s.material = c.material \
         RETURNING c.material, c.quantity_milli",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut consumed = consumed;
    consumed.sort();
    for (material, quantity) in consumed {
        let unit = units.get(&material).map_or("", String::as_str);
        applied.adjustments.push(format!(
            "{} in stock consumed by the scrapped lot",
            quantity_text(quantity, unit, &material)
        ));
    }
    Ok(())
}

/// The requirements become the new need; a material no longer needed has
/// none (whatever excess it keeps does not make the order wait).
async fn set_requirements(
    conn: &mut PgConnection,
    order_id: &str,
    plan: &AmendmentPlan,
) -> Result<()> {
    let needed: Vec<&MaterialChange> = plan
        .materials
        .iter()
        .filter(|change| change.need > 0)
        .collect();
    let materials: Vec<String> = needed
        .iter()
        .map(|change| change.material.clone())
        .collect();
    sqlx::query("DELETE FROM requirements WHERE order_id = $1 AND material <> ALL($2)")
        .bind(order_id)
        .bind(&materials)
        .execute(&mut *conn)
        .await?;
    for change in needed {
        sqlx::query(
            "INSERT INTO requirements (order_id, material, required_milli) VALUES ($1, $2, $3) \
             ON CONFLICT (order_id, material) DO UPDATE \
               SET required_milli = EXCLUDED.required_milli",
        )
        .bind(order_id)
        .bind(&change.material)
        .bind(change.need)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Gives the surplus of one material back: allocations cut (POs reduced or
/// cancelled with them), then the reservation released.
async fn give_back(
    conn: &mut PgConnection,
    order_id: &str,
    change: &MaterialChange,
    unit: &str,
    revision: u32,
    applied: &mut Applied,
) -> Result<()> {
    let material = change.material.as_str();
    for cut in &change.cuts {
        let po_id = po_uuid(&cut.purchase_order_id)?;
        if cut.allocated_after == 0 {
            sqlx::query("DELETE FROM po_allocations WHERE po_id = $1 AND order_id = $2")
                .bind(po_id)
                .bind(order_id)
                .execute(&mut *conn)
                .await?;
        } else {
            sqlx::query(
                "UPDATE po_allocations SET quantity_milli = $3 WHERE po_id = $1 AND order_id = $2",
            )
            .bind(po_id)
            .bind(order_id)
            .bind(cut.allocated_after)
            .execute(&mut *conn)
            .await?;
        }
        let line = if cut.cancelled {
            sqlx::query(
                "UPDATE purchase_orders SET status = 'cancelled', cancel_reason = $2 \
                 WHERE po_id = $1 AND status IN ('open', 'confirmed')",
            )
            .bind(po_id)
            .bind(format!("order {order_id} amended (revision {revision})"))
            .execute(&mut *conn)
            .await?;
            format!(
                "PO {po_id} cancelled ({} no longer needed)",
                quantity_text(cut.cut, unit, material)
            )
        } else if cut.quantity_after < cut.quantity_before {
            reduce(conn, po_id, cut.quantity_after).await?;
            let reduced = format!(
                "PO {po_id} reduced {} → {}",
                milli_to_f64(cut.quantity_before),
                quantity_text(cut.quantity_after, unit, material)
            );
            if cut.quantity_after > cut.quantity_before - cut.cut {
                // A floor held it (the supplier's minimum, goods delivered,
                // other orders): the rest stays on order, unallocated.
                format!(
                    "{reduced}; {} released from this order",
                    quantity_text(cut.cut, unit, material)
                )
            } else {
                reduced
            }
        } else {
            format!(
                "{} on PO {po_id} released from this order",
                quantity_text(cut.cut, unit, material)
            )
        };
        tracing::info!(
            purchase_order_id = %po_id,
            %material,
            cut = milli_to_f64(cut.cut),
            quantity = milli_to_f64(cut.quantity_after),
            cancelled = cut.cancelled,
            "purchase order quantity given back"
        );
        applied.adjustments.push(line);
    }
    if change.released > 0 {
        sqlx::query(
            "UPDATE reservations SET quantity_milli = quantity_milli - $3 \
             WHERE order_id = $1 AND material = $2",
        )
        .bind(order_id)
        .bind(material)
        .bind(change.released)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "DELETE FROM reservations WHERE order_id = $1 AND material = $2 AND quantity_milli = 0",
        )
        .bind(order_id)
        .bind(material)
        .execute(&mut *conn)
        .await?;
        applied.adjustments.push(format!(
            "reservation of {} released",
            quantity_text(change.released, unit, material)
        ));
    }
    Ok(())
}

/// A purchase order's quantity (and value) lowered to `quantity`; closed as
/// received when what came in already covers it.
async fn reduce(conn: &mut PgConnection, po_id: Uuid, quantity: Milli) -> Result<()> {
    let po = purchasing::find_po(conn, po_id, true)
        .await?
        .ok_or_else(|| Error::UnknownPurchaseOrder(po_id.to_string()))?;
    // Less than a value that fitted, so it fits.
    let amount = netting::amount_minor(quantity, po.unit_price_minor).unwrap_or(po.amount_minor);
    sqlx::query(
        "UPDATE purchase_orders SET quantity_milli = $2, amount_minor = $3 WHERE po_id = $1",
    )
    .bind(po_id)
    .bind(quantity)
    .bind(amount)
    .execute(&mut *conn)
    .await?;
    purchasing::refresh_po_status(conn, po_id).await
}

/// Covers the shortfall of one material as a first procurement does: stock
/// reserved, quantities claimed on open POs, a PO placed for the rest.
async fn acquire(
    conn: &mut PgConnection,
    order_id: &str,
    change: &MaterialChange,
    unit: &str,
    confirm_by: NaiveDate,
    cause: &Cause,
    applied: &mut Applied,
) -> Result<()> {
    let material = change.material.as_str();
    let netted = &change.netted;
    if netted.from_stock > 0 {
        purchasing::reserve(conn, order_id, material, netted.from_stock).await?;
        applied.adjustments.push(format!(
            "{} reserved from stock",
            quantity_text(netted.from_stock, unit, material)
        ));
    }
    for (po_id, quantity) in &netted.from_orders {
        let po_id = po_uuid(po_id)?;
        purchasing::allocate(conn, po_id, order_id, *quantity).await?;
        applied.adjustments.push(format!(
            "{} claimed on PO {po_id}",
            quantity_text(*quantity, unit, material)
        ));
    }
    if let Some(purchase) = &netted.purchase {
        let (po_id, placed) =
            purchasing::place_purchase_order(conn, order_id, material, purchase, None, confirm_by)
                .await?;
        purchasing::allocate(conn, po_id, order_id, netted.shortage).await?;
        tracing::info!(
            purchase_order_id = %po_id,
            %material,
            supplier = %purchase.offer.supplier,
            quantity = placed.quantity,
            "purchase order placed"
        );
        let mut line = format!(
            "PO {po_id} placed for {}",
            quantity_text(purchase.quantity, unit, material)
        );
        if purchase.quantity > netted.shortage {
            line.push_str(&format!(
                " ({} for this order, the supplier's minimum is {})",
                milli_to_f64(netted.shortage),
                milli_to_f64(purchase.offer.moq)
            ));
        }
        applied.adjustments.push(line);
        applied
            .events
            .push(Outgoing::event(SERVICE, order_id, &placed, cause));
    }
    Ok(())
}

/// "15.3 m fabric".
fn quantity_text(milli: Milli, unit: &str, material: &str) -> String {
    if unit.is_empty() {
        format!("{} {material}", milli_to_f64(milli))
    } else {
        format!("{} {unit} {material}", milli_to_f64(milli))
    }
}

/// The ids came from the database a moment ago.
fn po_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| {
        Error::Database(sqlx::Error::Protocol(format!(
            "bad purchase order id {text}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_with_their_unit() {
        assert_eq!(quantity_text(15_300, "m", "fabric"), "15.3 m fabric");
        assert_eq!(quantity_text(720_000, "pcs", "button"), "720 pcs button");
        assert_eq!(quantity_text(1, "", "thread"), "0.001 thread");
    }
}
