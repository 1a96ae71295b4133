//! The saga's rows: [`load`] reads one order's saga under its row lock (or
//! from a snapshot), [`save`] writes what the engine changed — the saga row,
//! changed steps, decisions, compensations, exceptions, timers, new log lines
//! and the outgoing messages (outbox) — on the caller's connection, so it
//! all commits with the event or request that caused it.

use chrono::{DateTime, NaiveDate, Utc};
use gendan_messaging::outbox;
use gendan_proto::v1::{Department, ExceptionKind, Order, Phase};
use prost::Message;
use sqlx::PgConnection;

use crate::facts::Facts;
use crate::state::{
    CompensationState, CompensationStatus, DecisionState, ExceptionRecord, LogEntry, SagaState,
    Status, StepState, StepStatus, TimerChange,
};

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
    facts: sqlx::types::Json<serde_json::Value>,
    // The saga's child rows, read in the same statement (see `LOAD`).
    steps: sqlx::types::Json<Vec<StepRow>>,
    decisions: sqlx::types::Json<Vec<DecisionRow>>,
    compensations: sqlx::types::Json<Vec<CompensationRow>>,
    exceptions: sqlx::types::Json<Vec<ExceptionRow>>,
}

/// One saga with every child row in one statement (each child table as a
/// JSON array): a load is one round trip instead of five (two with the
/// lock), and the saga is loaded for every event of its order.
macro_rules! load_sql {
    () => {
        "SELECT s.order_id, s.phase, s.status, s.stalled_reason, s.order_snapshot, \
       s.requested_date, s.promised_date, s.projected_date, s.at_risk, s.traceparent, \
       s.correlation_id, s.created_at, s.updated_at, s.facts, \
       (SELECT coalesce(json_agg(c), '[]') FROM (SELECT step, status, attempts, runs, failures, \
          started_at, finished_at, deadline, last_error, trace_id \
          FROM saga_steps WHERE order_id = s.order_id) c) AS steps, \
       (SELECT coalesce(json_agg(c ORDER BY c.opened_at), '[]') FROM (SELECT decision_id, step, \
          kind, question, options, opened_at, deadline, reminders, answer, answered_by, \
          answered_at, comment, exception_id, subject \
          FROM saga_decisions WHERE order_id = s.order_id) c) AS decisions, \
       (SELECT coalesce(json_agg(c), '[]') FROM (SELECT step, action, status, attempts, \
          started_at, finished_at, detail \
          FROM saga_compensations WHERE order_id = s.order_id) c) AS compensations, \
       (SELECT coalesce(json_agg(c ORDER BY c.opened_at), '[]') FROM (SELECT exception_id, kind, \
          cause, owner, step, opened_at, deadline, projected_at_open, impact_days, decision_id, \
          decision, decided_by, closed_at, resolution \
          FROM saga_exceptions WHERE order_id = s.order_id) c) AS exceptions \
     FROM sagas s WHERE s.order_id = $1"
    };
}
const LOAD: &str = load_sql!();

#[derive(sqlx::FromRow, serde::Deserialize)]
struct StepRow {
    step: String,
    status: String,
    attempts: i32,
    runs: i32,
    failures: i32,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
    last_error: Option<String>,
    trace_id: Option<String>,
}

#[derive(sqlx::FromRow, serde::Deserialize)]
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
    exception_id: Option<uuid::Uuid>,
    subject: Option<String>,
}

/// A decision row with its order, as the API lists decisions.
#[derive(sqlx::FromRow)]
pub struct ListedDecision {
    pub order_id: String,
    #[sqlx(flatten)]
    row: DecisionRow,
}

impl ListedDecision {
    pub fn into_parts(self) -> (String, DecisionState) {
        (self.order_id, self.row.into_state())
    }
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
            exception_id: self.exception_id,
            subject: self.subject,
        }
    }
}

#[derive(sqlx::FromRow, serde::Deserialize)]
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
        if lock {
            // The lock first, in a statement of its own: a statement that
            // waits for a row lock re-reads the locked row once it has it,
            // but its subqueries keep the snapshot taken before the wait,
            // so `LOAD ... FOR UPDATE` would return the saga row with the
            // child rows as they were before the holder committed. The load
            // after the lock takes a fresh snapshot.
            let found = sqlx::query("SELECT 1 FROM sagas WHERE order_id = $1 FOR UPDATE")
                .bind(order_id)
                .fetch_optional(&mut *conn)
                .await?;
            if found.is_none() {
                return Ok(None);
            }
        }
        let Some(row) = sqlx::query_as::<_, SagaRow>(LOAD)
            .bind(order_id)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let (steps, decisions, compensations, exceptions) = (
            row.steps.0,
            row.decisions.0,
            row.compensations.0,
            row.exceptions.0,
        );
        let order = Order::decode(row.order_snapshot.as_slice())
            .map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
        let facts: Facts = serde_json::from_value(row.facts.0)
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
                            runs: s.runs,
                            failures: s.failures,
                            started_at: s.started_at,
                            finished_at: s.finished_at,
                            deadline: s.deadline,
                            last_error: s.last_error,
                            trace_id: s.trace_id,
                        },
                    )
                })
                .collect(),
            facts,
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
            exceptions: exceptions
                .into_iter()
                .map(ExceptionRow::into_record)
                .collect(),
            is_new: false,
            dirty_steps: Default::default(),
            outgoing: Vec::new(),
            new_log: Vec::new(),
            timer_changes: Vec::new(),
            focus: None,
            order_changed: false,
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
               order_snapshot = CASE WHEN length($5) > 0 THEN $5 ELSE sagas.order_snapshot END, \
               requested_date = $6, promised_date = $7, projected_date = $8, at_risk = $9, \
               updated_at = $13, facts = $14",
        )
        .bind(&self.order_id)
        .bind(self.phase.short_name())
        .bind(self.status.as_str())
        .bind(&self.stalled_reason)
        // The copy of the order is written when it is new or amended, not
        // on every save.
        .bind(if self.is_new || self.order_changed {
            self.order.encode_to_vec()
        } else {
            Vec::new()
        })
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
        self.order_changed = false;

        let mut names = Vec::new();
        let mut statuses = Vec::new();
        let mut attempts = Vec::new();
        let mut runs = Vec::new();
        let mut failures = Vec::new();
        let mut started = Vec::new();
        let mut finished = Vec::new();
        let mut deadlines = Vec::new();
        let mut errors = Vec::new();
        let mut trace_ids = Vec::new();
        let dirty = std::mem::take(&mut self.dirty_steps);
        for (name, step) in self.steps.iter().filter(|(name, _)| dirty.contains(*name)) {
            names.push(name.clone());
            statuses.push(step.status.as_str());
            attempts.push(step.attempts);
            runs.push(step.runs);
            failures.push(step.failures);
            started.push(step.started_at);
            finished.push(step.finished_at);
            deadlines.push(step.deadline);
            errors.push(step.last_error.clone());
            trace_ids.push(step.trace_id.clone());
        }
        if !names.is_empty() {
            sqlx::query(
                "INSERT INTO saga_steps (order_id, step, status, attempts, runs, failures, started_at, \
                   finished_at, deadline, last_error, trace_id) \
                 SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::int[], $5::int[], $6::int[], \
                                         $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], \
                                         $10::text[], $11::text[]) \
                 ON CONFLICT (order_id, step) DO UPDATE SET status = excluded.status, \
                   attempts = excluded.attempts, runs = excluded.runs, failures = excluded.failures, \
                   started_at = excluded.started_at, finished_at = excluded.finished_at, \
                   deadline = excluded.deadline, last_error = excluded.last_error, \
                   trace_id = excluded.trace_id",
            )
            .bind(&self.order_id)
            .bind(&names)
            .bind(&statuses)
            .bind(&attempts)
            .bind(&runs)
            .bind(&failures)
            .bind(&started)
            .bind(&finished)
            .bind(&deadlines)
            .bind(&errors)
            .bind(&trace_ids)
            .execute(&mut *conn)
            .await?;
        }

        // One statement each for the decisions and the compensation log,
        // however many the saga has.
        if !self.decisions.is_empty() {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO saga_decisions (decision_id, order_id, step, kind, question, options, \
                   opened_at, deadline, reminders, answer, answered_by, answered_at, comment, \
                   exception_id, subject) ",
            );
            insert.push_values(&self.decisions, |mut row, decision| {
                row.push_bind(decision.decision_id)
                    .push_bind(&self.order_id)
                    .push_bind(&decision.step)
                    .push_bind(&decision.kind)
                    .push_bind(&decision.question)
                    .push_bind(&decision.options)
                    .push_bind(decision.opened_at)
                    .push_bind(decision.deadline)
                    .push_bind(decision.reminders)
                    .push_bind(&decision.answer)
                    .push_bind(&decision.answered_by)
                    .push_bind(decision.answered_at)
                    .push_bind(&decision.comment)
                    .push_bind(decision.exception_id)
                    .push_bind(&decision.subject);
            });
            insert.push(
                " ON CONFLICT (decision_id) DO UPDATE SET deadline = excluded.deadline, \
                   reminders = excluded.reminders, answer = excluded.answer, \
                   answered_by = excluded.answered_by, answered_at = excluded.answered_at, \
                   comment = excluded.comment",
            );
            insert.build().execute(&mut *conn).await?;
        }
        if !self.compensations.is_empty() {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO saga_compensations (order_id, step, action, status, attempts, \
                   started_at, finished_at, detail) ",
            );
            insert.push_values(&self.compensations, |mut row, (step, compensation)| {
                row.push_bind(&self.order_id)
                    .push_bind(step)
                    .push_bind(&compensation.action)
                    .push_bind(compensation.status.as_str())
                    .push_bind(compensation.attempts)
                    .push_bind(compensation.started_at)
                    .push_bind(compensation.finished_at)
                    .push_bind(&compensation.detail);
            });
            insert.push(
                " ON CONFLICT (order_id, step) DO UPDATE SET status = excluded.status, \
                   attempts = excluded.attempts, finished_at = excluded.finished_at, \
                   detail = excluded.detail",
            );
            insert.build().execute(&mut *conn).await?;
        }

        for exception in self.exceptions.iter_mut().filter(|e| e.dirty) {
            save_exception(conn, &self.order_id, exception).await?;
            exception.dirty = false;
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
}

#[derive(sqlx::FromRow, serde::Deserialize)]
struct ExceptionRow {
    exception_id: uuid::Uuid,
    kind: String,
    cause: String,
    owner: String,
    step: String,
    opened_at: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
    projected_at_open: Option<NaiveDate>,
    impact_days: i32,
    decision_id: Option<uuid::Uuid>,
    decision: Option<String>,
    decided_by: Option<String>,
    closed_at: Option<DateTime<Utc>>,
    resolution: Option<String>,
}

impl ExceptionRow {
    fn into_record(self) -> ExceptionRecord {
        ExceptionRecord {
            exception_id: self.exception_id,
            kind: ExceptionKind::from_str_name(&self.kind).unwrap_or(ExceptionKind::Unspecified),
            cause: self.cause,
            owner: Department::from_str_name(&self.owner).unwrap_or(Department::Unspecified),
            step: self.step,
            opened_at: self.opened_at,
            deadline: self.deadline,
            projected_at_open: self.projected_at_open,
            impact_days: self.impact_days,
            decision_id: self.decision_id,
            decision: self.decision,
            decided_by: self.decided_by,
            closed_at: self.closed_at,
            resolution: self.resolution,
            dirty: false,
        }
    }
}

/// Column list of `saga_exceptions` for readers outside a saga (the API).
pub const EXCEPTION_COLUMNS: &str = "exception_id, order_id, kind, cause, owner, step, opened_at, \
    deadline, projected_at_open, impact_days, decision_id, decision, decided_by, closed_at, resolution";

/// One row of the register with its order, as the API lists it.
#[derive(sqlx::FromRow)]
pub struct ListedException {
    pub order_id: String,
    #[sqlx(flatten)]
    row: ExceptionRow,
}

impl ListedException {
    pub fn into_parts(self) -> (String, ExceptionRecord) {
        (self.order_id, self.row.into_record())
    }
}

async fn save_exception(
    conn: &mut PgConnection,
    order_id: &str,
    exception: &ExceptionRecord,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO saga_exceptions (exception_id, order_id, kind, cause, owner, step, opened_at, deadline, \
           projected_at_open, impact_days, decision_id, decision, decided_by, closed_at, resolution) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (exception_id) DO UPDATE SET cause = $4, deadline = $8, projected_at_open = $9, impact_days = $10, \
           decision_id = $11, decision = $12, decided_by = $13, closed_at = $14, resolution = $15",
    )
    .bind(exception.exception_id)
    .bind(order_id)
    .bind(exception.kind.as_str_name())
    .bind(&exception.cause)
    .bind(exception.owner.as_str_name())
    .bind(&exception.step)
    .bind(exception.opened_at)
    .bind(exception.deadline)
    .bind(exception.projected_at_open)
    .bind(exception.impact_days)
    .bind(exception.decision_id)
    .bind(&exception.decision)
    .bind(&exception.decided_by)
    .bind(exception.closed_at)
    .bind(&exception.resolution)
    .execute(conn)
    .await?;
    Ok(())
}
