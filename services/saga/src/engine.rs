//! The engine: reacts to events, fires timers and applies operator actions,
//! always on a saga loaded under its row lock, and leaves every change
//! (state, timers, log, commands to send) to be saved in the same
//! transaction.
//!
//! Moving forward is one rule ([`Engine::advance`]): the current phase is the
//! first one with an unfinished step; its steps whose gates are finished
//! start; when no phase has unfinished steps the saga is completed. Events
//! complete steps in any phase, so a reply that overtakes another is kept,
//! not lost.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{self, Phase};
use gendan_proto::{TypeName, date_to_string};
use sqlx::PgConnection;

use crate::clock::Clock;
use crate::effects::{self, Verdict};
use crate::state::{LogEntry, SagaState, Status, StepState, StepStatus, TimerChange};
use crate::workflow::{OnTimeout, StepAction, StepDef, Workflow};
use crate::{Error, SERVICE};

#[derive(Clone)]
pub struct Engine {
    workflow: Arc<Workflow>,
    clock: Arc<dyn Clock>,
}

fn current_trace_id() -> Option<String> {
    gendan_telemetry::current_traceparent()
        .and_then(|tp| gendan_telemetry::trace_id_of(&tp).map(str::to_owned))
}

impl Engine {
    pub fn new(workflow: Workflow, clock: Arc<dyn Clock>) -> Self {
        Engine {
            workflow: Arc::new(workflow),
            clock,
        }
    }

    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Handles one event from `gendan.evt.>`.
    pub async fn on_event(
        &self,
        conn: &mut PgConnection,
        incoming: &Incoming,
    ) -> Result<(), HandlerError> {
        if incoming.is::<v1::OrderCreated>() {
            return self.start(conn, incoming).await;
        }
        let relevant = incoming.type_name() == v1::WorkOrderProgressed::TYPE_NAME
            || self
                .workflow
                .steps()
                .any(|(_, s)| s.completes_on == incoming.type_name());
        if !relevant || incoming.order_id().is_empty() {
            return Ok(());
        }
        let Some(mut saga) = SagaState::load(conn, incoming.order_id(), true).await? else {
            // A reply for an order this coordinator never started (another
            // deployment's, or a hand-made test event): nothing to drive.
            return Ok(());
        };
        if matches!(saga.status, Status::Completed | Status::Cancelled) {
            return Ok(());
        }
        let now = self.now();
        let cause = Cause::from_incoming(incoming);
        let projected_before = saga.projected;
        let verdict = effects::apply(&mut saga, incoming)?;
        let completed_steps: Vec<&StepDef> = self
            .workflow
            .steps()
            .map(|(_, step)| step)
            .filter(|step| step.completes_on == incoming.type_name())
            .collect();
        for step in completed_steps {
            if saga.step(step.name).status.is_finished() {
                continue;
            }
            match &verdict {
                Verdict::Completes | Verdict::Informs => self.finish_step(
                    &mut saga,
                    step.name,
                    StepStatus::Done,
                    now,
                    incoming.type_name(),
                ),
                Verdict::Fails(reason) => self.stall(&mut saga, step.name, reason, now),
            }
        }
        self.check_risk(&mut saga, projected_before, &cause, now);
        self.advance(&mut saga, &cause, now);
        saga.updated_at = now;
        saga.save(conn).await?;
        Ok(())
    }

    async fn start(
        &self,
        conn: &mut PgConnection,
        incoming: &Incoming,
    ) -> Result<(), HandlerError> {
        let created: v1::OrderCreated = incoming.payload()?;
        let order = created
            .order
            .ok_or_else(|| HandlerError::Rejected("OrderCreated without an order".into()))?;
        let requested =
            gendan_proto::date_from_str(&order.requested_delivery_date).ok_or_else(|| {
                HandlerError::Rejected(format!(
                    "order {} has requested_delivery_date {:?}, not YYYY-MM-DD",
                    order.order_id, order.requested_delivery_date
                ))
            })?;
        if SagaState::load(conn, &order.order_id, true)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let now = self.now();
        let cause = Cause::from_incoming(incoming);
        let mut saga = SagaState {
            order_id: order.order_id.clone(),
            phase: Phase::Received,
            status: Status::Running,
            stalled_reason: None,
            requested,
            promised: None,
            projected: None,
            at_risk: false,
            traceparent: incoming
                .traceparent
                .clone()
                .or_else(gendan_telemetry::current_traceparent),
            correlation_id: cause.correlation_id.clone(),
            created_at: now,
            updated_at: now,
            steps: self
                .workflow
                .steps()
                .map(|(_, step)| (step.name.to_owned(), StepState::pending()))
                .collect(),
            is_new: true,
            outgoing: Vec::new(),
            new_log: Vec::new(),
            timer_changes: Vec::new(),
            order,
        };
        log(
            &mut saga,
            now,
            "-",
            "created",
            format!("requested delivery {}", date_to_string(requested)),
        );
        self.advance(&mut saga, &cause, now);
        saga.save(conn).await?;
        Ok(())
    }

    /// Starts what can start; completes the saga when nothing is left.
    fn advance(&self, saga: &mut SagaState, cause: &Cause, now: DateTime<Utc>) {
        if saga.status != Status::Running {
            return;
        }
        for phase in &self.workflow.phases {
            // Every phase is entered in order, even one whose steps finished
            // early (replies that overtook others), so the order's phase
            // history never skips a phase.
            if (phase.phase as i32) > (saga.phase as i32) {
                self.change_phase(saga, phase.phase, cause, now);
            }
            let unfinished = phase
                .steps
                .iter()
                .any(|step| !saga.step(step.name).status.is_finished());
            if !unfinished {
                continue;
            }
            for step in &phase.steps {
                let ready = saga.step(step.name).status == StepStatus::Pending
                    && step
                        .after
                        .iter()
                        .all(|gate| saga.step(gate).status.is_finished());
                if ready {
                    self.start_step(saga, step, cause, now);
                }
            }
            return;
        }
        saga.status = Status::Completed;
        let completed = v1::SagaCompleted {
            order_id: saga.order_id.clone(),
            phase: saga.phase as i32,
        };
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &completed, cause));
        log(
            saga,
            now,
            "-",
            "completed",
            format!("workflow finished in phase {}", saga.phase.short_name()),
        );
    }

    fn change_phase(&self, saga: &mut SagaState, to: Phase, cause: &Cause, now: DateTime<Utc>) {
        let from = saga.phase;
        saga.phase = to;
        let changed = v1::PhaseChanged {
            order_id: saga.order_id.clone(),
            from: from as i32,
            to: to as i32,
            projected_delivery_date: saga.projected.map(date_to_string).unwrap_or_default(),
        };
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &changed, cause));
        log(
            saga,
            now,
            "-",
            "phase",
            format!("{} → {}", from.short_name(), to.short_name()),
        );
    }

    fn start_step(&self, saga: &mut SagaState, step: &StepDef, cause: &Cause, now: DateTime<Utc>) {
        let deadline = match (step.action, step.on_timeout) {
            (StepAction::Send(build), OnTimeout::Resend { after, .. }) => {
                let command = build(saga, cause);
                let detail = format!("sent {}", command.envelope.r#type);
                saga.outgoing.push(command);
                log(saga, now, step.name, "started", detail);
                now + duration(after)
            }
            (StepAction::Send(build), OnTimeout::FlagOverdue) => {
                let command = build(saga, cause);
                saga.outgoing.push(command);
                log(saga, now, step.name, "started", "command sent".to_owned());
                overdue_deadline(saga, now)
            }
            (StepAction::Await, _) => {
                log(
                    saga,
                    now,
                    step.name,
                    "waiting",
                    format!("for {}", step.completes_on),
                );
                overdue_deadline(saga, now)
            }
        };
        let state = saga.step_mut(step.name);
        state.status = StepStatus::Waiting;
        state.attempts = 1;
        state.started_at = Some(now);
        state.deadline = Some(deadline);
        state.last_error = None;
        state.trace_id = current_trace_id();
        saga.timer_changes
            .push(TimerChange::Set(step.name.to_owned(), deadline));
    }

    fn finish_step(
        &self,
        saga: &mut SagaState,
        name: &str,
        status: StepStatus,
        now: DateTime<Utc>,
        by: &str,
    ) {
        let state = saga.step_mut(name);
        state.status = status;
        state.finished_at = Some(now);
        state.deadline = None;
        state.trace_id = current_trace_id().or(state.trace_id.take());
        saga.timer_changes.push(TimerChange::Clear(name.to_owned()));
        log(saga, now, name, status.as_str(), by.to_owned());
    }

    fn stall(&self, saga: &mut SagaState, name: &str, reason: &str, now: DateTime<Utc>) {
        let state = saga.step_mut(name);
        state.status = StepStatus::Stalled;
        state.last_error = Some(reason.to_owned());
        state.deadline = None;
        saga.status = Status::Stalled;
        saga.stalled_reason = Some(format!("{name}: {reason}"));
        saga.timer_changes.push(TimerChange::Clear(name.to_owned()));
        let stalled = v1::SagaStalled {
            order_id: saga.order_id.clone(),
            step: name.to_owned(),
            reason: reason.to_owned(),
        };
        let cause = Cause::root(saga.correlation_id.clone());
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &stalled, &cause));
        log(saga, now, name, "stalled", reason.to_owned());
        tracing::warn!(order_id = %saga.order_id, step = name, %reason, "saga stalled");
    }

    /// Announces the delivery outlook whenever the projected date moved or
    /// the risk flag flips: the order is at risk when the projection passes
    /// the promise (or the requested date before a promise exists).
    fn check_risk(
        &self,
        saga: &mut SagaState,
        projected_before: Option<chrono::NaiveDate>,
        cause: &Cause,
        now: DateTime<Utc>,
    ) {
        let committed = saga.promised.unwrap_or(saga.requested);
        let late = saga
            .projected
            .is_some_and(|projected| projected > committed);
        let flipped = late != saga.at_risk;
        if !flipped && saga.projected == projected_before {
            return;
        }
        saga.at_risk = late;
        let projected = saga.projected.map(date_to_string).unwrap_or_default();
        let reason = if late {
            format!(
                "projected {projected} is after the committed {}",
                date_to_string(committed)
            )
        } else {
            format!(
                "projected {projected} is within the committed {}",
                date_to_string(committed)
            )
        };
        let changed = v1::DeliveryRiskChanged {
            order_id: saga.order_id.clone(),
            at_risk: late,
            promised_delivery_date: date_to_string(committed),
            projected_delivery_date: projected,
            reason: reason.clone(),
            risk_changed: flipped,
        };
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &changed, cause));
        if flipped {
            log(
                saga,
                now,
                "-",
                if late { "at_risk" } else { "on_track" },
                reason,
            );
        }
    }

    /// A due timer for `step`: re-send, stall, or flag overdue. Returns
    /// whether anything changed.
    pub async fn on_timer(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        step_name: &str,
    ) -> Result<(), Error> {
        let Some(mut saga) = SagaState::load(conn, order_id, true).await? else {
            return Ok(());
        };
        let now = self.now();
        let Some((_, step)) = self.workflow.step(step_name) else {
            // A step removed from the workflow since the timer was set.
            saga.timer_changes
                .push(TimerChange::Clear(step_name.to_owned()));
            saga.save(conn).await?;
            return Ok(());
        };
        let state = saga.step(step_name);
        if saga.status != Status::Running || state.status != StepStatus::Waiting {
            saga.timer_changes
                .push(TimerChange::Clear(step_name.to_owned()));
            saga.save(conn).await?;
            return Ok(());
        }
        let cause = Cause::root(saga.correlation_id.clone());
        match (step.action, step.on_timeout) {
            (
                StepAction::Send(build),
                OnTimeout::Resend {
                    after,
                    max_attempts,
                },
            ) => {
                if state.attempts >= max_attempts as i32 {
                    let reason = format!(
                        "no {} after {} attempts",
                        step.completes_on
                            .rsplit('.')
                            .next()
                            .unwrap_or(step.completes_on),
                        state.attempts
                    );
                    self.stall(&mut saga, step_name, &reason, now);
                } else {
                    let attempt = state.attempts + 1;
                    // Exponential backoff: the service may be down for a while.
                    let wait = duration(after) * 2i32.pow((attempt - 1).min(10) as u32);
                    let command = build(&saga, &cause);
                    saga.outgoing.push(command);
                    let state = saga.step_mut(step_name);
                    state.attempts = attempt;
                    state.deadline = Some(now + wait);
                    state.last_error = Some("timed out waiting for the reply".to_owned());
                    saga.timer_changes
                        .push(TimerChange::Set(step_name.to_owned(), now + wait));
                    log(
                        &mut saga,
                        now,
                        step_name,
                        "resent",
                        format!("attempt {attempt}"),
                    );
                }
            }
            _ => {
                // Overdue: the order cannot make its projected date.
                let overdue_from = now.date_naive();
                let projected_before = saga.projected;
                if saga
                    .projected
                    .is_none_or(|projected| projected < overdue_from)
                {
                    saga.projected = Some(overdue_from);
                }
                self.check_risk(&mut saga, projected_before, &cause, now);
                let next = now + Duration::days(1);
                saga.step_mut(step_name).deadline = Some(next);
                saga.timer_changes
                    .push(TimerChange::Set(step_name.to_owned(), next));
                log(
                    &mut saga,
                    now,
                    step_name,
                    "overdue",
                    format!("still waiting for {}", step.completes_on),
                );
            }
        }
        saga.updated_at = now;
        saga.save(conn).await?;
        Ok(())
    }

    /// Operator action on a stalled step: run it again with a fresh budget.
    pub async fn retry_step(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        step_name: &str,
        operator: &str,
        reason: &str,
    ) -> Result<SagaState, Error> {
        let (mut saga, step) = self.stalled_step(conn, order_id, step_name).await?;
        let now = self.now();
        let cause = Cause::root(saga.correlation_id.clone());
        self.resume(&mut saga, step_name, "retry", operator, reason, now);
        saga.step_mut(step_name).status = StepStatus::Pending;
        self.start_step(&mut saga, step, &cause, now);
        self.advance(&mut saga, &cause, now);
        saga.save(conn).await?;
        Ok(saga)
    }

    /// Operator action on a stalled step: consider it done and move on.
    pub async fn skip_step(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        step_name: &str,
        operator: &str,
        reason: &str,
    ) -> Result<SagaState, Error> {
        let (mut saga, _) = self.stalled_step(conn, order_id, step_name).await?;
        let now = self.now();
        let cause = Cause::root(saga.correlation_id.clone());
        self.resume(&mut saga, step_name, "skip", operator, reason, now);
        self.finish_step(
            &mut saga,
            step_name,
            StepStatus::Skipped,
            now,
            &format!("skipped by {operator}"),
        );
        self.advance(&mut saga, &cause, now);
        saga.save(conn).await?;
        Ok(saga)
    }

    async fn stalled_step(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        step_name: &str,
    ) -> Result<(SagaState, &StepDef), Error> {
        let saga = SagaState::load(conn, order_id, true)
            .await?
            .ok_or_else(|| Error::NotFound(format!("saga for order {order_id}")))?;
        let (_, step) = self
            .workflow
            .step(step_name)
            .ok_or_else(|| Error::NotFound(format!("step {step_name:?}")))?;
        let status = saga.step(step_name).status;
        if status != StepStatus::Stalled {
            return Err(Error::FailedPrecondition(format!(
                "step {step_name} of order {order_id} is {}, not stalled",
                status.as_str()
            )));
        }
        Ok((saga, step))
    }

    fn resume(
        &self,
        saga: &mut SagaState,
        step: &str,
        action: &str,
        operator: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) {
        saga.status = Status::Running;
        saga.stalled_reason = None;
        saga.updated_at = now;
        let resumed = v1::SagaResumed {
            order_id: saga.order_id.clone(),
            step: step.to_owned(),
            action: action.to_owned(),
            operator: operator.to_owned(),
        };
        let cause = Cause::root(saga.correlation_id.clone());
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &resumed, &cause));
        log(saga, now, step, action, format!("by {operator}: {reason}"));
    }
}

fn duration(std: std::time::Duration) -> Duration {
    Duration::from_std(std).unwrap_or(Duration::seconds(30))
}

/// End of the projected day, or a day from now when nothing is projected.
fn overdue_deadline(saga: &SagaState, now: DateTime<Utc>) -> DateTime<Utc> {
    saga.projected
        .map(|date| date.and_time(NaiveTime::MIN).and_utc() + Duration::days(1))
        .filter(|deadline| *deadline > now)
        .unwrap_or(now + Duration::days(1))
}

fn log(saga: &mut SagaState, at: DateTime<Utc>, step: &str, action: &str, detail: String) {
    saga.new_log.push(LogEntry {
        at,
        step: step.to_owned(),
        action: action.to_owned(),
        detail,
        trace_id: current_trace_id(),
    });
}
