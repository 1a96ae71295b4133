//! Which revision of an order's items procurement has applied, what it
//! answered for each, and when the order's materials are ready.
//!
//! - `procurements.revision` is the `ProcureMaterials` revision applied: the
//!   first command's (0 counts as 1), then each amendment's. A command of
//!   that revision or an older one changes nothing and is answered with the
//!   applied revision's `MaterialsOrdered`.
//! - `procurement_revisions` keeps each revision's `MaterialsOrdered` as
//!   first announced, so the answer to a re-sent command is the same fact
//!   under the same event id (key `materials:<order>:<revision>`),
//!   adjustments included. Its `stock_issued` (what the revision took from
//!   stock, valued: [`costing::stock_issued`](crate::costing::stock_issued))
//!   is kept in `stock_issues`, one row per material, so the repeat lists
//!   the same issues in the same order and finance, which books them per
//!   line, books none twice. An order procured before revisions were kept
//!   is answered from its purchase orders as they stand, as it was then.
//! - Readiness: an order's materials are ready when, for every material it
//!   needs at the applied revision, its reservation (stock reserved for it
//!   and goods of its purchase orders that passed incoming inspection)
//!   covers the requirement. A lot still due on a purchase order that an
//!   amendment reduced or cancelled, or the MOQ surplus of a PO placed for
//!   the order, is not waited for. `MaterialsReady` carries the revision and
//!   is keyed `materials_ready:<order>:<revision>`: announced once per
//!   revision (only an order in `ordered` becomes `ready`, and an amendment
//!   puts a ready order back to `ordered` once). Readiness is decided with
//!   the order's row held: a PO's news changes an order's reservations
//!   under the PO's material's lock only, so the row is what orders two
//!   decisions about one order (see [`mark_ready_if_complete`]).

use chrono::NaiveDate;
use gendan_messaging::{Cause, Outgoing};
use gendan_proto::date_to_string;
use gendan_proto::v1::{MaterialsOrdered, MaterialsReady, StockIssue};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::purchasing::{self, STATUS_ORDERED, STATUS_READY};
use crate::{Result, SERVICE};

/// The revision a command asks for: 0 (a sender that predates revisions)
/// is the first.
pub fn requested(revision: u32) -> u32 {
    revision.max(1)
}

fn to_db(revision: u32) -> i32 {
    i32::try_from(revision).unwrap_or(i32::MAX)
}

/// A stored revision as the wire carries it (never below 1).
pub(crate) fn from_db(revision: i32) -> u32 {
    u32::try_from(revision).unwrap_or(1).max(1)
}

/// The revision applied for `order_id`.
pub async fn applied(conn: &mut PgConnection, order_id: &str) -> Result<u32> {
    let revision: i32 = sqlx::query_scalar("SELECT revision FROM procurements WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(conn)
        .await?;
    Ok(from_db(revision))
}

/// Stores the answer of `revision` — the order's expected ready date as
/// set, `purchase_order_ids`, `adjustments` and `stock_issued` —, makes it
/// the applied revision and returns it.
pub async fn record(
    conn: &mut PgConnection,
    order_id: &str,
    revision: u32,
    purchase_order_ids: &[Uuid],
    adjustments: Vec<String>,
    stock_issued: Vec<StockIssue>,
) -> Result<MaterialsOrdered> {
    let expected: NaiveDate =
        sqlx::query_scalar("SELECT expected_ready_date FROM procurements WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query(
        "INSERT INTO procurement_revisions \
           (order_id, revision, purchase_order_ids, expected_ready_date, adjustments) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id, revision) DO NOTHING",
    )
    .bind(order_id)
    .bind(to_db(revision))
    .bind(purchase_order_ids)
    .bind(expected)
    .bind(&adjustments)
    .execute(&mut *conn)
    .await?;
    for issue in &stock_issued {
        sqlx::query(
            "INSERT INTO stock_issues \
               (order_id, revision, material, quantity_milli, unit, amount_minor, currency) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (order_id, revision, material) DO NOTHING",
        )
        .bind(order_id)
        .bind(to_db(revision))
        .bind(&issue.material)
        .bind(issue.quantity_milli)
        .bind(&issue.unit)
        .bind(issue.amount_minor)
        .bind(&issue.currency)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("UPDATE procurements SET revision = $2, updated_at = now() WHERE order_id = $1")
        .bind(order_id)
        .bind(to_db(revision))
        .execute(conn)
        .await?;
    Ok(MaterialsOrdered {
        order_id: order_id.to_owned(),
        purchase_order_ids: purchase_order_ids.iter().map(Uuid::to_string).collect(),
        expected_ready_date: date_to_string(expected),
        revision,
        adjustments,
        stock_issued,
    })
}

/// The applied revision's `MaterialsOrdered`, as first announced.
pub async fn answer(conn: &mut PgConnection, order_id: &str) -> Result<MaterialsOrdered> {
    let revision = applied(conn, order_id).await?;
    let stored: Option<(Vec<Uuid>, NaiveDate, Vec<String>)> = sqlx::query_as(
        "SELECT purchase_order_ids, expected_ready_date, adjustments FROM procurement_revisions \
         WHERE order_id = $1 AND revision = $2",
    )
    .bind(order_id)
    .bind(to_db(revision))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((ids, expected, adjustments)) = stored {
        let stock_issued = stored_stock_issues(conn, order_id, revision).await?;
        return Ok(MaterialsOrdered {
            order_id: order_id.to_owned(),
            purchase_order_ids: ids.iter().map(Uuid::to_string).collect(),
            expected_ready_date: date_to_string(expected),
            revision,
            adjustments,
            stock_issued,
        });
    }
    // Procured before revisions were kept: the answer as it was made then.
    let expected: NaiveDate =
        sqlx::query_scalar("SELECT expected_ready_date FROM procurements WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&mut *conn)
            .await?;
    let ids = purchasing::purchase_order_ids(conn, order_id).await?;
    Ok(MaterialsOrdered {
        order_id: order_id.to_owned(),
        purchase_order_ids: ids.iter().map(Uuid::to_string).collect(),
        expected_ready_date: date_to_string(expected),
        revision,
        adjustments: Vec::new(),
        stock_issued: Vec::new(),
    })
}

/// The stock issues stored with `revision`, in the order first announced:
/// by material code as Rust orders it, which is byte order (`COLLATE "C"`,
/// not the database's locale).
async fn stored_stock_issues(
    conn: &mut PgConnection,
    order_id: &str,
    revision: u32,
) -> Result<Vec<StockIssue>> {
    let rows: Vec<(String, i64, String, i64, String)> = sqlx::query_as(
        "SELECT material, quantity_milli, unit, amount_minor, currency FROM stock_issues \
         WHERE order_id = $1 AND revision = $2 ORDER BY material COLLATE \"C\"",
    )
    .bind(order_id)
    .bind(to_db(revision))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(material, quantity_milli, unit, amount_minor, currency)| StockIssue {
                material,
                quantity_milli,
                unit,
                amount_minor,
                currency,
            },
        )
        .collect())
}

/// `ordered` as the fact of its revision: announced again, it keeps its
/// event id.
pub fn ordered_fact(ordered: &MaterialsOrdered, cause: &Cause) -> Outgoing {
    let key = format!("materials:{}:{}", ordered.order_id, ordered.revision);
    Outgoing::fact(SERVICE, &ordered.order_id, ordered, cause, &key)
}

/// `ready` as the fact of its revision: once per revision.
pub fn ready_fact(ready: &MaterialsReady, cause: &Cause) -> Outgoing {
    let key = format!("materials_ready:{}:{}", ready.order_id, ready.revision);
    Outgoing::fact(SERVICE, &ready.order_id, ready, cause, &key)
}

/// Open purchase orders the order still expects goods from (an allocation
/// not yet received), in placing order.
pub async fn awaited_purchase_order_ids(
    conn: &mut PgConnection,
    order_id: &str,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT p.po_id FROM purchase_orders p \
         JOIN po_allocations a ON a.po_id = p.po_id AND a.order_id = $1 \
         WHERE p.status IN ('open', 'confirmed') AND a.received_milli < a.quantity_milli \
         ORDER BY p.created_at, p.po_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?)
}

/// An amendment of a ready order may need more: it waits again (and is
/// told ready again, for the new revision, once it is).
pub async fn reopen(conn: &mut PgConnection, order_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE procurements SET status = $2, ready_on = NULL, updated_at = now() \
         WHERE order_id = $1 AND status = $3",
    )
    .bind(order_id)
    .bind(STATUS_ORDERED)
    .bind(STATUS_READY)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the order ready and returns `MaterialsReady` of the applied
/// revision when its reservations cover every material it needs (see the
/// module's rule). Only an order in `ordered` can become ready, so the
/// event is announced once per revision. One statement, reading only the
/// order's own requirements and reservations, by their keys.
///
/// The caller holds the order's row already (it inserted it, or locked it
/// with [`purchasing::status_for_update`] or
/// [`locks::lock_orders`](crate::locks::lock_orders)), after writing the
/// reservations it changed. The statement then starts after every earlier
/// holder committed and counts their reservations too: two lots of one
/// order's materials accepted at once, each under its own material's lock,
/// are decided one after the other, and the second sees both. Alone, the
/// statement would not do: it judges the reservations as of its start and
/// does not even lock a row it finds short, so each of the two would miss
/// the other's reservation, not yet committed, and neither would mark the
/// order ready.
pub async fn mark_ready_if_complete(
    conn: &mut PgConnection,
    order_id: &str,
    today: NaiveDate,
) -> Result<Option<MaterialsReady>> {
    let revision: Option<i32> = sqlx::query_scalar(
        "UPDATE procurements SET status = $2, ready_on = $3, updated_at = now() \
         WHERE order_id = $1 AND status = $4 AND NOT EXISTS ( \
           SELECT 1 FROM requirements q \
           LEFT JOIN reservations r ON r.order_id = q.order_id AND r.material = q.material \
           WHERE q.order_id = $1 AND q.required_milli > COALESCE(r.quantity_milli, 0)) \
         RETURNING revision",
    )
    .bind(order_id)
    .bind(STATUS_READY)
    .bind(today)
    .bind(STATUS_ORDERED)
    .fetch_optional(conn)
    .await?;
    Ok(revision.map(|revision| MaterialsReady {
        order_id: order_id.to_owned(),
        ready_on: date_to_string(today),
        revision: from_db(revision),
    }))
}
