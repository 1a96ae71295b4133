//! An amended order's receivable in the finance service, against real NATS
//! and PostgreSQL. The test plays the saga (`OpenReceivable` by revision,
//! `InvoiceBalance`, `CancelReceivable`) and the bank (payments over gRPC):
//! a raised total bills the difference on the issued deposit with an
//! additional deposit invoice and a lowered one takes it off with a credit
//! note, never editing an invoice; the balance installment is repriced until
//! it is invoiced; a re-sent or older revision answers the current
//! revision's facts under the same event ids and issues nothing; dunning
//! chases the additional invoice; a deposit paid beyond the new deposit
//! lowers what is still owed, an order paid in advance is owed a refund
//! when lowered and is open again when raised; an amendment before the
//! receivable opens it, one after cancellation fails the step.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use gendan_finance::{Application, Clock, ManualClock, Options};
use gendan_messaging::{fact_id, streams};
use gendan_proto::v1::finance_service_client::FinanceServiceClient;
use gendan_proto::v1::{
    BillingMilestone, CancelReceivable, CreditNoteIssued, DepositReceived, GetReceivableRequest,
    InvoiceBalance, InvoiceIssued, ListOverdueRequest, OpenReceivable, OrderPaidInFull,
    PaymentReminder, Receivable, ReceivableCancelled, ReceivableOpened, ReceivableOpeningFailed,
    RecordPaymentRequest,
};
use gendan_proto::{TypeName, date_from_str, date_to_string};
use gendan_tests::{Running, Seen, SubjectReader};
use tonic::transport::Channel;

/// Generous: the machine may be busy building or testing something else.
const WAIT: Duration = Duration::from_secs(30);
/// How long a test watches for a message that must not come.
const QUIET: Duration = Duration::from_millis(1_000);
const TERMS: &str = "30% deposit, 70% against B/L copy";

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

    /// Sends a saga command.
    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        self.svc.command(order_id, payload).await.map(drop)
    }

    /// Sends a command as the saga re-sends one and waits until finance has
    /// handled it: its answer is facts the bus already holds, under the
    /// same event ids, so nothing new arrives to wait for.
    async fn repeat<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        self.svc.repeat(order_id, payload).await
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
                received_on: date_to_string(Utc::now().date_naive()),
                reference: format!("SWIFT {key}"),
                idempotency_key: key.into(),
            })
            .await?;
        Ok(())
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

    /// What dunning will ask the customer for: the open amounts of every
    /// unpaid invoice, summed, as overdue two months from today.
    async fn open_total(&self) -> anyhow::Result<i64> {
        let as_of = self.clock.today() + Days::new(60);
        let overdue = self
            .client
            .clone()
            .list_overdue(ListOverdueRequest {
                as_of: date_to_string(as_of),
                limit: 0,
            })
            .await?
            .into_inner();
        Ok(overdue.invoices.iter().map(|i| i.open_minor).sum())
    }

    /// The goods ship today: the saga asks for the balance.
    async fn ship(&self, order_id: &str) -> anyhow::Result<()> {
        let shipped = InvoiceBalance {
            order_id: order_id.into(),
            milestone: String::new(),
            milestone_date: date_to_string(self.clock.today()),
            billing_milestone: BillingMilestone::Shipment.into(),
        };
        self.command(order_id, &shipped).await
    }
}

/// The saga's `OpenReceivable` of `revision`, with its budget (75% of the
/// order value).
fn open(order_id: &str, revision: u32, total_minor: i64, terms: &str) -> OpenReceivable {
    OpenReceivable {
        order_id: order_id.into(),
        customer: "Nordwind GmbH".into(),
        total_minor,
        currency: "USD".into(),
        payment_terms: terms.into(),
        cost_budget_minor: total_minor * 3 / 4,
        budget_lines: vec![],
        revision,
        dunning_reminder_days: vec![],
    }
}

/// The event id of revision `revision`'s `ReceivableOpened`.
fn opened_id(order_id: &str, revision: u32) -> String {
    let key = format!("receivable:{order_id}:{revision}");
    fact_id("finance", ReceivableOpened::TYPE_NAME, order_id, &key).to_string()
}

fn amounts(opened: &ReceivableOpened) -> Vec<i64> {
    opened.installments.iter().map(|i| i.amount_minor).collect()
}

async fn next<M: prost::Message + TypeName + Default>(
    reader: &mut SubjectReader,
) -> anyhow::Result<M> {
    reader.next_of_type(M::TYPE_NAME, WAIT).await?.decode()
}

/// The next `M` with its event id.
async fn next_fact<M: prost::Message + TypeName + Default>(
    reader: &mut SubjectReader,
) -> anyhow::Result<(String, M)> {
    let seen = reader.next_of_type(M::TYPE_NAME, WAIT).await?;
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

#[tokio::test]
async fn an_amended_total_is_settled_on_the_issued_deposit_and_reprices_the_balance()
-> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let order = "o-amended";

    finance
        .command(order, &open(order, 1, 100_000, TERMS))
        .await?;
    let (id, opened) = next_fact::<ReceivableOpened>(&mut events).await?;
    assert_eq!(id, opened_id(order, 1));
    assert_eq!((opened.revision, opened.total_minor), (1, 100_000));
    assert!(opened.adjustments.is_empty());
    let deposit: InvoiceIssued = next(&mut events).await?;
    assert_eq!(
        (deposit.kind.as_str(), deposit.amount_minor),
        ("deposit", 30_000)
    );

    // 1,200.00: the deposit is 360.00 now. The invoice of 300.00 stays as
    // issued; the 60.00 more is billed on an invoice of its own.
    let raised = open(order, 2, 120_000, TERMS);
    finance.command(order, &raised).await?;
    let (id, opened) = next_fact::<ReceivableOpened>(&mut events).await?;
    assert_eq!(id, opened_id(order, 2));
    assert_eq!(
        (
            opened.revision,
            opened.total_minor,
            opened.cost_budget_minor
        ),
        (2, 120_000, 90_000)
    );
    assert_eq!(amounts(&opened), [36_000, 84_000]);
    assert!(opened.deposit_required);
    let (additional_id, additional) = next_fact::<InvoiceIssued>(&mut events).await?;
    assert_eq!(
        (
            additional.kind.as_str(),
            additional.amount_minor,
            additional.currency.as_str()
        ),
        ("deposit", 6_000, "USD")
    );
    // Numbered in the one invoice series, due by the deposit's terms (7
    // days) from the day of the amendment.
    let year = finance.clock.today().format("%Y").to_string();
    assert_eq!(additional.invoice_id, format!("INV-{year}-000002"));
    assert_eq!(
        additional.due_date,
        date_to_string(finance.clock.today() + Days::new(7))
    );
    assert_eq!(
        opened.adjustments,
        [format!(
            "additional deposit invoice {} for 60.00 USD",
            additional.invoice_id
        )]
    );
    let receivable = finance.receivable(order).await?;
    assert_eq!(
        (
            receivable.total_minor,
            receivable.invoiced_minor,
            receivable.outstanding_minor
        ),
        (120_000, 36_000, 120_000)
    );
    assert_eq!(receivable.installments[1].amount_minor, 84_000, "840.00");
    let first = receivable
        .invoices
        .iter()
        .find(|i| i.invoice_id == deposit.invoice_id)
        .expect("the deposit invoice");
    assert_eq!(
        first.amount_minor, 30_000,
        "an issued invoice is never edited"
    );

    // The saga re-sends revision 2: the same facts, nothing issued again.
    finance.repeat(order, &raised).await?;
    assert_eq!(finance.count("SELECT count(*) FROM invoices").await, 2);
    for seen in within_quiet(&mut events).await? {
        let id = seen.envelope()?.event_id;
        assert!(
            id == opened_id(order, 2) || id == additional_id,
            "a new {} after a repeat",
            seen.type_name()
        );
    }

    // 900.00: the deposit is 270.00, 90.00 less than its two invoices
    // bill. One credit note, against both, takes it off.
    finance
        .command(order, &open(order, 3, 90_000, TERMS))
        .await?;
    let (id, opened) = next_fact::<ReceivableOpened>(&mut events).await?;
    assert_eq!(id, opened_id(order, 3));
    assert_eq!((opened.revision, opened.total_minor), (3, 90_000));
    assert_eq!(amounts(&opened), [27_000, 63_000]);
    let note: CreditNoteIssued = next(&mut events).await?;
    assert_eq!(
        (note.claim_id.as_str(), note.amount_minor),
        ("amendment:3", 9_000)
    );
    // Nothing was paid: the customer owes the new total, not less.
    assert_eq!((note.outstanding_minor, note.refund_due_minor), (90_000, 0));
    assert_eq!(
        opened.adjustments,
        [format!(
            "credit note {} for 90.00 USD against {}, {}",
            note.credit_note_id, deposit.invoice_id, additional.invoice_id
        )]
    );
    let receivable = finance.receivable(order).await?;
    assert_eq!(
        (
            receivable.total_minor,
            receivable.outstanding_minor,
            receivable.refund_due_minor
        ),
        (90_000, 90_000, 0)
    );
    assert_eq!(receivable.installments[1].amount_minor, 63_000, "630.00");
    // Dunning will ask for the new deposit, not for what the invoices say.
    assert_eq!(finance.open_total().await?, 27_000);

    // Revision 2 arriving late changes nothing: the current one answers.
    finance.repeat(order, &raised).await?;
    assert_eq!(finance.count("SELECT count(*) FROM invoices").await, 2);
    assert_eq!(finance.count("SELECT count(*) FROM credit_notes").await, 1);
    assert_eq!(finance.receivable(order).await?.total_minor, 90_000);

    // Shipment bills the balance at its amount now.
    finance.ship(order).await?;
    let balance: InvoiceIssued = next(&mut events).await?;
    assert_eq!(
        (balance.kind.as_str(), balance.amount_minor),
        ("balance", 63_000)
    );
    assert_eq!(finance.open_total().await?, 90_000);
    finance.stop().await
}

#[tokio::test]
async fn a_paid_deposit_and_dunning_follow_the_amendments() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let order = "o-paid-deposit";
    finance
        .command(order, &open(order, 1, 100_000, TERMS))
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let _: InvoiceIssued = next(&mut events).await?;
    finance.pay(order, 30_000, "bank:deposit").await?;
    let _: DepositReceived = next(&mut events).await?;

    // Raised: the additional invoice is chased like any other; the paid
    // deposit is not.
    finance
        .command(order, &open(order, 2, 120_000, TERMS))
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let additional: InvoiceIssued = next(&mut events).await?;
    assert_eq!(additional.amount_minor, 6_000);
    let due = date_from_str(&additional.due_date).expect("a due date");
    finance.set_today(due + Days::new(1));
    let reminder: PaymentReminder = next(&mut events).await?;
    assert_eq!(
        (reminder.invoice_id.as_str(), reminder.outstanding_minor),
        (additional.invoice_id.as_str(), 6_000)
    );

    // Lowered to 500.00: the deposit is 150.00 of the 360.00 invoiced and
    // the 300.00 paid. The credit of 210.00 settles the unpaid additional
    // invoice and waits for the balance with the rest: the customer owes
    // 200.00 (500.00 less 300.00), nothing is refunded.
    finance
        .command(order, &open(order, 3, 50_000, TERMS))
        .await?;
    let opened: ReceivableOpened = next(&mut events).await?;
    assert_eq!(amounts(&opened), [15_000, 35_000]);
    let note: CreditNoteIssued = next(&mut events).await?;
    assert_eq!(note.amount_minor, 21_000);
    assert_eq!((note.outstanding_minor, note.refund_due_minor), (20_000, 0));
    let receivable = finance.receivable(order).await?;
    let settled = receivable
        .invoices
        .iter()
        .find(|i| i.invoice_id == additional.invoice_id)
        .expect("the additional invoice");
    assert_eq!(
        (settled.status.as_str(), settled.paid_minor),
        ("paid", 0),
        "settled by the credit, not by money"
    );

    finance.ship(order).await?;
    let balance: InvoiceIssued = next(&mut events).await?;
    assert_eq!(balance.amount_minor, 35_000);
    let receivable = finance.receivable(order).await?;
    assert_eq!(
        (receivable.outstanding_minor, receivable.refund_due_minor),
        (20_000, 0)
    );
    assert_eq!(finance.open_total().await?, 20_000);
    finance.stop().await
}

#[tokio::test]
async fn an_order_paid_in_advance_is_owed_a_refund_when_lowered_and_open_again_when_raised()
-> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let order = "o-advance";
    let advance = "100% T/T in advance";
    finance
        .command(order, &open(order, 1, 50_000, advance))
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let invoice: InvoiceIssued = next(&mut events).await?;
    finance.pay(order, 50_000, "bank:advance").await?;
    let _: OrderPaidInFull = next(&mut events).await?;

    // 400.00: 100.00 of what was paid goes back to the customer.
    finance
        .command(order, &open(order, 2, 40_000, advance))
        .await?;
    let opened: ReceivableOpened = next(&mut events).await?;
    let note: CreditNoteIssued = next(&mut events).await?;
    assert_eq!(
        (
            note.amount_minor,
            note.outstanding_minor,
            note.refund_due_minor
        ),
        (10_000, 0, 10_000)
    );
    assert_eq!(
        opened.adjustments,
        [format!(
            "credit note {} for 100.00 USD against {}",
            note.credit_note_id, invoice.invoice_id
        )]
    );
    let receivable = finance.receivable(order).await?;
    assert_eq!(
        (receivable.status.as_str(), receivable.refund_due_minor),
        ("paid", 10_000)
    );

    // 550.00: the invoice bills 500.00 less the 100.00 credited, so 150.00
    // more is invoiced; the credit settles 100.00 of it, 50.00 is owed and
    // the receivable is open again.
    finance
        .command(order, &open(order, 3, 55_000, advance))
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let additional: InvoiceIssued = next(&mut events).await?;
    assert_eq!(additional.amount_minor, 15_000);
    let receivable = finance.receivable(order).await?;
    assert_eq!(
        (
            receivable.status.as_str(),
            receivable.outstanding_minor,
            receivable.refund_due_minor
        ),
        ("open", 5_000, 0)
    );
    assert!(receivable.paid_in_full_on.is_empty());

    // Paid, the amended order is paid in full again.
    finance.pay(order, 5_000, "bank:advance:2").await?;
    let paid: OrderPaidInFull = next(&mut events).await?;
    assert_eq!(paid.order_id, order);
    assert_eq!(finance.receivable(order).await?.status, "paid");
    finance.stop().await
}

#[tokio::test]
async fn an_amendment_before_the_receivable_opens_it_and_one_after_cancellation_fails()
-> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let order = "o-early";

    // Amended before finance's step ever ran: revision 2 opens the
    // receivable at its total.
    finance
        .command(order, &open(order, 2, 120_000, TERMS))
        .await?;
    let (id, opened) = next_fact::<ReceivableOpened>(&mut events).await?;
    assert_eq!(id, opened_id(order, 2));
    assert_eq!((opened.revision, opened.total_minor), (2, 120_000));
    assert!(opened.adjustments.is_empty());
    let deposit: InvoiceIssued = next(&mut events).await?;
    assert_eq!(deposit.amount_minor, 36_000);

    // Revision 1 arriving late is answered with the current revision.
    finance
        .repeat(order, &open(order, 1, 100_000, TERMS))
        .await?;
    assert_eq!(finance.count("SELECT count(*) FROM invoices").await, 1);
    assert_eq!(finance.receivable(order).await?.total_minor, 120_000);

    let cancel = CancelReceivable {
        order_id: order.into(),
        reason: "customer cancelled".into(),
    };
    finance.command(order, &cancel).await?;
    let _: ReceivableCancelled = next(&mut events).await?;
    finance
        .command(order, &open(order, 3, 90_000, TERMS))
        .await?;
    let failed: ReceivableOpeningFailed = next(&mut events).await?;
    assert!(failed.reason.contains("cancelled"), "{}", failed.reason);
    assert_eq!(finance.count("SELECT count(*) FROM credit_notes").await, 0);
    assert_eq!(finance.count("SELECT count(*) FROM invoices").await, 1);
    finance.stop().await
}
