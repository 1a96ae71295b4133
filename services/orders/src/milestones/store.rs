//! SQL for the calendar read model: the version and the incomplete notes on
//! the `orders` row, one `order_milestones` row per milestone.
//!
//! [`save`] replaces the snapshot in three statements whatever its size: the
//! version-guarded update of the order row decides, and only when it
//! applied are the dropped milestones deleted and the others upserted from
//! arrays. [`calendar`] and [`milestones`] read it back on the caller's
//! connection, so the API can read both from one snapshot.

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Entry, Snapshot};

/// Stores `snapshot` as the order's calendar when its version is newer than
/// the one held and the order is open; `false` (nothing written) otherwise:
/// an older or repeated version, a closed order (read-only), or an unknown
/// one.
pub async fn save(
    conn: &mut PgConnection,
    order_id: Uuid,
    snapshot: &Snapshot,
) -> sqlx::Result<bool> {
    // The row lock this update takes also orders two replicas saving
    // versions of the same order: the second re-reads the version the
    // first wrote before it decides.
    let next = snapshot.next_milestone();
    let updated = sqlx::query(
        "UPDATE orders SET calendar_version = $2, calendar_incomplete = $3, \
           next_milestone = $4, next_milestone_date = $5 \
         WHERE order_id = $1 AND closed_at IS NULL AND calendar_version < $2",
    )
    .bind(order_id)
    .bind(snapshot.version)
    .bind(&snapshot.incomplete)
    .bind(next.map_or("", |entry| entry.label.as_str()))
    .bind(next.and_then(|entry| entry.projected))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }

    let entries = &snapshot.milestones;
    let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    sqlx::query("DELETE FROM order_milestones WHERE order_id = $1 AND key <> ALL($2::text[])")
        .bind(order_id)
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
    if entries.is_empty() {
        return Ok(true);
    }

    let positions: Vec<i32> = (1..).take(entries.len()).collect();
    let kinds: Vec<i32> = entries.iter().map(|e| e.kind).collect();
    let subjects: Vec<&str> = entries.iter().map(|e| e.subject.as_str()).collect();
    let labels: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
    let planned: Vec<Option<NaiveDate>> = entries.iter().map(|e| e.planned).collect();
    let projected: Vec<Option<NaiveDate>> = entries.iter().map(|e| e.projected).collect();
    let actual: Vec<Option<NaiveDate>> = entries.iter().map(|e| e.actual).collect();
    // UNNEST cannot take an array per row (a text[][] must be rectangular),
    // so each row's dependencies travel as one JSON array and are unpacked
    // in SQL. JSON, not keys joined by a separator: keys are built from
    // product, stage and payment names, and no character is certain never
    // to appear in those.
    let depends_on: Vec<String> = entries
        .iter()
        .map(|e| serde_json::Value::from(e.depends_on.clone()).to_string())
        .collect();
    let moved_by: Vec<&str> = entries.iter().map(|e| e.moved_by.as_str()).collect();
    sqlx::query(
        "INSERT INTO order_milestones \
             (order_id, key, position, kind, subject, label, planned, projected, actual, \
              depends_on, moved_by) \
         SELECT $1, m.key, m.position, m.kind, m.subject, m.label, m.planned, m.projected, \
                m.actual, \
                ARRAY(SELECT d.key \
                      FROM jsonb_array_elements_text(m.depends_on::jsonb) \
                           WITH ORDINALITY AS d(key, n) \
                      ORDER BY d.n), \
                m.moved_by \
         FROM UNNEST($2::text[], $3::int[], $4::int[], $5::text[], $6::text[], $7::date[], \
                     $8::date[], $9::date[], $10::text[], $11::text[]) \
           AS m(key, position, kind, subject, label, planned, projected, actual, depends_on, \
                moved_by) \
         ON CONFLICT (order_id, key) DO UPDATE SET \
             position = EXCLUDED.position, kind = EXCLUDED.kind, subject = EXCLUDED.subject, \
             label = EXCLUDED.label, planned = EXCLUDED.planned, \
             projected = EXCLUDED.projected, actual = EXCLUDED.actual, \
             depends_on = EXCLUDED.depends_on, moved_by = EXCLUDED.moved_by",
    )
    .bind(order_id)
    .bind(&keys)
    .bind(&positions)
    .bind(&kinds)
    .bind(&subjects)
    .bind(&labels)
    .bind(&planned)
    .bind(&projected)
    .bind(&actual)
    .bind(&depends_on)
    .bind(&moved_by)
    .execute(conn)
    .await?;
    Ok(true)
}

/// What the order row says about its calendar and delivery.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CalendarRow {
    pub calendar_version: i64,
    pub calendar_incomplete: Vec<String>,
    pub promised_delivery_date: Option<NaiveDate>,
    pub projected_delivery_date: Option<NaiveDate>,
}

/// The order's calendar header; `None` for an unknown order.
pub async fn calendar(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Option<CalendarRow>> {
    sqlx::query_as(
        "SELECT calendar_version, calendar_incomplete, promised_delivery_date, \
                projected_delivery_date \
         FROM orders WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// The order's milestones in snapshot order.
pub async fn milestones(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Vec<Entry>> {
    sqlx::query_as(
        "SELECT key, kind, subject, label, planned, projected, actual, depends_on, moved_by \
         FROM order_milestones WHERE order_id = $1 ORDER BY position",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}
