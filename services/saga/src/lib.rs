//! The saga coordinator: drives every order through the workflow.
//!
//! - [`workflow`]: the phases and steps as data (what each step sends, which
//!   event completes it, what a timeout does).
//! - [`engine`]: reacts to events, starts steps, fires timeouts, parks a saga
//!   as stalled after its retries, and applies operator retry / skip; every
//!   change to one order happens under that saga's row lock.
//! - [`state`]: a saga loaded from and saved to the `saga` schema, with its
//!   outgoing commands written to the outbox in the same transaction.
//! - [`timers`]: the durable timer worker; [`clock`]: the time it runs on.
//! - [`api`]: gRPC `SagaService`.
//!
//! Data flow: `gendan.evt.>` → consumer `saga-events` → [`engine::Engine`] →
//! outbox → relay → `gendan.cmd.<service>.<command>`.

pub mod api;
pub mod clock;
pub mod effects;
pub mod engine;
pub mod state;
pub mod timers;
pub mod workflow;

use std::sync::Arc;
use std::time::Duration;

use gendan_grpc::{Code, FieldError, ServiceErrorCode};
use gendan_messaging::{
    Bus, Consumer, ConsumerSettings, Handler, HandlerError, Incoming, Relay, streams, subjects,
};
use gendan_settings::ServiceSettings;
use sqlx::{PgConnection, PgPool};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::Engine;
pub use workflow::{Timing, Workflow};

pub const SERVICE: &str = "saga";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Storage(#[from] gendan_storage::Error),
    #[error(transparent)]
    Messaging(#[from] gendan_messaging::Error),
    #[error(transparent)]
    Grpc(#[from] gendan_grpc::Error),
}

impl ServiceErrorCode for Error {
    fn code(&self) -> Code {
        match self {
            Error::Invalid(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Database(_) | Error::Storage(_) | Error::Messaging(_) => Code::Unavailable,
            Error::Grpc(_) => Code::Internal,
        }
    }
}

impl From<Error> for HandlerError {
    fn from(err: Error) -> Self {
        HandlerError::Retry(err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn validate_order_id(order_id: &str) -> Result<()> {
    if uuid::Uuid::parse_str(order_id).is_err() {
        return Err(FieldError::new(
            "order_id",
            format!("{order_id:?} is not an order id (UUID)"),
        )
        .into());
    }
    Ok(())
}

/// Options beyond the shared settings: the workflow timing and the clock.
#[derive(Clone)]
pub struct Options {
    pub timing: Timing,
    pub clock: Arc<dyn Clock>,
    pub timer_poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timing: Timing::default(),
            clock: Arc::new(SystemClock),
            timer_poll: Duration::from_millis(250),
        }
    }
}

struct EventHandler {
    engine: Engine,
}

impl Handler for EventHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        self.engine.on_event(conn, message).await
    }
}

pub struct Application {
    settings: ServiceSettings,
    pool: PgPool,
    bus: Bus,
    listener: TcpListener,
    engine: Engine,
    options: Options,
}

impl Application {
    pub async fn build(settings: ServiceSettings, options: Options) -> Result<Self> {
        let pool = gendan_storage::connect(&settings.database()).await?;
        gendan_storage::migrate(
            &pool,
            [gendan_messaging::migrator(), sqlx::migrate!("./migrations")],
        )
        .await?;
        let bus = Bus::connect(&settings.common.nats_url, SERVICE).await?;
        bus.ensure_streams(settings.common.stream_replicas).await?;
        let listener = gendan_grpc::bind(&settings.grpc_addr).await?;
        let engine = Engine::new(Workflow::standard(options.timing), options.clock.clone());
        Ok(Application {
            settings,
            pool,
            bus,
            listener,
            engine,
            options,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|addr| addr.port())
            .unwrap_or(0)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let mut tasks: JoinSet<Result<()>> = JoinSet::new();
        let api = api::SagaApi::new(self.pool.clone(), self.engine.clone());
        let server = gendan_proto::v1::saga_service_server::SagaServiceServer::new(api);
        tasks.spawn(gendan_grpc::serve(self.listener, server, cancel.clone()).map_into());
        let relay = Relay::new(
            self.pool.clone(),
            self.bus.clone(),
            &self.settings.schema,
            Default::default(),
        );
        tasks.spawn(relay.run(cancel.clone()).map_into());
        let consumer = Consumer::new(
            self.bus.clone(),
            self.pool.clone(),
            ConsumerSettings::new(streams::EVENTS, "saga-events", subjects::EVENTS),
            EventHandler {
                engine: self.engine.clone(),
            },
        );
        tasks.spawn(consumer.run(cancel.clone()).map_into());
        let timers = timers::TimerWorker::new(
            self.pool.clone(),
            self.engine.clone(),
            self.options.timer_poll,
        );
        tasks.spawn(timers.run(cancel.clone()));

        let mut outcome = Ok(());
        while let Some(joined) = tasks.join_next().await {
            let result = joined.unwrap_or_else(|panic| {
                Err(Error::FailedPrecondition(format!("task panicked: {panic}")))
            });
            if let Err(err) = result {
                tracing::error!(error = %err, "saga task failed, stopping");
                cancel.cancel();
                if outcome.is_ok() {
                    outcome = Err(err);
                }
            }
        }
        outcome
    }
}

/// Converts a task's error type into this crate's `Error`.
trait MapInto {
    type Output;
    fn map_into(self) -> Self::Output;
}

impl<F, E> MapInto for F
where
    F: std::future::Future<Output = std::result::Result<(), E>> + Send + 'static,
    E: Into<Error>,
{
    type Output = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;
    fn map_into(self) -> Self::Output {
        Box::pin(async move { self.await.map_err(Into::into) })
    }
}
