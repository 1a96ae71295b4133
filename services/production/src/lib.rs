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
//!   stores it with its capacity bookings ([`work_orders`], whose `store`
//!   owns the work order SQL).
//! - [`commands`] consumes saga commands (`gendan.cmd.production.*`):
//!   `CheckOrderCapacity` answers `CapacityChecked` (with the routings'
//!   hours per work centre, the labour of the review's cost estimate) and,
//!   for a versioned check, reserves the hours it promised
//!   ([`reservations`]; `ReleaseCapacity` gives them back),
//!   `PlanWorkOrder` plans
//!   once per order and revision and answers `WorkOrderPlanned` (again, from
//!   the stored plan, when the command is repeated), `StartRework` plans a
//!   rework of failed goods ([`rework`]) and answers `ReworkPlanned`,
//!   `CancelWorkOrder` stops the order's open work orders, `RestateFact`
//!   (a waiting step overdue) announces a work order's completion again as
//!   the same fact, or reports where the work order stands ([`restate`]).
//! - An amended order ([`amendments`]) is checked and planned for what it
//!   still needs beyond the good units its runs made, per product and
//!   stage; the new run supersedes (cancels) the open one and takes its
//!   place for MES reports, and a run with nothing left to make is planned
//!   and completed at once.
//! - [`mes`] consumes factory events (`gendan.ext.mes.*`): stage started,
//!   quantities and stage completed apply to the order's newest open work
//!   order with that stage and emit progress and completion
//!   (`WorkOrderCompleted`, or `ReworkCompleted` for a rework).
//! - Equipment down and up, also MES events, are applied by [`equipment`]:
//!   a downtime of the work centre is stored and the centre shows as down;
//!   planning and capacity checks treat it as unavailable for the downtime
//!   ([`downtime`] turns it into hours lost per day), and the open work
//!   orders it hits are re-planned past it with the same scheduler
//!   ([`reschedule`]), each move announced as `WorkOrderRescheduled`; when
//!   the centre is up they are re-planned against the real downtime and
//!   told it is resolved.
//! - Every event goes through the outbox in the transaction that changed the
//!   state; the relay publishes it.
//! - [`demo`] seeds a small catalogue through the public gRPC API.

pub mod amendments;
pub mod api;
pub mod catalog;
pub mod commands;
pub mod demo;
pub mod downtime;
pub mod equipment;
pub mod mes;
pub mod planning;
pub mod reschedule;
pub mod reservations;
pub mod restate;
pub mod rework;
pub mod schedule;
pub mod validate;
pub mod work_orders;

use gendan_grpc::{Code, FieldError, ServiceErrorCode};
use gendan_messaging::{ConsumerSettings, streams, subjects};
use gendan_proto::v1::production_service_server::ProductionServiceServer;
use gendan_runtime::{Foundation, Supervisor};
use gendan_settings::ServiceSettings;
use sqlx::PgPool;
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
    Runtime(#[from] gendan_runtime::Error),
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
            Error::Runtime(_) => Code::Internal,
        }
    }
}

/// The production service, bound and migrated, ready to run.
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

    /// Runs the gRPC server, the outbox relay and both consumers until
    /// `cancel` fires or one of them fails; the first error is returned.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let foundation = self.foundation;
        let mut supervisor = Supervisor::new(SERVICE, &cancel);
        let api = ProductionServiceServer::new(api::ProductionApi::new(foundation.pool.clone()));
        let commands = foundation.consumer(
            ConsumerSettings::new(
                streams::COMMANDS,
                COMMANDS_CONSUMER,
                &subjects::commands_for(SERVICE),
            ),
            commands::CommandHandler,
        );
        let mes = foundation.consumer(
            ConsumerSettings::new(streams::EXTERNAL, MES_CONSUMER, subjects::MES),
            mes::MesHandler,
        );
        supervisor.spawn("outbox relay", foundation.relay().run(supervisor.token()));
        supervisor.spawn("commands consumer", commands.run(supervisor.token()));
        supervisor.spawn("mes consumer", mes.run(supervisor.token()));
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
