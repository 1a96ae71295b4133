//! The dunning worker: reminds customers of unpaid invoices on the
//! schedule and escalates what the last reminder did not settle.
//!
//! Each pass, on the service's [`Clock`], claims a batch of invoices with
//! something due (`FOR UPDATE SKIP LOCKED`, so replicas share the work and a
//! payment holding an invoice is not waited for), asks the pure
//! [`dunning::next`] what to do, and in one transaction stores each
//! invoice's new dunning state and writes its `PaymentReminder` or
//! `PaymentEscalated` to the outbox. A reminder is stored with its number,
//! so a crash before the commit sends nothing and one after it never sends
//! the same reminder again. Open invoices of open receivables are dunned
//! for what is left on them after payments and credit notes; paid (which
//! includes settled by a credit note), void, cancelled or
//! referred-to-collection ones are not.
//!
//! The worker touches only the dunning columns of the invoice rows it holds
//! locked; every change to an invoice's amount, status or due date updates
//! the same row, so the row lock orders them without the order lock
//! (taking that one while holding rows could deadlock with a payment).
//!
//! The schedule itself ([`schedule`], [`set_schedule`]) is one row, read at
//! every pass, so a change applies from the next pass. A receivable may
//! carry its customer's own schedule (`OpenReceivable.dunning_reminder_days`),
//! which its invoices follow instead.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use gendan_messaging::{Cause, Outgoing, outbox, subjects};
use gendan_proto::v1::{PaymentEscalated, PaymentReminder};
use gendan_proto::{TypeName, date_to_string};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::dunning::{self, Next, Schedule, State};
use crate::{Result, SERVICE, terms};

/// The stored schedule, or the default when none was set.
pub async fn schedule(conn: &mut PgConnection) -> Result<Schedule> {
    let stored: Option<Vec<i32>> = sqlx::query_scalar("SELECT reminder_days FROM dunning_schedule")
        .fetch_optional(conn)
        .await?;
    let Some(stored) = stored else {
        return Ok(Schedule::default());
    };
    let days: Vec<u32> = stored
        .iter()
        .map(|day| u32::try_from(*day).unwrap_or(0))
        .collect();
    // Only set_schedule writes the row, after the same check; a row that
    // fails it was edited by hand and is a fault to surface, not to guess at.
    Ok(Schedule::new(&days)?)
}

/// Replaces the schedule.
pub async fn set_schedule(conn: &mut PgConnection, schedule: &Schedule) -> Result<()> {
    let days: Vec<i32> = schedule
        .days()
        .iter()
        .map(|day| i32::try_from(*day).unwrap_or(i32::MAX))
        .collect();
    sqlx::query(
        "INSERT INTO dunning_schedule (singleton, reminder_days) VALUES (true, $1) \
         ON CONFLICT (singleton) DO UPDATE SET reminder_days = EXCLUDED.reminder_days, \
           updated_at = now()",
    )
    .bind(&days)
    .execute(conn)
    .await?;
    tracing::info!(reminder_days = ?schedule.days(), "dunning schedule set");
    Ok(())
}

/// An invoice with a dunning step due, as the pass reads it.
#[derive(Debug, sqlx::FromRow)]
struct DueInvoice {
    invoice_id: String,
    order_id: String,
    kind: String,
    amount_minor: i64,
    paid_minor: i64,
    credited_minor: i64,
    currency: String,
    due_date: NaiveDate,
    reminders_sent: i32,
    last_reminded_on: Option<NaiveDate>,
    /// The customer's own schedule for this receivable, when it has one.
    reminder_days: Option<Vec<i32>>,
}

/// Invoices with a reminder or the escalation due on `$1` under their
/// receivable's own schedule, or else the deployment's schedule `$2`. This
/// is [`dunning::next`]'s rule again, in SQL, so a batch holds only
/// invoices with work to do (a batch of invoices with nothing due would
/// hide the ones behind them); `next` has the last word.
const DUE_INVOICES: &str = "\
    SELECT i.invoice_id, i.order_id, i.kind, i.amount_minor, i.paid_minor, i.credited_minor, \
      i.currency, i.due_date, i.reminders_sent, i.last_reminded_on, r.reminder_days \
    FROM invoices i JOIN receivables r ON r.order_id = i.order_id \
    CROSS JOIN LATERAL (SELECT COALESCE(r.reminder_days, $2::int[]) AS days) s \
    WHERE i.status IN ('open', 'partially_paid') AND r.status = 'open' \
      AND i.escalated_on IS NULL AND i.due_date < $1 \
      AND CASE WHEN i.reminders_sent < cardinality(s.days) \
        THEN i.due_date + s.days[i.reminders_sent + 1] <= $1 \
        ELSE i.due_date + s.days[cardinality(s.days)] + 1 <= $1 \
          AND (i.last_reminded_on IS NULL OR i.last_reminded_on < $1) \
      END \
    ORDER BY i.due_date, i.seq LIMIT $3 \
    FOR UPDATE OF i SKIP LOCKED FOR SHARE OF r SKIP LOCKED";

/// Runs dunning passes until cancelled.
#[derive(Debug, Clone)]
pub struct DunningWorker {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    poll_interval: Duration,
    batch_size: usize,
}

impl DunningWorker {
    pub fn new(pool: PgPool, clock: Arc<dyn Clock>, poll_interval: Duration) -> Self {
        DunningWorker {
            pool,
            clock,
            poll_interval,
            batch_size: 100,
        }
    }

    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        loop {
            let done = match self.pass().await {
                Ok(done) => done,
                Err(err) => {
                    tracing::warn!(error = %err, "dunning pass failed, retrying");
                    0
                }
            };
            // A full batch of work done: more may be waiting behind it.
            if done >= self.batch_size {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// One pass on today's date: reminders and escalations for one batch,
    /// committed together. Returns how many invoices got one.
    pub async fn pass(&self) -> Result<usize> {
        let now = self.clock.now();
        let today = now.date_naive();
        let mut tx = self.pool.begin().await?;
        let deployment = schedule(&mut tx).await?;
        let due: Vec<DueInvoice> = sqlx::query_as(DUE_INVOICES)
            .bind(today)
            .bind(deployment.stored())
            .bind(i64::try_from(self.batch_size).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        let mut events = Vec::with_capacity(due.len());
        for invoice in &due {
            let state = State {
                reminded: u32::try_from(invoice.reminders_sent).unwrap_or(0),
                last_reminded_on: invoice.last_reminded_on,
                escalated: false,
            };
            let span = tracing::info_span!(
                "finance.dunning",
                order_id = %invoice.order_id,
                invoice_id = %invoice.invoice_id
            );
            let own = invoice.reminder_days.as_deref().and_then(own_schedule);
            let schedule = own.as_ref().unwrap_or(&deployment);
            match dunning::next(schedule, invoice.due_date, &state, today) {
                Next::Remind(reminder) => {
                    sqlx::query(
                        "UPDATE invoices SET reminders_sent = $2, last_reminded_on = $3 \
                         WHERE invoice_id = $1",
                    )
                    .bind(&invoice.invoice_id)
                    .bind(i32::try_from(reminder).unwrap_or(i32::MAX))
                    .bind(today)
                    .execute(&mut *tx)
                    .await?;
                    let event = span.in_scope(|| {
                        tracing::info!(reminder, "payment reminder");
                        outgoing(invoice, &reminder_event(invoice, reminder, today), now)
                    });
                    events.push(event);
                }
                Next::Escalate => {
                    sqlx::query("UPDATE invoices SET escalated_on = $2 WHERE invoice_id = $1")
                        .bind(&invoice.invoice_id)
                        .bind(today)
                        .execute(&mut *tx)
                        .await?;
                    let event = span.in_scope(|| {
                        tracing::info!(reminders = state.reminded, "payment escalated");
                        outgoing(invoice, &escalated_event(invoice, &state, today), now)
                    });
                    events.push(event);
                }
                Next::Nothing => {
                    // The query and `next` disagree: a bug in one of them.
                    // Logged, not fatal; the invoice waits for the fix.
                    span.in_scope(|| {
                        tracing::warn!(
                            due_date = %invoice.due_date,
                            reminders_sent = invoice.reminders_sent,
                            "invoice selected for dunning with nothing due"
                        );
                    });
                }
            }
        }
        outbox::write(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(events.len())
    }
}

/// A receivable's own schedule as stored. Only OpenReceivable writes it,
/// after [`Schedule::new`]'s check; a value that fails it was edited by
/// hand, and the deployment's schedule is used (with a warning) rather
/// than no dunning at all.
fn own_schedule(stored: &[i32]) -> Option<Schedule> {
    let days: Vec<u32> = stored
        .iter()
        .map(|day| u32::try_from(*day).unwrap_or(0))
        .collect();
    Schedule::new(&days)
        .inspect_err(
            |err| tracing::warn!(error = %err, "a receivable's own dunning schedule is invalid"),
        )
        .ok()
}

/// The event in the order's workflow, dated by the service clock (so a
/// simulated day reads as that day on the timeline).
fn outgoing<M: prost::Message + TypeName>(
    invoice: &DueInvoice,
    payload: &M,
    at: chrono::DateTime<chrono::Utc>,
) -> Outgoing {
    let subject = subjects::event(SERVICE, &subjects::token_for_type(M::TYPE_NAME));
    let cause = Cause::root(&invoice.order_id);
    Outgoing::at(subject, SERVICE, &invoice.order_id, payload, &cause, at)
}

/// What the customer still has to pay on the invoice: a credit note's part
/// is not asked for.
fn outstanding_minor(invoice: &DueInvoice) -> i64 {
    invoice.amount_minor - invoice.paid_minor - invoice.credited_minor
}

fn days_overdue(invoice: &DueInvoice, today: NaiveDate) -> u32 {
    u32::try_from(dunning::days_overdue(invoice.due_date, today)).unwrap_or(0)
}

fn reminder_event(invoice: &DueInvoice, reminder: u32, today: NaiveDate) -> PaymentReminder {
    PaymentReminder {
        order_id: invoice.order_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        invoice_kind: terms::invoice_kind(&invoice.kind).into(),
        outstanding_minor: outstanding_minor(invoice),
        currency: invoice.currency.clone(),
        due_date: date_to_string(invoice.due_date),
        reminder,
        days_overdue: days_overdue(invoice, today),
    }
}

fn escalated_event(invoice: &DueInvoice, state: &State, today: NaiveDate) -> PaymentEscalated {
    PaymentEscalated {
        order_id: invoice.order_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        invoice_kind: terms::invoice_kind(&invoice.kind).into(),
        outstanding_minor: outstanding_minor(invoice),
        currency: invoice.currency.clone(),
        due_date: date_to_string(invoice.due_date),
        days_overdue: days_overdue(invoice, today),
        reminders: state.reminded,
    }
}
