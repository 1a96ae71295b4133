//! The work order tables: [`insert`] stores a [`Schedule`] as a new work
//! order (its row, its stages and its capacity bookings; a stage with
//! nothing to make, which only an amended run has, is stored completed)
//! and returns it as stored, [`all_of`] reads an order's work orders back
//! with their stages, [`cancel`] stops some and gives their remaining
//! capacity back, [`bookings_from`] reads what some have booked. What the
//! MES changes is in `progress.rs`: [`apply_report`] applies a report to
//! one stage in hand and [`save_reported`] stores a run's, [`complete`] marks a work order finished with the figures
//! its completion announced ([`completion_figures`] reads them back for an
//! announcement made again). What a downtime needs ([`open_on_centre`],
//! [`by_ids`], [`stage_bookings`], [`save_replans`], which stores the
//! [`Replan`](crate::reschedule::Replan)s of stages moved by a downtime)
//! is in `replan.rs`.
//!
//! Capacity is booked twice over: per work centre and day
//! (`capacity_bookings`, what the scheduler subtracts) and per stage and
//! day (`stage_bookings`, [`stage_bookings`]), so moving one stage gives
//! back exactly its hours even when another stage of the same work order
//! shares its centre and day.
//!
//! Reads return every work order of an order at once, newest first: an order
//! has a handful at most, and the callers choose among them with the pure
//! functions of [`work_orders`](super). A work order is read with its
//! stages in one statement (`load_sql!`), the stages as a JSON array; a
//! read that locks takes the row locks in a statement of its own first.
//! Writes change a work order that is in hand, under its row lock, so they
//! update it in hand as well instead of reading it back.

mod progress;
mod replan;

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

pub use self::progress::{StageReport, apply_report, complete, completion_figures, save_reported};
pub use self::replan::{by_ids, open_on_centre, save_replans, stage_bookings};
use super::{STAGE_COMPLETED, STAGE_PLANNED, STATUS_PLANNED, Stage, WorkOrder};
use crate::Result;
use crate::schedule::Schedule;

/// What identifies a new work order besides its plan.
#[derive(Debug, Clone, Copy)]
pub struct NewWorkOrder<'a> {
    pub order_id: &'a str,
    /// [`KIND_PRODUCTION`](super::KIND_PRODUCTION) or
    /// [`KIND_REWORK`](super::KIND_REWORK).
    pub kind: &'a str,
    pub revision: i32,
    /// Production runs planned for an amended order: the amendment's
    /// number; 0 otherwise.
    pub amendment: i32,
    /// Reworks: quality's nonconformance being reworked, and why.
    pub nonconformance_id: Option<&'a str>,
    pub rework_reason: Option<&'a str>,
    /// Trace of the command that planned it, for the MES events that carry
    /// none.
    pub traceparent: Option<&'a str>,
    /// Reservations: the last day the hours are held for the order.
    pub hold_until: Option<NaiveDate>,
}

/// Stores `schedule` as a new work order with its bookings, and returns it
/// as a read would: every value in it is the caller's, none the
/// database's, so it is not read back.
pub async fn insert(
    conn: &mut PgConnection,
    new: &NewWorkOrder<'_>,
    schedule: &Schedule,
) -> Result<WorkOrder> {
    debug_assert!(new.revision >= 1, "revisions start at 1");
    let work_order = WorkOrder {
        work_order_id: Uuid::now_v7(),
        order_id: new.order_id.to_owned(),
        kind: new.kind.to_owned(),
        revision: new.revision,
        amendment: new.amendment,
        status: STATUS_PLANNED.to_owned(),
        planned_start: schedule.start,
        planned_end: schedule.earliest_completion,
        completed_on: None,
        traceparent: new.traceparent.map(str::to_owned),
        stages: planned_stages(schedule),
    };
    let work_order_id = work_order.work_order_id;
    sqlx::query(
        "INSERT INTO work_orders \
           (work_order_id, order_id, kind, revision, status, planned_start, planned_end, \
            traceparent, nonconformance_id, rework_reason, amendment, hold_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(work_order_id)
    .bind(new.order_id)
    .bind(new.kind)
    .bind(new.revision)
    .bind(&work_order.status)
    .bind(work_order.planned_start)
    .bind(work_order.planned_end)
    .bind(new.traceparent)
    .bind(new.nonconformance_id)
    .bind(new.rework_reason)
    .bind(new.amendment)
    .bind(new.hold_until)
    .execute(&mut *conn)
    .await?;

    let stages = &work_order.stages;
    let products: Vec<&str> = stages.iter().map(|s| s.product.as_str()).collect();
    let names: Vec<&str> = stages.iter().map(|s| s.stage.as_str()).collect();
    let centres: Vec<&str> = stages.iter().map(|s| s.work_centre.as_str()).collect();
    let statuses: Vec<&str> = stages.iter().map(|s| s.status.as_str()).collect();
    let product_seqs: Vec<i32> = stages.iter().map(|s| s.product_seq).collect();
    let stage_seqs: Vec<i32> = stages.iter().map(|s| s.stage_seq).collect();
    let quantities: Vec<i64> = stages.iter().map(|s| s.quantity).collect();
    let per_unit: Vec<f64> = stages.iter().map(|s| s.hours_per_unit).collect();
    let setup: Vec<f64> = stages.iter().map(|s| s.setup_hours).collect();
    let hours: Vec<f64> = stages.iter().map(|s| s.hours).collect();
    let starts: Vec<NaiveDate> = stages.iter().map(|s| s.planned_start).collect();
    let ends: Vec<NaiveDate> = stages.iter().map(|s| s.planned_end).collect();
    sqlx::query(
        "INSERT INTO work_order_stages \
           (work_order_id, product, stage, product_seq, stage_seq, work_centre, quantity, \
            hours_per_unit, setup_hours, hours, planned_start, planned_end, status) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::int4[], $5::int4[], $6::text[], \
            $7::int8[], $8::float8[], $9::float8[], $10::float8[], $11::date[], $12::date[], \
            $13::text[])",
    )
    .bind(work_order_id)
    .bind(&products)
    .bind(&names)
    .bind(&product_seqs)
    .bind(&stage_seqs)
    .bind(&centres)
    .bind(&quantities)
    .bind(&per_unit)
    .bind(&setup)
    .bind(&hours)
    .bind(&starts)
    .bind(&ends)
    .bind(&statuses)
    .execute(&mut *conn)
    .await?;

    // Two stages of one order may use the same work centre on the same day;
    // bookings are kept per work order, so sum them first.
    let mut booked: BTreeMap<(&str, NaiveDate), f64> = BTreeMap::new();
    for stage in &schedule.stages {
        for (day, hours) in &stage.bookings {
            *booked
                .entry((stage.work_centre.as_str(), *day))
                .or_default() += hours;
        }
    }
    let booked_centres: Vec<&str> = booked.keys().map(|(centre, _)| *centre).collect();
    let booked_days: Vec<NaiveDate> = booked.keys().map(|(_, day)| *day).collect();
    let booked_hours: Vec<f64> = booked.values().copied().collect();
    sqlx::query(
        "INSERT INTO capacity_bookings (work_centre, day, work_order_id, hours) \
         SELECT centre, day, $1, hours \
         FROM UNNEST($2::text[], $3::date[], $4::float8[]) AS b(centre, day, hours)",
    )
    .bind(work_order_id)
    .bind(&booked_centres)
    .bind(&booked_days)
    .bind(&booked_hours)
    .execute(&mut *conn)
    .await?;

    let per_stage: Vec<StageBooking> = schedule
        .stages
        .iter()
        .flat_map(|stage| {
            stage.bookings.iter().map(move |(day, hours)| StageBooking {
                work_order_id,
                product: &stage.product,
                stage: &stage.stage,
                day: *day,
                hours: *hours,
            })
        })
        .collect();
    insert_stage_bookings(conn, &per_stage).await?;
    Ok(work_order)
}

/// The stages of `schedule` as they are stored: products in request
/// order, stages in routing order, numbered so that every later read keeps
/// that order. A stage with nothing to make (an amended run's stage whose
/// units an earlier run made) is done from the start.
fn planned_stages(schedule: &Schedule) -> Vec<Stage> {
    let mut stages = Vec::with_capacity(schedule.stages.len());
    let mut current_product: Option<&str> = None;
    let (mut product_seq, mut stage_seq) = (-1, 0);
    for scheduled in &schedule.stages {
        if current_product != Some(scheduled.product.as_str()) {
            current_product = Some(&scheduled.product);
            product_seq += 1;
            stage_seq = 0;
        }
        let status = if scheduled.quantity == 0 {
            STAGE_COMPLETED
        } else {
            STAGE_PLANNED
        };
        stages.push(Stage {
            product: scheduled.product.clone(),
            stage: scheduled.stage.clone(),
            product_seq,
            stage_seq,
            work_centre: scheduled.work_centre.clone(),
            quantity: i64::from(scheduled.quantity),
            hours_per_unit: scheduled.hours_per_unit,
            setup_hours: scheduled.setup_hours,
            hours: scheduled.hours,
            planned_start: scheduled.start,
            planned_end: scheduled.end,
            actual_start: None,
            actual_end: None,
            good_quantity: 0,
            scrap_quantity: 0,
            status: status.to_owned(),
        });
        stage_seq += 1;
    }
    stages
}

/// Hours one stage of one work order books on one day.
struct StageBooking<'a> {
    work_order_id: Uuid,
    product: &'a str,
    stage: &'a str,
    day: NaiveDate,
    hours: f64,
}

/// Adds stage bookings, of one work order or several, in one statement.
async fn insert_stage_bookings(
    conn: &mut PgConnection,
    bookings: &[StageBooking<'_>],
) -> Result<()> {
    if bookings.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = bookings.iter().map(|b| b.work_order_id).collect();
    let products: Vec<&str> = bookings.iter().map(|b| b.product).collect();
    let stages: Vec<&str> = bookings.iter().map(|b| b.stage).collect();
    let days: Vec<NaiveDate> = bookings.iter().map(|b| b.day).collect();
    let hours: Vec<f64> = bookings.iter().map(|b| b.hours).collect();
    sqlx::query(
        "INSERT INTO stage_bookings (work_order_id, product, stage, day, hours) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::date[], $5::float8[])",
    )
    .bind(&ids)
    .bind(&products)
    .bind(&stages)
    .bind(&days)
    .bind(&hours)
    .execute(conn)
    .await?;
    Ok(())
}

/// Work orders with their stages in one statement, the stages (by product,
/// then routing order) as a JSON array: a read is one round trip, and an
/// order's work orders are read for every MES report and command.
/// `$where` filters and orders the work orders.
macro_rules! load_sql {
    ($where:literal) => {
        concat!(
            "SELECT w.work_order_id, w.order_id, w.kind, w.revision, w.amendment, w.status, \
               w.planned_start, w.planned_end, w.completed_on, w.traceparent, \
               (SELECT coalesce(json_agg(s ORDER BY s.product_seq, s.stage_seq), '[]') \
                FROM (SELECT product, stage, product_seq, stage_seq, work_centre, quantity, \
                   hours_per_unit, setup_hours, hours, planned_start, planned_end, \
                   actual_start, actual_end, good_quantity, scrap_quantity, status \
                   FROM work_order_stages WHERE work_order_id = w.work_order_id) s) AS stages \
             FROM work_orders w ",
            $where
        )
    };
}

// Newest first. created_at is the transaction's start, the same for work
// orders planned in one consumer batch; the ids are UUIDv7, in creation
// order, and break the tie.
const LOAD_OF_ORDER: &str =
    load_sql!("WHERE w.order_id = $1 ORDER BY w.created_at DESC, w.work_order_id DESC");
const LOCK_OF_ORDER: &str = "SELECT work_order_id FROM work_orders WHERE order_id = $1 \
     ORDER BY created_at DESC, work_order_id DESC FOR NO KEY UPDATE";
const LOAD_BY_IDS: &str = load_sql!("WHERE w.work_order_id = ANY($1)");

/// A work order row with its stages (see `load_sql!`).
#[derive(sqlx::FromRow)]
struct WorkOrderRow {
    #[sqlx(flatten)]
    work_order: WorkOrder,
    stages: Json<Vec<Stage>>,
}

impl WorkOrderRow {
    fn into_work_order(self) -> WorkOrder {
        WorkOrder {
            stages: self.stages.0,
            ..self.work_order
        }
    }
}

/// The work orders `ids` with their stages, in the order of `ids`.
///
/// Callers that lock take the locks before, in a statement of their own:
/// a statement that waits for a row lock re-reads the locked row once it
/// has it, but its subqueries keep the snapshot taken before the wait, so
/// a load `FOR NO KEY UPDATE` would return the work order as the holder
/// left it with its stages as they were before the holder committed (a
/// count or a completion lost). The load after the locks takes a fresh
/// snapshot. It reads the locked ids rather than the order's work orders
/// again, so a work order committed in between, which is not locked, is
/// not among them.
async fn load(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<WorkOrder>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<WorkOrderRow> = sqlx::query_as(LOAD_BY_IDS)
        .bind(ids)
        .fetch_all(conn)
        .await?;
    let mut by_id: HashMap<Uuid, WorkOrder> = rows
        .into_iter()
        .map(|row| (row.work_order.work_order_id, row.into_work_order()))
        .collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// Every work order of `order_id` with its stages, newest first; `lock`
/// holds their rows until the transaction ends, so two MES events or
/// commands about one order apply one after the other.
pub async fn all_of(conn: &mut PgConnection, order_id: &str, lock: bool) -> Result<Vec<WorkOrder>> {
    if lock {
        let ids: Vec<Uuid> = sqlx::query_scalar(LOCK_OF_ORDER)
            .bind(order_id)
            .fetch_all(&mut *conn)
            .await?;
        return load(conn, &ids).await;
    }
    let rows: Vec<WorkOrderRow> = sqlx::query_as(LOAD_OF_ORDER)
        .bind(order_id)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(WorkOrderRow::into_work_order)
        .collect())
}

/// Marks the work orders `ids` cancelled and deletes their bookings from
/// `from` on, in one statement; returns the hours released (none by those
/// already cancelled).
pub async fn cancel(
    conn: &mut PgConnection,
    ids: &[Uuid],
    from: NaiveDate,
    reason: &str,
) -> Result<f64> {
    if ids.is_empty() {
        return Ok(0.0);
    }
    let released: Vec<(Uuid, f64)> = sqlx::query_as(
        "WITH cancelled AS ( \
           UPDATE work_orders SET status = 'cancelled', cancelled_at = now(), \
             cancel_reason = $3 \
           WHERE work_order_id = ANY($1) AND status <> 'cancelled' RETURNING work_order_id), \
         stages AS ( \
           DELETE FROM stage_bookings b USING cancelled c \
           WHERE b.work_order_id = c.work_order_id AND b.day >= $2), \
         released AS ( \
           DELETE FROM capacity_bookings b USING cancelled c \
           WHERE b.work_order_id = c.work_order_id AND b.day >= $2 \
           RETURNING b.work_order_id, b.hours) \
         SELECT work_order_id, sum(hours) FROM released GROUP BY work_order_id",
    )
    .bind(ids)
    .bind(from)
    .bind(reason)
    .fetch_all(conn)
    .await?;
    // Summed per work order, then in the callers' order: the hours add up
    // as they did when each work order was cancelled on its own.
    let by_id: HashMap<Uuid, f64> = released.into_iter().collect();
    Ok(ids.iter().filter_map(|id| by_id.get(id)).sum())
}

/// What the work orders `ids` have booked from `from` on, per work centre
/// and day (a work order's stages summed), in no particular order.
pub async fn bookings_from(
    conn: &mut PgConnection,
    ids: &[Uuid],
    from: NaiveDate,
) -> Result<Vec<(String, NaiveDate, f64)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, NaiveDate, f64)> = sqlx::query_as(
        "SELECT work_centre, day, hours FROM capacity_bookings \
         WHERE work_order_id = ANY($1) AND day >= $2",
    )
    .bind(ids)
    .bind(from)
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ScheduledStage;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn scheduled(product: &str, stage: &str, quantity: u32) -> ScheduledStage {
        ScheduledStage {
            product: product.to_owned(),
            stage: stage.to_owned(),
            work_centre: "SEW".to_owned(),
            quantity,
            hours_per_unit: 0.5,
            setup_hours: 1.0,
            hours: f64::from(quantity) * 0.5 + 1.0,
            start: date("2026-03-02"),
            end: date("2026-03-03"),
            bookings: Vec::new(),
        }
    }

    #[test]
    fn stored_stages_keep_request_and_routing_order() {
        let schedule = Schedule {
            stages: vec![
                scheduled("shirt", "cutting", 10),
                scheduled("shirt", "sewing", 0),
                scheduled("tote", "sewing", 5),
            ],
            start: date("2026-03-02"),
            earliest_completion: date("2026-03-03"),
        };
        let stages = planned_stages(&schedule);
        let numbered: Vec<(&str, &str, i32, i32, &str)> = stages
            .iter()
            .map(|s| {
                (
                    s.product.as_str(),
                    s.stage.as_str(),
                    s.product_seq,
                    s.stage_seq,
                    s.status.as_str(),
                )
            })
            .collect();
        assert_eq!(
            numbered,
            [
                ("shirt", "cutting", 0, 0, STAGE_PLANNED),
                // Nothing to make: done from the start.
                ("shirt", "sewing", 0, 1, STAGE_COMPLETED),
                ("tote", "sewing", 1, 0, STAGE_PLANNED),
            ]
        );
        let first = &stages[0];
        assert_eq!((first.quantity, first.hours), (10, 6.0));
        assert_eq!(
            (first.planned_start, first.planned_end),
            (date("2026-03-02"), date("2026-03-03"))
        );
        assert_eq!((first.good_quantity, first.scrap_quantity), (0, 0));
        assert!(first.actual_start.is_none() && first.actual_end.is_none());
    }
}
