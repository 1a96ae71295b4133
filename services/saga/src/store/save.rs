//! Saving sagas: whatever the engine changed in any number of sagas, in one
//! statement per table.
//!
//! A batch of events touches many orders; saving them one by one would cost
//! some eight statements an order. [`save_all`] instead writes
//! - the saga rows, in one upsert over arrays;
//! - only the steps the engine marked dirty;
//! - only the decisions and compensation entries that differ from what was
//!   loaded (or last saved), and the exceptions marked dirty, each table as
//!   one JSON record set;
//! - each saga's timers as its changes left them (the last change of a
//!   timer wins), one upsert and one delete;
//! - the new log lines, and the outgoing messages in one outbox insert.
//!
//! Every statement runs on the caller's connection, so it all commits with
//! the events or the request that caused it. A saga row must be written
//! before its child rows (foreign keys), so the saga rows come first.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_messaging::{Outgoing, outbox};
use prost::Message;
use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::state::{SagaState, TimerChange};

impl SagaState {
    /// Writes this saga's changes (see [`save_all`]).
    pub async fn save(&mut self, conn: &mut PgConnection) -> sqlx::Result<()> {
        save_all(conn, &mut [self]).await
    }
}

/// Writes the changes of `sagas` on `conn`, one statement per table, and
/// marks them saved.
pub async fn save_all(conn: &mut PgConnection, sagas: &mut [&mut SagaState]) -> sqlx::Result<()> {
    if sagas.is_empty() {
        return Ok(());
    }
    save_rows(conn, sagas).await?;
    save_steps(conn, sagas).await?;
    save_records(conn, sagas).await?;
    save_timers(conn, sagas).await?;
    save_log(conn, sagas).await?;
    let outgoing: Vec<Outgoing> = sagas
        .iter_mut()
        .flat_map(|saga| {
            crate::effects::calendar::coalesce(&mut saga.outgoing);
            std::mem::take(&mut saga.outgoing)
        })
        .collect();
    outbox::write(conn, &outgoing).await
}

async fn save_rows(conn: &mut PgConnection, sagas: &mut [&mut SagaState]) -> sqlx::Result<()> {
    let count = sagas.len();
    let mut order_ids = Vec::with_capacity(count);
    let mut phases = Vec::with_capacity(count);
    let mut statuses = Vec::with_capacity(count);
    let mut stalled_reasons: Vec<Option<String>> = Vec::with_capacity(count);
    let mut snapshots: Vec<Vec<u8>> = Vec::with_capacity(count);
    let mut requested: Vec<NaiveDate> = Vec::with_capacity(count);
    let mut promised: Vec<Option<NaiveDate>> = Vec::with_capacity(count);
    let mut projected: Vec<Option<NaiveDate>> = Vec::with_capacity(count);
    let mut at_risk = Vec::with_capacity(count);
    let mut traceparents: Vec<Option<String>> = Vec::with_capacity(count);
    let mut correlation_ids = Vec::with_capacity(count);
    let mut created: Vec<DateTime<Utc>> = Vec::with_capacity(count);
    let mut updated: Vec<DateTime<Utc>> = Vec::with_capacity(count);
    let mut facts = Vec::with_capacity(count);
    for saga in sagas.iter_mut() {
        order_ids.push(saga.order_id.clone());
        phases.push(saga.phase.short_name().to_owned());
        statuses.push(saga.status.as_str().to_owned());
        stalled_reasons.push(saga.stalled_reason.clone());
        // The copy of the order is written when it is new or amended, not
        // on every save (an empty one keeps the stored copy).
        snapshots.push(if saga.is_new || saga.order_changed {
            saga.order.encode_to_vec()
        } else {
            Vec::new()
        });
        requested.push(saga.requested);
        promised.push(saga.promised);
        projected.push(saga.projected);
        at_risk.push(saga.at_risk);
        traceparents.push(saga.traceparent.clone());
        correlation_ids.push(saga.correlation_id.clone());
        created.push(saga.created_at);
        updated.push(saga.updated_at);
        facts.push(
            serde_json::to_string(&saga.facts).map_err(|err| sqlx::Error::Encode(Box::new(err)))?,
        );
    }
    sqlx::query(
        "INSERT INTO sagas (order_id, phase, status, stalled_reason, order_snapshot, requested_date, \
           promised_date, projected_date, at_risk, traceparent, correlation_id, created_at, updated_at, facts) \
         SELECT order_id, phase, status, stalled_reason, order_snapshot, requested_date, promised_date, \
           projected_date, at_risk, traceparent, correlation_id, created_at, updated_at, facts::jsonb \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::date[], $7::date[], \
                     $8::date[], $9::bool[], $10::text[], $11::text[], $12::timestamptz[], \
                     $13::timestamptz[], $14::text[]) \
           AS u(order_id, phase, status, stalled_reason, order_snapshot, requested_date, promised_date, \
                projected_date, at_risk, traceparent, correlation_id, created_at, updated_at, facts) \
         ON CONFLICT (order_id) DO UPDATE SET phase = excluded.phase, status = excluded.status, \
           stalled_reason = excluded.stalled_reason, \
           order_snapshot = CASE WHEN length(excluded.order_snapshot) > 0 \
             THEN excluded.order_snapshot ELSE sagas.order_snapshot END, \
           requested_date = excluded.requested_date, promised_date = excluded.promised_date, \
           projected_date = excluded.projected_date, at_risk = excluded.at_risk, \
           updated_at = excluded.updated_at, facts = excluded.facts",
    )
    .bind(&order_ids)
    .bind(&phases)
    .bind(&statuses)
    .bind(&stalled_reasons)
    .bind(&snapshots)
    .bind(&requested)
    .bind(&promised)
    .bind(&projected)
    .bind(&at_risk)
    .bind(&traceparents)
    .bind(&correlation_ids)
    .bind(&created)
    .bind(&updated)
    .bind(&facts)
    .execute(&mut *conn)
    .await?;
    for saga in sagas.iter_mut() {
        saga.is_new = false;
        saga.order_changed = false;
    }
    Ok(())
}

async fn save_steps(conn: &mut PgConnection, sagas: &mut [&mut SagaState]) -> sqlx::Result<()> {
    let mut order_ids = Vec::new();
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
    for saga in sagas.iter_mut() {
        let dirty = std::mem::take(&mut saga.dirty_steps);
        for (name, step) in saga.steps.iter().filter(|(name, _)| dirty.contains(*name)) {
            order_ids.push(saga.order_id.clone());
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
    }
    if names.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO saga_steps (order_id, step, status, attempts, runs, failures, started_at, \
           finished_at, deadline, last_error, trace_id) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[], \
                              $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], \
                              $10::text[], $11::text[]) \
         ON CONFLICT (order_id, step) DO UPDATE SET status = excluded.status, \
           attempts = excluded.attempts, runs = excluded.runs, failures = excluded.failures, \
           started_at = excluded.started_at, finished_at = excluded.finished_at, \
           deadline = excluded.deadline, last_error = excluded.last_error, \
           trace_id = excluded.trace_id",
    )
    .bind(&order_ids)
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
    Ok(())
}

/// Decisions, compensation entries and exceptions: written seldom and with
/// many columns, so each table goes as one JSON record set. Only what
/// changed is written.
async fn save_records(conn: &mut PgConnection, sagas: &mut [&mut SagaState]) -> sqlx::Result<()> {
    let mut decisions = Vec::new();
    let mut compensations = Vec::new();
    let mut exceptions = Vec::new();
    for saga in sagas.iter_mut() {
        let order_id = saga.order_id.as_str();
        for decision in &saga.decisions {
            let saved = saga
                .saved
                .decisions
                .iter()
                .find(|d| d.decision_id == decision.decision_id);
            if saved == Some(decision) {
                continue;
            }
            decisions.push(json!({
                "decision_id": decision.decision_id,
                "order_id": order_id,
                "step": decision.step,
                "kind": decision.kind,
                "question": decision.question,
                "options": decision.options,
                "opened_at": decision.opened_at,
                "deadline": decision.deadline,
                "reminders": decision.reminders,
                "answer": decision.answer,
                "answered_by": decision.answered_by,
                "answered_at": decision.answered_at,
                "comment": decision.comment,
                "exception_id": decision.exception_id,
                "subject": decision.subject,
            }));
        }
        for (step, compensation) in &saga.compensations {
            if saga.saved.compensations.get(step) == Some(compensation) {
                continue;
            }
            compensations.push(json!({
                "order_id": order_id,
                "step": step,
                "action": compensation.action,
                "status": compensation.status.as_str(),
                "attempts": compensation.attempts,
                "started_at": compensation.started_at,
                "finished_at": compensation.finished_at,
                "detail": compensation.detail,
            }));
        }
        for exception in saga.exceptions.iter_mut().filter(|e| e.dirty) {
            exceptions.push(json!({
                "exception_id": exception.exception_id,
                "order_id": order_id,
                "kind": exception.kind.as_str_name(),
                "cause": exception.cause,
                "owner": exception.owner.as_str_name(),
                "step": exception.step,
                "opened_at": exception.opened_at,
                "deadline": exception.deadline,
                "projected_at_open": exception.projected_at_open,
                "impact_days": exception.impact_days,
                "decision_id": exception.decision_id,
                "decision": exception.decision,
                "decided_by": exception.decided_by,
                "closed_at": exception.closed_at,
                "resolution": exception.resolution,
            }));
            exception.dirty = false;
        }
        saga.saved.decisions = saga.decisions.clone();
        saga.saved.compensations = saga.compensations.clone();
    }
    if !decisions.is_empty() {
        sqlx::query(
            "INSERT INTO saga_decisions (decision_id, order_id, step, kind, question, options, \
               opened_at, deadline, reminders, answer, answered_by, answered_at, comment, \
               exception_id, subject) \
             SELECT decision_id, order_id, step, kind, question, options, opened_at, deadline, \
               reminders, answer, answered_by, answered_at, comment, exception_id, subject \
             FROM jsonb_populate_recordset(NULL::saga_decisions, $1) \
             ON CONFLICT (decision_id) DO UPDATE SET deadline = excluded.deadline, \
               reminders = excluded.reminders, answer = excluded.answer, \
               answered_by = excluded.answered_by, answered_at = excluded.answered_at, \
               comment = excluded.comment",
        )
        .bind(sqlx::types::Json(Value::Array(decisions)))
        .execute(&mut *conn)
        .await?;
    }
    if !compensations.is_empty() {
        sqlx::query(
            "INSERT INTO saga_compensations (order_id, step, action, status, attempts, \
               started_at, finished_at, detail) \
             SELECT order_id, step, action, status, attempts, started_at, finished_at, detail \
             FROM jsonb_populate_recordset(NULL::saga_compensations, $1) \
             ON CONFLICT (order_id, step) DO UPDATE SET status = excluded.status, \
               attempts = excluded.attempts, finished_at = excluded.finished_at, \
               detail = excluded.detail",
        )
        .bind(sqlx::types::Json(Value::Array(compensations)))
        .execute(&mut *conn)
        .await?;
    }
    if !exceptions.is_empty() {
        sqlx::query(
            "INSERT INTO saga_exceptions (exception_id, order_id, kind, cause, owner, step, \
               opened_at, deadline, projected_at_open, impact_days, decision_id, decision, \
               decided_by, closed_at, resolution) \
             SELECT exception_id, order_id, kind, cause, owner, step, opened_at, deadline, \
               projected_at_open, impact_days, decision_id, decision, decided_by, closed_at, \
               resolution \
             FROM jsonb_populate_recordset(NULL::saga_exceptions, $1) \
             ON CONFLICT (exception_id) DO UPDATE SET cause = excluded.cause, \
               deadline = excluded.deadline, projected_at_open = excluded.projected_at_open, \
               impact_days = excluded.impact_days, decision_id = excluded.decision_id, \
               decision = excluded.decision, decided_by = excluded.decided_by, \
               closed_at = excluded.closed_at, resolution = excluded.resolution",
        )
        .bind(sqlx::types::Json(Value::Array(exceptions)))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Each saga's timer changes, in the order made, leave each timer set to a
/// time or cleared; only that end state is written.
async fn save_timers(conn: &mut PgConnection, sagas: &mut [&mut SagaState]) -> sqlx::Result<()> {
    let (mut set_orders, mut set_steps, mut set_times) = (Vec::new(), Vec::new(), Vec::new());
    let (mut clear_orders, mut clear_steps) = (Vec::new(), Vec::new());
    for saga in sagas.iter_mut() {
        let mut last: BTreeMap<String, Option<DateTime<Utc>>> = BTreeMap::new();
        for change in saga.timer_changes.drain(..) {
            match change {
                TimerChange::Set(step, fire_at) => last.insert(step, Some(fire_at)),
                TimerChange::Clear(step) => last.insert(step, None),
            };
        }
        for (step, fire_at) in last {
            match fire_at {
                Some(fire_at) => {
                    set_orders.push(saga.order_id.clone());
                    set_steps.push(step);
                    set_times.push(fire_at);
                }
                None => {
                    clear_orders.push(saga.order_id.clone());
                    clear_steps.push(step);
                }
            }
        }
    }
    if !set_steps.is_empty() {
        sqlx::query(
            "INSERT INTO saga_timers (order_id, step, fire_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[]) \
             ON CONFLICT (order_id, step) DO UPDATE SET fire_at = excluded.fire_at",
        )
        .bind(&set_orders)
        .bind(&set_steps)
        .bind(&set_times)
        .execute(&mut *conn)
        .await?;
    }
    if !clear_steps.is_empty() {
        sqlx::query(
            "DELETE FROM saga_timers t USING UNNEST($1::text[], $2::text[]) AS c(order_id, step) \
             WHERE t.order_id = c.order_id AND t.step = c.step",
        )
        .bind(&clear_orders)
        .bind(&clear_steps)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn save_log(conn: &mut PgConnection, sagas: &mut [&mut SagaState]) -> sqlx::Result<()> {
    let (mut order_ids, mut at, mut steps, mut actions, mut details, mut trace_ids) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for saga in sagas.iter_mut() {
        for entry in std::mem::take(&mut saga.new_log) {
            order_ids.push(saga.order_id.clone());
            at.push(entry.at);
            steps.push(entry.step);
            actions.push(entry.action);
            details.push(entry.detail);
            trace_ids.push(entry.trace_id);
        }
    }
    if order_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO saga_log (order_id, at, step, action, detail, trace_id) \
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], \
                              $6::text[])",
    )
    .bind(&order_ids)
    .bind(&at)
    .bind(&steps)
    .bind(&actions)
    .bind(&details)
    .bind(&trace_ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
