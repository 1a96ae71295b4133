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
use gendan_messaging::{ConsumerSettings, streams, subjects};
use gendan_proto::v1::order_service_server::OrderServiceServer;
use gendan_runtime::{Foundation, Supervisor};
use gendan_settings::ServiceSettings;
use sqlx::PgPool;
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
    Runtime(#[from] gendan_runtime::Error),
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
            Error::Database(_) | Error::Inconsistent(_) | Error::Runtime(_) => Code::Internal,
        }
    }
}

/// The orders service, connected and listening, not yet running.
#[derive(Debug)]
pub struct Application {
    foundation: Foundation,
}

impl Application {
    /// Connects PostgreSQL and NATS, migrates the schema, declares the
    /// streams and binds the gRPC listener.
    pub async fn build(settings: ServiceSettings) -> Result<Self> {
        let foundation =
            Foundation::connect(&settings, SERVICE, sqlx::migrate!("./migrations")).await?;
        Ok(Application { foundation })
    }

    /// The bound gRPC port (the real one when the settings asked for 0).
    pub fn port(&self) -> u16 {
        self.foundation.port
    }

    /// The service's pool (its own schema), for tools that compose it.
    pub fn pool(&self) -> &PgPool {
        &self.foundation.pool
    }

    /// Runs the gRPC server, the outbox relay and both consumers until
    /// `cancel` fires or one of them fails; the first error is returned.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let foundation = self.foundation;
        let mut supervisor = Supervisor::new(SERVICE, &cancel);
        let api = OrderServiceServer::new(OrderApi::new(foundation.pool.clone()));
        let commands = foundation.consumer(
            ConsumerSettings::new(
                streams::COMMANDS,
                COMMANDS_CONSUMER,
                &subjects::commands_for(SERVICE),
            ),
            commands::CommandHandler,
        );
        let timeline = foundation.consumer(
            ConsumerSettings::new(streams::EVENTS, TIMELINE_CONSUMER, subjects::EVENTS),
            timeline::EventRecorder,
        );
        supervisor.spawn("outbox relay", foundation.relay().run(supervisor.token()));
        supervisor.spawn("commands consumer", commands.run(supervisor.token()));
        supervisor.spawn("timeline consumer", timeline.run(supervisor.token()));
        supervisor.spawn(
            "grpc server",
            gendan_grpc::serve(foundation.listener, api, supervisor.token()),
        );
        Ok(supervisor.wait().await?)
    }
}
