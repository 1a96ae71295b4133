//! `gendan bench`: the measuring instrument for throughput work.
//!
//! `gendan bench` pushes N sample orders through the whole happy path with
//! the simulators at full speed, in a closed loop ([`closed_loop`]): exactly
//! `concurrency` orders are open at a time, a new one created as one
//! completes (its saga's `SagaCompleted`), until N were created; then the
//! rest are waited for. The factory's capacity is scaled first so that any
//! N finishes ([`capacity`]). It prints:
//!
//! - orders per second (completed orders over the wall time from the first
//!   `CreateOrder` to the last completion) and p50 / p99 order completion
//!   time (sending `CreateOrder` → reading the saga's `SagaCompleted`);
//! - p50 / p99 saga step latency: from a reply event being stored in
//!   JetStream to the saga's next command being stored (both timestamps are
//!   the server's, so the figure includes the relay) ([`streams`]);
//! - CPU milliseconds per order of this process, of PostgreSQL's processes
//!   and of nats-server ([`cpu`]);
//! - client SQL statements (pg_stat_statements, when loaded), PostgreSQL
//!   transactions and NATS messages stored, per order ([`postgres`],
//!   [`streams`]).
//!
//! `gendan bench mes` measures one path instead: MES quantity reports into
//! production ([`mes`]).
//!
//! A run that does not finish within its timeout shows where each
//! unfinished order stands ([`report`]) and fails. A program that prints
//! figures, never a test that asserts them.

mod capacity;
mod closed_loop;
mod cpu;
mod mes;
mod postgres;
mod report;
mod streams;

use std::time::{Duration, Instant};

use anyhow::Context;
use gendan_messaging::Bus;

use crate::cli::Output;
use crate::demo::ports_of;
use crate::sim::{self, Clients, SimOptions, Simulator};
use crate::stack::Stack;

pub use mes::MesOptions;

/// How long the simulators get to wind down after the last order: their
/// reactions are over by then, and a stuck one must not hold the figures.
const SIMULATOR_STOP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Orders to create in all.
    pub orders: usize,
    /// Orders open at a time.
    pub concurrency: usize,
    pub timeout: Duration,
    pub seed: u64,
    pub output: Output,
}

/// What `gendan bench` measures.
#[derive(Debug, Clone)]
pub enum Measurement {
    /// Orders through the whole happy path.
    Orders(BenchOptions),
    /// MES quantity reports into production.
    Mes(MesOptions),
}

pub async fn run(
    bus: &Bus,
    stack: &Stack,
    database_url: &str,
    measurement: &Measurement,
) -> anyhow::Result<()> {
    let clients = Clients::connect(&ports_of(stack)).await?;
    sim::seed_catalog(&clients)
        .await
        .context("loading the catalogue")?;
    match measurement {
        Measurement::Orders(options) => run_orders(bus, &clients, database_url, options).await,
        Measurement::Mes(options) => mes::run(bus, &clients, options).await,
    }
}

async fn run_orders(
    bus: &Bus,
    clients: &Clients,
    database_url: &str,
    options: &BenchOptions,
) -> anyhow::Result<()> {
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let requests: Vec<_> = (0..options.orders)
        .map(|index| sim::sample_order(options.seed, &run_id[..12], index))
        .collect();
    let in_flight = options.concurrency.clamp(1, options.orders.max(1));
    let capacity = capacity::raise(clients, &requests, in_flight)
        .await
        .context("scaling work-centre capacity to the run")?;
    let measured = measure(bus, clients, database_url, options, requests, &capacity).await;
    // The catalogue's hours come back whatever the run's outcome, so the
    // next demo on this database sees the factory it knows.
    let restored = capacity
        .restore(clients)
        .await
        .context("restoring work-centre capacity");
    measured?;
    restored
}

/// Server-side counters read at one moment.
struct Counters {
    postgres: postgres::Counts,
    messages: u64,
    cpu: cpu::Sample,
}

impl Counters {
    /// Before a run: CPU sampled last, so the reads are not the run's.
    async fn before(bus: &Bus, database_url: &str) -> anyhow::Result<Self> {
        let (postgres, messages) = servers(bus, database_url).await?;
        Ok(Counters {
            postgres,
            messages,
            cpu: cpu::sample(),
        })
    }

    /// After a run: CPU sampled first, for the same reason.
    async fn after(bus: &Bus, database_url: &str) -> anyhow::Result<Self> {
        let cpu = cpu::sample();
        let (postgres, messages) = servers(bus, database_url).await?;
        Ok(Counters {
            postgres,
            messages,
            cpu,
        })
    }
}

async fn servers(bus: &Bus, database_url: &str) -> anyhow::Result<(postgres::Counts, u64)> {
    Ok((
        postgres::counts(database_url).await?,
        streams::stream_messages(bus).await?,
    ))
}

async fn measure(
    bus: &Bus,
    clients: &Clients,
    database_url: &str,
    options: &BenchOptions,
    requests: Vec<gendan_proto::v1::CreateOrderRequest>,
    capacity: &capacity::Raised,
) -> anyhow::Result<()> {
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
    note(
        options.output,
        &format!(
            "{} orders, {} open at a time (closed loop), simulators at full speed",
            options.orders, options.concurrency
        ),
    );
    if let Some(warning) = capacity.warning() {
        note(options.output, &warning);
    }

    let bench_start = chrono::Utc::now();
    // Subscribed before the first order exists, so no completion is missed.
    let mut completed = streams::completions(bus, bench_start).await?;
    let before = Counters::before(bus, database_url).await?;
    let started = Instant::now();
    let driven = closed_loop::drive(
        clients,
        &mut completed,
        requests,
        options.concurrency,
        started + options.timeout,
    )
    .await;
    // Right after the last completion: what the simulators and the bench do
    // afterwards is not the orders' cost.
    let after = match &driven {
        Ok(outcome) if !outcome.timed_out => Some(Counters::after(bus, database_url).await?),
        _ => None,
    };
    let simulator_stats = match tokio::time::timeout(SIMULATOR_STOP, simulator.stop()).await {
        Ok(stats) => Some(stats?),
        Err(_) => None,
    };
    let outcome = driven?;
    if outcome.timed_out {
        let standings = report::standings(clients, &outcome.unfinished).await;
        report::print_unfinished(options, &outcome, &standings);
        anyhow::bail!(
            "{} of {} orders did not complete within {:?}",
            options.orders - outcome.completion.len(),
            options.orders,
            options.timeout
        );
    }
    let Some(after) = after else {
        anyhow::bail!("the counters after the run could not be read");
    };
    let step_latencies = streams::step_latencies(bus, bench_start).await?;
    let figures = report::Figures::new(
        options,
        &outcome,
        step_latencies,
        (&before, &after),
        simulator_stats.as_ref().map(|stats| stats.errors),
        capacity,
    );
    figures.print(options.output);
    Ok(())
}

/// A line for the person running the bench: on stdout with the table, on
/// stderr when stdout is JSON for a script.
fn note(output: Output, text: &str) {
    match output {
        Output::Table => println!("{text}"),
        Output::Json => eprintln!("{text}"),
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Milliseconds, for figures.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
