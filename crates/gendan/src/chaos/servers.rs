//! The private PostgreSQL a chaos run may break: a cluster of its own
//! (`initdb` + `pg_ctl`) under the run's directory, on a free port, so a
//! crash touches no server the machine already runs. A crash is
//! `pg_ctl -m immediate stop`: no checkpoint, crash recovery at the next
//! start, as after the process dies. Also the process helpers the other
//! modules share: logs appended across restarts, SIGKILL and reap.
//!
//! `initdb` refuses to run as root, so as root both PostgreSQL tools run as
//! the `postgres` user (`runuser`) on directories handed to it; when that
//! user cannot reach the run's directory (under `/root`, say), the cluster
//! lives in the temporary directory instead.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::Connection;
use tokio::process::{Child, Command};

use crate::local::{find_binary, free_port, postgres_bin_dirs};

/// How long a server may take to come up (crash recovery included) on a
/// loaded machine.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// The database user of the private cluster.
const USER: &str = "gendan";

/// Whether this process runs as root. `id -u` rather than `geteuid()`: the
/// workspace forbids unsafe code.
pub(crate) fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A free port on 127.0.0.1 not handed out before in this run: the OS may
/// offer a port again once its probe is released, and the servers and the
/// services bind theirs only later.
pub(crate) fn fresh_port() -> anyhow::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .map_err(|_| anyhow::anyhow!("the port list is poisoned"))?;
    for _ in 0..100 {
        let port = free_port()?;
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return Ok(port);
        }
    }
    bail!("no fresh free port after 100 tries")
}

/// Stdout and stderr for a child, both appended to `path`, so a process
/// started again continues its predecessor's log.
pub(crate) fn log_file(path: &Path) -> anyhow::Result<(Stdio, Stdio)> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let copy = file.try_clone()?;
    Ok((Stdio::from(file), Stdio::from(copy)))
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

/// A private PostgreSQL cluster.
pub(crate) struct Postgres {
    pg_ctl: PathBuf,
    data: PathBuf,
    log: PathBuf,
    /// The server's options, the same at every start.
    options: String,
    port: u16,
    as_postgres: bool,
    /// Directories outside the run's own: the socket directory, and the
    /// cluster when the `postgres` user cannot reach the run's directory.
    outside: Vec<PathBuf>,
}

impl Postgres {
    /// Initialises a cluster under `dir` (not started yet).
    pub(crate) async fn prepare(dir: &Path, stamp: u64) -> anyhow::Result<Self> {
        let bin_dirs = postgres_bin_dirs();
        let (Some(initdb), Some(pg_ctl)) = (
            find_binary("initdb", &bin_dirs),
            find_binary("pg_ctl", &bin_dirs),
        ) else {
            bail!(
                "initdb and pg_ctl are not installed: install PostgreSQL 14+ (e.g. `apt install postgresql`)"
            );
        };
        let as_postgres = running_as_root();
        let unique = format!("gendan-chaos-{stamp}-{}", std::process::id());
        // A Unix socket path must stay under about 100 bytes: keep it short,
        // in the temporary directory, whatever the run's directory is.
        let socket = std::env::temp_dir().join(format!("{unique}-socket"));
        std::fs::create_dir_all(&socket)?;
        let mut outside = vec![socket.clone()];
        let mut base = dir.join("postgres");
        std::fs::create_dir_all(&base)?;
        if as_postgres {
            make_traversable(dir)?;
            hand_to_postgres(&socket).await?;
            hand_to_postgres(&base).await?;
            if !postgres_can_write(&base).await {
                base = std::env::temp_dir().join(format!("{unique}-postgres"));
                std::fs::create_dir_all(&base)?;
                hand_to_postgres(&base).await?;
                outside.push(base.clone());
                if !postgres_can_write(&base).await {
                    bail!(
                        "the postgres user cannot write to {} (initdb refuses to run as root)",
                        base.display()
                    );
                }
            }
        }
        let port = fresh_port()?;
        let postgres = Postgres {
            pg_ctl,
            data: base.join("data"),
            log: base.join("postgres.log"),
            options: format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=on -c max_connections=400",
                socket.display()
            ),
            port,
            as_postgres,
            outside,
        };
        let output = postgres
            .tool(&initdb)
            .arg("-D")
            .arg(&postgres.data)
            .args(["-U", USER, "--auth=trust", "--no-sync"])
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {}", initdb.display()))?;
        if !output.status.success() {
            bail!("initdb failed: {}", stderr_of(&output));
        }
        Ok(postgres)
    }

    /// `program` as the user who owns the cluster, from `/`: the tools look
    /// up their own directory, which fails in a working directory the
    /// `postgres` user cannot enter (every path given them is absolute).
    fn tool(&self, program: &Path) -> Command {
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.current_dir("/");
        command
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// Where the server writes its log.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// Starts the server (the same port and options every time) and waits
    /// until it accepts connections over TCP, as the services connect.
    pub(crate) async fn launch(&self) -> anyhow::Result<()> {
        let output = self
            .tool(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &self.options, "-l"])
            .arg(&self.log)
            .args(["-w", "-t", "120", "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {}", self.pg_ctl.display()))?;
        if !output.status.success() {
            bail!(
                "pg_ctl start failed: {}; see {}",
                stderr_of(&output),
                self.log.display()
            );
        }
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let connect = sqlx::PgConnection::connect(&self.url());
            if let Ok(Ok(connection)) = tokio::time::timeout(Duration::from_secs(3), connect).await
            {
                let _ = connection.close().await;
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "PostgreSQL did not accept connections on port {} within {READY_WITHIN:?}; see {}",
                    self.port,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops the server without a checkpoint: what is not in the WAL is
    /// lost, and the next start runs crash recovery.
    pub(crate) async fn crash(&self) -> anyhow::Result<()> {
        let output = self
            .tool(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-t", "60", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
            .await?;
        if !output.status.success() {
            bail!("pg_ctl -m immediate stop failed: {}", stderr_of(&output));
        }
        Ok(())
    }

    /// Stops the server if it runs (the end of the run).
    pub(crate) async fn stop(&self) {
        let stop = self
            .tool(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", "60", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(90), stop).await;
    }

    /// The directories it keeps outside the run's directory.
    pub(crate) fn outside(&self) -> &[PathBuf] {
        &self.outside
    }
}

fn make_traversable(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("opening {} to the postgres user", dir.display()))
}

async fn hand_to_postgres(dir: &Path) -> anyhow::Result<()> {
    make_traversable(dir)?;
    let status = Command::new("chown")
        .args(["-R", "postgres"])
        .arg(dir)
        .status()
        .await?;
    if !status.success() {
        bail!(
            "cannot hand {} to the postgres user (initdb refuses to run as root)",
            dir.display()
        );
    }
    Ok(())
}

async fn postgres_can_write(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-w"])
        .arg(dir)
        .current_dir("/")
        .status()
        .await
        .is_ok_and(|status| status.success())
}

/// SIGKILL (what `start_kill` sends), then reaps the process so its ports
/// are free again; its pid.
pub(crate) async fn kill(mut child: Child) -> Option<u32> {
    let pid = child.id();
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    pid
}
