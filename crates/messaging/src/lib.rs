//! Reliable messaging on NATS JetStream, with PostgreSQL as the source of truth.
//!
//! How a message travels:
//! 1. A service changes its state and, in the same transaction, writes the
//!    messages it emits to its [`outbox`] table ([`outbox::write`]).
//! 2. The [`Relay`] publishes outbox rows to JetStream with `Nats-Msg-Id` set
//!    to the event id (server-side de-duplication) and deletes them once the
//!    server acknowledged. Several relays may run at once (`SKIP LOCKED`).
//! 3. A [`Consumer`] pulls batches from a durable consumer, decodes each
//!    [`Envelope`], and runs its [`Handler`] for the whole batch in one
//!    transaction, recording the batch's message ids in the [`inbox`] in one
//!    statement so redelivery has no second effect. A failing message rolls
//!    the transaction back and the batch runs again without it. Then it acks.
//! 4. A message that cannot be decoded, has an unknown schema version, is
//!    rejected by its handler, or keeps failing after bounded redeliveries goes
//!    to `gendan.dlq.<consumer>` with its reason and original bytes.
//!
//! [`streams`] declares the streams and [`subjects`] the subject scheme; the
//! W3C `traceparent` rides along in outbox rows and message headers.

pub mod bus;
pub mod consumer;
pub mod envelope;
pub mod inbox;
pub mod outbox;
pub mod restate;
pub mod streams;
pub mod subjects;
pub mod turnstile;

pub use bus::Bus;
pub use consumer::{Batch, BatchFailure, Consumer, ConsumerSettings, Handler, HandlerError};
pub use envelope::{Cause, Incoming, Outgoing, SCHEMA_VERSION, decode_envelope, fact_id};
pub use outbox::{Relay, RelaySettings};
pub use turnstile::{Turn, Turnstile};

/// The messaging tables (outbox, inbox) for a service schema; run with
/// `gendan_storage::migrate` next to the service's own migrator.
pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("JetStream {what} failed: {reason}")]
    JetStream { what: String, reason: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl Error {
    pub(crate) fn jetstream(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::JetStream {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
