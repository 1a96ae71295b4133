//! Settling a receivable: applying received money and credit notes to its
//! open invoices (oldest due first, see [`crate::allocation`]) and
//! announcing what became true, the deposit in (`DepositReceived`) or the
//! order paid in full (`OrderPaidInFull`), each under its fact key so an
//! announcement made again is the same fact ([`crate::restate`]).
//!
//! Kept apart from the table reads and writes in [`crate::receivables`]
//! because [`settle`] is the one place every path that moves money on an
//! order (a payment, an invoice issued onto money received ahead, a credit
//! note, an amendment) ends in; [`crate::credit_notes`] uses its invoice
//! primitives too. Runs under the caller's [`super::lock_order`].

use chrono::NaiveDate;
use gendan_messaging::{Cause, Outgoing};
use gendan_proto::date_to_string;
use gendan_proto::v1::{DepositReceived, OrderPaidInFull};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{INVOICE_PAID, INVOICE_VOID, Invoice, Receivable, STATUS_PAID, invoices, payments};
use crate::allocation::allocate;
use crate::terms::KIND_DEPOSIT;
use crate::{Error, Result, SERVICE, balance, credit_notes};

/// The order's invoices with something left to pay, as (id, open amount),
/// in the order money settles them: oldest due first, issue order breaking
/// ties (invoices() is in issue order and the sort is stable).
pub(crate) async fn unsettled_invoices(
    conn: &mut PgConnection,
    order_id: &str,
) -> sqlx::Result<Vec<(String, i64)>> {
    let mut open = invoices(conn, order_id).await?;
    open.retain(|invoice| invoice.open_minor() > 0);
    open.sort_by_key(|invoice| invoice.due_date);
    Ok(open
        .iter()
        .map(|invoice| (invoice.invoice_id.clone(), invoice.open_minor()))
        .collect())
}

/// Settles `paid_minor` (by a payment) and `credited_minor` (by a credit
/// note) more of an invoice; it is `paid` once the two reach its amount.
pub(crate) async fn settle_invoice(
    conn: &mut PgConnection,
    invoice_id: &str,
    paid_minor: i64,
    credited_minor: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE invoices SET paid_minor = paid_minor + $2, credited_minor = credited_minor + $3, \
           status = CASE WHEN paid_minor + credited_minor + $2 + $3 = amount_minor \
             THEN 'paid' ELSE 'partially_paid' END \
         WHERE invoice_id = $1",
    )
    .bind(invoice_id)
    .bind(paid_minor)
    .bind(credited_minor)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies unapplied money to open invoices, oldest payment to oldest
/// invoice (see [`crate::allocation`]).
async fn apply_payments(conn: &mut PgConnection, order_id: &str) -> sqlx::Result<()> {
    let credits: Vec<(Uuid, i64)> = payments(conn, order_id)
        .await?
        .iter()
        .map(|p| (p.payment_id, p.unapplied_minor))
        .filter(|(_, unapplied)| *unapplied > 0)
        .collect();
    if credits.is_empty() {
        return Ok(());
    }
    let open = unsettled_invoices(conn, order_id).await?;
    for allocation in allocate(&credits, &open) {
        sqlx::query(
            "INSERT INTO payment_allocations (payment_id, invoice_id, amount_minor) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (payment_id, invoice_id) \
             DO UPDATE SET amount_minor = payment_allocations.amount_minor + EXCLUDED.amount_minor",
        )
        .bind(allocation.credit)
        .bind(&allocation.invoice)
        .bind(allocation.amount_minor)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE payments SET unapplied_minor = unapplied_minor - $2 WHERE payment_id = $1",
        )
        .bind(allocation.credit)
        .bind(allocation.amount_minor)
        .execute(&mut *conn)
        .await?;
        settle_invoice(conn, &allocation.invoice, allocation.amount_minor, 0).await?;
    }
    Ok(())
}

/// The fact key of `DepositReceived`: a receivable's deposit is received
/// once.
pub const DEPOSIT_RECEIVED: &str = "deposit_received";

/// `received` as the order's one deposit fact: announced again (a
/// `RestateFact`, [`crate::restate`]), it keeps its event id and every
/// consumer that had it drops it.
pub fn deposit_received_fact(received: &DepositReceived, cause: &Cause) -> Outgoing {
    Outgoing::fact(
        SERVICE,
        &received.order_id,
        received,
        cause,
        DEPOSIT_RECEIVED,
    )
}

/// `OrderPaidInFull` under its fact id, the same however often it is
/// announced: the key is `paid_in_full:<revision>`, the receivable's
/// revision when it became paid (an amendment that raises the total opens
/// the order again, and paying it then is a new fact).
pub fn paid_in_full_fact(paid: &OrderPaidInFull, revision: i32, cause: &Cause) -> Outgoing {
    let key = format!("paid_in_full:{revision}");
    Outgoing::fact(SERVICE, &paid.order_id, paid, cause, &key)
}

/// Applies received money, then credit notes, then announces what became
/// true: the deposit is in (every deposit invoice settled) and the order is
/// paid in full (nothing outstanding: payments cover the total less the
/// credits). Each is announced once: its date is stored the first time
/// (`DepositReceived` is the fact [`DEPOSIT_RECEIVED`]).
/// `on` is the date it became true (the value date of the payment, or the
/// date of the invoice or credit note, that did it).
pub async fn settle(
    conn: &mut PgConnection,
    receivable: &Receivable,
    on: NaiveDate,
    cause: &Cause,
) -> Result<Vec<Outgoing>> {
    let order_id = &receivable.order_id;
    // Money first, so a credit note issued before an invoice settles what
    // payments received ahead leave of it; the totals do not depend on it.
    apply_payments(conn, order_id).await?;
    credit_notes::apply(conn, order_id).await?;
    let mut events = Vec::new();

    if receivable.deposit_received_on.is_none() {
        let deposits: Vec<Invoice> = invoices(conn, order_id)
            .await?
            .into_iter()
            .filter(|invoice| invoice.kind == KIND_DEPOSIT && invoice.status != INVOICE_VOID)
            .collect();
        if !deposits.is_empty() && deposits.iter().all(|i| i.status == INVOICE_PAID) {
            let amount_minor = deposits
                .iter()
                .try_fold(0i64, |sum, i| sum.checked_add(i.amount_minor))
                .ok_or_else(|| Error::Overflow(order_id.clone()))?;
            sqlx::query("UPDATE receivables SET deposit_received_on = $2 WHERE order_id = $1")
                .bind(order_id)
                .bind(on)
                .execute(&mut *conn)
                .await?;
            tracing::info!(%order_id, amount_minor, "deposit received");
            let event = DepositReceived {
                order_id: order_id.clone(),
                amount_minor,
                received_on: date_to_string(on),
            };
            events.push(deposit_received_fact(&event, cause));
        }
    }

    if receivable.paid_in_full_on.is_none() && balance::load(conn, receivable).await?.settled() {
        let revision: i32 = sqlx::query_scalar(
            "UPDATE receivables SET paid_in_full_on = $2, status = $3, \
               paid_in_full_revision = (SELECT COALESCE(max(revision), 1) \
                 FROM receivable_revisions WHERE order_id = $1) \
             WHERE order_id = $1 RETURNING paid_in_full_revision",
        )
        .bind(order_id)
        .bind(on)
        .bind(STATUS_PAID)
        .fetch_one(&mut *conn)
        .await?;
        tracing::info!(%order_id, "order paid in full");
        let event = OrderPaidInFull {
            order_id: order_id.clone(),
            paid_on: date_to_string(on),
        };
        events.push(paid_in_full_fact(&event, revision, cause));
    }
    Ok(events)
}
