//! The saga coordinator: drives every order through the workflow.
//!
//! - [`workflow`]: the phases and steps as data (what each step sends, which
//!   events answer it, what a failure and a timeout do, the decisions and
//!   their effects). The review prices the order before confirming it
//!   (each department's part, then finance's estimate, and the `margin`
//!   decision when it is below the customer's floor); closing closes the
//!   cost ledger before the order.
//! - [`engine`]: one load → change → save path for events, timers, answers
//!   and operator actions, around a pure core that starts steps, loops back,
//!   opens decisions, parks a saga as stalled and compensates a cancelled
//!   one; every change to one order happens under that saga's row lock.
//! - [`state`]: one saga in memory; [`facts`]: what it learned, typed;
//!   [`effects`]: what each event teaches it; [`store`]: its rows, saved
//!   with the outgoing messages (outbox) in one transaction.
//! - [`exceptions`]: the exception register (including what the cost
//!   ledger reports: an overrun per category, a cost without an exchange
//!   rate); [`shares`]: a carrier's claimed units shared among the products
//!   that travelled.
//! - [`calendar`]: the order's time-and-action calendar, pure: its
//!   milestones, what each waits for, and the rule that re-projects them.
//! - [`timers`]: the durable timer worker; [`clock`]: the time it runs on.
//! - [`api`]: gRPC `SagaService`.
//!
//! Data flow: `gendan.evt.>` → consumer `saga-events` → [`engine::Engine`] →
//! outbox → relay → `gendan.cmd.<service>.<command>`.

pub mod api;
pub mod calendar;
pub mod clock;
pub mod effects;
pub mod engine;
pub mod exceptions;
pub mod facts;
pub mod sampler;
pub mod shares;
pub mod state;
pub mod store;
pub mod timers;
pub mod workflow;

use std::sync::Arc;
use std::time::Duration;

use gendan_grpc::{Code, FieldError, ServiceErrorCode};
use gendan_messaging::{
    Batch, BatchFailure, ConsumerSettings, Handler, HandlerError, Incoming, streams, subjects,
};
use gendan_runtime::{Foundation, Supervisor};
use gendan_settings::ServiceSettings;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

pub use calendar::CalendarSettings;
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::Engine;
pub use workflow::{Timing, Workflow};

pub const SERVICE: &str = "saga";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Runtime(#[from] gendan_runtime::Error),
}

impl ServiceErrorCode for Error {
    fn code(&self) -> Code {
        match self {
            Error::Invalid(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Database(_) => Code::Unavailable,
            Error::Runtime(_) => Code::Internal,
        }
    }
}

impl From<Error> for HandlerError {
    fn from(err: Error) -> Self {
        match err {
            // A deadlock or a restarting server runs the batch again.
            Error::Database(db) => HandlerError::database(db),
            other => HandlerError::Retry(other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn validate_order_id(order_id: &str) -> Result<()> {
    if uuid::Uuid::parse_str(order_id).is_err() {
        return Err(FieldError::new(
            "order_id",
            format!("{order_id:?} is not an order id (UUID)"),
        )
        .into());
    }
    Ok(())
}

/// Options beyond the shared settings: the workflow timing, the calendar
/// settings and the clock.
#[derive(Clone)]
pub struct Options {
    pub timing: Timing,
    /// The week and durations orders' calendars are planned with.
    pub calendar: CalendarSettings,
    pub clock: Arc<dyn Clock>,
    pub timer_poll: Duration,
}

impl Options {
    /// The defaults with the workflow timing from the environment (see
    /// [`Timing::from_env`]).
    pub fn from_env() -> std::result::Result<Self, gendan_settings::Error> {
        Ok(Options {
            timing: Timing::from_env()?,
            calendar: CalendarSettings::from_env()?,
            ..Options::default()
        })
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timing: Timing::default(),
            calendar: CalendarSettings::default(),
            clock: Arc::new(SystemClock),
            timer_poll: Duration::from_millis(250),
        }
    }
}

struct EventHandler {
    engine: Engine,
}

impl Handler for EventHandler {
    fn handles(&self, message: &Incoming) -> bool {
        self.engine.reacts_to(message.type_name())
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        let batch = Batch::new(EVENTS_CONSUMER, vec![message]);
        self.engine
            .on_events(conn, &batch)
            .await
            .map_err(|failure| match failure {
                BatchFailure::Message(_, err) | BatchFailure::Shared(err) => err,
            })
    }

    /// Every saga the run's events touch is loaded once and saved once
    /// ([`Engine::on_events`]).
    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        batch: &Batch<'_>,
    ) -> Result<(), BatchFailure> {
        self.engine.on_events(conn, batch).await
    }
}

/// The durable consumer of the saga's events.
const EVENTS_CONSUMER: &str = "saga-events";

pub struct Application {
    foundation: Foundation,
    engine: Engine,
    options: Options,
}

impl Application {
    pub async fn build(settings: ServiceSettings, options: Options) -> Result<Self> {
        let foundation =
            Foundation::connect(&settings, SERVICE, sqlx::migrate!("./migrations")).await?;
        let engine = Engine::new(Workflow::standard(options.timing), options.clock.clone())
            .with_calendar(options.calendar.clone());
        Ok(Application {
            foundation,
            engine,
            options,
        })
    }

    pub fn port(&self) -> u16 {
        self.foundation.port
    }

    pub fn pool(&self) -> &PgPool {
        &self.foundation.pool
    }

    /// Runs the gRPC server, the outbox relay, the event consumer and the
    /// timer worker until `cancel` fires or one of them fails.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let foundation = self.foundation;
        let mut supervisor = Supervisor::new(SERVICE, &cancel);
        let api = gendan_proto::v1::saga_service_server::SagaServiceServer::new(api::SagaApi::new(
            foundation.pool.clone(),
            self.engine.clone(),
        ));
        let events = foundation.consumer(
            ConsumerSettings::new(streams::EVENTS, EVENTS_CONSUMER, subjects::EVENTS),
            EventHandler {
                engine: self.engine.clone(),
            },
        );
        let timers = timers::TimerWorker::new(
            foundation.pool.clone(),
            self.engine.clone(),
            self.options.timer_poll,
        );
        supervisor.spawn("outbox relay", foundation.relay().run(supervisor.token()));
        supervisor.spawn("event consumer", events.run(supervisor.token()));
        supervisor.spawn("timer worker", timers.run(supervisor.token()));
        supervisor.spawn(
            "metrics sampler",
            sampler::run(foundation.pool.clone(), supervisor.token()),
        );
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
