//! The seven services as processes of their own, as a deployment runs them:
//! each binary (`gendan-orders`, ...) from beside `gendan`, its settings in
//! `GENDAN_*` variables, its output appended to `logs/<service>-<replica>.log`.
//! A chaos run kills them with SIGKILL (no shutdown hook runs, as in a crash
//! or an OOM kill), freezes one with SIGSTOP (a long pause of a process that
//! still holds its connections), and starts them again on the same port.
//! A process that exits on its own (one started while PostgreSQL or NATS was
//! down gives up) is started again too, and counted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::servers::{fresh_port, kill, log_file};

/// Every service, in the order they start.
pub(crate) const SERVICES: [&str; 7] = [
    "orders",
    "production",
    "procurement",
    "quality",
    "logistics",
    "finance",
    "saga",
];

/// How long a starting service may take to answer its health check on a
/// loaded machine, its migrations included.
const HEALTHY_WITHIN: Duration = Duration::from_secs(60);

/// A process started less than this long ago is not started again yet, so
/// one that cannot start (its server down) does not spin.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// The settings every service process gets.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub database_url: String,
    pub nats_url: String,
    pub stream_replicas: usize,
    /// The saga's `GENDAN_SAGA__COMMAND_TIMEOUT_SECS`: how soon a lost
    /// command is sent again.
    pub command_timeout_secs: u64,
}

struct Process {
    service: &'static str,
    replica: usize,
    port: u16,
    binary: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    spawned_at: Instant,
}

/// Every service process of the run.
pub(crate) struct Services {
    settings: Settings,
    replicas: usize,
    processes: Vec<Process>,
    unplanned_exits: u32,
}

/// The service binaries, from the directory of the running `gendan`.
pub(crate) fn binaries() -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    let exe = std::env::current_exe().context("locating the gendan binary")?;
    let dir = exe
        .parent()
        .context("the gendan binary is in no directory")?
        .to_path_buf();
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for service in SERVICES {
        let binary = dir.join(format!("gendan-{service}"));
        if binary.is_file() {
            found.push((service, binary));
        } else {
            missing.push(format!("gendan-{service}"));
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} not found in {}: build the service binaries beside gendan with `cargo build --workspace --bins` (with --release for a release gendan)",
            missing.join(", "),
            dir.display()
        );
    }
    Ok(found)
}

impl Services {
    /// `replicas` processes of each service, each on a free port (nothing
    /// started yet).
    pub(crate) fn new(
        binaries: &[(&'static str, PathBuf)],
        logs: &Path,
        replicas: usize,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let mut processes = Vec::with_capacity(binaries.len() * replicas);
        for replica in 0..replicas {
            for (service, binary) in binaries {
                processes.push(Process {
                    service,
                    replica,
                    port: fresh_port()?,
                    binary: binary.clone(),
                    log: logs.join(format!("{service}-{replica}.log")),
                    child: None,
                    spawned_at: Instant::now(),
                });
            }
        }
        Ok(Services {
            settings,
            replicas,
            processes,
            unplanned_exits: 0,
        })
    }

    /// Starts every process and waits until each answers its health check.
    /// The first replica of every service starts alone, so one process per
    /// schema runs its migrations.
    pub(crate) async fn start_all(&mut self) -> anyhow::Result<()> {
        for replica in 0..self.replicas {
            let wave: Vec<usize> = self
                .processes
                .iter()
                .enumerate()
                .filter(|(_, process)| process.replica == replica)
                .map(|(index, _)| index)
                .collect();
            for &index in &wave {
                self.spawn(index)?;
            }
            self.wait_healthy(&wave).await?;
        }
        Ok(())
    }

    /// How many processes there are.
    pub(crate) fn count(&self) -> usize {
        self.processes.len()
    }

    /// "procurement", or "procurement#1" when services run several replicas.
    pub(crate) fn name(&self, index: usize) -> String {
        match self.processes.get(index) {
            Some(process) if self.replicas > 1 => {
                format!("{}#{}", process.service, process.replica)
            }
            Some(process) => process.service.to_owned(),
            None => format!("process {index}"),
        }
    }

    /// The gRPC port of `service`'s first replica (what the simulators call).
    pub(crate) fn port(&self, service: &str) -> u16 {
        self.processes
            .iter()
            .find(|process| process.service == service && process.replica == 0)
            .map(|process| process.port)
            .unwrap_or(0)
    }

    /// The pid of process `index`, while it runs.
    pub(crate) fn pid(&self, index: usize) -> Option<u32> {
        self.processes.get(index)?.child.as_ref()?.id()
    }

    /// Exits nobody caused on purpose.
    pub(crate) fn unplanned_exits(&self) -> u32 {
        self.unplanned_exits
    }

    /// Starts process `index` (again) with its port and settings; its pid.
    pub(crate) fn spawn(&mut self, index: usize) -> anyhow::Result<u32> {
        let settings = &self.settings;
        let process = self
            .processes
            .get_mut(index)
            .with_context(|| format!("no service process {index}"))?;
        let prefix = format!("GENDAN_{}__", process.service.to_ascii_uppercase());
        let (stdout, stderr) = log_file(&process.log)?;
        let child = Command::new(&process.binary)
            // The caller's settings file must not move a service to another
            // schema or port than the checks read.
            .env_remove("GENDAN_CONFIG")
            .env("GENDAN_DATABASE_URL", &settings.database_url)
            .env("GENDAN_NATS_URL", &settings.nats_url)
            .env(
                "GENDAN_STREAM_REPLICAS",
                settings.stream_replicas.to_string(),
            )
            .env("GENDAN_DB_MAX_CONNECTIONS", "6")
            .env(
                "GENDAN_SAGA__COMMAND_TIMEOUT_SECS",
                settings.command_timeout_secs.to_string(),
            )
            .env(
                format!("{prefix}GRPC_ADDR"),
                format!("127.0.0.1:{}", process.port),
            )
            .env(format!("{prefix}SCHEMA"), process.service)
            .env("RUST_LOG", "warn")
            .env("GENDAN_LOG_FORMAT", "compact")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", process.binary.display()))?;
        let pid = child.id().unwrap_or_default();
        process.child = Some(child);
        process.spawned_at = Instant::now();
        Ok(pid)
    }

    /// SIGKILLs process `index` and reaps it; its pid, when it ran.
    pub(crate) async fn kill(&mut self, index: usize) -> Option<u32> {
        let child = self.processes.get_mut(index)?.child.take()?;
        kill(child).await
    }

    /// Sends `signal` (`STOP`, `CONT`) to process `index` with kill(1): the
    /// workspace forbids the unsafe `libc::kill`. Its pid.
    pub(crate) async fn signal(&self, index: usize, signal: &str) -> anyhow::Result<u32> {
        let pid = self
            .pid(index)
            .with_context(|| format!("{} is not running", self.name(index)))?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .await
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{signal} {pid} failed");
        }
        Ok(pid)
    }

    /// The exit status of process `index`, if it ended on its own and was
    /// started long enough ago to be started again.
    fn ended(&mut self, index: usize) -> Option<std::process::ExitStatus> {
        let process = self.processes.get_mut(index)?;
        if process.spawned_at.elapsed() < RESTART_AFTER {
            return None;
        }
        process.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Starts again every process that ended on its own; one line for each.
    pub(crate) fn restart_ended(&mut self) -> anyhow::Result<Vec<String>> {
        let mut lines = Vec::new();
        for index in 0..self.count() {
            let Some(status) = self.ended(index) else {
                continue;
            };
            self.unplanned_exits += 1;
            let pid = self.spawn(index)?;
            lines.push(format!(
                "{} ended on its own ({status}), started again (pid {pid})",
                self.name(index)
            ));
        }
        Ok(lines)
    }

    /// Waits until every process of `indices` answers the standard gRPC
    /// health check with SERVING, starting again any that ends meanwhile.
    async fn wait_healthy(&mut self, indices: &[usize]) -> anyhow::Result<()> {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        let mut waiting: Vec<usize> = indices.to_vec();
        loop {
            let ports: Vec<u16> = waiting
                .iter()
                .filter_map(|&index| self.processes.get(index).map(|p| p.port))
                .collect();
            let answers = futures::future::join_all(ports.iter().map(|&port| serving(port))).await;
            waiting = waiting
                .into_iter()
                .zip(answers)
                .filter(|(_, serving)| !serving)
                .map(|(index, _)| index)
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            for &index in &waiting {
                if self.ended(index).is_some() {
                    self.unplanned_exits += 1;
                    self.spawn(index)?;
                }
            }
            if Instant::now() > deadline {
                let names: Vec<String> = waiting
                    .iter()
                    .map(|&index| {
                        let log = self
                            .processes
                            .get(index)
                            .map(|p| p.log.display().to_string())
                            .unwrap_or_default();
                        format!("{} (log {log})", self.name(index))
                    })
                    .collect();
                bail!(
                    "no answer to the gRPC health check within {HEALTHY_WITHIN:?} from {}",
                    names.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// SIGKILLs every process (the end of the run).
    pub(crate) async fn stop_all(&mut self) {
        for process in &mut self.processes {
            if let Some(child) = process.child.take() {
                kill(child).await;
            }
        }
    }
}

/// Whether 127.0.0.1:`port` answers `grpc.health.v1.Health/Check` for the
/// whole server with SERVING.
async fn serving(port: u16) -> bool {
    let check = async {
        let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .ok()?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(3))
            .connect()
            .await
            .ok()?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?;
        Some(response.into_inner().status == ServingStatus::Serving as i32)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), check).await,
        Ok(Some(true))
    )
}
