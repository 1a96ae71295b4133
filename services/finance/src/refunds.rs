//! Refunds: money paid back to a customer after a cancellation (everything
//! received) or a credit note (what they paid beyond what they now owe).
//!
//! Both are one figure, the receivable's
//! [`Balance::refund_due_minor`](crate::balance::Balance::refund_due_minor):
//! money kept (payments less refunds) beyond what the customer owes (the
//! total less credits, nothing once cancelled). Each [`record`]ed refund
//! pays part or all of it out; [`refund_due`] is what is still owed (what
//! `GetReceivable` shows as `refund_due_minor`, what `CancelReceivable`
//! stores and `CreditNoteIssued` announces). A refund is checked against
//! that under the order lock, stored with its idempotency key (unique, so
//! one key pays out once even from two concurrent calls) and announced as
//! `RefundPaid` in the same transaction.

use chrono::NaiveDate;
use gendan_grpc::FieldError;
use gendan_messaging::{Cause, Outgoing, outbox};
use gendan_proto::v1::{RecordRefundResponse, RefundPaid};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::validate::NewRefund;
use crate::{Error, Result, SERVICE, balance, receivables};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Refund {
    pub refund_id: Uuid,
    pub order_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub paid_on: NaiveDate,
    pub reference: String,
    pub idempotency_key: String,
}

/// What the order still owes the customer (0 when there is no receivable:
/// nothing was received).
pub async fn refund_due(conn: &mut PgConnection, order_id: &str) -> sqlx::Result<i64> {
    let Some(receivable) = receivables::find(conn, order_id).await? else {
        return Ok(0);
    };
    Ok(balance::load(conn, &receivable).await?.refund_due_minor())
}

async fn by_key(conn: &mut PgConnection, key: &str) -> sqlx::Result<Option<Refund>> {
    sqlx::query_as(
        "SELECT refund_id, order_id, amount_minor, currency, paid_on, reference, idempotency_key \
         FROM refunds WHERE idempotency_key = $1",
    )
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// `None` when the key was taken meanwhile (by a call for another order:
/// one for this order waits on the order lock).
async fn insert(conn: &mut PgConnection, new: &NewRefund) -> sqlx::Result<Option<Refund>> {
    sqlx::query_as(
        "INSERT INTO refunds (refund_id, order_id, amount_minor, currency, paid_on, reference, \
           idempotency_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (idempotency_key) DO NOTHING \
         RETURNING refund_id, order_id, amount_minor, currency, paid_on, reference, idempotency_key",
    )
    .bind(Uuid::now_v7())
    .bind(&new.order_id)
    .bind(new.amount_minor)
    .bind(&new.currency)
    .bind(new.paid_on)
    .bind(&new.reference)
    .bind(&new.idempotency_key)
    .fetch_optional(conn)
    .await
}

fn response(refund: &Refund, refund_due_minor: i64) -> RecordRefundResponse {
    RecordRefundResponse {
        refund_id: refund.refund_id.to_string(),
        amount_minor: refund.amount_minor,
        currency: refund.currency.clone(),
        refund_due_minor,
    }
}

/// The answer to a key seen before: the first refund, nothing written. As
/// with payments, the key alone names the refund; the body is not compared.
async fn repeated(
    conn: &mut PgConnection,
    existing: Refund,
    new: &NewRefund,
) -> Result<RecordRefundResponse> {
    if existing.order_id != new.order_id {
        return Err(FieldError::new(
            "idempotency_key",
            format!(
                "{:?} was already used for a refund on order {}",
                new.idempotency_key, existing.order_id
            ),
        )
        .into());
    }
    tracing::info!(refund_id = %existing.refund_id, "refund seen before, answering it again");
    let due = refund_due(conn, &existing.order_id).await?;
    Ok(response(&existing, due))
}

/// Pays out `new` on the caller's transaction: order lock, idempotency key,
/// checks against the receivable and what is due, the refund row and its
/// `RefundPaid` event.
pub async fn record(conn: &mut PgConnection, new: &NewRefund) -> Result<RecordRefundResponse> {
    receivables::lock_order(conn, &new.order_id).await?;
    if let Some(existing) = by_key(conn, &new.idempotency_key).await? {
        return repeated(conn, existing, new).await;
    }
    let receivable = receivables::get(conn, &new.order_id).await?;
    if new.currency != receivable.currency {
        return Err(FieldError::new(
            "currency",
            format!(
                "the receivable of order {} is in {}, not {}",
                new.order_id, receivable.currency, new.currency
            ),
        )
        .into());
    }
    let due = balance::load(conn, &receivable).await?.refund_due_minor();
    if due <= 0 {
        return Err(Error::NoRefundDue(new.order_id.clone()));
    }
    if new.amount_minor > due {
        return Err(FieldError::new(
            "amount_minor",
            format!(
                "{} is more than the {due} due to the customer of order {}",
                new.amount_minor, new.order_id
            ),
        )
        .into());
    }
    let Some(refund) = insert(conn, new).await? else {
        let existing = by_key(conn, &new.idempotency_key)
            .await?
            .ok_or(Error::Database(sqlx::Error::RowNotFound))?;
        return repeated(conn, existing, new).await;
    };
    let due_after = due - refund.amount_minor;
    tracing::info!(refund_id = %refund.refund_id, amount_minor = refund.amount_minor, refund_due_minor = due_after, "refund paid");
    let paid = RefundPaid {
        order_id: new.order_id.clone(),
        refund_id: refund.refund_id.to_string(),
        amount_minor: refund.amount_minor,
        currency: refund.currency.clone(),
        refund_due_minor: due_after,
    };
    let cause = Cause::root(&new.order_id);
    outbox::write(
        conn,
        &[Outgoing::event(SERVICE, &new.order_id, &paid, &cause)],
    )
    .await?;
    Ok(response(&refund, due_after))
}
