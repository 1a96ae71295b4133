//! The saga's answers to an escalated payment (`PaymentEscalated`): give
//! the customer more time (`ExtendPaymentDue`) or hand the receivable to
//! collection (`ReferToCollection`). Both are dispatched by
//! [`crate::commands`], run on the consumer's connection under the order
//! lock, and write their answer to the outbox in the same transaction.
//!
//! - `ExtendPaymentDue` moves the due date of the order's unpaid invoice of
//!   the named kind (the earliest due, when there are several) and starts
//!   its dunning over (no reminder sent, not escalated), recording the move
//!   in `payment_due_extensions`. The date is checked (`YYYY-MM-DD`, not
//!   before today) only when it changes something: a re-sent command whose
//!   date is already the invoice's is answered again, even days later and
//!   even after the invoice was paid.
//! - `ReferToCollection` marks the receivable `in_collection` (dunning
//!   stops; payments are still taken and settle it as usual), records the
//!   referral with what was outstanding, and puts the customer on credit
//!   hold (`credit_holds`, keyed by the customer's name, the first hold's
//!   date kept). A repeat answers the stored referral.
//!
//! Invalid input and a state that can never allow the command (no
//! receivable, cancelled, nothing unpaid) are rejected to the dead-letter
//! subject with the field or the reason named.

use chrono::NaiveDate;
use gendan_grpc::FieldError;
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing, outbox};
use gendan_proto::date_to_string;
use gendan_proto::v1::{
    ExtendPaymentDue, InvoiceKind, PaymentDueExtended, ReferToCollection, ReferredToCollection,
};
use sqlx::PgConnection;

use crate::receivables::{self, Invoice, STATUS_CANCELLED, STATUS_IN_COLLECTION};
use crate::terms::{KIND_BALANCE, KIND_DEPOSIT};
use crate::{Error, SERVICE, balance, validate};

fn rejected(command: &str, order_id: &str, err: FieldError) -> HandlerError {
    HandlerError::Rejected(format!("{command} for order {order_id}: {err}"))
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
pub async fn extend_payment_due(
    conn: &mut PgConnection,
    message: &Incoming,
    command: ExtendPaymentDue,
    today: NaiveDate,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let reject = |err: FieldError| rejected("ExtendPaymentDue", &order_id, err);
    let kind = match InvoiceKind::try_from(command.invoice_kind) {
        Ok(InvoiceKind::Deposit) => KIND_DEPOSIT,
        Ok(InvoiceKind::Balance) => KIND_BALANCE,
        _ => {
            return Err(reject(FieldError::new(
                "invoice_kind",
                format!("{} is not deposit or balance", command.invoice_kind),
            )));
        }
    };
    let new_due_date = validate::date(&command.new_due_date, "new_due_date").map_err(&reject)?;
    let reason = validate::optional_text(&command.reason, "reason").map_err(&reject)?;
    let cause = Cause::from_incoming(message);
    receivables::lock_order(conn, &order_id).await?;
    let receivable = receivables::get(conn, &order_id).await?;
    if receivable.status == STATUS_CANCELLED {
        return Err(Error::Cancelled(order_id).into());
    }
    let invoices = receivables::invoices(conn, &order_id).await?;
    let answer = |invoice: &Invoice| PaymentDueExtended {
        order_id: order_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        new_due_date: date_to_string(new_due_date),
    };
    let of_kind: Vec<&Invoice> = invoices
        .iter()
        .filter(|i| i.kind == kind && i.status != receivables::INVOICE_VOID)
        .collect();
    let unpaid_on_date = of_kind
        .iter()
        .find(|i| i.open_minor() > 0 && i.due_date == new_due_date);
    let earliest_unpaid = of_kind
        .iter()
        .filter(|i| i.open_minor() > 0)
        .min_by_key(|i| i.due_date);
    // Already on that date (this command seen before): answer again and
    // leave the dunning as it has gone since. With nothing unpaid left, an
    // invoice on that date is the same repeat arriving after the customer
    // paid.
    let already = match (unpaid_on_date, earliest_unpaid) {
        (Some(invoice), _) => Some(invoice),
        (None, None) => of_kind.iter().find(|i| i.due_date == new_due_date),
        (None, Some(_)) => None,
    };
    let invoice = match (already, earliest_unpaid) {
        (Some(&invoice), _) => {
            tracing::info!(invoice_id = %invoice.invoice_id, "due date already moved, answering again");
            let key = extension_key(invoice, new_due_date);
            let event = Outgoing::fact(SERVICE, &order_id, &answer(invoice), &cause, &key);
            outbox::write(conn, &[event]).await?;
            return Ok(());
        }
        (None, Some(&invoice)) => invoice,
        (None, None) => {
            return Err(Error::NoUnpaidInvoice {
                order_id: order_id.clone(),
                kind,
            }
            .into());
        }
    };
    if new_due_date < today {
        return Err(reject(FieldError::new(
            "new_due_date",
            format!("{new_due_date} is before today ({today})"),
        )));
    }
    sqlx::query(
        "UPDATE invoices SET due_date = $2, reminders_sent = 0, last_reminded_on = NULL, \
           escalated_on = NULL \
         WHERE invoice_id = $1",
    )
    .bind(&invoice.invoice_id)
    .bind(new_due_date)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO payment_due_extensions \
           (invoice_id, order_id, old_due_date, new_due_date, reason) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&invoice.invoice_id)
    .bind(&order_id)
    .bind(invoice.due_date)
    .bind(new_due_date)
    .bind(&reason)
    .execute(&mut *conn)
    .await?;
    tracing::info!(
        invoice_id = %invoice.invoice_id,
        old_due_date = %invoice.due_date,
        %new_due_date,
        "payment due date extended, dunning starts over"
    );
    let key = extension_key(invoice, new_due_date);
    let event = Outgoing::fact(SERVICE, &order_id, &answer(invoice), &cause, &key);
    outbox::write(conn, &[event]).await?;
    Ok(())
}

async fn referral(
    conn: &mut PgConnection,
    order_id: &str,
) -> sqlx::Result<Option<ReferredToCollection>> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT customer, outstanding_minor FROM collection_referrals WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    Ok(
        row.map(|(customer, outstanding_minor)| ReferredToCollection {
            order_id: order_id.to_owned(),
            customer,
            outstanding_minor,
        }),
    )
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
pub async fn refer_to_collection(
    conn: &mut PgConnection,
    message: &Incoming,
    command: ReferToCollection,
    today: NaiveDate,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let reason = validate::optional_text(&command.reason, "reason")
        .map_err(|err| rejected("ReferToCollection", &order_id, err))?;
    let cause = Cause::from_incoming(message);
    receivables::lock_order(conn, &order_id).await?;
    if let Some(answer) = referral(conn, &order_id).await? {
        tracing::info!("already referred to collection, answering again");
        let event = Outgoing::fact(SERVICE, &order_id, &answer, &cause, REFERRAL);
        outbox::write(conn, &[event]).await?;
        return Ok(());
    }
    let receivable = receivables::get(conn, &order_id).await?;
    if receivable.status == STATUS_CANCELLED {
        return Err(Error::Cancelled(order_id).into());
    }
    // Net of credit notes: a credited claim is not the collector's to chase.
    let outstanding_minor = balance::load(conn, &receivable).await?.outstanding_minor();
    if outstanding_minor <= 0 {
        // Paid (or credited) while the decision was pending: nothing to collect,
        // and the saga learns that from OrderPaidInFull.
        return Err(Error::NothingOutstanding(order_id).into());
    }
    sqlx::query(
        "INSERT INTO collection_referrals \
           (order_id, customer, reason, outstanding_minor, referred_on) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&order_id)
    .bind(&receivable.customer)
    .bind(&reason)
    .bind(outstanding_minor)
    .bind(today)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE receivables SET status = $2 WHERE order_id = $1")
        .bind(&order_id)
        .bind(STATUS_IN_COLLECTION)
        .execute(&mut *conn)
        .await?;
    if receivable.customer.is_empty() {
        // The order named no customer: there is no one to hold. The
        // referral itself stands.
        tracing::warn!("receivable names no customer, no credit hold placed");
    } else {
        sqlx::query(
            "INSERT INTO credit_holds (customer, since, reason, order_id) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (customer) DO NOTHING",
        )
        .bind(&receivable.customer)
        .bind(today)
        .bind(format!("order {order_id} referred to collection: {reason}"))
        .bind(&order_id)
        .execute(&mut *conn)
        .await?;
    }
    tracing::info!(outstanding_minor, customer = %receivable.customer, "referred to collection, customer on credit hold");
    let answer = ReferredToCollection {
        order_id: order_id.clone(),
        customer: receivable.customer.clone(),
        outstanding_minor,
    };
    let event = Outgoing::fact(SERVICE, &order_id, &answer, &cause, REFERRAL);
    outbox::write(conn, &[event]).await?;
    Ok(())
}

/// The fact key of an order's referral to collection: one per order.
const REFERRAL: &str = "referral";

/// The fact key of moving `invoice` to `new_due_date`: said again (a re-sent
/// command), the same event id.
fn extension_key(invoice: &Invoice, new_due_date: chrono::NaiveDate) -> String {
    format!("extension:{}:{new_due_date}", invoice.invoice_id)
}
