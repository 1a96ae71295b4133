//! Decisions: a question for a person with a deadline and reminders, and
//! an answer whose option carries its effects (set a fact, complete the
//! step, reopen steps, cancel, keep waiting, wait for an amendment).
//! Whatever asked — a decide step, or a step whose failures ran out — the
//! answer takes the same path.

use chrono::{DateTime, Utc};
use gendan_messaging::{Cause, Outgoing};
use gendan_proto::v1;

use super::{DECIDE, Engine, duration, log, root_cause};
use crate::exceptions;
use crate::facts::{ClaimedBy, Concession, Redelivery, RedeliveryKind};
use crate::state::{DecisionState, SagaState, Status, StepStatus, TimerChange};
use crate::workflow::{DecisionSpec, Effect, FactChange};
use crate::{Error, SERVICE};

impl Engine {
    /// Asks `spec` for `step`, joined to the exception it answers.
    pub(super) fn open_decision(
        &self,
        saga: &mut SagaState,
        step: &str,
        spec: &DecisionSpec,
        exception: Option<uuid::Uuid>,
        cause: &Cause,
        now: DateTime<Utc>,
    ) {
        let deadline = now + duration(self.workflow.decision_timeout);
        let decision = DecisionState {
            decision_id: uuid::Uuid::now_v7(),
            step: step.to_owned(),
            kind: spec.name.to_owned(),
            question: (spec.question)(saga),
            options: spec.answers(),
            opened_at: now,
            deadline,
            reminders: 0,
            answer: None,
            answered_by: None,
            answered_at: None,
            comment: None,
            exception_id: exception,
            subject: saga.focus.clone(),
        };
        if let Some(record) = exception.and_then(|id| saga.exception_mut(id)) {
            record.decision_id = Some(decision.decision_id);
            record.deadline = Some(deadline);
        }
        let requested = v1::DecisionRequested {
            decision: Some(decision_proto(&saga.order_id, &decision)),
            reminder: false,
        };
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &requested, cause));
        log(
            saga,
            now,
            step,
            "decision",
            format!("asked: {}", decision.question),
        );
        let key = decision_timer(step, decision.subject.as_deref());
        saga.decisions.push(decision);
        saga.timer_changes.push(TimerChange::Set(key, deadline));
    }

    /// The decision of `key` (`step`, or `step#subject`) is due: remind,
    /// or after the reminders park the saga (the decision stays open; an
    /// answer still counts).
    pub(super) fn decision_due(&self, saga: &mut SagaState, key: &str, now: DateTime<Utc>) {
        let reminders = self.workflow.decision_reminders as i32;
        let order_id = saga.order_id.clone();
        let (step, subject) = match key.split_once('#') {
            Some((step, subject)) => (step, Some(subject)),
            None => (key, None),
        };
        if saga.step(step).status.is_finished() {
            return;
        }
        let Some(decision) = saga.open_decision_of(step, subject) else {
            return;
        };
        if decision.reminders >= reminders {
            let reason = format!(
                "{} decision unanswered after {} reminders",
                decision.kind, decision.reminders
            );
            let exception = decision.exception_id;
            if saga.status == Status::Running {
                self.stall(saga, step, &reason, exception, now);
            }
            return;
        }
        let next = now + duration(self.workflow.decision_timeout);
        decision.reminders += 1;
        decision.deadline = next;
        let reminder = v1::DecisionRequested {
            decision: Some(decision_proto(&order_id, decision)),
            reminder: true,
        };
        let count = decision.reminders;
        let cause = root_cause(saga);
        saga.outgoing
            .push(Outgoing::event(SERVICE, &order_id, &reminder, &cause));
        saga.timer_changes
            .push(TimerChange::Set(format!("{DECIDE}{key}"), next));
        log(saga, now, step, "reminded", format!("reminder {count}"));
    }

    /// Records the answer of an open decision and applies its option's
    /// effects.
    pub(super) fn apply_answer(
        &self,
        saga: &mut SagaState,
        decision_id: uuid::Uuid,
        answer: &str,
        operator: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let order_id = saga.order_id.clone();
        if !super::is_live(saga) {
            return Err(Error::FailedPrecondition(format!(
                "order {order_id} is {}: its questions are closed",
                saga.status.as_str()
            )));
        }
        let goods_left = super::goods_left(saga);
        let making_good = saga.facts.redelivery.as_ref().map(|r| r.claim_id.clone());
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
        let spec = self.workflow.decision_spec(&decision.kind).ok_or_else(|| {
            Error::FailedPrecondition(format!(
                "decision {decision_id} is of kind {:?}, which this workflow no longer asks",
                decision.kind
            ))
        })?;
        // Only what the question offered: one asked before a new answer
        // existed (an upgrade) does not take it.
        let offered = decision.options.iter().any(|o| o == answer);
        let option = spec.option(answer).filter(|_| offered).ok_or_else(|| {
            gendan_grpc::FieldError::new(
                "answer",
                format!("{answer:?} is not one of {}", decision.options.join(", ")),
            )
        })?;
        // Goods that left cannot be cancelled (a question asked again for a
        // claim's redelivery offers it); one claim's goods are made good at
        // a time.
        if goods_left
            && option
                .effects
                .iter()
                .any(|e| matches!(e, Effect::CancelOrder))
        {
            return Err(Error::FailedPrecondition(format!(
                "order {order_id} was shipped: {answer:?} cannot cancel it"
            )));
        }
        let redelivers = redelivering(option);
        if let (true, Some(claim)) = (redelivers, &making_good) {
            let otherwise: Vec<&str> = decision
                .options
                .iter()
                .map(String::as_str)
                .filter(|o| spec.option(o).is_some_and(|o| !redelivering(o)))
                .collect();
            return Err(Error::FailedPrecondition(format!(
                "the goods of claim {claim} are being made good; answer {answer:?} once they are \
                 delivered again, or answer {}",
                otherwise.join(" or ")
            )));
        }
        decision.answer = Some(answer.to_owned());
        decision.answered_by = Some(operator.to_owned());
        decision.answered_at = Some(now);
        decision.comment = Some(comment.to_owned());
        let step = decision.step.clone();
        let exception = decision.exception_id;
        let subject = decision.subject.clone();
        let timer = decision_timer(&step, subject.as_deref());
        let made = v1::DecisionMade {
            decision: Some(decision_proto(&order_id, decision)),
        };
        let cause = root_cause(saga);
        saga.outgoing
            .push(Outgoing::event(SERVICE, &order_id, &made, &cause));
        saga.timer_changes.push(TimerChange::Clear(timer));
        log(
            saga,
            now,
            &step,
            "decided",
            format!("{answer} by {operator}: {comment}"),
        );
        // A re-quote answers the question but not the exception: the margin
        // is still too thin until the amended price is estimated again.
        let awaits_amendment = option
            .effects
            .iter()
            .any(|e| matches!(e, Effect::AwaitAmendment));
        if let Some(id) = exception {
            if awaits_amendment {
                exceptions::note_decision(saga, id, answer, operator);
            } else {
                let resolution = if comment.is_empty() {
                    format!("decided {answer}")
                } else {
                    format!("decided {answer}: {comment}")
                };
                exceptions::close(saga, id, Some((answer, operator)), &resolution, now);
            }
        }
        if saga.status == Status::Stalled && saga.step(&step).status == StepStatus::Stalled {
            self.resume(saga, &step, "decision", operator, comment, now);
            saga.step_mut(&step).status = StepStatus::Waiting;
        }

        let projected_before = saga.projected;
        // The commands an answer sends are about its subject (the claim).
        saga.focus = subject;
        for effect in option.effects {
            match *effect {
                Effect::Fact(change) => apply_fact(saga, change, operator, comment),
                Effect::Complete => {
                    let by = format!("answered {answer}");
                    self.finish_step(saga, &step, StepStatus::Done, now, &by);
                }
                Effect::Reopen {
                    steps,
                    reset_failures,
                } => self.reopen(saga, steps, reset_failures, now),
                Effect::CancelOrder => {
                    saga.focus = None;
                    let reason = format!("{} decision: {comment}", spec.name);
                    self.cancel_saga(saga, operator, &reason, &cause, now);
                    return Ok(());
                }
                Effect::Send(build) => {
                    let revision = saga.step(&step).revision();
                    let command = build(saga, revision, &cause);
                    let detail = format!("sent {}", super::short_type(&command.envelope.r#type));
                    saga.outgoing.push(command);
                    log(saga, now, &step, "instructed", detail);
                }
                Effect::KeepWaiting => self.keep_waiting(saga, &step, now),
                // The wait is the step's own (its `AskEvery`); the amended
                // order's review reopens the step.
                Effect::AwaitAmendment => self.keep_waiting(saga, &step, now),
            }
        }
        saga.focus = None;
        self.check_risk(saga, projected_before, &cause, now);
        self.advance(saga, &cause, now);
        Ok(())
    }
}

impl Engine {
    /// The step goes on waiting for its event, with its deadline again.
    fn keep_waiting(&self, saga: &mut SagaState, step: &str, now: DateTime<Utc>) {
        let Some((_, definition)) = self.workflow.step(step) else {
            return;
        };
        // A step run again (an amendment reopened it) starts when its turn
        // comes; waiting "again" would skip its run.
        if saga.step(step).status == StepStatus::Pending {
            return;
        }
        let deadline = self.deadline_of(saga, definition, now);
        let state = saga.step_mut(step);
        state.status = StepStatus::Waiting;
        state.deadline = deadline;
        if let Some(deadline) = deadline {
            saga.timer_changes
                .push(TimerChange::Set(step.to_owned(), deadline));
        }
        log(saga, now, step, "waiting", "again, as decided".to_owned());
    }

    /// A decide step whose answer waits for an amendment (a re-quote)
    /// reached its deadline with none: the question is asked again, joined
    /// to the exception still open, and the step waits for the answer.
    pub(super) fn ask_decision_again(
        &self,
        saga: &mut SagaState,
        step: &str,
        spec: &DecisionSpec,
        now: DateTime<Utc>,
    ) {
        let exception = saga
            .exceptions
            .iter()
            .rev()
            .find(|record| record.is_open() && record.step == step)
            .map(|record| record.exception_id);
        saga.step_mut(step).deadline = None;
        log(
            saga,
            now,
            step,
            "asked again",
            "no amendment came".to_owned(),
        );
        let cause = root_cause(saga);
        self.open_decision(saga, step, spec, exception, &cause, now);
    }
}

/// Closes the open decisions of `step` (or of every step) without an
/// answer from their options — superseded, skipped, overtaken by the event,
/// withdrawn by a cancellation — with their reminder timers.
pub(super) fn withdraw(
    saga: &mut SagaState,
    step: Option<&str>,
    answer: &str,
    by: &str,
    comment: &str,
    now: DateTime<Utc>,
) {
    let mut timers = Vec::new();
    for decision in saga
        .decisions
        .iter_mut()
        .filter(|d| d.is_open() && step.is_none_or(|step| d.step == step))
    {
        decision.answer = Some(answer.to_owned());
        decision.answered_by = Some(by.to_owned());
        decision.answered_at = Some(now);
        decision.comment = Some(comment.to_owned());
        timers.push(decision_timer(&decision.step, decision.subject.as_deref()));
    }
    saga.timer_changes
        .extend(timers.into_iter().map(TimerChange::Clear));
}

/// The timer key of a decision's reminders: one per step and subject.
fn decision_timer(step: &str, subject: Option<&str>) -> String {
    match subject {
        Some(subject) => format!("{DECIDE}{step}#{subject}"),
        None => format!("{DECIDE}{step}"),
    }
}

/// Whether answering `option` makes a claim's goods good again (one claim
/// at a time).
fn redelivering(option: &crate::workflow::DecisionOption) -> bool {
    option.effects.iter().any(|e| {
        matches!(
            e,
            Effect::Fact(FactChange::ReplaceClaimed | FactChange::ReworkClaimed)
        )
    })
}

/// What a decision teaches the saga.
fn apply_fact(saga: &mut SagaState, change: FactChange, operator: &str, comment: &str) {
    match change {
        FactChange::PromiseProjected => {
            // The customer agreed to the factory's date: it becomes the
            // promise, and the order is no longer late against it.
            saga.promised = saga.projected.or(saga.promised);
        }
        FactChange::GrantConcession => {
            saga.facts.concession = Some(Concession {
                approved_by: operator.to_owned(),
                note: comment.to_owned(),
            });
            saga.facts.open_nonconformance = None;
        }
        FactChange::ReplaceClaimed | FactChange::ReworkClaimed => {
            let claim_id = saga.focus.clone().unwrap_or_default();
            let Some(claim) = saga.facts.claims.get(&claim_id).cloned() else {
                return;
            };
            let kind = if change == FactChange::ReplaceClaimed {
                // New goods need new material: what the order held went
                // into the goods delivered.
                let runs = u32::try_from(saga.step("procure_materials").runs).unwrap_or(0);
                saga.facts.remake_procurement = Some(runs + 1);
                RedeliveryKind::Replacement
            } else {
                RedeliveryKind::Rework
            };
            let booking_revision = u32::try_from(saga.step("book_shipment").runs).unwrap_or(0) + 1;
            // A carrier's replacement leaves the lost shipment behind: later
            // news of it is logistics' record, not this redelivery's.
            let replaces_booking = (claim.claimed_by == ClaimedBy::Carrier)
                .then(|| saga.facts.booking_reference.clone())
                .flatten();
            saga.facts.redelivery = Some(Redelivery {
                claim_id,
                kind,
                claimed_by: claim.claimed_by,
                goods: claim.goods(),
                booking_revision,
                replaces_booking,
            });
        }
        FactChange::Remake => {
            saga.facts.remakes += 1;
            let runs = u32::try_from(saga.step("procure_materials").runs).unwrap_or(0);
            saga.facts.remake_procurement = Some(runs + 1);
            saga.facts.open_nonconformance = None;
            saga.facts.defective_units = 0;
        }
    }
}

pub fn decision_proto(order_id: &str, decision: &DecisionState) -> v1::Decision {
    // The stored name is the enum's own, without its prefix.
    let kind =
        v1::DecisionKind::from_short_name(&decision.kind).unwrap_or(v1::DecisionKind::Unspecified);
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
        decision_kind: kind as i32,
        exception_id: decision
            .exception_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        subject: decision.subject.clone().unwrap_or_default(),
    }
}
