//! Cancellation: possible until shipping; every step that took effect is
//! undone in reverse order by its compensation command, each re-sent on a
//! timer until answered and parked as stalled after its attempts.

use chrono::{DateTime, Utc};
use gendan_messaging::{Cause, Incoming, Outgoing};
use gendan_proto::v1::{self, Phase};

use super::{COMPENSATE, Engine, duration, is_live, log, root_cause, short_type};
use crate::exceptions;
use crate::state::{
    CompensationState, CompensationStatus, SagaState, Status, StepStatus, TimerChange,
};
use crate::workflow::CompensationDef;
use crate::{Error, SERVICE};

impl Engine {
    /// A person asked to cancel: refused once nothing is left to cancel or
    /// the goods are on their way.
    pub(super) fn cancel_requested(
        &self,
        saga: &mut SagaState,
        operator: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let order_id = &saga.order_id;
        if !is_live(saga) {
            return Err(Error::FailedPrecondition(format!(
                "order {order_id} is {}: nothing left to cancel",
                saga.status.as_str()
            )));
        }
        if super::goods_left(saga) {
            return Err(Error::FailedPrecondition(format!(
                "order {order_id} is in phase {}: orders cannot be cancelled once shipping has started",
                saga.phase.short_name()
            )));
        }
        let cause = root_cause(saga);
        self.cancel_saga(saga, operator, reason, &cause, now);
        Ok(())
    }

    pub(super) fn cancel_saga(
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
        super::decisions::withdraw(saga, None, "withdrawn", "system", "order cancelled", now);
        exceptions::close_all(saga, &format!("order cancelled by {operator}"), now);
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
            // Sent is enough: a department may act on a command whose answer
            // has not come back yet (and answers an undo of nothing).
            .filter(|(name, _)| {
                let state = saga.step(name);
                state.status == StepStatus::Done || state.runs > 0
            })
            .collect();
        for (name, compensation) in to_undo.into_iter().rev() {
            let revision = saga.step(name).revision();
            saga.outgoing
                .push((compensation.command)(saga, revision, cause));
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
            let fire_at = now + duration(self.workflow.compensation_resend);
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

    /// A cancelled saga hears the answer to one of its compensations.
    pub(super) fn compensation_answered(
        &self,
        saga: &mut SagaState,
        incoming: &Incoming,
        now: DateTime<Utc>,
    ) {
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
                let step = format!("{COMPENSATE}{name}");
                exceptions::close_for_step(saga, &step, "compensated after all", now);
            }
            let detail = short_type(incoming.type_name()).to_owned();
            log(saga, now, name, "compensated", detail);
        }
    }

    pub(super) fn compensation_timeout(
        &self,
        saga: &mut SagaState,
        step_name: &str,
        now: DateTime<Utc>,
    ) {
        let max_attempts = self.workflow.compensation_attempts as i32;
        let Some(definition) = self
            .workflow
            .step(step_name)
            .and_then(|(_, step)| step.compensation)
        else {
            return;
        };
        let Some(compensation) = saga.compensations.get_mut(step_name) else {
            return;
        };
        if compensation.status != CompensationStatus::Sent {
            return;
        }
        let key = format!("{COMPENSATE}{step_name}");
        if compensation.attempts >= max_attempts {
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
            let cause = root_cause(saga);
            exceptions::open(
                saga,
                v1::ExceptionKind::StalledStep,
                v1::Department::Operations,
                &key,
                reason.clone(),
                now,
                &cause,
            );
            let stalled = v1::SagaStalled {
                order_id: saga.order_id.clone(),
                step: key,
                reason: reason.clone(),
            };
            saga.outgoing
                .push(Outgoing::event(SERVICE, &saga.order_id, &stalled, &cause));
            log(saga, now, step_name, "stalled", reason);
            return;
        }
        compensation.attempts += 1;
        let attempt = compensation.attempts;
        let wait =
            duration(self.workflow.compensation_resend) * 2i32.pow((attempt - 1).min(10) as u32);
        let cause = root_cause(saga);
        let revision = saga.step(step_name).revision();
        saga.outgoing
            .push((definition.command)(saga, revision, &cause));
        saga.timer_changes.push(TimerChange::Set(key, now + wait));
        log(
            saga,
            now,
            step_name,
            "compensation resent",
            format!("attempt {attempt}"),
        );
    }

    /// An operator retries a stalled compensation with a fresh budget.
    pub(super) fn retry_compensation(
        &self,
        saga: &mut SagaState,
        step_name: &str,
        operator: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let order_id = saga.order_id.clone();
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
        let cause = root_cause(saga);
        let key = format!("{COMPENSATE}{step_name}");
        self.resume(saga, &key, "retry", operator, reason, now);
        saga.status = Status::Cancelled;
        if let Some(compensation) = saga.compensations.get_mut(step_name) {
            compensation.status = CompensationStatus::Sent;
            compensation.attempts = 1;
            compensation.detail.clear();
        }
        let revision = saga.step(step_name).revision();
        saga.outgoing
            .push((definition.command)(saga, revision, &cause));
        let fire_at = now + duration(self.workflow.compensation_resend);
        saga.timer_changes.push(TimerChange::Set(key, fire_at));
        Ok(())
    }
}
