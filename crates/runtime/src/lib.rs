//! The parts every service process is made of, so each service's
//! `Application` says only what is its own.
//!
//! - [`Foundation::connect`]: the service's pool on its schema with the
//!   messaging and service migrations applied, the NATS connection with the
//!   streams declared, and the bound gRPC listener; servers that are not
//!   ready yet (restarting, electing a leader) are waited for a minute.
//! - [`Supervisor`]: runs the service's long-running loops (gRPC server,
//!   outbox relay, consumers, timers) on one child cancellation token. Any
//!   loop that ends stops the others, because a service missing one of them
//!   is not whole; the first failure is what the service returns.
//! - [`cancel_on_shutdown`]: the token a binary runs on, cancelled by Ctrl-C
//!   or an orchestrator's SIGTERM.
//! - [`clock`]: the time services run on, which tests drive.

pub mod clock;

use std::future::Future;
use std::time::{Duration, Instant};

use gendan_messaging::{Bus, Consumer, ConsumerSettings, Handler, Relay};
use gendan_settings::ServiceSettings;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] gendan_storage::Error),
    #[error(transparent)]
    Messaging(#[from] gendan_messaging::Error),
    #[error(transparent)]
    Grpc(#[from] gendan_grpc::Error),
    #[error("{task} failed: {source}")]
    Task {
        task: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{task} panicked: {reason}")]
    Panicked { task: &'static str, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long a starting service waits for its servers before it gives up:
/// long enough for a database to finish crash recovery or a JetStream
/// cluster to elect a leader after losing a node, which a service started
/// alongside them (or restarted by an orchestrator) should ride out
/// instead of exiting.
const STARTUP_PATIENCE: Duration = Duration::from_secs(60);

/// `attempt` until it succeeds or [`STARTUP_PATIENCE`] has passed, waiting
/// 250 ms, doubling up to 5 s, between tries; each failure is logged.
async fn patiently<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut wait = Duration::from_millis(250);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) if started.elapsed() < STARTUP_PATIENCE => {
                tracing::warn!(error = %err, "{what} not ready at start-up, trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(err) => return Err(err),
        }
    }
}

/// A service's connections and listener, ready for its loops.
#[derive(Debug)]
pub struct Foundation {
    pub pool: PgPool,
    pub bus: Bus,
    pub listener: TcpListener,
    pub port: u16,
    pub schema: String,
    /// What the gRPC server takes on at once (`gendan_grpc::admission`).
    pub limits: gendan_grpc::Limits,
}

impl Foundation {
    /// Connects PostgreSQL (the service's schema), applies the messaging
    /// migrations and `migrations`, connects NATS as `service`, declares the
    /// streams and binds the gRPC listener.
    pub async fn connect(
        settings: &ServiceSettings,
        service: &str,
        migrations: Migrator,
    ) -> Result<Self> {
        let database = settings.database();
        let pool = patiently("PostgreSQL", || gendan_storage::connect(&database)).await?;
        gendan_storage::migrate(&pool, [gendan_messaging::migrator(), migrations]).await?;
        let nats_url = &settings.common.nats_url;
        let bus = patiently("NATS", || Bus::connect(nats_url, service)).await?;
        let replicas = settings.common.stream_replicas;
        patiently("JetStream", || bus.ensure_streams(replicas)).await?;
        let listener = gendan_grpc::bind(&settings.grpc_addr).await?;
        let port = listener
            .local_addr()
            .map_err(|source| gendan_grpc::Error::Bind {
                addr: settings.grpc_addr.clone(),
                source,
            })?
            .port();
        Ok(Foundation {
            pool,
            bus,
            listener,
            port,
            schema: settings.schema.clone(),
            limits: gendan_grpc::Limits {
                max_in_flight: settings.common.grpc.max_in_flight,
                max_queued: settings.common.grpc.max_queued,
                max_wait: Duration::from_millis(settings.common.grpc.queue_wait_ms),
            },
        })
    }

    /// The outbox relay of this service's schema.
    pub fn relay(&self) -> Relay {
        Relay::new(
            self.pool.clone(),
            self.bus.clone(),
            &self.schema,
            Default::default(),
        )
    }

    /// A consumer loop on this service's pool and connection.
    pub fn consumer<H: Handler>(&self, settings: ConsumerSettings, handler: H) -> Consumer<H> {
        Consumer::new(self.bus.clone(), self.pool.clone(), settings, handler)
    }
}

/// Runs a service's loops together.
pub struct Supervisor {
    service: &'static str,
    stop: CancellationToken,
    tasks: JoinSet<(&'static str, Result<()>)>,
}

impl Supervisor {
    /// Loops stop when `cancel` fires; a failing loop stops its siblings
    /// through a child token without cancelling the caller's.
    pub fn new(service: &'static str, cancel: &CancellationToken) -> Self {
        Supervisor {
            service,
            stop: cancel.child_token(),
            tasks: JoinSet::new(),
        }
    }

    /// The token the loops run on.
    pub fn token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Starts the loop `task` under `name` (named in logs and errors).
    pub fn spawn<F, E>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        self.tasks.spawn(async move {
            let result = task.await.map_err(|err| Error::Task {
                task: name,
                source: Box::new(err),
            });
            (name, result)
        });
    }

    /// Waits for every loop; the first failure is returned.
    pub async fn wait(mut self) -> Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let outcome = match joined {
                Ok((_, result)) => result,
                Err(join_error) => Err(Error::Panicked {
                    task: "a task",
                    reason: join_error.to_string(),
                }),
            };
            if let Err(err) = outcome {
                tracing::error!(service = self.service, error = %err, "service loop failed, stopping the service");
                first_error.get_or_insert(err);
            }
            // Any loop ending (even cleanly) means the service is no longer
            // whole: stop the rest rather than run half a service.
            self.stop.cancel();
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A token cancelled on Ctrl-C or SIGTERM, for a binary's main loop.
pub fn cancel_on_shutdown() -> CancellationToken {
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    cancel
}

/// Ctrl-C, or SIGTERM from an orchestrator. A signal that cannot be
/// listened for is logged and never fires.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
