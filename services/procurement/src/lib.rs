//! The procurement service: materials, suppliers and their offers, bills of
//! materials, stock and reservations, purchase orders and the lots received
//! against them.
//!
//! How data flows through the modules:
//! - [`api`] serves `gendan.v1.ProcurementService` over gRPC. Every request
//!   is checked by [`validate`] first, so nothing is written on invalid
//!   input; master data is stored by [`catalog`].
//! - [`netting`] is the pure heart: BOM explosion with scrap allowance,
//!   netting against free stock and open purchase orders, supplier choice
//!   and purchase quantities, the earliest material date.
//! - [`purchasing`] keeps stock, reservations, purchase orders, their
//!   allocation to orders and received lots, under one advisory lock.
//! - [`commands`] consumes saga commands (`gendan.cmd.procurement.*`):
//!   `CheckMaterials` answers `MaterialsChecked`; `ProcureMaterials`
//!   reserves and buys once per order and answers `MaterialsOrdered` (plus
//!   `PurchaseOrderPlaced` per PO, `MaterialsReady` when nothing is awaited)
//!   or `ProcurementFailed`; `CancelMaterials` answers `MaterialsCancelled`.
//! - [`wms`] consumes the warehouse's goods receipts
//!   (`gendan.ext.wms.inbound.*`), records lots and announces
//!   `GoodsReceived`, from which quality opens the incoming inspection.
//! - [`inspections`] consumes quality's incoming inspection results: a
//!   passed lot enters stock for the orders waiting on it (and may make an
//!   order `MaterialsReady`); a failed lot is returned and re-ordered.
//! - Every event goes through the outbox in the transaction that changed the
//!   state; the relay publishes it.

pub mod api;
pub mod catalog;
pub mod commands;
pub mod inspections;
pub mod netting;
pub mod purchasing;
pub mod validate;
pub mod wms;

use gendan_grpc::{Code, FieldError, ServiceErrorCode};
use gendan_messaging::{ConsumerSettings, HandlerError, streams, subjects};
use gendan_proto::v1::procurement_service_server::ProcurementServiceServer;
use gendan_runtime::{Foundation, Supervisor};
use gendan_settings::ServiceSettings;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

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
            Error::UnknownMaterial(_)
            | Error::NoBillOfMaterials(_)
            | Error::UnknownPurchaseOrder(_)
            | Error::OrderNotFound(_) => Code::NotFound,
            Error::NotAllowed(_) => Code::FailedPrecondition,
            Error::Database(_) => Code::Unavailable,
            Error::Runtime(_) => Code::Internal,
        }
    }
}

impl From<Error> for HandlerError {
    fn from(err: Error) -> Self {
        match err {
            // Temporary: the next delivery may find the database back.
            Error::Database(_) | Error::Runtime(_) => HandlerError::Retry(err.to_string()),
            // The message, or what it refers to, is wrong: redelivery gives
            // the same answer.
            Error::InvalidField(_)
            | Error::UnknownMaterial(_)
            | Error::NoBillOfMaterials(_)
            | Error::UnknownPurchaseOrder(_)
            | Error::OrderNotFound(_)
            | Error::NotAllowed(_) => HandlerError::Rejected(err.to_string()),
        }
    }
}

/// Thousandths of a unit as the wire's `double`.
pub fn milli_to_f64(milli: i64) -> f64 {
    milli as f64 / 1000.0
}

/// The procurement service, bound and migrated, ready to run.
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

    /// Runs the gRPC server, the outbox relay and the three consumers until
    /// `cancel` fires or one of them fails; the first error is returned.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let foundation = self.foundation;
        let mut supervisor = Supervisor::new(SERVICE, &cancel);
        let api = ProcurementServiceServer::new(api::ProcurementApi::new(foundation.pool.clone()));
        let commands = foundation.consumer(
            ConsumerSettings::new(
                streams::COMMANDS,
                COMMANDS_CONSUMER,
                &subjects::commands_for(SERVICE),
            ),
            commands::CommandHandler,
        );
        let wms = foundation.consumer(
            ConsumerSettings::new(streams::EXTERNAL, WMS_CONSUMER, WMS_INBOUND),
            wms::WmsHandler,
        );
        let quality = foundation.consumer(
            ConsumerSettings::new(streams::EVENTS, QUALITY_CONSUMER, QUALITY_EVENTS),
            inspections::InspectionHandler,
        );
        supervisor.spawn("outbox relay", foundation.relay().run(supervisor.token()));
        supervisor.spawn("commands consumer", commands.run(supervisor.token()));
        supervisor.spawn("wms consumer", wms.run(supervisor.token()));
        supervisor.spawn("quality consumer", quality.run(supervisor.token()));
        supervisor.spawn(
            "grpc server",
            gendan_grpc::serve(foundation.listener, api, supervisor.token()),
        );
        Ok(supervisor.wait().await?)
    }
}
