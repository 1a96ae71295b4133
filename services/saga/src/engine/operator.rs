//! An operator's hands on a stalled saga: retry a stalled step (or a
//! stalled compensation) with a fresh budget, or skip it as done.

use chrono::{DateTime, Utc};

use super::core::Run;
use super::decisions::withdraw;
use super::{COMPENSATE, Engine, log, root_cause};
use crate::Error;
use crate::state::{SagaState, StepStatus};
use crate::workflow::{StepDef, StepKind};

impl Engine {
    /// Runs a stalled step again. A command nobody answered is sent again
    /// with its revision (a harmless duplicate if it got through); waiting
    /// again for an answer that was "no" asks again (the commands it waits
    /// behind are sent once more, as new work); an unanswered decision is
    /// asked afresh.
    pub(super) fn retry(
        &self,
        saga: &mut SagaState,
        step_name: &str,
        operator: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if let Some(compensated) = step_name.strip_prefix(COMPENSATE) {
            return self.retry_compensation(saga, compensated, operator, reason, now);
        }
        let step = self.stalled_step(saga, step_name)?;
        let cause = root_cause(saga);
        self.resume(saga, step_name, "retry", operator, reason, now);
        // The questions a failing step had asked (one per claim) are asked
        // afresh; a decide step asks its own again when it restarts.
        let asked: Vec<(String, Option<String>, Option<uuid::Uuid>)> = saga
            .decisions
            .iter()
            .filter(|d| d.step == step_name && d.is_open())
            .map(|d| (d.kind.clone(), d.subject.clone(), d.exception_id))
            .collect();
        // A decision asked again replaces the unanswered one.
        withdraw(
            saga,
            Some(step_name),
            "superseded",
            operator,
            "asked again",
            now,
        );
        if !asked.is_empty() && !matches!(step.kind, StepKind::Decide(_)) {
            // The step waits for its people again, not for new work.
            for (kind, subject, exception) in asked {
                if let Some(spec) = self.workflow.decision_spec(&kind) {
                    saga.focus = subject;
                    self.open_decision(saga, step_name, spec, exception, &cause, now);
                    saga.focus = None;
                }
            }
            saga.step_mut(step_name).status = StepStatus::Waiting;
            self.advance(saga, &cause, now);
            return Ok(());
        }
        saga.step_mut(step_name).status = StepStatus::Pending;
        if matches!(step.kind, StepKind::Await) {
            for gate in step.after {
                if let Some((_, gate_step)) = self.workflow.step(gate)
                    && matches!(gate_step.kind, StepKind::Send(_))
                {
                    let detail = format!("for the retry of {step_name}");
                    log(saga, now, gate, "asked again", detail);
                    saga.step_mut(gate).status = StepStatus::Pending;
                    self.start_step(saga, gate_step, Run::Next, &cause, now);
                }
            }
        }
        let run = match step.kind {
            StepKind::Send(_) => Run::Same,
            _ => Run::Next,
        };
        self.start_step(saga, step, run, &cause, now);
        self.advance(saga, &cause, now);
        Ok(())
    }

    /// Marks a stalled step skipped and moves on.
    pub(super) fn skip(
        &self,
        saga: &mut SagaState,
        step_name: &str,
        operator: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.stalled_step(saga, step_name)?;
        let cause = root_cause(saga);
        self.resume(saga, step_name, "skip", operator, reason, now);
        withdraw(saga, Some(step_name), "skipped", operator, reason, now);
        let by = format!("skipped by {operator}");
        self.finish_step(saga, step_name, StepStatus::Skipped, now, &by);
        self.advance(saga, &cause, now);
        Ok(())
    }

    fn stalled_step(&self, saga: &SagaState, step_name: &str) -> Result<&StepDef, Error> {
        let (_, step) = self
            .workflow
            .step(step_name)
            .ok_or_else(|| Error::NotFound(format!("step {step_name:?}")))?;
        let status = saga.step(step_name).status;
        if status != StepStatus::Stalled {
            return Err(Error::FailedPrecondition(format!(
                "step {step_name} of order {} is {}, not stalled",
                saga.order_id,
                status.as_str()
            )));
        }
        Ok(step)
    }
}
