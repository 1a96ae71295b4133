//! Saga commands to production (`gendan.cmd.production.*`).
//!
//! | command | key | first time | repeat |
//! | --- | --- | --- | --- |
//! | `CheckOrderCapacity` with `revision` ≥ 1 | order + revision | releases the order's earlier reservation, schedules against today's bookings and reserves what it answers ([`reservations`](crate::reservations): booked for the order, held 14 days); `CapacityChecked` with the revision and `reserved_until`, kept; otherwise as the row below, nothing reserved | the same `CapacityChecked` (the same event id) from what was kept, nothing booked |
//! | `CheckOrderCapacity` with `revision` 0 | — | schedules against today's bookings without booking; `CapacityChecked` (a product that cannot be made is `feasible = false` with the problem: the saga needs a reply to move the order to clarification), with the routings' hours of the order's whole quantities per work centre, set-up included (`hours_by_work_centre`, the labour of the review's cost estimate; empty with a problem). An order that already has a production run (an amended order reviewed again) is checked for what its next run would make: per stage only what the items still need beyond the good units made, against the bookings of everyone but its own open runs ([`amendments`](crate::amendments)) | checks again |
//! | `PlanWorkOrder` | order + revision | schedules, stores the production run with its capacity bookings; `WorkOrderPlanned` with the revision; a plan that cannot be made: `WorkOrderPlanningFailed` with the reason, nothing stored (and, for an amendment, nothing cancelled) | the same `WorkOrderPlanned` from the stored work order, nothing booked |
//! | `PlanWorkOrder` with `amendment` ≥ 1 | order + revision | the run makes per product and stage what the amended items still need beyond the good units made since the last run planned without an amendment; a stage with nothing to make is stored completed, without hours or bookings; the order's earlier open runs are cancelled ("superseded by amendment N") and their bookings from today released; `WorkOrderPlanned`; a run with nothing at all to make is stored completed today and `WorkOrderCompleted` (the amended quantity good, no scrap, no hours) follows at once | the same `WorkOrderPlanned`, nothing booked or cancelled (a completed run's `WorkOrderCompleted` went out the first time) |
//! | `StartRework` | order + revision | one `rework` stage per product on the work centre of its last routing stage (quantity × hours per unit + set-up), scheduled from today and booked; `ReworkPlanned` | the same `ReworkPlanned` from what is stored, nothing booked |
//! | `PlanWorkOrder` of an order with a reservation | order + revision | as above, the reservation released first in the same transaction, so the run is booked at least as early as promised unless its materials now come later; a plan that fails keeps the reservation | as above |
//! | `CancelWorkOrder` | order | cancels every open work order of the order (production runs, reworks and reservations), releases their bookings from today on; `WorkOrderCancelled` with the hours summed | answers again, releasing nothing |
//! | `ReleaseCapacity` | order | releases the order's live reservations from today on; `CapacityReleased` with the hours | the same `CapacityReleased` (event id), releasing nothing |
//! | `RestateFact` | order + awaited completion + revision | a completed work order's `WorkOrderCompleted` / `ReworkCompleted` again, the same fact (event id) as its first announcement; else `StatusReported`, where it stands ([`restate`](crate::restate)) | the same: the fact again, or the status as it is then |
//!
//! The revision rule: a work order belongs to (order, kind, revision), 0
//! counting as 1. Production runs are numbered 1 for the first, 2, 3, ...
//! for the runs after it: remakes after scrap (`amendment` 0, a new full
//! run) and runs adjusted to an amended order (`amendment` = the
//! amendment's number, stored with the run); reworks are numbered 1, 2, ...
//! on their own. A re-sent command of a revision already planned (the saga
//! re-sends on timeout, the first reply may have been lost) answers from
//! the stored work order; a new revision plans a new work order, and the
//! earlier ones stay on record (a remake's earlier run is completed or
//! cancelled by then; an amendment cancels the earlier run itself). Every
//! fact about a work order is keyed by it ([`work_orders::fact_key`]), so
//! it keeps its event id when announced again. MES reports go to the newest
//! open work order with the reported stage ([`mes`](crate::mes)), so after
//! an amendment they land on the new run.
//!
//! `StartRework` for an order without any work order, or without items, is
//! rejected (dead-lettered with the field named). So is a rework that cannot
//! be scheduled (no routing, no capacity): the contract has no failure
//! answer for it, and the dead letter carries the reason for a person.
//!
//! Every answer is written to the outbox on the consumer's connection, so it
//! commits with the effect and the inbox record.

use chrono::Utc;
use gendan_grpc::FieldError;
use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{
    CancelWorkOrder, CapacityChecked, CapacityReleased, CheckOrderCapacity, PlanWorkOrder,
    ReleaseCapacity, RestateFact, StartRework, WorkOrderCancelled, WorkOrderPlanningFailed,
};
use gendan_proto::{date_from_str, date_to_string};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::schedule::Schedule;
use crate::work_orders::store::{self, NewWorkOrder};
use crate::work_orders::{KIND_PRODUCTION, KIND_REWORK, STATUS_COMPLETED, WorkOrder};
use crate::{Error, SERVICE, amendments, planning, reservations, restate, validate, work_orders};

impl From<Error> for HandlerError {
    fn from(err: Error) -> Self {
        match err {
            // Temporary: the database or a task may work on the next delivery.
            // A deadlock or a restarting server runs the batch again.
            Error::Database(db) => HandlerError::database(db),
            Error::Runtime(_) => HandlerError::Retry(err.to_string()),
            // The message itself, or the catalogue it refers to, is wrong:
            // redelivery gives the same answer.
            Error::InvalidField(_)
            | Error::NoRouting(_)
            | Error::WorkOrderNotFound(_)
            | Error::UnknownWorkCentre(_)
            | Error::NoCapacity { .. }
            | Error::BeyondHorizon { .. } => HandlerError::Rejected(err.to_string()),
        }
    }
}

/// Handles `gendan.cmd.production.*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandHandler;

impl Handler for CommandHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<CheckOrderCapacity>() {
            return check_order_capacity(conn, message, message.payload()?).await;
        }
        if message.is::<PlanWorkOrder>() {
            return plan_work_order(conn, message, message.payload()?).await;
        }
        if message.is::<StartRework>() {
            return start_rework(conn, message, message.payload()?).await;
        }
        if message.is::<CancelWorkOrder>() {
            return cancel_work_order(conn, message, message.payload()?).await;
        }
        if message.is::<ReleaseCapacity>() {
            return release_capacity(conn, message, message.payload()?).await;
        }
        if message.is::<RestateFact>() {
            return restate::restate_fact(conn, message, message.payload()?).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown command type {:?} for {SERVICE}",
            message.type_name()
        )))
    }
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), revision = command.revision))]
async fn check_order_capacity(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CheckOrderCapacity,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let revision = validate::check_revision(command.revision, "revision").map_err(Error::from)?;
    let today = Utc::now().date_naive();
    let cause = Cause::from_incoming(message);
    let Some(revision) = revision else {
        // Unversioned: a check without a promise, as before reservations.
        let (answer, _) = assess(conn, &order_id, &command, today).await?;
        let event = Outgoing::event(SERVICE, &order_id, &answer, &cause);
        outbox::write(conn, &[event]).await?;
        return Ok(());
    };
    // Taken before the stored answer is read, so two replicas handling a
    // re-sent check at once cannot both reserve.
    planning::lock_capacity(conn).await?;
    let key = reservations::fact_key(revision);
    if let Some(answer) = reservations::answered(conn, &order_id, revision).await? {
        tracing::info!("capacity check answered before, answering it again");
        let event = Outgoing::fact(SERVICE, &order_id, &answer, &cause, &key);
        outbox::write(conn, &[event]).await?;
        return Ok(());
    }
    // The order's earlier promise gives way to this check's, in this
    // transaction: no other order can take the hours in between.
    let replaced = format!("replaced by capacity check {revision}");
    reservations::release(conn, &order_id, today, &replaced).await?;
    let (mut answer, schedule) = assess(conn, &order_id, &command, today).await?;
    answer.revision = command.revision;
    let reservation = match &schedule {
        Some(schedule) => {
            let hold_until = reservations::hold_until(today);
            let traceparent = message.traceparent.as_deref();
            let reserved =
                reservations::reserve(conn, &order_id, revision, schedule, hold_until, traceparent)
                    .await?;
            answer.reserved_until = date_to_string(hold_until);
            Some(reserved.work_order_id)
        }
        None => None,
    };
    reservations::record(conn, &order_id, revision, reservation, &answer).await?;
    let event = Outgoing::fact(SERVICE, &order_id, &answer, &cause, &key);
    outbox::write(conn, &[event]).await?;
    Ok(())
}

/// What a capacity check answers, and the schedule it answers with when
/// the order can be scheduled at all (a reservation books it).
async fn assess(
    conn: &mut PgConnection,
    order_id: &str,
    command: &CheckOrderCapacity,
    today: chrono::NaiveDate,
) -> Result<(CapacityChecked, Option<Schedule>), HandlerError> {
    let mut answer = CapacityChecked {
        order_id: order_id.to_owned(),
        requested_delivery_date: command.requested_delivery_date.clone(),
        ..CapacityChecked::default()
    };
    // Work cannot start before the materials are in, nor in the past.
    let earliest_start = match validate::date_or(&command.earliest_start, "earliest_start", today) {
        Ok(date) => date.max(today),
        Err(field) => {
            answer.problem = field.to_string();
            today
        }
    };
    let mut scheduled = None;
    match validate::items(&command.items, "items") {
        Err(_) if !answer.problem.is_empty() => {}
        Err(field) => answer.problem = field.to_string(),
        Ok(_) if !answer.problem.is_empty() => {}
        Ok(items) => match amendments::schedule_check(conn, order_id, &items, earliest_start).await
        {
            Ok((schedule, routed)) => {
                answer.earliest_completion = date_to_string(schedule.earliest_completion);
                answer.planned_start = date_to_string(schedule.start);
                answer.stages = crate::api::capacity_check(&schedule).stages;
                match date_from_str(command.requested_delivery_date.trim()) {
                    Some(requested) => {
                        answer.feasible = schedule.earliest_completion <= requested;
                        answer.hours_by_work_centre =
                            crate::schedule::hours_by_work_centre(&routed);
                        scheduled = Some(schedule);
                    }
                    None => {
                        answer.problem = format!(
                            "requested_delivery_date {:?} is not a YYYY-MM-DD date",
                            command.requested_delivery_date
                        );
                    }
                }
            }
            Err(err @ Error::Database(_)) => return Err(err.into()),
            Err(err) => answer.problem = err.to_string(),
        },
    }
    tracing::info!(
        feasible = answer.feasible,
        work_centres = answer.hours_by_work_centre.len(),
        earliest_completion = %answer.earliest_completion,
        problem = %answer.problem,
        "capacity checked"
    );
    Ok((answer, scheduled))
}

/// Gives back what the order's capacity checks reserved (the saga's
/// compensation for a cancelled order). One release per order: a repeat
/// answers the same fact.
#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn release_capacity(
    conn: &mut PgConnection,
    message: &Incoming,
    command: ReleaseCapacity,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let reason = validate::reason(&command.reason, "reason").map_err(Error::from)?;
    let reason = if reason.is_empty() {
        "capacity released"
    } else {
        reason
    };
    planning::lock_capacity(conn).await?;
    let today = Utc::now().date_naive();
    let released_hours = reservations::release(conn, &order_id, today, reason).await?;
    let note = if released_hours > 0.0 {
        ""
    } else {
        "no reservation was held"
    };
    tracing::info!(released_hours, "capacity released");
    let answer = CapacityReleased {
        order_id: order_id.clone(),
        released_hours,
        note: note.to_owned(),
    };
    let cause = Cause::from_incoming(message);
    let event = Outgoing::fact(SERVICE, &order_id, &answer, &cause, "released");
    outbox::write(conn, &[event]).await?;
    Ok(())
}

/// Schedules, books and stores a new production run.
async fn plan_new(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
    command: &PlanWorkOrder,
    message: &Incoming,
) -> Result<WorkOrder, HandlerError> {
    let items = validate::items(&command.items, "items").map_err(Error::from)?;
    let today = Utc::now().date_naive();
    let earliest_start =
        validate::date_or(&command.earliest_start, "earliest_start", today).map_err(Error::from)?;
    // A later run (a remake) is planned from today even when the material
    // date it carries has long passed: its work cannot go on days gone by.
    let earliest_start = if revision > 1 {
        earliest_start.max(today)
    } else {
        earliest_start
    };
    let schedule = planning::schedule_items(conn, &items, earliest_start).await?;
    let new = NewWorkOrder {
        order_id,
        kind: KIND_PRODUCTION,
        revision,
        amendment: 0,
        nonconformance_id: None,
        rework_reason: None,
        traceparent: message.traceparent.as_deref(),
        hold_until: None,
    };
    let created = store::insert(conn, &new, &schedule).await?;
    tracing::info!(
        work_order_id = %created.work_order_id,
        revision,
        planned_end = %created.planned_end,
        "work order planned"
    );
    Ok(created)
}

/// Stops every open work order of the order and gives its remaining
/// capacity back. Idempotent: a repeat answers again without releasing
/// anything twice.
#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn cancel_work_order(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CancelWorkOrder,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let today = Utc::now().date_naive();
    // The capacity lock before the work order rows, in the order every
    // booking path takes them, so a cancellation and an equipment event
    // never wait on each other crosswise.
    planning::lock_capacity(conn).await?;
    let all = store::all_of(conn, &order_id, true).await?;
    // The answer names the order's current production run: the work order
    // the saga knows the order by, the same on every repeat.
    // (A reservation is not a work order to name; it is released either way.)
    let named = work_orders::current(&all, KIND_PRODUCTION)
        .or_else(|| all.iter().find(|wo| !wo.is_reservation()));
    // Every open work order stops, reservations included.
    let open: Vec<Uuid> = all
        .iter()
        .filter(|wo| wo.is_open())
        .map(|wo| wo.work_order_id)
        .collect();
    let released_hours = store::cancel(conn, &open, today, &command.reason).await?;
    let all_completed = all.iter().all(|wo| wo.status == STATUS_COMPLETED);
    let note = match named {
        None => "no work order had been planned",
        Some(_) if open.is_empty() && all_completed => "already completed; nothing to stop",
        Some(_) => "",
    };
    let answer = WorkOrderCancelled {
        order_id: order_id.clone(),
        work_order_id: named
            .map(|wo| wo.work_order_id.to_string())
            .unwrap_or_default(),
        released_hours,
        note: note.to_owned(),
    };
    tracing::info!(released_hours = answer.released_hours, note = %answer.note, "work orders cancelled");
    // One cancellation per order: a re-sent command answers the same fact
    // (its repeat releases nothing, and says so only in the log).
    let cause = Cause::from_incoming(message);
    let event = Outgoing::fact(SERVICE, &order_id, &answer, &cause, "cancelled");
    outbox::write(conn, &[event]).await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), revision = command.revision, amendment = command.amendment))]
async fn plan_work_order(
    conn: &mut PgConnection,
    message: &Incoming,
    command: PlanWorkOrder,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let revision = validate::revision(command.revision, "revision").map_err(Error::from)?;
    let amendment = validate::amendment(command.amendment, "amendment").map_err(Error::from)?;
    // Taken before the existence check so two replicas handling a re-sent
    // command at once cannot both plan the revision.
    planning::lock_capacity(conn).await?;

    // A run for an amendment counts what the earlier runs made and cancels
    // the open one: their rows stay locked against MES reports until it
    // commits (the capacity lock first, as on every booking path).
    let existing = store::all_of(conn, &order_id, amendment > 0).await?;
    let stored = work_orders::revision(&existing, KIND_PRODUCTION, revision);
    let (work_order, completed) = match stored {
        Some(stored) => {
            // A run completed as it was planned announced its completion
            // with its first answer; the plan is all there is to repeat.
            tracing::info!(work_order_id = %stored.work_order_id, "work order exists, answering its plan again");
            (stored.clone(), None)
        }
        None => {
            // The hours reserved at review are released for the run to be
            // booked in, in a savepoint: a plan that fails keeps them.
            let mut attempt = conn.begin().await.map_err(Error::from)?;
            let used = format!("used by production run {revision}");
            let today = Utc::now().date_naive();
            reservations::release(&mut attempt, &order_id, today, &used).await?;
            let planned = if amendment > 0 {
                amendments::plan(
                    &mut attempt,
                    message,
                    &command,
                    &order_id,
                    revision,
                    amendment,
                    &existing,
                )
                .await
            } else {
                plan_new(&mut attempt, &order_id, revision, &command, message)
                    .await
                    .map(|created| (created, None))
            };
            match planned {
                Ok(planned) => {
                    attempt.commit().await.map_err(Error::from)?;
                    planned
                }
                Err(HandlerError::Rejected(reason)) => {
                    attempt.rollback().await.map_err(Error::from)?;
                    // The plan is impossible as asked (no routing, no
                    // capacity within the horizon): that is an answer for
                    // the saga, which parks the order with the reason for a
                    // person to resolve.
                    tracing::warn!(%reason, "work order cannot be planned");
                    let failed = WorkOrderPlanningFailed {
                        order_id: order_id.clone(),
                        reason: format!("cannot plan a work order for order {order_id}: {reason}"),
                    };
                    let cause = Cause::from_incoming(message);
                    let event = Outgoing::event(SERVICE, &order_id, &failed, &cause);
                    outbox::write(conn, &[event]).await?;
                    return Ok(());
                }
                Err(retry) => return Err(retry),
            }
        }
    };
    let planned = work_orders::planned_event(&work_order);
    // One work order is one fact: answered again, it keeps its event id.
    let key = work_orders::fact_key(&work_order);
    let cause = Cause::from_incoming(message);
    let mut events = vec![Outgoing::fact(SERVICE, &order_id, &planned, &cause, &key)];
    // Planned and completed in one go: the completion follows the plan.
    events.extend(completed);
    outbox::write(conn, &events).await?;
    Ok(())
}

/// Plans a rework work order for goods that failed final inspection, once
/// per revision.
#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), revision = command.revision))]
async fn start_rework(
    conn: &mut PgConnection,
    message: &Incoming,
    command: StartRework,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let revision = validate::revision(command.revision, "revision").map_err(Error::from)?;
    let items = validate::items(&command.items, "items").map_err(Error::from)?;
    // As for PlanWorkOrder: a re-sent command handled twice at once must not
    // plan the revision twice, nor book capacity another plan also counts on.
    planning::lock_capacity(conn).await?;

    let existing = store::all_of(conn, &order_id, false).await?;
    let work_order = match work_orders::revision(&existing, KIND_REWORK, revision) {
        Some(stored) => {
            tracing::info!(work_order_id = %stored.work_order_id, "rework exists, answering its plan again");
            stored.clone()
        }
        None => {
            if existing.is_empty() {
                // Goods that were never planned cannot have failed an
                // inspection: the command is about the wrong order.
                let field = FieldError::new(
                    "order_id",
                    format!("order {order_id:?} has no work order to rework"),
                );
                return Err(Error::from(field).into());
            }
            // Rework starts as soon as capacity allows: the goods are here.
            let today = Utc::now().date_naive();
            let schedule = planning::schedule_rework(conn, &items, today).await?;
            let new = NewWorkOrder {
                order_id: &order_id,
                kind: KIND_REWORK,
                revision,
                amendment: 0,
                nonconformance_id: non_empty(&command.nonconformance_id),
                rework_reason: non_empty(&command.reason),
                traceparent: message.traceparent.as_deref(),
                hold_until: None,
            };
            let created = store::insert(conn, &new, &schedule).await?;
            tracing::info!(
                work_order_id = %created.work_order_id,
                planned_end = %created.planned_end,
                "rework planned"
            );
            created
        }
    };
    let planned = work_orders::rework_planned_event(&work_order);
    let key = work_orders::fact_key(&work_order);
    let cause = Cause::from_incoming(message);
    let event = Outgoing::fact(SERVICE, &order_id, &planned, &cause, &key);
    outbox::write(conn, &[event]).await?;
    Ok(())
}

fn non_empty(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty()).then_some(text)
}
