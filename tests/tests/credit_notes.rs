//! Credit notes (`IssueCreditNote`) against real NATS and PostgreSQL: a
//! credit lowers what the customer owes and what dunning asks for, once per
//! claim; a credit beyond what is still owed becomes the refund due that
//! `RecordRefund` pays out; a credit that settles the last unpaid amount
//! pays the order in full, announced once; commands finance cannot honour
//! are dead-lettered naming the reason.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use gendan_finance::{Application, Clock, ManualClock, Options};
use gendan_messaging::{Cause, Outgoing, streams, subjects};
use gendan_proto::v1::finance_service_client::FinanceServiceClient;
use gendan_proto::v1::{
    BillingMilestone, CancelReceivable, CreditNoteIssued, DepositReceived, GetCostLedgerRequest,
    GetReceivableRequest, InvoiceBalance, InvoiceIssued, IssueCreditNote, OpenReceivable,
    OrderPaidInFull, PaymentReceived, PaymentReminder, Receivable, ReceivableCancelled,
    ReceivableOpened, RecordPaymentRequest, RecordRefundRequest, RecordRefundResponse, RefundPaid,
};
use gendan_proto::{TypeName, date_from_str, date_to_string};
use gendan_tests::{Running, Seen, SubjectReader, eventually};
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);
/// How long a test watches for an event that must not come (many relay and
/// dunning passes).
const QUIET: Duration = Duration::from_millis(1_000);

/// The finance service on its own NATS and database, on a manual clock.
struct Finance {
    svc: Running,
    client: FinanceServiceClient<Channel>,
    clock: ManualClock,
}

impl Finance {
    async fn start() -> anyhow::Result<Self> {
        let clock = ManualClock::new(Utc::now());
        let options = Options {
            clock: Arc::new(clock.clone()),
            dunning_poll: Duration::from_millis(50),
        };
        let svc = Running::start("finance", |settings| {
            Application::build_with(settings, options)
        })
        .await?;
        let client = FinanceServiceClient::connect(svc.endpoint()).await?;
        Ok(Finance { svc, client, clock })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.svc.stop().await
    }

    /// Moves the service's clock forward to `day` (never back).
    fn set_today(&self, day: NaiveDate) {
        let days = (day - self.clock.today()).num_days();
        assert!(days >= 0, "the clock only moves forward");
        self.clock.advance(chrono::Duration::days(days));
    }

    /// Finance's events from the start of the stream.
    async fn events(&self) -> anyhow::Result<SubjectReader> {
        SubjectReader::open(&self.svc.nats.url, streams::EVENTS, "gendan.evt.finance.>").await
    }

    async fn dead_letters(&self) -> anyhow::Result<SubjectReader> {
        SubjectReader::open(
            &self.svc.nats.url,
            streams::DEAD_LETTERS,
            &subjects::dead_letter(gendan_finance::COMMANDS_CONSUMER),
        )
        .await
    }

    /// Sends a saga command; the message is returned to wait for it.
    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<Outgoing> {
        let message =
            Outgoing::command("test", "finance", order_id, payload, &Cause::root(order_id));
        self.svc.bus.publish(&message).await?;
        Ok(message)
    }

    /// Waits until the command consumer has handled `message` (its inbox
    /// row committed with the effect).
    async fn handled(&self, message: &Outgoing) -> anyhow::Result<()> {
        let event_id = message.event_id().to_owned();
        eventually(WAIT, "the command to be handled", || {
            let pool = self.svc.pool.clone();
            let event_id = event_id.clone();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM inbox WHERE consumer = $1 AND message_id = $2",
                )
                .bind(gendan_finance::COMMANDS_CONSUMER)
                .bind(event_id)
                .fetch_one(&pool)
                .await
                .ok()
                .filter(|count| *count > 0)
            }
        })
        .await?;
        Ok(())
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.svc.pool)
            .await
            .unwrap_or(-1)
    }

    async fn pay(&self, order_id: &str, amount_minor: i64, key: &str) -> anyhow::Result<()> {
        self.client
            .clone()
            .record_payment(RecordPaymentRequest {
                order_id: order_id.into(),
                amount_minor,
                currency: "USD".into(),
                received_on: date_to_string(today()),
                reference: format!("SWIFT {key}"),
                idempotency_key: key.into(),
            })
            .await?;
        Ok(())
    }

    async fn refund(
        &self,
        order_id: &str,
        amount_minor: i64,
        key: &str,
    ) -> Result<RecordRefundResponse, tonic::Status> {
        self.client
            .clone()
            .record_refund(RecordRefundRequest {
                order_id: order_id.into(),
                amount_minor,
                currency: "USD".into(),
                paid_on: date_to_string(self.clock.today()),
                reference: format!("refund {key}"),
                idempotency_key: key.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn receivable(&self, order_id: &str) -> anyhow::Result<Receivable> {
        Ok(self
            .client
            .clone()
            .get_receivable(GetReceivableRequest {
                order_id: order_id.into(),
            })
            .await?
            .into_inner())
    }

    /// Opens a 30% deposit / 70% at shipment receivable of 1,000,000 and
    /// pays the deposit.
    async fn open_and_pay_deposit(
        &self,
        order_id: &str,
        events: &mut SubjectReader,
    ) -> anyhow::Result<()> {
        let open = OpenReceivable {
            order_id: order_id.into(),
            customer: "Nordwind GmbH".into(),
            total_minor: 1_000_000,
            currency: "USD".into(),
            payment_terms: "30% deposit, 70% against B/L copy".into(),
            cost_budget_minor: 0,
            budget_lines: vec![],
            revision: 0,
            dunning_reminder_days: vec![],
        };
        self.command(order_id, &open).await?;
        let _: ReceivableOpened = next(events).await?;
        let deposit: InvoiceIssued = next(events).await?;
        assert_eq!(deposit.amount_minor, 300_000);
        self.pay(order_id, 300_000, &format!("bank:{order_id}:deposit"))
            .await?;
        let _: DepositReceived = next(events).await?;
        Ok(())
    }

    /// Invoices the 70% balance at shipment, due today.
    async fn ship(
        &self,
        order_id: &str,
        events: &mut SubjectReader,
    ) -> anyhow::Result<InvoiceIssued> {
        let shipped = InvoiceBalance {
            order_id: order_id.into(),
            milestone: String::new(),
            milestone_date: date_to_string(today()),
            billing_milestone: BillingMilestone::Shipment.into(),
        };
        self.command(order_id, &shipped).await?;
        let balance: InvoiceIssued = next(events).await?;
        assert_eq!(balance.amount_minor, 700_000);
        Ok(balance)
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn credit(order_id: &str, claim_id: &str, amount_minor: i64) -> IssueCreditNote {
    IssueCreditNote {
        order_id: order_id.into(),
        claim_id: claim_id.into(),
        amount_minor,
        currency: "USD".into(),
        reason: format!("claim {claim_id} resolved by a credit note"),
    }
}

async fn next<M: prost::Message + TypeName + Default>(
    reader: &mut SubjectReader,
) -> anyhow::Result<M> {
    reader.next_of_type(M::TYPE_NAME, WAIT).await?.decode()
}

/// The next `CreditNoteIssued` with its event id.
async fn issued(reader: &mut SubjectReader) -> anyhow::Result<(String, CreditNoteIssued)> {
    let seen = reader
        .next_of_type(CreditNoteIssued::TYPE_NAME, WAIT)
        .await?;
    Ok((seen.envelope()?.event_id, seen.decode()?))
}

/// Everything `reader` gets within [`QUIET`].
async fn within_quiet(reader: &mut SubjectReader) -> anyhow::Result<Vec<Seen>> {
    let deadline = tokio::time::Instant::now() + QUIET;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match reader.next(left).await? {
            Some(message) => seen.push(message),
            None => return Ok(seen),
        }
    }
}

fn of_type<M: TypeName>(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter()
        .filter(|message| message.type_name() == M::TYPE_NAME)
        .collect()
}

async fn dead_letter_reason(reader: &mut SubjectReader) -> anyhow::Result<String> {
    Ok(reader
        .next(WAIT)
        .await?
        .and_then(|seen| seen.header("Gendan-Dlq-Reason"))
        .unwrap_or_default())
}

#[tokio::test]
async fn a_credit_note_lowers_what_is_owed_once_per_claim() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let order = "o-credit";
    finance.open_and_pay_deposit(order, &mut events).await?;
    let balance = finance.ship(order, &mut events).await?;

    let claim = credit(order, "CLM-1", 100_000);
    finance.command(order, &claim).await?;
    let (event_id, first) = issued(&mut events).await?;
    assert_eq!(
        first.credit_note_id,
        format!("CN-{}-000001", today().format("%Y"))
    );
    assert_eq!(
        (
            first.order_id.as_str(),
            first.claim_id.as_str(),
            first.amount_minor,
            first.currency.as_str()
        ),
        (order, "CLM-1", 100_000, "USD")
    );
    assert_eq!(
        (first.outstanding_minor, first.refund_due_minor),
        (600_000, 0)
    );

    // The saga re-sends: nothing written, and an answer that reaches the
    // stream at all is the same fact (same event id, same content).
    let again = finance.command(order, &claim).await?;
    finance.handled(&again).await?;
    assert_eq!(finance.count("SELECT count(*) FROM credit_notes").await, 1);
    assert_eq!(
        finance
            .count("SELECT count(*) FROM credit_note_allocations")
            .await,
        1
    );
    for repeat in of_type::<CreditNoteIssued>(&within_quiet(&mut events).await?) {
        assert_eq!(repeat.envelope()?.event_id, event_id);
        assert_eq!(repeat.decode::<CreditNoteIssued>()?, first);
    }

    // The invoice is not edited; the credit settles part of it.
    let receivable = finance.receivable(order).await?;
    assert_eq!(
        (
            receivable.total_minor,
            receivable.paid_minor,
            receivable.outstanding_minor,
            receivable.refund_due_minor
        ),
        (1_000_000, 300_000, 600_000, 0)
    );
    assert_eq!(receivable.status, "open");
    let invoice = receivable
        .invoices
        .iter()
        .find(|i| i.invoice_id == balance.invoice_id)
        .expect("the balance invoice");
    assert_eq!(
        (
            invoice.amount_minor,
            invoice.paid_minor,
            invoice.status.as_str()
        ),
        (700_000, 0, "partially_paid")
    );

    // Dunning asks for what the credit left, not for the invoice.
    let due = date_from_str(&balance.due_date).expect("a due date");
    finance.set_today(due + Days::new(1));
    let reminder: PaymentReminder = next(&mut events).await?;
    assert_eq!(reminder.invoice_id, balance.invoice_id);
    assert_eq!(reminder.outstanding_minor, 600_000);

    // What the claim cost the order: the credit is booked once on its
    // cost ledger, in the order currency.
    let client = finance.client.clone();
    let ledger = eventually(WAIT, "the credit note on the cost ledger", || {
        let mut client = client.clone();
        async move {
            client
                .get_cost_ledger(GetCostLedgerRequest {
                    order_id: order.into(),
                })
                .await
                .ok()
                .map(|r| r.into_inner())
                .filter(|ledger| !ledger.entries.is_empty())
        }
    })
    .await?;
    assert_eq!(ledger.entries.len(), 1, "{:?}", ledger.entries);
    assert_eq!(
        (
            ledger.entries[0].category.as_str(),
            ledger.entries[0].order_amount_minor
        ),
        ("credit_note", 100_000)
    );
    assert_eq!(ledger.actual_minor, 100_000);
    finance.stop().await
}

#[tokio::test]
async fn a_credit_beyond_what_is_owed_becomes_a_refund_due() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let mut dead = finance.dead_letters().await?;
    let order = "o-overcredit";
    finance.open_and_pay_deposit(order, &mut events).await?;

    // 300,000 paid, 200,000 now owed: 100,000 goes back, nothing is owed.
    finance
        .command(order, &credit(order, "CLM-9", 800_000))
        .await?;
    let (_, note) = issued(&mut events).await?;
    assert_eq!(
        (note.outstanding_minor, note.refund_due_minor),
        (0, 100_000)
    );
    let paid: OrderPaidInFull = next(&mut events).await?;
    assert_eq!(paid.order_id, order);
    let receivable = finance.receivable(order).await?;
    assert_eq!(
        (receivable.outstanding_minor, receivable.refund_due_minor),
        (0, 100_000)
    );
    assert_eq!(receivable.status, "paid");

    // The same figure RecordRefund pays out.
    let status = finance
        .refund(order, 100_001, "refund:too-much")
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("amount_minor"),
        "{}",
        status.message()
    );
    let refunded = finance.refund(order, 100_000, "refund:claim").await?;
    assert_eq!(refunded.refund_due_minor, 0);
    let refund_paid: RefundPaid = next(&mut events).await?;
    assert_eq!(
        (refund_paid.amount_minor, refund_paid.refund_due_minor),
        (100_000, 0)
    );

    // Only 200,000 of the total is left to credit.
    finance
        .command(order, &credit(order, "CLM-10", 300_000))
        .await?;
    let reason = dead_letter_reason(&mut dead).await?;
    assert!(reason.contains("amount_minor"), "{reason}");
    assert!(reason.contains("200000"), "{reason}");

    // The balance invoiced later is settled by the credit waiting for it.
    let balance = finance.ship(order, &mut events).await?;
    let receivable = finance.receivable(order).await?;
    let invoice = receivable
        .invoices
        .iter()
        .find(|i| i.invoice_id == balance.invoice_id)
        .expect("the balance invoice");
    assert_eq!((invoice.paid_minor, invoice.status.as_str()), (0, "paid"));
    assert_eq!(
        (receivable.outstanding_minor, receivable.refund_due_minor),
        (0, 0)
    );
    assert_eq!(finance.count("SELECT count(*) FROM credit_notes").await, 1);
    finance.stop().await
}

#[tokio::test]
async fn credit_notes_finance_cannot_honour_are_dead_lettered() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let mut dead = finance.dead_letters().await?;

    finance
        .command("o-unknown", &credit("o-unknown", "CLM-1", 1_000))
        .await?;
    let reason = dead_letter_reason(&mut dead).await?;
    assert!(reason.contains("no receivable"), "{reason}");
    assert!(reason.contains("o-unknown"), "{reason}");

    let order = "o-bad-credit";
    finance.open_and_pay_deposit(order, &mut events).await?;
    let mut euros = credit(order, "CLM-1", 1_000);
    euros.currency = "EUR".into();
    finance.command(order, &euros).await?;
    let reason = dead_letter_reason(&mut dead).await?;
    assert!(reason.contains("currency"), "{reason}");
    finance
        .command(order, &credit(order, &"c".repeat(129), 1_000))
        .await?;
    let reason = dead_letter_reason(&mut dead).await?;
    assert!(reason.contains("claim_id"), "{reason}");
    finance.command(order, &credit(order, "CLM-2", 0)).await?;
    let reason = dead_letter_reason(&mut dead).await?;
    assert!(reason.contains("amount_minor"), "{reason}");

    let cancel = CancelReceivable {
        order_id: order.into(),
        reason: "customer cancelled".into(),
    };
    finance.command(order, &cancel).await?;
    let cancelled: ReceivableCancelled = next(&mut events).await?;
    assert_eq!(cancelled.refund_minor, 300_000);
    finance
        .command(order, &credit(order, "CLM-3", 1_000))
        .await?;
    let reason = dead_letter_reason(&mut dead).await?;
    assert!(reason.contains("cancelled"), "{reason}");

    assert_eq!(finance.count("SELECT count(*) FROM credit_notes").await, 0);
    finance.stop().await
}

#[tokio::test]
async fn a_credit_settling_the_last_unpaid_amount_pays_the_order_in_full_once() -> anyhow::Result<()>
{
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let order = "o-settle";
    finance.open_and_pay_deposit(order, &mut events).await?;
    let balance = finance.ship(order, &mut events).await?;
    finance.pay(order, 600_000, "bank:o-settle:balance").await?;
    let received: PaymentReceived = next(&mut events).await?;
    assert_eq!(received.outstanding_minor, 100_000);

    let claim = credit(order, "CLM-A", 100_000);
    finance.command(order, &claim).await?;
    let (_, note) = issued(&mut events).await?;
    assert_eq!((note.outstanding_minor, note.refund_due_minor), (0, 0));
    let paid: OrderPaidInFull = next(&mut events).await?;
    assert_eq!(paid.paid_on, date_to_string(finance.clock.today()));
    let receivable = finance.receivable(order).await?;
    assert_eq!(receivable.status, "paid");
    assert_eq!(receivable.paid_in_full_on, paid.paid_on);
    assert!(
        receivable.invoices.iter().all(|i| i.status == "paid"),
        "{:?}",
        receivable.invoices
    );

    // A repeat and a later credit on the paid order announce nothing paid
    // again; the later one is owed back.
    let again = finance.command(order, &claim).await?;
    finance.handled(&again).await?;
    finance
        .command(order, &credit(order, "CLM-B", 50_000))
        .await?;
    let (_, later) = issued(&mut events).await?;
    assert_eq!(
        (later.outstanding_minor, later.refund_due_minor),
        (0, 50_000)
    );

    // Nothing is chased once the balance is due, and the order was paid in
    // full exactly once (a fresh reader sees the stream from its start).
    let due = date_from_str(&balance.due_date).expect("a due date");
    finance.set_today(due + Days::new(2));
    let everything = within_quiet(&mut finance.events().await?).await?;
    assert_eq!(of_type::<OrderPaidInFull>(&everything).len(), 1);
    assert!(of_type::<PaymentReminder>(&everything).is_empty());
    assert_eq!(of_type::<CreditNoteIssued>(&everything).len(), 2);
    finance.stop().await
}
