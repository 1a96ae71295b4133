//! `RestateFact` to finance (`gendan.cmd.finance.restate_fact`): a saga
//! step waiting on finance asks again, because the fact it waits for may
//! have been announced and lost: `deposit_received` at its deadline, and
//! `paid_in_full` every few days (finance's dunning chases the customer;
//! this only makes sure the saga heard what finance knows).
//!
//! Contract:
//! - `awaited` must be `gendan.v1.DepositReceived` or
//!   `gendan.v1.OrderPaidInFull`, the facts finance is asked for; another
//!   type, or no order id, is rejected to the dead-letter subject with the
//!   field named ([`HandlerError::Rejected`]). `revision` is not read: a
//!   receivable's deposit is received, and an order paid in full, once,
//!   whatever the order's revision.
//! - The fact is true (the receivable has its `deposit_received_on`, or its
//!   `paid_in_full_on`): it is announced again as [`receivables::settle`]
//!   first announced it, rebuilt from what is stored and keyed
//!   [`receivables::DEPOSIT_RECEIVED`] or `paid_in_full:<revision>`
//!   ([`receivables::paid_in_full_fact`]), so
//!   it keeps its event id and every consumer that had it drops it. A
//!   deposit stays received once the receivable was paid, cancelled or
//!   referred to collection.
//! - Otherwise `StatusReported` (a new observation, a new event id) says
//!   where things stand, for a merchandiser: no receivable yet, the order
//!   cancelled, no deposit invoice, each deposit invoice with its amount,
//!   due date and what was received (and credited) on it; for the balance,
//!   what is outstanding and whether it is in collection.
//!
//! Runs under [`receivables::lock_order`] like every command, so a payment
//! settling the deposit meanwhile is either wholly seen or not at all.
//! Nothing is changed: the answer is the only write.

use gendan_grpc::FieldError;
use gendan_messaging::{Cause, HandlerError, Incoming, outbox};
use gendan_proto::v1::{DepositReceived, OrderPaidInFull, RestateFact};
use gendan_proto::{TypeName, date_to_string, money};
use sqlx::PgConnection;

use crate::receivables::{
    self, INVOICE_PAID, INVOICE_VOID, Invoice, Receivable, STATUS_CANCELLED, STATUS_IN_COLLECTION,
};
use crate::terms::KIND_DEPOSIT;
use crate::{Result, SERVICE, commands};

/// Answers `command` for the order it names (see the module's contract).
#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
pub async fn restate_fact(
    conn: &mut PgConnection,
    message: &Incoming,
    command: RestateFact,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let awaited = command.awaited.trim();
    if awaited != DepositReceived::TYPE_NAME && awaited != OrderPaidInFull::TYPE_NAME {
        let err = FieldError::new(
            "awaited",
            format!(
                "finance announces {} or {}, not {:?}",
                DepositReceived::TYPE_NAME,
                OrderPaidInFull::TYPE_NAME,
                command.awaited
            ),
        );
        return Err(HandlerError::Rejected(format!(
            "RestateFact for order {order_id}: {err}"
        )));
    }
    receivables::lock_order(conn, &order_id).await?;
    let cause = Cause::from_incoming(message);
    let receivable = receivables::find(conn, &order_id).await?;
    let event = if awaited == OrderPaidInFull::TYPE_NAME {
        let paid = receivable
            .as_ref()
            .and_then(|r| Some((r.paid_in_full_on?, r.paid_in_full_revision.unwrap_or(1))));
        match paid {
            Some((paid_on, revision)) => {
                tracing::info!("paid in full, announcing the fact again");
                let paid = OrderPaidInFull {
                    order_id: order_id.clone(),
                    paid_on: gendan_proto::date_to_string(paid_on),
                };
                receivables::paid_in_full_fact(&paid, revision, &cause)
            }
            None => {
                let status = balance_status(conn, &order_id, receivable.as_ref()).await?;
                gendan_messaging::restate::status_reported(
                    SERVICE, &order_id, &command, status, &cause,
                )
            }
        }
    } else {
        let received = match &receivable {
            Some(receivable) => deposit_received(conn, receivable).await?,
            None => None,
        };
        match received {
            Some(received) => {
                tracing::info!("deposit received, announcing the fact again");
                receivables::deposit_received_fact(&received, &cause)
            }
            None => {
                let status = status(conn, &order_id, receivable.as_ref()).await?;
                gendan_messaging::restate::status_reported(
                    SERVICE, &order_id, &command, status, &cause,
                )
            }
        }
    };
    outbox::write(conn, &[event]).await?;
    Ok(())
}

/// Where the balance of an order stands while it is not paid in full.
async fn balance_status(
    conn: &mut PgConnection,
    order_id: &str,
    receivable: Option<&Receivable>,
) -> Result<String> {
    let Some(receivable) = receivable else {
        return Ok("no receivable opened for the order yet".to_owned());
    };
    if receivable.status == STATUS_CANCELLED {
        return Ok("receivable cancelled: nothing is collected".to_owned());
    }
    let balance = crate::balance::load(conn, receivable).await?;
    let outstanding = money(balance.outstanding_minor(), &receivable.currency);
    let unpaid: Vec<String> = receivables::invoices(conn, order_id)
        .await?
        .into_iter()
        .filter(|invoice| invoice.status != INVOICE_VOID && invoice.status != INVOICE_PAID)
        .map(|invoice| {
            format!(
                "{} due {}",
                invoice.invoice_id,
                date_to_string(invoice.due_date)
            )
        })
        .collect();
    let mut text = format!("{outstanding} outstanding");
    if !unpaid.is_empty() {
        text.push_str(&format!(" ({})", unpaid.join(", ")));
    }
    if receivable.status == STATUS_IN_COLLECTION {
        text = format!("referred to collection; {text}");
    }
    Ok(text)
}

/// Where the deposit of an order stands while it is not in.
async fn status(
    conn: &mut PgConnection,
    order_id: &str,
    receivable: Option<&Receivable>,
) -> Result<String> {
    let Some(receivable) = receivable else {
        // A cancellation before opening leaves a tombstone and no receivable.
        let text = if commands::cancelled(conn, order_id).await?.is_some() {
            "order cancelled before its receivable was opened: no deposit is due"
        } else {
            "no receivable opened for the order yet: the deposit is not invoiced"
        };
        return Ok(text.to_owned());
    };
    if receivable.status == STATUS_CANCELLED {
        return Ok("receivable cancelled: no deposit is collected".to_owned());
    }
    let deposits: Vec<Invoice> = receivables::invoices(conn, order_id)
        .await?
        .into_iter()
        .filter(|invoice| invoice.kind == KIND_DEPOSIT && invoice.status != INVOICE_VOID)
        .collect();
    let text = if deposits.is_empty() {
        format!(
            "no deposit invoice issued (payment terms {:?})",
            receivable.payment_terms
        )
    } else {
        let each: Vec<String> = deposits.iter().map(deposit_text).collect();
        each.join("; ")
    };
    Ok(if receivable.status == STATUS_IN_COLLECTION {
        format!("referred to collection; {text}")
    } else {
        text
    })
}

/// "deposit invoice INV-2026-000003 of 3000.00 USD due 2026-03-09, 1000.00
/// USD received" (", … credited" when a credit note settled part of it).
fn deposit_text(invoice: &Invoice) -> String {
    let currency = invoice.currency.as_str();
    let named = format!(
        "deposit invoice {} of {} due {}",
        invoice.invoice_id,
        money(invoice.amount_minor, currency),
        date_to_string(invoice.due_date)
    );
    if invoice.status == INVOICE_PAID {
        return format!("{named}, paid");
    }
    let received = format!("{named}, {} received", money(invoice.paid_minor, currency));
    if invoice.credited_minor > 0 {
        let credited = money(invoice.credited_minor, currency);
        return format!("{received}, {credited} credited");
    }
    received
}

/// The receivable's `DepositReceived` as [`receivables::settle`] announced it, rebuilt
/// from what is stored: its date, and the deposit invoices it summed (not
/// void). An additional deposit invoice of an amendment issued after that
/// date came later and was not part of it. `None` while the deposit is not
/// in.
async fn deposit_received(
    conn: &mut PgConnection,
    receivable: &receivables::Receivable,
) -> crate::Result<Option<DepositReceived>> {
    let Some(received_on) = receivable.deposit_received_on else {
        return Ok(None);
    };
    let amount_minor: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(amount_minor), 0)::int8 FROM invoices \
         WHERE order_id = $1 AND kind = $2 AND status <> $3 \
           AND (amendment_revision IS NULL OR issued_on <= $4)",
    )
    .bind(&receivable.order_id)
    .bind(crate::terms::KIND_DEPOSIT)
    .bind(receivables::INVOICE_VOID)
    .bind(received_on)
    .fetch_one(conn)
    .await?;
    Ok(Some(DepositReceived {
        order_id: receivable.order_id.clone(),
        amount_minor,
        received_on: gendan_proto::date_to_string(received_on),
    }))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::receivables::INVOICE_PARTIALLY_PAID;

    fn deposit(paid_minor: i64, credited_minor: i64, status: &str) -> Invoice {
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        Invoice {
            invoice_id: "INV-2026-000003".into(),
            order_id: "o-1".into(),
            installment_seq: 1,
            kind: KIND_DEPOSIT.into(),
            trigger: "on_confirmation".into(),
            amount_minor: 300_000,
            paid_minor,
            credited_minor,
            currency: "USD".into(),
            issued_on: day(2),
            due_date: day(9),
            status: status.into(),
        }
    }

    #[test]
    fn a_deposit_invoice_says_what_was_received_on_it() {
        assert_eq!(
            deposit_text(&deposit(100_000, 0, INVOICE_PARTIALLY_PAID)),
            "deposit invoice INV-2026-000003 of 3000.00 USD due 2026-03-09, 1000.00 USD received"
        );
        assert_eq!(
            deposit_text(&deposit(100_000, 50_000, INVOICE_PARTIALLY_PAID)),
            "deposit invoice INV-2026-000003 of 3000.00 USD due 2026-03-09, 1000.00 USD \
             received, 500.00 USD credited"
        );
        assert_eq!(
            deposit_text(&deposit(300_000, 0, INVOICE_PAID)),
            "deposit invoice INV-2026-000003 of 3000.00 USD due 2026-03-09, paid"
        );
    }
}
