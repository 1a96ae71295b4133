//! The pure core: a new saga, an event applied to a saga, and the one rule
//! that moves it forward. Nothing here reads the database or the clock;
//! every change lands in the saga (and its outgoing messages, timers, log).

use chrono::{DateTime, Duration, NaiveTime, Utc};
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing};
use gendan_proto::date_to_string;
use gendan_proto::v1::{self, Department, ExceptionKind, Phase};

use super::journal::{current_trace_id, log};
use super::{Engine, is_live, root_cause, short_type};
use crate::SERVICE;
use crate::calendar::Kind;
use crate::effects::{self, Verdict};
use crate::exceptions;
use crate::state::{SagaState, Status, StepStatus, TimerChange};
use crate::workflow::{Escalation, OnFailure, OnTimeout, StepDef, StepKind};

impl Engine {
    /// The saga of a newly created order, started as far as it can go.
    pub fn begin(
        &self,
        order: v1::Order,
        created: &Incoming,
        now: DateTime<Utc>,
    ) -> Result<SagaState, HandlerError> {
        let requested =
            gendan_proto::date_from_str(&order.requested_delivery_date).ok_or_else(|| {
                HandlerError::Rejected(format!(
                    "order {} has requested_delivery_date {:?}, not YYYY-MM-DD",
                    order.order_id, order.requested_delivery_date
                ))
            })?;
        let cause = Cause::from_incoming(created);
        let mut saga = SagaState::new(
            order,
            requested,
            self.workflow.steps().map(|(_, step)| step.name),
            created
                .traceparent
                .clone()
                .or_else(gendan_telemetry::current_traceparent),
            cause.correlation_id.clone(),
            now,
        );
        log(
            &mut saga,
            now,
            "-",
            "created",
            format!("requested delivery {}", date_to_string(requested)),
        );
        self.advance(&mut saga, &cause, now);
        Ok(saga)
    }

    /// Applies one event: facts, completed or failed steps, the register,
    /// risk, and whatever can start next.
    pub fn react(
        &self,
        saga: &mut SagaState,
        incoming: &Incoming,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        if incoming.is::<v1::OrderAmended>() {
            return self.amend(saga, incoming, now);
        }
        if !is_live(saga) {
            if saga.status == Status::Cancelled || saga.phase == Phase::Cancelled {
                self.compensation_answered(saga, incoming, now);
            }
            return Ok(());
        }
        let cause = Cause::from_incoming(incoming);
        let projected_before = saga.projected;
        // The register first, so an exception opens at the projection the
        // event is about to move (its impact is measured from there).
        exceptions::note_event(saga, incoming, &cause, now)?;
        let before = (saga.facts.clone(), saga.promised, saga.projected);
        let answer = effects::apply(saga, incoming)?;
        let answered: Vec<&StepDef> = self
            .workflow
            .steps()
            .map(|(_, step)| step)
            .filter(|step| step.answered_by(incoming.type_name()))
            .filter(|step| answer.step.is_none_or(|only| only == step.name))
            .collect();
        // An answer to a run that has been superseded (the first work
        // order's completion after an amendment planned another) is
        // history: it moves no date and sets no fact either.
        let stale = |step: &StepDef| {
            answer.revision.is_some_and(|revision| {
                expected_revision(saga, step).is_some_and(|e| e != revision)
            })
        };
        if !answered.is_empty() && answered.iter().all(|step| stale(step)) {
            (saga.facts, saga.promised, saga.projected) = before;
            return Ok(());
        }
        let settings = self.calendar.clone();
        let calendar_moves =
            effects::calendar::follow(saga, incoming, &settings, now.date_naive())?;
        effects::calendar::project_delivery(saga);
        for step in answered {
            let state = saga.step(step.name);
            if state.status.is_finished() {
                continue;
            }
            // A reply can only answer a command that was sent; an event a
            // step merely awaits may arrive before the step starts (kept).
            if step.asks() && state.status == StepStatus::Pending {
                continue;
            }
            // An answer to an earlier run of a step that has run again
            // (the first inspection, after rework was ordered) is history.
            if answer.revision.is_some_and(|revision| {
                expected_revision(saga, step).is_some_and(|expected| expected != revision)
            }) {
                continue;
            }
            if let Verdict::Completes = answer.verdict
                && let Some(revision) = answer.revision
            {
                saga.facts
                    .answered_revisions
                    .insert(step.name.to_owned(), revision);
            }
            match &answer.verdict {
                Verdict::Informs => {}
                Verdict::Completes => {
                    let was_stalled = state.status == StepStatus::Stalled;
                    self.finish_step(saga, step.name, StepStatus::Done, now, incoming.type_name());
                    if was_stalled && saga.status == Status::Stalled {
                        // The reply came after all: nobody needs to act.
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
                Verdict::Fails(reason) if state.status != StepStatus::Stalled => {
                    saga.focus = answer.subject.clone();
                    self.fail_step(saga, step, reason, &cause, now);
                    saga.focus = None;
                }
                Verdict::Fails(_) => {}
            }
        }
        self.check_risk(saga, projected_before, &cause, now);
        if let Some(changed) =
            effects::calendar::announce(saga, &calendar_moves, &settings.week, &cause)
        {
            saga.outgoing.push(changed);
        }
        self.advance(saga, &cause, now);
        Ok(())
    }

    /// Starts what can start; completes the saga when nothing is left. The
    /// phase is the first with an unfinished step, so a loop back into an
    /// earlier phase (a remake) shows as that phase again.
    pub(super) fn advance(&self, saga: &mut SagaState, cause: &Cause, now: DateTime<Utc>) {
        if saga.status != Status::Running {
            return;
        }
        for phase in &self.workflow.phases {
            let unfinished = |saga: &SagaState| {
                phase
                    .steps
                    .iter()
                    .any(|step| !saga.step(step.name).status.is_finished())
            };
            // A loop back into an earlier phase is for work to do there: a
            // step not needed there (one a newer version added, unknown to a
            // saga saved before) is skipped without moving the phase back.
            if (phase.phase as i32) < (saga.phase as i32) {
                for step in &phase.steps {
                    let ready = saga.step(step.name).status == StepStatus::Pending
                        && step
                            .after
                            .iter()
                            .all(|gate| saga.step(gate).status.is_finished());
                    if ready && step.when.is_some_and(|needed| !needed(saga)) {
                        self.finish_step(saga, step.name, StepStatus::Skipped, now, "not needed");
                    }
                }
            }
            // Every phase is entered in order, even one whose steps finished
            // early (replies that overtook others), so the order's phase
            // history never skips a phase.
            if (phase.phase as i32) > (saga.phase as i32)
                || ((phase.phase as i32) < (saga.phase as i32) && unfinished(saga))
            {
                self.change_phase(saga, phase.phase, cause, now);
            }
            if !unfinished(saga) {
                continue;
            }
            // Starting or skipping a step can make the next one ready.
            while self.start_ready(saga, phase.steps.iter(), cause, now) {}
            if !unfinished(saga) {
                continue;
            }
            let later = self
                .workflow
                .phases
                .iter()
                .filter(|later| (later.phase as i32) > (phase.phase as i32))
                .flat_map(|later| later.steps.iter().filter(|step| step.early));
            self.start_ready(saga, later, cause, now);
            return;
        }
        saga.status = Status::Completed;
        exceptions::close_all(saga, "order completed", now);
        let completed = v1::SagaCompleted {
            order_id: saga.order_id.clone(),
            phase: saga.phase as i32,
        };
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &completed, cause));
        let detail = format!("workflow finished in phase {}", saga.phase.short_name());
        log(saga, now, "-", "completed", detail);
    }

    /// Starts (or skips, when not needed) every pending step of `steps`
    /// whose gates are finished. Returns whether any changed.
    fn start_ready<'a>(
        &self,
        saga: &mut SagaState,
        steps: impl Iterator<Item = &'a StepDef>,
        cause: &Cause,
        now: DateTime<Utc>,
    ) -> bool {
        let mut changed = false;
        for step in steps {
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
                self.start_step(saga, step, Run::Next, cause, now);
            }
            changed = true;
        }
        changed
    }

    pub(super) fn change_phase(
        &self,
        saga: &mut SagaState,
        to: Phase,
        cause: &Cause,
        now: DateTime<Utc>,
    ) {
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
        let detail = format!("{} → {}", from.short_name(), to.short_name());
        log(saga, now, "-", "phase", detail);
    }

    /// Runs a step: its next revision of the work, or the same one again
    /// (an operator's retry of a command nobody answered).
    pub(super) fn start_step(
        &self,
        saga: &mut SagaState,
        step: &StepDef,
        run: Run,
        cause: &Cause,
        now: DateTime<Utc>,
    ) {
        let runs = match run {
            Run::Next => saga.step(step.name).runs + 1,
            Run::Same => saga.step(step.name).runs.max(1),
        };
        {
            let state = saga.step_mut(step.name);
            state.status = StepStatus::Waiting;
            state.runs = runs;
            state.attempts = 1;
            state.started_at = Some(now);
            state.finished_at = None;
            state.last_error = None;
            state.trace_id = current_trace_id();
        }
        let deadline = match step.kind {
            StepKind::Send(build) => {
                let command = build(saga, runs as u32, cause);
                let mut detail = format!("sent {}", short_type(&command.envelope.r#type));
                if runs > 1 {
                    detail.push_str(&format!(" (revision {runs})"));
                }
                saga.outgoing.push(command);
                log(saga, now, step.name, "started", detail);
                self.deadline_of(saga, step, now)
            }
            StepKind::Decide(spec) => {
                let exception = spec.exception.map(|(kind, owner)| {
                    let cause_text = (spec.question)(saga);
                    exceptions::open(saga, kind, owner, step.name, cause_text, now, cause)
                });
                self.open_decision(saga, step.name, spec, exception, cause, now);
                None
            }
            StepKind::Await => {
                let detail = format!("for {}", short_list(step.completes_on));
                log(saga, now, step.name, "waiting", detail);
                self.deadline_of(saga, step, now)
            }
        };
        saga.step_mut(step.name).deadline = deadline;
        if let Some(deadline) = deadline {
            saga.timer_changes
                .push(TimerChange::Set(step.name.to_owned(), deadline));
        }
    }

    /// When a step started now times out, if it does.
    pub(super) fn deadline_of(
        &self,
        saga: &SagaState,
        step: &StepDef,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match step.on_timeout {
            OnTimeout::Resend { after, .. } => Some(now + super::duration(after)),
            OnTimeout::FlagOverdue => Some(overdue_deadline(saga, step.milestone, now)),
            OnTimeout::Never => None,
            OnTimeout::AskEvery(every) => Some(now + super::duration(every)),
        }
    }

    pub(super) fn finish_step(
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
        // A question the event overtook (the deposit paid while a person was
        // asked what to do about it) is no longer asked.
        let comment = format!("{name} finished: {by}");
        super::decisions::withdraw(saga, Some(name), "overtaken", "system", &comment, now);
        if status == StepStatus::Done {
            exceptions::close_for_step(saga, name, &format!("{} done", name), now);
        }
        if name == "delivered" {
            saga.facts.delivery_finished();
        }
        log(saga, now, name, status.as_str(), short_type(by).to_owned());
    }

    /// A failed answer: the step's failure policy decides — park, ask, or
    /// loop back — and the failure is an exception on the register.
    pub(super) fn fail_step(
        &self,
        saga: &mut SagaState,
        step: &StepDef,
        reason: &str,
        cause: &Cause,
        now: DateTime<Utc>,
    ) {
        let asking = saga
            .decisions
            .iter()
            .any(|d| d.step == step.name && d.is_open() && d.subject == saga.focus);
        if asking {
            // Already asked: the open question covers this too.
            exceptions::note_on_open(saga, step.name, reason);
            return;
        }
        let failures = {
            let state = saga.step_mut(step.name);
            state.failures += 1;
            state.last_error = Some(reason.to_owned());
            state.failures as u32
        };
        log(
            saga,
            now,
            step.name,
            "failed",
            format!("{reason} (failure {failures})"),
        );
        // The previous failure of this step ends here: its remedy did not
        // hold.
        exceptions::close_for_step(saga, step.name, "failed again", now);
        let owner = step.owner;
        let escalation = match step.on_failure {
            OnFailure::Stall => {
                let id = exceptions::open(
                    saga,
                    step.failure_kind,
                    owner,
                    step.name,
                    reason.to_owned(),
                    now,
                    cause,
                );
                self.stall(saga, step.name, reason, Some(id), now);
                return;
            }
            OnFailure::Decide(spec) => Escalation::Decide(spec),
            OnFailure::Reopen {
                steps,
                limit,
                limit_for,
                then,
            } => {
                let limit = limit_for.and_then(|own| own(saga)).unwrap_or(limit);
                if failures < limit {
                    exceptions::open(
                        saga,
                        step.failure_kind,
                        owner,
                        step.name,
                        format!("{reason}; reworking (failure {failures} of {limit} allowed)"),
                        now,
                        cause,
                    );
                    self.reopen(saga, steps, false, now);
                    return;
                }
                then
            }
        };
        let id = exceptions::open(
            saga,
            step.failure_kind,
            owner,
            step.name,
            reason.to_owned(),
            now,
            cause,
        );
        match escalation {
            Escalation::Stall => self.stall(saga, step.name, reason, Some(id), now),
            Escalation::Decide(spec) => {
                // The step waits for the person; its own deadline gives way
                // to the decision's reminders.
                saga.timer_changes
                    .push(TimerChange::Clear(step.name.to_owned()));
                let state = saga.step_mut(step.name);
                state.status = StepStatus::Waiting;
                state.deadline = None;
                self.open_decision(saga, step.name, spec, Some(id), cause, now);
            }
        }
    }

    /// Steps go back to pending to run again (their next revision) when
    /// their gates allow.
    pub(super) fn reopen(
        &self,
        saga: &mut SagaState,
        steps: &[&str],
        reset_failures: bool,
        now: DateTime<Utc>,
    ) {
        for name in steps {
            saga.timer_changes
                .push(TimerChange::Clear((*name).to_owned()));
            let state = saga.step_mut(name);
            state.status = StepStatus::Pending;
            state.deadline = None;
            state.finished_at = None;
            if reset_failures {
                state.failures = 0;
            }
        }
        log(saga, now, "-", "reopened", steps.join(", "));
    }

    /// Parks the saga on `name` for an operator.
    pub(super) fn stall(
        &self,
        saga: &mut SagaState,
        name: &str,
        reason: &str,
        exception: Option<uuid::Uuid>,
        now: DateTime<Utc>,
    ) {
        let state = saga.step_mut(name);
        state.status = StepStatus::Stalled;
        state.last_error = Some(reason.to_owned());
        state.deadline = None;
        saga.status = Status::Stalled;
        saga.stalled_reason = Some(format!("{name}: {reason}"));
        saga.timer_changes.push(TimerChange::Clear(name.to_owned()));
        let cause = root_cause(saga);
        if exception.is_none() {
            let owner = self
                .workflow
                .step(name)
                .map(|(_, step)| step.owner)
                .unwrap_or(Department::Operations);
            exceptions::open(
                saga,
                ExceptionKind::StalledStep,
                owner,
                name,
                reason.to_owned(),
                now,
                &cause,
            );
        }
        let stalled = v1::SagaStalled {
            order_id: saga.order_id.clone(),
            step: name.to_owned(),
            reason: reason.to_owned(),
        };
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &stalled, &cause));
        log(saga, now, name, "stalled", reason.to_owned());
        tracing::warn!(order_id = %saga.order_id, step = name, %reason, "saga stalled");
    }

    /// Takes the saga out of `stalled` after a person or a late reply
    /// acted on `step`.
    pub(super) fn resume(
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
        // Another step still parked keeps the saga parked on it.
        let still = saga
            .steps
            .iter()
            .find(|(name, state)| name.as_str() != step && state.status == StepStatus::Stalled)
            .map(|(name, state)| {
                let why = state.last_error.clone().unwrap_or_default();
                format!("{name}: {why}")
            });
        if let Some(reason) = still {
            saga.status = Status::Stalled;
            saga.stalled_reason = Some(reason);
        }
        exceptions::decide_for_step(saga, step, action, operator, now);
        let resumed = v1::SagaResumed {
            order_id: saga.order_id.clone(),
            step: step.to_owned(),
            action: action.to_owned(),
            operator: operator.to_owned(),
        };
        let cause = root_cause(saga);
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &resumed, &cause));
        log(saga, now, step, action, format!("by {operator}: {reason}"));
    }
}

/// The revision an answer to `step` must carry to count: its own run's
/// (see [`crate::state::StepState::expected_revision`]), or for a step
/// awaiting the answers of another's run (`revision_of`), the revision that
/// run was answered with — or, while it runs again, its next one. `None`:
/// any (a run answered by a producer that named no revision).
pub(super) fn expected_revision(saga: &SagaState, step: &StepDef) -> Option<u32> {
    let Some(source) = step.revision_of else {
        return Some(saga.step(step.name).expected_revision());
    };
    let run = saga.step(source);
    if run.status.is_finished() {
        saga.facts.answered_revisions.get(source).copied()
    } else {
        Some(run.expected_revision())
    }
}

/// Which revision a started step sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    /// New work: a loop, a remake, or the first run.
    Next,
    /// The same work asked again: the department answers from its record.
    Same,
}

/// End of the day the wait's `milestone` is projected on (the latest of
/// its kind: production waits for every stage), else of the projected
/// delivery day; a day from now when nothing is projected or the day has
/// passed.
pub(super) fn overdue_deadline(
    saga: &SagaState,
    milestone: Option<Kind>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let calendar = saga.facts.calendar.as_ref();
    milestone
        .and_then(|kind| calendar?.latest(kind))
        .or(saga.projected)
        .map(|date| date.and_time(NaiveTime::MIN).and_utc() + Duration::days(1))
        .filter(|deadline| *deadline > now)
        .unwrap_or(now + Duration::days(1))
}

fn short_list(types: &[&str]) -> String {
    types
        .iter()
        .map(|t| short_type(t))
        .collect::<Vec<_>>()
        .join(" or ")
}
