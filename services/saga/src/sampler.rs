//! The saga's gauges, sampled every fifteen seconds by every coordinator
//! replica (each sees the same tables, so a dashboard takes one replica's
//! figures, or the max across them):
//!
//! | series | labels |
//! | --- | --- |
//! | `gendan_saga_orders` | `phase`, `status`: sagas by where they are |
//! | `gendan_saga_open_decisions` | — : questions waiting for a person |
//! | `gendan_saga_timers_due` | — : waits whose deadline has passed and that the timer worker has not fired yet |
//!
//! A phase or status that no saga is in any more is set to 0, so a
//! dashboard does not keep showing the last count it saw.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(15);

/// Samples until `cancel` fires; a failed sample is logged and tried again
/// at the next tick.
pub async fn run(pool: PgPool, cancel: CancellationToken) -> Result<(), sqlx::Error> {
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut every = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = every.tick() => {}
        }
        if let Err(err) = sample(&pool, &mut seen).await {
            tracing::debug!(error = %err, "cannot sample the saga gauges");
        }
    }
}

async fn sample(pool: &PgPool, seen: &mut BTreeSet<(String, String)>) -> Result<(), sqlx::Error> {
    let by_phase: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT phase, status, count(*) FROM sagas GROUP BY phase, status")
            .fetch_all(pool)
            .await?;
    let (decisions, timers_due): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM saga_decisions WHERE answer IS NULL), \
                (SELECT count(*) FROM saga_timers WHERE fire_at <= now())",
    )
    .fetch_one(pool)
    .await?;
    let now: BTreeSet<(String, String)> = by_phase
        .iter()
        .map(|(phase, status, _)| (phase.clone(), status.clone()))
        .collect();
    for (phase, status) in seen.difference(&now) {
        metrics::gauge!("gendan_saga_orders", "phase" => phase.clone(), "status" => status.clone())
            .set(0.0);
    }
    for (phase, status, count) in by_phase {
        metrics::gauge!("gendan_saga_orders", "phase" => phase, "status" => status)
            .set(count as f64);
    }
    *seen = now;
    metrics::gauge!("gendan_saga_open_decisions").set(decisions as f64);
    metrics::gauge!("gendan_saga_timers_due").set(timers_due as f64);
    Ok(())
}
