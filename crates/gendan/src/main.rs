//! `gendan`: the whole system in one process, its demo and benchmark, the
//! simulators, and the merchandiser's command line.
//!
//! - `gendan up` runs every service (orders, production, procurement,
//!   quality, logistics, finance, saga) on its port until Ctrl-C.
//! - `gendan demo` runs the same services on free ports, loads the demo
//!   catalogue, lets the simulators play the world outside, pushes sample
//!   orders through all twelve phases with a live view, and prints each
//!   order's closing summary.
//! - `gendan bench` does the same at full speed, a fixed number of orders
//!   open at a time, and prints what it costs; `gendan bench mes` measures
//!   MES reports into production.
//! - `gendan sim` runs the simulators against services started elsewhere.
//! - `gendan chaos` runs every service as its own process on private
//!   servers, kills and crashes them while the simulators drive orders, and
//!   checks that nothing was lost or done twice (`docs/chaos.md`).
//!
//! `up`, `demo` and `bench` start a private nats-server / PostgreSQL when
//! the configured ones do not answer (see `local`). The other subcommands
//! (`orders`, `customers`, `payments`, `finance`, `inspections`,
//! `decisions`, `sagas`) talk to running services over gRPC; see
//! `gendan::cli`.

use gendan::cli::{self, Format, Output};
use gendan::{
    bench, chaos, customers_cli, deadletters, demo, finance_cli, local, register, sim, stack,
};

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gendan",
    version,
    about = "Order follow-up for factories and export manufacturers"
)]
struct Cli {
    /// Where private servers keep their data when they must be started.
    #[arg(
        long,
        env = "GENDAN_DATA_DIR",
        default_value = ".gendan",
        global = true
    )]
    data_dir: PathBuf,
    #[command(flatten)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in this process until stopped.
    Up,
    /// Domestic and export sample orders through all twelve phases, with the
    /// simulators playing the world outside, a live view and the summaries.
    Demo {
        #[arg(long, default_value_t = 10)]
        orders: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Real milliseconds per simulated day.
        #[arg(long, default_value_t = 20)]
        day_ms: u64,
        /// Give up (exit 1) when the orders are not closed after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Orders that go well only: no failed inspections.
        #[arg(long)]
        no_exceptions: bool,
        /// Where the web board listens while the demo runs (default
        /// `GENDAN_BOARD__HTTP_ADDR` or 127.0.0.1:8080; a free port instead,
        /// with a note, when this one is taken).
        #[arg(long)]
        board_addr: Option<String>,
        /// Keep the services and the board up when the demo is done, until
        /// Ctrl-C, to look around on the board.
        #[arg(long)]
        stay: bool,
    },
    /// N orders through the whole happy path at full speed, `concurrency`
    /// open at a time: throughput, latencies, CPU, statements, transactions
    /// and messages per order. `bench mes` measures MES reports instead.
    Bench {
        #[command(subcommand)]
        mode: Option<BenchMode>,
        /// Orders to create in all.
        #[arg(long, default_value_t = 100)]
        orders: usize,
        /// Orders open at a time: a new one is created as one completes.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Give up (exit 1, showing where the unfinished work stands) after
        /// this many seconds.
        #[arg(long, default_value_t = 900, global = true)]
        timeout_secs: u64,
        #[arg(long, default_value_t = 2026, global = true)]
        seed: u64,
    },
    /// Run the simulators (MES, suppliers, QA, warehouse, carrier, customer,
    /// bank) against running services until stopped.
    Sim {
        /// Real milliseconds per simulated day.
        #[arg(long, default_value_t = 1000)]
        day_ms: u64,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Load the demo catalogue first.
        #[arg(long)]
        seed_catalog: bool,
        /// Play the seeded mix of exceptions (failed final inspections).
        #[arg(long)]
        exceptions: bool,
    },
    /// Create orders, the tracking table, one order's timeline, acceptance,
    /// claims, summary.
    #[command(subcommand)]
    Orders(cli::OrdersCommand),
    /// The customer master: list, show one, create or replace from a file.
    #[command(subcommand)]
    Customers(customers_cli::CustomersCommand),
    /// Record payments; show an order's receivable.
    #[command(subcommand)]
    Payments(cli::PaymentsCommand),
    /// Exchange rates, the inspection rate, an order's cost estimate and
    /// cost ledger.
    #[command(subcommand)]
    Finance(finance_cli::FinanceCommand),
    /// Open inspections; record results.
    #[command(subcommand)]
    Inspections(cli::InspectionsCommand),
    /// Decisions waiting for a person; answer them.
    #[command(subcommand)]
    Decisions(cli::DecisionsCommand),
    /// Stalled workflows: retry, skip; cancel an order.
    #[command(subcommand)]
    Sagas(cli::SagasCommand),
    /// The exception register: list with filters, show one.
    #[command(subcommand)]
    Exceptions(register::ExceptionsCommand),
    /// Messages a consumer gave up on, with the reason; replay one
    /// (also `gendan dlq`).
    #[command(subcommand, alias = "dlq")]
    Deadletters(deadletters::DeadLettersCommand),
    /// Every service as its own process on a private PostgreSQL and NATS:
    /// orders driven by the simulators while processes are killed and the
    /// servers crash, then checks that nothing was lost or done twice.
    Chaos(chaos::ChaosOptions),
}

/// Measurements `gendan bench` makes instead of orders.
#[derive(Subcommand)]
enum BenchMode {
    /// A burst of MES quantity reports on one work order: reports per
    /// second ingested, and the latency until production's GetWorkOrder
    /// shows them.
    Mes {
        /// Quantity reports to publish.
        #[arg(long, default_value_t = 1000)]
        events: usize,
        /// Reports per second; 0 publishes as fast as they are acknowledged.
        #[arg(long, default_value_t = 0)]
        rate: u32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Commands against running services need no servers of their own.
    let output = cli.format.output;
    match cli.command {
        Command::Orders(command) => cli::orders(command, output).await,
        Command::Customers(command) => customers_cli::customers(command, output).await,
        Command::Payments(command) => cli::payments(command, output).await,
        Command::Finance(command) => finance_cli::finance(command, output).await,
        Command::Inspections(command) => cli::inspections(command, output).await,
        Command::Decisions(command) => cli::decisions(command, output).await,
        Command::Sagas(command) => cli::sagas(command, output).await,
        Command::Exceptions(command) => register::exceptions(command, output).await,
        Command::Deadletters(command) => deadletters::deadletters(command, output).await,
        // It starts servers of its own, which it is allowed to crash.
        Command::Chaos(options) => run_chaos(cli.data_dir, options).await,
        Command::Sim {
            day_ms,
            seed,
            seed_catalog,
            exceptions,
        } => run_sim(day_ms, seed, seed_catalog, exceptions).await,
        command => run_servers(cli.data_dir, command, output).await,
    }
}

async fn run_servers(data_dir: PathBuf, command: Command, output: Output) -> anyhow::Result<()> {
    let demo = matches!(command, Command::Demo { .. } | Command::Bench { .. });
    // The demo's own output is the progress table; keep logs to warnings.
    let default_filter = if demo {
        "warn"
    } else {
        gendan_telemetry::DEFAULT_FILTER
    };
    let _telemetry = gendan_telemetry::init_with(
        "gendan",
        gendan_telemetry::LogFormat::from_env(),
        default_filter,
    )?;

    let mut common = gendan_settings::Common::from_env()?;
    let mut servers = local::LocalServers::default();
    let (nats_url, database_url) = servers
        .ensure(&common.nats_url, common.database_url.expose(), &data_dir)
        .await?;
    common.nats_url = nats_url;
    common.database_url = gendan_settings::Secret::new(database_url);

    let result = match command {
        Command::Up => up(&common).await,
        Command::Demo {
            orders,
            concurrency,
            day_ms,
            timeout_secs,
            seed,
            no_exceptions,
            board_addr,
            stay,
        } => {
            let options = demo::DemoOptions {
                orders,
                concurrency,
                timeout: Duration::from_secs(timeout_secs),
                seed,
                day: Duration::from_millis(day_ms),
                exceptions: !no_exceptions,
            };
            let board_addr = board_addr.unwrap_or_else(gendan_board::Settings::http_addr_from_env);
            run_demo(&common, &options, &board_addr, stay).await
        }
        Command::Bench {
            mode,
            orders,
            concurrency,
            timeout_secs,
            seed,
        } => {
            let timeout = Duration::from_secs(timeout_secs);
            let measurement = match mode {
                None => bench::Measurement::Orders(bench::BenchOptions {
                    orders,
                    concurrency,
                    timeout,
                    seed,
                    output,
                }),
                Some(BenchMode::Mes { events, rate }) => {
                    bench::Measurement::Mes(bench::MesOptions {
                        events,
                        rate,
                        timeout,
                        output,
                    })
                }
            };
            run_bench(&common, &measurement).await
        }
        _ => Ok(()),
    };
    servers.stop().await;
    result
}

async fn up(common: &gendan_settings::Common) -> anyhow::Result<()> {
    let saga_options = gendan_saga::Options::from_env()?;
    let options = stack::StackOptions::with_saga(saga_options);
    // One process, one registry: every service's series on one endpoint.
    let stop = gendan_runtime::cancel_on_shutdown();
    let metrics_addr = gendan_settings::string("GENDAN_METRICS_ADDR", "127.0.0.1:9100");
    let metrics_port = gendan_metrics::spawn(&metrics_addr, &stop).await?;
    let stack = stack::Stack::start(common, &stack::Addrs::from_env(), options).await?;
    let listening: Vec<String> = stack
        .ports()
        .filter(|(service, _)| *service != stack::BOARD)
        .map(|(service, port)| format!("{service} :{port}"))
        .collect();
    println!("gendan is up: {} (Ctrl-C stops)", listening.join(", "));
    if let Some(url) = stack.board_url() {
        println!("the board: {url}");
    }
    println!("metrics: http://127.0.0.1:{metrics_port}/metrics");
    stack.run_until(stop).await
}

async fn run_demo(
    common: &gendan_settings::Common,
    options: &demo::DemoOptions,
    board_addr: &str,
    stay: bool,
) -> anyhow::Result<()> {
    // The demo's business calendar, which it moves forward to show a
    // dunning reminder (ADR 0009); reminders are looked for often.
    let calendar = gendan_runtime::clock::ShiftedClock::new();
    let stack_options = stack::StackOptions {
        calendar: std::sync::Arc::new(calendar.clone()),
        dunning_poll: Some(Duration::from_millis(250)),
        ..Default::default()
    };
    let addrs = stack::Addrs::ephemeral().with_board(stack::board_addr_or_free(board_addr));
    let stack = stack::Stack::start(common, &addrs, stack_options).await?;
    if let Some(url) = stack.board_url() {
        println!("the board: {url} (the demo's orders move there as they go)");
    }
    let bus = gendan_messaging::Bus::connect(&common.nats_url, "gendan-demo").await?;
    let result = demo::run(&bus, &stack, options, calendar)
        .await
        .context("demo");
    if stay && result.is_ok() {
        if let Some(url) = stack.board_url() {
            println!("\nthe demo is done; the board stays up at {url} (Ctrl-C stops)");
        }
        return stack.run_until(gendan_runtime::cancel_on_shutdown()).await;
    }
    let stopped = stack.shutdown().await;
    result?;
    stopped
}

async fn run_bench(
    common: &gendan_settings::Common,
    measurement: &bench::Measurement,
) -> anyhow::Result<()> {
    // The services alone: the board's event subscription is not what the
    // benchmark measures.
    let services = stack::SERVICES.map(|(service, _)| service);
    let stack = stack::Stack::start_only(
        common,
        &stack::Addrs::ephemeral(),
        Default::default(),
        &services,
    )
    .await?;
    let bus = gendan_messaging::Bus::connect(&common.nats_url, "gendan-bench").await?;
    let result = bench::run(&bus, &stack, common.database_url.expose(), measurement)
        .await
        .context("bench");
    let stopped = stack.shutdown().await;
    result?;
    stopped
}

/// `gendan chaos`: its own servers and service processes, faults, checks.
async fn run_chaos(data_dir: PathBuf, options: chaos::ChaosOptions) -> anyhow::Result<()> {
    options.validate()?;
    // Its own output is the fault log and the checks; the simulators' and
    // its own warnings still show.
    let _telemetry = gendan_telemetry::init_with(
        "gendan-chaos",
        gendan_telemetry::LogFormat::from_env(),
        "warn",
    )?;
    Box::pin(chaos::run(&data_dir, &options)).await
}

/// The simulators against services started elsewhere (`gendan up`).
async fn run_sim(
    day_ms: u64,
    seed: u64,
    seed_catalog: bool,
    exceptions: bool,
) -> anyhow::Result<()> {
    // The simulators report what failed (an actor that gave up) in the log:
    // it must exist before they start.
    let _telemetry = gendan_telemetry::init("gendan-sim")?;
    let common = gendan_settings::Common::from_env()?;
    let addrs = stack::Addrs::from_env();
    let port = |service: &str| -> anyhow::Result<u16> {
        let addr = addrs.of(service);
        addr.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| {
                format!(
                    "GENDAN_{}__GRPC_ADDR={addr:?} has no port",
                    service.to_ascii_uppercase()
                )
            })
    };
    let ports = sim::Ports {
        orders: port("orders")?,
        production: port("production")?,
        procurement: port("procurement")?,
        quality: port("quality")?,
        logistics: port("logistics")?,
        finance: port("finance")?,
        saga: port("saga")?,
    };
    let clients = sim::Clients::connect(&ports).await?;
    if seed_catalog {
        sim::seed_catalog(&clients).await?;
    }
    let bus = gendan_messaging::Bus::connect(&common.nats_url, "gendan-sim").await?;
    let handle = sim::Simulator::start(
        bus,
        clients,
        sim::SimOptions {
            day: Duration::from_millis(day_ms),
            seed,
            exceptions,
            ..Default::default()
        },
    )
    .await?;
    println!("simulators running, one simulated day = {day_ms} ms (Ctrl-C stops)");
    gendan_runtime::shutdown_signal().await;
    let stats = handle.stop().await?;
    println!("{stats:?}");
    Ok(())
}
