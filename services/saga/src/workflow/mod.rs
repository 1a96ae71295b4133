//! The workflow as data: phases in order, their steps, and for each step
//! what it does, which events answer it, what a failure does, what a
//! timeout does and how it is undone.
//!
//! - A step is one of three kinds ([`StepKind`]): *send* a command and wait
//!   for the event that completes it, *await* an event that arrives on its
//!   own, or *decide*: ask a person.
//! - What a failed answer does is data on the step ([`OnFailure`]): park the
//!   saga, open a decision, or reopen earlier steps (a loop: rework →
//!   re-inspect) until the step has failed a set number of times, then
//!   escalate.
//! - A decision's options carry their effects ([`Effect`]), so a new kind of
//!   decision is a table entry.
//!
//! The engine knows no particular step. [`standard`] holds the table of the
//! twelve phases (the review among them: materials, capacity, the delivery
//! date, the cost estimate and its margin), [`decisions`] the questions it
//! asks, [`reruns`] the steps a remake, an amendment or a claim runs again,
//! and [`commands`] the commands its steps and answers send.

pub mod commands;
pub mod decisions;
pub mod reruns;
pub mod standard;

pub use decisions::answers;

use std::time::Duration;

use gendan_messaging::{Cause, Outgoing};
use gendan_proto::v1::{self, Department, ExceptionKind, Phase};

use crate::state::SagaState;

/// The revision a command carries: how many times its step has run (1 the
/// first time). A re-sent command keeps its revision, so the department
/// answers it from what it stored; a step run again by a loop sends the
/// next revision, which the department treats as new work.
pub type Revision = u32;

/// Builds the command a step sends when it starts (and re-sends on timeout).
pub type CommandBuilder = fn(&SagaState, Revision, &Cause) -> Outgoing;

#[derive(Clone, Copy)]
pub enum StepKind {
    /// Send a command to a department and wait for the completing event.
    Send(CommandBuilder),
    /// Wait for an event that arrives on its own (production progress, the
    /// carrier, the customer).
    Await,
    /// Ask a person; the answer's effects finish the step.
    Decide(&'static DecisionSpec),
}

/// A question for a person: what is asked and the answers it accepts, each
/// with what it does.
pub struct DecisionSpec {
    pub kind: v1::DecisionKind,
    /// The kind's name on the wire and in the tables ("delivery_date").
    pub name: &'static str,
    pub question: fn(&SagaState) -> String,
    pub options: &'static [DecisionOption],
    /// The exception the question answers, opened with the decision (a
    /// failure's decision joins the failure's own exception instead).
    pub exception: Option<(ExceptionKind, Department)>,
}

impl DecisionSpec {
    pub fn option(&self, answer: &str) -> Option<&DecisionOption> {
        self.options.iter().find(|option| option.answer == answer)
    }

    pub fn answers(&self) -> Vec<String> {
        self.options.iter().map(|o| o.answer.to_owned()).collect()
    }
}

pub struct DecisionOption {
    pub answer: &'static str,
    /// Applied in order.
    pub effects: &'static [Effect],
}

/// What an answered decision does to the saga.
#[derive(Clone, Copy)]
pub enum Effect {
    /// Record what the workflow learned from the answer.
    Fact(FactChange),
    /// The step the decision belongs to is done; the workflow moves on.
    Complete,
    /// Run these steps again: they go back to pending and start with their
    /// next revision when their gates allow. `reset_failures` starts their
    /// failure counts afresh (a new lot, not a repeat of the old one).
    Reopen {
        steps: &'static [&'static str],
        reset_failures: bool,
    },
    /// Cancel the order and compensate what was done.
    CancelOrder,
    /// Send a command (the answer's instruction to a department: extend a
    /// due date, re-source a purchase order).
    Send(CommandBuilder),
    /// The question is answered but the step keeps waiting for its event
    /// (wait longer for a payment or a supplier).
    KeepWaiting,
    /// The customer is offered something new (a re-quote): the step waits
    /// for the amended order, whose review asks again or lets the order
    /// through, and the question's exception stays open until then. When no
    /// amendment comes within the step's `AskEvery`, the question is asked
    /// again.
    AwaitAmendment,
}

/// The facts a decision can set (see [`crate::facts::Facts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactChange {
    /// The customer agreed to the factory's date: it becomes the promise.
    PromiseProjected,
    /// The failed lot is accepted as it is, with the customer's approval.
    GrantConcession,
    /// The failed lot is scrapped and made again.
    Remake,
    /// The claim in focus is settled by making its goods again and shipping
    /// them (a sub-flow of the same order).
    ReplaceClaimed,
    /// The claim in focus is settled by reworking its (returned) goods and
    /// shipping them back.
    ReworkClaimed,
}

/// What a failed answer (an event in `fails_on`) does.
#[derive(Clone, Copy)]
pub enum OnFailure {
    /// Park the saga for an operator to retry, skip or cancel.
    Stall,
    /// Ask a person at once.
    Decide(&'static DecisionSpec),
    /// Loop back: run `steps` again until the step has failed `limit`
    /// times (or the order's own limit, `limit_for`, when it has one: a
    /// customer's rule), then `then`.
    Reopen {
        steps: &'static [&'static str],
        limit: u32,
        limit_for: Option<fn(&SagaState) -> Option<u32>>,
        then: Escalation,
    },
}

/// What a loop does once it has failed as often as allowed.
#[derive(Clone, Copy)]
pub enum Escalation {
    Stall,
    Decide(&'static DecisionSpec),
}

/// How to undo a step's effect when the order is cancelled.
#[derive(Clone, Copy)]
pub struct CompensationDef {
    pub action: &'static str,
    pub command: CommandBuilder,
    pub completes_on: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub enum OnTimeout {
    /// Re-send the (idempotent) command after `after`, doubling each time;
    /// after `max_attempts` sends park the saga as stalled. For a decision
    /// the re-send is a reminder.
    Resend { after: Duration, max_attempts: u32 },
    /// The step's deadline is the projected delivery date; when it passes,
    /// flag the order at risk, ask the owner again for the fact and look
    /// again a day later. Never stalls: after `overdue_asks` asks an
    /// `overdue_wait` exception asks a person to chase it.
    FlagOverdue,
    /// Wait without a deadline of the saga's own: the party owning the wait
    /// chases it.
    Never,
    /// The party owning the wait chases it (finance's dunning for payment,
    /// the customer's acceptance), so nothing is flagged; the saga only asks
    /// the owner again every so often, in case the fact was announced and
    /// lost (ADR 0010).
    AskEvery(Duration),
}

#[derive(Clone, Copy)]
pub struct StepDef {
    pub name: &'static str,
    /// Steps that must be finished before this one starts; steps without
    /// gates start together when their phase begins.
    pub after: &'static [&'static str],
    pub kind: StepKind,
    /// The department that answers the step (who owns its exceptions).
    pub owner: Department,
    /// Event types that complete the step (none for a decision, which a
    /// person completes).
    pub completes_on: &'static [&'static str],
    /// Event types that answer "cannot be done".
    pub fails_on: &'static [&'static str],
    pub on_failure: OnFailure,
    /// The exception a failed answer opens.
    pub failure_kind: ExceptionKind,
    pub on_timeout: OnTimeout,
    /// A step that only runs when this holds when it would start; otherwise
    /// it is skipped as not needed.
    pub when: Option<fn(&SagaState) -> bool>,
    pub compensation: Option<CompensationDef>,
    /// Starts as soon as its gates (`after`, which may name steps of earlier
    /// phases) are finished, even while an earlier phase is still running.
    pub early: bool,
    /// The step whose command's revision this step's answers carry: an
    /// awaited event of a run (`WorkOrderCompleted` of work order revision
    /// 2) counts only for the current run of the step that asked for it,
    /// however often this step itself has waited. `None`: its own.
    pub revision_of: Option<&'static str>,
    /// The calendar milestone a wait is for: an overdue wait is flagged
    /// when that milestone's projected day passes, not the delivery day.
    pub milestone: Option<crate::calendar::Kind>,
}

impl StepDef {
    /// Whether an event of `type_name` completes this step.
    pub fn completes(&self, type_name: &str) -> bool {
        self.completes_on.contains(&type_name)
    }

    pub fn answered_by(&self, type_name: &str) -> bool {
        self.completes(type_name) || self.fails_on.contains(&type_name)
    }

    /// Whether the step asks someone (so a reply can only come once it has
    /// started); an awaited event may come before its step starts.
    pub fn asks(&self) -> bool {
        !matches!(self.kind, StepKind::Await)
    }
}

pub struct PhaseDef {
    pub phase: Phase,
    pub steps: Vec<StepDef>,
}

pub struct Workflow {
    pub phases: Vec<PhaseDef>,
    /// Timing of compensations (the workflow's command timing).
    pub compensation_resend: Duration,
    pub compensation_attempts: u32,
    /// Reminders of an unanswered decision before the saga parks.
    pub decision_timeout: Duration,
    pub decision_reminders: u32,
    /// Asks of an overdue wait (`RestateFact`, one a day) before an
    /// `overdue_wait` exception names it for a person to chase.
    pub overdue_asks: u32,
}

/// Per-deployment timing and limits of the workflow.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub command_timeout: Duration,
    pub max_attempts: u32,
    /// Time a person has to answer a decision before a reminder; after
    /// `decision_reminders` reminders the saga parks as stalled.
    pub decision_timeout: Duration,
    pub decision_reminders: u32,
    /// Failed final inspections (each followed by rework) before a person
    /// decides: concession, scrap and remake, or cancel.
    pub final_inspection_failures: u32,
    /// Asks of an overdue wait before a person is asked to chase it.
    pub overdue_asks: u32,
    /// How often a wait whose owner chases it (payment, acceptance) asks
    /// the owner again for its fact.
    pub recheck_every: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            command_timeout: Duration::from_secs(30),
            max_attempts: 5,
            decision_timeout: Duration::from_secs(2 * 24 * 3600),
            decision_reminders: 2,
            final_inspection_failures: 2,
            overdue_asks: 3,
            recheck_every: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Timing {
    /// The defaults, with `GENDAN_SAGA__COMMAND_TIMEOUT_SECS` (1..=86400),
    /// `GENDAN_SAGA__MAX_ATTEMPTS` (1..=100),
    /// `GENDAN_SAGA__DECISION_TIMEOUT_SECS` (60..=2592000),
    /// `GENDAN_SAGA__DECISION_REMINDERS` (0..=20) and
    /// `GENDAN_SAGA__FINAL_INSPECTION_FAILURES` (1..=10),
    /// `GENDAN_SAGA__OVERDUE_ASKS` (1..=30) and
    /// `GENDAN_SAGA__RECHECK_SECS` (60..=2592000) when set.
    pub fn from_env() -> Result<Self, gendan_settings::Error> {
        let defaults = Timing::default();
        let bounded = gendan_settings::bounded::<u64>;
        let secs = |d: Duration| d.as_secs();
        Ok(Timing {
            command_timeout: Duration::from_secs(bounded(
                "GENDAN_SAGA__COMMAND_TIMEOUT_SECS",
                secs(defaults.command_timeout),
                1,
                86_400,
            )?),
            max_attempts: bounded(
                "GENDAN_SAGA__MAX_ATTEMPTS",
                u64::from(defaults.max_attempts),
                1,
                100,
            )? as u32,
            decision_timeout: Duration::from_secs(bounded(
                "GENDAN_SAGA__DECISION_TIMEOUT_SECS",
                secs(defaults.decision_timeout),
                60,
                30 * 86_400,
            )?),
            decision_reminders: bounded(
                "GENDAN_SAGA__DECISION_REMINDERS",
                u64::from(defaults.decision_reminders),
                0,
                20,
            )? as u32,
            final_inspection_failures: bounded(
                "GENDAN_SAGA__FINAL_INSPECTION_FAILURES",
                u64::from(defaults.final_inspection_failures),
                1,
                10,
            )? as u32,
            overdue_asks: bounded(
                "GENDAN_SAGA__OVERDUE_ASKS",
                u64::from(defaults.overdue_asks),
                1,
                30,
            )? as u32,
            recheck_every: Duration::from_secs(bounded(
                "GENDAN_SAGA__RECHECK_SECS",
                secs(defaults.recheck_every),
                60,
                30 * 86_400,
            )?),
        })
    }
}

impl Workflow {
    /// Every event type some step or compensation waits for.
    pub fn awaits(&self, type_name: &str) -> bool {
        self.steps().any(|(_, step)| {
            step.answered_by(type_name)
                || step
                    .compensation
                    .is_some_and(|c| c.completes_on == type_name)
        })
    }

    pub fn steps(&self) -> impl Iterator<Item = (&PhaseDef, &StepDef)> {
        self.phases
            .iter()
            .flat_map(|phase| phase.steps.iter().map(move |step| (phase, step)))
    }

    pub fn step(&self, name: &str) -> Option<(&PhaseDef, &StepDef)> {
        self.steps().find(|(_, step)| step.name == name)
    }

    /// The decision spec of a kind, wherever in the table it is asked.
    pub fn decision_spec(&self, name: &str) -> Option<&'static DecisionSpec> {
        self.steps().find_map(|(_, step)| {
            let asked = match (step.kind, step.on_failure) {
                (StepKind::Decide(spec), _) => Some(spec),
                (_, OnFailure::Decide(spec)) => Some(spec),
                (
                    _,
                    OnFailure::Reopen {
                        then: Escalation::Decide(spec),
                        ..
                    },
                ) => Some(spec),
                _ => None,
            };
            asked.filter(|spec| spec.name == name)
        })
    }
}

#[cfg(test)]
mod tests;
