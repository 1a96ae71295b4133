//! What the shop floor changes on a stored work order: [`report_stage`]
//! applies an MES report (a start, a count, a completion) to one stage and
//! to the work order in hand, in one statement; [`complete`] marks the
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

/// The columns of a stage an MES report changes, as it left them.
#[derive(sqlx::FromRow)]
struct ReportedStage {
    actual_start: Option<DateTime<Utc>>,
    actual_end: Option<DateTime<Utc>>,
    good_quantity: i64,
    scrap_quantity: i64,
    status: String,
}

/// Applies `report` to its stage of `work_order` and starts the work order
/// (planned to in progress), in one statement, and updates `work_order` in
/// hand to match instead of reading it back. The caller holds the work
/// order's row lock ([`all_of`](super::all_of)), so nobody else changes it
/// or its stages meanwhile: the stage as the statement returns it and the
/// status the statement sets are what is stored.
pub async fn report_stage(
    conn: &mut PgConnection,
    work_order: &mut WorkOrder,
    report: &StageReport<'_>,
) -> Result<()> {
    debug_assert!(
        work_order.stage(report.product, report.stage).is_some(),
        "the report's stage is the work order's"
    );
    let reported: ReportedStage = sqlx::query_as(
        "WITH started AS ( \
           UPDATE work_orders SET status = $8 \
           WHERE work_order_id = $1 AND status = $9) \
         UPDATE work_order_stages SET actual_start = COALESCE(actual_start, $4), \
           actual_end = CASE WHEN $7 THEN $4 ELSE actual_end END, \
           status = CASE WHEN $7 THEN $10 \
                         WHEN status = $11 THEN $12 ELSE status END, \
           good_quantity = good_quantity + $5, scrap_quantity = scrap_quantity + $6 \
         WHERE work_order_id = $1 AND product = $2 AND stage = $3 \
         RETURNING actual_start, actual_end, good_quantity, scrap_quantity, status",
    )
    .bind(work_order.work_order_id)
    .bind(report.product)
    .bind(report.stage)
    .bind(report.at)
    .bind(report.good)
    .bind(report.scrap)
    .bind(report.completes)
    .bind(STATUS_IN_PROGRESS)
    .bind(STATUS_PLANNED)
    .bind(STAGE_COMPLETED)
    .bind(STAGE_PLANNED)
    .bind(STAGE_RUNNING)
    .fetch_one(conn)
    .await?;
    if work_order.status == STATUS_PLANNED {
        work_order.status = STATUS_IN_PROGRESS.to_owned();
    }
    if let Some(stage) = work_order
        .stages
        .iter_mut()
        .find(|s| s.product == report.product && s.stage == report.stage)
    {
        stage.actual_start = reported.actual_start;
        stage.actual_end = reported.actual_end;
        stage.good_quantity = reported.good_quantity;
        stage.scrap_quantity = reported.scrap_quantity;
        stage.status = reported.status;
    }
    Ok(())
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
