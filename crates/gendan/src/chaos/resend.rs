//! The re-send experiment, once every order is closed: every command the
//! saga published for those orders (`gendan.cmd.*` in `GENDAN_CMD`, envelope
//! source `saga`) is published again, twice, with a `Nats-Msg-Id` the
//! stream has not seen, so JetStream's de-duplication lets it through:
//!
//! - the same envelope bytes and headers: a message delivered again after
//!   the de-duplication window, which each department's inbox must drop;
//! - the same command under a fresh event id: what the saga's own re-send
//!   after a timeout looks like, which each department must answer from
//!   what it stored, doing nothing a second time.
//!
//! Then [`wait_quiet`] waits until nothing is left in flight: every
//! service's outbox empty and every durable consumer caught up and
//! acknowledged, seen twice in a row.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use gendan_messaging::{Bus, streams, subjects};
use gendan_proto::v1::Envelope;
use prost::Message as _;
use sqlx::PgPool;

use super::services::{SERVICES, Services};

/// Publications in flight before their acknowledgements are awaited.
const IN_FLIGHT: usize = 256;

/// What was published again.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Resent {
    /// Saga commands of the closed orders found on the stream.
    pub commands: usize,
    /// Messages published: two per command.
    pub published: usize,
}

/// Publishes every saga command of `orders` again, as described above.
pub(crate) async fn resend(bus: &Bus, orders: &HashSet<String>) -> anyhow::Result<Resent> {
    let commands = saga_commands(bus, orders).await?;
    let jetstream = bus.jetstream();
    let mut acks = Vec::with_capacity(IN_FLIGHT);
    let mut published = 0;
    for (message, envelope) in &commands {
        let mut same = message.headers.clone().unwrap_or_default();
        let redelivery_id = format!("chaos-resend:{}", uuid::Uuid::now_v7());
        same.insert("Nats-Msg-Id", redelivery_id.as_str());
        acks.push(
            jetstream
                .publish_with_headers(message.subject.clone(), same, message.payload.clone())
                .await
                .map_err(|err| anyhow!("publishing {} again: {err}", message.subject))?,
        );

        let mut again = envelope.clone();
        again.event_id = uuid::Uuid::now_v7().to_string();
        let mut headers = message.headers.clone().unwrap_or_default();
        headers.insert("Nats-Msg-Id", again.event_id.as_str());
        acks.push(
            jetstream
                .publish_with_headers(
                    message.subject.clone(),
                    headers,
                    again.encode_to_vec().into(),
                )
                .await
                .map_err(|err| anyhow!("publishing {} again: {err}", message.subject))?,
        );
        published += 2;

        if acks.len() >= IN_FLIGHT {
            for ack in acks.drain(..) {
                ack.await
                    .map_err(|err| anyhow!("a re-sent command was not stored: {err}"))?;
            }
        }
    }
    for ack in acks {
        ack.await
            .map_err(|err| anyhow!("a re-sent command was not stored: {err}"))?;
    }
    Ok(Resent {
        commands: commands.len(),
        published,
    })
}

/// Every message on `GENDAN_CMD` the saga sent about one of `orders`, with
/// its envelope, read up to what the stream held when reading began.
async fn saga_commands(
    bus: &Bus,
    orders: &HashSet<String>,
) -> anyhow::Result<Vec<(async_nats::Message, Envelope)>> {
    let stream = bus
        .jetstream()
        .get_stream(streams::COMMANDS)
        .await
        .with_context(|| format!("opening stream {}", streams::COMMANDS))?;
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: subjects::COMMANDS.to_owned(),
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .context("reading the commands")?;
    let stored = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await.context("reading the commands")?;
    let mut commands = Vec::new();
    let mut read = 0u64;
    while read < stored {
        let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_secs(10), messages.next()).await
        else {
            bail!("read {read} of the {stored} stored commands, then nothing for 10 s");
        };
        let (message, _) = message
            .map_err(|err| anyhow!("reading the commands: {err}"))?
            .split();
        read += 1;
        let Ok(envelope) = Envelope::decode(message.payload.as_ref()) else {
            continue;
        };
        if envelope.source == "saga" && orders.contains(&envelope.order_id) {
            commands.push((message, envelope));
        }
    }
    Ok(commands)
}

/// How the wait for a quiet system ended.
#[derive(Debug, Clone, Default)]
pub(crate) struct Quiet {
    pub reached: bool,
    pub waited: Duration,
    /// What was still in flight when the wait gave up.
    pub busy: String,
}

/// Waits, at most `bound`, until [`backlog`] finds nothing twice in a row
/// a second apart (a message between a consumer's ack and its outbox row's
/// commit is in neither place for a moment).
pub(crate) async fn wait_quiet(
    pool: &PgPool,
    bus: &Bus,
    services: &mut Services,
    bound: Duration,
) -> anyhow::Result<Quiet> {
    let started = Instant::now();
    let mut quiet_once = false;
    let mut busy = String::new();
    loop {
        for line in services.restart_ended()? {
            println!("  [{:>6.1}s] {line}", started.elapsed().as_secs_f64());
        }
        match backlog(pool, bus).await {
            Ok(None) if quiet_once => {
                return Ok(Quiet {
                    reached: true,
                    waited: started.elapsed(),
                    busy: String::new(),
                });
            }
            Ok(None) => quiet_once = true,
            Ok(Some(what)) => {
                quiet_once = false;
                busy = what;
            }
            Err(err) => {
                quiet_once = false;
                busy = format!("{err:#}");
            }
        }
        if started.elapsed() >= bound {
            return Ok(Quiet {
                reached: false,
                waited: started.elapsed(),
                busy,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What is still in flight: unsent outbox rows, and messages of a durable
/// consumer not delivered yet or not acknowledged; `None` when nothing is.
pub(crate) async fn backlog(pool: &PgPool, bus: &Bus) -> anyhow::Result<Option<String>> {
    let mut busy = Vec::new();
    for (service, rows) in outbox_rows(pool).await? {
        if rows > 0 {
            busy.push(format!("{service} outbox {rows} rows"));
        }
    }
    for consumer in consumers(bus).await? {
        if consumer.pending > 0 || consumer.unacknowledged > 0 {
            busy.push(format!(
                "{} {} pending, {} unacknowledged",
                consumer.name, consumer.pending, consumer.unacknowledged
            ));
        }
    }
    Ok((!busy.is_empty()).then(|| busy.join(", ")))
}

/// Rows waiting in each service's outbox (the relay deletes what the
/// server acknowledged).
pub(crate) async fn outbox_rows(pool: &PgPool) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let mut rows = Vec::with_capacity(SERVICES.len());
    for service in SERVICES {
        let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {service}.outbox"));
        let count = sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .with_context(|| format!("counting the {service} outbox"))?;
        rows.push((service, count));
    }
    Ok(rows)
}

/// One durable consumer's backlog.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerBacklog {
    /// `stream/durable`.
    pub name: String,
    pub pending: u64,
    pub unacknowledged: u64,
}

/// The backlog of every durable consumer on every gendan stream (the
/// services' own; ephemeral readers like the simulators' are left out).
pub(crate) async fn consumers(bus: &Bus) -> anyhow::Result<Vec<ConsumerBacklog>> {
    let mut found = Vec::new();
    for name in [
        streams::EVENTS,
        streams::COMMANDS,
        streams::EXTERNAL,
        streams::DEAD_LETTERS,
        streams::NOTICES,
    ] {
        let stream = bus
            .jetstream()
            .get_stream(name)
            .await
            .map_err(|err| anyhow!("opening stream {name}: {err}"))?;
        let mut infos = stream.consumers();
        while let Some(info) = infos.next().await {
            let info = info.map_err(|err| anyhow!("listing the consumers of {name}: {err}"))?;
            if info.config.durable_name.is_none() {
                continue;
            }
            found.push(ConsumerBacklog {
                name: format!("{name}/{}", info.name),
                pending: info.num_pending,
                unacknowledged: info.num_ack_pending as u64,
            });
        }
    }
    Ok(found)
}
