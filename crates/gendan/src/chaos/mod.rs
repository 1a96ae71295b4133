//! `gendan chaos`: gendan as a deployment runs it, broken on purpose while
//! it works, then checked for what a merchandiser would notice.
//!
//! - `servers.rs` and `nats.rs`: a private PostgreSQL and one or three
//!   nats-servers under `<data dir>/chaos-<unix time>`, which the run may
//!   crash;
//! - `services.rs`: the seven service binaries as processes, killed,
//!   frozen and started again;
//! - the simulators of `gendan demo` play the world outside, in this
//!   process, over the services' public surfaces;
//! - `orders.rs` and `faults.rs`: orders created in a trickle while faults
//!   run for a period (service processes killed with SIGKILL, a NATS node
//!   killed, PostgreSQL crashed, optionally a process frozen);
//! - `progress.rs`: the wait until every order is closed;
//! - `resend.rs`: every saga command of those orders published again, and
//!   the wait until nothing is in flight;
//! - `checks.rs`: nothing lost, nothing done twice, nothing stalled.
//!
//! A failed check makes the command fail and keeps the run's directory
//! (data and logs) for a look.

mod checks;
mod faults;
mod nats;
mod orders;
mod progress;
mod resend;
mod servers;
mod services;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gendan_messaging::Bus;
use sqlx::postgres::PgPoolOptions;

use crate::sim::rng::Lcg;
use crate::sim::{self, Clients, Ports, SimOptions, Simulator};

/// What `gendan chaos` does, from its command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ChaosOptions {
    /// Orders to push through (1..=100000).
    #[arg(long, default_value_t = 50)]
    pub orders: usize,
    /// Seconds of faults; the orders are created over the first two thirds
    /// (0..=86400).
    #[arg(long, default_value_t = 60)]
    pub faults_secs: u64,
    /// Seconds between two kills of a service process (1..=3600).
    #[arg(long, default_value_t = 5)]
    pub kill_every_secs: u64,
    /// Seconds to wait for every order to close after the faults, and again
    /// for quiet after the re-send (10..=86400).
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Seed of the orders, the simulated world and the choice of victims.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Processes per service (1..=3); they share the durable consumers.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Three clustered nats-servers and streams with three replicas.
    #[arg(long)]
    pub cluster: bool,
    /// Also freeze one service process (SIGSTOP) once, past the saga's
    /// command timeout, then thaw it (SIGCONT).
    #[arg(long)]
    pub sigstop: bool,
    /// Let the simulators play the seeded mix of exceptions (failed
    /// inspections, a late supplier, an amendment, a claim, ...).
    #[arg(long)]
    pub exceptions: bool,
    /// Real milliseconds per simulated day (0..=60000; 0 is full speed).
    #[arg(long, default_value_t = 0)]
    pub day_ms: u64,
    /// The saga's command timeout, so lost commands are sent again soon
    /// (1..=3600).
    #[arg(long, default_value_t = 5)]
    pub command_timeout_secs: u64,
    /// Do not kill NATS.
    #[arg(long)]
    pub no_nats_crash: bool,
    /// Do not crash PostgreSQL.
    #[arg(long)]
    pub no_postgres_crash: bool,
    /// Keep the run's directory (data and logs) even when every check passes.
    #[arg(long)]
    pub keep: bool,
}

impl ChaosOptions {
    /// Refuses values out of range, naming the option.
    pub fn validate(&self) -> anyhow::Result<()> {
        let within = |option: &str, value: u64, low: u64, high: u64| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "--{option} {value} is out of range: give {low}..={high}"
                ))
            }
        };
        within("orders", self.orders as u64, 1, 100_000)?;
        within("faults-secs", self.faults_secs, 0, 86_400)?;
        within("kill-every-secs", self.kill_every_secs, 1, 3_600)?;
        within("timeout-secs", self.timeout_secs, 10, 86_400)?;
        within("replicas", self.replicas as u64, 1, 3)?;
        within("day-ms", self.day_ms, 0, 60_000)?;
        within("command-timeout-secs", self.command_timeout_secs, 1, 3_600)?;
        Ok(())
    }
}

/// Everything the run started, so it is stopped whatever happens.
#[derive(Default)]
struct Lab {
    postgres: Option<servers::Postgres>,
    nats: Option<nats::Nats>,
    services: Option<services::Services>,
}

impl Lab {
    async fn stop(&mut self) {
        if let Some(services) = &mut self.services {
            services.stop_all().await;
        }
        if let Some(nats) = &mut self.nats {
            nats.stop().await;
        }
        if let Some(postgres) = &self.postgres {
            postgres.stop().await;
        }
    }

    /// Directories of the run kept outside its own.
    fn outside(&self) -> Vec<PathBuf> {
        self.postgres
            .as_ref()
            .map(|postgres| postgres.outside().to_vec())
            .unwrap_or_default()
    }
}

/// Runs the whole sequence under `data_dir`; fails when a check fails.
pub async fn run(data_dir: &Path, options: &ChaosOptions) -> anyhow::Result<()> {
    options.validate()?;
    // Before anything starts: the most likely mistake is unbuilt binaries.
    let binaries = services::binaries()?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let data_dir = std::path::absolute(data_dir)
        .with_context(|| format!("resolving {}", data_dir.display()))?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let dir = data_dir.join(format!("chaos-{stamp}"));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let logs = dir.join("logs");
    std::fs::create_dir(&logs)?;
    println!("chaos run in {}", dir.display());

    let mut lab = Lab::default();
    let outcome = tokio::select! {
        outcome = Box::pin(sequence(&mut lab, &binaries, &dir, &logs, stamp, options)) => outcome,
        _ = gendan_runtime::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
    };
    lab.stop().await;

    let passed = matches!(&outcome, Ok(results) if results.iter().all(checks::Check::passed));
    if passed && !options.keep {
        let _ = std::fs::remove_dir_all(&dir);
        for outside in lab.outside() {
            let _ = std::fs::remove_dir_all(outside);
        }
    } else {
        println!("data and logs kept in {}", dir.display());
        if let Some(postgres) = &lab.postgres {
            println!("PostgreSQL's log: {}", postgres.log().display());
        }
    }
    let results = outcome?;
    let failed = results.iter().filter(|check| !check.passed()).count();
    if failed > 0 {
        bail!("{failed} of {} chaos checks failed", results.len());
    }
    Ok(())
}

/// Servers, services, orders, faults, closure, re-send, checks.
async fn sequence(
    lab: &mut Lab,
    binaries: &[(&'static str, PathBuf)],
    dir: &Path,
    logs: &Path,
    stamp: u64,
    options: &ChaosOptions,
) -> anyhow::Result<Vec<checks::Check>> {
    let started = Instant::now();
    let postgres = lab
        .postgres
        .insert(servers::Postgres::prepare(dir, stamp).await?);
    postgres.launch().await.context("starting PostgreSQL")?;
    let nats = lab
        .nats
        .insert(nats::Nats::prepare(dir, logs, options.cluster)?);
    nats.launch().await.context("starting NATS")?;
    println!(
        "private PostgreSQL at {}, {} NATS at {}",
        postgres.url(),
        if options.cluster {
            "a cluster of three"
        } else {
            "one"
        },
        nats.url()
    );

    let settings = services::Settings {
        database_url: postgres.url(),
        nats_url: nats.url(),
        stream_replicas: nats.stream_replicas(),
        command_timeout_secs: options.command_timeout_secs,
    };
    let services = lab.services.insert(services::Services::new(
        binaries,
        logs,
        options.replicas,
        settings.clone(),
    )?);
    services.start_all().await?;
    println!(
        "{} service processes answering their health checks after {:.1} s",
        services.count(),
        started.elapsed().as_secs_f64()
    );

    let ports = Ports {
        orders: services.port("orders"),
        production: services.port("production"),
        procurement: services.port("procurement"),
        quality: services.port("quality"),
        logistics: services.port("logistics"),
        finance: services.port("finance"),
        saga: services.port("saga"),
    };
    let clients = Clients::connect(&ports).await?;
    sim::seed_catalog(&clients)
        .await
        .context("loading the catalogue")?;
    let factories = orders::size_factory(&clients, options.orders).await?;
    if factories > 1 {
        println!(
            "work centres sized for {} orders at once ({factories} × the demo factory)",
            factories * 100
        );
    }
    let bus = Bus::connect(&settings.nats_url, "gendan-chaos").await?;
    let simulator = Simulator::start(
        bus.clone(),
        clients.clone(),
        SimOptions {
            day: Duration::from_millis(options.day_ms),
            seed: options.seed,
            exceptions: options.exceptions,
            ..Default::default()
        },
    )
    .await?;
    let plan = faults::Plan {
        period: Duration::from_secs(options.faults_secs),
        kill_every: Duration::from_secs(options.kill_every_secs),
        nats_crash: !options.no_nats_crash,
        postgres_crash: !options.no_postgres_crash,
        sigstop: options.sigstop,
        command_timeout: Duration::from_secs(options.command_timeout_secs),
    };
    let mut rng = Lcg::new(options.seed);
    // Orders arrive over the first two thirds of the faults, so the faults
    // find orders in every phase.
    println!(
        "creating {} orders over {} s of faults",
        options.orders,
        options.faults_secs * 2 / 3
    );
    let spread = plan.period * 2 / 3;
    let (created, injected) = tokio::join!(
        orders::create_spread(&clients, options.seed, options.orders, spread),
        faults::inject(&plan, &mut rng, services, nats, postgres),
    );
    let (created, injected) = (created?, injected?);
    let order_ids: HashSet<String> = created.iter().cloned().collect();
    println!("{} orders created", created.len());

    println!("waiting for every order to close");
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(&settings.database_url)?;
    let bound = Duration::from_secs(options.timeout_secs);
    let closure = progress::wait_closed(&pool, services, created.len(), bound).await?;
    println!(
        "{}/{} orders closed {:.1} s after the faults{}",
        closure.closed,
        created.len(),
        closure.waited.as_secs_f64(),
        closure
            .reason
            .as_deref()
            .map(|reason| format!(": {reason}"))
            .unwrap_or_default()
    );
    // The world outside is quiet from here: only gendan answers.
    let world = simulator.stop().await?;

    let mut resent = resend::Resent::default();
    let mut dead_letters_before_resend = None;
    if closure.all {
        println!("waiting until nothing is in flight, then sending every saga command again");
        let settled = resend::wait_quiet(&pool, &bus, services, bound).await?;
        if !settled.reached {
            println!("  still busy: {}", settled.busy);
        }
        dead_letters_before_resend = checks::dead_letters(&bus).await.ok();
        resent = resend::resend(&bus, &order_ids).await?;
        println!(
            "re-sent {} saga commands twice each ({} messages): as delivered again, and as sent again with a new event id",
            resent.commands, resent.published
        );
    } else {
        println!("not every order closed: no re-send");
    }
    // Orders left open are stalled or stuck, not busy: a shorter look.
    let quiet_bound = if closure.all {
        bound
    } else {
        bound.min(Duration::from_secs(120))
    };
    let quiet = resend::wait_quiet(&pool, &bus, services, quiet_bound).await?;

    println!("checks:");
    let results = checks::run(&checks::Inputs {
        pool: &pool,
        bus: &bus,
        created: created.len(),
        closure: &closure,
        quiet: &quiet,
        dead_letters_before_resend,
    })
    .await;

    let ever_stalled = checks::count(&pool, checks::EVER_STALLED)
        .await
        .map(|n| n.to_string())
        .unwrap_or_else(|err| format!("unknown ({err:#})"));
    println!(
        "summary: {} orders; faults injected: {} service kills, {} NATS kills, {} PostgreSQL crashes, {} SIGSTOPs; \
         {} unplanned process exits; sagas stalled at some point: {ever_stalled}; {} commands re-sent ({} messages); \
         simulator errors {}; {:.1} s",
        created.len(),
        injected.service_kills,
        injected.nats_kills,
        injected.postgres_crashes,
        injected.sigstops,
        services.unplanned_exits(),
        resent.commands,
        resent.published,
        world.errors,
        started.elapsed().as_secs_f64()
    );
    pool.close().await;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        chaos: super::ChaosOptions,
    }

    #[test]
    fn the_defaults_are_a_short_run_and_bad_values_are_named() {
        let defaults = Cli::parse_from(["chaos"]).chaos;
        assert!(defaults.validate().is_ok());
        assert_eq!((defaults.orders, defaults.faults_secs), (50, 60));
        for (option, value) in [
            ("--replicas", "4"),
            ("--orders", "0"),
            ("--timeout-secs", "5"),
        ] {
            let refused = Cli::parse_from(["chaos", option, value])
                .chaos
                .validate()
                .unwrap_err()
                .to_string();
            assert!(refused.contains(&format!("{option} {value}")), "{refused}");
        }
    }
}
