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

/// Adds `messages` to the outbox inside the caller's transaction. A message
/// whose event id is already waiting there (the same fact announced twice,
/// see [`Outgoing::fact`](crate::Outgoing::fact)) is written once.
pub async fn write(conn: &mut PgConnection, messages: &[Outgoing]) -> sqlx::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut insert =
        QueryBuilder::new("INSERT INTO outbox (event_id, subject, body, traceparent) ");
    insert.push_values(messages, |mut row, message| {
        let event_id =
            Uuid::parse_str(&message.envelope.event_id).unwrap_or_else(|_| Uuid::now_v7());
        row.push_bind(event_id)
            .push_bind(&message.subject)
            .push_bind(message.envelope.encode_to_vec())
            .push_bind(&message.traceparent);
    });
    // A fact announced again while its first announcement still waits for
    // the relay is the same message: keep one.
    insert.push(" ON CONFLICT (event_id) DO NOTHING");
    insert.build().execute(conn).await?;
    Ok(())
}

/// Settings of one relay loop.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Rows claimed and published per transaction.
    pub batch_size: i64,
    /// Fallback poll when no notification arrives (another writer's NOTIFY can
    /// be missed while the listener reconnects).
    pub poll_interval: Duration,
    /// Rows taken between two `VACUUM`s of the outbox (see [`Relay::run`]).
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
    /// Every row taken leaves a dead row at the head of the outbox's key,
    /// and each take scans past the dead rows left since the last vacuum.
    /// Autovacuum visits a table at most once a minute, by which time a busy
    /// outbox has thousands (a take cost 4 ms with 200 orders in flight,
    /// docs/perf.md), so the relay vacuums its outbox itself every
    /// `vacuum_every` rows: a few milliseconds for a table that is nearly
    /// empty.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        let mut listener = self.listen().await;
        let mut taken_since_vacuum = 0;
        loop {
            let pass = self.publish_pending().await;
            if let Ok(published) = pass {
                taken_since_vacuum += published;
                if taken_since_vacuum >= self.settings.vacuum_every {
                    taken_since_vacuum = 0;
                    self.vacuum().await;
                }
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
               (SELECT seq FROM outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED) \
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

        // Publish everything first, then wait for all acks: one round trip
        // per batch instead of one per message.
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let publish = publication(
                &row.subject,
                &row.event_id.to_string(),
                row.body.clone().into(),
                row.traceparent.as_deref(),
            );
            let sent = self
                .bus
                .jetstream()
                .send_publish(row.subject.clone(), publish)
                .await;
            pending.push(sent);
        }
        let acks = join_all(pending.into_iter().map(|sent| async move {
            match sent {
                Ok(ack) => ack.await.map(|_| ()).map_err(|err| err.to_string()),
                Err(err) => Err(err.to_string()),
            }
        }))
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
