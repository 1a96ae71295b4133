//! Credit notes: money the customer no longer owes, for a resolved claim
//! (the saga's `IssueCreditNote`, dispatched by [`crate::commands`]).
//!
//! A credit note is stored once per claim (`credit_notes`, unique by order
//! and claim) and numbered per year in a series of its own, the way
//! invoices are (`CN-2026-000007`). It never edits an issued invoice; its
//! effect is:
//! - the customer owes the order total less the credits, and what they
//!   paid beyond that is a refund due: the [`Balance`] figure
//!   `RecordRefund` pays out and a cancellation computes;
//! - [`apply`] settles unpaid invoices with it, earliest due first, each
//!   part recorded in `credit_note_allocations` and the invoice's
//!   `credited_minor` (not its `paid_minor`: that stays money received).
//!   A settled invoice is `paid` and a partly settled one is chased for
//!   the rest only, so dunning never chases what a credit settled. What
//!   finds no unpaid invoice (the rest of the order is not invoiced yet)
//!   waits as `unapplied_minor` and settles the next invoice issued;
//! - [`receivables::settle`] then announces the deposit settled and the
//!   order paid in full, once each, exactly as after a payment.
//!
//! The answer, `CreditNoteIssued`, is a fact keyed by the claim
//! (`credit_note:<claim_id>`) and carries the figures stored with the note,
//! so a re-sent command answers with the same event id and content and
//! writes nothing else. The cost ledger books a claim's note as what the
//! claim cost the order (category `credit_note`, see [`crate::costs`]); an
//! amendment's note is not a cost.
//!
//! An amended order whose new total bills less than the invoices already
//! issued gets one credit note per revision, claim `amendment:<revision>`
//! ([`issue_for_amendment`], called by [`crate::amendments`]). It is stored,
//! numbered, applied and announced like a claim's, with one difference: the
//! new total already leaves its amount out, so it does not lower what the
//! customer owes again ([`crate::balance`] counts claims' notes only); it
//! only settles the invoices issued for more.
//!
//! Rejected to the dead-letter subject, naming the field or the reason: a
//! `claim_id` that is not 1 to 128 characters or names an amendment, an
//! `amount_minor` below 1 or above what the order total has left to credit,
//! a `currency` that is not the receivable's, a receivable that was never
//! opened or is cancelled.

use chrono::{Datelike, NaiveDate};
use gendan_grpc::FieldError;
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing, outbox};
use gendan_proto::v1::{CreditNoteIssued, IssueCreditNote};
use sqlx::PgConnection;

use crate::allocation::allocate;
use crate::balance::{self, Balance};
use crate::receivables::{self, Receivable, STATUS_CANCELLED};
use crate::validate::{self, NewCreditNote};
use crate::{Error, Result, SERVICE};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CreditNote {
    pub credit_note_id: String,
    pub order_id: String,
    pub claim_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    pub issued_on: NaiveDate,
    /// Not yet settling an invoice.
    pub unapplied_minor: i64,
    /// Owed by the customer right after this note (as announced).
    pub outstanding_minor: i64,
    /// Owed to the customer right after this note (as announced).
    pub refund_due_minor: i64,
}

/// The start of the claim id of an amendment's credit note.
pub const AMENDMENT_CLAIM_PREFIX: &str = "amendment:";

/// The claim id of revision `revision`'s credit note.
pub fn amendment_claim(revision: i32) -> String {
    format!("{AMENDMENT_CLAIM_PREFIX}{revision}")
}

impl CreditNote {
    /// The answer to `IssueCreditNote`, the same every time it is given.
    pub(crate) fn issued(&self, cause: &Cause) -> Outgoing {
        let event = CreditNoteIssued {
            order_id: self.order_id.clone(),
            credit_note_id: self.credit_note_id.clone(),
            claim_id: self.claim_id.clone(),
            amount_minor: self.amount_minor,
            currency: self.currency.clone(),
            outstanding_minor: self.outstanding_minor,
            refund_due_minor: self.refund_due_minor,
        };
        let key = format!("credit_note:{}", self.claim_id);
        Outgoing::fact(SERVICE, &self.order_id, &event, cause, &key)
    }
}

pub(crate) async fn find(
    conn: &mut PgConnection,
    order_id: &str,
    claim_id: &str,
) -> sqlx::Result<Option<CreditNote>> {
    sqlx::query_as(
        "SELECT credit_note_id, order_id, claim_id, amount_minor, currency, reason, issued_on, \
           unapplied_minor, outstanding_minor, refund_due_minor \
         FROM credit_notes WHERE order_id = $1 AND claim_id = $2",
    )
    .bind(order_id)
    .bind(claim_id)
    .fetch_optional(conn)
    .await
}

/// Stores the note, wholly unapplied until [`apply`] runs, with the figures
/// its answer announces; `amendment` is the revision of an amended order
/// it is for (`None` for a claim's). Numbers are gap-free per year, as for
/// invoices: the year's counter row stays locked until the transaction
/// ends.
async fn insert(
    conn: &mut PgConnection,
    new: &NewCreditNote,
    issued_on: NaiveDate,
    after: &Balance,
    amendment: Option<i32>,
) -> Result<CreditNote> {
    let year = issued_on.year();
    let number: i64 = sqlx::query_scalar(
        "INSERT INTO credit_note_numbers (year, last_number) VALUES ($1, 1) \
         ON CONFLICT (year) DO UPDATE SET last_number = credit_note_numbers.last_number + 1 \
         RETURNING last_number",
    )
    .bind(year)
    .fetch_one(&mut *conn)
    .await?;
    let credit_note_id = format!("CN-{year}-{number:06}");
    let note: CreditNote = sqlx::query_as(
        "INSERT INTO credit_notes (credit_note_id, order_id, claim_id, amount_minor, currency, \
           reason, issued_on, unapplied_minor, outstanding_minor, refund_due_minor, \
           amendment_revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $4, $8, $9, $10) \
         RETURNING credit_note_id, order_id, claim_id, amount_minor, currency, reason, issued_on, \
           unapplied_minor, outstanding_minor, refund_due_minor",
    )
    .bind(&credit_note_id)
    .bind(&new.order_id)
    .bind(&new.claim_id)
    .bind(new.amount_minor)
    .bind(&new.currency)
    .bind(&new.reason)
    .bind(issued_on)
    .bind(after.outstanding_minor())
    .bind(after.refund_due_minor())
    .bind(amendment)
    .fetch_one(conn)
    .await?;
    Ok(note)
}

/// The credit note of revision `revision` of an amended order: what its
/// new total takes off the invoices already issued. `receivable` carries
/// the new total, so the figures announced with the note are what the
/// customer owes, or is owed, for the amended order. The caller holds the
/// order lock and runs [`receivables::settle`] after, which applies it.
pub(crate) async fn issue_for_amendment(
    conn: &mut PgConnection,
    receivable: &Receivable,
    revision: i32,
    amount_minor: i64,
    issued_on: NaiveDate,
) -> Result<CreditNote> {
    let new = NewCreditNote {
        order_id: receivable.order_id.clone(),
        claim_id: amendment_claim(revision),
        amount_minor,
        currency: receivable.currency.clone(),
        reason: format!(
            "order amended (revision {revision}): the new total bills less than the invoices issued"
        ),
    };
    // Amendments' notes do not count in what is owed: this is the balance
    // after the note too.
    let after = balance::load(conn, receivable).await?;
    let note = insert(conn, &new, issued_on, &after, Some(revision)).await?;
    tracing::info!(
        credit_note_id = %note.credit_note_id,
        revision,
        amount_minor,
        outstanding_minor = note.outstanding_minor,
        refund_due_minor = note.refund_due_minor,
        "credit note issued for an amendment"
    );
    Ok(note)
}

/// Applies the order's unapplied credit to its unpaid invoices, oldest
/// note first, earliest due invoice first. Earliest due rather than latest
/// (the balance, which a claim on delivered goods is usually about): it is
/// the rule payments follow, so a customer's statement reads the same
/// whichever settled an invoice, and the invoice longest overdue, the one
/// dunning is chasing, is the one that stops being chased. Called by
/// [`receivables::settle`] only.
pub async fn apply(conn: &mut PgConnection, order_id: &str) -> sqlx::Result<()> {
    let credits: Vec<(String, i64)> = sqlx::query_as(
        "SELECT credit_note_id, unapplied_minor FROM credit_notes \
         WHERE order_id = $1 AND unapplied_minor > 0 ORDER BY seq",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    if credits.is_empty() {
        return Ok(());
    }
    let open = receivables::unsettled_invoices(conn, order_id).await?;
    for allocation in allocate(&credits, &open) {
        sqlx::query(
            "INSERT INTO credit_note_allocations (credit_note_id, invoice_id, amount_minor) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (credit_note_id, invoice_id) \
             DO UPDATE SET amount_minor = credit_note_allocations.amount_minor + EXCLUDED.amount_minor",
        )
        .bind(&allocation.credit)
        .bind(&allocation.invoice)
        .bind(allocation.amount_minor)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE credit_notes SET unapplied_minor = unapplied_minor - $2 \
             WHERE credit_note_id = $1",
        )
        .bind(&allocation.credit)
        .bind(allocation.amount_minor)
        .execute(&mut *conn)
        .await?;
        receivables::settle_invoice(conn, &allocation.invoice, 0, allocation.amount_minor).await?;
    }
    Ok(())
}

/// `IssueCreditNote`, on the consumer's connection: the note, its effect on
/// the invoices and the events it causes commit with the inbox record.
/// `today` (the service clock's) dates the note and numbers it.
#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), claim_id = %command.claim_id))]
pub async fn issue_credit_note(
    conn: &mut PgConnection,
    message: &Incoming,
    command: IssueCreditNote,
    today: NaiveDate,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let reject = |err: FieldError| {
        HandlerError::Rejected(format!("IssueCreditNote for order {order_id}: {err}"))
    };
    let new = validate::credit_note(&order_id, &command).map_err(&reject)?;
    let cause = Cause::from_incoming(message);
    receivables::lock_order(conn, &order_id).await?;

    // Before any check against the receivable: a re-sent command is
    // answered as the first time even if the receivable has moved on since
    // (paid, cancelled).
    if let Some(stored) = find(conn, &order_id, &new.claim_id).await? {
        if stored.amount_minor != new.amount_minor || stored.currency != new.currency {
            // The first command wins: the note is issued and announced. A
            // different amount for the same claim needs a person.
            tracing::warn!(
                stored_amount_minor = stored.amount_minor,
                amount_minor = new.amount_minor,
                "repeated IssueCreditNote differs from the stored credit note, keeping the stored one"
            );
        }
        tracing::info!(credit_note_id = %stored.credit_note_id, "credit note exists, answering again");
        outbox::write(conn, &[stored.issued(&cause)]).await?;
        return Ok(());
    }

    let receivable = receivables::get(conn, &order_id).await?;
    if receivable.status == STATUS_CANCELLED {
        // Everything received is refunded already: nothing left to credit.
        return Err(Error::Cancelled(order_id.clone()).into());
    }
    if new.currency != receivable.currency {
        return Err(reject(FieldError::new(
            "currency",
            format!(
                "the receivable of order {order_id} is in {}, not {}",
                receivable.currency, new.currency
            ),
        )));
    }
    let before = balance::load(conn, &receivable).await?;
    let creditable_minor = before.creditable_minor();
    if new.amount_minor > creditable_minor {
        return Err(reject(FieldError::new(
            "amount_minor",
            format!(
                "{} is more than the {creditable_minor} of the order total {} not credited yet",
                new.amount_minor, receivable.total_minor
            ),
        )));
    }
    let after = before.after_credit(new.amount_minor);
    let note = insert(conn, &new, today, &after, None).await?;
    tracing::info!(
        credit_note_id = %note.credit_note_id,
        amount_minor = note.amount_minor,
        outstanding_minor = note.outstanding_minor,
        refund_due_minor = note.refund_due_minor,
        "credit note issued"
    );
    let mut events = vec![note.issued(&cause)];
    // The one path that settles invoices and announces the deposit and
    // payment in full, as after a payment.
    events.extend(receivables::settle(conn, &receivable, today, &cause).await?);
    outbox::write(conn, &events).await?;
    Ok(())
}
