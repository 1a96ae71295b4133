//! End to end: orders, production and the saga coordinator as separate
//! applications over real NATS and PostgreSQL, with the test playing the MES.

use std::time::Duration;

use gendan::demo::{self, Orders, Production};
use gendan_messaging::{Bus, streams};
use gendan_proto::TypeName;
use gendan_proto::v1::production_service_client::ProductionServiceClient;
use gendan_proto::v1::saga_service_client::SagaServiceClient;
use gendan_proto::v1::{self, Phase};
use gendan_tests::{SubjectReader, TestDb, TestNats, eventually, service_settings};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

struct Service {
    port: u16,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Service {
    /// Graceful stop.
    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }

    /// Like a crash: the task is dropped wherever it is.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn start_orders(db: &TestDb, nats: &TestNats) -> Service {
    let app = gendan_orders::Application::build(service_settings(db, nats, "orders"))
        .await
        .expect("orders starts");
    let (port, cancel) = (app.port(), CancellationToken::new());
    let token = cancel.clone();
    let task =
        tokio::spawn(async move { app.run_until_stopped(token).await.expect("orders runs") });
    Service { port, cancel, task }
}

async fn start_production(db: &TestDb, nats: &TestNats) -> Service {
    let app = gendan_production::Application::build(service_settings(db, nats, "production"))
        .await
        .expect("production starts");
    let (port, cancel) = (app.port(), CancellationToken::new());
    let token = cancel.clone();
    let task =
        tokio::spawn(async move { app.run_until_stopped(token).await.expect("production runs") });
    Service { port, cancel, task }
}

async fn start_saga(db: &TestDb, nats: &TestNats) -> Service {
    let app =
        gendan_saga::Application::build(service_settings(db, nats, "saga"), Default::default())
            .await
            .expect("saga starts");
    let (port, cancel) = (app.port(), CancellationToken::new());
    let token = cancel.clone();
    let task = tokio::spawn(async move {
        let _ = app.run_until_stopped(token).await;
    });
    Service { port, cancel, task }
}

struct System {
    db: TestDb,
    nats: TestNats,
    bus: Bus,
    orders: Service,
    production: Service,
    saga: Service,
    orders_client: Orders,
    production_client: Production,
}

async fn system() -> System {
    gendan_telemetry::init_for_tests();
    let db = TestDb::create().await.unwrap();
    let nats = TestNats::start().await.unwrap();
    let orders = start_orders(&db, &nats).await;
    let production = start_production(&db, &nats).await;
    let saga = start_saga(&db, &nats).await;
    let bus = Bus::connect(&nats.url, "test-mes").await.unwrap();
    let orders_client = demo::orders_client(demo::connect(orders.port).await.unwrap());
    let channel = demo::connect(production.port).await.unwrap();
    let production_client = demo::production_client(channel.clone());
    gendan_production::demo::seed_demo_catalog(&mut ProductionServiceClient::new(channel))
        .await
        .unwrap();
    System {
        db,
        nats,
        bus,
        orders,
        production,
        saga,
        orders_client,
        production_client,
    }
}

fn order_request(id: &str, product: &str, quantity: u32) -> v1::CreateOrderRequest {
    let requested = chrono::Utc::now().date_naive() + chrono::Duration::days(90);
    v1::CreateOrderRequest {
        client_request_id: format!("flow-{id}"),
        customer: "Nordwind GmbH".into(),
        lines: vec![v1::OrderLine {
            product: product.into(),
            spec: "navy, sizes S–XL".into(),
            quantity,
            unit_price_minor: 450,
        }],
        currency: "EUR".into(),
        requested_delivery_date: gendan_proto::date_to_string(requested),
        incoterm: "FOB".into(),
        payment_terms: "30% T/T deposit, 70% against B/L copy".into(),
        export: true,
    }
}

async fn wait_completed(client: &Orders, order_id: &str) -> v1::Order {
    eventually(WAIT, "workflow completed", || {
        let mut client = client.clone();
        let order_id = order_id.to_owned();
        async move {
            let order = client
                .get_order(v1::GetOrderRequest { order_id })
                .await
                .ok()?
                .into_inner();
            (order.workflow_status == "completed").then_some(order)
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn orders_flow_from_received_to_production_completed_in_one_trace() {
    let mut sys = system().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = tonic::Request::new(order_request("trace", "jacket-denim", 60));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    let created = sys
        .orders_client
        .create_order(request)
        .await
        .unwrap()
        .into_inner();
    let order_id = created.order.unwrap().order_id;
    let other = sys
        .orders_client
        .create_order(order_request("other", "tote-canvas", 300))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
        .order_id;

    for (i, id) in [&order_id, &other].into_iter().enumerate() {
        tokio::spawn(demo::play_mes(
            sys.bus.clone(),
            sys.production_client.clone(),
            id.clone(),
            i as u64,
        ));
    }
    let finished = wait_completed(&sys.orders_client, &order_id).await;
    wait_completed(&sys.orders_client, &other).await;
    assert_eq!(finished.phase, Phase::Production as i32);
    assert!(!finished.projected_delivery_date.is_empty());

    // The timeline tells the story in order.
    let timeline = sys
        .orders_client
        .get_timeline(v1::GetTimelineRequest {
            order_id: order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let types: Vec<&str> = timeline.iter().map(|e| e.r#type.as_str()).collect();
    let position = |name: &str| {
        types
            .iter()
            .position(|t| *t == name)
            .unwrap_or_else(|| panic!("{name} missing from the timeline: {types:?}"))
    };
    let story = [
        v1::OrderCreated::TYPE_NAME,
        v1::CapacityChecked::TYPE_NAME,
        v1::OrderConfirmed::TYPE_NAME,
        v1::WorkOrderPlanned::TYPE_NAME,
        v1::WorkOrderCompleted::TYPE_NAME,
        v1::SagaCompleted::TYPE_NAME,
    ];
    let positions: Vec<usize> = story.iter().map(|name| position(name)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of order: {types:?}"
    );
    let phases: Vec<i32> = timeline
        .iter()
        .filter(|e| e.r#type == v1::PhaseChanged::TYPE_NAME)
        .map(|e| e.summary.clone())
        .map(|summary| {
            // "Phase review → confirmed, projected delivery …": the target.
            let target = summary
                .split('→')
                .nth(1)
                .unwrap_or_default()
                .trim()
                .to_owned();
            [Phase::Review, Phase::Confirmed, Phase::Production]
                .into_iter()
                .find(|p| target.starts_with(p.short_name()))
                .map(|p| p as i32)
                .unwrap_or(-1)
        })
        .collect();
    assert_eq!(
        phases,
        vec![
            Phase::Review as i32,
            Phase::Confirmed as i32,
            Phase::Production as i32
        ],
        "{timeline:?}"
    );

    // One trace: the gRPC call's trace id is on every timeline entry, every
    // event header and every saga step.
    for entry in &timeline {
        assert_eq!(
            entry.trace_id, trace_id,
            "timeline entry {} has another trace",
            entry.r#type
        );
    }
    let mut events = SubjectReader::open(&sys.nats.url, streams::EVENTS, "gendan.evt.>")
        .await
        .unwrap();
    let mut seen = 0;
    while let Some(event) = events.next(Duration::from_millis(500)).await.unwrap() {
        if event.envelope().unwrap().order_id == order_id {
            let traceparent = event.header("traceparent").expect("traceparent header");
            assert_eq!(
                gendan_telemetry::trace_id_of(&traceparent),
                Some(trace_id),
                "{}",
                event.subject
            );
            seen += 1;
        }
    }
    assert!(seen >= story.len(), "only {seen} events for the order");
    let mut saga = SagaServiceClient::connect(format!("http://127.0.0.1:{}", sys.saga.port))
        .await
        .unwrap();
    let saga_view = saga
        .get_saga(v1::GetSagaRequest {
            order_id: order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saga_view.status, "completed");
    for step in &saga_view.steps {
        // The factory could make the requested date: no clarification.
        let expected = if step.step == "clarify_delivery_date" {
            "skipped"
        } else {
            "done"
        };
        assert_eq!(step.status, expected, "{}", step.step);
        assert_eq!(step.trace_id, trace_id, "saga step {}", step.step);
    }

    // Work order progress is visible with planned against actual.
    let work_order = sys
        .production_client
        .get_work_order(v1::GetWorkOrderRequest {
            order_id: order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(work_order.status, "completed");
    assert!(
        work_order
            .stages
            .iter()
            .all(|s| !s.actual_end.is_empty() && s.good_quantity > 0)
    );

    sys.saga.stop().await;
    sys.production.stop().await;
    sys.orders.stop().await;
    let _ = &sys.db;
}

#[tokio::test]
async fn a_saga_coordinator_killed_mid_flow_resumes_and_finishes() {
    let mut sys = system().await;
    let order_id = sys
        .orders_client
        .create_order(order_request("crash", "shirt-oxford", 400))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
        .order_id;
    // Let the workflow get going, then pull the plug on the coordinator.
    eventually(WAIT, "order in review or later", || {
        let mut client = sys.orders_client.clone();
        let order_id = order_id.clone();
        async move {
            let order = client
                .get_order(v1::GetOrderRequest { order_id })
                .await
                .ok()?
                .into_inner();
            (order.phase >= Phase::Review as i32).then_some(())
        }
    })
    .await
    .unwrap();
    sys.saga.kill().await;

    // The factory keeps working while the coordinator is down.
    let player = tokio::spawn(demo::play_mes(
        sys.bus.clone(),
        sys.production_client.clone(),
        order_id.clone(),
        7,
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    sys.saga = start_saga(&sys.db, &sys.nats).await;
    let finished = wait_completed(&sys.orders_client, &order_id).await;
    player.await.unwrap().unwrap();

    // Nothing was done twice: one work order, one completion on the timeline.
    let timeline = sys
        .orders_client
        .get_timeline(v1::GetTimelineRequest {
            order_id: order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(finished.phase, Phase::Production as i32, "{timeline:#?}");
    let count = |name: &str| timeline.iter().filter(|e| e.r#type == name).count();
    assert_eq!(count(v1::WorkOrderCompleted::TYPE_NAME), 1);
    assert_eq!(count(v1::SagaCompleted::TYPE_NAME), 1);
    sys.saga.stop().await;
    sys.production.stop().await;
    sys.orders.stop().await;
}

#[tokio::test]
async fn a_cancelled_order_stops_its_work_order_and_ends_cancelled() {
    let mut sys = system().await;
    let order_id = sys
        .orders_client
        .create_order(order_request("cancel", "jacket-denim", 200))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
        .order_id;
    let planned = eventually(WAIT, "work order planned", || {
        let mut production = sys.production_client.clone();
        let order_id = order_id.clone();
        async move {
            production
                .get_work_order(v1::GetWorkOrderRequest { order_id })
                .await
                .ok()
                .map(tonic::Response::into_inner)
        }
    })
    .await
    .unwrap();
    assert_eq!(planned.status, "planned");

    let mut saga = SagaServiceClient::connect(format!("http://127.0.0.1:{}", sys.saga.port))
        .await
        .unwrap();
    eventually(WAIT, "saga in production", || {
        let mut saga = saga.clone();
        let order_id = order_id.clone();
        async move {
            let view = saga
                .get_saga(v1::GetSagaRequest { order_id })
                .await
                .ok()?
                .into_inner();
            (view.phase == Phase::Production as i32).then_some(())
        }
    })
    .await
    .unwrap();
    saga.cancel_order(v1::CancelOrderRequest {
        order_id: order_id.clone(),
        operator: "li.wei".into(),
        reason: "customer withdrew the order".into(),
    })
    .await
    .unwrap();

    // Production stopped the work order; the compensation is logged done;
    // the order reads cancelled.
    eventually(WAIT, "work order cancelled", || {
        let mut production = sys.production_client.clone();
        let order_id = order_id.clone();
        async move {
            let work_order = production
                .get_work_order(v1::GetWorkOrderRequest { order_id })
                .await
                .ok()?
                .into_inner();
            (work_order.status == "cancelled").then_some(())
        }
    })
    .await
    .unwrap();
    let view = eventually(WAIT, "compensation done", || {
        let mut saga = saga.clone();
        let order_id = order_id.clone();
        async move {
            let view = saga
                .get_saga(v1::GetSagaRequest { order_id })
                .await
                .ok()?
                .into_inner();
            view.compensations
                .iter()
                .any(|c| c.step == "plan_production" && c.status == "done")
                .then_some(view)
        }
    })
    .await
    .unwrap();
    assert_eq!(view.status, "cancelled");
    let order = eventually(WAIT, "order cancelled", || {
        let mut orders = sys.orders_client.clone();
        let order_id = order_id.clone();
        async move {
            let order = orders
                .get_order(v1::GetOrderRequest { order_id })
                .await
                .ok()?
                .into_inner();
            (order.workflow_status == "cancelled").then_some(order)
        }
    })
    .await
    .unwrap();
    assert_eq!(order.phase, Phase::Cancelled as i32);

    // The MES reporting on a cancelled work order is turned away to the
    // dead-letter subject, not applied.
    let mut dead = SubjectReader::open(
        &sys.nats.url,
        streams::DEAD_LETTERS,
        "gendan.dlq.production-mes",
    )
    .await
    .unwrap();
    let stage = &planned.stages[0];
    let started = v1::MesStageStarted {
        order_id: order_id.clone(),
        product: stage.product.clone(),
        stage: stage.stage.clone(),
        at: None,
    };
    sys.bus
        .publish(&gendan_messaging::Outgoing::new(
            gendan_messaging::subjects::mes("stage_started"),
            "mes:test",
            &order_id,
            &started,
            &gendan_messaging::Cause::root(&order_id),
        ))
        .await
        .unwrap();
    let letter = dead.next(WAIT).await.unwrap().expect("a dead letter");
    assert!(
        letter
            .header("Gendan-Dlq-Reason")
            .unwrap()
            .contains("cancelled")
    );
    sys.saga.stop().await;
    sys.production.stop().await;
    sys.orders.stop().await;
}
