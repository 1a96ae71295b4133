//! Durable pull consumers with batched, transactional, idempotent handling.
//!
//! Each delivery batch (whatever is ready, up to `batch_size`) is handled in
//! one Postgres transaction (`consumer/batch.rs`): one [`inbox`] claim for
//! every message the handler acts on, then each fresh message's handler,
//! with no savepoint per message; a failing message rolls the run back and
//! the batch runs again without it. Messages of one order keep their stream
//! order; the batch is stably sorted by order id so two replicas lock saga
//! rows in the same order. After commit every message is settled:
//!
//! | outcome | settlement |
//! | --- | --- |
//! | handled, or a duplicate | ack |
//! | envelope undecodable, unknown schema version | dead letter, then ack |
//! | [`HandlerError::Rejected`] | dead letter, then ack |
//! | [`HandlerError::Retry`] | nak with backoff; dead letter once `max_attempts` deliveries failed |
//!
//! The messages a committed run wrote to the outbox ([`outbox::capture`])
//! are published by a task beside the loop (`consumer/publishing.rs`), and
//! their rows deleted in the consumer's next transaction (or on its own once
//! it falls idle): what it sends on goes out without waiting for a relay
//! pass.
//!
//! Each batch is measured (`consumer/measure.rs`): messages by how they
//! were settled, batch sizes and times, and the consumer's lag.
//!
//! A batch whose transaction cannot start or commit because the database is
//! away (pool exhausted, server restarting) is held and tried again for up
//! to two minutes, with in-progress acks, before it counts as a failed
//! delivery: overload must slow a consumer down, not dead-letter its
//! messages.
//!
//! [`inbox`]: crate::inbox
//! [`outbox::capture`]: crate::outbox::capture

mod batch;
mod measure;
mod publishing;

use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{AckKind, Message};
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::batch::Outcome;
use self::publishing::{PublishedRows, Publisher};
use crate::Turnstile;
use crate::bus::Bus;
use crate::envelope::Incoming;
use crate::{Error, Result, outbox, subjects};

/// How long a batch is held while the database is away before it goes back
/// to the server as a failed delivery.
const DATABASE_PATIENCE: Duration = Duration::from_secs(120);

/// How long published rows may wait for a transaction of the consumer's to
/// be deleted in, however busy it is: well within the relay's grace.
const FORGET_WITHIN: Duration = Duration::from_secs(1);

/// What a handler says about a message it could not handle.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// The message can never be handled (bad payload, unknown command, a
    /// reference to nothing): dead-letter it now.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Something temporary went wrong (database, a race): redeliver later.
    #[error("retry: {0}")]
    Retry(String),
    /// The database refused for a moment (a deadlock, a serialization
    /// failure, a restarting server: [`gendan_storage::is_transient`]): the
    /// whole batch runs again, this message included, without spending one
    /// of its deliveries.
    #[error("transient: {0}")]
    Transient(String),
}

impl HandlerError {
    /// A database error: transient ones run the batch again, the others are
    /// redelivered later.
    pub fn database(err: sqlx::Error) -> Self {
        if gendan_storage::is_transient(&err) {
            HandlerError::Transient(format!("database: {err}"))
        } else {
            HandlerError::Retry(format!("database: {err}"))
        }
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(err: sqlx::Error) -> Self {
        HandlerError::database(err)
    }
}

/// Applies one message's effect on `conn`, the batch's transaction.
/// Writing follow-up messages to the outbox on the same connection makes
/// effect and announcement atomic.
///
/// Two rules follow from sharing one transaction without savepoints:
/// - return the error of every failed statement (`?` does): Postgres aborts
///   the transaction at the first one, and a swallowed error would leave the
///   batch's COMMIT silently rolled back;
/// - keep every effect on `conn`: when another message of the batch fails,
///   the run is rolled back and this handler runs again for the same
///   delivery. Messages written to the outbox on `conn` are published by
///   the consumer as soon as the run commits, so a savepoint that is rolled
///   back must not hold outbox writes.
pub trait Handler: Send + Sync + 'static {
    /// Whether this handler acts on `message` at all. A consumer that sees
    /// every domain event acks the others without touching the database
    /// (no transaction work, no inbox row: they have no effect to guard).
    fn handles(&self, _message: &Incoming) -> bool {
        true
    }

    fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> impl Future<Output = std::result::Result<(), HandlerError>> + Send;

    /// Handles the fresh messages of one run of a batch, in batch order.
    /// The default runs [`handle`](Self::handle) for each in its own span.
    /// A handler that can share work between messages (one load and one
    /// save for every order the batch touches) overrides it; the rules of
    /// [`handle`](Self::handle) apply to the whole run.
    fn handle_batch(
        &self,
        conn: &mut PgConnection,
        batch: &Batch<'_>,
    ) -> impl Future<Output = std::result::Result<(), BatchFailure>> + Send {
        async move {
            for (position, message) in batch.messages().iter().enumerate() {
                self.handle(&mut *conn, message)
                    .instrument(batch.span(message))
                    .await
                    .map_err(|err| BatchFailure::Message(position, err))?;
            }
            Ok(())
        }
    }
}

/// The fresh messages of one run of a batch (claimed in the inbox in this
/// run's transaction), as [`Handler::handle_batch`] sees them: messages of
/// one order in stream order, orders sorted by id.
pub struct Batch<'a> {
    durable: &'a str,
    messages: Vec<&'a Incoming>,
}

impl<'a> Batch<'a> {
    pub fn new(durable: &'a str, messages: Vec<&'a Incoming>) -> Self {
        Batch { durable, messages }
    }

    pub fn messages(&self) -> &[&'a Incoming] {
        &self.messages
    }

    /// The span of one message's handling, a child of the producer's trace.
    pub fn span(&self, message: &Incoming) -> tracing::Span {
        batch::handle_span(self.durable, message)
    }
}

/// Why a run of a batch failed; the run's transaction is rolled back.
#[derive(Debug)]
pub enum BatchFailure {
    /// The message at this position of [`Batch::messages`] failed: the batch
    /// runs again without it.
    Message(usize, HandlerError),
    /// Work the run's messages share failed (one statement for many
    /// orders), so no message is known to be at fault. A transient error
    /// runs the batch again whole; any other runs each message on its own,
    /// which finds the one at fault.
    Shared(HandlerError),
}

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Stream to read (`streams::EVENTS`, ...).
    pub stream: String,
    /// Durable consumer name, shared by every replica of the service; also
    /// the inbox key and the dead-letter subject suffix.
    pub durable: String,
    /// One filter subject (NATS 2.9 honours only one per consumer).
    pub filter_subject: String,
    pub batch_size: usize,
    /// Deliveries before a failing message is dead-lettered.
    pub max_attempts: u32,
    /// Redelivery delays, by attempt; the last repeats.
    pub backoff: Vec<Duration>,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Record the highest stream sequence of every committed batch in
    /// `consumer_progress` ([`progress`]), for a handler elsewhere that must
    /// know this consumer has seen everything up to a message. One statement
    /// a batch; off by default.
    pub track_progress: bool,
}

impl ConsumerSettings {
    pub fn new(stream: &str, durable: &str, filter_subject: &str) -> Self {
        ConsumerSettings {
            stream: stream.to_owned(),
            durable: durable.to_owned(),
            filter_subject: filter_subject.to_owned(),
            batch_size: 200,
            max_attempts: 5,
            backoff: vec![
                Duration::from_millis(200),
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            // Short enough that messages held by a crashed replica come back
            // quickly; a batch is handled well within it.
            ack_wait: Duration::from_secs(10),
            track_progress: false,
        }
    }

    fn delay_after(&self, delivered: u64) -> Duration {
        let index = (delivered.max(1) - 1) as usize;
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}

/// A consumer loop: pull, handle, settle.
pub struct Consumer<H> {
    bus: Bus,
    pool: PgPool,
    settings: ConsumerSettings,
    handler: H,
    /// Entered before each run's transaction begins (see [`Turnstile`]).
    turnstile: Option<Turnstile>,
    /// Messages this consumer published itself whose outbox rows are still
    /// to be deleted.
    published: PublishedRows,
}

impl<H: Handler> Consumer<H> {
    pub fn new(bus: Bus, pool: PgPool, settings: ConsumerSettings, handler: H) -> Self {
        Consumer {
            bus,
            pool,
            settings,
            handler,
            turnstile: None,
            published: PublishedRows::default(),
        }
    }

    /// Every run of this consumer enters `turnstile` before its transaction
    /// begins: for a consumer whose runs all take one lock that other tasks
    /// of the process take too ([`Turnstile`]).
    pub fn with_turnstile(mut self, turnstile: Turnstile) -> Self {
        self.turnstile = Some(turnstile);
        self
    }

    /// Creates the durable consumer if needed (idempotent).
    pub async fn ensure(&self) -> Result<PullConsumer> {
        let settings = &self.settings;
        let stream = self
            .bus
            .jetstream()
            .get_stream(&settings.stream)
            .await
            .map_err(|err| Error::jetstream(format!("get stream {}", settings.stream), err))?;
        let config = pull::Config {
            durable_name: Some(settings.durable.clone()),
            filter_subject: settings.filter_subject.clone(),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: settings.ack_wait,
            // We dead-letter at max_attempts ourselves; the server limit
            // is a backstop above it so nothing is silently dropped.
            max_deliver: i64::from(settings.max_attempts) + 3,
            max_ack_pending: 20_000,
            ..Default::default()
        };
        // Create or update, so a new release's settings reach a durable
        // that already exists; a server that refuses the update keeps the
        // consumer as it is, which still delivers everything.
        match stream.create_consumer(config).await {
            Ok(consumer) => Ok(consumer),
            Err(err) => {
                tracing::warn!(durable = %settings.durable, error = %err, "cannot update the consumer configuration, using it as it is");
                stream
                    .get_consumer(&settings.durable)
                    .await
                    .map_err(|get_err| {
                        Error::jetstream(
                            format!("create consumer {}", settings.durable),
                            format!("{err}; {get_err}"),
                        )
                    })
            }
        }
    }

    /// Runs until `cancel` fires. Transient stream errors (server restart,
    /// missed heartbeats) re-open the message stream after a pause.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        let consumer = self.ensure().await?;
        tracing::debug!(durable = %self.settings.durable, "consumer started");
        let publisher = Publisher::start(self.bus.clone(), self.published.clone());
        self.pull(&consumer, &publisher, &cancel).await;
        publisher.stop().await;
        self.forget_published().await;
        Ok(())
    }

    /// Pulls and handles batches until `cancel` fires.
    async fn pull(
        &self,
        consumer: &PullConsumer,
        publisher: &Publisher,
        cancel: &CancellationToken,
    ) {
        while !cancel.is_cancelled() {
            let messages = consumer
                .stream()
                .max_messages_per_batch(self.settings.batch_size)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await;
            let messages = match messages {
                Ok(messages) => messages,
                Err(err) => {
                    tracing::warn!(durable = %self.settings.durable, error = %err, "cannot open message stream");
                    pause(cancel, Duration::from_secs(1)).await;
                    continue;
                }
            };
            // Whatever is ready forms one batch: full batches under load,
            // single messages (low latency) when idle.
            let mut batches = messages.ready_chunks(self.settings.batch_size);
            loop {
                let batch = tokio::select! {
                    _ = cancel.cancelled() => return,
                    batch = batches.next() => batch,
                    _ = self.published.idle_with_rows() => {
                        self.forget_published().await;
                        continue;
                    }
                };
                let Some(batch) = batch else { break };
                let mut ready = Vec::with_capacity(batch.len());
                let mut broken = false;
                for item in batch {
                    match item {
                        Ok(message) => ready.push(message),
                        Err(err) => {
                            tracing::warn!(durable = %self.settings.durable, error = %err, "message stream error");
                            broken = true;
                        }
                    }
                }
                if self.published.waiting_longer_than(FORGET_WITHIN) {
                    // Busy with batches that need no transaction.
                    self.forget_published().await;
                }
                self.handle_batch(ready, publisher, cancel).await;
                if broken {
                    pause(cancel, Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }

    async fn handle_batch(
        &self,
        messages: Vec<Message>,
        publisher: &Publisher,
        cancel: &CancellationToken,
    ) {
        if messages.is_empty() {
            return;
        }
        let measured = measure::Batch::arrived(&self.settings.durable, &messages);
        let mut settled: Vec<(Message, Outcome)> = Vec::with_capacity(messages.len());
        let mut decoded: Vec<(Message, Incoming)> = Vec::with_capacity(messages.len());
        for message in messages {
            match decode(&message) {
                Ok(incoming) => decoded.push((message, incoming)),
                Err(reason) => settled.push((message, Outcome::DeadLetter(reason))),
            }
        }
        decoded.sort_by(|a, b| a.1.envelope.order_id.cmp(&b.1.envelope.order_id));

        let mut written = Vec::new();
        let applied = self.apply_patiently(&decoded, &mut written, cancel).await;
        // Whatever committed goes out, even when the batch failed after it.
        publisher.publish(written);
        match applied {
            Ok(outcomes) => {
                settled.extend(decoded.into_iter().map(|(m, _)| m).zip(outcomes));
            }
            Err(err) => {
                tracing::warn!(durable = %self.settings.durable, error = %err, "batch transaction failed, redelivering");
                let reason = format!("batch transaction failed: {err}");
                settled.extend(
                    decoded
                        .into_iter()
                        .map(|(m, _)| (m, Outcome::Retry(reason.clone()))),
                );
            }
        }
        for (message, outcome) in settled {
            self.settle(message, outcome).await;
        }
        measured.settled();
    }

    /// Deletes the rows of the messages published so far, on its own
    /// transaction. A failure keeps the ids for the next try; meanwhile
    /// the rows' grace runs out and the relay publishes them again (the
    /// same message ids, dropped by JetStream and the inboxes).
    async fn forget_published(&self) {
        let ids = self.published.take();
        if ids.is_empty() {
            return;
        }
        let forgotten = async {
            let mut conn = self.pool.acquire().await?;
            outbox::forget(&mut conn, &ids).await
        };
        if let Err(err) = forgotten.await {
            tracing::debug!(durable = %self.settings.durable, error = %err, "cannot delete published outbox rows yet");
            self.published.add(ids);
        }
    }

    /// [`apply`](Self::apply), waiting with the messages in hand while the
    /// database is away (no free connection in the pool, a server
    /// restarting: [`gendan_storage::is_transient`]) for up to
    /// [`DATABASE_PATIENCE`], and telling the server the batch is still
    /// being worked on meanwhile. The message is not at fault, so such a
    /// failure must not spend its deliveries: after enough of them it would
    /// be dead-lettered, and under overload that loses real progress.
    async fn apply_patiently(
        &self,
        batch: &[(Message, Incoming)],
        written: &mut Vec<crate::Outgoing>,
        cancel: &CancellationToken,
    ) -> std::result::Result<Vec<Outcome>, sqlx::Error> {
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(250);
        loop {
            match self.apply(batch, written).await {
                Err(err)
                    if gendan_storage::is_transient(&err)
                        && started.elapsed() < DATABASE_PATIENCE
                        && !cancel.is_cancelled() =>
                {
                    tracing::warn!(durable = %self.settings.durable, error = %err, "database not available, holding the batch");
                    for (message, _) in batch {
                        // Resets the server's ack timer: no redelivery while
                        // we hold the message.
                        let _ = message.ack_with(AckKind::Progress).await;
                    }
                    pause(cancel, wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    async fn settle(&self, message: Message, outcome: Outcome) {
        let delivered = message
            .info()
            .map(|info| info.delivered as u64)
            .unwrap_or(1);
        let gives_up = delivered >= u64::from(self.settings.max_attempts);
        let counted = match &outcome {
            Outcome::Done => "handled",
            Outcome::Retry(_) if gives_up => "dead_lettered",
            Outcome::Retry(_) => "retried",
            Outcome::DeadLetter(_) => "dead_lettered",
        };
        measure::settled(&self.settings.durable, counted);
        let result = match outcome {
            Outcome::Done => message.ack().await,
            Outcome::Retry(reason) if gives_up => {
                let reason = format!("gave up after {delivered} deliveries: {reason}");
                self.dead_letter(message, &reason).await
            }
            Outcome::Retry(_) => {
                let delay = self.settings.delay_after(delivered);
                message.ack_with(AckKind::Nak(Some(delay))).await
            }
            Outcome::DeadLetter(reason) => self.dead_letter(message, &reason).await,
        };
        if let Err(err) = result {
            // The server will redeliver after ack_wait; the inbox makes that
            // harmless.
            tracing::warn!(durable = %self.settings.durable, error = %err, "cannot settle message");
        }
    }

    /// Publishes the original bytes to `gendan.dlq.<durable>` with the reason,
    /// then terminates the original. If the dead-letter publish fails the
    /// original is left unacked and comes back.
    async fn dead_letter(
        &self,
        message: Message,
        reason: &str,
    ) -> std::result::Result<(), async_nats::Error> {
        let info = message.info().ok();
        let stream_sequence = info.as_ref().map(|i| i.stream_sequence).unwrap_or_default();
        let delivered = info.as_ref().map(|i| i.delivered).unwrap_or_default();
        tracing::warn!(durable = %self.settings.durable, subject = %message.subject, %reason, "dead-lettering message");

        let mut headers = message.headers.clone().unwrap_or_default();
        headers.insert("Gendan-Dlq-Reason", one_line(reason).as_str());
        headers.insert("Gendan-Dlq-Subject", message.subject.as_str());
        headers.insert("Gendan-Dlq-Consumer", self.settings.durable.as_str());
        headers.insert(
            "Gendan-Dlq-Stream-Sequence",
            stream_sequence.to_string().as_str(),
        );
        headers.insert("Gendan-Dlq-Delivered", delivered.to_string().as_str());
        let message_id = format!("dlq:{}:{}", self.settings.durable, stream_sequence);
        headers.insert("Nats-Msg-Id", message_id.as_str());
        let subject = subjects::dead_letter(&self.settings.durable);
        self.bus
            .jetstream()
            .publish_with_headers(subject, headers, message.payload.clone())
            .await?
            .await?;
        message.ack_with(AckKind::Term).await
    }
}

fn decode(message: &Message) -> std::result::Result<Incoming, String> {
    let envelope = crate::envelope::decode_envelope(message.payload.as_ref())?;
    let info = message.info().ok();
    Ok(Incoming {
        subject: message.subject.to_string(),
        traceparent: header(message.headers.as_ref(), "traceparent"),
        delivered: info.as_ref().map(|i| i.delivered as u64).unwrap_or(1),
        stream_sequence: info.as_ref().map(|i| i.stream_sequence).unwrap_or_default(),
        envelope,
    })
}

fn header(headers: Option<&HeaderMap>, name: &str) -> Option<String> {
    headers?.get(name).map(|value| value.as_str().to_owned())
}

/// Header values cannot carry line breaks.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

async fn pause(cancel: &CancellationToken, duration: Duration) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep(duration) => {}
    }
}

/// The highest stream sequence `durable` has handled, when it keeps track
/// ([`ConsumerSettings::track_progress`]); 0 before its first batch. A
/// message retried later (a failed delivery) may still be behind it.
pub async fn progress(conn: &mut sqlx::PgConnection, durable: &str) -> sqlx::Result<u64> {
    let sequence: Option<i64> =
        sqlx::query_scalar("SELECT stream_sequence FROM consumer_progress WHERE consumer = $1")
            .bind(durable)
            .fetch_optional(conn)
            .await?;
    Ok(sequence.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
}
