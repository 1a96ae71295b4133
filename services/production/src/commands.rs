//! Saga commands to production (`gendan.cmd.production.*`).
//!
//! - `CheckOrderCapacity` schedules the order against today's bookings
//!   without booking anything and answers `CapacityChecked`. A product that
//!   cannot be made is an answer (`feasible = false` with the problem), not a
//!   failure: the saga needs a reply to move the order to clarification.
//! - `PlanWorkOrder` is idempotent by order id: the first one schedules,
//!   stores the work order with its capacity bookings and answers
//!   `WorkOrderPlanned`; a repeat (the saga re-sends on timeout, the first
//!   reply may have been lost) answers the stored plan again. A plan that
//!   cannot be made answers `WorkOrderPlanningFailed` with the reason.
//! - `CancelWorkOrder` (compensation of a cancelled order) stops the work
//!   order, releases its bookings from today on and answers
//!   `WorkOrderCancelled`; repeats answer again without releasing twice.
//!
//! Every answer is written to the outbox on the consumer's connection, so it
//! commits with the effect and the inbox record.

use chrono::Utc;
use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{
    CancelWorkOrder, CapacityChecked, CheckOrderCapacity, PlanWorkOrder, WorkOrderCancelled,
    WorkOrderPlanningFailed,
};
use gendan_proto::{date_from_str, date_to_string};
use sqlx::PgConnection;

use crate::{Error, SERVICE, planning, validate, work_orders};

impl From<Error> for HandlerError {
    fn from(err: Error) -> Self {
        match err {
            // Temporary: the database or a task may work on the next delivery.
            Error::Database(_) | Error::Runtime(_) => HandlerError::Retry(err.to_string()),
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
        if message.is::<CancelWorkOrder>() {
            return cancel_work_order(conn, message, message.payload()?).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown command type {:?} for {SERVICE}",
            message.type_name()
        )))
    }
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn check_order_capacity(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CheckOrderCapacity,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let mut answer = CapacityChecked {
        order_id: order_id.clone(),
        requested_delivery_date: command.requested_delivery_date.clone(),
        ..CapacityChecked::default()
    };
    let today = Utc::now().date_naive();
    // Work cannot start before the materials are in, nor in the past.
    let earliest_start = match validate::date_or(&command.earliest_start, "earliest_start", today) {
        Ok(date) => date.max(today),
        Err(field) => {
            answer.problem = field.to_string();
            today
        }
    };
    match validate::items(&command.items, "items") {
        Err(_) if !answer.problem.is_empty() => {}
        Err(field) => answer.problem = field.to_string(),
        Ok(_) if !answer.problem.is_empty() => {}
        Ok(items) => match planning::schedule_items(conn, &items, earliest_start).await {
            Ok(schedule) => {
                answer.earliest_completion = date_to_string(schedule.earliest_completion);
                match date_from_str(command.requested_delivery_date.trim()) {
                    Some(requested) => answer.feasible = schedule.earliest_completion <= requested,
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
        earliest_completion = %answer.earliest_completion,
        problem = %answer.problem,
        "capacity checked"
    );
    let event = Outgoing::event(SERVICE, &order_id, &answer, &Cause::from_incoming(message));
    outbox::write(conn, &[event]).await?;
    Ok(())
}

/// Schedules, books and stores a new work order.
async fn plan_new(
    conn: &mut PgConnection,
    order_id: &str,
    command: &PlanWorkOrder,
    message: &Incoming,
) -> Result<work_orders::WorkOrder, HandlerError> {
    let items =
        validate::items(&command.items, "items").map_err(|e| HandlerError::from(Error::from(e)))?;
    let today = Utc::now().date_naive();
    let earliest_start = validate::date_or(&command.earliest_start, "earliest_start", today)
        .map_err(|e| HandlerError::from(Error::from(e)))?;
    let schedule = planning::schedule_items(conn, &items, earliest_start).await?;
    let created =
        work_orders::insert(conn, order_id, &schedule, message.traceparent.as_deref()).await?;
    tracing::info!(
        work_order_id = %created.work_order_id,
        planned_end = %created.planned_end,
        "work order planned"
    );
    Ok(created)
}

/// Stops the work order and gives its remaining capacity back. Idempotent:
/// a repeat answers again without releasing anything twice.
#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn cancel_work_order(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CancelWorkOrder,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let today = Utc::now().date_naive();
    let answer = match work_orders::find(conn, &order_id, true).await? {
        None => WorkOrderCancelled {
            order_id: order_id.clone(),
            note: "no work order had been planned".to_owned(),
            ..Default::default()
        },
        Some(work_order) if work_order.status == work_orders::STATUS_COMPLETED => {
            WorkOrderCancelled {
                order_id: order_id.clone(),
                work_order_id: work_order.work_order_id.to_string(),
                released_hours: 0.0,
                note: "already completed; nothing to stop".to_owned(),
            }
        }
        Some(work_order) => {
            let released =
                work_orders::cancel(conn, work_order.work_order_id, today, &command.reason).await?;
            WorkOrderCancelled {
                order_id: order_id.clone(),
                work_order_id: work_order.work_order_id.to_string(),
                released_hours: released,
                note: String::new(),
            }
        }
    };
    tracing::info!(released_hours = answer.released_hours, note = %answer.note, "work order cancelled");
    let event = Outgoing::event(SERVICE, &order_id, &answer, &Cause::from_incoming(message));
    outbox::write(conn, &[event]).await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn plan_work_order(
    conn: &mut PgConnection,
    message: &Incoming,
    command: PlanWorkOrder,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    // Taken before the existence check so two replicas handling a re-sent
    // command at once cannot both plan the order.
    planning::lock_capacity(conn).await?;

    let work_order = match work_orders::find(conn, &order_id, false).await? {
        Some(existing) => {
            tracing::info!(work_order_id = %existing.work_order_id, "work order exists, answering its plan again");
            existing
        }
        None => match plan_new(conn, &order_id, &command, message).await {
            Ok(created) => created,
            Err(HandlerError::Rejected(reason)) => {
                // The plan is impossible as asked (no routing, no capacity
                // within the horizon): that is an answer for the saga, which
                // parks the order with the reason for a person to resolve.
                tracing::warn!(%reason, "work order cannot be planned");
                let failed = WorkOrderPlanningFailed {
                    order_id: order_id.clone(),
                    reason: format!("cannot plan a work order for order {order_id}: {reason}"),
                };
                let event =
                    Outgoing::event(SERVICE, &order_id, &failed, &Cause::from_incoming(message));
                outbox::write(conn, &[event]).await?;
                return Ok(());
            }
            Err(retry) => return Err(retry),
        },
    };
    let planned = work_orders::planned_event(&work_order);
    let event = Outgoing::event(SERVICE, &order_id, &planned, &Cause::from_incoming(message));
    outbox::write(conn, &[event]).await?;
    Ok(())
}
