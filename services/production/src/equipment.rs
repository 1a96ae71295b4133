//! Equipment down and up, as the MES reports them: the stoppage is stored as
//! a downtime, the work centre shows as down, and the work it hits is
//! re-planned around it.
//!
//! | MES event | effect | events emitted |
//! | --- | --- | --- |
//! | equipment down | a downtime from `at` for `expected_hours` (0: the centre's typical repair time); every open work order (production run or rework) with an unfinished stage on the centre planned during the downtime gets that stage, and the later stages of the same product, re-booked past it ([`reschedule`]) | `EquipmentStatusChanged` (down); `WorkOrderRescheduled` (`resolved = false`) for each work order whose end moved |
//! | equipment up | the downtime ends at `at`, earlier or later than expected; the work orders it moved are re-planned against the real downtime, in the same order (back towards their plan when it came up early, never before it) | `EquipmentStatusChanged` (up); `WorkOrderRescheduled` (`resolved = true`) for each work order whose move was announced, or whose end moves now |
//!
//! Planning sees a downtime as soon as it is stored
//! ([`planning::capacity_from`]), so capacity checks and new plans avoid it
//! too. Everything happens in the consumer's transaction, under the
//! capacity lock ([`planning::lock_capacity`]): the downtime, every work
//! order's re-plan and the events commit together or not at all. A down
//! while the centre is already down, a repeat of one already recorded (same
//! centre and time) and an up while it is up change nothing and emit
//! nothing. An event for an unknown work centre, or with an expected
//! duration that is not a number of hours within the planning horizon, is
//! rejected (dead-lettered with the reason). A work order that cannot be
//! re-planned (no capacity within the horizon) keeps its plan and is
//! logged: the breakdown is still recorded, and planning keeps avoiding it.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_messaging::outbox;
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{
    EquipmentStatusChanged, MesEquipmentDown, StageProgress, WorkOrderRescheduled,
};
use gendan_proto::{date_to_string, timestamp_from};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::catalog::{self, WorkCentreDef};
use crate::downtime::{self, MAX_EXPECTED_HOURS, Window};
use crate::reschedule::{self, Replan, StageBookings, StageKey};
use crate::schedule::{Calendar, Load};
use crate::work_orders::{self, WorkOrder, store};
use crate::{SERVICE, mes, planning};

/// The open stoppage of a centre, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
struct OpenDowntime {
    downtime_id: i64,
    reason: String,
    started_at: DateTime<Utc>,
}

/// A work order a downtime moved, as recorded: its end before the
/// downtime and whether the move was announced.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Recorded {
    work_order_id: Uuid,
    previous_end: NaiveDate,
    announced: bool,
}

/// Applies an MES "equipment down" that happened at `at`.
#[tracing::instrument(skip_all, fields(work_centre = %event.work_centre, expected_hours = event.expected_hours))]
pub async fn down(
    conn: &mut PgConnection,
    message: &Incoming,
    event: &MesEquipmentDown,
    at: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let centre = known_centre(conn, &event.work_centre, message).await?;
    let expected = event.expected_hours;
    if !expected.is_finite() || !(0.0..=MAX_EXPECTED_HOURS).contains(&expected) {
        return Err(HandlerError::Rejected(format!(
            "expected_hours {expected} of work centre {:?} down is not between 0 and \
             {MAX_EXPECTED_HOURS} hours",
            centre.code
        )));
    }
    // Taken before the repeat check: two replicas handling the same report
    // at once must not both record it.
    planning::lock_capacity(conn).await?;
    let recorded: Option<i64> = sqlx::query_scalar(
        "SELECT downtime_id FROM downtimes \
         WHERE work_centre = $1 AND (ended_at IS NULL OR started_at = $2) LIMIT 1",
    )
    .bind(&centre.code)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(downtime_id) = recorded {
        tracing::info!(
            downtime_id,
            "centre already down or stoppage already recorded, nothing to do"
        );
        return Ok(());
    }

    let hours = downtime::repair_hours(expected, centre.typical_repair_hours);
    let window = Window::lasting(&centre.code, at, hours);
    let reason = event.reason.trim();
    let downtime_id: i64 = sqlx::query_scalar(
        "INSERT INTO downtimes (work_centre, reason, started_at, expected_hours) \
         VALUES ($1, $2, $3, $4) RETURNING downtime_id",
    )
    .bind(&centre.code)
    .bind(reason)
    .bind(at)
    .bind(window.hours())
    .fetch_one(&mut *conn)
    .await?;
    record_equipment_event(conn, &centre.code, true, reason, at).await?;

    let (first, last) = (window.first_day(), window.last_day());
    let hit = store::open_on_centre(conn, &centre.code, first, last).await?;
    let moves: Vec<Move> = hit
        .iter()
        .map(|work_order| {
            // A moved stage never starts before it was planned to.
            let moved = reschedule::stages_to_move(work_order, &centre.code, first, last);
            let floors = work_order
                .stages
                .iter()
                .map(|stage| {
                    (
                        (stage.product.clone(), stage.stage.clone()),
                        stage.planned_start,
                    )
                })
                .filter(|(key, _)| moved.contains(key))
                .collect();
            Move::new(work_order, floors)
        })
        .filter(|planned| !planned.stages.is_empty())
        .collect();
    let mut capacity = Capacity::read(conn, first, &moves).await?;
    let mut events = vec![status_event(message, &centre.code, true, reason, at)];
    // Re-planned one after the other in memory, the oldest plan first, and
    // stored together afterwards: a statement per table, not per work order.
    let mut replans: Vec<(Uuid, Replan)> = Vec::new();
    let mut recorded: Vec<(&Move, bool)> = Vec::new();
    for planned in &moves {
        let Some(replan) = capacity.move_stages(planned) else {
            continue;
        };
        let announced = replan.end_moved();
        if announced {
            let delay = downtime::delay_days(replan.previous_end, replan.planned_end);
            let rescheduled = WorkOrderRescheduled {
                cause: downtime::down_cause(&window, reason, delay),
                downtime_hours: window.hours(),
                resolved: false,
                ..rescheduled(planned.work_order, &centre.code, &replan)
            };
            events.push(announce(message, planned.work_order, &rescheduled));
        }
        recorded.push((planned, announced));
        replans.push((planned.work_order.work_order_id, replan));
    }
    store::save_replans(conn, &replans, first).await?;
    record_moves(conn, downtime_id, &recorded).await?;
    tracing::info!(
        downtime_id,
        hours = window.hours(),
        moved = moves.len(),
        announced = events.len() - 1,
        "equipment down, work re-planned around it"
    );
    outbox::write(conn, &events).await?;
    Ok(())
}

/// Applies an MES "equipment up" of `work_centre` that happened at `at`.
#[tracing::instrument(skip_all, fields(work_centre = %work_centre))]
pub async fn up(
    conn: &mut PgConnection,
    message: &Incoming,
    work_centre: &str,
    at: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let centre = known_centre(conn, work_centre, message).await?;
    planning::lock_capacity(conn).await?;
    let open: Option<OpenDowntime> = sqlx::query_as(
        "SELECT downtime_id, reason, started_at FROM downtimes \
         WHERE work_centre = $1 AND ended_at IS NULL FOR NO KEY UPDATE",
    )
    .bind(&centre.code)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(open) = open else {
        tracing::info!("centre is not down, nothing to do");
        return Ok(());
    };
    if at < open.started_at {
        // An up from before this downtime began belongs to an earlier one
        // (a late or repeated report): it must not end the new breakdown.
        tracing::info!(%at, started_at = %open.started_at, "stale equipment up ignored");
        return Ok(());
    }
    let window = Window {
        work_centre: centre.code.clone(),
        start: open.started_at,
        end: at,
    };
    sqlx::query("UPDATE downtimes SET ended_at = $2 WHERE downtime_id = $1")
        .bind(open.downtime_id)
        .bind(window.end)
        .execute(&mut *conn)
        .await?;
    record_equipment_event(conn, &centre.code, false, "", at).await?;

    let recorded: Vec<Recorded> = sqlx::query_as(
        "SELECT work_order_id, previous_end, announced FROM downtime_work_orders \
         WHERE downtime_id = $1 ORDER BY position",
    )
    .bind(open.downtime_id)
    .fetch_all(&mut *conn)
    .await?;
    let stages: Vec<(Uuid, String, String, NaiveDate)> = sqlx::query_as(
        "SELECT work_order_id, product, stage, previous_start FROM downtime_stages \
         WHERE downtime_id = $1",
    )
    .bind(open.downtime_id)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = recorded.iter().map(|moved| moved.work_order_id).collect();
    let work_orders = store::by_ids(conn, &ids).await?;
    // A work order finished or cancelled since has nothing left to move; it
    // is only told the downtime is over.
    let plans: Vec<Move> = work_orders
        .iter()
        .filter(|work_order| work_order.is_open())
        .map(|work_order| {
            // Back to where the stages were before the downtime at the
            // earliest.
            let floors = stages
                .iter()
                .filter(|(id, ..)| *id == work_order.work_order_id)
                .map(|(_, product, stage, start)| ((product.clone(), stage.clone()), *start))
                .collect();
            Move::new(work_order, floors)
        })
        .collect();
    let mut capacity = Capacity::read(conn, window.first_day(), &plans).await?;
    let mut events = vec![status_event(message, &centre.code, false, "", at)];
    // As for a down: re-planned in memory in the recorded order, stored
    // together afterwards.
    let mut replans: Vec<(Uuid, Replan)> = Vec::new();
    for moved in &recorded {
        let Some(work_order) = work_orders
            .iter()
            .find(|wo| wo.work_order_id == moved.work_order_id)
        else {
            continue;
        };
        let previous_end = work_order.planned_end;
        let plan = plans
            .iter()
            .find(|plan| plan.work_order.work_order_id == moved.work_order_id);
        let replan = plan.and_then(|plan| capacity.move_stages(plan));
        let projected_end = replan
            .as_ref()
            .map_or(previous_end, |replan| replan.planned_end);
        let stages = replanned_stages(work_order, replan.as_ref());
        if let Some(replan) = replan {
            replans.push((work_order.work_order_id, replan));
        }
        if !moved.announced && projected_end == previous_end {
            continue;
        }
        let delay = downtime::delay_days(moved.previous_end, projected_end);
        let rescheduled = WorkOrderRescheduled {
            order_id: work_order.order_id.clone(),
            work_order_id: work_order.work_order_id.to_string(),
            revision: work_order.revision_number(),
            work_centre: centre.code.clone(),
            cause: downtime::up_cause(&window, &open.reason, delay),
            previous_end: date_to_string(previous_end),
            projected_end: date_to_string(projected_end),
            downtime_hours: window.hours(),
            resolved: true,
            stages,
        };
        events.push(announce(message, work_order, &rescheduled));
    }
    store::save_replans(conn, &replans, window.first_day()).await?;
    tracing::info!(
        downtime_id = open.downtime_id,
        hours = window.hours(),
        resolved = events.len() - 1,
        "equipment up, work re-planned against the real downtime"
    );
    outbox::write(conn, &events).await?;
    Ok(())
}

/// One work order to re-plan: the stages that move, each with its floor
/// (the earliest it may start).
struct Move<'a> {
    work_order: &'a WorkOrder,
    stages: Vec<StageKey>,
    floors: HashMap<StageKey, NaiveDate>,
}

impl<'a> Move<'a> {
    fn new(work_order: &'a WorkOrder, floors: HashMap<StageKey, NaiveDate>) -> Self {
        Move {
            work_order,
            stages: floors.keys().cloned().collect(),
            floors,
        }
    }

    /// The work centres of the stages that move: the only ones its
    /// re-plan gives hours back to and books on.
    fn work_centres(&self) -> impl Iterator<Item = &'a str> + '_ {
        let work_order: &'a WorkOrder = self.work_order;
        work_order
            .stages
            .iter()
            .filter(move |stage| {
                self.stages
                    .iter()
                    .any(|(product, name)| *product == stage.product && *name == stage.stage)
            })
            .map(|stage| stage.work_centre.as_str())
    }
}

/// The capacity a downtime's re-plans share, from its first day on. Every
/// work order to re-plan gives its moved stages' hours back before any is
/// re-booked, then they re-book one after the other into the same load, so
/// the first (the oldest plan) gets first claim on all there is.
struct Capacity {
    from: NaiveDate,
    calendars: HashMap<String, Calendar>,
    load: Load,
    bookings: HashMap<Uuid, StageBookings>,
    /// The bookings of a work order that has none stored.
    no_bookings: StageBookings,
    /// What each work order gave back, to book again if its re-plan fails.
    released: HashMap<Uuid, Vec<(String, NaiveDate, f64)>>,
}

impl Capacity {
    /// The capacity of the work centres `moves` re-plan on; nothing is read
    /// when nothing moves.
    async fn read(
        conn: &mut PgConnection,
        from: NaiveDate,
        moves: &[Move<'_>],
    ) -> Result<Self, HandlerError> {
        let ids: Vec<Uuid> = moves
            .iter()
            .map(|planned| planned.work_order.work_order_id)
            .collect();
        let mut centres: Vec<String> = moves
            .iter()
            .flat_map(|planned| planned.work_centres())
            .map(str::to_owned)
            .collect();
        centres.sort_unstable();
        centres.dedup();
        let (calendars, load) = planning::capacity_from(conn, from, &centres).await?;
        let bookings = store::stage_bookings(conn, &ids).await?;
        let mut capacity = Capacity {
            from,
            calendars,
            load,
            bookings,
            no_bookings: StageBookings::new(),
            released: HashMap::new(),
        };
        for planned in moves {
            let id = planned.work_order.work_order_id;
            let released = reschedule::releasable(
                planned.work_order,
                &planned.stages,
                capacity.bookings.get(&id).unwrap_or(&capacity.no_bookings),
                from,
            );
            for (work_centre, day, hours) in &released {
                capacity.load.release(work_centre, *day, *hours);
            }
            capacity.released.insert(id, released);
        }
        Ok(capacity)
    }

    /// Re-plans the moved stages of one work order into the shared load,
    /// for the caller to store ([`store::save_replans`]); `None` when they
    /// cannot be re-planned (logged; the work order keeps its plan).
    fn move_stages(&mut self, planned: &Move<'_>) -> Option<Replan> {
        let work_order = planned.work_order;
        // A failed re-plan may have booked part of its stages.
        let before = self.load.clone();
        let replan = reschedule::replan(
            work_order,
            &planned.stages,
            &planned.floors,
            self.bookings
                .get(&work_order.work_order_id)
                .unwrap_or(&self.no_bookings),
            self.from,
            &self.calendars,
            &mut self.load,
        );
        match replan {
            Ok(replan) => Some(replan),
            Err(err) => {
                // Its hours stay booked where they were: the work order
                // after it must not take them.
                self.load = before;
                let released = self.released.get(&work_order.work_order_id);
                for (work_centre, day, hours) in released.into_iter().flatten() {
                    self.load.book(work_centre, *day, *hours);
                }
                tracing::warn!(
                    work_order_id = %work_order.work_order_id,
                    order_id = %work_order.order_id,
                    error = %err,
                    "work order cannot be re-planned around the downtime, keeping its plan"
                );
                None
            }
        }
    }
}

/// The work centre an equipment event names, or a rejection: retrying
/// cannot make an unknown centre known.
async fn known_centre(
    conn: &mut PgConnection,
    work_centre: &str,
    message: &Incoming,
) -> Result<WorkCentreDef, HandlerError> {
    let code = work_centre.trim();
    catalog::work_centre(conn, code).await?.ok_or_else(|| {
        HandlerError::Rejected(format!(
            "unknown work centre {code:?} in {}",
            message.type_name()
        ))
    })
}

/// Keeps the raw report, for availability figures.
async fn record_equipment_event(
    conn: &mut PgConnection,
    work_centre: &str,
    down: bool,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO equipment_events (work_centre, down, reason, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(work_centre)
    .bind(down)
    .bind(reason)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Remembers which work orders the downtime moved, in one statement for
/// the work orders and one for their stages: each work order's place in
/// the re-plan order (its index in `moved`), its end before the downtime,
/// whether the move was announced, and its moved stages' starts before it.
async fn record_moves(
    conn: &mut PgConnection,
    downtime_id: i64,
    moved: &[(&Move<'_>, bool)],
) -> Result<(), HandlerError> {
    if moved.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = moved
        .iter()
        .map(|(planned, _)| planned.work_order.work_order_id)
        .collect();
    let positions: Vec<i32> = (0..moved.len())
        .map(|position| i32::try_from(position).unwrap_or(i32::MAX))
        .collect();
    let previous_ends: Vec<NaiveDate> = moved
        .iter()
        .map(|(planned, _)| planned.work_order.planned_end)
        .collect();
    let announced: Vec<bool> = moved.iter().map(|(_, announced)| *announced).collect();
    sqlx::query(
        "INSERT INTO downtime_work_orders \
           (downtime_id, work_order_id, position, previous_end, announced) \
         SELECT $1, * FROM UNNEST($2::uuid[], $3::int4[], $4::date[], $5::bool[])",
    )
    .bind(downtime_id)
    .bind(&ids)
    .bind(&positions)
    .bind(&previous_ends)
    .bind(&announced)
    .execute(&mut *conn)
    .await?;

    let floors: Vec<(Uuid, &StageKey, NaiveDate)> = moved
        .iter()
        .flat_map(|(planned, _)| {
            let id = planned.work_order.work_order_id;
            planned
                .floors
                .iter()
                .map(move |(key, start)| (id, key, *start))
        })
        .collect();
    let stage_ids: Vec<Uuid> = floors.iter().map(|(id, ..)| *id).collect();
    let products: Vec<&str> = floors
        .iter()
        .map(|(_, (product, _), _)| product.as_str())
        .collect();
    let stages: Vec<&str> = floors
        .iter()
        .map(|(_, (_, stage), _)| stage.as_str())
        .collect();
    let starts: Vec<NaiveDate> = floors.iter().map(|(.., start)| *start).collect();
    sqlx::query(
        "INSERT INTO downtime_stages (downtime_id, work_order_id, product, stage, previous_start) \
         SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::date[])",
    )
    .bind(downtime_id)
    .bind(&stage_ids)
    .bind(&products)
    .bind(&stages)
    .bind(&starts)
    .execute(conn)
    .await?;
    Ok(())
}

/// The announcement of `replan`, cause and downtime still to fill in.
fn rescheduled(work_order: &WorkOrder, work_centre: &str, replan: &Replan) -> WorkOrderRescheduled {
    WorkOrderRescheduled {
        order_id: work_order.order_id.clone(),
        work_order_id: work_order.work_order_id.to_string(),
        revision: work_order.revision_number(),
        work_centre: work_centre.to_owned(),
        previous_end: date_to_string(replan.previous_end),
        projected_end: date_to_string(replan.planned_end),
        stages: replanned_stages(work_order, Some(replan)),
        ..WorkOrderRescheduled::default()
    }
}

/// The stages of `work_order` as `replan` leaves them, each projected on
/// its plan (a completed one on its actual end): the stages moved carry
/// their new dates, the others their old ones.
fn replanned_stages(work_order: &WorkOrder, replan: Option<&Replan>) -> Vec<StageProgress> {
    work_order
        .stages
        .iter()
        .map(|stage| {
            let mut progress = work_orders::stage_progress(stage);
            let moved = replan.and_then(|replan| {
                replan
                    .moved
                    .iter()
                    .find(|moved| moved.product == stage.product && moved.stage == stage.stage)
            });
            if let Some(moved) = moved {
                progress.planned_start = date_to_string(moved.planned_start);
                progress.planned_end = date_to_string(moved.planned_end);
            }
            progress.projected_end = if progress.actual_end.is_empty() {
                progress.planned_end.clone()
            } else {
                progress.actual_end.clone()
            };
            progress
        })
        .collect()
}

/// `rescheduled` as an event of the work order's order: under its trace
/// (the MES does not trace) and its workflow, caused by the MES report.
fn announce(
    message: &Incoming,
    work_order: &WorkOrder,
    rescheduled: &WorkOrderRescheduled,
) -> Outgoing {
    let cause = Cause {
        causation_id: message.envelope.event_id.clone(),
        correlation_id: work_order.order_id.clone(),
    };
    mes::order_span(message, work_order)
        .in_scope(|| Outgoing::event(SERVICE, &work_order.order_id, rescheduled, &cause))
}

fn status_event(
    message: &Incoming,
    work_centre: &str,
    down: bool,
    reason: &str,
    at: DateTime<Utc>,
) -> Outgoing {
    let changed = EquipmentStatusChanged {
        work_centre: work_centre.to_owned(),
        down,
        reason: reason.to_owned(),
        at: Some(timestamp_from(at)),
    };
    // Equipment belongs to no single order: the envelope's order id is empty.
    Outgoing::event(SERVICE, "", &changed, &Cause::from_incoming(message))
}
