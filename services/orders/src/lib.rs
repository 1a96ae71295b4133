//! The orders service: order intake, the order record, and its timeline.
//!
//! How data flows through it:
//! - [`api`] serves `gendan.v1.OrderService`. CreateOrder goes through
//!   [`validate`] (a field-level error per bad field) and [`intake`], which
//!   writes the order, its lines, the request id, the first timeline entry and
//!   the `OrderCreated` outbox row in one transaction ([`store`] holds the
//!   SQL). GetOrder, ListOrders and GetTimeline read the same tables.
//! - The outbox relay publishes `gendan.evt.orders.*` events to JetStream.
//! - [`commands`] consumes `gendan.cmd.orders.>` (durable `orders-commands`):
//!   `ConfirmOrder` records the promised date and answers `OrderConfirmed`.
//! - [`timeline`] consumes every event on `gendan.evt.>` (durable
//!   `orders-timeline`): events about our orders are appended to the
//!   append-only timeline with a [`summary`] sentence, and the saga's events
//!   move the order's phase, projected date, risk flag and workflow status.
//!
//! [`Application`] wires these together: `build` connects PostgreSQL and NATS,
//! migrates and binds the gRPC port; `run_until_stopped` runs the server, the
//! relay and both consumers until cancelled or until one of them fails.

pub mod api;
pub mod commands;
pub mod intake;
pub mod paging;
pub mod store;
pub mod summary;
pub mod timeline;
pub mod validate;

use gendan_grpc::{Code, FieldError, ServiceErrorCode};
use gendan_messaging::{Bus, Consumer, ConsumerSettings, Relay, streams, subjects};
use gendan_proto::v1::order_service_server::OrderServiceServer;
use gendan_settings::ServiceSettings;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use api::OrderApi;

/// Service name: NATS subjects (`gendan.evt.orders.*`), envelope source,
/// default schema, telemetry service name.
pub const SERVICE: &str = "orders";

/// Durable consumer of saga commands for orders.
pub const COMMANDS_CONSUMER: &str = "orders-commands";
/// Durable consumer of every event, feeding the timeline and read model.
pub const TIMELINE_CONSUMER: &str = "orders-timeline";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidArgument(#[from] FieldError),
    #[error("order {0} not found")]
    OrderNotFound(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Stored data contradicts itself (a bug or manual surgery).
    #[error("inconsistent data: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Storage(#[from] gendan_storage::Error),
    #[error(transparent)]
    Messaging(#[from] gendan_messaging::Error),
    #[error(transparent)]
    Grpc(#[from] gendan_grpc::Error),
    #[error("{task} failed: {source}")]
    Task {
        task: &'static str,
        #[source]
        source: Box<Error>,
    },
    #[error("a service task panicked: {0}")]
    Panicked(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ServiceErrorCode for Error {
    fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::OrderNotFound(_) => Code::NotFound,
            // Worth retrying: the database is busy or briefly away.
            Error::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => Code::Unavailable,
            Error::Database(_)
            | Error::Inconsistent(_)
            | Error::Storage(_)
            | Error::Messaging(_)
            | Error::Grpc(_)
            | Error::Task { .. }
            | Error::Panicked(_) => Code::Internal,
        }
    }
}

/// The orders service, connected and listening, not yet running.
pub struct Application {
    pool: PgPool,
    bus: Bus,
    listener: TcpListener,
    port: u16,
    schema: String,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects PostgreSQL and NATS, migrates the schema, declares the
    /// streams and binds the gRPC listener.
    pub async fn build(settings: ServiceSettings) -> Result<Self> {
        let pool = gendan_storage::connect(&settings.database()).await?;
        gendan_storage::migrate(
            &pool,
            [gendan_messaging::migrator(), sqlx::migrate!("./migrations")],
        )
        .await?;
        let bus = Bus::connect(&settings.common.nats_url, SERVICE).await?;
        bus.ensure_streams(settings.common.stream_replicas).await?;
        let listener = gendan_grpc::bind(&settings.grpc_addr).await?;
        let port = listener
            .local_addr()
            .map_err(|source| gendan_grpc::Error::Bind {
                addr: settings.grpc_addr.clone(),
                source,
            })?
            .port();
        Ok(Application {
            pool,
            bus,
            listener,
            port,
            schema: settings.schema,
        })
    }

    /// The bound gRPC port (the real one when the settings asked for 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's pool (its own schema), for tools that compose it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs the gRPC server, the outbox relay and both consumers until
    /// `cancel` fires. The first task to fail stops the others and its error
    /// is returned; a task that ends early without error stops them too,
    /// because the service is incomplete without it.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let stop = cancel.child_token();
        let mut tasks: JoinSet<(&'static str, Result<()>)> = JoinSet::new();

        let api = OrderApi::new(self.pool.clone());
        let server_stop = stop.clone();
        let listener = self.listener;
        tasks.spawn(async move {
            let result =
                gendan_grpc::serve(listener, OrderServiceServer::new(api), server_stop).await;
            ("grpc server", result.map_err(Error::from))
        });

        let relay = Relay::new(
            self.pool.clone(),
            self.bus.clone(),
            &self.schema,
            Default::default(),
        );
        let relay_stop = stop.clone();
        tasks.spawn(async move {
            let result = relay.run(relay_stop).await;
            ("outbox relay", result.map_err(Error::from))
        });

        let commands = Consumer::new(
            self.bus.clone(),
            self.pool.clone(),
            ConsumerSettings::new(
                streams::COMMANDS,
                COMMANDS_CONSUMER,
                &subjects::commands_for(SERVICE),
            ),
            commands::CommandHandler,
        );
        let commands_stop = stop.clone();
        tasks.spawn(async move {
            let result = commands.run(commands_stop).await;
            ("commands consumer", result.map_err(Error::from))
        });

        let events = Consumer::new(
            self.bus.clone(),
            self.pool.clone(),
            ConsumerSettings::new(streams::EVENTS, TIMELINE_CONSUMER, subjects::EVENTS),
            timeline::EventRecorder,
        );
        let events_stop = stop.clone();
        tasks.spawn(async move {
            let result = events.run(events_stop).await;
            ("timeline consumer", result.map_err(Error::from))
        });

        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let outcome = match joined {
                Ok((_, Ok(()))) => None,
                Ok((task, Err(err))) => Some(Error::Task {
                    task,
                    source: Box::new(err),
                }),
                Err(join_error) => Some(Error::Panicked(join_error.to_string())),
            };
            if let Some(err) = outcome {
                tracing::error!(error = %err, "orders task failed, stopping the service");
                first_error.get_or_insert(err);
            }
            stop.cancel();
        }
        first_error.map_or(Ok(()), Err)
    }
}
