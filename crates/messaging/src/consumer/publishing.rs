//! What a consumer publishes itself (ADR 0016).
//!
//! The messages a committed run wrote to the outbox go to a [`Publisher`]:
//! a task beside the consumer's loop that publishes them in the order the
//! runs committed, so the loop goes on to its next batch while the server
//! acknowledges. The event ids acknowledged collect in [`PublishedRows`];
//! the consumer deletes their rows in its next transaction, or on its own
//! once it is idle.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::bus::Bus;
use crate::envelope::Outgoing;
use crate::outbox;

/// How long a consumer with published rows still to delete waits for its
/// next transaction to delete them in before it deletes them on its own.
const IDLE_FORGET: Duration = Duration::from_millis(50);

/// Publishes the runs' messages, one run after another.
pub(super) struct Publisher {
    queue: mpsc::UnboundedSender<Vec<Outgoing>>,
    task: JoinHandle<()>,
}

impl Publisher {
    pub(super) fn start(bus: Bus, rows: PublishedRows) -> Self {
        let (queue, mut runs) = mpsc::unbounded_channel::<Vec<Outgoing>>();
        let task = tokio::spawn(async move {
            while let Some(written) = runs.recv().await {
                rows.add(outbox::publish_written(&bus, &written).await);
            }
        });
        Publisher { queue, task }
    }

    /// Queues what a committed run wrote. A message that never reaches the
    /// server (the process stops first) waits in the outbox for the relay.
    pub(super) fn publish(&self, written: Vec<Outgoing>) {
        if !written.is_empty() {
            // The task ends only once the queue is closed, in `stop`.
            let _ = self.queue.send(written);
        }
    }

    /// Publishes what is queued, then stops.
    pub(super) async fn stop(self) {
        drop(self.queue);
        let _ = self.task.await;
    }
}

/// The event ids a consumer published itself whose outbox rows are still to
/// be deleted ([`outbox::forget`]), shared by the consumer's loop and its
/// [`Publisher`]. The lock is never held across an await.
#[derive(Clone, Default)]
pub(super) struct PublishedRows {
    published: Arc<Mutex<Published>>,
    added: Arc<Notify>,
}

#[derive(Default)]
struct Published {
    ids: Vec<Uuid>,
    /// When the oldest of `ids` was added.
    since: Option<Instant>,
}

impl PublishedRows {
    fn lock(&self) -> MutexGuard<'_, Published> {
        // A panic while the lock was held leaves a list of ids, still valid.
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn add(&self, ids: Vec<Uuid>) {
        if ids.is_empty() {
            return;
        }
        {
            let mut published = self.lock();
            published.since.get_or_insert_with(Instant::now);
            published.ids.extend(ids);
        }
        self.added.notify_waiters();
    }

    pub(super) fn take(&self) -> Vec<Uuid> {
        let mut published = self.lock();
        published.since = None;
        std::mem::take(&mut published.ids)
    }

    pub(super) fn waiting_longer_than(&self, limit: Duration) -> bool {
        self.lock()
            .since
            .is_some_and(|since| since.elapsed() > limit)
    }

    /// Resolves once rows have waited [`IDLE_FORGET`] with nothing else to
    /// do: the caller's `select!` drops it whenever a batch comes first.
    pub(super) async fn idle_with_rows(&self) {
        loop {
            let added = self.added.notified();
            tokio::pin!(added);
            // Registered before the look, so an `add` in between wakes it.
            added.as_mut().enable();
            if !self.lock().ids.is_empty() {
                tokio::time::sleep(IDLE_FORGET).await;
                return;
            }
            added.await;
        }
    }
}
