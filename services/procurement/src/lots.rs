//! Lots the warehouse received against purchase orders, and their incoming
//! inspection: a receipt records a lot as pending ([`wms`](crate::wms)); a
//! passed lot enters stock and becomes the reservation of the orders
//! waiting on its PO, a failed one is returned and counted as rejected
//! ([`inspections`](crate::inspections)). Callers hold the lock of the PO's
//! material ([`locks::lock_po_material`](crate::locks::lock_po_material)).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;
use crate::netting::Milli;
use crate::purchasing::{self, PoRow};

/// A received lot as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LotRow {
    pub po_id: Uuid,
    pub lot: String,
    pub material: String,
    pub quantity_milli: i64,
    pub received_at: DateTime<Utc>,
    pub status: String,
    pub inspection_id: Option<String>,
    pub returned_to_supplier_at: Option<DateTime<Utc>>,
}

/// Lot `lot` of purchase order `po_id`, locked for the transaction.
pub async fn find(conn: &mut PgConnection, po_id: Uuid, lot: &str) -> Result<Option<LotRow>> {
    Ok(sqlx::query_as(
        "SELECT po_id, lot, material, quantity_milli, received_at, status, inspection_id, \
           returned_to_supplier_at FROM lots WHERE po_id = $1 AND lot = $2 FOR NO KEY UPDATE",
    )
    .bind(po_id)
    .bind(lot)
    .fetch_optional(conn)
    .await?)
}

/// Records lot `lot` of `po` as received, waiting for incoming inspection.
pub async fn insert(
    conn: &mut PgConnection,
    po: &PoRow,
    lot: &str,
    quantity: Milli,
    received_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO lots (po_id, lot, material, quantity_milli, received_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(po.po_id)
    .bind(lot)
    .bind(&po.material)
    .bind(quantity)
    .bind(received_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A lot passed incoming inspection: into stock, counted on the PO, and
/// reserved for the orders waiting on the PO in allocation order.
pub async fn accept(
    conn: &mut PgConnection,
    po: &PoRow,
    lot: &LotRow,
    inspection_id: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE lots SET status = 'passed', inspection_id = $3, decided_at = now() \
         WHERE po_id = $1 AND lot = $2",
    )
    .bind(po.po_id)
    .bind(&lot.lot)
    .bind(inspection_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO stock (material, on_hand_milli) VALUES ($1, $2) \
         ON CONFLICT (material) DO UPDATE \
           SET on_hand_milli = stock.on_hand_milli + EXCLUDED.on_hand_milli, updated_at = now()",
    )
    .bind(&po.material)
    .bind(lot.quantity_milli)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE purchase_orders SET accepted_milli = accepted_milli + $2 WHERE po_id = $1")
        .bind(po.po_id)
        .bind(lot.quantity_milli)
        .execute(&mut *conn)
        .await?;

    let waiting: Vec<(String, i64)> = sqlx::query_as(
        "SELECT order_id, quantity_milli - received_milli FROM po_allocations \
         WHERE po_id = $1 AND received_milli < quantity_milli ORDER BY seq",
    )
    .bind(po.po_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut left = lot.quantity_milli;
    for (order_id, outstanding) in waiting {
        if left == 0 {
            break;
        }
        let take = left.min(outstanding);
        left -= take;
        sqlx::query(
            "UPDATE po_allocations SET received_milli = received_milli + $3 \
             WHERE po_id = $1 AND order_id = $2",
        )
        .bind(po.po_id)
        .bind(&order_id)
        .bind(take)
        .execute(&mut *conn)
        .await?;
        purchasing::reserve(conn, &order_id, &po.material, take).await?;
    }
    purchasing::refresh_po_status(conn, po.po_id).await
}

/// A lot failed incoming inspection: recorded as returned to the supplier
/// and counted as rejected on the PO. Returns, per order, the quantity the
/// PO can no longer deliver to it (to move to a replacement PO), latest
/// claim first.
pub async fn reject(
    conn: &mut PgConnection,
    po: &PoRow,
    lot: &LotRow,
    inspection_id: &str,
) -> Result<Vec<(String, Milli)>> {
    sqlx::query(
        "UPDATE lots SET status = 'failed', inspection_id = $3, decided_at = now(), \
           returned_to_supplier_at = now() WHERE po_id = $1 AND lot = $2",
    )
    .bind(po.po_id)
    .bind(&lot.lot)
    .bind(inspection_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE purchase_orders SET rejected_milli = rejected_milli + $2 WHERE po_id = $1")
        .bind(po.po_id)
        .bind(lot.quantity_milli)
        .execute(&mut *conn)
        .await?;
    purchasing::refresh_po_status(conn, po.po_id).await?;

    // What the PO can still deliver, against what orders still expect from it.
    // `po` was read before this rejection was counted.
    let still_to_come =
        (po.quantity_milli - po.accepted_milli - po.rejected_milli - lot.quantity_milli).max(0);
    let waiting: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT order_id, quantity_milli, received_milli FROM po_allocations \
         WHERE po_id = $1 AND received_milli < quantity_milli ORDER BY seq DESC",
    )
    .bind(po.po_id)
    .fetch_all(&mut *conn)
    .await?;
    let expected: i64 = waiting.iter().map(|(_, q, r)| q - r).sum();
    let mut excess = (expected - still_to_come).max(0);
    let mut moved = Vec::new();
    for (order_id, quantity, received) in waiting {
        if excess == 0 {
            break;
        }
        let shift = excess.min(quantity - received);
        excess -= shift;
        if quantity - shift == 0 {
            sqlx::query("DELETE FROM po_allocations WHERE po_id = $1 AND order_id = $2")
                .bind(po.po_id)
                .bind(&order_id)
                .execute(&mut *conn)
                .await?;
        } else {
            sqlx::query(
                "UPDATE po_allocations SET quantity_milli = quantity_milli - $3 \
                 WHERE po_id = $1 AND order_id = $2",
            )
            .bind(po.po_id)
            .bind(&order_id)
            .bind(shift)
            .execute(&mut *conn)
            .await?;
        }
        moved.push((order_id, shift));
    }
    Ok(moved)
}

/// Records `replacement` as the PO that re-orders failed lot `lot`.
pub async fn set_replacement(
    conn: &mut PgConnection,
    po_id: Uuid,
    lot: &str,
    replacement: Uuid,
) -> Result<()> {
    sqlx::query("UPDATE lots SET replacement_po_id = $3 WHERE po_id = $1 AND lot = $2")
        .bind(po_id)
        .bind(lot)
        .bind(replacement)
        .execute(conn)
        .await?;
    Ok(())
}
