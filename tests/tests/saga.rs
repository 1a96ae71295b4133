//! The saga coordinator alone over real NATS and PostgreSQL, with the test
//! playing the other services (the review's checks and estimates among
//! them): commands out, replies in, durable timers, re-sends, stalling,
//! operator retry and skip, and restarts.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use gendan_messaging::{Bus, Cause, Outgoing, streams};
use gendan_proto::TypeName;
use gendan_proto::v1::saga_service_client::SagaServiceClient;
use gendan_proto::v1::{self, Phase};
use gendan_saga::{Application, ManualClock, Options, Timing};
use gendan_tests::{SubjectReader, TestDb, TestNats, eventually, service_settings};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(15);

struct Running {
    port: u16,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<gendan_saga::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }

    async fn client(&self) -> SagaServiceClient<tonic::transport::Channel> {
        SagaServiceClient::connect(format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("saga grpc")
    }
}

async fn start(db: &TestDb, nats: &TestNats, clock: &ManualClock) -> Running {
    let options = Options {
        timing: Timing {
            command_timeout: Duration::from_secs(30),
            max_attempts: 3,
            decision_timeout: Duration::from_secs(3600),
            decision_reminders: 1,
            final_inspection_failures: 2,
            overdue_asks: 3,
            recheck_every: Duration::from_secs(7 * 24 * 3600),
        },
        calendar: Default::default(),
        clock: Arc::new(clock.clone()),
        timer_poll: Duration::from_millis(50),
    };
    let app = Application::build(service_settings(db, nats, "saga"), options)
        .await
        .expect("saga starts");
    let port = app.port();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
    Running { port, cancel, task }
}

fn sample_order(order_id: &str) -> v1::Order {
    let requested = Utc::now().date_naive() + chrono::Duration::days(30);
    v1::Order {
        order_id: order_id.to_owned(),
        customer: "Test Customer".into(),
        lines: vec![v1::OrderLine {
            product: "P1".into(),
            spec: "blue".into(),
            quantity: 100,
            unit_price_minor: 500,
        }],
        currency: "USD".into(),
        requested_delivery_date: gendan_proto::date_to_string(requested),
        incoterm: "FOB".into(),
        payment_terms: "NET30".into(),
        export: true,
        phase: Phase::Received as i32,
        ..Default::default()
    }
}

async fn publish_event<M: prost::Message + TypeName>(
    bus: &Bus,
    service: &str,
    order_id: &str,
    payload: &M,
) {
    bus.publish(&Outgoing::event(
        service,
        order_id,
        payload,
        &Cause::root(order_id),
    ))
    .await
    .expect("publish");
}

/// Publishes the order as the orders service would, the materials check's
/// answer as procurement would (everything in stock today) and quality's
/// inspection estimate, so the saga moves on to the capacity check.
async fn order_created(bus: &Bus, order_id: &str, order: v1::Order) {
    publish_event(
        bus,
        "orders",
        order_id,
        &v1::OrderCreated { order: Some(order) },
    )
    .await;
    let in_stock = v1::MaterialsChecked {
        order_id: order_id.to_owned(),
        earliest_material_date: gendan_proto::date_to_string(Utc::now().date_naive()),
        ..Default::default()
    };
    publish_event(bus, "procurement", order_id, &in_stock).await;
    let sampled = v1::InspectionEstimated {
        order_id: order_id.to_owned(),
        revision: 0,
        sample_units: 13,
        in_process: Vec::new(),
    };
    publish_event(bus, "quality", order_id, &sampled).await;
}

/// After the capacity check: logistics' freight quote and finance's
/// estimate, its margin well above any floor (no question), as those
/// services would answer.
async fn estimated(bus: &Bus, order_id: &str) {
    let quoted = v1::FreightQuoted {
        order_id: order_id.to_owned(),
        revision: 0,
        freight_cost_minor: 4_000,
        currency: "USD".into(),
        lane_code: "SHA-HAM-SEA".into(),
        ..Default::default()
    };
    publish_event(bus, "logistics", order_id, &quoted).await;
    let estimated = v1::CostsEstimated {
        order_id: order_id.to_owned(),
        revision: 0,
        estimate: Some(v1::CostEstimate {
            order_id: order_id.to_owned(),
            currency: "USD".into(),
            revenue_minor: 50_000,
            cost_minor: 30_000,
            margin_minor: 20_000,
            margin_bp: 4_000,
            ..Default::default()
        }),
    };
    publish_event(bus, "finance", order_id, &estimated).await;
}

/// Publishes answers about one order as the department named would.
struct Replies {
    bus: Bus,
    order_id: String,
}

impl Replies {
    /// Review passes: the factory can complete in `earliest_in` days and the
    /// order is confirmed for delivery in `promised_in` days.
    async fn reviewed(&self, earliest_in: i64, promised_in: i64) {
        let today = Utc::now().date_naive();
        let order_id = self.order_id.clone();
        self.send(
            "production",
            &capacity(&order_id, today + chrono::Duration::days(earliest_in), true),
        )
        .await;
        estimated(&self.bus, &order_id).await;
        let confirmed = v1::OrderConfirmed {
            revision: 0,
            order_id,
            promised_delivery_date: gendan_proto::date_to_string(
                today + chrono::Duration::days(promised_in),
            ),
        };
        self.send("orders", &confirmed).await;
    }

    async fn send<M: prost::Message + TypeName>(&self, service: &str, payload: &M) {
        let event = Outgoing::event(
            service,
            &self.order_id,
            payload,
            &Cause::root(&self.order_id),
        );
        self.bus.publish(&event).await.unwrap();
    }
}

/// Finance opens the receivable (no deposit) and procurement has the
/// materials in, as those services would answer.
async fn materials_and_receivable(bus: &Bus, order_id: &str) {
    let opened = v1::ReceivableOpened {
        order_id: order_id.to_owned(),
        deposit_required: false,
        ..Default::default()
    };
    publish_event(bus, "finance", order_id, &opened).await;
    let today = gendan_proto::date_to_string(Utc::now().date_naive());
    let ordered = v1::MaterialsOrdered {
        order_id: order_id.to_owned(),
        expected_ready_date: today.clone(),
        ..Default::default()
    };
    publish_event(bus, "procurement", order_id, &ordered).await;
    let ready = v1::MaterialsReady {
        revision: 0,
        order_id: order_id.to_owned(),
        ready_on: today,
    };
    publish_event(bus, "procurement", order_id, &ready).await;
}

async fn saga_of(
    client: &mut SagaServiceClient<tonic::transport::Channel>,
    order_id: &str,
) -> v1::Saga {
    client
        .get_saga(v1::GetSagaRequest {
            order_id: order_id.into(),
        })
        .await
        .expect("get saga")
        .into_inner()
}

async fn try_saga(
    client: &mut SagaServiceClient<tonic::transport::Channel>,
    order_id: &str,
) -> Option<v1::Saga> {
    client
        .get_saga(v1::GetSagaRequest {
            order_id: order_id.into(),
        })
        .await
        .ok()
        .map(tonic::Response::into_inner)
}

fn step<'a>(saga: &'a v1::Saga, name: &str) -> &'a v1::SagaStep {
    saga.steps
        .iter()
        .find(|s| s.step == name)
        .expect("step exists")
}

#[tokio::test]
async fn commands_are_resent_on_timeout_then_the_saga_stalls_and_an_operator_retries() {
    gendan_telemetry::init_for_tests();
    let (db, nats) = (
        TestDb::create().await.unwrap(),
        TestNats::start().await.unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let saga = start(&db, &nats, &clock).await;
    let bus = Bus::connect(&nats.url, "test").await.unwrap();
    let mut commands = SubjectReader::open(&nats.url, streams::COMMANDS, "gendan.cmd.production.>")
        .await
        .unwrap();

    let order_id = uuid::Uuid::now_v7().to_string();
    order_created(&bus, &order_id, sample_order(&order_id)).await;

    let first = commands
        .next_of_type(v1::CheckOrderCapacity::TYPE_NAME, WAIT)
        .await
        .unwrap();
    assert_eq!(first.subject, "gendan.cmd.production.check_order_capacity");
    let command: v1::CheckOrderCapacity = first.decode().unwrap();
    assert_eq!(command.items[0].product, "P1");
    assert_eq!(command.items[0].quantity, 100);

    // No reply: each timeout re-sends the same command with a new message id.
    clock.advance(chrono::Duration::seconds(31));
    let second = commands
        .next_of_type(v1::CheckOrderCapacity::TYPE_NAME, WAIT)
        .await
        .unwrap();
    assert_ne!(first.header("Nats-Msg-Id"), second.header("Nats-Msg-Id"));
    clock.advance(chrono::Duration::seconds(61));
    commands
        .next_of_type(v1::CheckOrderCapacity::TYPE_NAME, WAIT)
        .await
        .unwrap();

    // The third attempt was the last: the next timeout parks the saga.
    clock.advance(chrono::Duration::seconds(121));
    let mut client = saga.client().await;
    let stalled = eventually(WAIT, "saga stalled", || {
        let mut client = client.clone();
        let order_id = order_id.clone();
        async move {
            let saga = try_saga(&mut client, &order_id).await?;
            (saga.status == "stalled").then_some(saga)
        }
    })
    .await
    .unwrap();
    assert_eq!(stalled.phase, Phase::Review as i32);
    assert_eq!(step(&stalled, "capacity_check").status, "stalled");
    assert_eq!(step(&stalled, "capacity_check").attempts, 3);
    assert!(
        stalled.stalled_reason.contains("capacity_check"),
        "{}",
        stalled.stalled_reason
    );
    let listed = client
        .list_stalled(v1::ListStalledRequest { limit: 10 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.sagas.len(), 1);

    // Retrying a step that is not stalled is refused.
    let refused = client
        .retry_step(v1::StepRequest {
            order_id: order_id.clone(),
            step: "confirm_order".into(),
            operator: "li.wei".into(),
            reason: "test".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let invalid = client
        .retry_step(v1::StepRequest {
            order_id: "not-an-id".into(),
            step: "capacity_check".into(),
            operator: "x".into(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    assert!(
        invalid.message().contains("order_id"),
        "{}",
        invalid.message()
    );

    let retried = client
        .retry_step(v1::StepRequest {
            order_id: order_id.clone(),
            step: "capacity_check".into(),
            operator: "li.wei".into(),
            reason: "production service is back".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.status, "running");
    assert_eq!(step(&retried, "capacity_check").status, "waiting");
    commands
        .next_of_type(v1::CheckOrderCapacity::TYPE_NAME, WAIT)
        .await
        .unwrap();

    // The reply moves the saga on to confirmation.
    let earliest = Utc::now().date_naive() + chrono::Duration::days(10);
    publish_event(
        &bus,
        "production",
        &order_id,
        &v1::CapacityChecked {
            order_id: order_id.clone(),
            earliest_completion: gendan_proto::date_to_string(earliest),
            feasible: true,
            ..Default::default()
        },
    )
    .await;
    estimated(&bus, &order_id).await;
    let mut order_commands =
        SubjectReader::open(&nats.url, streams::COMMANDS, "gendan.cmd.orders.>")
            .await
            .unwrap();
    let confirm = order_commands
        .next_of_type(v1::ConfirmOrder::TYPE_NAME, WAIT)
        .await
        .unwrap();
    let confirm: v1::ConfirmOrder = confirm.decode().unwrap();
    assert_eq!(confirm.order_id, order_id);
    let saga_now = saga_of(&mut client, &order_id).await;
    assert_eq!(step(&saga_now, "capacity_check").status, "done");
    // Delivery follows production's end: inspection and packing come after
    // it (no lane quoted here).
    let projected = gendan_proto::date_from_str(&saga_now.projected_delivery_date).unwrap();
    assert!(projected > earliest, "{projected} after {earliest}");
    assert!(
        saga_now
            .log
            .iter()
            .any(|entry| entry.action == "retry" && entry.detail.contains("li.wei"))
    );
    saga.stop().await;
}

#[tokio::test]
async fn a_timer_set_before_a_restart_fires_after_it() {
    gendan_telemetry::init_for_tests();
    let (db, nats) = (
        TestDb::create().await.unwrap(),
        TestNats::start().await.unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let saga = start(&db, &nats, &clock).await;
    let bus = Bus::connect(&nats.url, "test").await.unwrap();
    let mut commands = SubjectReader::open(&nats.url, streams::COMMANDS, "gendan.cmd.production.>")
        .await
        .unwrap();
    let order_id = uuid::Uuid::now_v7().to_string();
    order_created(&bus, &order_id, sample_order(&order_id)).await;
    commands
        .next_of_type(v1::CheckOrderCapacity::TYPE_NAME, WAIT)
        .await
        .unwrap();

    // The coordinator goes away with the re-send timer pending.
    saga.stop().await;
    clock.advance(chrono::Duration::seconds(45));
    assert!(
        commands
            .next(Duration::from_millis(500))
            .await
            .unwrap()
            .is_none()
    );

    let saga = start(&db, &nats, &clock).await;
    let resent = commands
        .next_of_type(v1::CheckOrderCapacity::TYPE_NAME, WAIT)
        .await
        .unwrap();
    let resent: v1::CheckOrderCapacity = resent.decode().unwrap();
    assert_eq!(resent.order_id, order_id);
    let mut client = saga.client().await;
    assert_eq!(
        step(&saga_of(&mut client, &order_id).await, "capacity_check").attempts,
        2
    );
    saga.stop().await;
}

#[tokio::test]
async fn replies_out_of_order_and_twice_are_kept_once_and_a_failed_check_can_be_skipped() {
    gendan_telemetry::init_for_tests();
    let (db, nats) = (
        TestDb::create().await.unwrap(),
        TestNats::start().await.unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let saga = start(&db, &nats, &clock).await;
    let bus = Bus::connect(&nats.url, "test").await.unwrap();
    let order_id = uuid::Uuid::now_v7().to_string();
    order_created(&bus, &order_id, sample_order(&order_id)).await;

    // The capacity check answers with a problem: the step stalls at once.
    let problem = v1::CapacityChecked {
        order_id: order_id.clone(),
        problem: "no routing for product P1".into(),
        ..Default::default()
    };
    publish_event(&bus, "production", &order_id, &problem).await;
    let mut client = saga.client().await;
    let stalled = eventually(WAIT, "stalled on the capacity problem", || {
        let mut client = client.clone();
        let order_id = order_id.clone();
        async move {
            let saga = try_saga(&mut client, &order_id).await?;
            (saga.status == "stalled").then_some(saga)
        }
    })
    .await
    .unwrap();
    assert!(
        step(&stalled, "capacity_check")
            .last_error
            .contains("no routing for product P1")
    );

    // An operator skips it; the review goes on to the estimate.
    let skipped = client
        .skip_step(v1::StepRequest {
            order_id: order_id.clone(),
            step: "capacity_check".into(),
            operator: "li.wei".into(),
            reason: "made to order by hand".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(step(&skipped, "capacity_check").status, "skipped");
    assert_eq!(step(&skipped, "quote_freight").status, "waiting");
    assert_eq!(step(&skipped, "confirm_order").status, "pending");
    estimated(&bus, &order_id).await;
    wait_for(&client, &order_id, "confirmation asked", |s| {
        step(s, "confirm_order").status == "waiting"
    })
    .await;

    // The confirmation arrives twice: one effect.
    let promised = Utc::now().date_naive() + chrono::Duration::days(30);
    let confirmed = Outgoing::event(
        "orders",
        &order_id,
        &v1::OrderConfirmed {
            revision: 0,
            order_id: order_id.clone(),
            promised_delivery_date: gendan_proto::date_to_string(promised),
        },
        &Cause::root(&order_id),
    );
    bus.publish(&confirmed).await.unwrap();
    let mut again = confirmed.clone();
    again.envelope.event_id = uuid::Uuid::now_v7().to_string();
    bus.publish(&again).await.unwrap();

    let planned = eventually(WAIT, "production planning started", || {
        let mut client = client.clone();
        let order_id = order_id.clone();
        async move {
            let saga = try_saga(&mut client, &order_id).await?;
            (step(&saga, "plan_production").status == "waiting").then_some(saga)
        }
    })
    .await
    .unwrap();
    assert_eq!(planned.phase, Phase::Confirmed as i32);
    assert_eq!(
        planned.promised_delivery_date,
        gendan_proto::date_to_string(promised)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = saga_of(&mut client, &order_id).await.log;
    assert_eq!(
        log.iter()
            .filter(|entry| entry.step == "confirm_order" && entry.action == "done")
            .count(),
        1
    );
    saga.stop().await;
}

fn capacity(order_id: &str, earliest: chrono::NaiveDate, feasible: bool) -> v1::CapacityChecked {
    v1::CapacityChecked {
        order_id: order_id.into(),
        earliest_completion: gendan_proto::date_to_string(earliest),
        feasible,
        ..Default::default()
    }
}

async fn wait_for(
    client: &SagaServiceClient<tonic::transport::Channel>,
    order_id: &str,
    what: &str,
    check: impl Fn(&v1::Saga) -> bool,
) -> v1::Saga {
    eventually(WAIT, what, || {
        let mut client = client.clone();
        let order_id = order_id.to_owned();
        let check = &check;
        async move {
            let saga = try_saga(&mut client, &order_id).await?;
            check(&saga).then_some(saga)
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_late_factory_date_opens_a_decision_that_sets_the_promise() {
    gendan_telemetry::init_for_tests();
    let (db, nats) = (
        TestDb::create().await.unwrap(),
        TestNats::start().await.unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let saga = start(&db, &nats, &clock).await;
    let bus = Bus::connect(&nats.url, "test").await.unwrap();
    let mut client = saga.client().await;
    let mut events = SubjectReader::open(&nats.url, streams::EVENTS, "gendan.evt.saga.>")
        .await
        .unwrap();
    let mut order_commands =
        SubjectReader::open(&nats.url, streams::COMMANDS, "gendan.cmd.orders.>")
            .await
            .unwrap();
    let order_id = uuid::Uuid::now_v7().to_string();
    let order = sample_order(&order_id);
    order_created(&bus, &order_id, order.clone()).await;

    // The factory can only make it 20 days after the requested date.
    let requested = gendan_proto::date_from_str(&order.requested_delivery_date).unwrap();
    let proposed = requested + chrono::Duration::days(20);
    publish_event(
        &bus,
        "production",
        &order_id,
        &capacity(&order_id, proposed, false),
    )
    .await;
    estimated(&bus, &order_id).await;
    let asked = events
        .next_of_type(v1::DecisionRequested::TYPE_NAME, WAIT)
        .await
        .unwrap();
    let decision = asked
        .decode::<v1::DecisionRequested>()
        .unwrap()
        .decision
        .unwrap();
    assert_eq!(decision.kind, "delivery_date");
    assert_eq!(
        decision.options,
        vec![
            "accept_proposed_date",
            "keep_requested_date",
            "cancel_order"
        ]
    );

    let waiting = wait_for(&client, &order_id, "clarification waiting", |s| {
        step(s, "clarify_delivery_date").status == "waiting"
    })
    .await;
    assert!(
        waiting.at_risk,
        "a date past the request is a risk from the start"
    );
    // The date asked about is the earliest delivery: production's end, then
    // inspection and packing (no lane quoted here).
    let asked_date = gendan_proto::date_from_str(&waiting.projected_delivery_date).unwrap();
    assert!(asked_date > proposed, "{asked_date} after {proposed}");
    assert!(
        decision.question.contains(&waiting.projected_delivery_date),
        "{}",
        decision.question
    );
    assert_eq!(step(&waiting, "confirm_order").status, "pending");
    let open = client
        .list_decisions(v1::ListDecisionsRequest {
            order_id: String::new(),
            open_only: true,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .decisions;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].decision_id, decision.decision_id);

    let decide = |answer: &str| v1::DecideRequest {
        order_id: order_id.clone(),
        decision_id: decision.decision_id.clone(),
        answer: answer.into(),
        operator: "li.wei".into(),
        comment: "customer agreed by phone".into(),
    };
    let wrong = client.decide(decide("ship_it_anyway")).await.unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::InvalidArgument);
    assert!(wrong.message().contains("answer"), "{}", wrong.message());

    let decided = client
        .decide(decide("accept_proposed_date"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(step(&decided, "clarify_delivery_date").status, "done");
    assert_eq!(
        decided.promised_delivery_date,
        waiting.projected_delivery_date
    );
    assert!(!decided.at_risk, "the agreed date is met");
    let confirm: v1::ConfirmOrder = order_commands
        .next_of_type(v1::ConfirmOrder::TYPE_NAME, WAIT)
        .await
        .unwrap()
        .decode()
        .unwrap();
    assert_eq!(
        confirm.promised_delivery_date,
        waiting.projected_delivery_date
    );

    let again = client.decide(decide("cancel_order")).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    saga.stop().await;
}

#[tokio::test]
async fn an_unanswered_decision_is_reminded_then_parks_the_saga() {
    gendan_telemetry::init_for_tests();
    let (db, nats) = (
        TestDb::create().await.unwrap(),
        TestNats::start().await.unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let saga = start(&db, &nats, &clock).await;
    let bus = Bus::connect(&nats.url, "test").await.unwrap();
    let client = saga.client().await;
    let mut events = SubjectReader::open(&nats.url, streams::EVENTS, "gendan.evt.saga.>")
        .await
        .unwrap();
    let order_id = uuid::Uuid::now_v7().to_string();
    let order = sample_order(&order_id);
    order_created(&bus, &order_id, order.clone()).await;
    let late = gendan_proto::date_from_str(&order.requested_delivery_date).unwrap()
        + chrono::Duration::days(5);
    publish_event(
        &bus,
        "production",
        &order_id,
        &capacity(&order_id, late, false),
    )
    .await;
    estimated(&bus, &order_id).await;
    let first = events
        .next_of_type(v1::DecisionRequested::TYPE_NAME, WAIT)
        .await
        .unwrap();
    assert!(!first.decode::<v1::DecisionRequested>().unwrap().reminder);

    clock.advance(chrono::Duration::minutes(61));
    let reminder = events
        .next_of_type(v1::DecisionRequested::TYPE_NAME, WAIT)
        .await
        .unwrap();
    assert!(reminder.decode::<v1::DecisionRequested>().unwrap().reminder);

    clock.advance(chrono::Duration::minutes(61));
    let stalled = wait_for(&client, &order_id, "stalled on the decision", |s| {
        s.status == "stalled"
    })
    .await;
    assert!(
        stalled
            .stalled_reason
            .contains("delivery_date decision unanswered"),
        "{}",
        stalled.stalled_reason
    );
    assert_eq!(stalled.decisions[0].reminders, 1);
    saga.stop().await;
}

#[tokio::test]
async fn cancelling_compensates_what_was_done_and_a_failed_plan_parks_the_saga() {
    gendan_telemetry::init_for_tests();
    let (db, nats) = (
        TestDb::create().await.unwrap(),
        TestNats::start().await.unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let saga = start(&db, &nats, &clock).await;
    let bus = Bus::connect(&nats.url, "test").await.unwrap();
    let mut client = saga.client().await;
    let mut production =
        SubjectReader::open(&nats.url, streams::COMMANDS, "gendan.cmd.production.>")
            .await
            .unwrap();
    let order_id = uuid::Uuid::now_v7().to_string();
    order_created(&bus, &order_id, sample_order(&order_id)).await;
    let soon = Utc::now().date_naive() + chrono::Duration::days(10);
    publish_event(
        &bus,
        "production",
        &order_id,
        &capacity(&order_id, soon, true),
    )
    .await;
    estimated(&bus, &order_id).await;
    publish_event(
        &bus,
        "orders",
        &order_id,
        &v1::OrderConfirmed {
            revision: 0,
            order_id: order_id.clone(),
            promised_delivery_date: String::new(),
        },
    )
    .await;
    production
        .next_of_type(v1::PlanWorkOrder::TYPE_NAME, WAIT)
        .await
        .unwrap();

    // The factory cannot plan it: an answer, not a silence.
    publish_event(
        &bus,
        "production",
        &order_id,
        &v1::WorkOrderPlanningFailed {
            order_id: order_id.clone(),
            reason: "SEW is full for 3 years".into(),
        },
    )
    .await;
    let stalled = wait_for(&client, &order_id, "stalled on planning", |s| {
        s.status == "stalled"
    })
    .await;
    assert!(
        step(&stalled, "plan_production")
            .last_error
            .contains("SEW is full")
    );

    // Capacity was found after all; the operator retries and the plan lands.
    client
        .retry_step(v1::StepRequest {
            order_id: order_id.clone(),
            step: "plan_production".into(),
            operator: "li.wei".into(),
            reason: "overtime agreed".into(),
        })
        .await
        .unwrap();
    production
        .next_of_type(v1::PlanWorkOrder::TYPE_NAME, WAIT)
        .await
        .unwrap();
    publish_event(
        &bus,
        "production",
        &order_id,
        &v1::WorkOrderPlanned {
            order_id: order_id.clone(),
            work_order_id: uuid::Uuid::now_v7().to_string(),
            planned_end: gendan_proto::date_to_string(soon),
            ..Default::default()
        },
    )
    .await;
    materials_and_receivable(&bus, &order_id).await;
    wait_for(&client, &order_id, "in production", |s| {
        s.phase == Phase::Production as i32
    })
    .await;

    // Cancel: the work order is stopped (compensation), the order ends cancelled.
    let invalid = client
        .cancel_order(v1::CancelOrderRequest {
            order_id: order_id.clone(),
            operator: "li.wei".into(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    assert!(invalid.message().contains("reason"));
    let cancelled = client
        .cancel_order(v1::CancelOrderRequest {
            order_id: order_id.clone(),
            operator: "li.wei".into(),
            reason: "customer withdrew the order".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(cancelled.phase, Phase::Cancelled as i32);
    // Everything that took effect is undone: the work order, the materials
    // and the receivable.
    let mut undone: Vec<(&str, &str)> = cancelled
        .compensations
        .iter()
        .map(|c| (c.step.as_str(), c.status.as_str()))
        .collect();
    undone.sort();
    assert_eq!(
        undone,
        vec![
            ("capacity_check", "sent"),
            ("open_receivable", "sent"),
            ("plan_production", "sent"),
            ("procure_materials", "sent")
        ]
    );
    let mut finance = SubjectReader::open(&nats.url, streams::COMMANDS, "gendan.cmd.finance.>")
        .await
        .unwrap();
    finance
        .next_of_type(v1::CancelReceivable::TYPE_NAME, WAIT)
        .await
        .unwrap();
    let stop: v1::CancelWorkOrder = production
        .next_of_type(v1::CancelWorkOrder::TYPE_NAME, WAIT)
        .await
        .unwrap()
        .decode()
        .unwrap();
    assert_eq!(stop.order_id, order_id);

    publish_event(
        &bus,
        "production",
        &order_id,
        &v1::WorkOrderCancelled {
            order_id: order_id.clone(),
            released_hours: 12.0,
            ..Default::default()
        },
    )
    .await;
    publish_event(
        &bus,
        "procurement",
        &order_id,
        &v1::MaterialsCancelled {
            order_id: order_id.clone(),
            ..Default::default()
        },
    )
    .await;
    publish_event(
        &bus,
        "finance",
        &order_id,
        &v1::ReceivableCancelled {
            order_id: order_id.clone(),
            ..Default::default()
        },
    )
    .await;
    publish_event(
        &bus,
        "production",
        &order_id,
        &v1::CapacityReleased {
            order_id: order_id.clone(),
            ..Default::default()
        },
    )
    .await;
    let done = wait_for(&client, &order_id, "compensations done", |s| {
        s.compensations.len() == 4 && s.compensations.iter().all(|c| c.status == "done")
    })
    .await;
    assert_eq!(done.status, "cancelled");
    let again = client
        .cancel_order(v1::CancelOrderRequest {
            order_id: order_id.clone(),
            operator: "x".into(),
            reason: "again".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    saga.stop().await;
}

#[tokio::test]
async fn production_past_its_projected_date_flags_the_order_at_risk() {
    gendan_telemetry::init_for_tests();
    let (db, nats) = (
        TestDb::create().await.unwrap(),
        TestNats::start().await.unwrap(),
    );
    let start_time = Utc::now();
    let clock = ManualClock::new(start_time);
    let saga = start(&db, &nats, &clock).await;
    let bus = Bus::connect(&nats.url, "test").await.unwrap();
    let client = saga.client().await;
    let order_id = uuid::Uuid::now_v7().to_string();
    let order = sample_order(&order_id);
    order_created(&bus, &order_id, order.clone()).await;
    let planned_end = start_time.date_naive() + chrono::Duration::days(2);
    publish_event(
        &bus,
        "production",
        &order_id,
        &capacity(&order_id, planned_end, true),
    )
    .await;
    estimated(&bus, &order_id).await;
    publish_event(
        &bus,
        "orders",
        &order_id,
        &v1::OrderConfirmed {
            revision: 0,
            order_id: order_id.clone(),
            // Room for inspection and packing after production, over a
            // weekend.
            promised_delivery_date: gendan_proto::date_to_string(
                planned_end + chrono::Duration::days(5),
            ),
        },
    )
    .await;
    publish_event(
        &bus,
        "production",
        &order_id,
        &v1::WorkOrderPlanned {
            order_id: order_id.clone(),
            planned_end: gendan_proto::date_to_string(planned_end),
            ..Default::default()
        },
    )
    .await;
    materials_and_receivable(&bus, &order_id).await;
    let producing = wait_for(&client, &order_id, "waiting for production", |s| {
        step(s, "production_completed").status == "waiting"
    })
    .await;
    assert!(!producing.at_risk);

    // Days pass with no completion from the MES.
    clock.advance(chrono::Duration::days(10));
    let late = wait_for(&client, &order_id, "flagged at risk", |s| s.at_risk).await;
    assert_eq!(
        late.status, "running",
        "overdue production is a risk, not a stall"
    );
    assert!(late.log.iter().any(|entry| entry.action == "overdue"));
    saga.stop().await;
}

#[tokio::test]
async fn the_whole_workflow_runs_through_twelve_phases_with_its_parallel_branches() {
    gendan_telemetry::init_for_tests();
    let (db, nats) = (
        TestDb::create().await.unwrap(),
        TestNats::start().await.unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let saga = start(&db, &nats, &clock).await;
    let bus = Bus::connect(&nats.url, "test").await.unwrap();
    let client = saga.client().await;
    let order_id = uuid::Uuid::now_v7().to_string();
    let id = order_id.clone();
    let today = Utc::now().date_naive();
    let day = |n: i64| gendan_proto::date_to_string(today + chrono::Duration::days(n));
    let replies = Replies {
        bus: bus.clone(),
        order_id: order_id.clone(),
    };
    order_created(&bus, &order_id, sample_order(&order_id)).await;

    // Review.
    // The factory can make it in 10 days; the order is confirmed for day 30.
    replies.reviewed(10, 30).await;
    // Confirmed: the terms ask for a deposit.
    replies
        .send(
            "finance",
            &v1::ReceivableOpened {
                order_id: id.clone(),
                deposit_required: true,
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "production",
            &v1::WorkOrderPlanned {
                order_id: id.clone(),
                planned_end: day(12),
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "procurement",
            &v1::MaterialsOrdered {
                order_id: id.clone(),
                expected_ready_date: day(3),
                ..Default::default()
            },
        )
        .await;

    // Materials and the deposit run side by side; production waits for both.
    let both = wait_for(
        &client,
        &order_id,
        "materials and deposit awaited together",
        |s| {
            step(s, "materials_ready").status == "waiting"
                && step(s, "deposit_received").status == "waiting"
        },
    )
    .await;
    assert_eq!(both.phase, Phase::Materials as i32);
    replies
        .send(
            "procurement",
            &v1::MaterialsReady {
                revision: 0,
                order_id: id.clone(),
                ready_on: day(3),
            },
        )
        .await;
    let still = wait_for(&client, &order_id, "materials in", |s| {
        step(s, "materials_ready").status == "done"
    })
    .await;
    assert_eq!(
        still.phase,
        Phase::Materials as i32,
        "production must wait for the deposit"
    );
    replies
        .send(
            "finance",
            &v1::DepositReceived {
                order_id: id.clone(),
                amount_minor: 15000,
                received_on: day(1),
            },
        )
        .await;
    wait_for(&client, &order_id, "in production", |s| {
        s.phase == Phase::Production as i32
    })
    .await;

    replies
        .send(
            "production",
            &v1::WorkOrderCompleted {
                order_id: id.clone(),
                completed_on: day(12),
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "quality",
            &v1::FinalInspectionOpened {
                order_id: id.clone(),
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "quality",
            &v1::FinalInspectionPassed {
                order_id: id.clone(),
                inspection_id: "i-1".into(),
                revision: 0,
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "logistics",
            &v1::PackingListReady {
                revision: 0,
                order_id: id.clone(),
                cartons: 4,
            },
        )
        .await;

    // Documents are prepared while packing is being checked.
    let packing = wait_for(
        &client,
        &order_id,
        "documents started during packing",
        |s| step(s, "prepare_documents").status == "waiting",
    )
    .await;
    assert_eq!(packing.phase, Phase::Packing as i32);
    assert_eq!(step(&packing, "packing_checked").status, "waiting");
    replies
        .send(
            "logistics",
            &v1::DocumentsReady {
                revision: 0,
                order_id: id.clone(),
                documents: vec!["commercial_invoice".into()],
            },
        )
        .await;
    replies
        .send(
            "logistics",
            &v1::PackingChecked {
                revision: 0,
                order_id: id.clone(),
                matches: true,
                mismatches: vec![],
            },
        )
        .await;
    replies
        .send(
            "logistics",
            &v1::ShipmentBooked {
                order_id: id.clone(),
                eta: day(25),
                etd: day(14),
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "logistics",
            &v1::Shipped {
                revision: 0,
                order_id: id.clone(),
                shipped_on: day(14),
                bill_of_lading: "BL-1".into(),
            },
        )
        .await;

    // The balance is invoiced at shipment, while the goods travel.
    let travelling = wait_for(
        &client,
        &order_id,
        "balance invoiced during shipping",
        |s| step(s, "invoice_at_shipment").status == "waiting",
    )
    .await;
    assert_eq!(travelling.phase, Phase::Shipping as i32);
    assert_eq!(travelling.projected_delivery_date, day(25));
    // The carrier now expects the goods two days later: the projection
    // follows its ETA.
    replies
        .send(
            "logistics",
            &v1::TrackingUpdated {
                order_id: id.clone(),
                status: "in transit".into(),
                location: "Suez".into(),
                eta: day(27),
                ..Default::default()
            },
        )
        .await;
    wait_for(&client, &order_id, "the carrier's ETA projected", |s| {
        s.projected_delivery_date == day(27)
    })
    .await;
    replies
        .send(
            "finance",
            &v1::InvoiceIssued {
                order_id: id.clone(),
                kind: "balance".into(),
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "logistics",
            &v1::Delivered {
                revision: 0,
                order_id: id.clone(),
                delivered_on: day(24),
                proof_of_delivery: "POD".into(),
            },
        )
        .await;
    wait_for(&client, &order_id, "awaiting acceptance", |s| {
        s.phase == Phase::Acceptance as i32
    })
    .await;
    replies
        .send(
            "orders",
            &v1::OrderAccepted {
                order_id: id.clone(),
                accepted_by: "buyer".into(),
                note: String::new(),
            },
        )
        .await;
    replies
        .send(
            "finance",
            &v1::OrderPaidInFull {
                order_id: id.clone(),
                paid_on: day(40),
            },
        )
        .await;
    // Finance closes the cost ledger first; then orders the order.
    wait_for(&client, &order_id, "closing the ledger", |s| {
        step(s, "close_cost_ledger").status == "waiting"
    })
    .await;
    replies
        .send(
            "finance",
            &v1::CostLedgerClosed {
                order_id: id.clone(),
                currency: "USD".into(),
                ..Default::default()
            },
        )
        .await;
    wait_for(&client, &order_id, "closing", |s| {
        step(s, "close_order").status == "waiting"
    })
    .await;
    replies
        .send("orders", &v1::OrderClosed { summary: None })
        .await;

    let done = wait_for(&client, &order_id, "completed", |s| s.status == "completed").await;
    assert_eq!(done.phase, Phase::Closed as i32);
    assert!(!done.at_risk);
    let phases: Vec<String> = done
        .log
        .iter()
        .filter(|entry| entry.action == "phase")
        .map(|entry| entry.detail.clone())
        .collect();
    assert_eq!(
        phases,
        vec![
            "received → review",
            "review → confirmed",
            "confirmed → materials",
            "materials → production",
            "production → final_inspection",
            "final_inspection → packing",
            "packing → documents",
            "documents → shipping",
            "shipping → acceptance",
            "acceptance → settlement",
            "settlement → closed",
        ]
    );
    assert!(
        done.steps.iter().all(|s| s.status == "done"
            || (matches!(
                s.step.as_str(),
                "clarify_delivery_date"
                    | "review_margin"
                    | "invoice_at_delivery"
                    | "plan_rework"
                    | "rework_done"
                    | "resolve_redelivery"
            ) && s.status == "skipped")),
        "{:?}",
        done.steps
            .iter()
            .map(|s| (&s.step, &s.status))
            .collect::<Vec<_>>()
    );
    saga.stop().await;
}

#[tokio::test]
async fn terms_payable_on_delivery_invoice_the_balance_at_delivery_not_at_shipment() {
    gendan_telemetry::init_for_tests();
    let (db, nats) = (
        TestDb::create().await.unwrap(),
        TestNats::start().await.unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let saga = start(&db, &nats, &clock).await;
    let bus = Bus::connect(&nats.url, "test").await.unwrap();
    let client = saga.client().await;
    let mut finance = SubjectReader::open(
        &nats.url,
        streams::COMMANDS,
        "gendan.cmd.finance.invoice_balance",
    )
    .await
    .unwrap();
    let order_id = uuid::Uuid::now_v7().to_string();
    let id = order_id.clone();
    let today = Utc::now().date_naive();
    let day = |n: i64| gendan_proto::date_to_string(today + chrono::Duration::days(n));
    let replies = Replies {
        bus: bus.clone(),
        order_id: order_id.clone(),
    };
    order_created(&bus, &order_id, sample_order(&order_id)).await;
    // The factory can make it in 5 days; the order is confirmed for day 30.
    replies.reviewed(5, 30).await;
    let on_delivery = v1::ReceivableOpened {
        order_id: id.clone(),
        deposit_required: false,
        installments: vec![v1::Installment {
            kind: "balance".into(),
            amount_minor: 50_000,
            trigger: "on_delivery".into(),
            due_days: 0,
            ..Default::default()
        }],
        ..Default::default()
    };
    replies.send("finance", &on_delivery).await;
    replies
        .send(
            "production",
            &v1::WorkOrderPlanned {
                order_id: id.clone(),
                planned_end: day(6),
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "procurement",
            &v1::MaterialsOrdered {
                order_id: id.clone(),
                expected_ready_date: day(1),
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "procurement",
            &v1::MaterialsReady {
                revision: 0,
                order_id: id.clone(),
                ready_on: day(1),
            },
        )
        .await;
    replies
        .send(
            "production",
            &v1::WorkOrderCompleted {
                order_id: id.clone(),
                completed_on: day(6),
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "quality",
            &v1::FinalInspectionOpened {
                order_id: id.clone(),
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "quality",
            &v1::FinalInspectionPassed {
                order_id: id.clone(),
                inspection_id: "i".into(),
                revision: 0,
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "logistics",
            &v1::PackingListReady {
                revision: 0,
                order_id: id.clone(),
                cartons: 1,
            },
        )
        .await;
    replies
        .send(
            "logistics",
            &v1::PackingChecked {
                revision: 0,
                order_id: id.clone(),
                matches: true,
                mismatches: vec![],
            },
        )
        .await;
    replies
        .send(
            "logistics",
            &v1::DocumentsReady {
                revision: 0,
                order_id: id.clone(),
                documents: vec![],
            },
        )
        .await;
    replies
        .send(
            "logistics",
            &v1::ShipmentBooked {
                order_id: id.clone(),
                etd: day(8),
                eta: day(10),
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "logistics",
            &v1::Shipped {
                revision: 0,
                order_id: id.clone(),
                shipped_on: day(8),
                bill_of_lading: "BL".into(),
            },
        )
        .await;

    let shipped = wait_for(&client, &order_id, "shipped", |s| {
        step(s, "shipped").status == "done"
    })
    .await;
    assert_eq!(step(&shipped, "invoice_at_shipment").status, "skipped");
    assert_eq!(step(&shipped, "invoice_at_delivery").status, "pending");
    replies
        .send(
            "logistics",
            &v1::Delivered {
                revision: 0,
                order_id: id.clone(),
                delivered_on: day(10),
                proof_of_delivery: "POD".into(),
            },
        )
        .await;
    let command: v1::InvoiceBalance = finance
        .next_of_type(v1::InvoiceBalance::TYPE_NAME, WAIT)
        .await
        .unwrap()
        .decode()
        .unwrap();
    assert_eq!(command.milestone, "delivery");
    assert_eq!(command.milestone_date, day(10));
    saga.stop().await;
}

#[tokio::test]
async fn a_failed_final_inspection_is_reworked_then_a_person_decides_and_the_register_shows_it() {
    gendan_telemetry::init_for_tests();
    let (db, nats) = (
        TestDb::create().await.unwrap(),
        TestNats::start().await.unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let saga = start(&db, &nats, &clock).await;
    let bus = Bus::connect(&nats.url, "test").await.unwrap();
    let mut client = saga.client().await;
    let mut quality = SubjectReader::open(&nats.url, streams::COMMANDS, "gendan.cmd.quality.>")
        .await
        .unwrap();
    let mut production =
        SubjectReader::open(&nats.url, streams::COMMANDS, "gendan.cmd.production.>")
            .await
            .unwrap();
    let order_id = uuid::Uuid::now_v7().to_string();
    let id = order_id.clone();
    let today = Utc::now().date_naive();
    let day = |n: i64| gendan_proto::date_to_string(today + chrono::Duration::days(n));
    let replies = Replies {
        bus: bus.clone(),
        order_id: order_id.clone(),
    };
    order_created(&bus, &order_id, sample_order(&order_id)).await;
    // The factory can make it in 5 days; the order is confirmed for day 30.
    replies.reviewed(5, 30).await;
    replies
        .send(
            "production",
            &v1::WorkOrderPlanned {
                order_id: id.clone(),
                planned_end: day(6),
                revision: 1,
                ..Default::default()
            },
        )
        .await;
    materials_and_receivable(&bus, &order_id).await;
    replies
        .send(
            "production",
            &v1::WorkOrderCompleted {
                order_id: id.clone(),
                completed_on: day(6),
                revision: 1,
                ..Default::default()
            },
        )
        .await;
    let inspect = |revision: u32| v1::FinalInspectionOpened {
        order_id: id.clone(),
        inspection_id: format!("i-{revision}"),
        revision,
        ..Default::default()
    };
    let fail = |revision: u32| v1::FinalInspectionFailed {
        order_id: id.clone(),
        inspection_id: format!("i-{revision}"),
        nonconformance_id: format!("nc-{revision}"),
        failures: revision,
        summary: "major 4 in 50 (AQL 2.5: Ac 3 Re 4)".into(),
        revision,
        defective_units: 4,
        sample_size: 50,
    };
    let request = quality
        .next_of_type(v1::RequestFinalInspection::TYPE_NAME, WAIT)
        .await
        .unwrap();
    let request =
        v1::RequestFinalInspection::decode(request.envelope().unwrap().payload.as_slice()).unwrap();
    assert_eq!(request.revision, 1);
    replies.send("quality", &inspect(1)).await;
    replies.send("quality", &fail(1)).await;

    // Nobody acts: production is asked for rework (revision 1) at once.
    let rework = production
        .next_of_type(v1::StartRework::TYPE_NAME, WAIT)
        .await
        .unwrap();
    let rework = v1::StartRework::decode(rework.envelope().unwrap().payload.as_slice()).unwrap();
    assert_eq!(
        (rework.revision, rework.nonconformance_id.as_str()),
        (1, "nc-1")
    );
    // The same failure delivered twice orders no second rework.
    replies.send("quality", &fail(1)).await;
    replies
        .send(
            "production",
            &v1::ReworkPlanned {
                order_id: id.clone(),
                revision: 1,
                planned_end: day(8),
                ..Default::default()
            },
        )
        .await;
    replies
        .send(
            "production",
            &v1::ReworkCompleted {
                order_id: id.clone(),
                revision: 1,
                completed_on: day(8),
                ..Default::default()
            },
        )
        .await;
    let again = quality
        .next_of_type(v1::RequestFinalInspection::TYPE_NAME, WAIT)
        .await
        .unwrap();
    let again =
        v1::RequestFinalInspection::decode(again.envelope().unwrap().payload.as_slice()).unwrap();
    assert_eq!(again.revision, 2, "the reworked lot is a new inspection");
    replies.send("quality", &inspect(2)).await;
    replies.send("quality", &fail(2)).await;

    // The second failure (the default limit) asks a person.
    let decided = eventually(WAIT, "final inspection decision", || {
        let mut client = client.clone();
        let order_id = order_id.clone();
        async move {
            let decisions = client
                .list_decisions(v1::ListDecisionsRequest {
                    order_id,
                    open_only: true,
                    limit: 10,
                })
                .await
                .ok()?
                .into_inner()
                .decisions;
            decisions
                .into_iter()
                .find(|d| d.decision_kind == v1::DecisionKind::FinalInspection as i32)
        }
    })
    .await
    .unwrap();
    assert!(!decided.exception_id.is_empty(), "joined to its exception");
    let saga_now = saga_of(&mut client, &order_id).await;
    assert_eq!(
        saga_now.status, "running",
        "waiting for a person, not stalled"
    );
    assert_eq!(step(&saga_now, "final_inspection_passed").failures, 2);
    client
        .decide(v1::DecideRequest {
            order_id: order_id.clone(),
            decision_id: decided.decision_id.clone(),
            answer: "concession".into(),
            operator: "buyer.chen".into(),
            comment: "customer accepts 4 minor marks".into(),
        })
        .await
        .unwrap();
    wait_for(&client, &order_id, "packing", |s| {
        s.phase == Phase::Packing as i32
    })
    .await;

    // The register: two failed inspections, both closed; the second by the
    // concession, with who decided.
    let register = client
        .list_exceptions(v1::ListExceptionsRequest {
            order_id: order_id.clone(),
            kind: v1::ExceptionKind::FinalInspectionFailed as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .exceptions;
    assert_eq!(register.len(), 2, "{register:#?}");
    assert!(register.iter().all(|e| e.closed_at.is_some()));
    assert_eq!(register[0].decision, "concession");
    assert_eq!(register[0].decided_by, "buyer.chen");
    assert_eq!(register[0].owner, v1::Department::Quality as i32);
    let one = client
        .get_exception(v1::GetExceptionRequest {
            exception_id: register[0].exception_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one, register[0]);
    let open = client
        .list_exceptions(v1::ListExceptionsRequest {
            order_id: order_id.clone(),
            state: v1::ExceptionState::Open as i32,
            kind: v1::ExceptionKind::FinalInspectionFailed as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .exceptions;
    assert!(open.is_empty());
    saga.stop().await;
}

#[tokio::test]
async fn list_exceptions_names_the_field_it_refuses() {
    gendan_telemetry::init_for_tests();
    let (db, nats) = (
        TestDb::create().await.unwrap(),
        TestNats::start().await.unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let saga = start(&db, &nats, &clock).await;
    let mut client = saga.client().await;
    let cases = [
        (
            v1::ListExceptionsRequest {
                order_id: "not-an-id".into(),
                ..Default::default()
            },
            "order_id",
        ),
        (
            v1::ListExceptionsRequest {
                kind: 999,
                ..Default::default()
            },
            "kind",
        ),
        (
            v1::ListExceptionsRequest {
                limit: 1001,
                ..Default::default()
            },
            "limit",
        ),
        (
            v1::ListExceptionsRequest {
                owner: -1,
                ..Default::default()
            },
            "owner",
        ),
    ];
    for (request, field) in cases {
        let status = client.list_exceptions(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains(field), "{}", status.message());
    }
    let missing = client
        .get_exception(v1::GetExceptionRequest {
            exception_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let bad = client
        .get_exception(v1::GetExceptionRequest {
            exception_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("exception_id"));
    saga.stop().await;
}
