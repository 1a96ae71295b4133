//! The transactional outbox and its relay.
//!
//! [`write`] inserts messages in the caller's transaction. The [`Relay`] takes
//! unpublished rows out with one `DELETE … RETURNING` over rows claimed
//! `FOR UPDATE SKIP LOCKED` (so relays in several replicas share the work
//! without publishing a row twice at once), publishes them with
//! `Nats-Msg-Id` = event id, waits for the server acks, puts back the rows
//! the server did not acknowledge and commits. A relay that dies between
//! publish and commit leaves the rows for the next pass; the republish carries
//! the same message id, so JetStream drops the copy within its duplicate
//! window and consumers' inboxes drop it after.
//!
//! A consumer publishes the rows its own run wrote as soon as the run
//! commits ([`capture`]), and deletes them in its next transaction; the
//! relay takes those rows only if they are still there after a grace
//! period. So the relay is woken (by `NOTIFY`) only for what gRPC calls and
//! timers write, and otherwise sweeps.
//!
//! Every ten seconds the relay also records the outbox backlog (rows not
//! yet deleted, published or not, and the age of the oldest) and its
//! service's database pool as metrics.

use std::time::Duration;

use futures::future::join_all;
use prost::Message as _;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, QueryBuilder};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::Result;
use crate::bus::{Bus, publication};
use crate::envelope::Outgoing;

pub mod capture;

/// How long the relay leaves a row alone that a consumer will publish
/// itself ([`capture`]): long enough for the consumer's publish and its
/// next transaction, short enough that a crash between commit and publish
/// delays the message by seconds, not minutes.
const CONSUMER_GRACE: &str = "interval '20 seconds'";

/// Adds `messages` to the outbox inside the caller's transaction. A message
/// whose event id is already waiting there (the same fact announced twice,
/// see [`Outgoing::fact`](crate::Outgoing::fact)) is written once.
///
/// Inside a consumer run, on the run's own connection, the consumer
/// publishes the messages itself after its commit ([`capture`]); elsewhere
/// the relay publishes them, woken by the `NOTIFY` their insert raises.
pub async fn write(conn: &mut PgConnection, messages: &[Outgoing]) -> sqlx::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let captured = capture::is_run_connection(conn);
    let relay_after = if captured {
        format!("now() + {CONSUMER_GRACE}")
    } else {
        "NULL".to_owned()
    };
    let mut insert = QueryBuilder::new(
        "INSERT INTO outbox (event_id, subject, body, traceparent, relay_after) ",
    );
    insert.push_values(messages, |mut row, message| {
        let event_id =
            Uuid::parse_str(&message.envelope.event_id).unwrap_or_else(|_| Uuid::now_v7());
        row.push_bind(event_id)
            .push_bind(&message.subject)
            .push_bind(message.envelope.encode_to_vec())
            .push_bind(&message.traceparent)
            .push(&relay_after);
    });
    // A fact announced again while its first announcement still waits for
    // the relay is the same message: keep one.
    insert.push(" ON CONFLICT (event_id) DO NOTHING");
    insert.build().execute(&mut *conn).await?;
    if captured {
        // Only once the rows are in the run's transaction.
        capture::record(conn, messages);
    }
    Ok(())
}

/// Deletes, in the caller's transaction, the rows of messages a consumer
/// published itself ([`capture`]).
pub(crate) async fn forget(conn: &mut PgConnection, event_ids: &[Uuid]) -> sqlx::Result<()> {
    if event_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM outbox WHERE event_id = ANY($1)")
        .bind(event_ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Publishes the messages a consumer run wrote, once the run committed, and
/// returns the event ids the server acknowledged. A message it did not
/// acknowledge stays in the outbox for the relay.
pub(crate) async fn publish_written(bus: &Bus, messages: &[Outgoing]) -> Vec<Uuid> {
    let acks = publish_all(
        bus,
        messages.iter().map(|message| Publication {
            subject: &message.subject,
            event_id: &message.envelope.event_id,
            body: message.envelope.encode_to_vec().into(),
            traceparent: message.traceparent.as_deref(),
        }),
    )
    .await;
    messages
        .iter()
        .zip(acks)
        .filter_map(|(message, ack)| match ack {
            Ok(()) => Uuid::parse_str(&message.envelope.event_id).ok(),
            Err(reason) => {
                tracing::warn!(subject = %message.subject, event_id = %message.envelope.event_id, %reason, "publish not acknowledged, the relay will retry");
                None
            }
        })
        .collect()
}

/// One message to publish.
struct Publication<'a> {
    subject: &'a str,
    event_id: &'a str,
    body: bytes::Bytes,
    traceparent: Option<&'a str>,
}

/// Sends every publication first, then waits for all acks: one round trip
/// for the lot instead of one per message. Returns, in order, whether the
/// server acknowledged each.
async fn publish_all<'a>(
    bus: &Bus,
    publications: impl Iterator<Item = Publication<'a>>,
) -> Vec<std::result::Result<(), String>> {
    let mut pending = Vec::new();
    for publication_ in publications {
        let publish = publication(
            publication_.subject,
            publication_.event_id,
            publication_.body,
            publication_.traceparent,
        );
        let sent = bus
            .jetstream()
            .send_publish(publication_.subject.to_owned(), publish)
            .await;
        pending.push(sent);
    }
    join_all(pending.into_iter().map(|sent| async move {
        match sent {
            Ok(ack) => ack.await.map(|_| ()).map_err(|err| err.to_string()),
            Err(err) => Err(err.to_string()),
        }
    }))
    .await
}

/// How often the relay samples its backlog and pool for the metrics.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// Settings of one relay loop.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Rows claimed and published per transaction.
    pub batch_size: i64,
    /// Fallback poll when no notification arrives (another writer's NOTIFY can
    /// be missed while the listener reconnects).
    pub poll_interval: Duration,
    /// Dead rows in the outbox that make the relay vacuum it (see
    /// [`Relay::run`]).
    pub vacuum_every: usize,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            batch_size: 500,
            poll_interval: Duration::from_secs(1),
            vacuum_every: 2_000,
        }
    }
}

/// Publishes a service's outbox to JetStream.
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    bus: Bus,
    schema: String,
    settings: RelaySettings,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    seq: i64,
    event_id: Uuid,
    subject: String,
    body: Vec<u8>,
    traceparent: Option<String>,
}

impl Relay {
    /// `schema` is the service schema the pool points at (it names the
    /// notification channel).
    pub fn new(pool: PgPool, bus: Bus, schema: &str, settings: RelaySettings) -> Self {
        Relay {
            pool,
            bus,
            schema: schema.to_owned(),
            settings,
        }
    }

    /// Runs until `cancel` fires, publishing whenever rows are committed.
    ///
    /// Every row deleted (by the relay, or by a consumer that published it)
    /// leaves a dead row at the head of the outbox's key, and each take
    /// scans past the dead rows left since the last vacuum. Autovacuum
    /// visits a table at most once a minute, by which time a busy outbox has
    /// thousands (a take cost 4 ms with 200 orders in flight, docs/perf.md),
    /// so the relay vacuums its outbox itself once it counts `vacuum_every`
    /// dead rows: a few milliseconds for a table that is nearly empty. It
    /// looks at most once a poll interval.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        let mut listener = self.listen().await;
        let mut dead_rows_checked = tokio::time::Instant::now();
        let mut sampled: Option<tokio::time::Instant> = None;
        loop {
            let pass = self.publish_pending().await;
            if dead_rows_checked.elapsed() >= self.settings.poll_interval {
                dead_rows_checked = tokio::time::Instant::now();
                self.vacuum_if_needed().await;
            }
            if sampled.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY) {
                sampled = Some(tokio::time::Instant::now());
                self.sample().await;
            }
            match pass {
                Ok(published) if published as i64 >= self.settings.batch_size => continue,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "outbox relay pass failed, retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    }
                    continue;
                }
            }
            let wait = tokio::time::sleep(self.settings.poll_interval);
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = wait => {}
                notified = wait_for_notification(listener.as_mut()) => {
                    if !notified {
                        listener = self.listen().await;
                    }
                }
            }
        }
    }

    /// Records the service's outbox backlog and database pool as gauges
    /// (`gendan_outbox_backlog`, `gendan_outbox_oldest_seconds`,
    /// `gendan_db_pool_connections{state}`), labelled with the service; a
    /// failed count leaves the last values.
    async fn sample(&self) {
        let service = self.schema.clone();
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(size);
        metrics::gauge!("gendan_db_pool_connections", "service" => service.clone(), "state" => "in_use")
            .set(f64::from(size.saturating_sub(idle)));
        metrics::gauge!("gendan_db_pool_connections", "service" => service.clone(), "state" => "idle")
            .set(f64::from(idle));
        let backlog: sqlx::Result<(i64, Option<f64>)> = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM now() - min(created_at))::float8 FROM outbox",
        )
        .fetch_one(&self.pool)
        .await;
        match backlog {
            Ok((rows, oldest)) => {
                metrics::gauge!("gendan_outbox_backlog", "service" => service.clone())
                    .set(rows as f64);
                metrics::gauge!("gendan_outbox_oldest_seconds", "service" => service)
                    .set(oldest.unwrap_or(0.0).max(0.0));
            }
            Err(err) => tracing::debug!(error = %err, "cannot measure the outbox backlog"),
        }
    }

    /// Vacuums the outbox when the statistics count `vacuum_every` dead rows
    /// in it; a failure only leaves the takes slower.
    async fn vacuum_if_needed(&self) {
        let dead: sqlx::Result<Option<i64>> = sqlx::query_scalar(
            "SELECT n_dead_tup FROM pg_stat_user_tables \
             WHERE relid = 'outbox'::regclass",
        )
        .fetch_optional(&self.pool)
        .await;
        match dead {
            Ok(Some(dead)) if dead >= self.settings.vacuum_every as i64 => self.vacuum().await,
            Ok(_) => {}
            Err(err) => tracing::debug!(error = %err, "cannot count the outbox's dead rows"),
        }
    }

    /// Vacuums the outbox; a failure only leaves the takes slower. Another
    /// replica's relay vacuuming the same outbox is not waited for.
    async fn vacuum(&self) {
        if let Err(err) = sqlx::raw_sql("VACUUM (SKIP_LOCKED) outbox")
            .execute(&self.pool)
            .await
        {
            tracing::debug!(error = %err, "cannot vacuum the outbox");
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        let channel = format!("gendan_outbox_{}", self.schema);
        listener.listen(&channel).await.ok()?;
        Some(listener)
    }

    /// One pass: takes up to a batch of rows out of the outbox, publishes
    /// them and commits once the server acknowledged them; a row whose
    /// publish was not acknowledged goes back. Returns how many were
    /// published.
    ///
    /// Taking the rows is one `DELETE … RETURNING` over rows claimed with
    /// `SKIP LOCKED` (one statement where a select and a delete were two).
    /// Nothing is gone until the commit: a relay that dies before it rolls
    /// back, and the rows are published again with the same message ids.
    pub async fn publish_pending(&self) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let mut rows: Vec<OutboxRow> = sqlx::query_as(
            "DELETE FROM outbox WHERE seq IN \
               (SELECT seq FROM outbox \
                WHERE relay_after IS NULL OR relay_after <= now() \
                ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING seq, event_id, subject, body, traceparent",
        )
        .bind(self.settings.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // RETURNING has no order: publish in the order written.
        rows.sort_by_key(|row| row.seq);

        let event_ids: Vec<String> = rows.iter().map(|row| row.event_id.to_string()).collect();
        let acks = publish_all(
            &self.bus,
            rows.iter()
                .zip(&event_ids)
                .map(|(row, event_id)| Publication {
                    subject: &row.subject,
                    event_id,
                    body: row.body.clone().into(),
                    traceparent: row.traceparent.as_deref(),
                }),
        )
        .await;

        let mut unpublished = Vec::new();
        for (row, ack) in rows.iter().zip(acks) {
            if let Err(reason) = ack {
                tracing::warn!(subject = %row.subject, event_id = %row.event_id, %reason, "publish not acknowledged, will retry");
                unpublished.push(row);
            }
        }
        if !unpublished.is_empty() {
            // Back where they were (same seq), for the next pass; the rows
            // that were acknowledged still leave, so one row the server
            // keeps refusing does not hold up the others.
            let mut insert = QueryBuilder::new(
                "INSERT INTO outbox (seq, event_id, subject, body, traceparent) ",
            );
            insert.push_values(&unpublished, |mut values, row| {
                values
                    .push_bind(row.seq)
                    .push_bind(row.event_id)
                    .push_bind(&row.subject)
                    .push_bind(&row.body)
                    .push_bind(&row.traceparent);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(rows.len() - unpublished.len())
    }
}

/// `true` on a notification, `false` when the listener is gone. The
/// notifications already buffered behind the first are taken with it: each
/// says only "rows were committed", and one pass publishes the rows of them
/// all (under load, commits come faster than passes, and a pass per
/// notification would mostly find nothing left to publish).
async fn wait_for_notification(listener: Option<&mut PgListener>) -> bool {
    match listener {
        Some(listener) => {
            if listener.recv().await.is_err() {
                return false;
            }
            while listener.next_buffered().is_some() {}
            true
        }
        None => std::future::pending().await,
    }
}
