//! The finance service against real NATS and PostgreSQL: a receivable from
//! terms to paid in full (deposit invoice, idempotent payments, deposit
//! received, balance at shipment), terms it cannot read, cancellation with
//! refund and the refund paid out, the cost ledger fed by other services'
//! events with its overrun, gRPC validation naming the field, and payment
//! chasing on a manual clock: reminders on the dunning schedule, one
//! escalation, due dates extended, referral to collection; and
//! `RestateFact`: the deposit fact again, or where the deposit stands.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use gendan_finance::{Application, Clock, ManualClock, Options};
use gendan_messaging::{Bus, Cause, Outgoing, fact_id, streams, subjects};
use gendan_proto::v1::finance_service_client::FinanceServiceClient;
use gendan_proto::v1::{
    BillingMilestone, CancelReceivable, CostBudgetLine, CostOverrun, DepositReceived,
    DunningSchedule, ExchangeRateMissing, ExtendPaymentDue, GetCostLedgerRequest,
    GetDunningScheduleRequest, GetReceivableRequest, InvoiceBalance, InvoiceIssued, InvoiceKind,
    LabourRate, ListOverdueRequest, OpenReceivable, OrderPaidInFull, PaymentDueExtended,
    PaymentEscalated, PaymentReceived, PaymentReminder, PaymentTrigger, PurchaseOrderPlaced,
    ReceivableCancelled, ReceivableOpened, ReceivableOpeningFailed, RecordPaymentRequest,
    RecordRefundRequest, RecordRefundResponse, ReferToCollection, ReferredToCollection, RefundPaid,
    RestateFact, ShipmentBooked, StatusReported, WorkOrderCompleted,
};
use gendan_proto::{TypeName, date_from_str, date_to_string};
use gendan_tests::{SubjectReader, TestDb, TestNats, eventually, service_settings};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);
/// How long a test watches for an event that must not come: many dunning
/// passes at the test's poll interval.
const QUIET: Duration = Duration::from_millis(600);

struct Finance {
    nats: TestNats,
    _db: TestDb,
    bus: Bus,
    pool: PgPool,
    client: FinanceServiceClient<Channel>,
    /// The service's clock: dunning runs on its days.
    clock: ManualClock,
    cancel: CancellationToken,
    task: JoinHandle<gendan_finance::Result<()>>,
}

impl Finance {
    async fn start() -> anyhow::Result<Self> {
        gendan_telemetry::init_for_tests();
        let nats = TestNats::start().await?;
        let db = TestDb::create().await?;
        let clock = ManualClock::new(Utc::now());
        let options = Options {
            clock: Arc::new(clock.clone()),
            dunning_poll: Duration::from_millis(50),
        };
        let app = Application::build_with(service_settings(&db, &nats, "finance"), options).await?;
        let port = app.port();
        let pool = app.pool().clone();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        let client = FinanceServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
        let bus = Bus::connect(&nats.url, "test").await?;
        Ok(Finance {
            nats,
            _db: db,
            bus,
            pool,
            client,
            clock,
            cancel,
            task,
        })
    }

    /// Moves the service's clock forward to `day` (never back).
    fn set_today(&self, day: NaiveDate) {
        let days = (day - self.clock.today()).num_days();
        assert!(days >= 0, "the clock only moves forward");
        self.clock.advance(chrono::Duration::days(days));
    }

    async fn refund(
        &self,
        order_id: &str,
        amount_minor: i64,
        key: &str,
    ) -> Result<RecordRefundResponse, tonic::Status> {
        self.client
            .clone()
            .record_refund(refund(order_id, amount_minor, key, self.clock.today()))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn dead_letter(&self) -> anyhow::Result<SubjectReader> {
        SubjectReader::open(
            &self.nats.url,
            streams::DEAD_LETTERS,
            &subjects::dead_letter(gendan_finance::COMMANDS_CONSUMER),
        )
        .await
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.task.await??;
        Ok(())
    }

    async fn events(&self) -> anyhow::Result<SubjectReader> {
        SubjectReader::open(&self.nats.url, streams::EVENTS, "gendan.evt.finance.>").await
    }

    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let message =
            Outgoing::command("test", "finance", order_id, payload, &Cause::root(order_id));
        self.bus.publish(&message).await?;
        Ok(())
    }

    /// Sends a command again on purpose and waits until finance has handled
    /// it: its answer is the same fact under the same event id, so nothing
    /// new reaches the bus.
    async fn repeat<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        gendan_tests::repeat_command(&self.bus, &self.pool, "finance", order_id, payload).await
    }

    /// Publishes another service's event, as its outbox relay would.
    async fn event<M: prost::Message + TypeName>(
        &self,
        service: &str,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<Outgoing> {
        let message = Outgoing::event(service, order_id, payload, &Cause::root(order_id));
        self.bus.publish(&message).await?;
        Ok(message)
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or(-1)
    }

    async fn pay(
        &self,
        order_id: &str,
        amount_minor: i64,
        key: &str,
    ) -> Result<gendan_proto::v1::RecordPaymentResponse, tonic::Status> {
        self.client
            .clone()
            .record_payment(payment(order_id, amount_minor, key))
            .await
            .map(tonic::Response::into_inner)
    }
}

fn payment(order_id: &str, amount_minor: i64, key: &str) -> RecordPaymentRequest {
    RecordPaymentRequest {
        order_id: order_id.into(),
        amount_minor,
        currency: "USD".into(),
        received_on: date_to_string(today()),
        reference: format!("SWIFT {key}"),
        idempotency_key: key.into(),
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn refund(order_id: &str, amount_minor: i64, key: &str, paid_on: NaiveDate) -> RecordRefundRequest {
    RecordRefundRequest {
        order_id: order_id.into(),
        amount_minor,
        currency: "USD".into(),
        paid_on: date_to_string(paid_on),
        reference: format!("refund {key}"),
        idempotency_key: key.into(),
    }
}

fn open(order_id: &str, total_minor: i64, terms: &str) -> OpenReceivable {
    OpenReceivable {
        revision: 0,
        order_id: order_id.into(),
        customer: "Nordwind GmbH".into(),
        total_minor,
        currency: "USD".into(),
        payment_terms: terms.into(),
        cost_budget_minor: 0,
        budget_lines: vec![],
        dunning_reminder_days: vec![],
    }
}

async fn next<M: prost::Message + TypeName + Default>(
    reader: &mut SubjectReader,
) -> anyhow::Result<M> {
    reader.next_of_type(M::TYPE_NAME, WAIT).await?.decode()
}

/// The next event of type `M` and its event id.
async fn next_with_id<M: prost::Message + TypeName + Default>(
    reader: &mut SubjectReader,
) -> anyhow::Result<(M, String)> {
    let seen = reader.next_of_type(M::TYPE_NAME, WAIT).await?;
    Ok((seen.decode()?, seen.envelope()?.event_id))
}

/// What an overdue `deposit_received` step sends.
fn restate_deposit(order_id: &str, awaited: &str) -> RestateFact {
    RestateFact {
        order_id: order_id.into(),
        step: "deposit_received".into(),
        awaited: awaited.into(),
        revision: 0,
    }
}

fn assert_field(status: &tonic::Status, code: tonic::Code, field: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(field), "{}", status.message());
}

#[tokio::test]
async fn receivable_from_deposit_to_paid_in_full() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let order = "o-paid";
    let command = open(order, 1_000_001, "30% T/T deposit, 70% against B/L copy");
    finance.command(order, &command).await?;

    let opened: ReceivableOpened = next(&mut events).await?;
    assert_eq!(opened.order_id, order);
    assert_eq!(opened.currency, "USD");
    assert!(opened.deposit_required);
    let schedule: Vec<_> = opened
        .installments
        .iter()
        .map(|i| {
            (
                i.kind.as_str(),
                i.amount_minor,
                i.trigger.as_str(),
                i.due_days,
            )
        })
        .collect();
    assert_eq!(
        schedule,
        [
            ("deposit", 300_000, "on_confirmation", 7),
            ("balance", 700_001, "against_bl_copy", 0)
        ]
    );
    // The same schedule in the shared vocabulary.
    let vocabulary: Vec<_> = opened
        .installments
        .iter()
        .map(|i| (i.invoice_kind(), i.payment_trigger()))
        .collect();
    assert_eq!(
        vocabulary,
        [
            (InvoiceKind::Deposit, PaymentTrigger::OnConfirmation),
            (InvoiceKind::Balance, PaymentTrigger::AgainstBlCopy)
        ]
    );
    let deposit: InvoiceIssued = next(&mut events).await?;
    let receivable = finance
        .client
        .clone()
        .get_receivable(GetReceivableRequest {
            order_id: order.into(),
        })
        .await?
        .into_inner();
    let opened_on = date_from_str(&receivable.opened_on).unwrap();
    assert_eq!(deposit.kind, "deposit");
    assert_eq!(deposit.invoice_kind(), InvoiceKind::Deposit);
    assert_eq!(deposit.amount_minor, 300_000);
    assert_eq!(deposit.currency, "USD");
    assert_eq!(
        deposit.due_date,
        date_to_string(opened_on + Days::new(7)),
        "a deposit is due 7 days after confirmation"
    );
    assert_eq!(
        deposit.invoice_id,
        format!("INV-{}-000001", &receivable.opened_on[..4])
    );

    // The saga re-sends: the same facts under the same event ids (the bus
    // drops them), nothing issued twice.
    finance.repeat(order, &command).await?;
    assert_eq!(finance.count("SELECT count(*) FROM invoices").await, 1);

    // Dunning: the deposit is overdue only after its due date.
    let overdue = |as_of: NaiveDate| {
        let mut client = finance.client.clone();
        async move {
            client
                .list_overdue(ListOverdueRequest {
                    as_of: date_to_string(as_of),
                    limit: 0,
                })
                .await
                .map(|r| r.into_inner().invoices)
        }
    };
    assert!(overdue(opened_on).await?.is_empty());
    let late = overdue(opened_on + Days::new(10)).await?;
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].days_overdue, 3);
    assert_eq!(late[0].open_minor, 300_000);
    assert_eq!(late[0].customer, "Nordwind GmbH");

    // A payment retried with the same key is recorded once.
    let first = finance.pay(order, 100_000, "bank:1").await?;
    assert!(first.created);
    assert_eq!(first.outstanding_minor, 900_001);
    let first_payment = first.payment.unwrap();
    assert_eq!(first_payment.allocations.len(), 1);
    assert_eq!(first_payment.allocations[0].invoice_id, deposit.invoice_id);
    let retry = finance.pay(order, 100_000, "bank:1").await?;
    assert!(!retry.created);
    assert_eq!(retry.payment.unwrap().payment_id, first_payment.payment_id);
    assert_eq!(finance.count("SELECT count(*) FROM payments").await, 1);
    let received: PaymentReceived = next(&mut events).await?;
    assert_eq!(
        (received.amount_minor, received.outstanding_minor),
        (100_000, 900_001)
    );
    // Part of the deposit settles no invoice yet.
    assert!(received.invoices_paid.is_empty(), "{received:?}");
    assert_eq!(received.received_on, date_to_string(today()));

    // The rest of the deposit: the deposit is in.
    finance.pay(order, 200_000, "bank:2").await?;
    let received: PaymentReceived = next(&mut events).await?;
    assert_eq!(received.outstanding_minor, 700_001);
    assert_eq!(received.invoices_paid, [deposit.invoice_id.as_str()]);
    let deposit_in: DepositReceived = next(&mut events).await?;
    assert_eq!(deposit_in.amount_minor, 300_000);
    assert_eq!(deposit_in.received_on, date_to_string(today()));
    assert!(overdue(opened_on + Days::new(10)).await?.is_empty());

    // Shipment: the balance against the B/L copy, named by the enum alone
    // (the net-terms test below names it by the old string).
    let shipped = InvoiceBalance {
        order_id: order.into(),
        milestone: String::new(),
        milestone_date: date_to_string(today()),
        billing_milestone: BillingMilestone::Shipment.into(),
    };
    finance.command(order, &shipped).await?;
    let balance: InvoiceIssued = next(&mut events).await?;
    assert_eq!(balance.kind, "balance");
    assert_eq!(balance.invoice_kind(), InvoiceKind::Balance);
    assert_eq!(balance.amount_minor, 700_001);
    assert_eq!(balance.due_date, date_to_string(today()));
    assert_eq!(
        balance.invoice_id,
        format!("INV-{}-000002", today().format("%Y"))
    );
    // Re-sent, it is answered with the same fact (the same event id: nothing
    // new reaches the bus) and issues nothing twice.
    finance.repeat(order, &shipped).await?;
    assert_eq!(finance.count("SELECT count(*) FROM invoices").await, 2);

    // More than is owed is refused and writes nothing.
    let status = finance.pay(order, 700_002, "bank:3").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("700001"), "{}", status.message());

    let last = finance.pay(order, 700_001, "bank:4").await?;
    assert_eq!(last.outstanding_minor, 0);
    let received: PaymentReceived = next(&mut events).await?;
    assert_eq!(received.outstanding_minor, 0);
    assert_eq!(received.invoices_paid, [balance.invoice_id.as_str()]);
    let paid: OrderPaidInFull = next(&mut events).await?;
    assert_eq!(paid.paid_on, date_to_string(today()));

    let receivable = finance
        .client
        .clone()
        .get_receivable(GetReceivableRequest {
            order_id: order.into(),
        })
        .await?
        .into_inner();
    assert_eq!(receivable.status, "paid");
    assert_eq!(
        (
            receivable.invoiced_minor,
            receivable.paid_minor,
            receivable.outstanding_minor
        ),
        (1_000_001, 1_000_001, 0)
    );
    assert!(receivable.invoices.iter().all(|i| i.status == "paid"));
    assert_eq!(receivable.payments.len(), 3);
    assert_eq!(receivable.deposit_received_on, date_to_string(today()));
    finance.stop().await
}

#[tokio::test]
async fn restate_fact_repeats_the_deposit_fact_or_reports_its_status() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let order = "o-restate";
    let asked = restate_deposit(order, DepositReceived::TYPE_NAME);
    finance
        .command(
            order,
            &open(order, 1_000_000, "30% deposit, 70% on delivery"),
        )
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let deposit: InvoiceIssued = next(&mut events).await?;

    // A third of the deposit is in: the status names the invoice.
    finance.pay(order, 100_000, "bank:part").await?;
    finance.repeat(order, &asked).await?;
    let reported: StatusReported = next(&mut events).await?;
    assert_eq!(
        (reported.order_id.as_str(), reported.step.as_str()),
        (order, "deposit_received")
    );
    assert_eq!(
        reported.status,
        format!(
            "deposit invoice {} of 3000.00 USD due {}, 1000.00 USD received",
            deposit.invoice_id, deposit.due_date
        )
    );

    // The rest: the deposit is in, announced as the receivable's one fact.
    finance.pay(order, 200_000, "bank:rest").await?;
    let (received, received_id) = next_with_id::<DepositReceived>(&mut events).await?;
    assert_eq!(received.amount_minor, 300_000);
    assert_eq!(
        received_id,
        fact_id(
            "finance",
            DepositReceived::TYPE_NAME,
            order,
            "deposit_received"
        )
        .to_string()
    );
    // Asked again, it is announced under that id again (the bus drops it):
    // the next status is another order's.
    finance.repeat(order, &asked).await?;
    let unopened = restate_deposit("o-unopened", DepositReceived::TYPE_NAME);
    finance.repeat("o-unopened", &unopened).await?;
    let reported: StatusReported = next(&mut events).await?;
    assert_eq!(reported.order_id, "o-unopened");
    assert!(
        reported.status.contains("no receivable"),
        "{}",
        reported.status
    );

    // The balance is asked for now and then: while it is open finance says
    // what is outstanding; once paid, the order's one paid-in-full fact.
    let asked_paid = RestateFact {
        order_id: order.into(),
        step: "paid_in_full".into(),
        awaited: OrderPaidInFull::TYPE_NAME.into(),
        revision: 0,
    };
    finance.repeat(order, &asked_paid).await?;
    let reported: StatusReported = next(&mut events).await?;
    assert_eq!(reported.step, "paid_in_full");
    assert!(
        reported.status.starts_with("7000.00 USD outstanding"),
        "{}",
        reported.status
    );
    let delivered = InvoiceBalance {
        order_id: order.into(),
        milestone: String::new(),
        milestone_date: date_to_string(today()),
        billing_milestone: BillingMilestone::Delivery.into(),
    };
    finance.command(order, &delivered).await?;
    let balance: InvoiceIssued = next(&mut events).await?;
    finance.repeat(order, &asked_paid).await?;
    let reported: StatusReported = next(&mut events).await?;
    assert_eq!(
        reported.status,
        format!(
            "7000.00 USD outstanding ({} due {})",
            balance.invoice_id, balance.due_date
        )
    );
    finance.pay(order, 700_000, "bank:balance").await?;
    let (_, paid_id) = next_with_id::<OrderPaidInFull>(&mut events).await?;
    assert_eq!(
        paid_id,
        fact_id(
            "finance",
            OrderPaidInFull::TYPE_NAME,
            order,
            "paid_in_full:1"
        )
        .to_string()
    );
    finance.repeat(order, &asked_paid).await?;
    let unopened_paid = RestateFact {
        order_id: "o-unopened".into(),
        ..asked_paid.clone()
    };
    finance.repeat("o-unopened", &unopened_paid).await?;
    let reported: StatusReported = next(&mut events).await?;
    assert_eq!(
        (reported.order_id.as_str(), reported.status.as_str()),
        ("o-unopened", "no receivable opened for the order yet")
    );

    // A fact finance does not announce is dead-lettered, the field named.
    let mut dead = finance.dead_letter().await?;
    let shipped = restate_deposit(order, "gendan.v1.Shipped");
    finance.command(order, &shipped).await?;
    let reason = dead
        .next(WAIT)
        .await?
        .and_then(|seen| seen.header("Gendan-Dlq-Reason"))
        .unwrap_or_default();
    assert!(reason.contains("invalid awaited"), "{reason}");
    finance.stop().await
}

#[tokio::test]
async fn terms_finance_cannot_read_fail_the_step() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    finance
        .command("o-lc", &open("o-lc", 500_000, "irrevocable L/C at sight"))
        .await?;
    let failed: ReceivableOpeningFailed = next(&mut events).await?;
    assert_eq!(failed.order_id, "o-lc");
    assert!(
        failed.reason.contains("\"irrevocable L/C at sight\""),
        "{}",
        failed.reason
    );
    let missing = finance
        .client
        .clone()
        .get_receivable(GetReceivableRequest {
            order_id: "o-lc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // Net terms: nothing to pay up front, invoiced at shipment.
    finance
        .command("o-net", &open("o-net", 90_000, "net 60 days"))
        .await?;
    let opened: ReceivableOpened = next(&mut events).await?;
    assert!(!opened.deposit_required);
    assert_eq!(opened.installments[0].trigger, "net_days");
    assert_eq!(
        opened.installments[0].payment_trigger(),
        PaymentTrigger::NetDays
    );
    finance
        .command(
            "o-net",
            &InvoiceBalance {
                order_id: "o-net".into(),
                milestone: "shipment".into(),
                milestone_date: "2026-03-02".into(),
                // Unspecified, as an older sender leaves it: the string is read.
                billing_milestone: BillingMilestone::Unspecified.into(),
            },
        )
        .await?;
    let invoice: InvoiceIssued = next(&mut events).await?;
    assert_eq!(
        (invoice.amount_minor, invoice.due_date.as_str()),
        (90_000, "2026-05-01")
    );
    finance.stop().await
}

#[tokio::test]
async fn payments_are_validated_field_by_field() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let mut client = finance.client.clone();

    let status = finance.pay("o-none", 100, "k-1").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    finance
        .command("o-v", &open("o-v", 10_000, "100% T/T in advance"))
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;

    type Change = fn(&mut RecordPaymentRequest);
    let cases: [(Change, &str); 6] = [
        (|r| r.amount_minor = 0, "amount_minor"),
        (|r| r.amount_minor = -5, "amount_minor"),
        (|r| r.currency = "usd".into(), "currency"),
        (|r| r.currency = "EUR".into(), "currency"),
        (|r| r.idempotency_key = String::new(), "idempotency_key"),
        (|r| r.received_on = "yesterday".into(), "received_on"),
    ];
    for (change, field) in cases {
        let mut request = payment("o-v", 100, "k-v");
        change(&mut request);
        let status = client.record_payment(request).await.unwrap_err();
        assert_field(&status, tonic::Code::InvalidArgument, field);
    }
    assert_eq!(finance.count("SELECT count(*) FROM payments").await, 0);

    // Ten concurrent calls with one key: one payment.
    let calls = (0..10).map(|_| finance.pay("o-v", 2_500, "bank:same"));
    let answers = futures::future::join_all(calls).await;
    let ids: std::collections::HashSet<String> = answers
        .into_iter()
        .map(|answer| answer.map(|a| a.payment.unwrap().payment_id))
        .collect::<Result<_, _>>()?;
    assert_eq!(ids.len(), 1);
    assert_eq!(finance.count("SELECT count(*) FROM payments").await, 1);
    // The key belongs to that payment; another order cannot reuse it.
    finance.command("o-w", &open("o-w", 10_000, "CAD")).await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let status = finance.pay("o-w", 2_500, "bank:same").await.unwrap_err();
    assert_field(&status, tonic::Code::InvalidArgument, "idempotency_key");

    let status = client
        .get_receivable(GetReceivableRequest {
            order_id: " ".into(),
        })
        .await
        .unwrap_err();
    assert_field(&status, tonic::Code::InvalidArgument, "order_id");
    let status = client
        .list_overdue(ListOverdueRequest {
            as_of: "31/12/2026".into(),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_field(&status, tonic::Code::InvalidArgument, "as_of");
    let status = client
        .set_labour_rate(LabourRate {
            work_centre: "CUT".into(),
            currency: "USD".into(),
            rate_minor_per_hour: -1,
        })
        .await
        .unwrap_err();
    assert_field(&status, tonic::Code::InvalidArgument, "rate_minor_per_hour");
    let status = client
        .get_cost_ledger(GetCostLedgerRequest {
            order_id: "o-nothing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(finance.count("SELECT count(*) FROM labour_rates").await, 0);
    finance.stop().await
}

#[tokio::test]
async fn cancel_voids_unpaid_invoices_and_refunds_what_was_received() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let order = "o-cancel";
    finance
        .command(
            order,
            &open(order, 1_000_000, "30% deposit, 70% on delivery"),
        )
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let _: InvoiceIssued = next(&mut events).await?;
    finance.pay(order, 120_000, "bank:c1").await?;

    let cancel = CancelReceivable {
        order_id: order.into(),
        reason: "customer cancelled".into(),
    };
    finance.command(order, &cancel).await?;
    let cancelled: ReceivableCancelled = next(&mut events).await?;
    assert_eq!(
        (cancelled.invoices_voided, cancelled.refund_minor),
        (1, 120_000)
    );
    finance.repeat(order, &cancel).await?;
    let cancellations: i64 = finance
        .count("SELECT count(*) FROM receivable_cancellations")
        .await;
    assert_eq!(cancellations, 1);

    let status = finance.pay(order, 1_000, "bank:c2").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    let receivable = finance
        .client
        .clone()
        .get_receivable(GetReceivableRequest {
            order_id: order.into(),
        })
        .await?
        .into_inner();
    assert_eq!(receivable.status, "cancelled");
    assert_eq!(receivable.refund_due_minor, 120_000);
    assert_eq!(receivable.outstanding_minor, 0);
    assert_eq!(receivable.invoices[0].status, "void");

    // A late OpenReceivable does not bill a cancelled order.
    finance
        .command(order, &open(order, 1_000_000, "CAD"))
        .await?;
    let failed: ReceivableOpeningFailed = next(&mut events).await?;
    assert!(failed.reason.contains("cancelled"), "{}", failed.reason);
    finance.stop().await
}

#[tokio::test]
async fn cost_ledger_books_other_services_events_and_flags_the_overrun() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let mut client = finance.client.clone();
    let order = "o-cost";
    client
        .set_labour_rate(LabourRate {
            work_centre: "CUT".into(),
            currency: "USD".into(),
            rate_minor_per_hour: 2_000,
        })
        .await?;

    // Material is bought before finance has a receivable for the order.
    let po = finance
        .event(
            "procurement",
            order,
            &PurchaseOrderPlaced {
                order_id: order.into(),
                purchase_order_id: "PO-1".into(),
                supplier: "Mill".into(),
                material: "cotton".into(),
                quantity: 800.0,
                amount_minor: 40_000,
                currency: "USD".into(),
                expected_date: "2026-03-01".into(),
            },
        )
        .await?;
    // Redelivered with the same id: booked once.
    finance.bus.publish(&po).await?;
    let ledger = eventually(WAIT, "the purchase order on the ledger", || {
        let mut client = client.clone();
        async move {
            client
                .get_cost_ledger(GetCostLedgerRequest {
                    order_id: order.into(),
                })
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    })
    .await?;
    assert_eq!(ledger.entries.len(), 1);
    assert_eq!(ledger.currency, "", "no receivable yet");

    let mut command = open(order, 500_000, "30% deposit, 70% against B/L copy");
    command.cost_budget_minor = 100_000;
    command.budget_lines = vec![
        CostBudgetLine {
            category: "material".into(),
            amount_minor: 50_000,
        },
        CostBudgetLine {
            category: "labour".into(),
            amount_minor: 30_000,
        },
        CostBudgetLine {
            category: "freight".into(),
            amount_minor: 20_000,
        },
    ];
    finance.command(order, &command).await?;
    let _: ReceivableOpened = next(&mut events).await?;

    finance
        .event(
            "production",
            order,
            &WorkOrderCompleted {
                order_id: order.into(),
                work_order_id: "wo-1".into(),
                good_quantity: 800,
                scrap_quantity: 3,
                completed_on: "2026-03-05".into(),
                hours_by_work_centre: [("CUT".to_owned(), 10.0), ("SEW".to_owned(), 5.0)]
                    .into_iter()
                    .collect(),
                revision: 1,
            },
        )
        .await?;
    let booked = |currency: &str, amount: i64| ShipmentBooked {
        order_id: order.into(),
        carrier: "Maersk".into(),
        mode: "sea".into(),
        etd: "2026-03-10".into(),
        eta: "2026-04-10".into(),
        booking_reference: format!("BK-{currency}"),
        freight_cost_minor: amount,
        currency: currency.into(),
        ..Default::default()
    };
    finance
        .event("logistics", order, &booked("USD", 45_000))
        .await?;
    // The whole order crossed its budget, and freight its plan.
    let overrun: CostOverrun = next(&mut events).await?;
    assert_eq!(
        (
            overrun.category.as_str(),
            overrun.budget_minor,
            overrun.actual_minor
        ),
        ("", 100_000, 105_000)
    );
    let freight: CostOverrun = next(&mut events).await?;
    assert_eq!(
        (
            freight.category.as_str(),
            freight.budget_minor,
            freight.actual_minor
        ),
        ("freight", 20_000, 45_000)
    );
    assert!(freight.cause.contains("BK-USD"), "{}", freight.cause);
    // No EUR rate: the freight waits unvalued and the missing rate is
    // announced.
    finance
        .event("logistics", order, &booked("EUR", 10_000))
        .await?;
    let missing: ExchangeRateMissing = next(&mut events).await?;
    assert_eq!(
        (missing.from_currency.as_str(), missing.to_currency.as_str()),
        ("EUR", "USD")
    );

    let ledger = eventually(WAIT, "all four events booked", || {
        let mut client = client.clone();
        async move {
            let ledger = client
                .get_cost_ledger(GetCostLedgerRequest {
                    order_id: order.into(),
                })
                .await
                .ok()?
                .into_inner();
            (ledger.entries.len() == 5).then_some(ledger)
        }
    })
    .await?;
    assert_eq!(ledger.currency, "USD");
    assert_eq!(
        (ledger.budget_minor, ledger.actual_minor),
        (100_000, 105_000)
    );
    assert!(ledger.over_budget);
    let lines: Vec<_> = ledger
        .categories
        .iter()
        .map(|c| (c.category.as_str(), c.plan_minor, c.actual_minor))
        .collect();
    assert_eq!(
        lines,
        [
            ("material", 50_000, 40_000),
            ("labour", 30_000, 20_000),
            ("freight", 20_000, 45_000)
        ]
    );
    assert_eq!(ledger.unconverted.len(), 1);
    assert_eq!(
        (
            ledger.unconverted[0].currency.as_str(),
            ledger.unconverted[0].amount_minor
        ),
        ("EUR", 10_000)
    );
    assert_eq!(ledger.warnings.len(), 1);
    assert!(ledger.warnings[0].contains("SEW"), "{:?}", ledger.warnings);

    // One crossing each, one CostOverrun each: the EUR freight changed
    // nothing.
    let mut overruns = 0;
    while let Some(seen) = events.next(Duration::from_millis(700)).await? {
        if seen.type_name() == CostOverrun::TYPE_NAME {
            overruns += 1;
        }
    }
    assert_eq!(overruns, 0, "a second CostOverrun was emitted");
    assert_eq!(
        finance
            .count("SELECT count(*) FROM cost_entries WHERE category = 'material'")
            .await,
        1
    );
    // The finance events themselves are not costs: nothing dead-lettered.
    let dead = SubjectReader::open(
        &finance.nats.url,
        streams::DEAD_LETTERS,
        &subjects::dead_letter(gendan_finance::COSTS_CONSUMER),
    )
    .await?
    .next(Duration::from_millis(300))
    .await?;
    assert!(dead.is_none(), "{dead:?}");
    finance.stop().await
}

/// A dunning event as the tests compare them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Chase {
    Reminder {
        order_id: String,
        reminder: u32,
        days_overdue: u32,
    },
    Escalated {
        order_id: String,
        reminders: u32,
        days_overdue: u32,
    },
}

fn reminder(order_id: &str, reminder: u32, days_overdue: u32) -> Chase {
    Chase::Reminder {
        order_id: order_id.into(),
        reminder,
        days_overdue,
    }
}

/// The next `count` dunning events (other events skipped), sorted so that
/// events of one pass compare the same whatever their order.
async fn chases(reader: &mut SubjectReader, count: usize) -> anyhow::Result<Vec<Chase>> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::with_capacity(count);
    while seen.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(message) = reader.next(left).await? else {
            anyhow::bail!("only {seen:?} of {count} dunning events within {WAIT:?}");
        };
        if let Some(chase) = chase(&message)? {
            seen.push(chase);
        }
    }
    seen.sort();
    Ok(seen)
}

fn chase(message: &gendan_tests::Seen) -> anyhow::Result<Option<Chase>> {
    let type_name = message.type_name();
    if type_name == PaymentReminder::TYPE_NAME {
        let event: PaymentReminder = message.decode()?;
        return Ok(Some(Chase::Reminder {
            order_id: event.order_id,
            reminder: event.reminder,
            days_overdue: event.days_overdue,
        }));
    }
    if type_name == PaymentEscalated::TYPE_NAME {
        let event: PaymentEscalated = message.decode()?;
        return Ok(Some(Chase::Escalated {
            order_id: event.order_id,
            reminders: event.reminders,
            days_overdue: event.days_overdue,
        }));
    }
    Ok(None)
}

/// Fails if a dunning event arrives within [`QUIET`].
async fn no_chase(reader: &mut SubjectReader) -> anyhow::Result<()> {
    while let Some(message) = reader.next(QUIET).await? {
        if let Some(chase) = chase(&message)? {
            anyhow::bail!("unexpected {chase:?}");
        }
    }
    Ok(())
}

fn due_date(invoice: &InvoiceIssued) -> NaiveDate {
    date_from_str(&invoice.due_date).expect("a YYYY-MM-DD due date")
}

#[tokio::test]
async fn unpaid_deposits_are_reminded_on_schedule_then_escalated_once() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let late = "o-late";
    let payer = "o-payer";
    finance
        .command(
            late,
            &open(late, 1_000_000, "30% T/T deposit, 70% against B/L copy"),
        )
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let deposit: InvoiceIssued = next(&mut events).await?;
    finance
        .command(payer, &open(payer, 50_000, "100% T/T in advance"))
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let payer_deposit: InvoiceIssued = next(&mut events).await?;
    let due = due_date(&deposit);
    assert_eq!(due_date(&payer_deposit), due, "both issued today");

    // Due today is not late.
    finance.set_today(due);
    no_chase(&mut events).await?;

    finance.set_today(due + Days::new(1));
    assert_eq!(
        chases(&mut events, 2).await?,
        [reminder(late, 1, 1), reminder(payer, 1, 1)]
    );
    // The reminder says what is owed on which invoice.
    let first: PaymentReminder = {
        let mut again = finance.events().await?;
        loop {
            let seen: PaymentReminder = next(&mut again).await?;
            if seen.order_id == late {
                break seen;
            }
        }
    };
    assert_eq!(first.invoice_id, deposit.invoice_id);
    assert_eq!(first.invoice_kind(), InvoiceKind::Deposit);
    assert_eq!(
        (first.outstanding_minor, first.currency.as_str()),
        (300_000, "USD")
    );
    assert_eq!(first.due_date, deposit.due_date);

    // A payment in full stops the payer's dunning.
    finance.pay(payer, 50_000, "bank:payer").await?;
    let _: OrderPaidInFull = next(&mut events).await?;

    finance.set_today(due + Days::new(6));
    no_chase(&mut events).await?;
    finance.set_today(due + Days::new(7));
    assert_eq!(chases(&mut events, 1).await?, [reminder(late, 2, 7)]);
    finance.set_today(due + Days::new(14));
    assert_eq!(chases(&mut events, 1).await?, [reminder(late, 3, 14)]);
    finance.set_today(due + Days::new(15));
    assert_eq!(
        chases(&mut events, 1).await?,
        [Chase::Escalated {
            order_id: late.into(),
            reminders: 3,
            days_overdue: 15
        }]
    );
    // Escalated once: from here a person decides.
    finance.set_today(due + Days::new(40));
    no_chase(&mut events).await?;
    let escalated: PaymentEscalated = {
        let mut again = finance.events().await?;
        next(&mut again).await?
    };
    assert_eq!(
        (
            escalated.invoice_id.as_str(),
            escalated.outstanding_minor,
            escalated.invoice_kind()
        ),
        (deposit.invoice_id.as_str(), 300_000, InvoiceKind::Deposit)
    );
    assert_eq!(
        finance
            .count("SELECT count(*) FROM invoices WHERE reminders_sent = 3 AND escalated_on IS NOT NULL")
            .await,
        1
    );
    finance.stop().await
}

#[tokio::test]
async fn an_extended_due_date_starts_dunning_over() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let mut dead = finance.dead_letter().await?;
    let order = "o-extend";
    finance
        .command(order, &open(order, 200_000, "30% deposit, 70% on delivery"))
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let deposit: InvoiceIssued = next(&mut events).await?;
    let due = due_date(&deposit);
    finance.set_today(due + Days::new(1));
    assert_eq!(chases(&mut events, 1).await?, [reminder(order, 1, 1)]);

    let new_due = due + Days::new(10);
    let extend = ExtendPaymentDue {
        order_id: order.into(),
        invoice_kind: InvoiceKind::Deposit.into(),
        new_due_date: date_to_string(new_due),
        reason: "customer asked for ten more days".into(),
    };
    finance.command(order, &extend).await?;
    let extended: PaymentDueExtended = next(&mut events).await?;
    assert_eq!(
        (extended.invoice_id.as_str(), extended.new_due_date.as_str()),
        (
            deposit.invoice_id.as_str(),
            date_to_string(new_due).as_str()
        )
    );
    // The saga re-sends: answered again with the same fact, moved once.
    finance.repeat(order, &extend).await?;
    assert_eq!(
        finance
            .count("SELECT count(*) FROM payment_due_extensions")
            .await,
        1
    );
    let receivable = finance
        .client
        .clone()
        .get_receivable(GetReceivableRequest {
            order_id: order.into(),
        })
        .await?
        .into_inner();
    assert_eq!(receivable.invoices[0].due_date, date_to_string(new_due));

    // Dunning counts from the new date, from the first reminder.
    finance.set_today(new_due);
    no_chase(&mut events).await?;
    finance.set_today(new_due + Days::new(1));
    assert_eq!(chases(&mut events, 1).await?, [reminder(order, 1, 1)]);

    // A date before today, or no invoice kind: dead-lettered naming the field.
    let mut past = extend.clone();
    past.new_due_date = date_to_string(due);
    finance.command(order, &past).await?;
    let reason = dead
        .next(WAIT)
        .await?
        .and_then(|seen| seen.header("Gendan-Dlq-Reason"))
        .unwrap_or_default();
    assert!(reason.contains("new_due_date"), "{reason}");
    let mut unnamed = extend.clone();
    unnamed.invoice_kind = InvoiceKind::Unspecified.into();
    finance.command(order, &unnamed).await?;
    let reason = dead
        .next(WAIT)
        .await?
        .and_then(|seen| seen.header("Gendan-Dlq-Reason"))
        .unwrap_or_default();
    assert!(reason.contains("invoice_kind"), "{reason}");
    assert_eq!(
        finance
            .count("SELECT count(*) FROM payment_due_extensions")
            .await,
        1
    );
    finance.stop().await
}

#[tokio::test]
async fn referral_to_collection_holds_the_customer_once() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let order = "o-collect";
    finance
        .command(
            order,
            &open(order, 1_000_000, "30% deposit, 70% against B/L copy"),
        )
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let deposit: InvoiceIssued = next(&mut events).await?;
    finance.pay(order, 100_000, "bank:part").await?;

    let refer = ReferToCollection {
        order_id: order.into(),
        reason: "no answer to three reminders".into(),
    };
    finance.command(order, &refer).await?;
    let referred: ReferredToCollection = next(&mut events).await?;
    assert_eq!(
        (
            referred.order_id.as_str(),
            referred.customer.as_str(),
            referred.outstanding_minor
        ),
        (order, "Nordwind GmbH", 900_000)
    );
    finance.repeat(order, &refer).await?;
    assert_eq!(
        finance
            .count("SELECT count(*) FROM credit_holds WHERE customer = 'Nordwind GmbH'")
            .await,
        1
    );
    assert_eq!(
        finance
            .count("SELECT count(*) FROM collection_referrals")
            .await,
        1
    );
    // The customer's next order gets no credit: it is held, with the reason.
    let next_order = "o-collect-2";
    finance
        .command(next_order, &open(next_order, 50_000, "net 30 days"))
        .await?;
    let held: ReceivableOpeningFailed = next(&mut events).await?;
    assert_eq!(held.order_id, next_order);
    assert!(held.reason.contains("credit hold"), "{}", held.reason);
    let receivable = |client: &FinanceServiceClient<Channel>| {
        let mut client = client.clone();
        async move {
            client
                .get_receivable(GetReceivableRequest {
                    order_id: order.into(),
                })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    assert_eq!(receivable(&finance.client).await?.status, "in_collection");

    // Collection chases it now: finance's dunning leaves it alone.
    finance.set_today(due_date(&deposit) + Days::new(1));
    no_chase(&mut events).await?;
    // Money still settles it.
    finance.pay(order, 900_000, "bank:rest").await?;
    let _: OrderPaidInFull = next(&mut events).await?;
    assert_eq!(receivable(&finance.client).await?.status, "paid");
    finance.stop().await
}

#[tokio::test]
async fn refunds_pay_out_what_a_cancellation_owes_once_per_key() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let order = "o-refund";
    finance
        .command(
            order,
            &open(order, 1_000_000, "30% deposit, 70% on delivery"),
        )
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let _: InvoiceIssued = next(&mut events).await?;

    let status = finance
        .refund("o-unknown", 100, "refund:0")
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    // Nothing is owed to a customer whose order runs.
    let status = finance.refund(order, 100, "refund:0").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");

    finance.pay(order, 300_000, "bank:deposit").await?;
    let _: DepositReceived = next(&mut events).await?;
    finance
        .command(
            order,
            &CancelReceivable {
                order_id: order.into(),
                reason: "customer cancelled".into(),
            },
        )
        .await?;
    let cancelled: ReceivableCancelled = next(&mut events).await?;
    assert_eq!(cancelled.refund_minor, 300_000);

    let first = finance.refund(order, 100_000, "refund:1").await?;
    assert_eq!(
        (
            first.amount_minor,
            first.currency.as_str(),
            first.refund_due_minor
        ),
        (100_000, "USD", 200_000)
    );
    let paid: RefundPaid = next(&mut events).await?;
    assert_eq!(paid.refund_id, first.refund_id);
    assert_eq!(
        (paid.amount_minor, paid.refund_due_minor),
        (100_000, 200_000)
    );

    // The same key again: the first refund, nothing paid twice.
    let again = finance.refund(order, 100_000, "refund:1").await?;
    assert_eq!(again, first);
    assert_eq!(finance.count("SELECT count(*) FROM refunds").await, 1);

    // More than is owed, another currency, a future date: the field named.
    let status = finance
        .refund(order, 200_001, "refund:2")
        .await
        .unwrap_err();
    assert_field(&status, tonic::Code::InvalidArgument, "amount_minor");
    assert!(status.message().contains("200000"), "{}", status.message());
    let mut client = finance.client.clone();
    let mut euros = refund(order, 1_000, "refund:2", finance.clock.today());
    euros.currency = "EUR".into();
    let status = client.record_refund(euros).await.unwrap_err();
    assert_field(&status, tonic::Code::InvalidArgument, "currency");
    let tomorrow = finance.clock.today() + Days::new(1);
    let status = client
        .record_refund(refund(order, 1_000, "refund:2", tomorrow))
        .await
        .unwrap_err();
    assert_field(&status, tonic::Code::InvalidArgument, "paid_on");

    let last = finance.refund(order, 200_000, "refund:3").await?;
    assert_eq!(last.refund_due_minor, 0);
    // The next RefundPaid is this one: the repeat announced nothing.
    let paid: RefundPaid = next(&mut events).await?;
    assert_eq!(
        (paid.refund_id, paid.amount_minor),
        (last.refund_id, 200_000)
    );
    let receivable = client
        .get_receivable(GetReceivableRequest {
            order_id: order.into(),
        })
        .await?
        .into_inner();
    assert_eq!(receivable.refund_due_minor, 0);
    let status = finance.refund(order, 1, "refund:4").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_eq!(finance.count("SELECT count(*) FROM refunds").await, 2);
    finance.stop().await
}

#[tokio::test]
async fn the_dunning_schedule_is_checked_and_used() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    let mut client = finance.client.clone();
    let schedule = client
        .get_dunning_schedule(GetDunningScheduleRequest {})
        .await?
        .into_inner();
    assert_eq!(schedule.reminder_days, [1, 7, 14], "the default");

    let bad_schedules: [Vec<u32>; 5] = [
        vec![7, 1],
        vec![],
        vec![0, 3],
        vec![3, 366],
        (1..=11).collect(),
    ];
    for reminder_days in bad_schedules {
        let status = client
            .set_dunning_schedule(DunningSchedule { reminder_days })
            .await
            .unwrap_err();
        assert_field(&status, tonic::Code::InvalidArgument, "reminder_days");
    }
    let set = client
        .set_dunning_schedule(DunningSchedule {
            reminder_days: vec![3, 10],
        })
        .await?
        .into_inner();
    assert_eq!(set.reminder_days, [3, 10]);
    let schedule = client
        .get_dunning_schedule(GetDunningScheduleRequest {})
        .await?
        .into_inner();
    assert_eq!(schedule.reminder_days, [3, 10]);

    let order = "o-schedule";
    finance
        .command(order, &open(order, 10_000, "100% T/T in advance"))
        .await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let deposit: InvoiceIssued = next(&mut events).await?;
    let due = due_date(&deposit);
    finance.set_today(due + Days::new(2));
    no_chase(&mut events).await?;
    finance.set_today(due + Days::new(3));
    assert_eq!(chases(&mut events, 1).await?, [reminder(order, 1, 3)]);
    finance.set_today(due + Days::new(11));
    assert_eq!(chases(&mut events, 1).await?, [reminder(order, 2, 11)]);
    finance.set_today(due + Days::new(12));
    assert_eq!(
        chases(&mut events, 1).await?,
        [Chase::Escalated {
            order_id: order.into(),
            reminders: 2,
            days_overdue: 12
        }]
    );
    finance.stop().await
}

#[tokio::test]
async fn a_customer_schedule_of_its_own_is_followed() -> anyhow::Result<()> {
    let finance = Finance::start().await?;
    let mut events = finance.events().await?;
    // A customer with a schedule of its own: its receivable follows it,
    // not the deployment's (1, 7, 14): one reminder two days after the due
    // date, then escalation.
    let own = "o-own-schedule";
    let mut command = open(own, 10_000, "100% T/T in advance");
    command.dunning_reminder_days = vec![2];
    finance.command(own, &command).await?;
    let _: ReceivableOpened = next(&mut events).await?;
    let deposit: InvoiceIssued = next(&mut events).await?;
    let due = due_date(&deposit);
    finance.set_today(due + Days::new(2));
    assert_eq!(chases(&mut events, 1).await?, [reminder(own, 1, 2)]);
    finance.set_today(due + Days::new(3));
    assert_eq!(
        chases(&mut events, 1).await?,
        [Chase::Escalated {
            order_id: own.into(),
            reminders: 1,
            days_overdue: 3
        }]
    );
    // One that breaks the schedule's rule cannot be opened, the field named.
    let broken = "o-broken-schedule";
    let mut command = open(broken, 10_000, "100% T/T in advance");
    command.dunning_reminder_days = vec![7, 1];
    finance.command(broken, &command).await?;
    let failed: ReceivableOpeningFailed = next(&mut events).await?;
    assert!(
        failed.reason.contains("dunning_reminder_days[1]"),
        "{}",
        failed.reason
    );
    finance.stop().await
}
