//! A due timer: a waiting step re-sends its command (same revision, with
//! backoff) until its attempts run out and the saga parks; a step whose
//! deadline is the projected date flags the order overdue and asks its
//! owner again for the fact it awaits (`RestateFact`: the fact again, or
//! where things stand), and after `overdue_asks` asks opens an
//! `overdue_wait` exception for a person to chase; a wait its owner chases
//! (payment, acceptance) only asks again now and then; a decision reminds,
//! and a question answered with a wait for an amendment that did not come
//! is asked again; a compensation re-sends.

use chrono::{DateTime, Duration, Utc};
use gendan_messaging::{Cause, Outgoing};
use gendan_proto::v1::{self, ExceptionKind, Phase};

use super::{COMPENSATE, DECIDE, Engine, duration, log, root_cause, short_type};
use crate::state::{SagaState, Status, StepStatus, TimerChange};
use crate::workflow::{OnTimeout, StepDef, StepKind};
use crate::{effects, exceptions};

impl Engine {
    pub(super) fn timer_fired(&self, saga: &mut SagaState, timer: &str, now: DateTime<Utc>) {
        saga.timer_changes
            .push(TimerChange::Clear(timer.to_owned()));
        if let Some(step) = timer.strip_prefix(COMPENSATE) {
            self.compensation_timeout(saga, step, now);
            return;
        }
        if saga.status == Status::Completed
            || saga.status == Status::Cancelled
            || saga.phase == Phase::Cancelled
        {
            return;
        }
        if saga.status == Status::Stalled {
            // Parked for an operator: what else waits keeps its deadline,
            // looked at again later, so nothing is forgotten on resume.
            let later = now + duration(self.workflow.compensation_resend);
            saga.timer_changes
                .push(TimerChange::Set(timer.to_owned(), later));
            return;
        }
        if let Some(step) = timer.strip_prefix(DECIDE) {
            self.decision_due(saga, step, now);
            return;
        }
        let Some((_, step)) = self.workflow.step(timer) else {
            return;
        };
        let state = saga.step(timer);
        let deciding = saga
            .decisions
            .iter()
            .any(|d| d.step == timer && d.is_open());
        if let StepKind::Decide(spec) = step.kind
            && !deciding
            && state.status == StepStatus::Waiting
            && saga.status == Status::Running
        {
            // Answered with a wait for an amendment (a re-quote) that did
            // not come in time: the question is asked again.
            self.ask_decision_again(saga, timer, spec, now);
            return;
        }
        if deciding || matches!(step.kind, StepKind::Decide(_)) {
            // A decision's reminder set under the step's own key (sagas
            // saved before decisions had timers of their own).
            self.decision_due(saga, timer, now);
            return;
        }
        if saga.status == Status::Running && state.status == StepStatus::Waiting {
            self.step_timeout(saga, step, state.attempts, now);
        }
    }

    /// Sends the step's owner a `RestateFact` for each event the step
    /// awaits, of the revision the answer must carry.
    fn ask_again(&self, saga: &mut SagaState, step: &StepDef, cause: &Cause, now: DateTime<Utc>) {
        let service = step.owner.short_name();
        // The revision an answer must carry to count (0: any), so what
        // comes back is what the step will take.
        let revision = match step.revision_of {
            Some(_) => super::core::expected_revision(saga, step).unwrap_or(0),
            None => 0,
        };
        for awaited in step.completes_on {
            let command = v1::RestateFact {
                order_id: saga.order_id.clone(),
                step: step.name.to_owned(),
                awaited: (*awaited).to_owned(),
                revision,
            };
            saga.outgoing.push(Outgoing::command(
                crate::SERVICE,
                &service,
                &saga.order_id,
                &command,
                cause,
            ));
        }
        log(
            saga,
            now,
            step.name,
            "asked again",
            format!("{service}, revision {revision}"),
        );
    }

    /// Counts an ask of an overdue wait; once the owner has been asked
    /// `overdue_asks` times without the fact, an `overdue_wait` exception
    /// (one per wait) asks a person to chase it, with the last status the
    /// owner gave. The step keeps waiting and asking; its fact closes the
    /// exception (`finish_step`).
    fn chase_if_asked_enough(
        &self,
        saga: &mut SagaState,
        step: &StepDef,
        waiting_for: &str,
        now: DateTime<Utc>,
        cause: &Cause,
    ) {
        let state = saga.step_mut(step.name);
        // A wait starts with one attempt; each ask adds one.
        state.attempts += 1;
        let asks = state.attempts - 1;
        let last_status = state.last_error.clone();
        let chasing = saga.exceptions.iter().any(|record| {
            record.is_open()
                && record.step == step.name
                && record.kind == ExceptionKind::OverdueWait
        });
        if chasing || asks < self.workflow.overdue_asks as i32 {
            return;
        }
        let owner = step.owner;
        let mut text = format!(
            "{} overdue: {} asked {asks} times for {waiting_for}",
            step.name,
            owner.short_name()
        );
        if let Some(status) = last_status {
            text.push_str(&format!("; last said: {status}"));
        }
        exceptions::open(
            saga,
            ExceptionKind::OverdueWait,
            owner,
            step.name,
            text,
            now,
            cause,
        );
    }

    fn step_timeout(
        &self,
        saga: &mut SagaState,
        step: &StepDef,
        attempts: i32,
        now: DateTime<Utc>,
    ) {
        let cause = root_cause(saga);
        let name = step.name;
        match (step.kind, step.on_timeout) {
            (StepKind::Send(_), OnTimeout::Resend { max_attempts, .. })
                if attempts >= max_attempts as i32 =>
            {
                let reason = format!(
                    "no {} after {attempts} attempts",
                    short_type(step.completes_on.first().copied().unwrap_or("answer"))
                );
                self.stall(saga, name, &reason, None, now);
            }
            (StepKind::Send(build), OnTimeout::Resend { after, .. }) => {
                let attempt = attempts + 1;
                // Exponential backoff: the service may be down for a while.
                let wait = duration(after) * 2i32.pow((attempt - 1).min(10) as u32);
                // The same revision: the department answers from what it
                // stored if the first command got through.
                let revision = saga.step(name).revision();
                saga.outgoing.push(build(saga, revision, &cause));
                let state = saga.step_mut(name);
                state.attempts = attempt;
                state.deadline = Some(now + wait);
                state.last_error = Some("timed out waiting for the reply".to_owned());
                saga.timer_changes
                    .push(TimerChange::Set(name.to_owned(), now + wait));
                log(saga, now, name, "resent", format!("attempt {attempt}"));
            }
            (_, OnTimeout::Never) | (StepKind::Decide(_), _) => {}
            (_, OnTimeout::AskEvery(every)) => {
                // Its owner chases the wait; the saga only makes sure it has
                // not missed the answer.
                let next = now + duration(every);
                saga.step_mut(name).deadline = Some(next);
                saga.timer_changes
                    .push(TimerChange::Set(name.to_owned(), next));
                self.ask_again(saga, step, &cause, now);
            }
            _ => {
                // Overdue: the order cannot make its projected date. With a
                // calendar, the wait's milestone is open and cannot be
                // before today, so re-projecting on today slips what
                // follows it.
                let overdue_from = now.date_naive();
                let projected_before = saga.projected;
                let week = &self.calendar.week;
                let moved = match saga.facts.calendar.as_mut() {
                    Some(calendar) => calendar.reproject(week, overdue_from),
                    None => Vec::new(),
                };
                effects::calendar::project_delivery(saga);
                if saga
                    .projected
                    .is_none_or(|projected| projected < overdue_from)
                {
                    saga.projected = Some(overdue_from);
                }
                self.check_risk(saga, projected_before, &cause, now);
                if let Some(changed) = effects::calendar::announce(saga, &moved, week, &cause) {
                    saga.outgoing.push(changed);
                }
                // Re-projected on today, the wait's milestone is still ahead
                // when an estimate or what it waits for puts it later (a
                // supplier's new ETA): the wait is not late yet, and is
                // looked at again at the end of that day.
                let still_ahead = step
                    .milestone
                    .and_then(|kind| saga.facts.calendar.as_ref()?.latest(kind))
                    .filter(|day| *day > overdue_from);
                if let Some(day) = still_ahead {
                    let next = day.and_time(chrono::NaiveTime::MIN).and_utc() + Duration::days(1);
                    saga.step_mut(name).deadline = Some(next);
                    saga.timer_changes
                        .push(TimerChange::Set(name.to_owned(), next));
                    return;
                }
                let next = now + Duration::days(1);
                saga.step_mut(name).deadline = Some(next);
                saga.timer_changes
                    .push(TimerChange::Set(name.to_owned(), next));
                let waiting_for = step
                    .completes_on
                    .iter()
                    .map(|t| short_type(t))
                    .collect::<Vec<_>>()
                    .join(" or ");
                log(
                    saga,
                    now,
                    name,
                    "overdue",
                    format!("still waiting for {waiting_for}"),
                );
                // The answer may have been announced and lost: the owner
                // announces it again if it holds it, else says where
                // things stand (`StatusReported`).
                self.ask_again(saga, step, &cause, now);
                self.chase_if_asked_enough(saga, step, &waiting_for, now, &cause);
            }
        }
    }
}
