//! What a chaos run must end with, checked in the services' own tables and
//! on the streams, each check printing its figure: every order created is
//! stored and closed; no fact was recorded twice (purchase orders, work
//! orders, final inspections, invoices, payments, cost lines, bookings,
//! tracking updates, timeline entries, customer notices); no saga stalled or
//! stranded and no decision left open; no dead letter; nothing left in an
//! outbox or unacknowledged on a consumer.
//!
//! A duplicate is a group of rows that state one fact. Where a unique
//! constraint already forbids the obvious duplicate (one timeline entry per
//! event id), the query looks for the one it does not cover (the same entry
//! under two event ids): each is `SELECT … GROUP BY … HAVING count(*) > 1`,
//! counted, with up to three groups shown when there are any.
//!
//! A query that fails is a failed check, not an aborted run.

use anyhow::anyhow;
use gendan_messaging::{Bus, streams};
use gendan_proto::v1::Phase;
use sqlx::PgPool;

use super::progress::Closure;
use super::resend::{self, Quiet};

/// One check's outcome: its figure, or why it failed.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub name: &'static str,
    pub outcome: Result<String, String>,
}

impl Check {
    fn print(&self) {
        match &self.outcome {
            Ok(figure) => println!("  {} ... {figure} ok", self.name),
            Err(details) => println!("  {} ... FAIL ({details})", self.name),
        }
    }

    pub(crate) fn passed(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// Groups of rows that state the same fact twice, per kind of fact.
pub(crate) const DUPLICATES: [(&str, &str); 10] = [
    (
        // A PO id is new for every placement: the same material from the
        // same supplier in the same quantity for one order, not as a
        // replacement, is one purchase placed twice.
        "no duplicate purchase orders",
        "SELECT order_id, material, supplier, quantity_milli, count(*) AS n \
         FROM procurement.purchase_orders WHERE replaces IS NULL \
         GROUP BY order_id, material, supplier, quantity_milli HAVING count(*) > 1",
    ),
    (
        // (order, kind, revision) is unique; a rework is of one
        // nonconformance and an amended run of one amendment.
        "no duplicate work orders",
        "SELECT order_id, kind, amendment, COALESCE(nonconformance_id, '') AS nonconformance_id, \
                count(*) AS n \
         FROM production.work_orders \
         WHERE status <> 'cancelled' AND (kind = 'rework' OR amendment > 0) \
         GROUP BY order_id, kind, amendment, COALESCE(nonconformance_id, '') HAVING count(*) > 1",
    ),
    (
        // (order, revision) is unique; after a pass nothing is inspected
        // again, so two passes of one order are one inspection twice.
        "no duplicate final inspections",
        "SELECT order_id, count(*) AS passed FROM quality.inspections \
         WHERE kind = 'final' AND status = 'passed' GROUP BY order_id HAVING count(*) > 1",
    ),
    (
        // (order, installment, revision) is unique; the sample orders'
        // terms have at most one installment of each kind.
        "no duplicate invoices",
        "SELECT order_id, kind, COALESCE(amendment_revision, 0) AS amendment_revision, count(*) AS n \
         FROM finance.invoices \
         GROUP BY order_id, kind, COALESCE(amendment_revision, 0) HAVING count(*) > 1",
    ),
    (
        // The idempotency key is unique; the same amount under the same
        // bank reference is one payment recorded twice.
        "no duplicate payments",
        "SELECT order_id, reference, amount_minor, count(*) AS n FROM finance.payments \
         GROUP BY order_id, reference, amount_minor HAVING count(*) > 1",
    ),
    (
        // (source fact, line) is unique; a description names its source
        // (PO, work order, booking), so two equal lines are one cost booked
        // twice.
        "no duplicate cost lines",
        "SELECT order_id, category, description, amount_minor, count(*) AS n \
         FROM finance.cost_entries \
         GROUP BY order_id, category, description, amount_minor HAVING count(*) > 1",
    ),
    (
        // (order, revision) is unique; a re-booking cancels the booking it
        // replaces, and a redelivery ships under a new bill of lading.
        "no duplicate bookings",
        "SELECT order_id, COALESCE(bill_of_lading, '') AS bill_of_lading, count(*) AS n \
         FROM logistics.bookings WHERE status = 'booked' \
         GROUP BY order_id, COALESCE(bill_of_lading, '') HAVING count(*) > 1",
    ),
    (
        "no duplicate tracking updates",
        "SELECT order_id, revision, status, location, at, count(*) AS n \
         FROM logistics.tracking_events \
         GROUP BY order_id, revision, status, location, at HAVING count(*) > 1",
    ),
    (
        // event_id is unique; the same entry under two event ids is one
        // event announced twice. Two facts of one type can share their
        // moment (two lots' inspections recorded in one batch), so the
        // payload is part of what makes an entry the same.
        "no duplicate timeline entries",
        "SELECT order_id, type, summary, occurred_at, md5(payload) AS payload, count(*) AS n \
         FROM orders.timeline \
         GROUP BY order_id, type, summary, occurred_at, md5(payload) HAVING count(*) > 1",
    ),
    (
        // source_event_id is unique; these kinds are told once per order
        // (a phase once per phase: its subject names it).
        "no duplicate customer notices",
        "SELECT order_id, kind, subject, count(*) AS n FROM orders.notices \
         WHERE kind IN ('phase', 'shipped', 'delivered', 'closed') \
         GROUP BY order_id, kind, subject HAVING count(*) > 1",
    ),
];

/// Sagas stalled now, or with a stalled step.
pub(crate) const STALLED: &str = "SELECT count(*) FROM saga.sagas s WHERE s.status = 'stalled' \
     OR EXISTS (SELECT 1 FROM saga.saga_steps t WHERE t.order_id = s.order_id AND t.status = 'stalled')";

/// Sagas not completed, and orders without a saga.
pub(crate) const STRANDED: &str = "SELECT (SELECT count(*) FROM saga.sagas WHERE status <> 'completed') \
     + (SELECT count(*) FROM orders.orders o \
        WHERE NOT EXISTS (SELECT 1 FROM saga.sagas s WHERE s.order_id = o.order_id::text))";

/// What the open sagas wait for: their phase, and each waiting step with
/// its visible cause (shown when the stranded check fails).
const OPEN_SAGAS: &str = "SELECT s.order_id, s.phase, s.status, \
       string_agg(t.step || COALESCE(' (' || t.last_error || ')', ''), ', ') AS waiting \
     FROM saga.sagas s LEFT JOIN saga.saga_steps t \
       ON t.order_id = s.order_id AND t.status IN ('waiting', 'stalled') \
     WHERE s.status <> 'completed' GROUP BY s.order_id, s.phase, s.status";

/// Decisions nobody answered.
pub(crate) const OPEN_DECISIONS: &str =
    "SELECT count(*) FROM saga.saga_decisions WHERE answer IS NULL";

/// Sagas that stalled at some point of the run (information, not a check).
pub(crate) const EVER_STALLED: &str =
    "SELECT count(DISTINCT order_id) FROM saga.saga_log WHERE action = 'stalled'";

/// What the checks need from the run.
pub(crate) struct Inputs<'a> {
    pub pool: &'a PgPool,
    pub bus: &'a Bus,
    /// Orders `create_orders` returned.
    pub created: usize,
    pub closure: &'a Closure,
    pub quiet: &'a Quiet,
    /// Dead letters before the re-send, when it ran.
    pub dead_letters_before_resend: Option<u64>,
}

pub(crate) async fn count(pool: &PgPool, sql: &str) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(pool)
            .await?,
    )
}

/// Up to three rows of `sql`, each as JSON text.
async fn examples(pool: &PgPool, sql: &str) -> Vec<String> {
    let sql = format!("SELECT row_to_json(d)::text FROM ({sql}) d LIMIT 3");
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap_or_default()
}

/// Messages on `GENDAN_DLQ`.
pub(crate) async fn dead_letters(bus: &Bus) -> anyhow::Result<u64> {
    let mut stream = bus
        .jetstream()
        .get_stream(streams::DEAD_LETTERS)
        .await
        .map_err(|err| anyhow!("opening {}: {err}", streams::DEAD_LETTERS))?;
    let info = stream
        .info()
        .await
        .map_err(|err| anyhow!("reading {}: {err}", streams::DEAD_LETTERS))?;
    Ok(info.state.messages)
}

fn zero(what: &str, found: anyhow::Result<i64>) -> Result<String, String> {
    match found {
        Ok(0) => Ok("0".to_owned()),
        Ok(n) => Err(format!("{n} {what}")),
        Err(err) => Err(format!("{err:#}")),
    }
}

/// Runs every check, printing each as it completes.
pub(crate) async fn run(inputs: &Inputs<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut record = |check: Check| {
        check.print();
        checks.push(check);
    };
    let pool = inputs.pool;

    record(Check {
        name: "orders created = stored = closed",
        outcome: orders(inputs).await,
    });

    for (name, groups) in DUPLICATES {
        let outcome = match count(pool, &format!("SELECT count(*) FROM ({groups}) d")).await {
            Ok(0) => Ok("0".to_owned()),
            Ok(n) => Err(format!(
                "{n} facts recorded more than once, e.g. {}",
                examples(pool, groups).await.join(" ")
            )),
            Err(err) => Err(format!("{err:#}")),
        };
        record(Check { name, outcome });
    }

    let stalled = match count(pool, STALLED).await {
        Ok(0) => Ok("0".to_owned()),
        Ok(n) => Err(format!(
            "{n} sagas: {}",
            examples(
                pool,
                "SELECT order_id, stalled_reason FROM saga.sagas WHERE status = 'stalled'"
            )
            .await
            .join(" ")
        )),
        Err(err) => Err(format!("{err:#}")),
    };
    record(Check {
        name: "no stalled saga",
        outcome: stalled,
    });
    record(Check {
        name: "no stranded order (every saga completed)",
        outcome: match zero(
            "sagas not completed or missing",
            count(pool, STRANDED).await,
        ) {
            Err(details) => Err(format!(
                "{details}: {}",
                examples(pool, OPEN_SAGAS).await.join("; ")
            )),
            fine => fine,
        },
    });
    record(Check {
        name: "no open decision",
        outcome: zero("decisions unanswered", count(pool, OPEN_DECISIONS).await),
    });
    record(Check {
        name: "no dead letter",
        outcome: dead_letter_outcome(inputs).await,
    });
    record(Check {
        name: "no outbox backlog",
        outcome: match resend::outbox_rows(pool).await {
            Ok(rows) if rows.iter().all(|(_, n)| *n == 0) => {
                Ok(format!("0 rows in {} outboxes", rows.len()))
            }
            Ok(rows) => Err(rows
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(service, n)| format!("{service} {n}"))
                .collect::<Vec<_>>()
                .join(", ")),
            Err(err) => Err(format!("{err:#}")),
        },
    });
    record(Check {
        name: "every consumer caught up",
        outcome: if inputs.quiet.reached {
            Ok(format!(
                "quiet after {:.1} s",
                inputs.quiet.waited.as_secs_f64()
            ))
        } else {
            Err(format!(
                "still busy after {:.0} s: {}",
                inputs.quiet.waited.as_secs_f64(),
                inputs.quiet.busy
            ))
        },
    });
    checks
}

async fn orders(inputs: &Inputs<'_>) -> Result<String, String> {
    let stored = count(inputs.pool, "SELECT count(*) FROM orders.orders")
        .await
        .map_err(|err| format!("{err:#}"))?;
    let closed =
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM orders.orders WHERE phase = $1")
            .bind(Phase::Closed as i32)
            .fetch_one(inputs.pool)
            .await
            .map_err(|err| err.to_string())?;
    let figure = format!("{} = {stored} = {closed}", inputs.created);
    let created = inputs.created as i64;
    if created == stored && stored == closed {
        return Ok(figure);
    }
    let why = inputs
        .closure
        .reason
        .clone()
        .unwrap_or_else(|| "not every order closed".to_owned());
    Err(format!("{figure}: {why}"))
}

async fn dead_letter_outcome(inputs: &Inputs<'_>) -> Result<String, String> {
    let total = dead_letters(inputs.bus)
        .await
        .map_err(|err| format!("{err:#}"))?;
    if total == 0 {
        return Ok("0".to_owned());
    }
    let split = match inputs.dead_letters_before_resend {
        Some(before) => format!(
            "{before} during the run, {} after the re-send",
            total.saturating_sub(before)
        ),
        None => format!("{total} during the run"),
    };
    let mut newest = Vec::new();
    if let Ok(mut stream) = inputs
        .bus
        .jetstream()
        .get_stream(streams::DEAD_LETTERS)
        .await
        && let Ok(letters) = crate::deadletters::list(&mut stream, None, 3).await
    {
        newest = letters
            .into_iter()
            .map(|letter| {
                format!(
                    "[{} {} on {}: {}]",
                    letter.consumer, letter.r#type, letter.subject, letter.reason
                )
            })
            .collect();
    }
    Err(format!(
        "{split}; newest {}; `gendan deadletters list` shows them",
        newest.join(" ")
    ))
}
