//! Nonconformance records: one is opened for every failed inspection (by
//! [`super::record`]) and stays open until QA closes it with a disposition.
//! Here they are read, listed, closed and put on the wire.

use chrono::{DateTime, Utc};
use gendan_proto::timestamp_from;
use gendan_proto::v1::{self, NonconformanceStatus};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{LIST_LIMIT, kind_proto};
use crate::Result;
use crate::validate::Disposition;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Nonconformance {
    pub nonconformance_id: Uuid,
    pub inspection_id: Uuid,
    pub order_id: String,
    pub kind: String,
    pub purchase_order_id: String,
    pub lot: String,
    pub summary: String,
    pub status: String,
    pub disposition: Option<String>,
    pub closed_by: Option<String>,
    pub note: String,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

const SELECT_NONCONFORMANCE: &str = "SELECT n.nonconformance_id, n.inspection_id, n.order_id, \
       i.kind, i.purchase_order_id, i.lot, n.summary, n.status, n.disposition, n.closed_by, \
       n.note, n.created_at, n.closed_at \
     FROM nonconformances n JOIN inspections i ON i.inspection_id = n.inspection_id";

/// Reads one nonconformance; `lock` holds its row until the transaction
/// ends (NO KEY UPDATE: its key never changes).
pub async fn find_nonconformance(
    conn: &mut PgConnection,
    nonconformance_id: Uuid,
    lock: bool,
) -> Result<Option<Nonconformance>> {
    let sql = if lock {
        sqlx::AssertSqlSafe(format!(
            "{SELECT_NONCONFORMANCE} WHERE n.nonconformance_id = $1 FOR NO KEY UPDATE OF n"
        ))
    } else {
        sqlx::AssertSqlSafe(format!(
            "{SELECT_NONCONFORMANCE} WHERE n.nonconformance_id = $1"
        ))
    };
    Ok(sqlx::query_as(sql)
        .bind(nonconformance_id)
        .fetch_optional(conn)
        .await?)
}

pub async fn list_nonconformances(
    conn: &mut PgConnection,
    order_id: &str,
    open_only: bool,
) -> Result<Vec<Nonconformance>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{SELECT_NONCONFORMANCE} WHERE ($1 = '' OR n.order_id = $1) AND (NOT $2 OR n.status = 'open') \
         ORDER BY n.created_at, n.nonconformance_id LIMIT $3"
    ));
    Ok(sqlx::query_as(sql)
        .bind(order_id)
        .bind(open_only)
        .bind(LIST_LIMIT)
        .fetch_all(conn)
        .await?)
}

pub async fn close_nonconformance(
    conn: &mut PgConnection,
    nonconformance_id: Uuid,
    disposition: Disposition,
    closed_by: &str,
    note: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE nonconformances SET status = 'closed', disposition = $2, closed_by = $3, note = $4, \
           closed_at = now() WHERE nonconformance_id = $1",
    )
    .bind(nonconformance_id)
    .bind(disposition.code())
    .bind(closed_by)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

pub fn nonconformance_proto(row: &Nonconformance) -> v1::Nonconformance {
    let kind = kind_proto(&row.kind);
    let status = if row.status == "closed" {
        NonconformanceStatus::Closed
    } else {
        NonconformanceStatus::Open
    };
    v1::Nonconformance {
        nonconformance_id: row.nonconformance_id.to_string(),
        order_id: row.order_id.clone(),
        inspection_id: row.inspection_id.to_string(),
        kind: kind as i32,
        purchase_order_id: row.purchase_order_id.clone(),
        lot: row.lot.clone(),
        summary: row.summary.clone(),
        status: status as i32,
        disposition: row
            .disposition
            .as_deref()
            .and_then(Disposition::from_code)
            .map_or(0, |d| d.to_proto() as i32),
        closed_by: row.closed_by.clone().unwrap_or_default(),
        note: row.note.clone(),
        created_at: Some(timestamp_from(row.created_at)),
        closed_at: row.closed_at.map(timestamp_from),
    }
}
