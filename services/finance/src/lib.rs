//! The finance service: payment terms and schedules, invoices, payments and
//! receivables, credit notes, payment chasing (dunning, extensions,
//! collection), refunds, and the per-order cost ledger.
//!
//! How data flows through the modules:
//! - [`terms`] is pure: it parses the order's `payment_terms` text into
//!   terms (share, trigger, due days) and prices them against the total so
//!   the installments always sum to it exactly. It also holds the one
//!   mapping of triggers, invoice kinds and milestones to the shared
//!   protobuf enums, which events carry beside the old strings.
//! - [`commands`] consumes saga commands (`gendan.cmd.finance.*`, durable
//!   `finance-commands`): `OpenReceivable` stores the receivable and its
//!   schedule and issues the deposit invoice (a later revision of it, an
//!   amended order, goes to [`amendments`]: the schedule repriced at the new
//!   total, the difference on what was invoiced billed by an additional
//!   invoice or taken off by a credit note), `InvoiceBalance` issues the
//!   invoices of a milestone, `CancelReceivable` voids and computes the
//!   refund; [`chasing`] handles the answers to an escalation,
//!   `ExtendPaymentDue` and `ReferToCollection`; [`credit_notes`] handles
//!   `IssueCreditNote` (a resolved claim); [`restate`] answers
//!   `RestateFact` (the saga asking again for an overdue `DepositReceived`:
//!   the fact again under its first event id, or `StatusReported` with
//!   where the deposit stands); [`estimates`] handles `EstimateCosts` (the
//!   review's cost estimate, stored per revision, the budget an
//!   `OpenReceivable` without one takes), [`closing`] `CloseCostLedger` (the
//!   ledger's final figures). Each is idempotent by its business key and
//!   answers with events.
//! - [`estimate`] is pure: the departments' answers costed with finance's
//!   labour and inspection rates, valued in the order currency at the
//!   rates in force, summed per category and measured against the order
//!   value and the customer's margin floor; and what the customer would
//!   owe with the order, against its credit limit.
//! - [`receivables`] owns the receivable tables: invoice numbering, issuing,
//!   applying payments and credit notes to the oldest open invoice
//!   ([`allocation`] is the pure rule) and announcing deposit received /
//!   paid in full.
//! - [`balance`] is the one notion of what the customer owes (the current
//!   revision's total less claims' credit notes) against what they paid
//!   (less refunds): outstanding and refund due, for payments, credit
//!   notes, amendments, cancellations, refunds, collection and
//!   `GetReceivable` alike.
//! - [`dunning_worker`] runs on the service [`clock`]: each pass reminds
//!   unpaid invoices on the stored schedule (`PaymentReminder`) and
//!   escalates the ones the last reminder did not settle
//!   (`PaymentEscalated`, once); [`dunning`] is the pure decision.
//! - [`refunds`] pays out what a cancellation or a credit note leaves owed
//!   to the customer (`RecordRefund`, `RefundPaid`).
//! - [`costs`] consumes every domain event (`gendan.evt.>`, durable
//!   `finance-costs`) and books purchase orders, labour and rework of
//!   completed work orders, final inspections, freight and re-bookings
//!   (expedite) on the order's cost ledger, and claims' credit notes as
//!   cost of the claim (category `credit_note`: the money the order gave
//!   back is what the claim cost it). Each entry is valued in the order
//!   currency at the rate in force on its booking date ([`exchange_rates`],
//!   the arithmetic in [`fx`], pure); one without a rate waits
//!   (`ExchangeRateMissing`) until `SetExchangeRate` values it
//!   (`CostsConverted`). Overruns of the budget, and of each category's
//!   plan, are announced once per crossing (`CostOverrun`). [`ledger`]
//!   adds the ledger up for `GetCostLedger` and the closing.
//! - [`api`] serves `gendan.v1.FinanceService`: payments and refunds,
//!   receivable and overdue reads, the dunning schedule, the cost ledger,
//!   labour rates, exchange rates (served by [`exchange_rates`]), the
//!   inspection rate and the cost estimate (served by
//!   [`estimates`]). Requests are checked by [`validate`] before anything is
//!   read or written.
//! - Every event goes through the outbox in the transaction that changed the
//!   state; the relay publishes it.

pub mod allocation;
pub mod amendments;
pub mod api;
pub mod balance;
pub mod chasing;
pub mod clock;
pub mod closing;
pub mod commands;
pub mod costs;
pub mod credit_notes;
pub mod dunning;
pub mod dunning_worker;
pub mod estimate;
pub mod estimates;
pub mod exchange_rates;
pub mod fx;
pub mod ledger;
pub mod receivables;
pub mod refunds;
pub mod restate;
pub mod terms;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use gendan_grpc::{Code, FieldError, ServiceErrorCode};
use gendan_messaging::{ConsumerSettings, HandlerError, streams, subjects};
use gendan_proto::v1::finance_service_server::FinanceServiceServer;
use gendan_runtime::{Foundation, Supervisor};
use gendan_settings::ServiceSettings;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use clock::{Clock, ManualClock, SystemClock};

pub const SERVICE: &str = "finance";

/// Durable consumer of saga commands for this service.
pub const COMMANDS_CONSUMER: &str = "finance-commands";
/// Durable consumer of domain events booked on the cost ledger.
pub const COSTS_CONSUMER: &str = "finance-costs";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error(transparent)]
    Terms(#[from] terms::TermsError),
    #[error("no receivable for order {0:?}")]
    ReceivableNotFound(String),
    #[error("no cost ledger for order {0:?}: no receivable and no cost booked")]
    LedgerNotFound(String),
    #[error("the receivable of order {0:?} is cancelled")]
    Cancelled(String),
    #[error(
        "a payment of {amount_minor} exceeds the {outstanding_minor} outstanding on order {order_id:?}"
    )]
    Overpayment {
        order_id: String,
        amount_minor: i64,
        outstanding_minor: i64,
    },
    #[error("order {order_id:?} has no unpaid {kind} invoice")]
    NoUnpaidInvoice {
        order_id: String,
        kind: &'static str,
    },
    #[error("nothing is outstanding on order {0:?}")]
    NothingOutstanding(String),
    #[error("nothing is due to the customer of order {0:?}")]
    NoRefundDue(String),
    #[error("amounts of order {0:?} overflow")]
    Overflow(String),
    #[error("no inspection rate is set: set one with SetInspectionRate")]
    InspectionRateNotSet,
    #[error("no cost estimate for order {0:?}")]
    CostEstimateNotFound(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Runtime(#[from] gendan_runtime::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ServiceErrorCode for Error {
    fn code(&self) -> Code {
        match self {
            Error::InvalidField(_) | Error::Terms(_) => Code::InvalidArgument,
            Error::ReceivableNotFound(_)
            | Error::LedgerNotFound(_)
            | Error::InspectionRateNotSet
            | Error::CostEstimateNotFound(_) => Code::NotFound,
            // The request is fine; the receivable's state does not allow it.
            Error::Cancelled(_)
            | Error::Overpayment { .. }
            | Error::NoUnpaidInvoice { .. }
            | Error::NothingOutstanding(_)
            | Error::NoRefundDue(_) => Code::FailedPrecondition,
            Error::Database(_) => Code::Unavailable,
            Error::Overflow(_) | Error::Runtime(_) => Code::Internal,
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
            // The message or the state it refers to is wrong: redelivery
            // gives the same answer.
            Error::InvalidField(_)
            | Error::Terms(_)
            | Error::ReceivableNotFound(_)
            | Error::LedgerNotFound(_)
            | Error::Cancelled(_)
            | Error::Overpayment { .. }
            | Error::NoUnpaidInvoice { .. }
            | Error::NothingOutstanding(_)
            | Error::NoRefundDue(_)
            | Error::InspectionRateNotSet
            | Error::CostEstimateNotFound(_)
            | Error::Overflow(_) => HandlerError::Rejected(err.to_string()),
        }
    }
}

/// Options beyond the shared settings: the clock the service reads "today"
/// from (dunning, due-date and value-date checks) and how often the dunning
/// worker looks for work.
#[derive(Debug, Clone)]
pub struct Options {
    pub clock: Arc<dyn Clock>,
    pub dunning_poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Arc::new(SystemClock),
            // Dunning works in days; a minute's delay is invisible and the
            // pass is one indexed query when nothing is due.
            dunning_poll: Duration::from_secs(60),
        }
    }
}

/// The finance service, bound and migrated, ready to run.
#[derive(Debug)]
pub struct Application {
    foundation: Foundation,
    options: Options,
}

impl Application {
    /// Connects the database and NATS, runs migrations, declares the streams
    /// and binds the gRPC listener; runs on the system clock.
    pub async fn build(settings: ServiceSettings) -> Result<Self> {
        Self::build_with(settings, Options::default()).await
    }

    /// [`build`](Self::build) with explicit [`Options`] (tests drive the
    /// clock).
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

    /// Runs the gRPC server, the outbox relay, both consumers and the
    /// dunning worker until `cancel` fires or one of them fails; the first
    /// error is returned.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let foundation = self.foundation;
        let clock = self.options.clock;
        let mut supervisor = Supervisor::new(SERVICE, &cancel);
        let api =
            FinanceServiceServer::new(api::FinanceApi::new(foundation.pool.clone(), clock.clone()));
        let commands = foundation.consumer(
            ConsumerSettings::new(
                streams::COMMANDS,
                COMMANDS_CONSUMER,
                &subjects::commands_for(SERVICE),
            ),
            commands::CommandHandler::new(clock.clone()),
        );
        // Its progress tells CloseCostLedger when every cost is booked.
        let costs = foundation.consumer(
            ConsumerSettings {
                track_progress: true,
                ..ConsumerSettings::new(streams::EVENTS, COSTS_CONSUMER, subjects::EVENTS)
            },
            costs::CostHandler,
        );
        let dunning = dunning_worker::DunningWorker::new(
            foundation.pool.clone(),
            clock,
            self.options.dunning_poll,
        );
        supervisor.spawn("outbox relay", foundation.relay().run(supervisor.token()));
        supervisor.spawn("commands consumer", commands.run(supervisor.token()));
        supervisor.spawn("costs consumer", costs.run(supervisor.token()));
        supervisor.spawn("dunning worker", dunning.run(supervisor.token()));
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
