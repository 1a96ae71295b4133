//! The work order tables: [`insert`] stores a [`Schedule`] as a new work
//! order (its row, its stages and its capacity bookings; a stage with
//! nothing to make, which only an amended run has, is stored completed),
//! [`find_by_id`] and [`all_of`] read work orders back with their stages,
//! [`complete`] marks one finished with the figures its completion
//! announced ([`completion_figures`] reads them back for an announcement
//! made again), [`cancel`] stops one and gives its remaining capacity back,
//! [`bookings_from`] reads what some have booked, [`save_replan`] stores a
//! [`Replan`] (stages moved by a downtime, see [`open_on_centre`]).
//!
//! Capacity is booked twice over: per work centre and day
//! (`capacity_bookings`, what the scheduler subtracts) and per stage and
//! day (`stage_bookings`, [`stage_bookings`]), so moving one stage gives
//! back exactly its hours even when another stage of the same work order
//! shares its centre and day.
//!
//! Reads return every work order of an order at once, newest first: an order
//! has a handful at most, and the callers choose among them with the pure
//! functions of [`work_orders`](super).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{STAGE_COMPLETED, STAGE_PLANNED, STATUS_COMPLETED, STATUS_PLANNED, Stage, WorkOrder};
use crate::reschedule::{self, Replan, StageBookings};
use crate::schedule::{Schedule, ScheduledStage};
use crate::{Error, Result};

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
}

/// Stores `schedule` as a new work order with its bookings.
pub async fn insert(
    conn: &mut PgConnection,
    new: &NewWorkOrder<'_>,
    schedule: &Schedule,
) -> Result<WorkOrder> {
    debug_assert!(new.revision >= 1, "revisions start at 1");
    let work_order_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO work_orders \
           (work_order_id, order_id, kind, revision, status, planned_start, planned_end, \
            traceparent, nonconformance_id, rework_reason, amendment) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(work_order_id)
    .bind(new.order_id)
    .bind(new.kind)
    .bind(new.revision)
    .bind(STATUS_PLANNED)
    .bind(schedule.start)
    .bind(schedule.earliest_completion)
    .bind(new.traceparent)
    .bind(new.nonconformance_id)
    .bind(new.rework_reason)
    .bind(new.amendment)
    .execute(&mut *conn)
    .await?;

    // Products come in request order, stages in routing order; the sequence
    // numbers keep that order for every later read.
    let mut product_seqs: Vec<i32> = Vec::new();
    let mut stage_seqs: Vec<i32> = Vec::new();
    let mut current_product: Option<&str> = None;
    let (mut product_seq, mut stage_seq) = (-1, 0);
    for stage in &schedule.stages {
        if current_product != Some(stage.product.as_str()) {
            current_product = Some(&stage.product);
            product_seq += 1;
            stage_seq = 0;
        }
        product_seqs.push(product_seq);
        stage_seqs.push(stage_seq);
        stage_seq += 1;
    }
    let column = |f: fn(&ScheduledStage) -> String| -> Vec<String> {
        schedule.stages.iter().map(f).collect()
    };
    let products = column(|s| s.product.clone());
    let names = column(|s| s.stage.clone());
    let centres = column(|s| s.work_centre.clone());
    let quantities: Vec<i64> = schedule
        .stages
        .iter()
        .map(|s| i64::from(s.quantity))
        .collect();
    let per_unit: Vec<f64> = schedule.stages.iter().map(|s| s.hours_per_unit).collect();
    let setup: Vec<f64> = schedule.stages.iter().map(|s| s.setup_hours).collect();
    let hours: Vec<f64> = schedule.stages.iter().map(|s| s.hours).collect();
    let starts: Vec<NaiveDate> = schedule.stages.iter().map(|s| s.start).collect();
    let ends: Vec<NaiveDate> = schedule.stages.iter().map(|s| s.end).collect();
    // A stage with nothing to make (an amended run's stage whose units an
    // earlier run made) is done from the start.
    let statuses: Vec<&str> = schedule
        .stages
        .iter()
        .map(|s| {
            if s.quantity == 0 {
                STAGE_COMPLETED
            } else {
                STAGE_PLANNED
            }
        })
        .collect();
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

    let per_stage: Vec<(&str, &str, NaiveDate, f64)> = schedule
        .stages
        .iter()
        .flat_map(|stage| {
            stage.bookings.iter().map(move |(day, hours)| {
                (stage.product.as_str(), stage.stage.as_str(), *day, *hours)
            })
        })
        .collect();
    insert_stage_bookings(conn, work_order_id, &per_stage).await?;

    let stored = find_by_id(conn, work_order_id).await?;
    debug_assert!(stored.is_some(), "work order just inserted");
    stored.ok_or_else(|| Error::WorkOrderNotFound(new.order_id.to_owned()))
}

/// Adds `(product, stage, day, hours)` bookings of one work order.
async fn insert_stage_bookings(
    conn: &mut PgConnection,
    work_order_id: Uuid,
    bookings: &[(&str, &str, NaiveDate, f64)],
) -> Result<()> {
    if bookings.is_empty() {
        return Ok(());
    }
    let products: Vec<&str> = bookings.iter().map(|b| b.0).collect();
    let stages: Vec<&str> = bookings.iter().map(|b| b.1).collect();
    let days: Vec<NaiveDate> = bookings.iter().map(|b| b.2).collect();
    let hours: Vec<f64> = bookings.iter().map(|b| b.3).collect();
    sqlx::query(
        "INSERT INTO stage_bookings (work_order_id, product, stage, day, hours) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::date[], $5::float8[])",
    )
    .bind(work_order_id)
    .bind(&products)
    .bind(&stages)
    .bind(&days)
    .bind(&hours)
    .execute(conn)
    .await?;
    Ok(())
}

/// A stage row with the work order it belongs to, so the stages of all of
/// an order's work orders come back in one query.
#[derive(sqlx::FromRow)]
struct StageRow {
    work_order_id: Uuid,
    #[sqlx(flatten)]
    stage: Stage,
}

/// Fills in the stages of `work_orders`.
async fn with_stages(
    conn: &mut PgConnection,
    mut work_orders: Vec<WorkOrder>,
) -> Result<Vec<WorkOrder>> {
    if work_orders.is_empty() {
        return Ok(work_orders);
    }
    let ids: Vec<Uuid> = work_orders.iter().map(|wo| wo.work_order_id).collect();
    let rows: Vec<StageRow> = sqlx::query_as(
        "SELECT work_order_id, product, stage, product_seq, stage_seq, work_centre, quantity, \
           hours_per_unit, setup_hours, hours, planned_start, planned_end, actual_start, \
           actual_end, good_quantity, scrap_quantity, status \
         FROM work_order_stages WHERE work_order_id = ANY($1) \
         ORDER BY work_order_id, product_seq, stage_seq",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut by_work_order: HashMap<Uuid, Vec<Stage>> = HashMap::new();
    for row in rows {
        by_work_order
            .entry(row.work_order_id)
            .or_default()
            .push(row.stage);
    }
    for work_order in &mut work_orders {
        work_order.stages = by_work_order
            .remove(&work_order.work_order_id)
            .unwrap_or_default();
    }
    Ok(work_orders)
}

/// One work order with its stages.
pub async fn find_by_id(conn: &mut PgConnection, work_order_id: Uuid) -> Result<Option<WorkOrder>> {
    let found: Option<WorkOrder> = sqlx::query_as(
        "SELECT work_order_id, order_id, kind, revision, amendment, status, planned_start, \
           planned_end, completed_on, traceparent \
         FROM work_orders WHERE work_order_id = $1",
    )
    .bind(work_order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(work_order) = found else {
        return Ok(None);
    };
    Ok(with_stages(conn, vec![work_order]).await?.pop())
}

// Newest first. created_at is the transaction's start, the same for work
// orders planned in one consumer batch; the ids are UUIDv7, in creation
// order, and break the tie.
const SELECT_ALL: &str = "SELECT work_order_id, order_id, kind, revision, amendment, status, \
     planned_start, planned_end, completed_on, traceparent FROM work_orders \
     WHERE order_id = $1 ORDER BY created_at DESC, work_order_id DESC";
const SELECT_ALL_FOR_UPDATE: &str = "SELECT work_order_id, order_id, kind, revision, \
     amendment, status, planned_start, planned_end, completed_on, traceparent FROM work_orders \
     WHERE order_id = $1 ORDER BY created_at DESC, work_order_id DESC FOR UPDATE";

/// Every work order of `order_id` with its stages, newest first; `lock`
/// holds their rows until the transaction ends, so two MES events or
/// commands about one order apply one after the other.
pub async fn all_of(conn: &mut PgConnection, order_id: &str, lock: bool) -> Result<Vec<WorkOrder>> {
    let sql = if lock {
        SELECT_ALL_FOR_UPDATE
    } else {
        SELECT_ALL
    };
    let work_orders: Vec<WorkOrder> = sqlx::query_as(sql)
        .bind(order_id)
        .fetch_all(&mut *conn)
        .await?;
    with_stages(conn, work_orders).await
}

/// Marks the work order cancelled and deletes its bookings from `from` on;
/// returns the hours released (0 when it was already cancelled).
pub async fn cancel(
    conn: &mut PgConnection,
    work_order_id: Uuid,
    from: NaiveDate,
    reason: &str,
) -> Result<f64> {
    let updated = sqlx::query(
        "UPDATE work_orders SET status = 'cancelled', cancelled_at = now(), cancel_reason = $2 \
         WHERE work_order_id = $1 AND status <> 'cancelled'",
    )
    .bind(work_order_id)
    .bind(reason)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(0.0);
    }
    sqlx::query("DELETE FROM stage_bookings WHERE work_order_id = $1 AND day >= $2")
        .bind(work_order_id)
        .bind(from)
        .execute(&mut *conn)
        .await?;
    let released: Option<f64> = sqlx::query_scalar(
        "WITH released AS (DELETE FROM capacity_bookings WHERE work_order_id = $1 AND day >= $2 RETURNING hours) \
         SELECT sum(hours) FROM released",
    )
    .bind(work_order_id)
    .bind(from)
    .fetch_one(&mut *conn)
    .await?;
    Ok(released.unwrap_or(0.0))
}

/// Marks the work order completed on `completed_on`, keeping the good and
/// scrap units its completion announces, and gives back what it booked
/// after that day: capacity a finished work order will not use goes to the
/// orders planned next.
pub async fn complete(
    conn: &mut PgConnection,
    work_order_id: Uuid,
    completed_on: NaiveDate,
    (good, scrap): (u32, u32),
) -> Result<()> {
    sqlx::query(
        "UPDATE work_orders SET status = $2, completed_on = $3, completed_good = $4, \
           completed_scrap = $5 \
         WHERE work_order_id = $1",
    )
    .bind(work_order_id)
    .bind(STATUS_COMPLETED)
    .bind(completed_on)
    .bind(i64::from(good))
    .bind(i64::from(scrap))
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM capacity_bookings WHERE work_order_id = $1 AND day > $2")
        .bind(work_order_id)
        .bind(completed_on)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM stage_bookings WHERE work_order_id = $1 AND day > $2")
        .bind(work_order_id)
        .bind(completed_on)
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
        Some((Some(good), Some(scrap))) => Some((super::quantity(good), super::quantity(scrap))),
        _ => None,
    })
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

/// Open work orders with an unfinished stage on `work_centre` planned to
/// run on any day of `first..=last`, with their stages, the oldest plan
/// first (it keeps first claim on the capacity that is left), locked until
/// the transaction ends.
pub async fn open_on_centre(
    conn: &mut PgConnection,
    work_centre: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<WorkOrder>> {
    let work_orders: Vec<WorkOrder> = sqlx::query_as(
        "SELECT work_order_id, order_id, kind, revision, amendment, status, planned_start, \
           planned_end, completed_on, traceparent FROM work_orders w \
         WHERE status IN ('planned', 'in_progress') AND EXISTS ( \
           SELECT 1 FROM work_order_stages s \
           WHERE s.work_order_id = w.work_order_id AND s.work_centre = $1 \
             AND s.status <> 'completed' AND s.planned_end >= $2 AND s.planned_start <= $3) \
         ORDER BY created_at, work_order_id FOR UPDATE",
    )
    .bind(work_centre)
    .bind(first)
    .bind(last)
    .fetch_all(&mut *conn)
    .await?;
    with_stages(conn, work_orders).await
}

/// The work orders with these ids, with their stages, locked until the
/// transaction ends; in no particular order.
pub async fn by_ids(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<WorkOrder>> {
    let work_orders: Vec<WorkOrder> = sqlx::query_as(
        "SELECT work_order_id, order_id, kind, revision, amendment, status, planned_start, \
           planned_end, completed_on, traceparent FROM work_orders \
         WHERE work_order_id = ANY($1) ORDER BY work_order_id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    with_stages(conn, work_orders).await
}

/// The per-stage bookings of these work orders, by work order.
pub async fn stage_bookings(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, StageBookings>> {
    let rows: Vec<(Uuid, String, String, NaiveDate, f64)> = sqlx::query_as(
        "SELECT work_order_id, product, stage, day, hours FROM stage_bookings \
         WHERE work_order_id = ANY($1) ORDER BY work_order_id, product, stage, day",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    let mut by_work_order: HashMap<Uuid, StageBookings> = HashMap::new();
    for (work_order_id, product, stage, day, hours) in rows {
        by_work_order
            .entry(work_order_id)
            .or_default()
            .entry((product, stage))
            .or_default()
            .push((day, hours));
    }
    Ok(by_work_order)
}

/// Stores `replan` of `work_order`, made from `from` on: the moved stages'
/// dates and bookings, the work order's capacity bookings from that day
/// ([`reschedule::rebooked`]) and its planned dates.
pub async fn save_replan(
    conn: &mut PgConnection,
    work_order: &WorkOrder,
    replan: &Replan,
    from: NaiveDate,
) -> Result<()> {
    let id = work_order.work_order_id;
    let products: Vec<&str> = replan.moved.iter().map(|m| m.product.as_str()).collect();
    let stages: Vec<&str> = replan.moved.iter().map(|m| m.stage.as_str()).collect();
    let starts: Vec<NaiveDate> = replan.moved.iter().map(|m| m.planned_start).collect();
    let ends: Vec<NaiveDate> = replan.moved.iter().map(|m| m.planned_end).collect();
    sqlx::query(
        "UPDATE work_order_stages s SET planned_start = m.new_start, planned_end = m.new_end \
         FROM UNNEST($2::text[], $3::text[], $4::date[], $5::date[]) \
           AS m(product, stage, new_start, new_end) \
         WHERE s.work_order_id = $1 AND s.product = m.product AND s.stage = m.stage",
    )
    .bind(id)
    .bind(&products)
    .bind(&stages)
    .bind(&starts)
    .bind(&ends)
    .execute(&mut *conn)
    .await?;

    sqlx::query(
        "DELETE FROM stage_bookings b USING UNNEST($3::text[], $4::text[]) AS m(product, stage) \
         WHERE b.work_order_id = $1 AND b.day >= $2 \
           AND b.product = m.product AND b.stage = m.stage",
    )
    .bind(id)
    .bind(from)
    .bind(&products)
    .bind(&stages)
    .execute(&mut *conn)
    .await?;
    let per_stage: Vec<(&str, &str, NaiveDate, f64)> = replan
        .moved
        .iter()
        .flat_map(|moved| {
            moved.booked.iter().map(move |(day, hours)| {
                (moved.product.as_str(), moved.stage.as_str(), *day, *hours)
            })
        })
        .collect();
    insert_stage_bookings(conn, id, &per_stage).await?;

    let current: Vec<(String, NaiveDate, f64)> = sqlx::query_as(
        "SELECT work_centre, day, hours FROM capacity_bookings \
         WHERE work_order_id = $1 AND day >= $2",
    )
    .bind(id)
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    let booked = reschedule::rebooked(&current, replan);
    sqlx::query("DELETE FROM capacity_bookings WHERE work_order_id = $1 AND day >= $2")
        .bind(id)
        .bind(from)
        .execute(&mut *conn)
        .await?;
    let centres: Vec<&str> = booked.keys().map(|(centre, _)| centre.as_str()).collect();
    let days: Vec<NaiveDate> = booked.keys().map(|(_, day)| *day).collect();
    let hours: Vec<f64> = booked.values().copied().collect();
    sqlx::query(
        "INSERT INTO capacity_bookings (work_centre, day, work_order_id, hours) \
         SELECT centre, day, $1, hours \
         FROM UNNEST($2::text[], $3::date[], $4::float8[]) AS b(centre, day, hours)",
    )
    .bind(id)
    .bind(&centres)
    .bind(&days)
    .bind(&hours)
    .execute(&mut *conn)
    .await?;

    sqlx::query(
        "UPDATE work_orders SET planned_start = $2, planned_end = $3 WHERE work_order_id = $1",
    )
    .bind(id)
    .bind(replan.planned_start)
    .bind(replan.planned_end)
    .execute(conn)
    .await?;
    Ok(())
}
