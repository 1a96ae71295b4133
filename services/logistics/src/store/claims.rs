//! Carrier claims for cargo lost or damaged in transit (`cargo_claims`),
//! one per order, booking and kind, and the quantity shipped under a
//! booking that a claim is checked against.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::Result;

/// One claim against the carrier.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Claim {
    pub claim_id: String,
    pub order_id: String,
    pub booking_reference: String,
    /// `lost` or `damaged`.
    pub kind: String,
    pub description: String,
    pub quantity: i32,
    pub reported_at: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
}

/// Stores `claim` unless the order already has a claim of its kind on its
/// booking. True when it was stored.
pub async fn open(conn: &mut PgConnection, claim: &Claim) -> Result<bool> {
    let stored: Option<String> = sqlx::query_scalar(
        "INSERT INTO cargo_claims (claim_id, order_id, booking_reference, kind, description, \
           quantity, reported_at, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (order_id, booking_reference, kind) DO NOTHING RETURNING claim_id",
    )
    .bind(&claim.claim_id)
    .bind(&claim.order_id)
    .bind(&claim.booking_reference)
    .bind(&claim.kind)
    .bind(&claim.description)
    .bind(claim.quantity)
    .bind(claim.reported_at)
    .bind(claim.opened_at)
    .fetch_optional(conn)
    .await?;
    Ok(stored.is_some())
}

/// The order's claims, oldest first.
pub async fn of_order(conn: &mut PgConnection, order_id: &str) -> Result<Vec<Claim>> {
    Ok(sqlx::query_as::<_, Claim>(
        "SELECT claim_id, order_id, booking_reference, kind, description, quantity, \
           reported_at, opened_at FROM cargo_claims WHERE order_id = $1 \
         ORDER BY opened_at, claim_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?)
}

/// Units that travelled under the order's booking `revision`: what the
/// packing list its goods were packed to holds (the warehouse's packed
/// report is checked against the current list before anything ships; a
/// list superseded by an amendment never shipped, and a redelivery's list
/// is its own). A booking shipped before that was recorded counts the
/// current list. 0 without a packing list.
pub async fn shipped_quantity(
    conn: &mut PgConnection,
    order_id: &str,
    booking_revision: i32,
) -> Result<u32> {
    let total: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(c.quantity), 0)::bigint FROM packing_list_cartons c \
         WHERE c.order_id = $1 \
           AND c.revision = COALESCE( \
             (SELECT b.shipped_list_revision FROM bookings b \
              WHERE b.order_id = $1 AND b.revision = $2), \
             (SELECT max(l.revision) FROM packing_lists l WHERE l.order_id = $1))",
    )
    .bind(order_id)
    .bind(booking_revision)
    .fetch_one(conn)
    .await?;
    Ok(u32::try_from(total).unwrap_or(u32::MAX))
}
