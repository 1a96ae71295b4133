//! The timer worker: fires due saga timers.
//!
//! Timers are rows (`saga_timers`), so a deadline set before a crash fires
//! after the restart. Due rows are claimed with `FOR UPDATE SKIP LOCKED`, so
//! coordinator replicas share them, and each fires in the order's trace.

use std::time::Duration;

use crate::engine::{DueTimer, Engine};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct TimerWorker {
    pool: PgPool,
    engine: Engine,
    poll_interval: Duration,
    batch_size: i64,
}

impl TimerWorker {
    pub fn new(pool: PgPool, engine: Engine, poll_interval: Duration) -> Self {
        TimerWorker {
            pool,
            engine,
            poll_interval,
            batch_size: 100,
        }
    }

    pub async fn run(self, cancel: CancellationToken) -> crate::Result<()> {
        loop {
            let fired = match self.fire_due().await {
                Ok(fired) => fired,
                Err(err) => {
                    tracing::warn!(error = %err, "timer pass failed, retrying");
                    0
                }
            };
            if fired as i64 >= self.batch_size {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// Fires every timer due by the engine's clock, one transaction per
    /// batch. Returns how many fired.
    pub async fn fire_due(&self) -> crate::Result<usize> {
        let now: DateTime<Utc> = self.engine.now();
        let mut tx = self.pool.begin().await?;
        let due: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT t.order_id, t.step, s.traceparent FROM saga_timers t \
             JOIN sagas s USING (order_id) \
             WHERE t.fire_at <= $1 ORDER BY t.fire_at LIMIT $2 FOR UPDATE OF t SKIP LOCKED",
        )
        .bind(now)
        .bind(self.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let due: Vec<DueTimer> = due
            .into_iter()
            .map(|(order_id, timer, traceparent)| DueTimer {
                order_id,
                timer,
                traceparent,
            })
            .collect();
        self.engine.on_timers(&mut tx, &due).await?;
        tx.commit().await?;
        Ok(due.len())
    }
}
