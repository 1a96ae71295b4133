//! Saga commands to finance (`gendan.cmd.finance.*`).
//!
//! | command | key | first time | repeat |
//! | --- | --- | --- | --- |
//! | `OpenReceivable`, no receivable yet | order + revision (0 counts as 1) | stores receivable + schedule at the command's revision, with the cost budget of the budget rule below, with the customer's own dunning days when `dunning_reminder_days` lists any (checked like `SetDunningSchedule`; a bad list is `ReceivableOpeningFailed` naming `dunning_reminder_days`) (a revision > 1 too: the order was amended before this step ran), issues the deposit invoice, values the costs booked before it in its currency (see [`crate::costs`]); `ReceivableOpened` with `revision` and `total_minor` (+ `InvoiceIssued` for the deposit), facts keyed by order and revision, then `ExchangeRateMissing` for each of those costs without a rate and `CostOverrun` if they are over the budget; terms not understood, the customer on credit hold (referred to collection), or the order cancelled: `ReceivableOpeningFailed`, nothing stored | the current revision's `ReceivableOpened` / `InvoiceIssued` again, same event ids, nothing written |
//! | `OpenReceivable`, a revision above the stored one (an amended order) | order + revision | keeps the schedule's shares and prices them at the new total; sets the new total and cost budget (and its lines, by the budget rule below); an installment not invoiced takes its new amount, an invoiced one is never edited: its difference is billed by an additional invoice of its kind (due by its terms from today) or taken off by one credit note per revision (claim `amendment:<revision>`, which settles unpaid invoices earliest due first, and, since the new total already leaves it out, lowers what is owed no further) (see [`crate::amendments`]); `ReceivableOpened` with `revision`, `total_minor`, the installments after the change and one `adjustments` line per invoice or credit note, then those `InvoiceIssued` / `CreditNoteIssued`, all facts keyed by order and revision, then `DepositReceived` / `OrderPaidInFull` / `CostOverrun` if it made them true; the order cancelled, a new currency, a total not above 0: `ReceivableOpeningFailed`, nothing changed | the current revision's answer again (also for an older revision), same event ids, nothing written |
//! | `InvoiceBalance` | order + milestone | issues the milestone's invoices; `InvoiceIssued` each (`NoInvoiceDue` when the terms bill nothing then) | the same invoices announced again |
//! | `CancelReceivable` | order | voids unpaid invoices, computes the refund (everything received and not yet refunded); `ReceivableCancelled` | the stored answer again |
//! | `ExtendPaymentDue` | order + invoice kind + new date | moves the due date of the earliest-due unpaid invoice of that kind, starts its dunning over; `PaymentDueExtended` | an invoice of that kind already due on that date: `PaymentDueExtended` again, nothing changed (also once paid, and when the date has passed) |
//! | `ReferToCollection` | order | receivable `in_collection` (dunning stops), customer on credit hold; `ReferredToCollection` with what was outstanding | the stored answer again |
//! | `IssueCreditNote` | order + claim | stores credit note `CN-<year>-<n>`: the customer owes the total less credits, unpaid invoices are settled by it earliest due first (never edited), a payment beyond what is now owed becomes refund due; `CreditNoteIssued` (a fact: same event id every time) with outstanding and refund due, then `DepositReceived` / `OrderPaidInFull` if it settled them (once each, as payments do) | the stored `CreditNoteIssued` again, same event id, nothing written |
//! | `EstimateCosts` | order + revision (0 counts as 1) | the departments' answers costed with finance's labour rates and inspection rate, each cost valued in the order currency at the rate in force today (see [`crate::estimate`]), and the customer's credit measured: the outstanding of its other open receivables (same `customer`) plus the order value against `credit_limit_minor`, both valued the same way; stored; `CostsEstimated` with the `CostEstimate` (parts, lines per category, cost, margin, `below_margin` when the cost exceeds the order value or the margin is below the customer's floor, `credit_exposure_minor`, `credit_limit_minor`, `over_credit_limit` when the exposure passes a limit, warnings for what could not be costed), a fact keyed by order and revision; a cost's currency without a rate (or, with a limit, an open balance's or the limit's): `CostEstimateFailed` naming every missing pair, nothing stored (sent again after the rate is set, it estimates) (see [`crate::estimates`]) | the stored `CostsEstimated` again, same event id, nothing written |
//! | `CloseCostLedger` | order | once the costs consumer has handled the events stream up to `events_through` (retried until then, at most until the 5th delivery), stores and announces `CostLedgerClosed` with the ledger's figures as `GetCostLedger` gives them (zeros with the order id when nothing was booked), the fact `ledger_closed` | the stored figures again, same event id, nothing written |
//! | `RestateFact` (`awaited` `DepositReceived` or `OrderPaidInFull`) | order (reads only) | the fact true: it again as first announced (the fact `deposit_received` or `paid_in_full:<revision>`, same event id); otherwise `StatusReported` with where the deposit stands (each deposit invoice, its amount, due date and what was received) or what of the balance is outstanding, carried out by [`crate::restate`] | the same answer on the current state |
//!
//! Rejected to the dead-letter subject, with the field or the reason named:
//! an `InvoiceBalance` without a known milestone or date; `InvoiceBalance`,
//! `ExtendPaymentDue` or `ReferToCollection` for a receivable that is
//! cancelled or was never opened; an `ExtendPaymentDue`
//! with an unspecified `invoice_kind`, a `new_due_date` that is not a
//! `YYYY-MM-DD` date or is before today, or no unpaid invoice of the kind,
//! and a `ReferToCollection` with nothing outstanding (the order was paid
//! meanwhile; `OrderPaidInFull` told the saga); an `IssueCreditNote` for a
//! receivable that is cancelled or was never opened, with a `claim_id` not
//! 1 to 128 characters or starting with `amendment:` (finance's own notes
//! for amended orders), an `amount_minor` below 1 or above what the total
//! has left to credit, or a `currency` not the receivable's (see
//! [`crate::credit_notes`]), and a `RestateFact` for a fact finance does
//! not announce (`awaited`). `OpenReceivable` never is: the saga needs
//! `ReceivableOpeningFailed` to fail its step. An `EstimateCosts` is, with
//! the field named, when it is malformed: a `currency` (of the order, a
//! material line or the freight) that is not three upper-case letters, a
//! negative `revenue_minor` or amount, hours not finite or outside 0 to
//! 100,000 per work centre, a blank or repeated work centre, more than 500
//! material lines, uncosted materials or work centres, a `min_margin_bp`
//! above 10,000, or amounts that overflow.
//!
//! The budget: an `OpenReceivable` (opening or amending) without a budget,
//! `cost_budget_minor` 0 and no `budget_lines`, takes the order's latest
//! `CostsEstimated` at or below its revision as its budget, the estimate's
//! lines and `cost_minor`, when the estimate is in the receivable's
//! currency; without such an estimate the budget is 0 (none). A budget in
//! the command wins. An amendment whose re-estimate was stored first takes
//! the new estimate, replacing the old budget and its lines.
//!
//! `InvoiceBalance` names its milestone by `billing_milestone`; older senders
//! leave it unspecified and name it by the `milestone` string, which is read
//! then. Events carry both the strings and the enums (`invoice_kind`,
//! `payment_trigger`, `billing_milestone`), mapped in [`crate::terms`].
//! "Today" (for due dates) is the service [`Clock`]'s.
//!
//! Every answer is written to the outbox on the consumer's connection, so it
//! commits with the effect and the inbox record. A repeat's answer is the
//! same fact under the same event id (consumers drop it) for
//! `ReceivableOpened` with the invoices and credit note it announces,
//! `PaymentDueExtended`, `ReferredToCollection`, `CreditNoteIssued`,
//! `CostsEstimated` and `CostLedgerClosed` (and `DepositReceived`, one fact per receivable); the others
//! are a new message with the same content.

use std::sync::Arc;

use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::date_from_str;
use gendan_proto::v1::{
    BillingMilestone, CancelReceivable, CloseCostLedger, EstimateCosts, ExtendPaymentDue,
    InvoiceBalance, IssueCreditNote, NoInvoiceDue, OpenReceivable, ReceivableCancelled,
    ReferToCollection, RestateFact,
};
use sqlx::PgConnection;

use crate::clock::Clock;
use crate::receivables::{self, INVOICE_VOID, STATUS_CANCELLED};
use crate::terms::{Milestone, Trigger};
use crate::{
    Error, SERVICE, amendments, balance, chasing, closing, costs, credit_notes, estimates, restate,
    validate,
};

/// The fact key of the order's cancellation and of the refusals it causes:
/// an order is cancelled once, so a re-sent command is answered with the
/// same fact.
const CANCELLED: &str = "cancelled";

/// Handles `gendan.cmd.finance.*`.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    clock: Arc<dyn Clock>,
}

impl CommandHandler {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        CommandHandler { clock }
    }
}

impl Handler for CommandHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<OpenReceivable>() {
            let today = self.clock.today();
            return open_receivable(conn, message, message.payload()?, today).await;
        }
        if message.is::<InvoiceBalance>() {
            return invoice_balance(conn, message, message.payload()?).await;
        }
        if message.is::<CancelReceivable>() {
            return cancel_receivable(conn, message, message.payload()?).await;
        }
        if message.is::<ExtendPaymentDue>() {
            let today = self.clock.today();
            return chasing::extend_payment_due(conn, message, message.payload()?, today).await;
        }
        if message.is::<ReferToCollection>() {
            let today = self.clock.today();
            return chasing::refer_to_collection(conn, message, message.payload()?, today).await;
        }
        if message.is::<IssueCreditNote>() {
            let today = self.clock.today();
            return credit_notes::issue_credit_note(conn, message, message.payload()?, today).await;
        }
        if message.is::<RestateFact>() {
            return restate::restate_fact(conn, message, message.payload()?).await;
        }
        if message.is::<EstimateCosts>() {
            let today = self.clock.today();
            return estimates::estimate_costs(conn, message, message.payload()?, today).await;
        }
        if message.is::<CloseCostLedger>() {
            return closing::close_cost_ledger(conn, message, message.payload()?).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown command type {:?} for {SERVICE}",
            message.type_name()
        )))
    }
}

/// The stored answer of the order's cancellation, when it was cancelled
/// (also before its receivable was opened).
pub(crate) async fn cancelled(
    conn: &mut PgConnection,
    order_id: &str,
) -> sqlx::Result<Option<ReceivableCancelled>> {
    let row: Option<(i32, i64)> = sqlx::query_as(
        "SELECT invoices_voided, refund_minor FROM receivable_cancellations WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    Ok(
        row.map(|(invoices_voided, refund_minor)| ReceivableCancelled {
            order_id: order_id.to_owned(),
            invoices_voided: u32::try_from(invoices_voided).unwrap_or(0),
            refund_minor,
        }),
    )
}

/// `OpenReceivable`: opens the receivable at the command's revision, or,
/// when it exists, amends it or answers its current revision again
/// ([`amendments`]). "Today" dates an amendment's invoices and credit note.
#[tracing::instrument(
    skip_all,
    fields(order_id = %message.order_id(), revision = command.revision)
)]
async fn open_receivable(
    conn: &mut PgConnection,
    message: &Incoming,
    command: OpenReceivable,
    today: chrono::NaiveDate,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let cause = Cause::from_incoming(message);
    receivables::lock_order(conn, &order_id).await?;

    let failed = |reason: String| amendments::opening_failed(&order_id, reason, &cause);
    if cancelled(conn, &order_id).await?.is_some() {
        // A late or re-sent command after the compensation ran, or an
        // amendment of a cancelled order: opening now would bill a
        // cancelled order.
        let mut event = failed(format!("order {order_id} was cancelled"));
        event.envelope.event_id =
            gendan_messaging::fact_id(SERVICE, &event.envelope.r#type, &order_id, CANCELLED)
                .to_string();
        outbox::write(conn, &[event]).await?;
        return Ok(());
    }
    let revision = match amendments::revision(command.revision) {
        Ok(revision) => revision,
        Err(reason) => {
            outbox::write(conn, &[failed(reason)]).await?;
            return Ok(());
        }
    };
    if let Some(existing) = receivables::find(conn, &order_id).await? {
        let events =
            amendments::open_again(conn, &existing, &command, revision, today, &cause).await?;
        outbox::write(conn, &events).await?;
        return Ok(());
    }
    // A customer referred to collection gets no new credit: the order is
    // held (the saga parks it with this reason for a person).
    let hold: Option<(chrono::NaiveDate, String)> =
        sqlx::query_as("SELECT since, reason FROM credit_holds WHERE customer = $1")
            .bind(command.customer.trim())
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((since, reason)) = hold {
        let event = failed(format!(
            "customer {:?} is on credit hold since {since} ({reason}): new orders wait until the \
             hold is lifted",
            command.customer.trim()
        ));
        outbox::write(conn, &[event]).await?;
        return Ok(());
    }
    let mut new = match validate::open_receivable(&order_id, &command) {
        Ok(new) => new,
        Err(err) => {
            // The saga needs an answer to fail its step with the reason; a
            // dead letter alone would leave it waiting.
            let event = failed(err.to_string());
            outbox::write(conn, &[event]).await?;
            return Ok(());
        }
    };
    // Without a budget of its own the order is budgeted at its estimate.
    estimates::apply_budget(conn, &command, &mut new, revision).await?;
    // The first revision finance sees opens the receivable, whatever its
    // number: an order amended before this step ran opens at its total now.
    let opened_on = message.occurred_at().date_naive();
    let receivable = receivables::insert(conn, &new, opened_on).await?;
    // Costs booked before the receivable waited for its currency: valued
    // now, at the rates of their booking dates.
    let rates_missing = costs::value_pending(conn, &order_id, &cause).await?;
    amendments::record_opening(conn, &receivable, revision).await?;
    let installments = receivables::installments(conn, &order_id).await?;
    let deposits: Vec<_> = installments
        .iter()
        .filter(|i| i.trigger() == Some(Trigger::OnConfirmation))
        .collect();
    receivables::invoice_installments(conn, &receivable, &deposits, opened_on).await?;
    tracing::info!(total_minor = new.total_minor, terms = %new.payment_terms, "receivable opened");

    let mut events = amendments::answer(conn, &receivable, &cause).await?;
    events.extend(rates_missing);
    // Costs may have been booked before the receivable (and its budget)
    // existed.
    events.extend(costs::check_overrun(conn, &order_id, &cause).await?);
    outbox::write(conn, &events).await?;
    Ok(())
}

/// The milestone an `InvoiceBalance` names: `billing_milestone` when set,
/// else the `milestone` string of older senders.
fn balance_milestone(command: &InvoiceBalance) -> Result<Milestone, String> {
    let Ok(billing) = BillingMilestone::try_from(command.billing_milestone) else {
        return Err(format!(
            "billing_milestone {} is not shipment or delivery",
            command.billing_milestone
        ));
    };
    if let Some(milestone) = Milestone::from_billing(billing) {
        let named = command.milestone.trim();
        if !named.is_empty() && Milestone::from_balance_name(named) != Some(milestone) {
            tracing::warn!(
                milestone = %command.milestone,
                billing_milestone = milestone.as_str(),
                "milestone string disagrees with billing_milestone, using billing_milestone"
            );
        }
        return Ok(milestone);
    }
    Milestone::from_balance_name(&command.milestone).ok_or_else(|| {
        format!(
            "milestone {:?} is not \"shipment\" or \"delivery\"",
            command.milestone
        )
    })
}

#[tracing::instrument(
    skip_all,
    fields(order_id = %message.order_id(), milestone = tracing::field::Empty)
)]
async fn invoice_balance(
    conn: &mut PgConnection,
    message: &Incoming,
    command: InvoiceBalance,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let cause = Cause::from_incoming(message);
    let milestone = balance_milestone(&command).map_err(|problem| {
        HandlerError::Rejected(format!("InvoiceBalance for order {order_id}: {problem}"))
    })?;
    tracing::Span::current().record("milestone", milestone.as_str());
    let milestone_date = date_from_str(command.milestone_date.trim()).ok_or_else(|| {
        HandlerError::Rejected(format!(
            "InvoiceBalance for order {order_id}: milestone_date {:?} is not a YYYY-MM-DD date",
            command.milestone_date
        ))
    })?;
    receivables::lock_order(conn, &order_id).await?;
    let receivable = receivables::get(conn, &order_id).await?;
    if receivable.status == STATUS_CANCELLED {
        return Err(Error::Cancelled(order_id).into());
    }
    let installments = receivables::installments(conn, &order_id).await?;
    let due: Vec<_> = installments
        .iter()
        .filter(|i| i.trigger().map(Trigger::milestone) == Some(milestone) && i.amount_minor > 0)
        .collect();
    if due.is_empty() {
        let reason = format!(
            "the terms {:?} bill nothing at {}",
            receivable.payment_terms,
            milestone.as_str()
        );
        tracing::info!(%reason, "no invoice due");
        let answer = NoInvoiceDue {
            order_id: order_id.clone(),
            milestone: milestone.as_str().to_owned(),
            reason,
            billing_milestone: BillingMilestone::from(milestone).into(),
        };
        // The answer follows from the stored terms alone: the same fact
        // for a re-sent command.
        let key = format!("no_invoice:{}", milestone.as_str());
        outbox::write(
            conn,
            &[Outgoing::fact(SERVICE, &order_id, &answer, &cause, &key)],
        )
        .await?;
        return Ok(());
    }
    let invoices =
        receivables::invoice_installments(conn, &receivable, &due, milestone_date).await?;
    let mut events: Vec<Outgoing> = invoices
        .iter()
        // A re-sent command gets the invoices already issued: each is one
        // fact, named by its invoice number.
        .map(|invoice| {
            let key = format!("invoice:{}", invoice.invoice_id);
            Outgoing::fact(SERVICE, &order_id, &invoice.issued_event(), &cause, &key)
        })
        .collect();
    // Money received ahead of the invoice settles it now.
    events.extend(receivables::settle(conn, &receivable, milestone_date, &cause).await?);
    outbox::write(conn, &events).await?;
    Ok(())
}

/// Compensation of a cancelled order. Refund policy: everything received is
/// refunded, minus nothing (no cancellation fee is withheld). A simple
/// policy a merchandiser can explain to the customer; a fee would be a
/// decision for a person, not for this handler. The refund is the
/// cancelled receivable's [`balance::Balance::refund_due_minor`], so a
/// refund already paid after a credit note is not owed twice.
#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn cancel_receivable(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CancelReceivable,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let cause = Cause::from_incoming(message);
    receivables::lock_order(conn, &order_id).await?;
    if let Some(answer) = cancelled(conn, &order_id).await? {
        tracing::info!("already cancelled, answering again");
        outbox::write(
            conn,
            &[Outgoing::fact(
                SERVICE, &order_id, &answer, &cause, CANCELLED,
            )],
        )
        .await?;
        return Ok(());
    }
    let (invoices_voided, refund_minor) = match receivables::find(conn, &order_id).await? {
        // Nothing was opened (or it is still on its way): the tombstone
        // below keeps a late OpenReceivable from opening it.
        None => (0, 0),
        Some(receivable) => {
            let voided = sqlx::query(
                "UPDATE invoices SET status = $2 \
                 WHERE order_id = $1 AND status IN ('open', 'partially_paid')",
            )
            .bind(&order_id)
            .bind(INVOICE_VOID)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            sqlx::query("UPDATE receivables SET status = $2 WHERE order_id = $1")
                .bind(&order_id)
                .bind(STATUS_CANCELLED)
                .execute(&mut *conn)
                .await?;
            let refund = balance::load(conn, &receivable)
                .await?
                .after_cancellation()
                .refund_due_minor();
            (u32::try_from(voided).unwrap_or(u32::MAX), refund)
        }
    };
    sqlx::query(
        "INSERT INTO receivable_cancellations (order_id, reason, invoices_voided, refund_minor) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&order_id)
    .bind(command.reason.trim())
    .bind(i32::try_from(invoices_voided).unwrap_or(i32::MAX))
    .bind(refund_minor)
    .execute(&mut *conn)
    .await?;
    tracing::info!(invoices_voided, refund_minor, "receivable cancelled");
    let answer = ReceivableCancelled {
        order_id: order_id.clone(),
        invoices_voided,
        refund_minor,
    };
    outbox::write(
        conn,
        &[Outgoing::fact(
            SERVICE, &order_id, &answer, &cause, CANCELLED,
        )],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(milestone: &str, billing_milestone: i32) -> InvoiceBalance {
        InvoiceBalance {
            order_id: "o-1".into(),
            milestone: milestone.into(),
            milestone_date: "2026-03-02".into(),
            billing_milestone,
        }
    }

    #[test]
    fn the_enum_is_read_first_and_the_string_when_it_is_unspecified() {
        let delivery = i32::from(BillingMilestone::Delivery);
        let unspecified = i32::from(BillingMilestone::Unspecified);
        assert_eq!(
            balance_milestone(&command("", delivery)),
            Ok(Milestone::Delivery)
        );
        assert_eq!(
            balance_milestone(&command("shipment", delivery)),
            Ok(Milestone::Delivery),
            "the enum wins over a disagreeing string"
        );
        assert_eq!(
            balance_milestone(&command(" Shipment", unspecified)),
            Ok(Milestone::Shipment)
        );
        assert_eq!(
            balance_milestone(&command("acceptance", unspecified)),
            Err(r#"milestone "acceptance" is not "shipment" or "delivery""#.to_owned())
        );
        assert_eq!(
            balance_milestone(&command("", unspecified)),
            Err(r#"milestone "" is not "shipment" or "delivery""#.to_owned())
        );
        // A value from a newer proto is not guessed at, whatever the string.
        assert_eq!(
            balance_milestone(&command("shipment", 99)),
            Err("billing_milestone 99 is not shipment or delivery".to_owned())
        );
    }
}
