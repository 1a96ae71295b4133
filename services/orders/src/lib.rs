//! The orders service: order intake, the order record, and its timeline.
//!
//! How data flows through it:
//! - [`api`] serves `gendan.v1.OrderService`. UpsertCustomer, GetCustomer
//!   and ListCustomers keep the customer master ([`customers`]): each
//!   order's customer, its defaults and its rules. CreateOrder goes through
//!   [`validate`] (a field-level error per bad field) and [`intake`], which
//!   finds the order's customer in the master, fills the defaults the
//!   request left empty, and writes the order (with a copy of the
//!   customer's rules), its lines, the request id, the first timeline entry
//!   and the `OrderCreated` outbox row in one transaction ([`store`] holds
//!   the SQL). GetOrder, ListOrders and GetTimeline read the same tables.
//!   AcceptOrder ([`acceptance`]) records the customer's acceptance in phase
//!   acceptance and announces `OrderAccepted`; RaiseClaim ([`claims`])
//!   records a claim on the delivered goods instead and announces
//!   `ClaimRaised`, and ListClaims reads them back; AmendOrder
//!   ([`amendments`]) changes the lines or the requested date until the
//!   goods ship and announces `OrderAmended`, and ListAmendments reads them
//!   back; ListNotices and GetSummary read the customer notices and the
//!   closing summary.
//! - The outbox relay publishes `gendan.evt.orders.*` events and the
//!   `gendan.notify.customer` notices to JetStream.
//! - [`commands`] consumes `gendan.cmd.orders.>` (durable `orders-commands`):
//!   `ConfirmOrder` records the promised date of its revision (an amended
//!   order is confirmed again) and answers `OrderConfirmed`
//!   ([`confirmation`]); `CloseOrder` writes the [`closing`] summary, makes
//!   the order read-only and answers `OrderClosed`; `ResolveClaim` records a
//!   claim's resolution, answers `ClaimResolved` and, once no claim is open,
//!   accepts the order.
//! - [`timeline`] consumes every event on `gendan.evt.>` (durable
//!   `orders-timeline`): events about our orders are appended to the
//!   append-only timeline with a [`summary`] sentence and their payload, the
//!   saga's events move the order's phase ([`phases`]: back too, when the
//!   saga loops back), projected date, risk flag and workflow status, its
//!   time-and-action calendar is kept as the saga last announced it
//!   ([`milestones`], read back by GetMilestones), and the events a customer
//!   cares about become [`notices`].
//! - [`webhook`] delivers the stored notices to the customer's own URL or
//!   the deployment's, with retries, shared between replicas.
//! - [`announcer`] announces `OrderCreated` again (the same fact) while an
//!   order's workflow has not started, so a lost message strands nothing.
//!
//! [`Application`] wires these together: `build` connects PostgreSQL and NATS,
//! migrates and binds the gRPC port; `run_until_stopped` runs the server, the
//! relay, both consumers and the notice dispatcher until cancelled or until
//! one of them fails.

pub mod acceptance;
pub mod amendments;
pub mod announcer;
pub mod api;
pub mod claims;
pub mod closing;
pub mod commands;
pub mod confirmation;
pub mod customers;
pub mod intake;
pub mod milestones;
pub mod notices;
pub mod paging;
pub mod phases;
pub mod register;
pub mod restate;
pub mod store;
pub mod summary;
pub mod timeline;
pub mod validate;
pub mod watch;
pub mod webhook;

use gendan_grpc::{Code, FieldError, ServiceErrorCode};
use gendan_messaging::{ConsumerSettings, HandlerError, streams, subjects};
use gendan_proto::v1::order_service_server::OrderServiceServer;
use gendan_runtime::{Foundation, Supervisor};
use gendan_settings::ServiceSettings;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use api::OrderApi;
pub use webhook::WebhookSettings;

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
    /// GetCustomer of an id the customer master does not have.
    #[error("customer {0:?} not found")]
    CustomerNotFound(String),
    /// The call is not allowed in the order's current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A setting of this service is unusable.
    #[error("settings: {0}")]
    Settings(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Stored data contradicts itself (a bug or manual surgery).
    #[error("inconsistent data: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Runtime(#[from] gendan_runtime::Error),
    /// This replica serves as much of something as it may (order watches).
    #[error("{0}")]
    Overloaded(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ServiceErrorCode for Error {
    fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::OrderNotFound(_) | Error::CustomerNotFound(_) => Code::NotFound,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Overloaded(_) => Code::ResourceExhausted,
            // Worth retrying: the database is busy or briefly away.
            Error::Database(err) if gendan_storage::is_transient(err) => Code::Unavailable,
            Error::Database(_)
            | Error::Inconsistent(_)
            | Error::Runtime(_)
            | Error::Settings(_) => Code::Internal,
        }
    }
}

impl From<gendan_settings::Error> for Error {
    fn from(err: gendan_settings::Error) -> Self {
        Error::Settings(err.to_string())
    }
}

/// For consumers: what can never succeed is dead-lettered, the rest retried.
impl From<Error> for HandlerError {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidArgument(_)
            | Error::OrderNotFound(_)
            | Error::CustomerNotFound(_)
            | Error::FailedPrecondition(_)
            | Error::Inconsistent(_)
            | Error::Settings(_) => HandlerError::Rejected(err.to_string()),
            // A deadlock or a restarting server runs the batch again.
            Error::Database(db) => HandlerError::database(db),
            Error::Runtime(_) | Error::Overloaded(_) => HandlerError::Retry(err.to_string()),
        }
    }
}

/// The orders service, connected and listening, not yet running.
#[derive(Debug)]
pub struct Application {
    foundation: Foundation,
    webhook: webhook::Dispatcher,
    /// The first wait before an unstarted order is announced again.
    announce_again: std::time::Duration,
    watch: watch::WatchSettings,
}

impl Application {
    /// Connects PostgreSQL and NATS, migrates the schema, declares the
    /// streams and binds the gRPC listener. The notice webhook is configured
    /// from the environment ([`WebhookSettings::from_env`]).
    pub async fn build(settings: ServiceSettings) -> Result<Self> {
        let webhook_settings = WebhookSettings::from_env()?;
        let announce_again = std::time::Duration::from_secs(
            gendan_settings::parsed(announcer::ANNOUNCE_AGAIN_VARIABLE, 60u64)?.clamp(1, 86_400),
        );
        let foundation =
            Foundation::connect(&settings, SERVICE, sqlx::migrate!("./migrations")).await?;
        let webhook = webhook::Dispatcher::new(foundation.pool.clone(), webhook_settings)?;
        Ok(Application {
            foundation,
            webhook,
            announce_again,
            watch: watch::WatchSettings::from_env()?,
        })
    }

    /// Replaces how order watches poll and how many are served (tests).
    pub fn with_watch(mut self, settings: watch::WatchSettings) -> Self {
        self.watch = settings;
        self
    }

    /// Replaces the first wait before an unstarted order is announced again
    /// (tests).
    pub fn with_announce_again(mut self, after: std::time::Duration) -> Self {
        self.announce_again = after;
        self
    }

    /// Replaces the notice webhook settings (tests, tools that compose the
    /// service); fails on a URL the dispatcher cannot post to.
    pub fn with_webhook(mut self, settings: WebhookSettings) -> Result<Self> {
        self.webhook = webhook::Dispatcher::new(self.foundation.pool.clone(), settings)?;
        Ok(self)
    }

    /// The bound gRPC port (the real one when the settings asked for 0).
    pub fn port(&self) -> u16 {
        self.foundation.port
    }

    /// The service's pool (its own schema), for tools that compose it.
    pub fn pool(&self) -> &PgPool {
        &self.foundation.pool
    }

    /// Runs the gRPC server, the outbox relay, both consumers, the notice
    /// dispatcher and the announcer until `cancel` fires or one of them fails; the first error
    /// is returned.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let foundation = self.foundation;
        let mut supervisor = Supervisor::new(SERVICE, &cancel);
        let watches = watch::Watches::new(foundation.pool.clone(), self.watch);
        let api = OrderServiceServer::new(OrderApi::new(foundation.pool.clone(), watches));
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
        supervisor.spawn("notice webhook", self.webhook.run(supervisor.token()));
        let announcer = announcer::Announcer::new(foundation.pool.clone(), self.announce_again);
        supervisor.spawn("announcer", announcer.run(supervisor.token()));
        supervisor.spawn(
            "grpc server",
            gendan_grpc::serve(
                foundation.listener,
                api,
                foundation.limits,
                supervisor.token(),
            ),
        );
        Ok(supervisor.wait().await?)
    }
}
