//! The logistics service: packing lists checked against what the warehouse
//! packed, export documents cross-checked before they are filed, carrier
//! booking, shipment, tracking and proof of delivery.
//!
//! How data flows through the modules:
//! - [`api`] serves `gendan.v1.LogisticsService` over gRPC: master data
//!   (packing specs, product data, carrier lanes, stored by [`catalog`]) and
//!   read views of each order's packing list, documents and shipment
//!   ([`store`]). Every request is checked by [`validate`] first, so nothing
//!   is written on invalid input.
//! - [`commands`] consumes saga commands (`gendan.cmd.logistics.*`):
//!   `PreparePacking` builds the packing list with the pure [`packing`]
//!   module, `PrepareDocuments` builds and cross-checks the document set with
//!   the pure [`documents`] module, `BookShipment` picks a lane with the pure
//!   [`booking`] module (a later revision re-books after a missed ETD,
//!   keeping the earlier booking on record; a redelivery of claimed goods
//!   books a new shipment of them after the first was delivered),
//!   `QuoteFreight` prices that lane for the review's cost estimate
//!   without booking (the goods packed on paper by the customer's spec),
//!   `CancelShipment` undoes a booking, and `RestateFact` (a saga step's
//!   wait overdue) has [`restate`] announce the awaited fact again, under
//!   its first event id, or say where things stand (`StatusReported`). An
//!   order amended before it ships, and the goods of a redelivery, are
//!   packed and documented again under the next revision; the pure
//!   [`revision`] module says what a command of some revision does, and the
//!   earlier list and documents stay on record, superseded: everything reads
//!   the current ones.
//! - [`wms`] consumes warehouse outbound events (`gendan.ext.wms.outbound.*`):
//!   what was packed is compared with the current packing list; shipped
//!   marks the order's current shipment shipped with its bill of lading.
//! - [`carrier`] consumes carrier events (`gendan.ext.carrier.*`): tracking
//!   updates, delivery with its proof, and cargo lost or damaged in transit,
//!   which [`claims`] turns into a claim against the carrier
//!   (`CargoClaimOpened`). Reports apply to the order's current shipment;
//!   an earlier shipment's (before a redelivery) are recorded against its
//!   own booking. `Shipped` and `Delivered` carry the booking revision and
//!   are facts of it.
//! - [`chasing`] is a worker: each pass reports bookings whose ETD day ended
//!   without a shipped report (`ShipmentLate`, once per booking); the saga
//!   answers by re-booking. "Today" is the [`clock`] in [`Options`], so
//!   tests miss an ETD without waiting.
//! - Every event goes through the outbox in the transaction that changed the
//!   state; the relay publishes it.

pub mod api;
pub mod booking;
pub mod carrier;
pub mod catalog;
pub mod chasing;
pub mod claims;
pub mod clock;
pub mod commands;
pub mod documents;
pub mod packing;
pub mod restate;
pub mod revision;
pub mod store;
pub mod validate;
pub mod wms;

use std::sync::Arc;
use std::time::Duration;

use gendan_grpc::{Code, FieldError, ServiceErrorCode};
use gendan_messaging::{ConsumerSettings, HandlerError, streams, subjects};
use gendan_proto::v1::logistics_service_server::LogisticsServiceServer;
use gendan_runtime::{Foundation, Supervisor};
use gendan_settings::ServiceSettings;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use clock::{Clock, ManualClock, SystemClock};

pub const SERVICE: &str = "logistics";

/// Durable consumer of saga commands for this service.
pub const COMMANDS_CONSUMER: &str = "logistics-commands";
/// Durable consumer of warehouse outbound events.
pub const WMS_CONSUMER: &str = "logistics-wms";
/// Durable consumer of carrier events.
pub const CARRIER_CONSUMER: &str = "logistics-carrier";

/// Warehouse outbound events: packed, shipped.
pub const WMS_OUTBOUND_SUBJECTS: &str = "gendan.ext.wms.outbound.>";
pub const WMS_PACKED_SUBJECT: &str = "gendan.ext.wms.outbound.packed";
pub const WMS_SHIPPED_SUBJECT: &str = "gendan.ext.wms.outbound.shipped";
/// Carrier events: tracking, delivered, cargo exceptions. One filter
/// subject for the one carrier consumer (ADR 0002).
pub const CARRIER_SUBJECTS: &str = "gendan.ext.carrier.>";
pub const CARRIER_TRACKING_SUBJECT: &str = "gendan.ext.carrier.tracking";
pub const CARRIER_DELIVERED_SUBJECT: &str = "gendan.ext.carrier.delivered";
pub const CARRIER_CARGO_EXCEPTION_SUBJECT: &str = "gendan.ext.carrier.cargo_exception";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error("{0}")]
    NotFound(String),
    /// The request is fine but the thing it is about is in a state that
    /// does not allow it.
    #[error("{0}")]
    NotAllowed(String),
    /// Stored data this build cannot read: a bug or a manual edit.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
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
            Error::NotFound(_) => Code::NotFound,
            Error::NotAllowed(_) => Code::FailedPrecondition,
            Error::Database(_) => Code::Unavailable,
            Error::Corrupt(_) | Error::Runtime(_) => Code::Internal,
        }
    }
}

impl From<Error> for HandlerError {
    fn from(err: Error) -> Self {
        match err {
            // Temporary: the next delivery may find the database back.
            // A deadlock or a restarting server runs the batch again.
            Error::Database(db) => HandlerError::database(db),
            Error::Runtime(_) => HandlerError::Retry(err.to_string()),
            // The message, or what it refers to, is wrong: redelivery gives
            // the same answer.
            Error::InvalidField(_)
            | Error::NotFound(_)
            | Error::NotAllowed(_)
            | Error::Corrupt(_) => HandlerError::Rejected(err.to_string()),
        }
    }
}

/// Options beyond the shared settings: the clock "today" is read from and
/// how often the chasing worker looks for missed ETDs.
#[derive(Debug, Clone)]
pub struct Options {
    pub clock: Arc<dyn Clock>,
    pub chase_poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Arc::new(SystemClock),
            // ETDs are days: a minute late is soon enough.
            chase_poll: Duration::from_secs(60),
        }
    }
}

/// The logistics service, bound and migrated, ready to run.
#[derive(Debug)]
pub struct Application {
    foundation: Foundation,
    options: Options,
}

impl Application {
    /// Connects the database and NATS, runs migrations, declares the streams
    /// and binds the gRPC listener; the system clock.
    pub async fn build(settings: ServiceSettings) -> Result<Self> {
        Self::build_with(settings, Options::default()).await
    }

    /// [`build`](Self::build) with other [`Options`] (a test's clock).
    pub async fn build_with(settings: ServiceSettings, options: Options) -> Result<Self> {
        let foundation =
            Foundation::connect(&settings, SERVICE, sqlx::migrate!("./migrations")).await?;
        Ok(Application {
            foundation,
            options,
        })
    }

    /// The bound gRPC port.
    pub fn port(&self) -> u16 {
        self.foundation.port
    }

    /// The service's pool (its own schema), for tools and tests.
    pub fn pool(&self) -> &PgPool {
        &self.foundation.pool
    }

    /// Runs the gRPC server, the outbox relay, the three consumers and the
    /// chasing worker until `cancel` fires or one of them fails; the first
    /// error is returned.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let foundation = self.foundation;
        let clock = self.options.clock;
        let mut supervisor = Supervisor::new(SERVICE, &cancel);
        let api = LogisticsServiceServer::new(api::LogisticsApi::new(foundation.pool.clone()));
        let commands = foundation.consumer(
            ConsumerSettings::new(
                streams::COMMANDS,
                COMMANDS_CONSUMER,
                &subjects::commands_for(SERVICE),
            ),
            commands::CommandHandler::new(clock.clone()),
        );
        let wms = foundation.consumer(
            ConsumerSettings::new(streams::EXTERNAL, WMS_CONSUMER, WMS_OUTBOUND_SUBJECTS),
            wms::WmsHandler,
        );
        let carrier = foundation.consumer(
            ConsumerSettings::new(streams::EXTERNAL, CARRIER_CONSUMER, CARRIER_SUBJECTS),
            carrier::CarrierHandler::new(clock.clone()),
        );
        let chasing =
            chasing::ChasingWorker::new(foundation.pool.clone(), clock, self.options.chase_poll);
        supervisor.spawn("outbox relay", foundation.relay().run(supervisor.token()));
        supervisor.spawn("commands consumer", commands.run(supervisor.token()));
        supervisor.spawn("wms consumer", wms.run(supervisor.token()));
        supervisor.spawn("carrier consumer", carrier.run(supervisor.token()));
        supervisor.spawn("chasing worker", chasing.run(supervisor.token()));
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
