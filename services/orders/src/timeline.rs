//! The append-only order timeline and the events consumer that feeds it.
//!
//! [`append`] records one envelope (with its [`summary`](crate::summary),
//! trace id and payload) unless its event id is already there, and
//! [`append_all`] a consumer run's events in one statement; [`events`]
//! reads the payloads back for the closing summary. [`EventRecorder`] is
//! the handler of the `orders-timeline` consumer: every event on
//! `gendan.evt.>` about an order we know is appended, the saga's events
//! also update the order's read model (phase, projected date, risk, workflow
//! status, open exceptions, the [`milestones`](crate::milestones) calendar; a
//! phase moves as [`crate::phases`] says), and the events a customer cares
//! about become a customer notice ([`notices`](crate::notices)) in the same
//! transaction. Events for orders we do not know (another deployment's, or
//! a garbled order id) are skipped: they are not ours to record. A closed
//! order still gets timeline entries (the timeline is a record), but its
//! read model no longer changes.

use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashSet;

use gendan_messaging::{Batch, BatchFailure, Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{
    DeliveryRiskChanged, Envelope, ExceptionClosed, ExceptionOpened, MilestonesChanged, Phase,
    PhaseChanged, SagaCompleted, SagaResumed, SagaStalled, TimelineEntry,
};
use gendan_proto::{TypeName, timestamp_from, timestamp_to};
use sqlx::{PgConnection, PgExecutor};
use tracing::Instrument;
use uuid::Uuid;

use crate::phases::PhaseMove;
use crate::store::{self, status};
use crate::{milestones, notices, summary};

/// Appends `envelope` to its order's timeline; `false` when the order is
/// unknown or the event was recorded before. The existence check and the
/// insert are one statement so a batch stays cheap.
pub async fn append(
    conn: &mut PgConnection,
    order_id: Uuid,
    envelope: &Envelope,
    occurred_at: DateTime<Utc>,
    traceparent: Option<&str>,
) -> sqlx::Result<bool> {
    let trace_id = traceparent
        .and_then(gendan_telemetry::trace_id_of)
        .unwrap_or_default();
    let inserted = sqlx::query(
        "INSERT INTO timeline \
             (event_id, order_id, type, occurred_at, source, summary, trace_id, payload) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
         WHERE EXISTS (SELECT 1 FROM orders WHERE order_id = $2) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&envelope.event_id)
    .bind(order_id)
    .bind(&envelope.r#type)
    .bind(occurred_at)
    .bind(&envelope.source)
    .bind(summary::describe(envelope))
    .bind(trace_id)
    .bind(&envelope.payload)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Appends every event of `events` (`(order id, message)`) whose order we
/// know and which is not recorded yet, in one statement; the event ids it
/// appended.
pub async fn append_all(
    conn: &mut PgConnection,
    events: &[(Uuid, &Incoming)],
) -> sqlx::Result<HashSet<String>> {
    if events.is_empty() {
        return Ok(HashSet::new());
    }
    let count = events.len();
    let (mut event_ids, mut order_ids, mut types) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    let (mut occurred, mut sources, mut summaries, mut trace_ids, mut payloads) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    for (order_id, message) in events {
        let envelope = &message.envelope;
        event_ids.push(envelope.event_id.as_str());
        order_ids.push(*order_id);
        types.push(envelope.r#type.as_str());
        occurred.push(message.occurred_at());
        sources.push(envelope.source.as_str());
        summaries.push(summary::describe(envelope));
        trace_ids.push(
            message
                .traceparent
                .as_deref()
                .and_then(gendan_telemetry::trace_id_of)
                .unwrap_or_default(),
        );
        payloads.push(envelope.payload.as_slice());
    }
    let appended: Vec<String> = sqlx::query_scalar(
        "INSERT INTO timeline \
             (event_id, order_id, type, occurred_at, source, summary, trace_id, payload) \
         SELECT e.* FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::timestamptz[], \
                                $5::text[], $6::text[], $7::text[], $8::bytea[]) \
           AS e(event_id, order_id, type, occurred_at, source, summary, trace_id, payload) \
         WHERE EXISTS (SELECT 1 FROM orders o WHERE o.order_id = e.order_id) \
         ON CONFLICT (event_id) DO NOTHING \
         RETURNING event_id",
    )
    .bind(&event_ids)
    .bind(&order_ids)
    .bind(&types)
    .bind(&occurred)
    .bind(&sources)
    .bind(&summaries)
    .bind(&trace_ids)
    .bind(&payloads)
    .fetch_all(conn)
    .await?;
    Ok(appended.into_iter().collect())
}

/// Appends one of our own messages, written in the same transaction as the
/// outbox row, so the timeline never lags what we announced (the copy that
/// comes back from the bus is then a duplicate and skipped).
pub async fn append_own(
    conn: &mut PgConnection,
    order_id: Uuid,
    message: &Outgoing,
) -> sqlx::Result<bool> {
    let occurred_at = message
        .envelope
        .occurred_at
        .as_ref()
        .and_then(timestamp_to)
        .unwrap_or_else(Utc::now);
    append(
        conn,
        order_id,
        &message.envelope,
        occurred_at,
        message.traceparent.as_deref(),
    )
    .await
}

#[derive(Debug, sqlx::FromRow)]
struct EntryRow {
    event_id: String,
    r#type: String,
    occurred_at: DateTime<Utc>,
    source: String,
    summary: String,
    trace_id: String,
}

/// The order's timeline, oldest first (by when things happened, then by
/// when we heard of them).
pub async fn entries(
    executor: impl PgExecutor<'_>,
    order_id: Uuid,
) -> sqlx::Result<Vec<TimelineEntry>> {
    let rows: Vec<EntryRow> = sqlx::query_as(
        "SELECT event_id, type, occurred_at, source, summary, trace_id FROM timeline \
         WHERE order_id = $1 ORDER BY occurred_at, seq",
    )
    .bind(order_id)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| TimelineEntry {
            event_id: row.event_id,
            r#type: row.r#type,
            occurred_at: Some(timestamp_from(row.occurred_at)),
            source: row.source,
            summary: row.summary,
            trace_id: row.trace_id,
        })
        .collect())
}

/// One recorded event as the closing summary reads it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RecordedEvent {
    pub event_id: String,
    pub r#type: String,
    pub occurred_at: DateTime<Utc>,
    /// `None` for events recorded before payloads were kept.
    pub payload: Option<Vec<u8>>,
}

/// Every recorded event of the order with its payload, oldest first.
pub async fn events(
    executor: impl PgExecutor<'_>,
    order_id: Uuid,
) -> sqlx::Result<Vec<RecordedEvent>> {
    sqlx::query_as(
        "SELECT event_id, type, occurred_at, payload FROM timeline \
         WHERE order_id = $1 ORDER BY occurred_at, seq",
    )
    .bind(order_id)
    .fetch_all(executor)
    .await
}

/// Handler of the `orders-timeline` consumer.
#[derive(Debug, Clone, Default)]
pub struct EventRecorder;

impl Handler for EventRecorder {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        let Ok(order_id) = Uuid::parse_str(message.order_id()) else {
            // Events about no order (equipment status) or about an id that
            // is not one of ours: nothing to record.
            return Ok(());
        };
        let appended = append(
            conn,
            order_id,
            &message.envelope,
            message.occurred_at(),
            message.traceparent.as_deref(),
        )
        .await?;
        if !appended {
            // Unknown order, or an event id already applied (the inbox
            // dedupes by event id too; this also covers our own events,
            // which are recorded when they are written).
            return Ok(());
        }
        follow_up(conn, order_id, message).await
    }

    /// The run's events go on the timeline in one statement; then each
    /// appended one updates the read model and the notices, in order.
    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        batch: &Batch<'_>,
    ) -> Result<(), BatchFailure> {
        let ours: Vec<(usize, Uuid)> = batch
            .messages()
            .iter()
            .enumerate()
            .filter_map(|(position, message)| {
                Some((position, Uuid::parse_str(message.order_id()).ok()?))
            })
            .collect();
        let events: Vec<(Uuid, &Incoming)> = ours
            .iter()
            .map(|&(position, order_id)| (order_id, batch.messages()[position]))
            .collect();
        let appended = append_all(&mut *conn, &events)
            .await
            .map_err(|err| BatchFailure::Shared(err.into()))?;
        for (position, order_id) in ours {
            let message = batch.messages()[position];
            if !appended.contains(&message.envelope.event_id) {
                continue;
            }
            follow_up(&mut *conn, order_id, message)
                .instrument(batch.span(message))
                .await
                .map_err(|err| BatchFailure::Message(position, err))?;
        }
        Ok(())
    }
}

/// What an event newly on the timeline changes: the read model, and the
/// customer's notices.
async fn follow_up(
    conn: &mut PgConnection,
    order_id: Uuid,
    message: &Incoming,
) -> Result<(), HandlerError> {
    let phase_move = apply_to_read_model(conn, order_id, message).await?;
    // A PhaseChanged that did not move the order (late, replayed, or about
    // a closed order) tells the customer nothing true; one that moved it
    // back, or forward again to a phase it had reached before a loop back
    // (an amendment reviewed again), tells them nothing new: the
    // amendment's own notices do.
    if message.is::<PhaseChanged>() && phase_move != PhaseMove::Forward {
        return Ok(());
    }
    notices::on_event(
        conn,
        order_id,
        &message.envelope,
        &Cause::from_incoming(message),
    )
    .await?;
    Ok(())
}

/// Saga events that change what GetOrder shows; how a PhaseChanged moved
/// the order ([`PhaseMove::Stayed`] for every other event).
async fn apply_to_read_model(
    conn: &mut PgConnection,
    order_id: Uuid,
    message: &Incoming,
) -> Result<PhaseMove, HandlerError> {
    match message.type_name() {
        PhaseChanged::TYPE_NAME => {
            let event: PhaseChanged = message.payload()?;
            let Ok(to) = Phase::try_from(event.to) else {
                tracing::warn!(to = event.to, "phase change to an unknown phase ignored");
                return Ok(PhaseMove::Stayed);
            };
            let from = Phase::try_from(event.from).ok();
            let projected = date_field("projected_delivery_date", &event.projected_delivery_date);
            return Ok(store::move_phase(conn, order_id, from, to, projected).await?);
        }
        DeliveryRiskChanged::TYPE_NAME => {
            let event: DeliveryRiskChanged = message.payload()?;
            let projected = date_field("projected_delivery_date", &event.projected_delivery_date);
            store::set_delivery_risk(conn, order_id, event.at_risk, projected).await?;
        }
        MilestonesChanged::TYPE_NAME => {
            let event: MilestonesChanged = message.payload()?;
            milestones::save_snapshot(conn, order_id, &event).await?;
        }
        SagaStalled::TYPE_NAME => {
            store::set_workflow_status(conn, order_id, status::STALLED).await?;
        }
        ExceptionOpened::TYPE_NAME | ExceptionClosed::TYPE_NAME => {
            let (record, open) = if message.is::<ExceptionOpened>() {
                (message.payload::<ExceptionOpened>()?.exception, true)
            } else {
                (message.payload::<ExceptionClosed>()?.exception, false)
            };
            if let Some(record) = record {
                let kind = gendan_proto::v1::ExceptionKind::try_from(record.kind)
                    .map(gendan_proto::v1::ExceptionKind::short_name)
                    .unwrap_or_else(|_| record.kind.to_string());
                let opened = open.then_some(kind.as_str());
                store::track_exception(conn, order_id, &record.exception_id, opened).await?;
            }
        }
        SagaResumed::TYPE_NAME => {
            store::set_workflow_status(conn, order_id, status::RUNNING).await?;
        }
        SagaCompleted::TYPE_NAME => {
            let event: SagaCompleted = message.payload()?;
            if let Ok(phase) = Phase::try_from(event.phase) {
                store::advance_phase(conn, order_id, phase, None).await?;
            }
            store::set_workflow_status(conn, order_id, status::COMPLETED).await?;
        }
        _ => {}
    }
    Ok(PhaseMove::Stayed)
}

/// An optional date in an event: empty means "not known"; a malformed one is
/// logged and treated as unknown rather than losing the whole event.
fn date_field(field: &str, text: &str) -> Option<NaiveDate> {
    if text.is_empty() {
        return None;
    }
    let date = gendan_proto::date_from_str(text);
    if date.is_none() {
        tracing::warn!(field, value = text, "malformed date in event ignored");
    }
    date
}
