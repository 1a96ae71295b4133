//! Announcing an order until its workflow starts (DESIGN §4, "nothing
//! waits forever").
//!
//! `CreateOrder` stores the order and its `OrderCreated` in one transaction,
//! and the relay publishes it. Should the bus lose that message after
//! acknowledging it, the saga would never hear of the order. So each pass
//! looks for orders still in phase `received` (the saga moves every order
//! it starts to `review` at once) whose last announcement is older than the
//! wait, and writes `OrderCreated` to the outbox again: rebuilt from the
//! stored order, under the same fact id, so a saga that did get it drops the
//! repeat. The wait doubles with every attempt up to an hour; from the third
//! attempt on every announcement is a warning in the log naming the order.
//!
//! One transaction per batch: the due orders are claimed `FOR UPDATE SKIP
//! LOCKED` (replicas share the work), their attempt counts bumped and their
//! announcements written together.

use std::time::Duration;

use gendan_messaging::outbox;
use gendan_proto::v1::Phase;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Result, intake, store};

/// The settings variable of the first wait, in seconds.
pub const ANNOUNCE_AGAIN_VARIABLE: &str = "GENDAN_ORDERS__ANNOUNCE_AGAIN_SECS";
/// The longest wait between two announcements.
const MAX_WAIT: Duration = Duration::from_secs(3600);
const BATCH: i64 = 100;

/// Orders still in phase received whose wait since the last announcement
/// (`$1` seconds, doubled per attempt, at most `$2`) is over.
const DUE: &str = "\
    SELECT order_id FROM orders \
    WHERE phase = $3 AND workflow_status = 'running' \
      AND COALESCE(announced_at, created_at) \
        + LEAST(make_interval(secs => $1 * power(2, LEAST(announce_attempts, 16))), \
                make_interval(secs => $2)) <= now() \
    ORDER BY created_at LIMIT $4 \
    FOR UPDATE SKIP LOCKED";

#[derive(Debug, Clone)]
pub struct Announcer {
    pool: PgPool,
    /// The first wait after the order was created; doubled per attempt.
    after: Duration,
    poll: Duration,
}

impl Announcer {
    pub fn new(pool: PgPool, after: Duration) -> Self {
        // Looked at several times per wait, never more than every second
        // nor less than every minute.
        let poll = (after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        Announcer { pool, after, poll }
    }

    /// Runs passes until cancelled; a failed pass is logged and tried again.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        loop {
            if let Err(err) = self.pass().await {
                tracing::warn!(error = %err, "announcing unstarted orders failed");
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Announces every due order again; returns how many.
    pub async fn pass(&self) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<Uuid> = sqlx::query_scalar(DUE)
            .bind(self.after.as_secs_f64())
            .bind(MAX_WAIT.as_secs_f64())
            .bind(Phase::Received as i32)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let attempts: Vec<(Uuid, i32)> = sqlx::query_as(
            "UPDATE orders SET announce_attempts = announce_attempts + 1, announced_at = now() \
             WHERE order_id = ANY($1) RETURNING order_id, announce_attempts",
        )
        .bind(&due)
        .fetch_all(&mut *tx)
        .await?;
        let mut announcements = Vec::with_capacity(due.len());
        for order_id in &due {
            let Some(order) = store::get_order(&mut tx, *order_id).await? else {
                continue;
            };
            announcements.push(intake::announcement(&order));
        }
        outbox::write(&mut tx, &announcements).await?;
        tx.commit().await?;
        for (order_id, attempt) in attempts {
            if attempt >= 3 {
                tracing::warn!(%order_id, attempt, "the workflow of the order has not started: announced again");
            } else {
                tracing::info!(%order_id, attempt, "order announced again");
            }
        }
        Ok(announcements.len())
    }
}
