//! The production service: work centres, routings, capacity checks, work
//! orders and their progress as reported by the factory MES.
//!
//! How data flows through the modules:
//! - [`api`] serves `gendan.v1.ProductionService` over gRPC. Every request is
//!   checked by [`validate`] first, so nothing is written on invalid input;
//!   work centres and routings are stored by [`catalog`].
//! - [`planning`] reads routings, calendars and booked hours from the
//!   database and runs the pure forward finite-capacity scheduler in
//!   [`schedule`]; capacity checks stop there, planning a work order also
//!   stores it with its capacity bookings ([`work_orders`]).
//! - [`commands`] consumes saga commands (`gendan.cmd.production.*`):
//!   `CheckOrderCapacity` answers `CapacityChecked`, `PlanWorkOrder` plans
//!   once per order and answers `WorkOrderPlanned` (again, from the stored
//!   plan, when the command is repeated).
//! - [`mes`] consumes factory events (`gendan.ext.mes.*`): stage started,
//!   quantities, stage completed, equipment down/up, and emits progress,
//!   completion and equipment events.
//! - Every event goes through the outbox in the transaction that changed the
//!   state; the relay publishes it.
//! - [`demo`] seeds a small catalogue through the public gRPC API.

pub mod api;
pub mod catalog;
pub mod commands;
pub mod demo;
pub mod mes;
pub mod planning;
pub mod schedule;
pub mod validate;
pub mod work_orders;

use gendan_grpc::{Code, FieldError, ServiceErrorCode};
use gendan_messaging::{Bus, Consumer, ConsumerSettings, Relay, streams, subjects};
use gendan_proto::v1::production_service_server::ProductionServiceServer;
use gendan_settings::ServiceSettings;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub const SERVICE: &str = "production";

/// Durable consumer of saga commands for this service.
pub const COMMANDS_CONSUMER: &str = "production-commands";
/// Durable consumer of MES events.
pub const MES_CONSUMER: &str = "production-mes";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error("no routing for product {0:?}")]
    NoRouting(String),
    #[error("no work order for order {0:?}")]
    WorkOrderNotFound(String),
    #[error("unknown work centre {0:?}")]
    UnknownWorkCentre(String),
    #[error("work centre {work_centre:?} has no capacity: {reason}")]
    NoCapacity { work_centre: String, reason: String },
    #[error("stage {stage:?} at work centre {work_centre:?} cannot be finished within {days} days")]
    BeyondHorizon {
        work_centre: String,
        stage: String,
        days: u64,
    },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Storage(#[from] gendan_storage::Error),
    #[error(transparent)]
    Messaging(#[from] gendan_messaging::Error),
    #[error(transparent)]
    Grpc(#[from] gendan_grpc::Error),
    #[error("task failed: {0}")]
    Task(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ServiceErrorCode for Error {
    fn code(&self) -> Code {
        match self {
            Error::InvalidField(_) => Code::InvalidArgument,
            Error::NoRouting(_) | Error::WorkOrderNotFound(_) => Code::NotFound,
            // The request is fine; the factory's set-up cannot serve it.
            Error::UnknownWorkCentre(_)
            | Error::NoCapacity { .. }
            | Error::BeyondHorizon { .. } => Code::FailedPrecondition,
            Error::Database(_) => Code::Unavailable,
            Error::Storage(_) | Error::Messaging(_) | Error::Grpc(_) | Error::Task(_) => {
                Code::Internal
            }
        }
    }
}

/// The production service, bound and migrated, ready to run.
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
    /// Connects the database and NATS, runs migrations, declares the streams
    /// and binds the gRPC listener.
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

    /// The bound gRPC port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's pool (its own schema), for tools and tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs the gRPC server, the outbox relay and both consumers until
    /// `cancel` fires or one of them fails; the first error is returned.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        // A child token stops the siblings of a failed task without cancelling
        // the caller's token.
        let stop = cancel.child_token();
        let mut tasks: JoinSet<Result<()>> = JoinSet::new();

        let api = api::ProductionApi::new(self.pool.clone());
        let listener = self.listener;
        let token = stop.clone();
        tasks.spawn(async move {
            gendan_grpc::serve(listener, ProductionServiceServer::new(api), token).await?;
            Ok(())
        });

        let relay = Relay::new(
            self.pool.clone(),
            self.bus.clone(),
            &self.schema,
            Default::default(),
        );
        let token = stop.clone();
        tasks.spawn(async move { Ok(relay.run(token).await?) });

        let command_consumer = Consumer::new(
            self.bus.clone(),
            self.pool.clone(),
            ConsumerSettings::new(
                streams::COMMANDS,
                COMMANDS_CONSUMER,
                &subjects::commands_for(SERVICE),
            ),
            commands::CommandHandler,
        );
        let token = stop.clone();
        tasks.spawn(async move { Ok(command_consumer.run(token).await?) });

        let mes_consumer = Consumer::new(
            self.bus.clone(),
            self.pool.clone(),
            ConsumerSettings::new(streams::EXTERNAL, MES_CONSUMER, subjects::MES),
            mes::MesHandler,
        );
        let token = stop.clone();
        tasks.spawn(async move { Ok(mes_consumer.run(token).await?) });

        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let result = joined
                .map_err(|err| Error::Task(err.to_string()))
                .and_then(|result| result);
            if let Err(err) = result {
                tracing::error!(error = %err, "production task failed, stopping");
                first_error.get_or_insert(err);
            }
            // Any task ending (even cleanly) means the service is no longer
            // whole; stop the rest rather than run half a service.
            stop.cancel();
        }
        first_error.map_or(Ok(()), Err)
    }
}
