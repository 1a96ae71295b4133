//! Work orders: what the factory is to make for a customer order, with a
//! stage per product and routing stage, planned dates from the scheduler,
//! actual dates and quantities from the MES, and the capacity it booked.
//!
//! An order may have several work orders over its life, each identified by
//! its kind and revision: production runs ([`KIND_PRODUCTION`], revision 1,
//! then 2, 3, ... for remakes after scrap and for runs adjusted to an
//! amended order) and reworks of goods that failed final inspection
//! ([`KIND_REWORK`], revisions 1, 2, ...); the hours a capacity check
//! reserved for an order in review are one too ([`KIND_RESERVATION`], by the
//! check's revision), so everything that counts bookings counts them. A remake makes everything anew
//! ([`WorkOrder::amendment`] 0, like the first run); a run planned for an
//! amendment records its number, supersedes the order's open run and makes
//! at each stage only what the amended order still needs beyond the good
//! units made since the last run with 0 ([`amendments`](crate::amendments)),
//! so its stages may have a quantity of 0, completed from the start.
//! [`store`] keeps them in the database; the pure functions here pick the
//! one a command or an MES event is about ([`revision`], [`current`],
//! [`for_stage`]), compute the figures reported to the saga ([`progress`],
//! [`projected_end`], [`totals`]) and shape the stored plan for the wire
//! (`*_event`, [`to_proto`], [`fact_key`]).

pub mod store;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use gendan_proto::date_to_string;
use gendan_proto::v1;
use uuid::Uuid;

use crate::schedule::Calendar;

pub const KIND_PRODUCTION: &str = "production";
pub const KIND_REWORK: &str = "rework";
/// Hours a versioned capacity check booked for an order in review
/// ([`reservations`](crate::reservations)): never released to the floor.
pub const KIND_RESERVATION: &str = "reservation";
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
    /// [`KIND_PRODUCTION`], [`KIND_REWORK`] or [`KIND_RESERVATION`].
    pub kind: String,
    /// 1, 2, ... within the order and kind.
    pub revision: i32,
    /// The amendment of the order a production run was planned for (1,
    /// 2, ...); 0 for the first run, remakes after scrap and reworks.
    pub amendment: i32,
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

/// One stage of a work order. The store reads a work order's stages as a
/// JSON array in the statement that reads the work order, so a stage is
/// deserialised from its columns by name.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
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

    /// The work centres of its unfinished stages, each once: the calendars
    /// [`projected_end`] reads.
    pub fn unfinished_centres(&self) -> Vec<String> {
        let mut centres: Vec<String> = self
            .stages
            .iter()
            .filter(|stage| stage.status != STAGE_COMPLETED)
            .map(|stage| stage.work_centre.clone())
            .collect();
        centres.sort_unstable();
        centres.dedup();
        centres
    }

    /// Neither completed nor cancelled: the MES may still report on it and
    /// cancelling the order stops it.
    pub fn is_open(&self) -> bool {
        self.status == STATUS_PLANNED || self.status == STATUS_IN_PROGRESS
    }

    pub fn is_rework(&self) -> bool {
        self.kind == KIND_REWORK
    }

    /// Hours held for an order in review, not work for the floor.
    pub fn is_reservation(&self) -> bool {
        self.kind == KIND_RESERVATION
    }

    /// The revision as the wire carries it.
    pub fn revision_number(&self) -> u32 {
        u32::try_from(self.revision).unwrap_or(1)
    }
}

/// The work order of `kind` and `revision` among an order's work orders.
pub fn revision<'a>(
    work_orders: &'a [WorkOrder],
    kind: &str,
    revision: i32,
) -> Option<&'a WorkOrder> {
    work_orders
        .iter()
        .find(|wo| wo.kind == kind && wo.revision == revision)
}

/// The latest revision of `kind`: for production, the order's current run.
pub fn current<'a>(work_orders: &'a [WorkOrder], kind: &str) -> Option<&'a WorkOrder> {
    work_orders
        .iter()
        .filter(|wo| wo.kind == kind)
        .max_by_key(|wo| wo.revision)
}

/// The work order an MES report about `product` and `stage` applies to,
/// given the order's work orders newest first: the newest open one with that
/// stage (a remake, a rework or a run adjusted to an amendment supersedes
/// what came before), else the newest with that stage at all, so a late or
/// repeated report on a finished work order lands where it did before (and
/// a cancelled one can be refused by name). Reservations are never chosen.
pub fn for_stage<'a>(
    work_orders: &'a [WorkOrder],
    product: &str,
    stage: &str,
) -> Option<&'a WorkOrder> {
    // A reservation is not on the floor: the MES never reports on one.
    let has_stage = |wo: &&WorkOrder| !wo.is_reservation() && wo.stage(product, stage).is_some();
    work_orders
        .iter()
        .filter(has_stage)
        .find(|wo| wo.is_open())
        .or_else(|| work_orders.iter().find(has_stage))
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

/// When the work order will likely be finished, seen from `today`: the
/// latest of its plan and its unfinished stages' projections
/// ([`projected_stage_ends`]).
pub fn projected_end(
    work_order: &WorkOrder,
    calendars: &HashMap<String, Calendar>,
    today: NaiveDate,
) -> NaiveDate {
    end_of(
        work_order,
        &projected_stage_ends(work_order, calendars, today),
    )
}

/// The work order's end given its stages' projected `ends`: the latest of
/// its plan and its unfinished stages' ends.
pub fn end_of(work_order: &WorkOrder, ends: &[NaiveDate]) -> NaiveDate {
    work_order
        .stages
        .iter()
        .zip(ends)
        .filter(|(stage, _)| stage.status != STAGE_COMPLETED)
        .map(|(_, end)| *end)
        .fold(work_order.planned_end, NaiveDate::max)
}

/// When each stage of the work order (in its order) will likely be done,
/// seen from `today`. A completed stage ended when it did.
///
/// Each unfinished stage still needs its missing good units (plus its set-up
/// if it has not started) at its work centre's full daily capacity, from
/// today or from the projected end of the stage before it. A stage never
/// projects earlier than its plan: being ahead on one stage does not pull
/// the booked capacity of the next one forward, but being behind pushes
/// everything after it.
pub fn projected_stage_ends(
    work_order: &WorkOrder,
    calendars: &HashMap<String, Calendar>,
    today: NaiveDate,
) -> Vec<NaiveDate> {
    let mut ends: Vec<NaiveDate> = work_order
        .stages
        .iter()
        .map(|stage| {
            stage
                .actual_end
                .map_or(stage.planned_end, |at| at.date_naive())
        })
        .collect();
    let mut by_product: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (index, stage) in work_order.stages.iter().enumerate() {
        by_product.entry(stage.product_seq).or_default().push(index);
    }
    for indexes in by_product.values() {
        let mut cursor = today;
        for &index in indexes {
            let stage = &work_order.stages[index];
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
            ends[index] = cursor;
        }
    }
    ends
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

/// What names the facts announced about one work order (planned,
/// completed): the same key every time, so announcing one again keeps its
/// event id.
pub fn fact_key(work_order: &WorkOrder) -> String {
    format!("work_order:{}", work_order.work_order_id)
}

pub fn planned_event(work_order: &WorkOrder) -> v1::WorkOrderPlanned {
    debug_assert!(!work_order.is_rework(), "a rework answers ReworkPlanned");
    v1::WorkOrderPlanned {
        order_id: work_order.order_id.clone(),
        work_order_id: work_order.work_order_id.to_string(),
        planned_start: date_to_string(work_order.planned_start),
        planned_end: date_to_string(work_order.planned_end),
        stages: stage_plans(work_order),
        revision: work_order.revision_number(),
    }
}

pub fn rework_planned_event(work_order: &WorkOrder) -> v1::ReworkPlanned {
    debug_assert!(
        work_order.is_rework(),
        "a production run answers WorkOrderPlanned"
    );
    v1::ReworkPlanned {
        order_id: work_order.order_id.clone(),
        revision: work_order.revision_number(),
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
        stages: work_order.stages.iter().map(stage_progress).collect(),
        progress: progress(work_order),
    }
}

/// Where `stage` stands, without a projection.
pub fn stage_progress(stage: &Stage) -> v1::StageProgress {
    v1::StageProgress {
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
        projected_end: String::new(),
    }
}

/// Every stage of `work_order` with its projected end (`ends`, as
/// [`projected_stage_ends`] gives them).
pub fn projected_stages(work_order: &WorkOrder, ends: &[NaiveDate]) -> Vec<v1::StageProgress> {
    debug_assert_eq!(work_order.stages.len(), ends.len());
    work_order
        .stages
        .iter()
        .zip(ends)
        .map(|(stage, end)| v1::StageProgress {
            projected_end: date_to_string(*end),
            ..stage_progress(stage)
        })
        .collect()
}

/// Good finished units (last stages) and scrap of every stage.
pub fn totals(work_order: &WorkOrder) -> (u32, u32) {
    let good: i64 = work_order.last_stages().map(|s| s.good_quantity).sum();
    let scrap: i64 = work_order.stages.iter().map(|s| s.scrap_quantity).sum();
    (quantity(good), quantity(scrap))
}

/// Planned hours of the work order per work centre. A centre whose stages
/// take no hours (nothing left to make there) is left out: it has nothing
/// to cost.
pub fn hours_by_work_centre(work_order: &WorkOrder) -> HashMap<String, f64> {
    let mut hours = HashMap::new();
    for stage in work_order.stages.iter().filter(|stage| stage.hours > 0.0) {
        *hours.entry(stage.work_centre.clone()).or_insert(0.0) += stage.hours;
    }
    hours
}

#[cfg(test)]
mod tests;
