//! The inspection rows. The readers ([`find`], [`find_incoming`],
//! [`find_in_process`], [`find_final`], [`latest_final`], [`list`]) read an
//! inspection with its nonconformance, items, class plans and findings in
//! one statement, each child table as a JSON array (`load_sql!`). The
//! writers (`save.rs`: [`insert`] a new inspection, [`save_result`] a
//! recorded result) write one statement per table, the child rows as
//! arrays unnested into rows, and return the inspection as now stored,
//! built from what they wrote, instead of reading it back.
//!
//! Why one statement: an inspection is read for every message and call
//! about it (its opening, a re-sent request, QA's result, a restatement,
//! QA's reads), and each read was four round trips, one per table; each
//! class plan, count and finding was written by a statement of its own.

mod save;

use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

pub use self::save::insert;
pub(crate) use self::save::save_result;
use super::{ClassRow, DefectRow, Inspection, to_u32};
use crate::Result;

/// One inspection with its nonconformance and every child row, each child
/// table as a JSON array in a correlated subquery: a read is one round trip
/// instead of four. The argument is the rest of the statement (the `WHERE`,
/// and the order and limit of a list).
macro_rules! load_sql {
    ($tail:literal) => {
        concat!(
            "SELECT i.inspection_id, i.kind, i.order_id, i.purchase_order_id, i.material, i.lot, \
               i.supplier, i.product, i.stage, i.lot_size, i.code_letter, i.sample_size, i.status, \
               i.inspector, i.sample_inspected, i.cause_event_id, i.traceparent, i.opened_at, \
               i.recorded_at, i.revision, i.severity, n.nonconformance_id, \
               n.summary AS nonconformance_summary, \
               (SELECT coalesce(json_agg(c ORDER BY c.seq), '[]') FROM (SELECT seq, product, quantity \
                  FROM inspection_items WHERE inspection_id = i.inspection_id) c) AS items, \
               (SELECT coalesce(json_agg(c ORDER BY \
                  array_position(ARRAY['critical', 'major', 'minor'], c.defect_class)), '[]') \
                  FROM (SELECT defect_class, aql, plan_code_letter, sample_size, accept, reject, \
                  defects, passed FROM inspection_classes WHERE inspection_id = i.inspection_id) c) \
                  AS classes, \
               (SELECT coalesce(json_agg(c ORDER BY c.seq), '[]') FROM (SELECT seq, defect_class, \
                  count, description FROM inspection_defects WHERE inspection_id = i.inspection_id) c) \
                  AS defects \
             FROM inspections i LEFT JOIN nonconformances n ON n.inspection_id = i.inspection_id ",
            $tail
        )
    };
}

#[derive(sqlx::FromRow)]
struct InspectionRow {
    #[sqlx(flatten)]
    inspection: Inspection,
    // The child rows, read in the same statement (see `load_sql!`).
    items: Json<Vec<ItemRow>>,
    classes: Json<Vec<ClassRow>>,
    defects: Json<Vec<DefectRow>>,
}

#[derive(serde::Deserialize)]
struct ItemRow {
    product: String,
    quantity: i64,
}

impl InspectionRow {
    fn into_inspection(self) -> Inspection {
        let mut inspection = self.inspection;
        inspection.items = self
            .items
            .0
            .into_iter()
            .map(|item| (item.product, to_u32(item.quantity)))
            .collect();
        inspection.classes = self.classes.0;
        inspection.defects = self.defects.0;
        inspection
    }
}

/// Reads one inspection with its items, class plans and findings; `lock`
/// holds its row until the transaction ends.
pub async fn find(
    conn: &mut PgConnection,
    inspection_id: Uuid,
    lock: bool,
) -> Result<Option<Inspection>> {
    if lock {
        // The lock first, in a statement of its own: a statement that waits
        // for a row lock re-reads the locked row once it has it, but its
        // subqueries keep the snapshot taken before the wait, so the load
        // `FOR ... OF i` would return the inspection as its holder committed
        // it with the classes and findings from before. The load after the
        // lock takes a fresh snapshot. NO KEY UPDATE: the key never changes
        // and rows are never deleted, and it lets other transactions insert
        // child rows (their foreign key checks take KEY SHARE) meanwhile.
        let locked: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM inspections WHERE inspection_id = $1 FOR NO KEY UPDATE",
        )
        .bind(inspection_id)
        .fetch_optional(&mut *conn)
        .await?;
        if locked.is_none() {
            return Ok(None);
        }
    }
    let row: Option<InspectionRow> = sqlx::query_as(load_sql!("WHERE i.inspection_id = $1"))
        .bind(inspection_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(InspectionRow::into_inspection))
}

/// The incoming inspection of a received lot, if one was opened.
pub async fn find_incoming(
    conn: &mut PgConnection,
    purchase_order_id: &str,
    material: &str,
    lot: &str,
) -> Result<Option<Inspection>> {
    let row: Option<InspectionRow> = sqlx::query_as(load_sql!(
        "WHERE i.kind = 'incoming' AND i.purchase_order_id = $1 AND i.material = $2 AND i.lot = $3"
    ))
    .bind(purchase_order_id)
    .bind(material)
    .bind(lot)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(InspectionRow::into_inspection))
}

/// The in-process inspection of an order's product at a stage, if one was
/// opened.
pub async fn find_in_process(
    conn: &mut PgConnection,
    order_id: &str,
    product: &str,
    stage: &str,
) -> Result<Option<Inspection>> {
    let row: Option<InspectionRow> = sqlx::query_as(load_sql!(
        "WHERE i.kind = 'in_process' AND i.order_id = $1 AND i.product = $2 AND i.stage = $3"
    ))
    .bind(order_id)
    .bind(product)
    .bind(stage)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(InspectionRow::into_inspection))
}

/// The final inspection of one revision of an order, if one was opened.
pub(crate) async fn find_final(
    conn: &mut PgConnection,
    order_id: &str,
    revision: u32,
) -> Result<Option<Inspection>> {
    let row: Option<InspectionRow> = sqlx::query_as(load_sql!(
        "WHERE i.kind = 'final' AND i.order_id = $1 AND i.revision = $2"
    ))
    .bind(order_id)
    .bind(i32::try_from(revision).unwrap_or(i32::MAX))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(InspectionRow::into_inspection))
}

/// The order's final inspection of the highest revision, if any.
pub(crate) async fn latest_final(
    conn: &mut PgConnection,
    order_id: &str,
) -> Result<Option<Inspection>> {
    let row: Option<InspectionRow> = sqlx::query_as(load_sql!(
        "WHERE i.kind = 'final' AND i.order_id = $1 ORDER BY i.revision DESC LIMIT 1"
    ))
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(InspectionRow::into_inspection))
}

/// Inspections of one order ("" = all), oldest first.
pub async fn list(
    conn: &mut PgConnection,
    order_id: &str,
    open_only: bool,
) -> Result<Vec<Inspection>> {
    let rows: Vec<InspectionRow> = sqlx::query_as(load_sql!(
        "WHERE ($1 = '' OR i.order_id = $1) AND (NOT $2 OR i.status = 'open') \
         ORDER BY i.opened_at, i.inspection_id LIMIT $3"
    ))
    .bind(order_id)
    .bind(open_only)
    .bind(super::LIST_LIMIT)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(InspectionRow::into_inspection)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child rows as Postgres's `json_agg` writes them: every column of
    /// the subquery (`seq` too) and `null` for a class not yet recorded.
    #[test]
    fn child_rows_decode_from_json_agg() {
        let items: Vec<ItemRow> =
            serde_json::from_str(r#"[{"seq":0,"product":"mug","quantity":300}]"#).unwrap();
        assert_eq!((items[0].product.as_str(), items[0].quantity), ("mug", 300));
        let classes: Vec<ClassRow> = serde_json::from_str(
            r#"[{"defect_class":"major","aql":"2.5","plan_code_letter":"H","sample_size":50,
                 "accept":3,"reject":4,"defects":null,"passed":null}]"#,
        )
        .unwrap();
        assert_eq!(classes[0].reject, 4);
        assert_eq!((classes[0].defects, classes[0].passed), (None, None));
        let defects: Vec<DefectRow> = serde_json::from_str(
            r#"[{"seq":0,"defect_class":"major","count":2,"description":"stain"}]"#,
        )
        .unwrap();
        assert_eq!(defects[0].count, 2);
    }
}
