//! What the shop floor changes on a stored work order: [`apply_report`]
//! applies an MES report (a start, a count, a completion) to one stage of
//! the work order in hand, and [`save_reported`] stores the stages a
//! consumer run reported on in one statement; [`complete`] marks the
//! work order finished with the figures its completion announced and
//! gives back the capacity it will not use, and [`completion_figures`]
//! reads those figures back for an announcement made again.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;
use crate::work_orders::{
    self, STAGE_COMPLETED, STAGE_PLANNED, STAGE_RUNNING, STATUS_COMPLETED, STATUS_IN_PROGRESS,
    STATUS_PLANNED, WorkOrder,
};

/// What one MES report does to a stage of a work order: starts it (its
/// actual start, running), adds the units counted and, when it
/// `completes`, ends it.
#[derive(Debug, Clone, Copy)]
pub struct StageReport<'a> {
    pub product: &'a str,
    pub stage: &'a str,
    /// When it happened: the stage's actual start unless it has one, and
    /// its actual end when the report completes it.
    pub at: DateTime<Utc>,
    pub good: i64,
    pub scrap: i64,
    pub completes: bool,
}

/// Applies `report` to its stage of `work_order` in hand: the stage's
/// actual start unless it has one, the units added, running (or completed
/// with its actual end when the report `completes` it); a planned work
/// order is in progress from its first report. Nothing is written:
/// [`save_reported`] stores the stages a run touched.
pub fn apply_report(work_order: &mut WorkOrder, report: &StageReport<'_>) {
    let Some(stage) = work_order
        .stages
        .iter_mut()
        .find(|s| s.product == report.product && s.stage == report.stage)
    else {
        debug_assert!(false, "the report's stage is the work order's");
        return;
    };
    stage.actual_start = stage.actual_start.or(Some(report.at));
    if report.completes {
        stage.actual_end = Some(report.at);
        stage.status = STAGE_COMPLETED.to_owned();
    } else if stage.status == STAGE_PLANNED {
        stage.status = STAGE_RUNNING.to_owned();
    }
    stage.good_quantity += report.good;
    stage.scrap_quantity += report.scrap;
    if work_order.status == STATUS_PLANNED {
        work_order.status = STATUS_IN_PROGRESS.to_owned();
    }
}

/// Stores the stages `(work order, product, stage)` as the copies in hand
/// left them ([`apply_report`]), and each work order's status where it
/// changed, in one statement. The caller holds the work orders' row locks
/// ([`all_of`](super::all_of)) and loaded them after taking them, so the
/// copies are what is stored plus the reports applied since.
pub async fn save_reported(
    conn: &mut PgConnection,
    stages: &[(&WorkOrder, &str, &str)],
) -> Result<()> {
    let mut columns = ReportedColumns::default();
    for &(work_order, product, stage_name) in stages {
        let Some(stage) = work_order.stage(product, stage_name) else {
            debug_assert!(false, "a stage the run reported on");
            continue;
        };
        columns.work_order_id.push(work_order.work_order_id);
        columns.work_order_status.push(work_order.status.as_str());
        columns.product.push(product);
        columns.stage.push(stage_name);
        columns.actual_start.push(stage.actual_start);
        columns.actual_end.push(stage.actual_end);
        columns.good.push(stage.good_quantity);
        columns.scrap.push(stage.scrap_quantity);
        columns.status.push(stage.status.as_str());
    }
    if columns.work_order_id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH reported AS ( \
           SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], \
             $5::timestamptz[], $6::timestamptz[], $7::int8[], $8::int8[], $9::text[]) \
           AS r(work_order_id, work_order_status, product, stage, actual_start, \
             actual_end, good, scrap, status)), \
         started AS ( \
           UPDATE work_orders w SET status = r.work_order_status \
           FROM (SELECT DISTINCT work_order_id, work_order_status FROM reported) r \
           WHERE w.work_order_id = r.work_order_id AND w.status <> r.work_order_status) \
         UPDATE work_order_stages s SET actual_start = r.actual_start, \
           actual_end = r.actual_end, good_quantity = r.good, scrap_quantity = r.scrap, \
           status = r.status \
         FROM reported r \
         WHERE s.work_order_id = r.work_order_id AND s.product = r.product \
           AND s.stage = r.stage",
    )
    .bind(&columns.work_order_id)
    .bind(&columns.work_order_status)
    .bind(&columns.product)
    .bind(&columns.stage)
    .bind(&columns.actual_start)
    .bind(&columns.actual_end)
    .bind(&columns.good)
    .bind(&columns.scrap)
    .bind(&columns.status)
    .execute(conn)
    .await?;
    Ok(())
}

/// [`save_reported`]'s rows as columns, one array a parameter.
#[derive(Default)]
struct ReportedColumns<'a> {
    work_order_id: Vec<Uuid>,
    work_order_status: Vec<&'a str>,
    product: Vec<&'a str>,
    stage: Vec<&'a str>,
    actual_start: Vec<Option<DateTime<Utc>>>,
    actual_end: Vec<Option<DateTime<Utc>>>,
    good: Vec<i64>,
    scrap: Vec<i64>,
    status: Vec<&'a str>,
}

/// Marks the work order completed on `completed_on`, keeping the good and
/// scrap units its completion announces, and gives back what it booked
/// after that day: capacity a finished work order will not use goes to the
/// orders planned next. One statement.
pub async fn complete(
    conn: &mut PgConnection,
    work_order_id: Uuid,
    completed_on: NaiveDate,
    (good, scrap): (u32, u32),
) -> Result<()> {
    sqlx::query(
        "WITH capacity AS ( \
           DELETE FROM capacity_bookings WHERE work_order_id = $1 AND day > $3), \
         stages AS ( \
           DELETE FROM stage_bookings WHERE work_order_id = $1 AND day > $3) \
         UPDATE work_orders SET status = $2, completed_on = $3, completed_good = $4, \
           completed_scrap = $5 \
         WHERE work_order_id = $1",
    )
    .bind(work_order_id)
    .bind(STATUS_COMPLETED)
    .bind(completed_on)
    .bind(i64::from(good))
    .bind(i64::from(scrap))
    .execute(conn)
    .await?;
    Ok(())
}

/// The good and scrap units the completion of `work_order_id` announced;
/// `None` when it is not completed, or was completed before the figures
/// were kept (its stages give them then).
pub async fn completion_figures(
    conn: &mut PgConnection,
    work_order_id: Uuid,
) -> Result<Option<(u32, u32)>> {
    let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT completed_good, completed_scrap FROM work_orders WHERE work_order_id = $1",
    )
    .bind(work_order_id)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some((Some(good), Some(scrap))) => {
            Some((work_orders::quantity(good), work_orders::quantity(scrap)))
        }
        _ => None,
    })
}
