//! Stock, reservations, purchase orders, their allocation to orders, and
//! received lots: the stored state behind every command, WMS receipt and
//! inspection result.
//!
//! Allocation rule (what an order may count on):
//! - **Stock**: an order may use on-hand stock that no *other* order holds.
//!   ProcureMaterials turns what it uses into a reservation for the order,
//!   and announces what it newly reserved, valued at the offer price, as
//!   `MaterialsOrdered.stock_issued` ([`costing`](crate::costing)): the
//!   order's material cost of what it did not buy.
//! - **Open purchase orders**: a PO placed for an order's shortage is
//!   allocated to that order for exactly the shortage; the rest of the PO
//!   (the MOQ surplus) is unallocated. Another order may count on a PO's
//!   quantity still to arrive minus what *other* orders are allocated on it,
//!   and ProcureMaterials records that as its own allocation.
//! - **Receipt**: when a lot passes incoming inspection its quantity enters
//!   stock and, in allocation order (the PO's own order first), becomes a
//!   reservation of each order still waiting on the PO; the surplus stays
//!   free stock.
//! - **Rejection**: a failed lot is returned and re-ordered; allocations the
//!   PO can no longer cover move to the replacement PO, latest claim first.
//! - **Amendment**: an amended order keeps what it holds and nets only the
//!   difference against what no order holds ([`unheld_supplies`]); a surplus
//!   shrinks or cancels its POs and releases its reservations
//!   ([`amendments`](crate::amendments), [`holdings`](crate::holdings)).
//!
//! What the gRPC API shows of these records (an order's materials, a
//! purchase order with its lots) is read by [`views`](crate::views); lots
//! and their inspection are kept by [`lots`](crate::lots).
//!
//! # Locks
//!
//! Netting reads a material's free stock and the unclaimed quantity of its
//! open POs and then claims them: two transactions must not claim the same
//! metre of the same material twice. Every change first takes
//! [`lock_materials`] naming the materials it reads or changes
//! ([`locks`](crate::locks) says which), then rows: a PO and its lots, then
//! orders' `procurements` rows, several at once in ascending order id
//! ([`locks::lock_orders`](crate::locks::lock_orders)).
//!
//! [`lock_materials`] takes one service-wide transaction-scoped advisory
//! lock for any set of materials. A lock per material was built and
//! measured slower on the demo catalogue, where every order needs the same
//! cartons, labels and thread (ADR 0013 has the figures); the callers keep
//! naming their materials so a finer lock can return with lock-free claims.
//! The locks end with the transaction: a replica that dies loses its
//! connection and Postgres releases them. Within one process, the
//! consumers and gRPC calls that take the lock first enter one
//! [`Turnstile`](gendan_messaging::Turnstile), before their transaction
//! begins: the queue for the lock waits in memory, holding no connection
//! and no snapshot, and at most one transaction per replica waits in the
//! database.

use std::collections::HashMap;

use chrono::NaiveDate;
use gendan_proto::date_to_string;
use gendan_proto::v1::PurchaseOrderPlaced;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::netting::{Milli, OnOrder, Purchase, Supply, amount_minor};
use crate::{Error, Result, milli_to_f64};

pub const STATUS_ORDERED: &str = "ordered";
pub const STATUS_READY: &str = "ready";
pub const STATUS_CANCELLED: &str = "cancelled";

/// Key of the service-wide lock ("gendan procurement").
const SERVICE_LOCK_KEY: i64 = 0x6765_6e64_7072_6f63;

/// Locks what netting `materials` reads and claims, until the transaction
/// ends. Today that is one key for every material, the service-wide lock:
/// measured with 50 orders in flight on the demo catalogue, a key per
/// material ran 27 % slower (4.2 against 5.7 orders/s), because every order
/// needs the same cartons, labels and thread, so each change waited on a
/// chain of holders and batches that took their keys message by message
/// deadlocked and ran again (docs/adr/0013). Callers still name their
/// materials, so a finer lock can return once claims no longer need one.
pub async fn lock_materials(conn: &mut PgConnection, materials: &[impl AsRef<str>]) -> Result<()> {
    if materials.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SERVICE_LOCK_KEY)
        .execute(conn)
        .await?;
    Ok(())
}

/// What `order_id` may count on per material (see the module's rule).
pub async fn supplies_for(
    conn: &mut PgConnection,
    order_id: &str,
    materials: &[String],
) -> Result<HashMap<String, Supply>> {
    supplies(conn, Some(order_id), materials).await
}

/// What no order holds per material: stock beyond every reservation and
/// open purchase orders beyond every allocation still to arrive. An order
/// that already holds supply counts that as its own and nets only the
/// difference against this.
pub async fn unheld_supplies(
    conn: &mut PgConnection,
    materials: &[String],
) -> Result<HashMap<String, Supply>> {
    supplies(conn, None, materials).await
}

/// Free stock and open PO quantities per material, not counting what
/// orders other than `own_order` hold (every order's, when `None`).
async fn supplies(
    conn: &mut PgConnection,
    own_order: Option<&str>,
    materials: &[String],
) -> Result<HashMap<String, Supply>> {
    let free: Vec<(String, i64)> = sqlx::query_as(
        "SELECT s.material, (s.on_hand_milli - COALESCE((SELECT sum(r.quantity_milli) \
             FROM reservations r WHERE r.material = s.material \
               AND r.order_id IS DISTINCT FROM $1), 0))::int8 \
         FROM stock s WHERE s.material = ANY($2)",
    )
    .bind(own_order)
    .bind(materials)
    .fetch_all(&mut *conn)
    .await?;
    let open: Vec<(Uuid, String, NaiveDate, i64)> = sqlx::query_as(
        "SELECT p.po_id, p.material, COALESCE(p.confirmed_eta, p.expected_date), \
           (p.quantity_milli - p.accepted_milli - p.rejected_milli \
            - COALESCE((SELECT sum(a.quantity_milli - a.received_milli) FROM po_allocations a \
                        WHERE a.po_id = p.po_id AND a.order_id IS DISTINCT FROM $1), 0))::int8 \
         FROM purchase_orders p \
         WHERE p.status IN ('open', 'confirmed') AND p.material = ANY($2) \
         ORDER BY p.created_at",
    )
    .bind(own_order)
    .bind(materials)
    .fetch_all(&mut *conn)
    .await?;
    let mut supplies: HashMap<String, Supply> = HashMap::new();
    for (material, free_stock) in free {
        supplies.entry(material).or_default().free_stock = free_stock.max(0);
    }
    for (po_id, material, expected, available) in open {
        if available > 0 {
            supplies
                .entry(material)
                .or_default()
                .on_order
                .push(OnOrder {
                    purchase_order_id: po_id.to_string(),
                    available,
                    expected,
                });
        }
    }
    Ok(supplies)
}

/// The procurement status of an order, locked for the transaction.
pub async fn status_for_update(conn: &mut PgConnection, order_id: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT status FROM procurements WHERE order_id = $1 FOR NO KEY UPDATE")
            .bind(order_id)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn insert_procurement(
    conn: &mut PgConnection,
    order_id: &str,
    status: &str,
    expected_ready_date: NaiveDate,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO procurements (order_id, status, expected_ready_date) VALUES ($1, $2, $3)",
    )
    .bind(order_id)
    .bind(status)
    .bind(expected_ready_date)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_requirement(
    conn: &mut PgConnection,
    order_id: &str,
    material: &str,
    required: Milli,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO requirements (order_id, material, required_milli) VALUES ($1, $2, $3)",
    )
    .bind(order_id)
    .bind(material)
    .bind(required)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds `quantity` to the order's reservation of `material`.
pub async fn reserve(
    conn: &mut PgConnection,
    order_id: &str,
    material: &str,
    quantity: Milli,
) -> Result<()> {
    if quantity <= 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO reservations (order_id, material, quantity_milli) VALUES ($1, $2, $3) \
         ON CONFLICT (order_id, material) DO UPDATE \
           SET quantity_milli = reservations.quantity_milli + EXCLUDED.quantity_milli",
    )
    .bind(order_id)
    .bind(material)
    .bind(quantity)
    .execute(conn)
    .await?;
    Ok(())
}

/// Allocates `quantity` of purchase order `po_id` to `order_id`.
pub async fn allocate(
    conn: &mut PgConnection,
    po_id: Uuid,
    order_id: &str,
    quantity: Milli,
) -> Result<()> {
    if quantity <= 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO po_allocations (po_id, order_id, quantity_milli) VALUES ($1, $2, $3) \
         ON CONFLICT (po_id, order_id) DO UPDATE \
           SET quantity_milli = po_allocations.quantity_milli + EXCLUDED.quantity_milli",
    )
    .bind(po_id)
    .bind(order_id)
    .bind(quantity)
    .execute(conn)
    .await?;
    Ok(())
}

/// Places a purchase order for `order_id`, to be confirmed by the supplier
/// by `confirm_by`, and returns its announcement.
pub async fn place_purchase_order(
    conn: &mut PgConnection,
    order_id: &str,
    material: &str,
    purchase: &Purchase,
    replaces: Option<Uuid>,
    confirm_by: NaiveDate,
) -> Result<(Uuid, PurchaseOrderPlaced)> {
    let amount =
        amount_minor(purchase.quantity, purchase.offer.unit_price_minor).ok_or_else(|| {
            Error::NotAllowed(format!(
                "the value of {} of {material:?} at {} does not fit in minor units",
                milli_to_f64(purchase.quantity),
                purchase.offer.unit_price_minor
            ))
        })?;
    let po_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO purchase_orders (po_id, order_id, supplier, material, quantity_milli, \
           unit_price_minor, amount_minor, currency, expected_date, status, replaces, \
           confirm_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $11)",
    )
    .bind(po_id)
    .bind(order_id)
    .bind(&purchase.offer.supplier)
    .bind(material)
    .bind(purchase.quantity)
    .bind(purchase.offer.unit_price_minor)
    .bind(amount)
    .bind(&purchase.offer.currency)
    .bind(purchase.expected)
    .bind(replaces)
    .bind(confirm_by)
    .execute(conn)
    .await?;
    let placed = PurchaseOrderPlaced {
        order_id: order_id.to_owned(),
        purchase_order_id: po_id.to_string(),
        supplier: purchase.offer.supplier.clone(),
        material: material.to_owned(),
        quantity: milli_to_f64(purchase.quantity),
        amount_minor: amount,
        currency: purchase.offer.currency.clone(),
        expected_date: date_to_string(purchase.expected),
    };
    Ok((po_id, placed))
}

/// Purchase orders that supply `order_id`: placed for it, or allocated to it.
/// Both are looked up by order (an `OR` across the two would read every
/// purchase order).
pub async fn purchase_order_ids(conn: &mut PgConnection, order_id: &str) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT p.po_id FROM purchase_orders p \
         WHERE p.po_id IN (SELECT po_id FROM purchase_orders WHERE order_id = $1 \
                           UNION ALL SELECT po_id FROM po_allocations WHERE order_id = $1) \
         ORDER BY p.created_at, p.po_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?)
}

/// When everything the order waits for should be in: the latest expected
/// date (the confirmed ETA where there is one) of the open purchase orders
/// it still expects goods from (an allocation not yet received), and never
/// before `today`. A PO placed for it that it no longer expects anything
/// from (reduced by an amendment, or only its MOQ surplus left) does not
/// count, as it does not for readiness ([`revisions`](crate::revisions)).
pub async fn expected_ready_date(
    conn: &mut PgConnection,
    order_id: &str,
    today: NaiveDate,
) -> Result<NaiveDate> {
    // From the order's allocations (one per PO), not from every open PO.
    let latest: Option<NaiveDate> = sqlx::query_scalar(
        "SELECT max(COALESCE(p.confirmed_eta, p.expected_date)) FROM po_allocations a \
         JOIN purchase_orders p ON p.po_id = a.po_id \
         WHERE a.order_id = $1 AND a.received_milli < a.quantity_milli \
           AND p.status IN ('open', 'confirmed')",
    )
    .bind(order_id)
    .fetch_one(conn)
    .await?;
    Ok(latest.map_or(today, |date| date.max(today)))
}

pub async fn set_expected_ready_date(
    conn: &mut PgConnection,
    order_id: &str,
    date: NaiveDate,
) -> Result<()> {
    sqlx::query(
        "UPDATE procurements SET expected_ready_date = $2, updated_at = now() WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(date)
    .execute(conn)
    .await?;
    Ok(())
}

/// A purchase order as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PoRow {
    pub po_id: Uuid,
    pub order_id: String,
    pub supplier: String,
    pub material: String,
    pub quantity_milli: i64,
    pub unit_price_minor: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub expected_date: NaiveDate,
    pub confirmed_eta: Option<NaiveDate>,
    pub status: String,
    pub accepted_milli: i64,
    pub rejected_milli: i64,
    pub replaces: Option<Uuid>,
}

impl PoRow {
    pub fn is_open(&self) -> bool {
        self.status == "open" || self.status == "confirmed"
    }

    /// The date it should arrive: the supplier's confirmed ETA, else the
    /// lead-time date.
    pub fn expected(&self) -> NaiveDate {
        self.confirmed_eta.unwrap_or(self.expected_date)
    }
}

pub async fn find_po(
    conn: &mut PgConnection,
    po_id: Uuid,
    for_update: bool,
) -> Result<Option<PoRow>> {
    let sql = if for_update {
        "SELECT po_id, order_id, supplier, material, quantity_milli, unit_price_minor, \
           amount_minor, currency, expected_date, confirmed_eta, status, accepted_milli, \
           rejected_milli, replaces FROM purchase_orders WHERE po_id = $1 FOR NO KEY UPDATE"
    } else {
        "SELECT po_id, order_id, supplier, material, quantity_milli, unit_price_minor, \
           amount_minor, currency, expected_date, confirmed_eta, status, accepted_milli, \
           rejected_milli, replaces FROM purchase_orders WHERE po_id = $1"
    };
    Ok(sqlx::query_as(sql).bind(po_id).fetch_optional(conn).await?)
}

/// Orders waiting on `po_id`: its own order and every order allocated on it,
/// in allocation order.
pub async fn orders_supplied_by(conn: &mut PgConnection, po: &PoRow) -> Result<Vec<String>> {
    let allocated: Vec<String> =
        sqlx::query_scalar("SELECT order_id FROM po_allocations WHERE po_id = $1 ORDER BY seq")
            .bind(po.po_id)
            .fetch_all(conn)
            .await?;
    let mut orders = vec![po.order_id.clone()];
    for order in allocated {
        if !orders.contains(&order) {
            orders.push(order);
        }
    }
    Ok(orders)
}

/// Records the supplier's confirmed ETA.
pub async fn confirm(conn: &mut PgConnection, po_id: Uuid, eta: NaiveDate) -> Result<()> {
    sqlx::query(
        "UPDATE purchase_orders SET confirmed_eta = $2, status = 'confirmed' WHERE po_id = $1",
    )
    .bind(po_id)
    .bind(eta)
    .execute(conn)
    .await?;
    Ok(())
}

/// Closes the purchase order as received once accepted and rejected
/// quantities cover it and no lot waits for inspection (also after an
/// amendment reduced it).
pub(crate) async fn refresh_po_status(conn: &mut PgConnection, po_id: Uuid) -> Result<()> {
    sqlx::query(
        "UPDATE purchase_orders SET status = 'received' \
         WHERE po_id = $1 AND status IN ('open', 'confirmed') \
           AND accepted_milli + rejected_milli >= quantity_milli \
           AND NOT EXISTS (SELECT 1 FROM lots WHERE po_id = $1 AND status = 'pending')",
    )
    .bind(po_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// What CancelMaterials did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cancelled {
    pub purchase_orders: u32,
    pub reservations: u32,
}

/// Releases the order's reservations and allocations and cancels its open
/// purchase orders. A PO another order still waits on stays open: that
/// order's material is on it.
pub async fn cancel_order(
    conn: &mut PgConnection,
    order_id: &str,
    reason: &str,
) -> Result<Cancelled> {
    let released = sqlx::query("DELETE FROM reservations WHERE order_id = $1")
        .bind(order_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM po_allocations WHERE order_id = $1")
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    let cancelled = sqlx::query(
        "UPDATE purchase_orders p SET status = 'cancelled' \
         WHERE p.order_id = $1 AND p.status IN ('open', 'confirmed') \
           AND NOT EXISTS (SELECT 1 FROM po_allocations a WHERE a.po_id = p.po_id \
                           AND a.order_id <> $1 AND a.received_milli < a.quantity_milli)",
    )
    .bind(order_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let counts = Cancelled {
        purchase_orders: u32::try_from(cancelled).unwrap_or(u32::MAX),
        reservations: u32::try_from(released).unwrap_or(u32::MAX),
    };
    sqlx::query(
        "UPDATE procurements SET status = $2, purchase_orders_cancelled = $3, \
           reservations_released = $4, cancel_reason = $5, updated_at = now() \
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(STATUS_CANCELLED)
    .bind(i32::try_from(counts.purchase_orders).unwrap_or(i32::MAX))
    .bind(i32::try_from(counts.reservations).unwrap_or(i32::MAX))
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(counts)
}

/// The counts stored by an earlier CancelMaterials.
pub async fn cancelled_counts(conn: &mut PgConnection, order_id: &str) -> Result<Cancelled> {
    let (purchase_orders, reservations): (i32, i32) = sqlx::query_as(
        "SELECT purchase_orders_cancelled, reservations_released FROM procurements \
         WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_one(conn)
    .await?;
    Ok(Cancelled {
        purchase_orders: u32::try_from(purchase_orders).unwrap_or(0),
        reservations: u32::try_from(reservations).unwrap_or(0),
    })
}

/// Stock figures of one material.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StockFigures {
    pub on_hand: Milli,
    pub reserved: Milli,
    pub on_order: Milli,
}

pub async fn stock_figures(conn: &mut PgConnection, material: &str) -> Result<StockFigures> {
    let (on_hand, reserved, on_order): (i64, i64, i64) = sqlx::query_as(
        "SELECT COALESCE((SELECT on_hand_milli FROM stock WHERE material = $1), 0), \
           COALESCE((SELECT sum(quantity_milli) FROM reservations WHERE material = $1), 0)::int8, \
           COALESCE((SELECT sum(GREATEST(quantity_milli - accepted_milli - rejected_milli, 0)) \
                     FROM purchase_orders \
                     WHERE material = $1 AND status IN ('open', 'confirmed')), 0)::int8",
    )
    .bind(material)
    .fetch_one(conn)
    .await?;
    Ok(StockFigures {
        on_hand,
        reserved,
        on_order,
    })
}

pub async fn set_on_hand(conn: &mut PgConnection, material: &str, on_hand: Milli) -> Result<()> {
    sqlx::query(
        "INSERT INTO stock (material, on_hand_milli) VALUES ($1, $2) \
         ON CONFLICT (material) DO UPDATE SET on_hand_milli = EXCLUDED.on_hand_milli, \
           updated_at = now()",
    )
    .bind(material)
    .bind(on_hand)
    .execute(conn)
    .await?;
    Ok(())
}
