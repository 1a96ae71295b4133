//! A receivable's revisions: the order's first `OpenReceivable` and every
//! amendment after it (revision 2, 3, …, with the order's new total and
//! cost budget), and the `ReceivableOpened` that answers each.
//!
//! An amendment without a budget of its own takes the budget of the
//! order's estimate of that revision (or the latest before it), as an
//! opening does ([`crate::estimates::apply_budget`]).
//!
//! An amendment keeps the payment schedule's shares (the installments as
//! stored when the terms were parsed) and prices them at the new total with
//! the terms' own arithmetic ([`repriced`], by [`crate::terms::installments`]).
//! Then, per installment, [`change`] (pure) decides:
//! - not invoiced yet: its amount simply changes (a deposit the old total
//!   priced at nothing is invoiced now, as when the receivable opened);
//! - invoiced: its invoices are never edited. What they bill, net of the
//!   credit notes of earlier amendments ([`billed_minor`]), is compared
//!   with the new amount: more is billed by an additional invoice of the
//!   same kind, numbered like every invoice and due by the installment's
//!   own due days from today; less is credited.
//!
//! One revision issues at most one credit note (claim `amendment:<n>`,
//! unique per order like every claim's), for the sum of what it takes off
//! its installments; each installment's part is recorded
//! (`receivable_adjustments`) so the next revision knows what is billed.
//! The note is issued against every invoice of those installments and
//! settles them like any credit note: what is still unpaid on the order's
//! invoices, earliest due first, and what finds nothing unpaid waits for
//! the next invoice issued (the balance at shipment). What the customer
//! owes is the new total: the note does not lower it again
//! ([`crate::balance`]), so a deposit already paid beyond the new deposit
//! reduces what is still owed on the balance, and a customer who paid more
//! than the whole new total is owed the difference as a refund. A
//! receivable paid in full that owes more after an amendment is open again
//! (dunning chases the additional invoice like any invoice, and the order
//! is announced paid in full again once it is paid).
//!
//! The revision and what settled its difference are stored
//! (`receivable_revisions`); every answer is built from them by [`answer`]
//! as facts: `ReceivableOpened` keyed `receivable:<order>:<revision>`, the
//! invoices it issued keyed `invoice:<order>:<revision>:<installment>`,
//! the credit note by its claim. A re-sent command of the current revision,
//! or of an older one, answers the current revision again with the same
//! event ids and writes nothing.

use chrono::NaiveDate;
use gendan_messaging::{Cause, Outgoing};
use gendan_proto::v1::{OpenReceivable, ReceivableOpened, ReceivableOpeningFailed};
use sqlx::PgConnection;

use crate::receivables::{self, INVOICE_VOID, Invoice, Receivable, STATUS_OPEN, STATUS_PAID};
use crate::terms::Trigger;
use crate::validate::{self, NewReceivable};
use crate::{Result, SERVICE, balance, costs, credit_notes, estimates};

pub mod plan;

pub use plan::{Change, billed_minor, change, money, repriced, revision};

fn opened_key(order_id: &str, revision: i32) -> String {
    format!("receivable:{order_id}:{revision}")
}

fn invoice_key(order_id: &str, revision: i32, installment_seq: i32) -> String {
    format!("invoice:{order_id}:{revision}:{installment_seq}")
}

/// `ReceivableOpeningFailed`: the saga fails its step with the reason.
pub fn opening_failed(order_id: &str, reason: String, cause: &Cause) -> Outgoing {
    tracing::warn!(%reason, "receivable cannot be opened");
    let failed = ReceivableOpeningFailed {
        order_id: order_id.to_owned(),
        reason,
    };
    Outgoing::event(SERVICE, order_id, &failed, cause)
}

/// Where a receivable's revisions stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// The revision applied last.
    pub revision: i32,
    /// The revision the receivable was opened at.
    pub opened_at: i32,
    /// What settled the last revision's difference, as announced.
    pub adjustments: Vec<String>,
}

pub async fn current(conn: &mut PgConnection, order_id: &str) -> sqlx::Result<Current> {
    let row: Option<(i32, i32, Vec<String>)> = sqlx::query_as(
        "SELECT revision, \
           (SELECT min(revision) FROM receivable_revisions WHERE order_id = $1), adjustments \
         FROM receivable_revisions WHERE order_id = $1 ORDER BY revision DESC LIMIT 1",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some((revision, opened_at, adjustments)) => Current {
            revision,
            opened_at,
            adjustments,
        },
        // Every receivable has its opening row (the migration wrote one for
        // those opened before revisions were kept); this is only a fallback.
        None => Current {
            revision: 1,
            opened_at: 1,
            adjustments: Vec::new(),
        },
    })
}

async fn insert_revision(
    conn: &mut PgConnection,
    receivable: &Receivable,
    revision: i32,
    adjustments: &[String],
    applied_on: NaiveDate,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO receivable_revisions \
           (order_id, revision, total_minor, cost_budget_minor, adjustments, applied_on) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&receivable.order_id)
    .bind(revision)
    .bind(receivable.total_minor)
    .bind(receivable.cost_budget_minor)
    .bind(adjustments.to_vec())
    .bind(applied_on)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that `receivable`, just stored, was opened at `revision` (1, or
/// a later one when the order was amended before finance ever saw it).
pub async fn record_opening(
    conn: &mut PgConnection,
    receivable: &Receivable,
    revision: i32,
) -> sqlx::Result<()> {
    insert_revision(conn, receivable, revision, &[], receivable.opened_on).await
}

/// What earlier amendments credited, per installment.
async fn amendment_credits(
    conn: &mut PgConnection,
    order_id: &str,
) -> sqlx::Result<Vec<(i32, i64)>> {
    sqlx::query_as(
        "SELECT installment_seq, (-sum(amount_minor))::bigint FROM receivable_adjustments \
         WHERE order_id = $1 AND amount_minor < 0 GROUP BY installment_seq",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// The invoices revision `revision` issued, in installment order.
async fn revision_invoices(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT invoice_id FROM receivable_adjustments \
         WHERE order_id = $1 AND revision = $2 AND invoice_id IS NOT NULL \
         ORDER BY installment_seq",
    )
    .bind(order_id)
    .bind(revision)
    .fetch_all(conn)
    .await
}

async fn record_adjustment(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
    installment_seq: i32,
    amount_minor: i64,
    invoice_id: Option<&str>,
    credit_note_id: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO receivable_adjustments \
           (order_id, revision, installment_seq, amount_minor, invoice_id, credit_note_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(order_id)
    .bind(revision)
    .bind(installment_seq)
    .bind(amount_minor)
    .bind(invoice_id)
    .bind(credit_note_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The answer of the receivable's current revision, from what is stored,
/// so every repeat is the same facts under the same event ids:
/// `ReceivableOpened`, then the invoices the revision issued (the deposit
/// invoices when it is the opening revision) and its credit note.
pub async fn answer(
    conn: &mut PgConnection,
    receivable: &Receivable,
    cause: &Cause,
) -> Result<Vec<Outgoing>> {
    let order_id = &receivable.order_id;
    let current = current(conn, order_id).await?;
    let installments = receivables::installments(conn, order_id).await?;
    let deposit_required = installments
        .iter()
        .any(|i| i.trigger() == Some(Trigger::OnConfirmation) && i.amount_minor > 0);
    let opened = ReceivableOpened {
        order_id: order_id.clone(),
        currency: receivable.currency.clone(),
        installments: installments.iter().map(|i| i.to_proto()).collect(),
        deposit_required,
        cost_budget_minor: receivable.cost_budget_minor,
        revision: u32::try_from(current.revision).unwrap_or(0),
        total_minor: receivable.total_minor,
        adjustments: current.adjustments.clone(),
    };
    let key = opened_key(order_id, current.revision);
    let mut events = vec![Outgoing::fact(SERVICE, order_id, &opened, cause, &key)];

    let invoices = receivables::invoices(conn, order_id).await?;
    let issued = |invoice: &Invoice| {
        let key = invoice_key(order_id, current.revision, invoice.installment_seq);
        Outgoing::fact(SERVICE, order_id, &invoice.issued_event(), cause, &key)
    };
    if current.revision == current.opened_at {
        events.extend(
            invoices
                .iter()
                .filter(|i| i.trigger == Trigger::OnConfirmation.as_str())
                .map(&issued),
        );
        return Ok(events);
    }
    for invoice_id in revision_invoices(conn, order_id, current.revision).await? {
        if let Some(invoice) = invoices.iter().find(|i| i.invoice_id == invoice_id) {
            events.push(issued(invoice));
        }
    }
    let claim_id = credit_notes::amendment_claim(current.revision);
    if let Some(note) = credit_notes::find(conn, order_id, &claim_id).await? {
        events.push(note.issued(cause));
    }
    Ok(events)
}

/// `OpenReceivable` for a receivable that exists: a later revision amends
/// it, the current or an older one is answered again (the current
/// revision's facts), nothing written.
pub async fn open_again(
    conn: &mut PgConnection,
    receivable: &Receivable,
    command: &OpenReceivable,
    revision: i32,
    today: NaiveDate,
    cause: &Cause,
) -> Result<Vec<Outgoing>> {
    let order_id = &receivable.order_id;
    let current = current(conn, order_id).await?;
    if revision > current.revision {
        return match validate::open_receivable(order_id, command) {
            Ok(mut new) => {
                // The revision's estimate replaces the budget, as at opening.
                estimates::apply_budget(conn, command, &mut new, revision).await?;
                amend(conn, receivable, &new, revision, today, cause).await
            }
            // The saga needs an answer to fail its step with the reason; a
            // dead letter alone would leave it waiting.
            Err(err) => Ok(vec![opening_failed(order_id, err.to_string(), cause)]),
        };
    }
    if revision < current.revision {
        tracing::info!(
            current = current.revision,
            "an older revision than the one applied, answering the current one"
        );
    } else if receivable.total_minor != command.total_minor {
        // The first command of a revision wins: its invoices may be out.
        tracing::warn!(
            stored_total_minor = receivable.total_minor,
            total_minor = command.total_minor,
            "repeated OpenReceivable differs from the stored revision, keeping the stored one"
        );
    } else {
        tracing::info!("revision applied already, answering again");
    }
    answer(conn, receivable, cause).await
}

/// Applies revision `revision` of an amended order (see the module doc).
/// Every refusal comes before the first write, so a revision is applied
/// whole or not at all (an error rolls the consumer's savepoint back).
#[tracing::instrument(skip_all, fields(order_id = %receivable.order_id, revision = revision))]
async fn amend(
    conn: &mut PgConnection,
    receivable: &Receivable,
    new: &NewReceivable,
    revision: i32,
    today: NaiveDate,
    cause: &Cause,
) -> Result<Vec<Outgoing>> {
    let order_id = &receivable.order_id;
    if new.currency != receivable.currency {
        let reason = format!(
            "revision {revision} of order {order_id} is in {}, its receivable in {}: an amendment \
             cannot change the currency",
            new.currency, receivable.currency
        );
        return Ok(vec![opening_failed(order_id, reason, cause)]);
    }
    if new.payment_terms != receivable.payment_terms {
        tracing::warn!(
            stored_terms = %receivable.payment_terms,
            terms = %new.payment_terms,
            "amended OpenReceivable names other terms, keeping the schedule's shares"
        );
    }
    let schedule = receivables::installments(conn, order_id).await?;
    let Some(amounts) = repriced(&schedule, new.total_minor) else {
        let reason = format!(
            "the payment schedule of order {order_id} cannot be priced at a total of {}",
            new.total_minor
        );
        return Ok(vec![opening_failed(order_id, reason, cause)]);
    };
    let invoices = receivables::invoices(conn, order_id).await?;
    let credited = amendment_credits(conn, order_id).await?;
    let changes: Vec<Change> = schedule
        .iter()
        .zip(&amounts)
        .map(|(row, new_minor)| {
            let deposit = row.trigger() == Some(Trigger::OnConfirmation);
            change(
                *new_minor,
                billed_minor(row.seq, &invoices, &credited),
                deposit,
            )
        })
        .collect();

    for (row, new_minor) in schedule.iter().zip(&amounts) {
        sqlx::query("UPDATE installments SET amount_minor = $3 WHERE order_id = $1 AND seq = $2")
            .bind(order_id)
            .bind(row.seq)
            .bind(*new_minor)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "UPDATE receivables SET total_minor = $2, cost_budget_minor = $3 WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(new.total_minor)
    .bind(new.cost_budget_minor)
    .execute(&mut *conn)
    .await?;
    // The revision's budget replaces the old one, split and all.
    sqlx::query("DELETE FROM cost_budget_lines WHERE order_id = $1")
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    for (category, amount_minor) in &new.budget_lines {
        sqlx::query(
            "INSERT INTO cost_budget_lines (order_id, category, amount_minor) VALUES ($1, $2, $3)",
        )
        .bind(order_id)
        .bind(category)
        .bind(amount_minor)
        .execute(&mut *conn)
        .await?;
    }
    let mut amended = receivables::get(conn, order_id).await?;

    let mut lines = Vec::new();
    let mut credit_minor: i64 = 0;
    for (row, change) in schedule.iter().zip(&changes) {
        let (invoice, what) = match *change {
            Change::AdditionalInvoice(more) => {
                let invoice =
                    receivables::issue(conn, &amended, row, more, Some(revision), today).await?;
                (invoice, "additional ")
            }
            Change::FirstInvoice(amount) => {
                let invoice = receivables::issue(conn, &amended, row, amount, None, today).await?;
                (invoice, "")
            }
            Change::Credit(less) => {
                credit_minor += less;
                continue;
            }
            Change::Reprice | Change::Unchanged => continue,
        };
        record_adjustment(
            conn,
            order_id,
            revision,
            row.seq,
            invoice.amount_minor,
            Some(invoice.invoice_id.as_str()),
            None,
        )
        .await?;
        lines.push(format!(
            "{what}{} invoice {} for {}",
            invoice.kind,
            invoice.invoice_id,
            money(invoice.amount_minor, &invoice.currency)
        ));
    }
    if credit_minor > 0 {
        let note = credit_notes::issue_for_amendment(conn, &amended, revision, credit_minor, today)
            .await?;
        let mut against: Vec<&str> = Vec::new();
        for (row, change) in schedule.iter().zip(&changes) {
            let Change::Credit(less) = *change else {
                continue;
            };
            record_adjustment(
                conn,
                order_id,
                revision,
                row.seq,
                -less,
                None,
                Some(note.credit_note_id.as_str()),
            )
            .await?;
            against.extend(
                invoices
                    .iter()
                    .filter(|i| i.installment_seq == row.seq && i.status != INVOICE_VOID)
                    .map(|i| i.invoice_id.as_str()),
            );
        }
        lines.push(format!(
            "credit note {} for {} against {}",
            note.credit_note_id,
            money(credit_minor, &note.currency),
            against.join(", ")
        ));
    }

    // Paid in full before, owing more now: open again, so dunning chases
    // the additional invoice and payment in full is announced once more.
    if amended.status == STATUS_PAID && !balance::load(conn, &amended).await?.settled() {
        sqlx::query(
            "UPDATE receivables SET status = $2, paid_in_full_on = NULL WHERE order_id = $1",
        )
        .bind(order_id)
        .bind(STATUS_OPEN)
        .execute(&mut *conn)
        .await?;
        tracing::info!("the amended order owes more than was paid, the receivable is open again");
        amended = receivables::get(conn, order_id).await?;
    }
    // Money received ahead settles the additional invoices, the credit what
    // is unpaid; deposit in and paid in full are announced as after a
    // payment.
    let settled = receivables::settle(conn, &amended, today, cause).await?;
    insert_revision(conn, &amended, revision, &lines, today).await?;
    tracing::info!(
        total_minor = amended.total_minor,
        cost_budget_minor = amended.cost_budget_minor,
        adjustments = ?lines,
        "receivable amended"
    );

    let mut events = answer(conn, &amended, cause).await?;
    events.extend(settled);
    // A new budget may put the order over it, or back under.
    events.extend(costs::check_overrun(conn, order_id, cause).await?);
    Ok(events)
}
