//! One order's saga in memory, loaded under a row lock and saved with every
//! change the engine made (steps, timers, log lines, outgoing messages) in
//! the caller's transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_messaging::{Outgoing, outbox};
use gendan_proto::v1::{Order, Phase};
use prost::Message;
use sqlx::PgConnection;

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

    fn parse(text: &str) -> Self {
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

    fn parse(text: &str) -> Self {
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

#[derive(Debug, Clone)]
pub struct StepState {
    pub status: StepStatus,
    pub attempts: i32,
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
            started_at: None,
            finished_at: None,
            deadline: None,
            last_error: None,
            trace_id: None,
        }
    }
}

/// A human decision of this saga.
#[derive(Debug, Clone)]
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

    fn parse(text: &str) -> Self {
        match text {
            "done" => CompensationStatus::Done,
            "stalled" => CompensationStatus::Stalled,
            _ => CompensationStatus::Sent,
        }
    }
}

/// One entry of the compensation log: undoing `step` with `action`.
#[derive(Debug, Clone)]
pub struct CompensationState {
    pub action: String,
    pub status: CompensationStatus,
    pub attempts: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub detail: String,
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
#[derive(Debug, Clone)]
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
    /// What the workflow learned from events (see `effects`).
    pub facts: serde_json::Map<String, serde_json::Value>,
    pub decisions: Vec<DecisionState>,
    /// Keyed by the compensated step.
    pub compensations: BTreeMap<String, CompensationState>,
    /// Not yet in the database.
    pub is_new: bool,
    pub outgoing: Vec<Outgoing>,
    pub new_log: Vec<LogEntry>,
    pub timer_changes: Vec<TimerChange>,
}

#[derive(sqlx::FromRow)]
struct SagaRow {
    order_id: String,
    phase: String,
    status: String,
    stalled_reason: Option<String>,
    order_snapshot: Vec<u8>,
    requested_date: NaiveDate,
    promised_date: Option<NaiveDate>,
    projected_date: Option<NaiveDate>,
    at_risk: bool,
    traceparent: Option<String>,
    correlation_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    facts: sqlx::types::Json<serde_json::Map<String, serde_json::Value>>,
}

#[derive(sqlx::FromRow)]
struct StepRow {
    step: String,
    status: String,
    attempts: i32,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
    last_error: Option<String>,
    trace_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    decision_id: uuid::Uuid,
    step: String,
    kind: String,
    question: String,
    options: Vec<String>,
    opened_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    reminders: i32,
    answer: Option<String>,
    answered_by: Option<String>,
    answered_at: Option<DateTime<Utc>>,
    comment: Option<String>,
}

impl DecisionRow {
    fn into_state(self) -> DecisionState {
        DecisionState {
            decision_id: self.decision_id,
            step: self.step,
            kind: self.kind,
            question: self.question,
            options: self.options,
            opened_at: self.opened_at,
            deadline: self.deadline,
            reminders: self.reminders,
            answer: self.answer,
            answered_by: self.answered_by,
            answered_at: self.answered_at,
            comment: self.comment,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CompensationRow {
    step: String,
    action: String,
    status: String,
    attempts: i32,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    detail: String,
}

impl SagaState {
    /// Loads a saga; `lock` takes the row lock that serialises everything
    /// that happens to one order while other orders proceed in parallel.
    pub async fn load(
        conn: &mut PgConnection,
        order_id: &str,
        lock: bool,
    ) -> sqlx::Result<Option<Self>> {
        let sql = if lock {
            "SELECT * FROM sagas WHERE order_id = $1 FOR UPDATE"
        } else {
            "SELECT * FROM sagas WHERE order_id = $1"
        };
        let Some(row) = sqlx::query_as::<_, SagaRow>(sql)
            .bind(order_id)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let steps: Vec<StepRow> = sqlx::query_as(
            "SELECT step, status, attempts, started_at, finished_at, deadline, last_error, trace_id \
             FROM saga_steps WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_all(&mut *conn)
        .await?;
        let decisions: Vec<DecisionRow> = sqlx::query_as(
            "SELECT decision_id, step, kind, question, options, opened_at, deadline, reminders, \
               answer, answered_by, answered_at, comment \
             FROM saga_decisions WHERE order_id = $1 ORDER BY opened_at",
        )
        .bind(order_id)
        .fetch_all(&mut *conn)
        .await?;
        let compensations: Vec<CompensationRow> = sqlx::query_as(
            "SELECT step, action, status, attempts, started_at, finished_at, detail \
             FROM saga_compensations WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_all(&mut *conn)
        .await?;
        let order = Order::decode(row.order_snapshot.as_slice())
            .map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
        Ok(Some(SagaState {
            order_id: row.order_id,
            phase: Phase::from_short_name(&row.phase).unwrap_or(Phase::Received),
            status: Status::parse(&row.status),
            stalled_reason: row.stalled_reason,
            order,
            requested: row.requested_date,
            promised: row.promised_date,
            projected: row.projected_date,
            at_risk: row.at_risk,
            traceparent: row.traceparent,
            correlation_id: row.correlation_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
            steps: steps
                .into_iter()
                .map(|s| {
                    (
                        s.step,
                        StepState {
                            status: StepStatus::parse(&s.status),
                            attempts: s.attempts,
                            started_at: s.started_at,
                            finished_at: s.finished_at,
                            deadline: s.deadline,
                            last_error: s.last_error,
                            trace_id: s.trace_id,
                        },
                    )
                })
                .collect(),
            facts: row.facts.0,
            decisions: decisions.into_iter().map(DecisionRow::into_state).collect(),
            compensations: compensations
                .into_iter()
                .map(|c| {
                    (
                        c.step,
                        CompensationState {
                            action: c.action,
                            status: CompensationStatus::parse(&c.status),
                            attempts: c.attempts,
                            started_at: c.started_at,
                            finished_at: c.finished_at,
                            detail: c.detail,
                        },
                    )
                })
                .collect(),
            is_new: false,
            outgoing: Vec::new(),
            new_log: Vec::new(),
            timer_changes: Vec::new(),
        }))
    }

    /// Writes the saga row, its steps, timer changes, new log lines and the
    /// outgoing messages (outbox), all on `conn`.
    pub async fn save(&mut self, conn: &mut PgConnection) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO sagas (order_id, phase, status, stalled_reason, order_snapshot, requested_date, \
               promised_date, projected_date, at_risk, traceparent, correlation_id, created_at, updated_at, facts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (order_id) DO UPDATE SET phase = $2, status = $3, stalled_reason = $4, \
               promised_date = $7, projected_date = $8, at_risk = $9, updated_at = $13, facts = $14",
        )
        .bind(&self.order_id)
        .bind(self.phase.short_name())
        .bind(self.status.as_str())
        .bind(&self.stalled_reason)
        .bind(if self.is_new { self.order.encode_to_vec() } else { Vec::new() })
        .bind(self.requested)
        .bind(self.promised)
        .bind(self.projected)
        .bind(self.at_risk)
        .bind(&self.traceparent)
        .bind(&self.correlation_id)
        .bind(self.created_at)
        .bind(self.updated_at)
        .bind(sqlx::types::Json(&self.facts))
        .execute(&mut *conn)
        .await?;
        self.is_new = false;

        let mut names = Vec::new();
        let mut statuses = Vec::new();
        let mut attempts = Vec::new();
        let mut started = Vec::new();
        let mut finished = Vec::new();
        let mut deadlines = Vec::new();
        let mut errors = Vec::new();
        let mut trace_ids = Vec::new();
        for (name, step) in &self.steps {
            names.push(name.clone());
            statuses.push(step.status.as_str());
            attempts.push(step.attempts);
            started.push(step.started_at);
            finished.push(step.finished_at);
            deadlines.push(step.deadline);
            errors.push(step.last_error.clone());
            trace_ids.push(step.trace_id.clone());
        }
        sqlx::query(
            "INSERT INTO saga_steps (order_id, step, status, attempts, started_at, finished_at, deadline, last_error, trace_id) \
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::timestamptz[], \
                                     $7::timestamptz[], $8::text[], $9::text[]) \
             ON CONFLICT (order_id, step) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, \
               started_at = excluded.started_at, finished_at = excluded.finished_at, deadline = excluded.deadline, \
               last_error = excluded.last_error, trace_id = excluded.trace_id",
        )
        .bind(&self.order_id)
        .bind(&names)
        .bind(&statuses)
        .bind(&attempts)
        .bind(&started)
        .bind(&finished)
        .bind(&deadlines)
        .bind(&errors)
        .bind(&trace_ids)
        .execute(&mut *conn)
        .await?;

        for decision in &self.decisions {
            sqlx::query(
                "INSERT INTO saga_decisions (decision_id, order_id, step, kind, question, options, opened_at, \
                   deadline, reminders, answer, answered_by, answered_at, comment) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (decision_id) DO UPDATE SET deadline = $8, reminders = $9, answer = $10, \
                   answered_by = $11, answered_at = $12, comment = $13",
            )
            .bind(decision.decision_id)
            .bind(&self.order_id)
            .bind(&decision.step)
            .bind(&decision.kind)
            .bind(&decision.question)
            .bind(&decision.options)
            .bind(decision.opened_at)
            .bind(decision.deadline)
            .bind(decision.reminders)
            .bind(&decision.answer)
            .bind(&decision.answered_by)
            .bind(decision.answered_at)
            .bind(&decision.comment)
            .execute(&mut *conn)
            .await?;
        }
        for (step, compensation) in &self.compensations {
            sqlx::query(
                "INSERT INTO saga_compensations (order_id, step, action, status, attempts, started_at, finished_at, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (order_id, step) DO UPDATE SET status = $4, attempts = $5, finished_at = $7, detail = $8",
            )
            .bind(&self.order_id)
            .bind(step)
            .bind(&compensation.action)
            .bind(compensation.status.as_str())
            .bind(compensation.attempts)
            .bind(compensation.started_at)
            .bind(compensation.finished_at)
            .bind(&compensation.detail)
            .execute(&mut *conn)
            .await?;
        }

        for change in self.timer_changes.drain(..) {
            match change {
                TimerChange::Set(step, fire_at) => {
                    sqlx::query(
                        "INSERT INTO saga_timers (order_id, step, fire_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (order_id, step) DO UPDATE SET fire_at = excluded.fire_at",
                    )
                    .bind(&self.order_id)
                    .bind(step)
                    .bind(fire_at)
                    .execute(&mut *conn)
                    .await?;
                }
                TimerChange::Clear(step) => {
                    sqlx::query("DELETE FROM saga_timers WHERE order_id = $1 AND step = $2")
                        .bind(&self.order_id)
                        .bind(step)
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }

        if !self.new_log.is_empty() {
            let log: Vec<LogEntry> = std::mem::take(&mut self.new_log);
            sqlx::query(
                "INSERT INTO saga_log (order_id, at, step, action, detail, trace_id) \
                 SELECT $1, * FROM UNNEST($2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[])",
            )
            .bind(&self.order_id)
            .bind(log.iter().map(|e| e.at).collect::<Vec<_>>())
            .bind(log.iter().map(|e| e.step.clone()).collect::<Vec<_>>())
            .bind(log.iter().map(|e| e.action.clone()).collect::<Vec<_>>())
            .bind(log.iter().map(|e| e.detail.clone()).collect::<Vec<_>>())
            .bind(log.iter().map(|e| e.trace_id.clone()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }

        let outgoing = std::mem::take(&mut self.outgoing);
        outbox::write(conn, &outgoing).await
    }

    pub fn fact_str(&self, name: &str) -> Option<&str> {
        self.facts.get(name).and_then(serde_json::Value::as_str)
    }

    pub fn fact_bool(&self, name: &str) -> bool {
        self.facts
            .get(name)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    pub fn set_fact(&mut self, name: &str, value: impl Into<serde_json::Value>) {
        self.facts.insert(name.to_owned(), value.into());
    }

    pub fn step(&self, name: &str) -> StepState {
        self.steps
            .get(name)
            .cloned()
            .unwrap_or_else(StepState::pending)
    }

    pub fn step_mut(&mut self, name: &str) -> &mut StepState {
        self.steps
            .entry(name.to_owned())
            .or_insert_with(StepState::pending)
    }
}
