//! The engine: reacts to events, fires timers and applies people's answers
//! and operator actions to one order's saga.
//!
//! Every entry point takes the same path: load the saga under its row
//! lock, change it in memory with the pure core, save every change (state,
//! timers, log, exceptions, commands to send) in the caller's transaction.
//! Events and timers come in batches and take that path for all of a
//! batch's orders at once ([`batch`]); answers and operator actions take it
//! for one order ([`Engine::with_saga`]). The pure core never touches the database, so it is
//! tested on an in-memory saga with a manual clock (`tests`).
//!
//! - [`core`]: react to an event, move forward (the current phase is the
//!   first with an unfinished step; its ready steps start), fail a step per
//!   its policy; [`risk`]: the delivery outlook.
//! - [`decisions`]: open, remind and answer decisions; apply their effects.
//! - [`timeouts`]: a due timer re-sends, reminds, stalls or flags overdue.
//! - [`amend`]: an amended order is reviewed again and departments adjust.
//! - [`cancel`]: cancellation and the compensations that follow it.
//! - [`operator`]: retry and skip of a stalled step.
//! - [`journal`]: the saga's own log.
//! - [`batch`]: one load and one save for a batch's events or timers.

mod amend;
mod batch;
mod cancel;
mod core;
mod decisions;
mod journal;
mod operator;
mod risk;
mod timeouts;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gendan_messaging::Cause;
use gendan_proto::TypeName;
use gendan_proto::v1;
use sqlx::PgConnection;

use crate::calendar::CalendarSettings;
use crate::clock::Clock;
use crate::effects;
use crate::state::{SagaState, Status};
use crate::workflow::Workflow;
use crate::{Error, Result};

pub use batch::DueTimer;
pub use decisions::decision_proto;
pub(crate) use journal::{log, log_exception};

/// Timer key prefix of a compensation (`compensate:plan_production`).
pub const COMPENSATE: &str = "compensate:";
/// Timer key prefix of an open decision's reminder (`decide:clarify_delivery_date`).
pub const DECIDE: &str = "decide:";

#[derive(Clone)]
pub struct Engine {
    workflow: Arc<Workflow>,
    clock: Arc<dyn Clock>,
    /// The week and durations new calendars are planned with.
    calendar: Arc<CalendarSettings>,
}

impl Engine {
    pub fn new(workflow: Workflow, clock: Arc<dyn Clock>) -> Self {
        Engine {
            workflow: Arc::new(workflow),
            clock,
            calendar: Arc::new(CalendarSettings::default()),
        }
    }

    /// The same engine with the deployment's calendar settings.
    pub fn with_calendar(self, calendar: CalendarSettings) -> Self {
        Engine {
            calendar: Arc::new(calendar),
            ..self
        }
    }

    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Whether an event of `type_name` can change a saga.
    pub fn reacts_to(&self, type_name: &str) -> bool {
        type_name == v1::OrderCreated::TYPE_NAME
            || type_name == v1::OrderAmended::TYPE_NAME
            || effects::INFORMING.contains(&type_name)
            || self.workflow.awaits(type_name)
    }

    /// The one load → change → save path: `change` runs on the saga under
    /// its row lock (in the order's trace, linked to the caller's), and
    /// whatever it changed is saved on `conn`. `None` when the order has no
    /// saga.
    async fn with_saga<R>(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        caller_trace: Option<&str>,
        change: impl FnOnce(&mut SagaState, DateTime<Utc>) -> Result<R>,
    ) -> Result<Option<(SagaState, R)>> {
        let Some(mut saga) = SagaState::load(conn, order_id, true).await? else {
            return Ok(None);
        };
        let now = self.now();
        let result = change_dated(&mut saga, caller_trace, now, |saga| change(saga, now))?;
        saga.save(conn).await?;
        Ok(Some((saga, result)))
    }

    /// Like [`with_saga`](Self::with_saga), for requests about an order
    /// that must have a saga.
    async fn with_existing<R>(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        change: impl FnOnce(&mut SagaState, DateTime<Utc>) -> Result<R>,
    ) -> Result<SagaState> {
        let caller = gendan_telemetry::current_traceparent();
        self.with_saga(conn, order_id, caller.as_deref(), change)
            .await?
            .map(|(saga, _)| saga)
            .ok_or_else(|| Error::NotFound(format!("saga for order {order_id}")))
    }

    /// Answers an open decision; its option's effects take place.
    pub async fn decide(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        decision_id: uuid::Uuid,
        answer: &str,
        operator: &str,
        comment: &str,
    ) -> Result<SagaState> {
        self.with_existing(conn, order_id, |saga, now| {
            self.apply_answer(saga, decision_id, answer, operator, comment, now)
        })
        .await
    }

    /// Cancels the order's workflow (possible until shipping) and starts the
    /// compensations of every step that took effect, latest first.
    pub async fn cancel(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        operator: &str,
        reason: &str,
    ) -> Result<SagaState> {
        self.with_existing(conn, order_id, |saga, now| {
            self.cancel_requested(saga, operator, reason, now)
        })
        .await
    }

    /// Operator action on a stalled step (or `compensate:<step>`): run it
    /// again with a fresh budget.
    pub async fn retry_step(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        step: &str,
        operator: &str,
        reason: &str,
    ) -> Result<SagaState> {
        self.with_existing(conn, order_id, |saga, now| {
            self.retry(saga, step, operator, reason, now)
        })
        .await
    }

    /// Operator action on a stalled step: consider it done and move on.
    pub async fn skip_step(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        step: &str,
        operator: &str,
        reason: &str,
    ) -> Result<SagaState> {
        self.with_existing(conn, order_id, |saga, now| {
            self.skip(saga, step, operator, reason, now)
        })
        .await
    }
}

/// Whether the goods have left the factory: from shipping on, and through a
/// claim's redelivery (whose steps walk the phases again).
fn goods_left(saga: &SagaState) -> bool {
    (saga.phase as i32) >= (v1::Phase::Shipping as i32) || saga.facts.shipped_on.is_some()
}

/// Whether the saga still moves (not finished one way or the other).
fn is_live(saga: &SagaState) -> bool {
    !matches!(saga.status, Status::Completed | Status::Cancelled)
        && saga.phase != v1::Phase::Cancelled
}

/// Runs `change` on `saga` in the order's trace (linked to `caller_trace`),
/// dated `now`: the time of the change, for what the pure core dates (a
/// grace period's end) without reading a clock of its own.
fn change_dated<R>(
    saga: &mut SagaState,
    caller_trace: Option<&str>,
    now: DateTime<Utc>,
    change: impl FnOnce(&mut SagaState) -> R,
) -> R {
    saga.updated_at = now;
    let order_trace = saga.traceparent.clone();
    let result = in_order_trace(order_trace.as_deref(), caller_trace, || change(&mut *saga));
    saga.updated_at = now;
    result
}

/// Runs `f` in a span of the order's trace (`order`), linked to `cause`:
/// one order, one trace, whoever's trace the cause came in.
fn in_order_trace<R>(order: Option<&str>, cause: Option<&str>, f: impl FnOnce() -> R) -> R {
    let span = tracing::info_span!("saga.react");
    if let Some(order) = order {
        gendan_telemetry::set_parent_from_traceparent(&span, order);
    }
    if let Some(cause) = cause {
        gendan_telemetry::link_traceparent(&span, cause);
    }
    span.in_scope(f)
}

fn root_cause(saga: &SagaState) -> Cause {
    Cause::root(saga.correlation_id.clone())
}

/// `gendan.v1.WorkOrderPlanned` → `WorkOrderPlanned`.
fn short_type(type_name: &str) -> &str {
    type_name.rsplit('.').next().unwrap_or(type_name)
}

fn duration(std: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(std).unwrap_or(chrono::Duration::seconds(30))
}
