//! The procurement service: materials, suppliers and their offers, bills of
//! materials, stock and reservations, purchase orders, the lots received
//! against them, and chasing the suppliers who are late.
//!
//! How data flows through the modules:
//! - [`api`] serves `gendan.v1.ProcurementService` over gRPC. Every request
//!   is checked by [`validate`] first, so nothing is written on invalid
//!   input; master data is stored by [`catalog`].
//! - [`netting`] is the pure heart: BOM explosion with scrap allowance,
//!   netting against free stock and open purchase orders, supplier choice
//!   and purchase quantities, the earliest material date; [`costing`]
//!   prices the explosion at the chosen offers (the review's standard
//!   material cost).
//! - [`purchasing`] keeps stock, reservations, purchase orders and their
//!   allocation to orders, [`lots`] the lots received against them; every
//!   change holds the advisory locks of the materials it touches, which
//!   [`locks`] decides per kind of change (ADR 0013); [`views`] reads them
//!   back as the gRPC API shows them.
//! - [`commands`] consumes saga commands (`gendan.cmd.procurement.*`, its
//!   module doc has the contract table): `CheckMaterials`,
//!   `ProcureMaterials` (places POs, each with a confirm-by date),
//!   `CancelMaterials`, and for a late PO `ResourceMaterials` and
//!   `AcceptSupplierDelay`, carried out by [`delays`]; `RestateFact` (the
//!   saga asking again for an overdue `MaterialsReady`) is answered by
//!   [`restate`]: the fact again under its first event id, or
//!   `StatusReported` naming the purchase orders and lots still awaited.
//! - An amended order: `ProcureMaterials` with the next revision, and
//!   `CheckMaterials` of an order that already holds supply, net the new
//!   need against what the order holds. [`amendments`] is the pure rule
//!   (shortfall netted and bought, surplus given back on POs latest first,
//!   then on reservations; received goods stay), [`holdings`] loads what an
//!   order holds and applies the rule, [`revisions`] keeps the revision
//!   applied per order, each revision's answer, and decides readiness
//!   (`MaterialsReady` once per revision).
//! - [`chasing`] is a worker: each pass finds POs not confirmed by their
//!   confirm-by date or not received by their expected date and announces
//!   `PurchaseOrderLate` (with the next supplier offer) to every order
//!   waiting on them, once per PO, lateness and date missed.
//! - [`wms`] consumes the warehouse's goods receipts
//!   (`gendan.ext.wms.inbound.*`), records lots and announces
//!   `GoodsReceived`, from which quality opens the incoming inspection.
//! - [`inspections`] consumes quality's incoming inspection results: a
//!   passed lot enters stock for the orders waiting on it (and may make an
//!   order `MaterialsReady`); a failed lot is returned and re-ordered.
//! - [`clock`]: "today" for all of them comes from one [`Calendar`] over an
//!   injectable [`Clock`] ([`Options`]), so tests move time instead of
//!   waiting for a supplier to be late.
//! - Every event goes through the outbox in the transaction that changed the
//!   state; the relay publishes it.

pub mod amendments;
pub mod api;
pub mod catalog;
pub mod chasing;
pub mod clock;
pub mod commands;
pub mod costing;
pub mod delays;
pub mod holdings;
pub mod inspections;
pub mod locks;
pub mod lots;
pub mod netting;
pub mod purchasing;
pub mod restate;
pub mod revisions;
pub mod validate;
pub mod views;
pub mod wms;

use std::sync::Arc;
use std::time::Duration;

use gendan_grpc::{Code, FieldError, ServiceErrorCode};
use gendan_messaging::{ConsumerSettings, HandlerError, Turnstile, streams, subjects};
use gendan_proto::v1::procurement_service_server::ProcurementServiceServer;
use gendan_runtime::{Foundation, Supervisor};
use gendan_settings::ServiceSettings;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use clock::{Calendar, Clock, DEFAULT_CONFIRM_WITHIN_DAYS, ManualClock, SystemClock};

pub const SERVICE: &str = "procurement";

/// Durable consumer of saga commands for this service.
pub const COMMANDS_CONSUMER: &str = "procurement-commands";
/// Durable consumer of WMS goods receipts.
pub const WMS_CONSUMER: &str = "procurement-wms";
/// Durable consumer of quality's events (incoming inspection results).
pub const QUALITY_CONSUMER: &str = "procurement-quality";

/// Subjects of WMS inbound (receiving) events.
pub const WMS_INBOUND: &str = "gendan.ext.wms.inbound.>";
/// Where the WMS publishes a goods receipt.
pub const WMS_GOODS_RECEIVED: &str = "gendan.ext.wms.inbound.goods_received";
/// Quality's domain events.
pub const QUALITY_EVENTS: &str = "gendan.evt.quality.>";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error("unknown material {0:?}")]
    UnknownMaterial(String),
    #[error("no bill of materials for product {0:?}")]
    NoBillOfMaterials(String),
    #[error("unknown purchase order {0}")]
    UnknownPurchaseOrder(String),
    #[error("procurement has no record of order {0:?}")]
    OrderNotFound(String),
    /// The request is well formed but the current state does not allow it.
    #[error("{0}")]
    NotAllowed(String),
    /// A setting of this service is unusable.
    #[error("settings: {0}")]
    Settings(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Runtime(#[from] gendan_runtime::Error),
}

impl From<gendan_settings::Error> for Error {
    fn from(err: gendan_settings::Error) -> Self {
        Error::Settings(err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ServiceErrorCode for Error {
    fn code(&self) -> Code {
        match self {
            Error::InvalidField(_) => Code::InvalidArgument,
            Error::UnknownMaterial(_)
            | Error::NoBillOfMaterials(_)
            | Error::UnknownPurchaseOrder(_)
            | Error::OrderNotFound(_) => Code::NotFound,
            Error::NotAllowed(_) => Code::FailedPrecondition,
            Error::Database(_) => Code::Unavailable,
            Error::Runtime(_) | Error::Settings(_) => Code::Internal,
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
            | Error::UnknownMaterial(_)
            | Error::NoBillOfMaterials(_)
            | Error::UnknownPurchaseOrder(_)
            | Error::OrderNotFound(_)
            | Error::NotAllowed(_)
            | Error::Settings(_) => HandlerError::Rejected(err.to_string()),
        }
    }
}

/// Thousandths of a unit as the wire's `double`.
pub fn milli_to_f64(milli: i64) -> f64 {
    milli as f64 / 1000.0
}

/// Setting: days a supplier has to confirm a purchase order.
pub const CONFIRM_WITHIN_DAYS_VARIABLE: &str = "GENDAN_PROCUREMENT__CONFIRM_WITHIN_DAYS";
/// Setting: seconds between two passes of the chase worker.
pub const CHASE_POLL_SECONDS_VARIABLE: &str = "GENDAN_PROCUREMENT__CHASE_POLL_SECONDS";

/// Options beyond the shared settings: the clock "today" is read from, how
/// long suppliers have to confirm, and how often late POs are looked for.
#[derive(Clone)]
pub struct Options {
    pub clock: Arc<dyn Clock>,
    pub confirm_within_days: u32,
    /// Dates are days, so a pass a minute is plenty; tests use less.
    pub chase_poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Arc::new(SystemClock),
            confirm_within_days: DEFAULT_CONFIRM_WITHIN_DAYS,
            chase_poll: Duration::from_secs(60),
        }
    }
}

impl Options {
    /// Defaults, with [`CONFIRM_WITHIN_DAYS_VARIABLE`] and
    /// [`CHASE_POLL_SECONDS_VARIABLE`] from the settings (environment or the
    /// `GENDAN_CONFIG` file).
    pub fn from_env() -> Result<Self> {
        let defaults = Options::default();
        let poll_seconds =
            gendan_settings::parsed(CHASE_POLL_SECONDS_VARIABLE, defaults.chase_poll.as_secs())?;
        Ok(Options {
            confirm_within_days: gendan_settings::parsed(
                CONFIRM_WITHIN_DAYS_VARIABLE,
                defaults.confirm_within_days,
            )?,
            // Zero would make the worker spin.
            chase_poll: Duration::from_secs(poll_seconds.max(1)),
            ..defaults
        })
    }

    /// The calendar every part of the service reads dates from.
    pub fn calendar(&self) -> Calendar {
        Calendar::new(self.clock.clone(), self.confirm_within_days)
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("now", &self.clock.now())
            .field("confirm_within_days", &self.confirm_within_days)
            .field("chase_poll", &self.chase_poll)
            .finish()
    }
}

/// The procurement service, bound and migrated, ready to run.
#[derive(Debug)]
pub struct Application {
    foundation: Foundation,
    options: Options,
}

impl Application {
    /// Connects the database and NATS, runs migrations, declares the streams
    /// and binds the gRPC listener. Options come from the settings
    /// ([`Options::from_env`]).
    pub async fn build(settings: ServiceSettings) -> Result<Self> {
        let options = Options::from_env()?;
        let foundation =
            Foundation::connect(&settings, SERVICE, sqlx::migrate!("./migrations")).await?;
        Ok(Application {
            foundation,
            options,
        })
    }

    /// Replaces the options (tests drive the clock; tools that compose the
    /// service set their own).
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
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
    /// chase worker until `cancel` fires or one of them fails; the first
    /// error is returned.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let foundation = self.foundation;
        let calendar = self.options.calendar();
        let mut supervisor = Supervisor::new(SERVICE, &cancel);
        // Every task that takes the materials lock queues here first, in
        // memory, rather than in the database (see `Turnstile`).
        let turnstile = Turnstile::new();
        let api = ProcurementServiceServer::new(api::ProcurementApi::new(
            foundation.pool.clone(),
            calendar.clone(),
            turnstile.clone(),
        ));
        let commands = foundation
            .consumer(
                ConsumerSettings::new(
                    streams::COMMANDS,
                    COMMANDS_CONSUMER,
                    &subjects::commands_for(SERVICE),
                ),
                commands::CommandHandler::new(calendar.clone()),
            )
            .with_turnstile(turnstile.clone());
        let wms = foundation
            .consumer(
                ConsumerSettings::new(streams::EXTERNAL, WMS_CONSUMER, WMS_INBOUND),
                wms::WmsHandler,
            )
            .with_turnstile(turnstile.clone());
        let quality = foundation
            .consumer(
                ConsumerSettings::new(streams::EVENTS, QUALITY_CONSUMER, QUALITY_EVENTS),
                inspections::InspectionHandler::new(calendar.clone()),
            )
            .with_turnstile(turnstile);
        let chaser =
            chasing::ChaseWorker::new(foundation.pool.clone(), calendar, self.options.chase_poll);
        supervisor.spawn("outbox relay", foundation.relay().run(supervisor.token()));
        supervisor.spawn("commands consumer", commands.run(supervisor.token()));
        supervisor.spawn("wms consumer", wms.run(supervisor.token()));
        supervisor.spawn("quality consumer", quality.run(supervisor.token()));
        supervisor.spawn("supplier chaser", chaser.run(supervisor.token()));
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
