//! The receivable tables: receivables with their installments, invoices
//! (numbered per year; one per installment, plus an additional one for each
//! revision of an amended order that raised it, see [`crate::amendments`]),
//! payments and their allocations, and what a change to them announces.
//! Credit notes are stored by [`crate::credit_notes`].
//!
//! Every function runs on the caller's connection (a consumer savepoint or a
//! gRPC transaction) after [`lock_order`], which serialises everything done
//! to one order across the command consumer, the cost consumer and gRPC
//! calls, in every replica. [`settle`] is the single place that applies
//! received money and credit notes to invoices and decides whether the
//! deposit is in and the order is paid in full, so the answer is the same
//! whichever path settled it (a payment, an invoice issued onto money
//! received ahead, a credit note). What is owed, whichever way, is a
//! [`crate::balance::Balance`]. Settling (applying the money, announcing
//! what became true) lives in the `settlement` submodule.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use gendan_proto::date_to_string;
use gendan_proto::v1::{
    Installment as InstallmentProto, InvoiceIssued, PaymentAllocation, PaymentTrigger,
    ReceivableInvoice, ReceivedPayment,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::terms::{self, Trigger};
use crate::validate::{NewPayment, NewReceivable};
use crate::{Error, Result};

mod settlement;

pub use settlement::{DEPOSIT_RECEIVED, deposit_received_fact, paid_in_full_fact, settle};
pub(crate) use settlement::{settle_invoice, unsettled_invoices};

pub const STATUS_OPEN: &str = "open";
pub const STATUS_PAID: &str = "paid";
pub const STATUS_CANCELLED: &str = "cancelled";
/// Referred to collection (`ReferToCollection`): no longer dunned; payments
/// still settle it (and a payment in full makes it `paid`).
pub const STATUS_IN_COLLECTION: &str = "in_collection";

pub const INVOICE_OPEN: &str = "open";
pub const INVOICE_PARTIALLY_PAID: &str = "partially_paid";
pub const INVOICE_PAID: &str = "paid";
pub const INVOICE_VOID: &str = "void";

/// Serialises all changes to one order for the rest of the transaction.
/// An advisory lock rather than a row lock, because cost entries of an order
/// can arrive before its receivable row exists.
pub async fn lock_order(conn: &mut PgConnection, order_id: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('gendan.finance.order'), hashtext($1))")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Receivable {
    pub order_id: String,
    pub customer: String,
    pub total_minor: i64,
    pub currency: String,
    pub payment_terms: String,
    pub cost_budget_minor: i64,
    pub status: String,
    pub opened_on: NaiveDate,
    pub deposit_received_on: Option<NaiveDate>,
    pub paid_in_full_on: Option<NaiveDate>,
    pub over_budget: bool,
    /// The receivable's revision when it was (last) paid in full: the key
    /// of that `OrderPaidInFull` fact, since an amendment that raises the
    /// total opens the order again and a later payment is a new fact.
    #[sqlx(default)]
    pub paid_in_full_revision: Option<i32>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstallmentRow {
    pub seq: i32,
    pub kind: String,
    pub trigger: String,
    pub share_bp: i32,
    pub amount_minor: i64,
    pub due_days: i32,
}

impl InstallmentRow {
    pub fn trigger(&self) -> Option<Trigger> {
        Trigger::from_name(&self.trigger)
    }

    pub fn to_proto(&self) -> InstallmentProto {
        let payment_trigger = self
            .trigger()
            .map_or(PaymentTrigger::Unspecified, PaymentTrigger::from);
        InstallmentProto {
            kind: self.kind.clone(),
            amount_minor: self.amount_minor,
            trigger: self.trigger.clone(),
            due_days: u32::try_from(self.due_days).unwrap_or(0),
            invoice_kind: terms::invoice_kind(&self.kind).into(),
            payment_trigger: payment_trigger.into(),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invoice {
    pub invoice_id: String,
    pub order_id: String,
    pub installment_seq: i32,
    pub kind: String,
    pub trigger: String,
    pub amount_minor: i64,
    /// Settled by payments.
    pub paid_minor: i64,
    /// Settled by credit notes. The amount itself is never changed: an
    /// issued invoice stays as the customer received it.
    pub credited_minor: i64,
    pub currency: String,
    pub issued_on: NaiveDate,
    pub due_date: NaiveDate,
    /// `paid` once payments and credits together settle it.
    pub status: String,
}

impl Invoice {
    /// What the customer still has to pay on it.
    pub fn open_minor(&self) -> i64 {
        if self.status == INVOICE_VOID {
            0
        } else {
            self.amount_minor - self.paid_minor - self.credited_minor
        }
    }

    pub fn to_proto(&self) -> ReceivableInvoice {
        ReceivableInvoice {
            invoice_id: self.invoice_id.clone(),
            order_id: self.order_id.clone(),
            kind: self.kind.clone(),
            trigger: self.trigger.clone(),
            amount_minor: self.amount_minor,
            paid_minor: self.paid_minor,
            currency: self.currency.clone(),
            issued_on: date_to_string(self.issued_on),
            due_date: date_to_string(self.due_date),
            status: self.status.clone(),
        }
    }

    pub fn issued_event(&self) -> InvoiceIssued {
        InvoiceIssued {
            order_id: self.order_id.clone(),
            invoice_id: self.invoice_id.clone(),
            kind: self.kind.clone(),
            amount_minor: self.amount_minor,
            currency: self.currency.clone(),
            due_date: date_to_string(self.due_date),
            invoice_kind: terms::invoice_kind(&self.kind).into(),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payment {
    pub payment_id: Uuid,
    pub order_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub received_on: NaiveDate,
    pub reference: String,
    pub idempotency_key: String,
    pub unapplied_minor: i64,
    pub recorded_at: DateTime<Utc>,
}

const RECEIVABLE_COLUMNS: &str = "order_id, customer, total_minor, currency, payment_terms, \
     cost_budget_minor, status, opened_on, deposit_received_on, paid_in_full_on, over_budget, \
     paid_in_full_revision";

pub async fn find(conn: &mut PgConnection, order_id: &str) -> sqlx::Result<Option<Receivable>> {
    sqlx::query_as(
        "SELECT order_id, customer, total_minor, currency, payment_terms, cost_budget_minor, \
           status, opened_on, deposit_received_on, paid_in_full_on, over_budget, \
           paid_in_full_revision \
         FROM receivables WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// The receivables of `customer` (named as its orders name it) still owed
/// on, open or in collection, except `order_id`'s: the balances the
/// review's credit check adds up ([`crate::estimates::open_balances`]).
pub async fn open_of_customer(
    conn: &mut PgConnection,
    customer: &str,
    order_id: &str,
) -> sqlx::Result<Vec<Receivable>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RECEIVABLE_COLUMNS} FROM receivables \
         WHERE customer = $1 AND order_id <> $2 AND status IN ($3, $4) ORDER BY order_id"
    )))
    .bind(customer)
    .bind(order_id)
    .bind(STATUS_OPEN)
    .bind(STATUS_IN_COLLECTION)
    .fetch_all(conn)
    .await
}

/// The receivable, or `ReceivableNotFound`.
pub async fn get(conn: &mut PgConnection, order_id: &str) -> Result<Receivable> {
    find(conn, order_id)
        .await?
        .ok_or_else(|| Error::ReceivableNotFound(order_id.to_owned()))
}

/// Stores a new receivable with its installments and budget lines.
pub async fn insert(
    conn: &mut PgConnection,
    new: &NewReceivable,
    opened_on: NaiveDate,
) -> Result<Receivable> {
    let receivable: Receivable = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO receivables (order_id, customer, total_minor, currency, payment_terms, \
           cost_budget_minor, status, opened_on, reminder_days) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {RECEIVABLE_COLUMNS}"
    )))
    .bind(&new.order_id)
    .bind(&new.customer)
    .bind(new.total_minor)
    .bind(&new.currency)
    .bind(&new.payment_terms)
    .bind(new.cost_budget_minor)
    .bind(STATUS_OPEN)
    .bind(opened_on)
    .bind(
        new.reminder_days
            .as_ref()
            .map(crate::dunning::Schedule::stored),
    )
    .fetch_one(&mut *conn)
    .await?;
    for installment in &new.installments {
        sqlx::query(
            "INSERT INTO installments (order_id, seq, kind, trigger, share_bp, amount_minor, due_days) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&new.order_id)
        .bind(installment.seq as i32)
        .bind(installment.kind)
        .bind(installment.trigger.as_str())
        .bind(installment.share_bp as i32)
        .bind(installment.amount_minor)
        .bind(installment.due_days as i32)
        .execute(&mut *conn)
        .await?;
    }
    for (category, amount_minor) in &new.budget_lines {
        sqlx::query(
            "INSERT INTO cost_budget_lines (order_id, category, amount_minor) VALUES ($1, $2, $3)",
        )
        .bind(&new.order_id)
        .bind(category)
        .bind(amount_minor)
        .execute(&mut *conn)
        .await?;
    }
    Ok(receivable)
}

pub async fn installments(
    conn: &mut PgConnection,
    order_id: &str,
) -> sqlx::Result<Vec<InstallmentRow>> {
    sqlx::query_as(
        "SELECT seq, kind, trigger, share_bp, amount_minor, due_days FROM installments \
         WHERE order_id = $1 ORDER BY seq",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

const INVOICE_COLUMNS: &str = "invoice_id, order_id, installment_seq, kind, trigger, amount_minor, \
     paid_minor, credited_minor, currency, issued_on, due_date, status";

/// The order's invoices, oldest first.
pub async fn invoices(conn: &mut PgConnection, order_id: &str) -> sqlx::Result<Vec<Invoice>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE order_id = $1 ORDER BY seq"
    )))
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// The invoices `payment_id` went to that are now paid in full, in issue
/// order: the installments that payment settled (an invoice a credit note
/// settled is not among them).
pub async fn invoices_settled_by(
    conn: &mut PgConnection,
    payment_id: Uuid,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT i.invoice_id FROM payment_allocations a JOIN invoices i USING (invoice_id) \
         WHERE a.payment_id = $1 AND i.status = $2 ORDER BY i.seq",
    )
    .bind(payment_id)
    .bind(INVOICE_PAID)
    .fetch_all(conn)
    .await
}

/// Issues the (first) invoice of one installment, for its amount.
pub async fn issue_invoice(
    conn: &mut PgConnection,
    receivable: &Receivable,
    installment: &InstallmentRow,
    issued_on: NaiveDate,
) -> Result<Invoice> {
    issue(
        conn,
        receivable,
        installment,
        installment.amount_minor,
        None,
        issued_on,
    )
    .await
}

/// Issues an invoice of `amount_minor` for `installment`, due its
/// `due_days` after `issued_on`: its first invoice (`amendment` `None`) or
/// an additional one for what revision `amendment` of an amended order adds
/// to it ([`crate::amendments`]). Numbers are gap-free per year (what tax
/// authorities expect), so the year's counter row stays locked until the
/// transaction ends and invoice issuing is serialised.
pub async fn issue(
    conn: &mut PgConnection,
    receivable: &Receivable,
    installment: &InstallmentRow,
    amount_minor: i64,
    amendment: Option<i32>,
    issued_on: NaiveDate,
) -> Result<Invoice> {
    let due_date = issued_on
        .checked_add_days(chrono::Days::new(
            u64::try_from(installment.due_days).unwrap_or(0),
        ))
        .ok_or_else(|| Error::Overflow(receivable.order_id.clone()))?;
    let year = issued_on.year();
    let number: i64 = sqlx::query_scalar(
        "INSERT INTO invoice_numbers (year, last_number) VALUES ($1, 1) \
         ON CONFLICT (year) DO UPDATE SET last_number = invoice_numbers.last_number + 1 \
         RETURNING last_number",
    )
    .bind(year)
    .fetch_one(&mut *conn)
    .await?;
    let invoice_id = format!("INV-{year}-{number:06}");
    let invoice: Invoice = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO invoices (invoice_id, order_id, installment_seq, kind, trigger, amount_minor, \
           currency, issued_on, due_date, status, amendment_revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {INVOICE_COLUMNS}"
    )))
    .bind(&invoice_id)
    .bind(&receivable.order_id)
    .bind(installment.seq)
    .bind(&installment.kind)
    .bind(&installment.trigger)
    .bind(amount_minor)
    .bind(&receivable.currency)
    .bind(issued_on)
    .bind(due_date)
    .bind(INVOICE_OPEN)
    .bind(amendment)
    .fetch_one(&mut *conn)
    .await?;
    tracing::info!(invoice_id = %invoice.invoice_id, kind = %invoice.kind, amount_minor = invoice.amount_minor, "invoice issued");
    Ok(invoice)
}

/// Issues the invoices of `installments` not invoiced yet (amounts of 0 are
/// not invoiced) and returns every invoice of them, new and old, in
/// installment order.
pub async fn invoice_installments(
    conn: &mut PgConnection,
    receivable: &Receivable,
    installments: &[&InstallmentRow],
    issued_on: NaiveDate,
) -> Result<Vec<Invoice>> {
    let existing = invoices(conn, &receivable.order_id).await?;
    let mut result = Vec::with_capacity(installments.len());
    for installment in installments {
        if installment.amount_minor <= 0 {
            continue;
        }
        match existing
            .iter()
            .find(|invoice| invoice.installment_seq == installment.seq)
        {
            Some(invoice) => result.push(invoice.clone()),
            None => result.push(issue_invoice(conn, receivable, installment, issued_on).await?),
        }
    }
    Ok(result)
}

const PAYMENT_COLUMNS: &str = "payment_id, order_id, amount_minor, currency, received_on, reference, \
     idempotency_key, unapplied_minor, recorded_at";

pub async fn payment_by_key(conn: &mut PgConnection, key: &str) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE idempotency_key = $1"
    )))
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// The order's payments, oldest first.
pub async fn payments(conn: &mut PgConnection, order_id: &str) -> sqlx::Result<Vec<Payment>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 ORDER BY received_on, seq"
    )))
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// Records a payment, wholly unapplied until [`settle`] applies it. `None`
/// when its idempotency key was taken meanwhile (the unique constraint is
/// the guard against two concurrent calls with one key).
pub async fn insert_payment(
    conn: &mut PgConnection,
    payment: &NewPayment,
) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO payments (payment_id, order_id, amount_minor, currency, received_on, \
           reference, idempotency_key, unapplied_minor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $3) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING {PAYMENT_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(&payment.order_id)
    .bind(payment.amount_minor)
    .bind(&payment.currency)
    .bind(payment.received_on)
    .bind(&payment.reference)
    .bind(&payment.idempotency_key)
    .fetch_optional(conn)
    .await
}

/// Allocations of the order's payments, in the order they were made.
pub async fn allocations(
    conn: &mut PgConnection,
    order_id: &str,
) -> sqlx::Result<Vec<(Uuid, PaymentAllocation)>> {
    let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "SELECT a.payment_id, a.invoice_id, a.amount_minor FROM payment_allocations a \
         JOIN payments p ON p.payment_id = a.payment_id \
         WHERE p.order_id = $1 ORDER BY a.seq",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(payment_id, invoice_id, amount_minor)| {
            (
                payment_id,
                PaymentAllocation {
                    invoice_id,
                    amount_minor,
                },
            )
        })
        .collect())
}

pub fn payment_proto(
    payment: &Payment,
    allocations: &[(Uuid, PaymentAllocation)],
) -> ReceivedPayment {
    ReceivedPayment {
        payment_id: payment.payment_id.to_string(),
        order_id: payment.order_id.clone(),
        amount_minor: payment.amount_minor,
        currency: payment.currency.clone(),
        received_on: date_to_string(payment.received_on),
        reference: payment.reference.clone(),
        idempotency_key: payment.idempotency_key.clone(),
        allocations: allocations
            .iter()
            .filter(|(id, _)| *id == payment.payment_id)
            .map(|(_, allocation)| allocation.clone())
            .collect(),
        unapplied_minor: payment.unapplied_minor,
    }
}
