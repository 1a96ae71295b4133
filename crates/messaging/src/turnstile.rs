//! One at a time, waiting outside the database.
//!
//! Some work is serialised in the database anyway: procurement's netting
//! takes one service-wide advisory lock (ADR 0013). A transaction that waits
//! for such a lock holds a pooled connection, a transaction id and a
//! snapshot for as long as it waits; under load, a queue of such waiters
//! exhausts the pool and keeps the oldest snapshot of the whole database
//! back, so no vacuum may remove the rows other services' queues (the
//! outboxes) leave behind, and their scans slow down (docs/perf.md).
//!
//! A [`Turnstile`] shared by every task of one process that takes the lock
//! moves that queue into memory: a task enters before it begins its
//! transaction and leaves when the transaction is over, so at most one
//! transaction per process waits in the database (for another replica's
//! holder). Fair: tasks enter in the order they arrived. A consumer given
//! one ([`Consumer::with_turnstile`](crate::Consumer::with_turnstile))
//! enters it for each run of a batch.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// A fair, process-wide "one at a time", cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Turnstile(Arc<Mutex<()>>);

/// The turn of one task; the next enters when it is dropped.
pub type Turn = OwnedMutexGuard<()>;

impl Turnstile {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for this task's turn.
    pub async fn enter(&self) -> Turn {
        self.0.clone().lock_owned().await
    }
}
