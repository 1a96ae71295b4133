//! `gendan bench`: N orders through the whole happy path with the simulators
//! at full speed, and the figures that say what that costs:
//!
//! - orders per second, and p50 / p99 order completion time (create → the
//!   saga's `SagaCompleted`);
//! - p50 / p99 saga step latency: from a reply event being stored in
//!   JetStream to the saga's next command being stored (both timestamps are
//!   the server's, so the figure includes the relay);
//! - PostgreSQL transactions and NATS messages per order (server counters
//!   before and after).
//!
//! A program that prints figures, never a test that asserts them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use gendan_messaging::{Bus, streams};
use gendan_proto::TypeName;
use gendan_proto::v1::{self, Envelope};
use prost::Message as _;
use sqlx::Connection;

use crate::demo::{create_orders, ports_of};
use crate::sim::{self, Clients, SimOptions, Simulator};
use crate::stack::Stack;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub orders: usize,
    pub concurrency: usize,
    pub timeout: Duration,
    pub seed: u64,
}

pub async fn run(
    bus: &Bus,
    stack: &Stack,
    database_url: &str,
    options: &BenchOptions,
) -> anyhow::Result<()> {
    let clients = Clients::connect(&ports_of(stack)).await?;
    sim::seed_catalog(&clients)
        .await
        .context("loading the catalogue")?;
    let simulator = Simulator::start(
        bus.clone(),
        clients.clone(),
        SimOptions {
            day: Duration::ZERO,
            seed: options.seed,
            exceptions: false,
            ..Default::default()
        },
    )
    .await?;

    let transactions_before = transactions(database_url).await?;
    let messages_before = stream_messages(bus).await?;
    let bench_start = chrono::Utc::now();
    let started = Instant::now();
    println!(
        "{} orders, {} at a time, simulators at full speed",
        options.orders, options.concurrency
    );

    let created =
        create_orders(&clients, options.seed, options.orders, options.concurrency).await?;
    let mut pending: HashMap<String, Instant> = created.into_iter().collect();
    let mut completion = Vec::with_capacity(pending.len());
    let mut completed = completions(bus, bench_start).await?;
    let deadline = started + options.timeout;
    while !pending.is_empty() {
        let next = tokio::time::timeout_at(deadline.into(), completed.next()).await;
        let Ok(Some(message)) = next else {
            anyhow::bail!(
                "{} orders did not complete within {:?}",
                pending.len(),
                options.timeout
            );
        };
        let message = message.map_err(|err| anyhow::anyhow!("{err}"))?;
        let Ok(envelope) = Envelope::decode(message.payload.as_ref()) else {
            continue;
        };
        if let Some(created_at) = pending.remove(&envelope.order_id) {
            completion.push(created_at.elapsed());
        }
    }
    let elapsed = started.elapsed();
    let stats = simulator.stop().await?;

    let transactions_after = transactions(database_url).await?;
    let messages_after = stream_messages(bus).await?;
    let step_latencies = step_latencies(bus, bench_start).await?;

    let n = options.orders.max(1) as f64;
    completion.sort();
    println!();
    println!(
        "orders/s                  {:.2}",
        options.orders as f64 / elapsed.as_secs_f64()
    );
    println!(
        "order completion p50      {:.0} ms",
        percentile(&completion, 0.50).as_secs_f64() * 1e3
    );
    println!(
        "order completion p99      {:.0} ms",
        percentile(&completion, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "saga step latency p50     {:.1} ms  ({} steps)",
        percentile(&step_latencies, 0.50).as_secs_f64() * 1e3,
        step_latencies.len()
    );
    println!(
        "saga step latency p99     {:.1} ms",
        percentile(&step_latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "postgres transactions     {:.0} per order",
        (transactions_after - transactions_before) as f64 / n
    );
    println!(
        "nats messages stored      {:.0} per order",
        (messages_after - messages_before) as f64 / n
    );
    println!("simulator errors          {}", stats.errors);
    Ok(())
}

/// `SagaCompleted` events from `since` on.
async fn completions(
    bus: &Bus,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<async_nats::jetstream::consumer::pull::Stream> {
    let subject = format!(
        "gendan.evt.saga.{}",
        gendan_messaging::subjects::token_for_type(v1::SagaCompleted::TYPE_NAME)
    );
    let consumer = ephemeral(bus, streams::EVENTS, &subject, since).await?;
    Ok(consumer.messages().await?)
}

async fn ephemeral(
    bus: &Bus,
    stream: &str,
    subject: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<async_nats::jetstream::consumer::PullConsumer> {
    let start = time::OffsetDateTime::from_unix_timestamp(since.timestamp())?;
    let stream = bus.jetstream().get_stream(stream).await?;
    Ok(stream
        .create_consumer(pull::Config {
            filter_subject: subject.to_owned(),
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::ByStartTime { start_time: start },
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await?)
}

/// Event stored → the command it caused stored, for every saga command.
async fn step_latencies(
    bus: &Bus,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<Duration>> {
    let events = read_all(bus, streams::EVENTS, "gendan.evt.>", since).await?;
    let stored: HashMap<String, time::OffsetDateTime> = events
        .into_iter()
        .map(|(envelope, at)| (envelope.event_id, at))
        .collect();
    let commands = read_all(bus, streams::COMMANDS, "gendan.cmd.>", since).await?;
    let mut latencies: Vec<Duration> = commands
        .into_iter()
        .filter(|(envelope, _)| envelope.source == "saga")
        .filter_map(|(envelope, at)| {
            let cause = stored.get(&envelope.causation_id)?;
            let gap = at - *cause;
            Duration::try_from(gap).ok()
        })
        .collect();
    latencies.sort();
    Ok(latencies)
}

async fn read_all(
    bus: &Bus,
    stream: &str,
    subject: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<(Envelope, time::OffsetDateTime)>> {
    let consumer = ephemeral(bus, stream, subject, since).await?;
    let pending = consumer.cached_info().num_pending as usize;
    let mut messages = consumer.messages().await?;
    let mut out = Vec::with_capacity(pending);
    while out.len() < pending {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), messages.next()).await
        else {
            break;
        };
        let message = message.map_err(|err| anyhow::anyhow!("{err}"))?;
        let published = message
            .info()
            .map(|info| info.published)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        if let Ok(envelope) = Envelope::decode(message.payload.as_ref()) {
            out.push((envelope, published));
        }
    }
    Ok(out)
}

async fn transactions(database_url: &str) -> anyhow::Result<i64> {
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    let committed: i64 = sqlx::query_scalar(
        "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await?;
    Ok(committed)
}

async fn stream_messages(bus: &Bus) -> anyhow::Result<u64> {
    let mut total = 0;
    for name in [
        streams::EVENTS,
        streams::COMMANDS,
        streams::EXTERNAL,
        streams::NOTICES,
    ] {
        let mut stream = bus.jetstream().get_stream(name).await?;
        total += stream.info().await?.state.messages;
    }
    Ok(total)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
