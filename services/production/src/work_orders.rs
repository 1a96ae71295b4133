//! Work orders: one per customer order, with a stage per product and routing
//! stage, planned dates from the scheduler, actual dates and quantities from
//! the MES, and the capacity it booked.
//!
//! [`insert`] stores a [`Schedule`] (work order, stages and bookings); [`find`]
//! reads one back, optionally locking it so two MES events of one order
//! apply one after the other. [`progress`] and [`projected_end`] are the pure
//! figures reported to the saga; the `*_proto`/`*_event` functions shape the
//! stored plan for the wire.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use gendan_proto::date_to_string;
use gendan_proto::v1;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;
use crate::schedule::{Calendar, Schedule};

pub const STATUS_PLANNED: &str = "planned";
pub const STATUS_IN_PROGRESS: &str = "in_progress";
pub const STATUS_COMPLETED: &str = "completed";
pub const STATUS_CANCELLED: &str = "cancelled";
pub const STAGE_PLANNED: &str = "planned";
pub const STAGE_RUNNING: &str = "running";
pub const STAGE_COMPLETED: &str = "completed";

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WorkOrder {
    pub work_order_id: Uuid,
    pub order_id: String,
    pub status: String,
    pub planned_start: NaiveDate,
    pub planned_end: NaiveDate,
    pub completed_on: Option<NaiveDate>,
    /// Trace of the command that planned it.
    pub traceparent: Option<String>,
    /// By product (request order), then routing order.
    #[sqlx(skip)]
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Stage {
    pub product: String,
    pub stage: String,
    pub product_seq: i32,
    pub stage_seq: i32,
    pub work_centre: String,
    pub quantity: i64,
    pub hours_per_unit: f64,
    pub setup_hours: f64,
    pub hours: f64,
    pub planned_start: NaiveDate,
    pub planned_end: NaiveDate,
    pub actual_start: Option<DateTime<Utc>>,
    pub actual_end: Option<DateTime<Utc>>,
    pub good_quantity: i64,
    pub scrap_quantity: i64,
    pub status: String,
}

impl WorkOrder {
    pub fn stage(&self, product: &str, stage: &str) -> Option<&Stage> {
        self.stages
            .iter()
            .find(|s| s.product == product && s.stage == stage)
    }

    pub fn has_product(&self, product: &str) -> bool {
        self.stages.iter().any(|s| s.product == product)
    }

    /// The last routing stage of each product: what "finished goods" means.
    pub fn last_stages(&self) -> impl Iterator<Item = &Stage> {
        let mut last: BTreeMap<i32, &Stage> = BTreeMap::new();
        for stage in &self.stages {
            let entry = last.entry(stage.product_seq).or_insert(stage);
            if stage.stage_seq > entry.stage_seq {
                *entry = stage;
            }
        }
        last.into_values()
    }

    pub fn all_stages_completed(&self) -> bool {
        !self.stages.is_empty() && self.stages.iter().all(|s| s.status == STAGE_COMPLETED)
    }
}

/// Stores `schedule` as the work order of `order_id`, with its bookings.
pub async fn insert(
    conn: &mut PgConnection,
    order_id: &str,
    schedule: &Schedule,
    traceparent: Option<&str>,
) -> Result<WorkOrder> {
    let work_order_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO work_orders \
           (work_order_id, order_id, status, planned_start, planned_end, traceparent) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(work_order_id)
    .bind(order_id)
    .bind(STATUS_PLANNED)
    .bind(schedule.start)
    .bind(schedule.earliest_completion)
    .bind(traceparent)
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
    let column = |f: fn(&crate::schedule::ScheduledStage) -> String| -> Vec<String> {
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
    sqlx::query(
        "INSERT INTO work_order_stages \
           (work_order_id, product, stage, product_seq, stage_seq, work_centre, quantity, \
            hours_per_unit, setup_hours, hours, planned_start, planned_end) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::int4[], $5::int4[], $6::text[], \
            $7::int8[], $8::float8[], $9::float8[], $10::float8[], $11::date[], $12::date[])",
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

    let stored = find(conn, order_id, false).await?;
    debug_assert!(stored.is_some(), "work order just inserted");
    stored.ok_or_else(|| crate::Error::WorkOrderNotFound(order_id.to_owned()))
}

const SELECT_WORK_ORDER: &str = "SELECT work_order_id, order_id, status, planned_start, \
     planned_end, completed_on, traceparent FROM work_orders WHERE order_id = $1";
const SELECT_WORK_ORDER_FOR_UPDATE: &str = "SELECT work_order_id, order_id, status, \
     planned_start, planned_end, completed_on, traceparent FROM work_orders \
     WHERE order_id = $1 FOR UPDATE";

/// The work order of `order_id` with its stages; `lock` holds its row until
/// the transaction ends.
pub async fn find(
    conn: &mut PgConnection,
    order_id: &str,
    lock: bool,
) -> Result<Option<WorkOrder>> {
    let sql = if lock {
        SELECT_WORK_ORDER_FOR_UPDATE
    } else {
        SELECT_WORK_ORDER
    };
    let found: Option<WorkOrder> = sqlx::query_as(sql)
        .bind(order_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(mut work_order) = found else {
        return Ok(None);
    };
    work_order.stages = sqlx::query_as(
        "SELECT product, stage, product_seq, stage_seq, work_centre, quantity, hours_per_unit, \
           setup_hours, hours, planned_start, planned_end, actual_start, actual_end, \
           good_quantity, scrap_quantity, status \
         FROM work_order_stages WHERE work_order_id = $1 ORDER BY product_seq, stage_seq",
    )
    .bind(work_order.work_order_id)
    .fetch_all(conn)
    .await?;
    Ok(Some(work_order))
}

/// Good units through the last stage over planned units, per product,
/// averaged across products; 0..=1.
pub fn progress(work_order: &WorkOrder) -> f64 {
    let ratios: Vec<f64> = work_order
        .last_stages()
        .map(|stage| {
            if stage.quantity <= 0 {
                return 1.0;
            }
            (stage.good_quantity as f64 / stage.quantity as f64).clamp(0.0, 1.0)
        })
        .collect();
    if ratios.is_empty() {
        return 0.0;
    }
    ratios.iter().sum::<f64>() / ratios.len() as f64
}

/// When the work order will likely be finished, seen from `today`.
///
/// Each unfinished stage still needs its missing good units (plus its set-up
/// if it has not started) at its work centre's full daily capacity, from
/// today or from the projected end of the stage before it. A stage never
/// projects earlier than its plan: being ahead on one stage does not pull
/// the booked capacity of the next one forward, but being behind pushes
/// everything after it.
pub fn projected_end(
    work_order: &WorkOrder,
    calendars: &HashMap<String, Calendar>,
    today: NaiveDate,
) -> NaiveDate {
    let mut projected = work_order.planned_end;
    let mut by_product: BTreeMap<i32, Vec<&Stage>> = BTreeMap::new();
    for stage in &work_order.stages {
        by_product.entry(stage.product_seq).or_default().push(stage);
    }
    for stages in by_product.values() {
        let mut cursor = today;
        for stage in stages {
            if stage.status == STAGE_COMPLETED {
                continue;
            }
            let missing_units = (stage.quantity - stage.good_quantity).max(0) as f64;
            let setup = if stage.actual_start.is_none() {
                stage.setup_hours
            } else {
                0.0
            };
            let remaining_hours = missing_units * stage.hours_per_unit + setup;
            let finish = calendars
                .get(&stage.work_centre)
                .and_then(|calendar| calendar.finish_date(cursor, remaining_hours))
                .unwrap_or(cursor);
            cursor = finish.max(stage.planned_end);
        }
        projected = projected.max(cursor);
    }
    projected
}

pub fn stage_plans(work_order: &WorkOrder) -> Vec<v1::StagePlan> {
    work_order
        .stages
        .iter()
        .map(|stage| v1::StagePlan {
            product: stage.product.clone(),
            stage: stage.stage.clone(),
            work_centre: stage.work_centre.clone(),
            quantity: u32::try_from(stage.quantity).unwrap_or(u32::MAX),
            hours: stage.hours,
            planned_start: date_to_string(stage.planned_start),
            planned_end: date_to_string(stage.planned_end),
        })
        .collect()
}

pub fn planned_event(work_order: &WorkOrder) -> v1::WorkOrderPlanned {
    v1::WorkOrderPlanned {
        order_id: work_order.order_id.clone(),
        work_order_id: work_order.work_order_id.to_string(),
        planned_start: date_to_string(work_order.planned_start),
        planned_end: date_to_string(work_order.planned_end),
        stages: stage_plans(work_order),
    }
}

fn quantity(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

fn optional_date(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| date_to_string(at.date_naive()))
        .unwrap_or_default()
}

pub fn to_proto(work_order: &WorkOrder) -> v1::WorkOrder {
    v1::WorkOrder {
        work_order_id: work_order.work_order_id.to_string(),
        order_id: work_order.order_id.clone(),
        status: work_order.status.clone(),
        planned_start: date_to_string(work_order.planned_start),
        planned_end: date_to_string(work_order.planned_end),
        stages: work_order
            .stages
            .iter()
            .map(|stage| v1::StageProgress {
                product: stage.product.clone(),
                stage: stage.stage.clone(),
                work_centre: stage.work_centre.clone(),
                planned_quantity: quantity(stage.quantity),
                good_quantity: quantity(stage.good_quantity),
                scrap_quantity: quantity(stage.scrap_quantity),
                planned_start: date_to_string(stage.planned_start),
                planned_end: date_to_string(stage.planned_end),
                actual_start: optional_date(stage.actual_start),
                actual_end: optional_date(stage.actual_end),
                status: stage.status.clone(),
            })
            .collect(),
        progress: progress(work_order),
    }
}

/// Good finished units (last stages) and scrap of every stage.
pub fn totals(work_order: &WorkOrder) -> (u32, u32) {
    let good: i64 = work_order.last_stages().map(|s| s.good_quantity).sum();
    let scrap: i64 = work_order.stages.iter().map(|s| s.scrap_quantity).sum();
    (quantity(good), quantity(scrap))
}

/// Planned hours of the work order per work centre.
pub fn hours_by_work_centre(work_order: &WorkOrder) -> HashMap<String, f64> {
    let mut hours = HashMap::new();
    for stage in &work_order.stages {
        *hours.entry(stage.work_centre.clone()).or_insert(0.0) += stage.hours;
    }
    hours
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

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn stage(product_seq: i32, stage_seq: i32, quantity: i64, good: i64, end: &str) -> Stage {
        Stage {
            product: format!("p{product_seq}"),
            stage: format!("s{stage_seq}"),
            product_seq,
            stage_seq,
            work_centre: "SEW".into(),
            quantity,
            hours_per_unit: 1.0,
            setup_hours: 0.0,
            hours: quantity as f64,
            planned_start: date("2026-03-02"),
            planned_end: date(end),
            actual_start: None,
            actual_end: None,
            good_quantity: good,
            scrap_quantity: 0,
            status: STAGE_PLANNED.into(),
        }
    }

    fn work_order(stages: Vec<Stage>) -> WorkOrder {
        WorkOrder {
            work_order_id: Uuid::nil(),
            order_id: "o-1".into(),
            status: STATUS_PLANNED.into(),
            planned_start: date("2026-03-02"),
            planned_end: stages.iter().map(|s| s.planned_end).max().unwrap(),
            completed_on: None,
            traceparent: None,
            stages,
        }
    }

    #[test]
    fn progress_counts_good_units_of_last_stages_averaged_over_products() {
        let wo = work_order(vec![
            stage(0, 0, 100, 100, "2026-03-03"),
            stage(0, 1, 100, 50, "2026-03-04"),
            stage(1, 0, 10, 20, "2026-03-04"), // over-delivery counts as done
        ]);
        assert!((progress(&wo) - 0.75).abs() < 1e-9);
        assert_eq!(totals(&wo), (70, 0));
    }

    #[test]
    fn projection_keeps_the_plan_when_on_time_and_extends_when_behind() {
        let calendars = HashMap::from([(
            "SEW".to_owned(),
            Calendar {
                hours_per_day: 8.0,
                ..Calendar::default()
            },
        )]);
        let wo = work_order(vec![stage(0, 0, 16, 8, "2026-03-10")]);
        // 8 hours left on Monday the 2nd: done the same day, plan unchanged.
        assert_eq!(
            projected_end(&wo, &calendars, date("2026-03-02")),
            date("2026-03-10")
        );
        // The same 8 hours left on the planned end day's Friday after: late.
        assert_eq!(
            projected_end(&wo, &calendars, date("2026-03-13")),
            date("2026-03-13")
        );
        // Two stages: the second starts after the first's projected end.
        let wo = work_order(vec![
            stage(0, 0, 16, 0, "2026-03-03"),
            stage(0, 1, 16, 0, "2026-03-05"),
        ]);
        assert_eq!(
            projected_end(&wo, &calendars, date("2026-03-05")),
            date("2026-03-09")
        );
    }
}
