//! Which outbox rows a consumer publishes itself, once its transaction has
//! committed, instead of leaving them for the relay.
//!
//! A consumer run ([`crate::Consumer`]) owns its transaction: it knows when
//! the rows its handler wrote are committed, and it can publish them then,
//! with no relay pass (its own `BEGIN`, `DELETE … RETURNING`, `COMMIT`) and
//! no `NOTIFY` (whose commit takes a lock every notifying transaction of the
//! database queues on). [`capturing`] runs the handler with a task-local
//! record of the run's connection; [`record`] (called by
//! [`write`](super::write)) keeps a copy of the messages written on that
//! very connection. A write on any other connection (a task the handler
//! spawned, a transaction of its own) is not the run's to publish, and
//! goes to the relay as before.
//!
//! Rows a consumer will publish carry `relay_after`, a grace period: the
//! relay takes them only if they are still there by then (the consumer
//! crashed between commit and publish, or NATS refused). The consumer
//! deletes the rows it published in its next transaction, or on its own
//! when it falls idle.

use std::cell::RefCell;
use std::future::Future;

use sqlx::PgConnection;

use crate::envelope::Outgoing;

tokio::task_local! {
    static CAPTURE: RefCell<Capture>;
}

struct Capture {
    /// The address of the run's connection: it names the connection for as
    /// long as the run's transaction lives.
    connection: usize,
    messages: Vec<Outgoing>,
}

/// Identifies `conn` for [`capturing`]; a savepoint or a re-borrow of the
/// same connection has the same identity.
pub fn connection_id(conn: &PgConnection) -> usize {
    conn as *const PgConnection as usize
}

/// Runs `work` and returns its output with the messages written to the
/// outbox on the connection `connection` during it, in the order written.
/// The caller publishes them only once that connection's transaction has
/// committed: a run that rolls back drops them.
pub async fn capturing<F: Future>(connection: usize, work: F) -> (F::Output, Vec<Outgoing>) {
    let capture = RefCell::new(Capture {
        connection,
        messages: Vec::new(),
    });
    CAPTURE
        .scope(capture, async {
            let output = work.await;
            let messages =
                CAPTURE.with(|capture| std::mem::take(&mut capture.borrow_mut().messages));
            (output, messages)
        })
        .await
}

/// Whether `conn` is the connection of the enclosing [`capturing`] run:
/// its rows are the run's to publish, and the relay leaves them alone for a
/// while.
pub(super) fn is_run_connection(conn: &PgConnection) -> bool {
    let connection = connection_id(conn);
    CAPTURE
        .try_with(|capture| capture.borrow().connection == connection)
        .unwrap_or(false)
}

/// Keeps a copy of `messages`, written on the connection of the enclosing
/// [`capturing`] run ([`is_run_connection`]).
pub(super) fn record(conn: &PgConnection, messages: &[Outgoing]) {
    let connection = connection_id(conn);
    let _ = CAPTURE.try_with(|capture| {
        let mut capture = capture.borrow_mut();
        if capture.connection == connection {
            capture.messages.extend(messages.iter().cloned());
        }
    });
}
