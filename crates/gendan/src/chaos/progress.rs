//! Waiting for the orders to close after the faults: the database is asked
//! every second (orders closed in the orders schema, sagas completed and
//! stalled in the saga's), progress is printed every five seconds, and any
//! service process that ends meanwhile is started again. The wait is
//! bounded; it also ends early when every order still open is stalled and
//! stays so, since only a person moves a stalled order on. Neither ending
//! is an error here: the checks report it.

use std::time::{Duration, Instant};

use gendan_proto::v1::Phase;
use sqlx::PgPool;

use super::services::Services;

/// How long every open order must stay stalled before the wait gives up.
const STALLED_FOR: Duration = Duration::from_secs(30);
const PRINT_EVERY: Duration = Duration::from_secs(5);
/// No order closing for this long ends the wait.
const NO_PROGRESS: Duration = Duration::from_secs(180);
const POLL: Duration = Duration::from_secs(1);

/// How the wait ended.
#[derive(Debug, Clone, Default)]
pub(crate) struct Closure {
    /// Orders in phase closed when it ended.
    pub closed: i64,
    /// Every order closed and every saga completed.
    pub all: bool,
    pub waited: Duration,
    /// Why it stopped waiting, when not every order closed.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    closed: i64,
    completed: i64,
    stalled: i64,
}

async fn counts(pool: &PgPool) -> sqlx::Result<Counts> {
    let (closed, completed, stalled): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders.orders WHERE phase = $1), \
                (SELECT count(*) FROM saga.sagas WHERE status = 'completed'), \
                (SELECT count(*) FROM saga.sagas WHERE status = 'stalled')",
    )
    .bind(Phase::Closed as i32)
    .fetch_one(pool)
    .await?;
    Ok(Counts {
        closed,
        completed,
        stalled,
    })
}

/// Waits until `expected` orders are closed and their sagas completed, at
/// most `bound`.
pub(crate) async fn wait_closed(
    pool: &PgPool,
    services: &mut Services,
    expected: usize,
    bound: Duration,
) -> anyhow::Result<Closure> {
    let expected = expected as i64;
    let started = Instant::now();
    let mut printed: Option<Instant> = None;
    let mut stuck_since: Option<Instant> = None;
    let mut last = Counts::default();
    let mut problem: Option<String>;
    let mut progressed = Instant::now();
    loop {
        for line in services.restart_ended()? {
            println!("  [{:>6.1}s] {line}", started.elapsed().as_secs_f64());
        }
        match counts(pool).await {
            Ok(now) => {
                if now.closed != last.closed {
                    progressed = Instant::now();
                }
                last = now;
                problem = None;
                if progressed.elapsed() >= NO_PROGRESS {
                    // At full speed an order closes in seconds: this long
                    // without one means the open ones wait for something
                    // that will not come (the checks say what).
                    return Ok(Closure {
                        closed: now.closed,
                        all: false,
                        waited: started.elapsed(),
                        reason: Some(format!(
                            "no order closed in the last {} s",
                            NO_PROGRESS.as_secs()
                        )),
                    });
                }
                if now.closed >= expected && now.completed >= expected {
                    return Ok(Closure {
                        closed: now.closed,
                        all: true,
                        waited: started.elapsed(),
                        reason: None,
                    });
                }
                if now.stalled > 0 && now.closed + now.stalled >= expected {
                    let since = *stuck_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= STALLED_FOR {
                        return Ok(Closure {
                            closed: now.closed,
                            all: false,
                            waited: started.elapsed(),
                            reason: Some(format!(
                                "{} orders stalled, every order still open, for {} s",
                                now.stalled,
                                STALLED_FOR.as_secs()
                            )),
                        });
                    }
                } else {
                    stuck_since = None;
                }
            }
            // PostgreSQL restarting, or saturated: ask again.
            Err(err) => problem = Some(err.to_string()),
        }
        if printed.is_none_or(|at| at.elapsed() >= PRINT_EVERY) {
            printed = Some(Instant::now());
            let mut line = format!(
                "  [{:>6.1}s] {}/{expected} closed, {} sagas stalled",
                started.elapsed().as_secs_f64(),
                last.closed,
                last.stalled
            );
            if let Some(problem) = &problem {
                line.push_str(&format!(" (database: {problem})"));
            }
            println!("{line}");
        }
        if started.elapsed() >= bound {
            return Ok(Closure {
                closed: last.closed,
                all: false,
                waited: started.elapsed(),
                reason: Some(format!(
                    "{}/{expected} closed after {} s",
                    last.closed,
                    bound.as_secs()
                )),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
