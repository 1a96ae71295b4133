//! SQL for amendments: rows in, `gendan.v1.Amendment` messages out, and
//! the write that applies an amendment to the order.
//!
//! Like [`crate::store`], every function takes the executor it runs on so
//! the caller decides the transaction. AmendOrder holds the order's row
//! lock ([`crate::store::lock_state`]) before it reads the next number or
//! looks up a request id, so two amendments of one order are numbered and
//! applied one after the other. The lines before and after are kept as
//! JSON snapshots ([`StoredLine`]); the order's current lines stay in
//! `order_lines`, which [`apply`] replaces.

use chrono::{DateTime, NaiveDate, Utc};
use gendan_proto::v1::{Amendment, OrderLine};
use gendan_proto::{date_to_string, timestamp_from};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::validate::NewLine;

/// The `order_amendments` columns a [`StoredAmendment`] reads; a macro so
/// queries stay `&'static str`.
macro_rules! amendment_columns {
    () => {
        "amendment_id, order_id, number, client_request_id, reason, requested_by, phase, \
         lines_before, lines_after, requested_date_before, requested_date_after, \
         total_before_minor, total_after_minor, changes, amended_at"
    };
}

/// One order line in an amendment's JSON snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLine {
    pub product: String,
    pub spec: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

impl StoredLine {
    pub fn of(line: &OrderLine) -> Self {
        StoredLine {
            product: line.product.clone(),
            spec: line.spec.clone(),
            quantity: line.quantity,
            unit_price_minor: line.unit_price_minor,
        }
    }

    pub fn to_line(&self) -> OrderLine {
        OrderLine {
            product: self.product.clone(),
            spec: self.spec.clone(),
            quantity: self.quantity,
            unit_price_minor: self.unit_price_minor,
        }
    }
}

/// One amendment as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredAmendment {
    pub amendment_id: Uuid,
    pub order_id: Uuid,
    /// 1, 2, … per order.
    pub number: i32,
    pub client_request_id: String,
    pub reason: String,
    pub requested_by: String,
    /// The `Phase` number the order was in when amended.
    pub phase: i32,
    pub lines_before: Json<Vec<StoredLine>>,
    pub lines_after: Json<Vec<StoredLine>>,
    pub requested_date_before: NaiveDate,
    pub requested_date_after: NaiveDate,
    pub total_before_minor: i64,
    pub total_after_minor: i64,
    pub changes: Vec<String>,
    pub amended_at: DateTime<Utc>,
}

impl StoredAmendment {
    pub fn to_amendment(&self) -> Amendment {
        Amendment {
            amendment_id: self.amendment_id.to_string(),
            order_id: self.order_id.to_string(),
            // Written from a u32 and checked positive by the table.
            number: u32::try_from(self.number).unwrap_or(0),
            reason: self.reason.clone(),
            requested_by: self.requested_by.clone(),
            amended_at: Some(timestamp_from(self.amended_at)),
            phase: self.phase,
            lines_before: self
                .lines_before
                .0
                .iter()
                .map(StoredLine::to_line)
                .collect(),
            lines_after: self.lines_after.0.iter().map(StoredLine::to_line).collect(),
            requested_date_before: date_to_string(self.requested_date_before),
            requested_date_after: date_to_string(self.requested_date_after),
            total_before_minor: self.total_before_minor,
            total_after_minor: self.total_after_minor,
            changes: self.changes.clone(),
        }
    }
}

/// The amendment an earlier AmendOrder with `client_request_id` made on
/// the order, if any.
pub async fn by_request(
    conn: &mut PgConnection,
    order_id: Uuid,
    client_request_id: &str,
) -> sqlx::Result<Option<StoredAmendment>> {
    sqlx::query_as(concat!(
        "SELECT ",
        amendment_columns!(),
        " FROM order_amendments WHERE order_id = $1 AND client_request_id = $2"
    ))
    .bind(order_id)
    .bind(client_request_id)
    .fetch_optional(conn)
    .await
}

/// Another order an amendment with `client_request_id` was made on, if any.
pub async fn other_order_of_request(
    conn: &mut PgConnection,
    client_request_id: &str,
    order_id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT order_id FROM order_amendments \
         WHERE client_request_id = $1 AND order_id <> $2 LIMIT 1",
    )
    .bind(client_request_id)
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// The number the order's next amendment gets (1 for the first).
pub async fn next_number(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM order_amendments WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_one(conn)
    .await
}

/// Inserts `amendment` as it is (the caller built it, so what it returns
/// equals what ListAmendments reads back).
pub async fn insert(conn: &mut PgConnection, amendment: &StoredAmendment) -> sqlx::Result<()> {
    sqlx::query(concat!(
        "INSERT INTO order_amendments (",
        amendment_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    ))
    .bind(amendment.amendment_id)
    .bind(amendment.order_id)
    .bind(amendment.number)
    .bind(&amendment.client_request_id)
    .bind(&amendment.reason)
    .bind(&amendment.requested_by)
    .bind(amendment.phase)
    .bind(Json(&amendment.lines_before.0))
    .bind(Json(&amendment.lines_after.0))
    .bind(amendment.requested_date_before)
    .bind(amendment.requested_date_after)
    .bind(amendment.total_before_minor)
    .bind(amendment.total_after_minor)
    .bind(&amendment.changes)
    .bind(amendment.amended_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The order's amendments, oldest first.
pub async fn list(
    executor: impl PgExecutor<'_>,
    order_id: Uuid,
) -> sqlx::Result<Vec<StoredAmendment>> {
    sqlx::query_as(concat!(
        "SELECT ",
        amendment_columns!(),
        " FROM order_amendments WHERE order_id = $1 ORDER BY number"
    ))
    .bind(order_id)
    .fetch_all(executor)
    .await
}

/// The order's latest amendment, if it has any.
pub async fn latest(
    executor: impl PgExecutor<'_>,
    order_id: Uuid,
) -> sqlx::Result<Option<StoredAmendment>> {
    sqlx::query_as(concat!(
        "SELECT ",
        amendment_columns!(),
        " FROM order_amendments WHERE order_id = $1 ORDER BY number DESC LIMIT 1"
    ))
    .bind(order_id)
    .fetch_optional(executor)
    .await
}

/// Gives the order its amended lines, total and requested date; `false`
/// when the order is closed (the caller holds the row lock and has checked,
/// so `false` is a bug there).
pub async fn apply(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[NewLine],
    total_minor: i64,
    requested_delivery_date: NaiveDate,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE orders SET total_minor = $2, requested_delivery_date = $3, updated_at = $4 \
         WHERE order_id = $1 AND closed_at IS NULL",
    )
    .bind(order_id)
    .bind(total_minor)
    .bind(requested_delivery_date)
    .bind(at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated != 1 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM order_lines WHERE order_id = $1")
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    crate::store::insert_lines(conn, order_id, lines).await?;
    Ok(true)
}
