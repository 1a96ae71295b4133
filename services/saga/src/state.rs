//! One order's saga in memory: its phase and status, each step's state, the
//! facts it learned, its decisions, compensations and exceptions, and the
//! changes made since it was loaded (log lines, timers, messages to send),
//! which [`crate::store`] saves in one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_messaging::Outgoing;
use gendan_proto::v1::{Department, ExceptionKind, Order, Phase};

use crate::facts::Facts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Stalled,
    Completed,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Stalled => "stalled",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "stalled" => Status::Stalled,
            "completed" => Status::Completed,
            "cancelled" => Status::Cancelled,
            _ => Status::Running,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Waiting,
    Done,
    Skipped,
    Stalled,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Waiting => "waiting",
            StepStatus::Done => "done",
            StepStatus::Skipped => "skipped",
            StepStatus::Stalled => "stalled",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "waiting" => StepStatus::Waiting,
            "done" => StepStatus::Done,
            "skipped" => StepStatus::Skipped,
            "stalled" => StepStatus::Stalled,
            _ => StepStatus::Pending,
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, StepStatus::Done | StepStatus::Skipped)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepState {
    pub status: StepStatus,
    /// Sends of the current run (1 + re-sends).
    pub attempts: i32,
    /// How many times the step has started: the revision of its commands.
    pub runs: i32,
    /// Failed answers, for a loop's limit.
    pub failures: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub trace_id: Option<String>,
}

impl StepState {
    pub fn pending() -> Self {
        StepState {
            status: StepStatus::Pending,
            attempts: 0,
            runs: 0,
            failures: 0,
            started_at: None,
            finished_at: None,
            deadline: None,
            last_error: None,
            trace_id: None,
        }
    }

    /// The revision the step's current run sends (1 before it ever ran).
    pub fn revision(&self) -> u32 {
        self.runs.max(1) as u32
    }

    /// The revision an answer must carry to count: the current run's, or
    /// for a step waiting to run again, the next one's (an awaited event
    /// may come before its step starts).
    pub fn expected_revision(&self) -> u32 {
        if self.status == StepStatus::Pending {
            self.runs.max(0) as u32 + 1
        } else {
            self.revision()
        }
    }
}

/// A human decision of this saga.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionState {
    pub decision_id: uuid::Uuid,
    pub step: String,
    pub kind: String,
    pub question: String,
    pub options: Vec<String>,
    pub opened_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub reminders: i32,
    pub answer: Option<String>,
    pub answered_by: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    /// The exception it answers.
    pub exception_id: Option<uuid::Uuid>,
    /// What it is about when its step asks several questions (a claim id).
    pub subject: Option<String>,
}

impl DecisionState {
    pub fn is_open(&self) -> bool {
        self.answer.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompensationStatus {
    Sent,
    Done,
    Stalled,
}

impl CompensationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CompensationStatus::Sent => "sent",
            CompensationStatus::Done => "done",
            CompensationStatus::Stalled => "stalled",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "done" => CompensationStatus::Done,
            "stalled" => CompensationStatus::Stalled,
            _ => CompensationStatus::Sent,
        }
    }
}

/// One entry of the compensation log: undoing `step` with `action`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompensationState {
    pub action: String,
    pub status: CompensationStatus,
    pub attempts: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub detail: String,
}

/// One entry of the exception register (see [`crate::exceptions`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExceptionRecord {
    pub exception_id: uuid::Uuid,
    pub kind: ExceptionKind,
    pub cause: String,
    pub owner: Department,
    pub step: String,
    pub opened_at: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    /// The projected delivery date when it opened, to measure its impact.
    pub projected_at_open: Option<NaiveDate>,
    pub impact_days: i32,
    pub decision_id: Option<uuid::Uuid>,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    /// Changed since loaded: saved on the next save.
    pub dirty: bool,
}

impl ExceptionRecord {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct LogEntry {
    pub at: DateTime<Utc>,
    pub step: String,
    pub action: String,
    pub detail: String,
    pub trace_id: Option<String>,
}

/// Timer changes to apply on save.
#[derive(Debug, Clone, PartialEq)]
pub enum TimerChange {
    Set(String, DateTime<Utc>),
    Clear(String),
}

#[derive(Debug, Clone)]
pub struct SagaState {
    pub order_id: String,
    pub phase: Phase,
    pub status: Status,
    pub stalled_reason: Option<String>,
    pub order: Order,
    pub requested: NaiveDate,
    pub promised: Option<NaiveDate>,
    pub projected: Option<NaiveDate>,
    pub at_risk: bool,
    pub traceparent: Option<String>,
    pub correlation_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub steps: BTreeMap<String, StepState>,
    /// What the workflow learned from events (see [`crate::effects`]).
    pub facts: Facts,
    pub decisions: Vec<DecisionState>,
    /// Keyed by the compensated step.
    pub compensations: BTreeMap<String, CompensationState>,
    pub exceptions: Vec<ExceptionRecord>,
    /// Not yet in the database.
    pub is_new: bool,
    /// Steps changed since loaded (only these rows are written).
    pub dirty_steps: std::collections::BTreeSet<String>,
    pub outgoing: Vec<Outgoing>,
    pub new_log: Vec<LogEntry>,
    pub timer_changes: Vec<TimerChange>,
    /// The subject (a claim id) of the answer or decision being applied,
    /// for the questions and commands it leads to; never saved.
    pub focus: Option<String>,
    /// The copy of the order was replaced (an amendment): saved with the
    /// next save.
    pub order_changed: bool,
    /// The decisions and compensation entries as last loaded or saved: a
    /// save writes only those that differ.
    pub saved: Saved,
}

/// What a saga's decisions and compensation log were in the database.
#[derive(Debug, Clone, Default)]
pub struct Saved {
    pub decisions: Vec<DecisionState>,
    pub compensations: BTreeMap<String, CompensationState>,
}

impl SagaState {
    /// A saga for a new order, every step pending.
    pub fn new(
        order: Order,
        requested: NaiveDate,
        step_names: impl Iterator<Item = &'static str>,
        traceparent: Option<String>,
        correlation_id: String,
        now: DateTime<Utc>,
    ) -> Self {
        let steps: BTreeMap<String, StepState> = step_names
            .map(|name| (name.to_owned(), StepState::pending()))
            .collect();
        SagaState {
            order_id: order.order_id.clone(),
            phase: Phase::Received,
            status: Status::Running,
            stalled_reason: None,
            requested,
            promised: None,
            projected: None,
            at_risk: false,
            traceparent,
            correlation_id,
            created_at: now,
            updated_at: now,
            dirty_steps: steps.keys().cloned().collect(),
            steps,
            facts: Facts::default(),
            decisions: Vec::new(),
            compensations: BTreeMap::new(),
            exceptions: Vec::new(),
            is_new: true,
            outgoing: Vec::new(),
            new_log: Vec::new(),
            timer_changes: Vec::new(),
            focus: None,
            order_changed: false,
            saved: Saved::default(),
            order,
        }
    }

    pub fn step(&self, name: &str) -> StepState {
        self.steps
            .get(name)
            .cloned()
            .unwrap_or_else(StepState::pending)
    }

    pub fn step_mut(&mut self, name: &str) -> &mut StepState {
        self.dirty_steps.insert(name.to_owned());
        self.steps
            .entry(name.to_owned())
            .or_insert_with(StepState::pending)
    }

    /// The open decision of `step` about `subject` (`None`: the step's
    /// only question).
    pub fn open_decision_of(
        &mut self,
        step: &str,
        subject: Option<&str>,
    ) -> Option<&mut DecisionState> {
        self.decisions
            .iter_mut()
            .find(|d| d.step == step && d.is_open() && d.subject.as_deref() == subject)
    }

    pub fn exception_mut(&mut self, id: uuid::Uuid) -> Option<&mut ExceptionRecord> {
        let record = self.exceptions.iter_mut().find(|e| e.exception_id == id)?;
        record.dirty = true;
        Some(record)
    }
}
