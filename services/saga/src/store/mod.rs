//! The saga's rows: [`load_all`] reads the sagas of many orders under their
//! row locks (or from a snapshot) in two statements, [`save_all`] writes what
//! the engine changed in them — saga rows, changed steps, decisions,
//! compensations, exceptions, timers, new log lines and the outgoing
//! messages (outbox) — in one statement per table (`save.rs`), on the
//! caller's connection, so it all commits with the events or request that
//! caused it. [`SagaState::load`] and [`SagaState::save`] do the same for
//! one saga.

mod save;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use gendan_proto::v1::{Department, ExceptionKind, Order, Phase};
use prost::Message;
use sqlx::PgConnection;

pub use self::save::save_all;
use crate::facts::Facts;
use crate::state::{
    CompensationState, CompensationStatus, DecisionState, ExceptionRecord, SagaState, Saved,
    Status, StepState, StepStatus,
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
     FROM sagas s WHERE s.order_id = ANY($1)"
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
        let mut found = load_all(conn, &[order_id.to_owned()], lock).await?;
        Ok(found.remove(order_id))
    }
}

/// Loads the sagas of `order_ids` that exist, by order id; `lock` takes
/// their row locks first, in order id order, so two batches that share
/// orders wait for each other instead of deadlocking.
pub async fn load_all(
    conn: &mut PgConnection,
    order_ids: &[String],
    lock: bool,
) -> sqlx::Result<HashMap<String, SagaState>> {
    if order_ids.is_empty() {
        return Ok(HashMap::new());
    }
    if lock {
        // The locks first, in a statement of their own: a statement that
        // waits for a row lock re-reads the locked row once it has it, but
        // its subqueries keep the snapshot taken before the wait, so
        // `LOAD ... FOR UPDATE` would return the saga row with the child
        // rows as they were before the holder committed. The load after
        // the locks takes a fresh snapshot.
        let locked: Vec<String> = sqlx::query_scalar(
            "SELECT order_id FROM sagas WHERE order_id = ANY($1) ORDER BY order_id FOR NO KEY UPDATE",
        )
        .bind(order_ids)
        .fetch_all(&mut *conn)
        .await?;
        if locked.is_empty() {
            return Ok(HashMap::new());
        }
    }
    let rows: Vec<SagaRow> = sqlx::query_as(LOAD)
        .bind(order_ids)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.order_id.clone(), row.into_state()?)))
        .collect()
}

impl SagaRow {
    fn into_state(self) -> sqlx::Result<SagaState> {
        let row = self;
        let (steps, exceptions) = (row.steps.0, row.exceptions.0);
        let decisions: Vec<DecisionState> = row
            .decisions
            .0
            .into_iter()
            .map(DecisionRow::into_state)
            .collect();
        let compensations: BTreeMap<String, CompensationState> = row
            .compensations
            .0
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
            .collect();
        let order = Order::decode(row.order_snapshot.as_slice())
            .map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
        let facts: Facts = serde_json::from_value(row.facts.0)
            .map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
        let saved = Saved {
            decisions: decisions.clone(),
            compensations: compensations.clone(),
        };
        Ok(SagaState {
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
            decisions,
            compensations,
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
            saved,
        })
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
