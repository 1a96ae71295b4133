//! The quality service: inspection plans, ISO 2859-1 sampling, final,
//! incoming and in-process inspections, and the nonconformance records of
//! failed ones.
//!
//! How data flows through the modules:
//! - [`sampling`] is ISO 2859-1 (general level II) as data: Table I, Table
//!   II-A (normal inspection), Table II-B (tightened inspection), and the
//!   arrow-following plan lookup.
//! - [`switching`] is the clause 9 switching rule between normal and
//!   tightened inspection: a pure function of a product's lot history.
//! - [`plans`] stores the inspection plan of each product (AQL per defect
//!   class, in-process stages) and the incoming AQL of each material, with
//!   the common-practice defaults when none is stored.
//! - [`commands`] consumes saga commands (`gendan.cmd.quality.*`):
//!   `RequestFinalInspection` of an order and revision opens that final
//!   inspection ([`final_inspection`]: plans at the products' switching
//!   state) and answers `FinalInspectionOpened`, or answers again from what
//!   is stored for that revision; `EstimateInspection` (the review's cost
//!   estimate) counts the units that inspection would sample without
//!   opening it ([`estimate`]); `RestateFact` (the saga's wait for the
//!   pass overdue) announces that revision's result again as the same
//!   fact, or reports where the inspection stands ([`restate`]).
//! - [`receiving`] consumes procurement's events (`gendan.evt.procurement.*`)
//!   and opens an incoming inspection for every `GoodsReceived` lot.
//! - [`in_process`] consumes production's events (`gendan.evt.production.*`)
//!   and opens one in-process inspection per order, product and stage the
//!   product's plan names, on the first `WorkOrderProgressed` with good units.
//! - [`api`] serves `gendan.v1.QualityService`: QA records results there
//!   ([`inspections`] judges them against the plan, stores them, and on a
//!   failure opens a nonconformance), reads inspections, closes
//!   nonconformances. Every request is checked by [`validate`] first.
//! - Every event goes through the outbox in the transaction that changed the
//!   state; the relay publishes it.

pub mod api;
pub mod commands;
pub mod estimate;
pub mod final_inspection;
pub mod in_process;
pub mod inspections;
pub mod plans;
pub mod receiving;
pub mod restate;
pub mod sampling;
pub mod switching;
pub mod validate;

use gendan_grpc::{Code, FieldError, ServiceErrorCode};
use gendan_messaging::{ConsumerSettings, HandlerError, streams, subjects};
use gendan_proto::v1::quality_service_server::QualityServiceServer;
use gendan_runtime::{Foundation, Supervisor};
use gendan_settings::ServiceSettings;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub const SERVICE: &str = "quality";

/// Durable consumer of saga commands for this service.
pub const COMMANDS_CONSUMER: &str = "quality-commands";
/// Durable consumer of procurement's events (goods received).
pub const PROCUREMENT_CONSUMER: &str = "quality-procurement";
/// What that consumer reads.
pub const PROCUREMENT_EVENTS: &str = "gendan.evt.procurement.>";
/// Durable consumer of production's events (stage progress).
pub const PRODUCTION_CONSUMER: &str = "quality-production";
/// What that consumer reads.
pub const PRODUCTION_EVENTS: &str = "gendan.evt.production.>";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error("no inspection {0}")]
    InspectionNotFound(String),
    #[error("no nonconformance {0}")]
    NonconformanceNotFound(String),
    #[error("inspection {inspection_id} is already {status}: its result was recorded")]
    AlreadyRecorded {
        inspection_id: String,
        status: String,
    },
    #[error("nonconformance {0} is already closed")]
    AlreadyClosed(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Runtime(#[from] gendan_runtime::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ServiceErrorCode for Error {
    fn code(&self) -> Code {
        match self {
            Error::InvalidField(_) => Code::InvalidArgument,
            Error::InspectionNotFound(_) | Error::NonconformanceNotFound(_) => Code::NotFound,
            Error::AlreadyRecorded { .. } | Error::AlreadyClosed(_) => Code::FailedPrecondition,
            Error::Database(_) => Code::Unavailable,
            Error::Runtime(_) => Code::Internal,
        }
    }
}

impl From<Error> for HandlerError {
    fn from(err: Error) -> Self {
        match err {
            // Temporary: the database may answer on the next delivery.
            // A deadlock or a restarting server runs the batch again.
            Error::Database(db) => HandlerError::database(db),
            Error::Runtime(_) => HandlerError::Retry(err.to_string()),
            // The message itself is wrong: redelivery gives the same answer.
            Error::InvalidField(_)
            | Error::InspectionNotFound(_)
            | Error::NonconformanceNotFound(_)
            | Error::AlreadyRecorded { .. }
            | Error::AlreadyClosed(_) => HandlerError::Rejected(err.to_string()),
        }
    }
}

/// The quality service, bound and migrated, ready to run.
#[derive(Debug)]
pub struct Application {
    foundation: Foundation,
}

impl Application {
    /// Connects the database and NATS, runs migrations, declares the streams
    /// and binds the gRPC listener.
    pub async fn build(settings: ServiceSettings) -> Result<Self> {
        let foundation =
            Foundation::connect(&settings, SERVICE, sqlx::migrate!("./migrations")).await?;
        Ok(Application { foundation })
    }

    /// The bound gRPC port.
    pub fn port(&self) -> u16 {
        self.foundation.port
    }

    /// The service's pool (its own schema), for tools and tests.
    pub fn pool(&self) -> &PgPool {
        &self.foundation.pool
    }

    /// Runs the gRPC server, the outbox relay and the consumers until
    /// `cancel` fires or one of them fails; the first error is returned.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let foundation = self.foundation;
        let mut supervisor = Supervisor::new(SERVICE, &cancel);
        let api = QualityServiceServer::new(api::QualityApi::new(foundation.pool.clone()));
        let commands = foundation.consumer(
            ConsumerSettings::new(
                streams::COMMANDS,
                COMMANDS_CONSUMER,
                &subjects::commands_for(SERVICE),
            ),
            commands::CommandHandler,
        );
        let receiving = foundation.consumer(
            ConsumerSettings::new(streams::EVENTS, PROCUREMENT_CONSUMER, PROCUREMENT_EVENTS),
            receiving::ReceivingHandler,
        );
        let production = foundation.consumer(
            ConsumerSettings::new(streams::EVENTS, PRODUCTION_CONSUMER, PRODUCTION_EVENTS),
            in_process::ProductionHandler,
        );
        supervisor.spawn("outbox relay", foundation.relay().run(supervisor.token()));
        supervisor.spawn("commands consumer", commands.run(supervisor.token()));
        supervisor.spawn("procurement consumer", receiving.run(supervisor.token()));
        supervisor.spawn("production consumer", production.run(supervisor.token()));
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
