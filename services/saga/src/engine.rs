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
use crate::effects::DecisionEffect;
use crate::effects::{self, Verdict};
use crate::state::{
    CompensationState, CompensationStatus, DecisionState, LogEntry, SagaState, Status, StepState,
    StepStatus, TimerChange,
};
use crate::workflow::{CompensationDef, OnTimeout, StepAction, StepDef, Workflow};
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

    /// Whether an event of `type_name` can change a saga.
    pub fn reacts_to(&self, type_name: &str) -> bool {
        type_name == v1::OrderCreated::TYPE_NAME
            || effects::INFORMING.contains(&type_name)
            || self.workflow.awaits(type_name)
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
        if !self.reacts_to(incoming.type_name()) || incoming.order_id().is_empty() {
            return Ok(());
        }
        let Some(mut saga) = SagaState::load(conn, incoming.order_id(), true).await? else {
            // A reply for an order this coordinator never started (another
            // deployment's, or a hand-made test event): nothing to drive.
            return Ok(());
        };
        let now = self.now();
        if saga.status == Status::Cancelled || saga.phase == Phase::Cancelled {
            let order_trace = saga.traceparent.clone();
            in_order_trace(
                order_trace.as_deref(),
                incoming.traceparent.as_deref(),
                || self.compensation_answered(&mut saga, incoming, now),
            )?;
            saga.save(conn).await?;
            return Ok(());
        }
        if saga.status == Status::Completed {
            return Ok(());
        }
        // The saga acts in the order's own trace, whoever's trace the event
        // came in (an inspector's call, a warehouse system): one order, one
        // trace, with a link to the cause.
        let order_trace = saga.traceparent.clone();
        in_order_trace(
            order_trace.as_deref(),
            incoming.traceparent.as_deref(),
            || self.react(&mut saga, incoming, now),
        )?;
        saga.updated_at = now;
        saga.save(conn).await?;
        Ok(())
    }

    /// Applies one event to a loaded saga: effects, completed or failed
    /// steps, risk, and whatever can start next.
    fn react(
        &self,
        saga: &mut SagaState,
        incoming: &Incoming,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        let cause = Cause::from_incoming(incoming);
        let projected_before = saga.projected;
        let verdict = effects::apply(saga, incoming)?;
        let answered_steps: Vec<&StepDef> = self
            .workflow
            .steps()
            .map(|(_, step)| step)
            .filter(|step| {
                step.completes(incoming.type_name())
                    || step.fails_on.contains(&incoming.type_name())
            })
            .collect();
        for step in answered_steps {
            let status = saga.step(step.name).status;
            if status.is_finished() {
                continue;
            }
            // A reply can only answer a command that was sent; an event a step
            // merely awaits may arrive before the step starts (and is kept).
            let asks = !matches!(step.action, StepAction::Await);
            if asks && status == StepStatus::Pending {
                continue;
            }
            match &verdict {
                Verdict::Informs => {}
                Verdict::Completes => {
                    self.finish_step(saga, step.name, StepStatus::Done, now, incoming.type_name());
                    if status == StepStatus::Stalled && saga.status == Status::Stalled {
                        // The reply came after all: the step no longer
                        // needs a person.
                        self.resume(
                            saga,
                            step.name,
                            "reply",
                            "system",
                            "late reply arrived",
                            now,
                        );
                    }
                }
                Verdict::Fails(reason) if status != StepStatus::Stalled => {
                    self.stall(saga, step.name, reason, now)
                }
                Verdict::Fails(_) => {}
            }
        }
        self.check_risk(saga, projected_before, &cause, now);
        self.advance(saga, &cause, now);
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
            facts: serde_json::Map::new(),
            decisions: Vec::new(),
            compensations: std::collections::BTreeMap::new(),
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
            // Starting or skipping a step can make the next one ready.
            loop {
                let mut changed = false;
                for step in &phase.steps {
                    let ready = saga.step(step.name).status == StepStatus::Pending
                        && step
                            .after
                            .iter()
                            .all(|gate| saga.step(gate).status.is_finished());
                    if !ready {
                        continue;
                    }
                    if step.when.is_some_and(|needed| !needed(saga)) {
                        self.finish_step(saga, step.name, StepStatus::Skipped, now, "not needed");
                    } else {
                        self.start_step(saga, step, cause, now);
                    }
                    changed = true;
                }
                if !changed {
                    break;
                }
            }
            if phase
                .steps
                .iter()
                .all(|step| saga.step(step.name).status.is_finished())
            {
                continue;
            }
            self.start_early_steps(saga, phase.phase, cause, now);
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

    /// Steps of later phases marked `early` start as soon as their gates
    /// are finished (documents are prepared while packing runs).
    fn start_early_steps(
        &self,
        saga: &mut SagaState,
        current: Phase,
        cause: &Cause,
        now: DateTime<Utc>,
    ) {
        let later = self
            .workflow
            .phases
            .iter()
            .filter(|phase| (phase.phase as i32) > (current as i32));
        for phase in later {
            for step in phase.steps.iter().filter(|step| step.early) {
                let ready = saga.step(step.name).status == StepStatus::Pending
                    && step
                        .after
                        .iter()
                        .all(|gate| saga.step(gate).status.is_finished());
                if !ready {
                    continue;
                }
                if step.when.is_some_and(|needed| !needed(saga)) {
                    self.finish_step(saga, step.name, StepStatus::Skipped, now, "not needed");
                } else {
                    self.start_step(saga, step, cause, now);
                }
            }
        }
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
        let deadline = match step.action {
            StepAction::Send(build) => {
                let command = build(saga, cause);
                let detail = format!("sent {}", short_type(&command.envelope.r#type));
                saga.outgoing.push(command);
                log(saga, now, step.name, "started", detail);
                self.deadline_of(saga, step.on_timeout, now)
            }
            StepAction::Decide(spec) => {
                let deadline = self
                    .deadline_of(saga, step.on_timeout, now)
                    .unwrap_or(now + Duration::days(1));
                let decision = DecisionState {
                    decision_id: uuid::Uuid::now_v7(),
                    step: step.name.to_owned(),
                    kind: spec.kind.to_owned(),
                    question: (spec.question)(saga),
                    options: spec.options.iter().map(|o| (*o).to_owned()).collect(),
                    opened_at: now,
                    deadline,
                    reminders: 0,
                    answer: None,
                    answered_by: None,
                    answered_at: None,
                    comment: None,
                };
                let requested = v1::DecisionRequested {
                    decision: Some(decision_proto(&saga.order_id, &decision)),
                    reminder: false,
                };
                saga.outgoing
                    .push(Outgoing::event(SERVICE, &saga.order_id, &requested, cause));
                log(
                    saga,
                    now,
                    step.name,
                    "decision",
                    format!("asked: {}", decision.question),
                );
                saga.decisions.push(decision);
                Some(deadline)
            }
            StepAction::Await => {
                log(
                    saga,
                    now,
                    step.name,
                    "waiting",
                    format!("for {}", short_type(step.completes_on)),
                );
                self.deadline_of(saga, step.on_timeout, now)
            }
        };
        let state = saga.step_mut(step.name);
        state.status = StepStatus::Waiting;
        state.attempts = 1;
        state.started_at = Some(now);
        state.deadline = deadline;
        state.last_error = None;
        state.trace_id = current_trace_id();
        if let Some(deadline) = deadline {
            saga.timer_changes
                .push(TimerChange::Set(step.name.to_owned(), deadline));
        }
    }

    /// When a step started now times out, if it does.
    fn deadline_of(
        &self,
        saga: &SagaState,
        on_timeout: OnTimeout,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match on_timeout {
            OnTimeout::Resend { after, .. } => Some(now + duration(after)),
            OnTimeout::FlagOverdue => Some(overdue_deadline(saga, now)),
            OnTimeout::Never => None,
        }
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

    /// A due timer for `step` (or `compensate:<step>`): re-send, remind,
    /// stall, or flag overdue.
    pub async fn on_timer(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        timer: &str,
    ) -> Result<(), Error> {
        let Some(mut saga) = SagaState::load(conn, order_id, true).await? else {
            return Ok(());
        };
        let now = self.now();
        saga.timer_changes
            .push(TimerChange::Clear(timer.to_owned()));
        if let Some(step_name) = timer.strip_prefix(COMPENSATE) {
            self.compensation_timeout(&mut saga, step_name, now);
        } else if let Some((_, step)) = self.workflow.step(timer) {
            let state = saga.step(timer);
            if saga.status == Status::Running && state.status == StepStatus::Waiting {
                self.step_timeout(&mut saga, step, state.attempts, now);
            }
        }
        saga.updated_at = now;
        saga.save(conn).await?;
        Ok(())
    }

    fn step_timeout(
        &self,
        saga: &mut SagaState,
        step: &StepDef,
        attempts: i32,
        now: DateTime<Utc>,
    ) {
        let cause = Cause::root(saga.correlation_id.clone());
        let name = step.name;
        match (step.action, step.on_timeout) {
            (_, OnTimeout::Resend { max_attempts, .. }) if attempts >= max_attempts as i32 => {
                let reason = match step.action {
                    StepAction::Decide(spec) => format!(
                        "{} decision unanswered after {} reminders",
                        spec.kind,
                        attempts - 1
                    ),
                    _ => format!(
                        "no {} after {attempts} attempts",
                        short_type(step.completes_on)
                    ),
                };
                self.stall(saga, name, &reason, now);
            }
            (StepAction::Send(build), OnTimeout::Resend { after, .. }) => {
                let attempt = attempts + 1;
                // Exponential backoff: the service may be down for a while.
                let wait = duration(after) * 2i32.pow((attempt - 1).min(10) as u32);
                saga.outgoing.push(build(saga, &cause));
                let state = saga.step_mut(name);
                state.attempts = attempt;
                state.deadline = Some(now + wait);
                state.last_error = Some("timed out waiting for the reply".to_owned());
                saga.timer_changes
                    .push(TimerChange::Set(name.to_owned(), now + wait));
                log(saga, now, name, "resent", format!("attempt {attempt}"));
            }
            (StepAction::Decide(_), OnTimeout::Resend { after, .. }) => {
                let next = now + duration(after);
                let Some(decision) = saga
                    .decisions
                    .iter_mut()
                    .find(|d| d.step == name && d.is_open())
                else {
                    return;
                };
                decision.reminders += 1;
                decision.deadline = next;
                let reminder = v1::DecisionRequested {
                    decision: Some(decision_proto(&saga.order_id, decision)),
                    reminder: true,
                };
                let reminders = decision.reminders;
                saga.outgoing
                    .push(Outgoing::event(SERVICE, &saga.order_id, &reminder, &cause));
                let state = saga.step_mut(name);
                state.attempts = attempts + 1;
                state.deadline = Some(next);
                saga.timer_changes
                    .push(TimerChange::Set(name.to_owned(), next));
                log(saga, now, name, "reminded", format!("reminder {reminders}"));
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
                self.check_risk(saga, projected_before, &cause, now);
                let next = now + Duration::days(1);
                saga.step_mut(name).deadline = Some(next);
                saga.timer_changes
                    .push(TimerChange::Set(name.to_owned(), next));
                log(
                    saga,
                    now,
                    name,
                    "overdue",
                    format!("still waiting for {}", short_type(step.completes_on)),
                );
            }
        }
    }

    /// Answers an open decision; the step completes and the answer takes
    /// effect (a new promise, or the order's cancellation).
    pub async fn decide(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        decision_id: uuid::Uuid,
        answer: &str,
        operator: &str,
        comment: &str,
    ) -> Result<SagaState, Error> {
        let mut saga = SagaState::load(conn, order_id, true)
            .await?
            .ok_or_else(|| Error::NotFound(format!("saga for order {order_id}")))?;
        let now = self.now();
        let order_trace = saga.traceparent.clone();
        let caller = gendan_telemetry::current_traceparent();
        in_order_trace(order_trace.as_deref(), caller.as_deref(), || {
            self.apply_answer(&mut saga, decision_id, answer, operator, comment, now)
        })?;
        saga.updated_at = now;
        saga.save(conn).await?;
        Ok(saga)
    }

    /// Records the answer of an open decision and lets it take effect.
    fn apply_answer(
        &self,
        saga: &mut SagaState,
        decision_id: uuid::Uuid,
        answer: &str,
        operator: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let order_id = saga.order_id.clone();
        let decision = saga
            .decisions
            .iter_mut()
            .find(|d| d.decision_id == decision_id)
            .ok_or_else(|| {
                Error::NotFound(format!("decision {decision_id} of order {order_id}"))
            })?;
        if !decision.is_open() {
            return Err(Error::FailedPrecondition(format!(
                "decision {decision_id} was already answered {:?} by {}",
                decision.answer.as_deref().unwrap_or_default(),
                decision.answered_by.as_deref().unwrap_or("someone")
            )));
        }
        if !decision.options.iter().any(|option| option == answer) {
            return Err(gendan_grpc::FieldError::new(
                "answer",
                format!("{answer:?} is not one of {}", decision.options.join(", ")),
            )
            .into());
        }
        decision.answer = Some(answer.to_owned());
        decision.answered_by = Some(operator.to_owned());
        decision.answered_at = Some(now);
        decision.comment = Some(comment.to_owned());
        let (step, kind) = (decision.step.clone(), decision.kind.clone());
        let made = v1::DecisionMade {
            decision: Some(decision_proto(&saga.order_id, decision)),
        };
        let cause = Cause::root(saga.correlation_id.clone());
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &made, &cause));
        log(
            saga,
            now,
            &step,
            "decided",
            format!("{answer} by {operator}: {comment}"),
        );

        let projected_before = saga.projected;
        let was_stalled = saga.step(&step).status == StepStatus::Stalled;
        self.finish_step(
            saga,
            &step,
            StepStatus::Done,
            now,
            &format!("answered {answer}"),
        );
        if was_stalled && saga.status == Status::Stalled {
            self.resume(saga, &step, "decision", operator, comment, now);
        }
        match effects::apply_decision(saga, &kind, answer) {
            DecisionEffect::CancelOrder => {
                let reason = format!("{kind} decision: {comment}");
                self.cancel_saga(saga, operator, &reason, &cause, now);
            }
            DecisionEffect::Continue => {
                self.check_risk(saga, projected_before, &cause, now);
                self.advance(saga, &cause, now);
            }
        }
        Ok(())
    }

    /// Cancels the order's workflow (possible until shipping) and starts the
    /// compensations of every step that took effect, latest first.
    pub async fn cancel(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        operator: &str,
        reason: &str,
    ) -> Result<SagaState, Error> {
        let mut saga = SagaState::load(conn, order_id, true)
            .await?
            .ok_or_else(|| Error::NotFound(format!("saga for order {order_id}")))?;
        if matches!(saga.status, Status::Completed | Status::Cancelled)
            || saga.phase == Phase::Cancelled
        {
            return Err(Error::FailedPrecondition(format!(
                "order {order_id} is {}: nothing left to cancel",
                saga.status.as_str()
            )));
        }
        if (saga.phase as i32) >= (Phase::Shipping as i32) {
            return Err(Error::FailedPrecondition(format!(
                "order {order_id} is in phase {}: orders cannot be cancelled once shipping has started",
                saga.phase.short_name()
            )));
        }
        let now = self.now();
        let cause = Cause::root(saga.correlation_id.clone());
        let order_trace = saga.traceparent.clone();
        let caller = gendan_telemetry::current_traceparent();
        in_order_trace(order_trace.as_deref(), caller.as_deref(), || {
            self.cancel_saga(&mut saga, operator, reason, &cause, now)
        });
        saga.updated_at = now;
        saga.save(conn).await?;
        Ok(saga)
    }

    fn cancel_saga(
        &self,
        saga: &mut SagaState,
        operator: &str,
        reason: &str,
        cause: &Cause,
        now: DateTime<Utc>,
    ) {
        let from = saga.phase;
        saga.status = Status::Cancelled;
        saga.stalled_reason = None;
        // Nothing still waiting matters any more.
        let open: Vec<String> = saga
            .steps
            .iter()
            .filter(|(_, step)| !step.status.is_finished())
            .map(|(name, _)| name.clone())
            .collect();
        for name in open {
            saga.timer_changes.push(TimerChange::Clear(name.clone()));
            let step = saga.step_mut(&name);
            if step.status != StepStatus::Pending {
                step.status = StepStatus::Skipped;
                step.finished_at = Some(now);
                step.deadline = None;
                step.last_error = Some("order cancelled".to_owned());
            }
        }
        for decision in saga.decisions.iter_mut().filter(|d| d.is_open()) {
            decision.answer = Some("withdrawn".to_owned());
            decision.answered_by = Some("system".to_owned());
            decision.answered_at = Some(now);
            decision.comment = Some("order cancelled".to_owned());
        }
        let cancelled = v1::OrderCancelled {
            order_id: saga.order_id.clone(),
            operator: operator.to_owned(),
            reason: reason.to_owned(),
            phase: from as i32,
        };
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &cancelled, cause));
        log(
            saga,
            now,
            "-",
            "cancelled",
            format!("by {operator}: {reason}"),
        );
        self.change_phase(saga, Phase::Cancelled, cause, now);

        // Compensate in reverse order of the workflow.
        let to_undo: Vec<(&'static str, CompensationDef)> = self
            .workflow
            .steps()
            .filter_map(|(_, step)| step.compensation.map(|c| (step.name, c)))
            .filter(|(name, _)| saga.step(name).status == StepStatus::Done)
            .collect();
        for (name, compensation) in to_undo.into_iter().rev() {
            saga.outgoing.push((compensation.command)(saga, cause));
            saga.compensations.insert(
                name.to_owned(),
                CompensationState {
                    action: compensation.action.to_owned(),
                    status: CompensationStatus::Sent,
                    attempts: 1,
                    started_at: now,
                    finished_at: None,
                    detail: String::new(),
                },
            );
            let fire_at = now + duration(self.compensation_timing().0);
            saga.timer_changes
                .push(TimerChange::Set(format!("{COMPENSATE}{name}"), fire_at));
            log(
                saga,
                now,
                name,
                "compensating",
                compensation.action.to_owned(),
            );
        }
    }

    /// Re-send timing of compensations: the workflow's command timing.
    fn compensation_timing(&self) -> (std::time::Duration, u32) {
        self.workflow
            .steps()
            .find_map(|(_, step)| match step.on_timeout {
                OnTimeout::Resend {
                    after,
                    max_attempts,
                } if matches!(step.action, StepAction::Send(_)) => Some((after, max_attempts)),
                _ => None,
            })
            .unwrap_or((std::time::Duration::from_secs(30), 5))
    }

    /// A cancelled saga hears the answer to one of its compensations.
    fn compensation_answered(
        &self,
        saga: &mut SagaState,
        incoming: &Incoming,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        let answered: Vec<&'static str> = self
            .workflow
            .steps()
            .filter(|(_, step)| {
                step.compensation
                    .is_some_and(|c| c.completes_on == incoming.type_name())
            })
            .map(|(_, step)| step.name)
            .collect();
        for name in answered {
            let Some(compensation) = saga.compensations.get_mut(name) else {
                continue;
            };
            if compensation.status == CompensationStatus::Done {
                continue;
            }
            let was_stalled = compensation.status == CompensationStatus::Stalled;
            compensation.status = CompensationStatus::Done;
            compensation.finished_at = Some(now);
            compensation.detail = format!("answered by {}", short_type(incoming.type_name()));
            saga.timer_changes
                .push(TimerChange::Clear(format!("{COMPENSATE}{name}")));
            if was_stalled && saga.status == Status::Stalled {
                saga.status = Status::Cancelled;
                saga.stalled_reason = None;
            }
            log(
                saga,
                now,
                name,
                "compensated",
                short_type(incoming.type_name()).to_owned(),
            );
        }
        saga.updated_at = now;
        Ok(())
    }

    fn compensation_timeout(&self, saga: &mut SagaState, step_name: &str, now: DateTime<Utc>) {
        let (after, max_attempts) = self.compensation_timing();
        let Some((_, step)) = self.workflow.step(step_name) else {
            return;
        };
        let Some(definition) = step.compensation else {
            return;
        };
        let Some(compensation) = saga.compensations.get_mut(step_name) else {
            return;
        };
        if compensation.status != CompensationStatus::Sent {
            return;
        }
        if compensation.attempts >= max_attempts as i32 {
            compensation.status = CompensationStatus::Stalled;
            compensation.detail = format!(
                "no {} after {} attempts",
                short_type(definition.completes_on),
                compensation.attempts
            );
            let reason = format!(
                "compensation {}: {}",
                definition.action, compensation.detail
            );
            saga.status = Status::Stalled;
            saga.stalled_reason = Some(reason.clone());
            let stalled = v1::SagaStalled {
                order_id: saga.order_id.clone(),
                step: format!("{COMPENSATE}{step_name}"),
                reason: reason.clone(),
            };
            let cause = Cause::root(saga.correlation_id.clone());
            saga.outgoing
                .push(Outgoing::event(SERVICE, &saga.order_id, &stalled, &cause));
            log(saga, now, step_name, "stalled", reason);
            return;
        }
        compensation.attempts += 1;
        let attempt = compensation.attempts;
        let wait = duration(after) * 2i32.pow((attempt - 1).min(10) as u32);
        let cause = Cause::root(saga.correlation_id.clone());
        saga.outgoing.push((definition.command)(saga, &cause));
        saga.timer_changes.push(TimerChange::Set(
            format!("{COMPENSATE}{step_name}"),
            now + wait,
        ));
        log(
            saga,
            now,
            step_name,
            "compensation resent",
            format!("attempt {attempt}"),
        );
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
        if let Some(compensated) = step_name.strip_prefix(COMPENSATE) {
            return self
                .retry_compensation(conn, order_id, compensated, operator, reason)
                .await;
        }
        let (mut saga, step) = self.stalled_step(conn, order_id, step_name).await?;
        let now = self.now();
        let cause = Cause::root(saga.correlation_id.clone());
        self.resume(&mut saga, step_name, "retry", operator, reason, now);
        // A decision asked again replaces the unanswered one.
        for decision in saga
            .decisions
            .iter_mut()
            .filter(|d| d.step == step_name && d.is_open())
        {
            decision.answer = Some("superseded".to_owned());
            decision.answered_by = Some(operator.to_owned());
            decision.answered_at = Some(now);
            decision.comment = Some("asked again".to_owned());
        }
        saga.step_mut(step_name).status = StepStatus::Pending;
        // Waiting again for an answer that was "no" (a failed final
        // inspection after rework) means asking again: the steps this one
        // waits behind that sent a command send it once more.
        if matches!(step.action, StepAction::Await) {
            for gate in step.after {
                if let Some((_, gate_step)) = self.workflow.step(gate)
                    && matches!(gate_step.action, StepAction::Send(_))
                {
                    log(
                        &mut saga,
                        now,
                        gate,
                        "asked again",
                        format!("for the retry of {step_name}"),
                    );
                    saga.step_mut(gate).status = StepStatus::Pending;
                    self.start_step(&mut saga, gate_step, &cause, now);
                }
            }
        }
        self.start_step(&mut saga, step, &cause, now);
        self.advance(&mut saga, &cause, now);
        saga.save(conn).await?;
        Ok(saga)
    }

    async fn retry_compensation(
        &self,
        conn: &mut PgConnection,
        order_id: &str,
        step_name: &str,
        operator: &str,
        reason: &str,
    ) -> Result<SagaState, Error> {
        let mut saga = SagaState::load(conn, order_id, true)
            .await?
            .ok_or_else(|| Error::NotFound(format!("saga for order {order_id}")))?;
        let definition = self
            .workflow
            .step(step_name)
            .and_then(|(_, step)| step.compensation)
            .ok_or_else(|| Error::NotFound(format!("compensation of step {step_name:?}")))?;
        let status = saga.compensations.get(step_name).map(|c| c.status);
        if status != Some(CompensationStatus::Stalled) {
            return Err(Error::FailedPrecondition(format!(
                "compensation of {step_name} for order {order_id} is {}, not stalled",
                status
                    .map(CompensationStatus::as_str)
                    .unwrap_or("not started")
            )));
        }
        let now = self.now();
        let cause = Cause::root(saga.correlation_id.clone());
        let step_key = format!("{COMPENSATE}{step_name}");
        self.resume(&mut saga, &step_key, "retry", operator, reason, now);
        saga.status = Status::Cancelled;
        if let Some(compensation) = saga.compensations.get_mut(step_name) {
            compensation.status = CompensationStatus::Sent;
            compensation.attempts = 1;
            compensation.detail.clear();
        }
        saga.outgoing.push((definition.command)(&saga, &cause));
        let fire_at = now + duration(self.compensation_timing().0);
        saga.timer_changes.push(TimerChange::Set(step_key, fire_at));
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

/// Runs `f` in a span of the order's trace (`order`), linked to `cause`.
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

/// Timer key prefix of a compensation (`compensate:plan_production`).
pub const COMPENSATE: &str = "compensate:";

/// `gendan.v1.WorkOrderPlanned` → `WorkOrderPlanned`.
fn short_type(type_name: &str) -> &str {
    type_name.rsplit('.').next().unwrap_or(type_name)
}

pub fn decision_proto(order_id: &str, decision: &DecisionState) -> v1::Decision {
    v1::Decision {
        decision_id: decision.decision_id.to_string(),
        order_id: order_id.to_owned(),
        step: decision.step.clone(),
        kind: decision.kind.clone(),
        question: decision.question.clone(),
        options: decision.options.clone(),
        opened_at: Some(gendan_proto::timestamp_from(decision.opened_at)),
        deadline: Some(gendan_proto::timestamp_from(decision.deadline)),
        answer: decision.answer.clone().unwrap_or_default(),
        answered_by: decision.answered_by.clone().unwrap_or_default(),
        answered_at: decision.answered_at.map(gendan_proto::timestamp_from),
        comment: decision.comment.clone().unwrap_or_default(),
        reminders: decision.reminders.max(0) as u32,
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
