//! The orders service alone over real NATS and PostgreSQL, with the test
//! playing the saga: order intake and its validation, idempotent creates,
//! listing and paging, the `OrderCreated` event on the stream, the
//! `ConfirmOrder` command, and saga events moving the order and filling its
//! timeline (once per event, however often it is delivered); acceptance in
//! phase acceptance only, `CloseOrder` and its summary, the closed order
//! being read-only, customer notices and their webhook delivery (against a
//! small HTTP server of the test's own, failing once to show the retry),
//! to the customer's own URL when the customer master has one; the
//! time-and-action calendar the saga announces, kept at its latest version
//! and read back with each milestone's status. Orders are
//! for the harness's test customers ([`gendan_tests::TEST_CUSTOMERS`]);
//! the customer master itself is tested in `customers.rs`.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use chrono::Utc;
use gendan_messaging::{Bus, Cause, Outgoing, fact_id, streams};
use gendan_orders::{Application, WebhookSettings};
use gendan_proto::TypeName;
use gendan_proto::v1::order_service_client::OrderServiceClient;
use gendan_proto::v1::{
    self, AcceptOrderRequest, CloseOrder, ConfirmOrder, CostCategoryLine, CostLedgerClosed,
    CreateOrderRequest, CustomerNotice, Decision, DecisionRequested, Delivered,
    DeliveryRiskChanged, FinalInspectionFailed, FinalInspectionPassed, GetOrderRequest,
    GetSummaryRequest, GetTimelineRequest, ListNoticesRequest, ListOrdersRequest, MaterialsDelayed,
    OrderAccepted, OrderClosed, OrderConfirmed, OrderCreated, OrderLine, Phase, PhaseChanged,
    PurchaseOrderPlaced, RestateFact, SagaStalled, ShipmentBooked, Shipped, StatusReported,
    UnconvertedCost,
};
use gendan_tests::{
    SubjectReader, TestDb, TestNats, enter_test_customers, eventually, service_settings,
    test_customer,
};
use prost::Message as _;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);

type Client = OrderServiceClient<Channel>;

/// A running orders service on its own database and NATS server.
struct Orders {
    nats: TestNats,
    db: TestDb,
    /// The service's own pool, to see what a repeated command did.
    pool: sqlx::PgPool,
    port: u16,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<gendan_orders::Result<()>>,
}

impl Orders {
    async fn start() -> Orders {
        Orders::start_with(None).await
    }

    /// With the notice webhook configured (`None`: not configured).
    async fn start_with(webhook: Option<WebhookSettings>) -> Orders {
        gendan_telemetry::init_for_tests();
        let nats = TestNats::start().await.expect("nats starts");
        let db = TestDb::create().await.expect("database created");
        let mut app = Application::build(service_settings(&db, &nats, "orders"))
            .await
            .expect("orders starts");
        if let Some(webhook) = webhook {
            app = app.with_webhook(webhook).expect("webhook settings");
        }
        let port = app.port();
        let pool = app.pool().clone();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        enter_test_customers(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("test customers entered");
        Orders {
            nats,
            db,
            pool,
            port,
            cancel,
            task,
        }
    }

    async fn client(&self) -> Client {
        OrderServiceClient::connect(format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("orders grpc")
    }

    async fn bus(&self) -> Bus {
        Bus::connect(&self.nats.url, "test").await.expect("bus")
    }

    /// A pool on the test database (tables are schema-qualified).
    async fn pool(&self) -> PgPool {
        PgPool::connect(&self.db.url).await.expect("test pool")
    }

    async fn stop(self) {
        self.cancel.cancel();
        let result = self.task.await.expect("orders task joins");
        result.expect("orders stops cleanly");
    }
}

fn request(client_request_id: &str, customer: &str) -> CreateOrderRequest {
    let requested = Utc::now().date_naive() + chrono::Duration::days(30);
    CreateOrderRequest {
        client_request_id: client_request_id.to_owned(),
        customer: customer.to_owned(),
        lines: vec![
            OrderLine {
                product: "BRKT-100".to_owned(),
                spec: "zinc plated".to_owned(),
                quantity: 1000,
                unit_price_minor: 125,
            },
            OrderLine {
                product: "BRKT-200".to_owned(),
                spec: String::new(),
                quantity: 20,
                unit_price_minor: 5000,
            },
        ],
        currency: "USD".to_owned(),
        requested_delivery_date: gendan_proto::date_to_string(requested),
        incoterm: "FOB".to_owned(),
        payment_terms: "30% T/T deposit, 70% against B/L copy".to_owned(),
        export: true,
        // By name, as `customer`: resolved in the customer master.
        customer_id: String::new(),
    }
}

async fn create(client: &mut Client, client_request_id: &str, customer: &str) -> v1::Order {
    client
        .create_order(request(client_request_id, customer))
        .await
        .expect("create order")
        .into_inner()
        .order
        .expect("order in response")
}

async fn get(client: &mut Client, order_id: &str) -> v1::Order {
    client
        .get_order(GetOrderRequest {
            order_id: order_id.to_owned(),
        })
        .await
        .expect("get order")
        .into_inner()
}

async fn timeline(client: &mut Client, order_id: &str) -> Vec<v1::TimelineEntry> {
    client
        .get_timeline(GetTimelineRequest {
            order_id: order_id.to_owned(),
        })
        .await
        .expect("get timeline")
        .into_inner()
        .entries
}

async fn publish_saga_event<M: prost::Message + TypeName>(
    bus: &Bus,
    order_id: &str,
    payload: &M,
) -> Outgoing {
    let message = Outgoing::event("saga", order_id, payload, &Cause::root(order_id));
    bus.publish(&message).await.expect("publish");
    message
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count query")
}

#[tokio::test]
async fn create_get_and_list_with_filters_and_pages() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;

    let response = client
        .create_order(request("erp:1", "Acme"))
        .await
        .expect("create")
        .into_inner();
    assert!(response.created);
    let first = response.order.expect("order");
    assert_eq!(first.phase, Phase::Received as i32);
    assert_eq!(first.workflow_status, "running");
    assert_eq!(first.total_minor, 1000 * 125 + 20 * 5000);
    assert_eq!(first.lines.len(), 2);
    assert_eq!(
        uuid::Uuid::parse_str(&first.order_id)
            .expect("uuid")
            .get_version_num(),
        7
    );
    assert_eq!(get(&mut client, &first.order_id).await, first);

    let mut created = vec![first.order_id.clone()];
    for (n, customer) in ["Acme", "Bolt GmbH", "Acme", "Bolt GmbH"]
        .iter()
        .enumerate()
    {
        created.push(
            create(&mut client, &format!("erp:{}", n + 2), customer)
                .await
                .order_id,
        );
    }

    // All of them, two per page, newest first, each exactly once.
    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_orders(ListOrdersRequest {
                page_size: 2,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        pages += 1;
        assert!(page.orders.len() <= 2);
        seen.extend(page.orders.into_iter().map(|o| o.order_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let bolt = client
        .list_orders(ListOrdersRequest {
            customer: "Bolt GmbH".to_owned(),
            ..Default::default()
        })
        .await
        .expect("list by customer")
        .into_inner();
    assert_eq!(bolt.orders.len(), 2);
    assert!(bolt.orders.iter().all(|o| o.customer == "Bolt GmbH"));
    assert!(bolt.next_page_token.is_empty());

    // The saga moves one order to review and flags another at risk.
    let bus = orders.bus().await;
    publish_saga_event(
        &bus,
        &created[1],
        &PhaseChanged {
            order_id: created[1].clone(),
            from: Phase::Received as i32,
            to: Phase::Review as i32,
            projected_delivery_date: String::new(),
        },
    )
    .await;
    publish_saga_event(
        &bus,
        &created[2],
        &DeliveryRiskChanged {
            order_id: created[2].clone(),
            at_risk: true,
            promised_delivery_date: "2030-01-10".to_owned(),
            projected_delivery_date: "2030-01-20".to_owned(),
            reason: "press line down".to_owned(),
            risk_changed: true,
        },
    )
    .await;
    let in_review = eventually(WAIT, "an order in review", || {
        let mut client = client.clone();
        async move {
            let list = client
                .list_orders(ListOrdersRequest {
                    phase: Phase::Review as i32,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            (!list.orders.is_empty()).then_some(list.orders)
        }
    })
    .await
    .expect("phase filter");
    assert_eq!(in_review.len(), 1);
    assert_eq!(in_review[0].order_id, created[1]);

    let at_risk = eventually(WAIT, "an order at risk", || {
        let mut client = client.clone();
        async move {
            let list = client
                .list_orders(ListOrdersRequest {
                    at_risk_only: true,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            (!list.orders.is_empty()).then_some(list.orders)
        }
    })
    .await
    .expect("risk filter");
    assert_eq!(at_risk.len(), 1);
    assert_eq!(at_risk[0].order_id, created[2]);
    assert_eq!(at_risk[0].projected_delivery_date, "2030-01-20");

    // The saga's register opens an exception on the order: the tracking list
    // shows it until it is closed (a repeat changes nothing).
    let overdue = gendan_proto::v1::OrderException {
        exception_id: "0190a0b0-0000-7000-8000-00000000e001".to_owned(),
        order_id: created[2].clone(),
        kind: gendan_proto::v1::ExceptionKind::PaymentOverdue as i32,
        ..Default::default()
    };
    let opened = gendan_proto::v1::ExceptionOpened {
        exception: Some(overdue.clone()),
    };
    publish_saga_event(&bus, &created[2], &opened).await;
    publish_saga_event(&bus, &created[2], &opened).await;
    let shown = eventually(WAIT, "the open exception on the list", || {
        let mut client = client.clone();
        let id = created[2].clone();
        async move {
            let order = client
                .get_order(GetOrderRequest { order_id: id })
                .await
                .ok()?
                .into_inner();
            (!order.open_exceptions.is_empty()).then_some(order.open_exceptions)
        }
    })
    .await
    .expect("open exceptions");
    assert_eq!(shown, ["payment_overdue"]);
    let with_exceptions = client
        .list_orders(ListOrdersRequest {
            exception_open_only: true,
            ..Default::default()
        })
        .await
        .expect("list with an open exception")
        .into_inner();
    let ids: Vec<&str> = with_exceptions
        .orders
        .iter()
        .map(|o| o.order_id.as_str())
        .collect();
    assert_eq!(ids, [created[2].as_str()]);

    // Most days late first, paged with tokens of their own: the order
    // projected past its promise leads, and every order comes once.
    let mut by_slip = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_orders(ListOrdersRequest {
                sort: v1::OrderSort::Slip as i32,
                page_size: 2,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("list by slip")
            .into_inner();
        by_slip.extend(page.orders.into_iter().map(|o| (o.order_id, o.slip_days)));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(by_slip[0].0, created[2]);
    assert!(by_slip[0].1 > 0, "{by_slip:?}");
    assert!(by_slip.windows(2).all(|w| w[0].1 >= w[1].1), "{by_slip:?}");
    let listed: HashSet<&String> = by_slip.iter().map(|(id, _)| id).collect();
    assert_eq!(listed, created.iter().collect::<HashSet<_>>());
    let first_page = client
        .list_orders(ListOrdersRequest {
            sort: v1::OrderSort::Slip as i32,
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("list by slip")
        .into_inner();
    let mixed = client
        .list_orders(ListOrdersRequest {
            page_token: first_page.next_page_token,
            ..Default::default()
        })
        .await
        .expect_err("a slip token on the newest-first list");
    assert_eq!(mixed.code(), Code::InvalidArgument);
    assert!(mixed.message().contains("page_token"), "{mixed:?}");
    let unknown = client
        .list_orders(ListOrdersRequest {
            sort: 9,
            ..Default::default()
        })
        .await
        .expect_err("an unknown sort");
    assert!(unknown.message().contains("sort"), "{unknown:?}");
    let closed = gendan_proto::v1::ExceptionClosed {
        exception: Some(overdue),
    };
    publish_saga_event(&bus, &created[2], &closed).await;
    eventually(WAIT, "the closed exception off the list", || {
        let mut client = client.clone();
        let id = created[2].clone();
        async move {
            let order = client
                .get_order(GetOrderRequest { order_id: id })
                .await
                .ok()?
                .into_inner();
            order.open_exceptions.is_empty().then_some(())
        }
    })
    .await
    .expect("closed");

    let bad_token = client
        .list_orders(ListOrdersRequest {
            page_token: "not-a-token".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("bad token");
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    assert!(bad_token.message().contains("page_token"), "{bad_token:?}");

    orders.stop().await;
}

#[tokio::test]
async fn a_retried_create_returns_the_first_order_and_writes_nothing() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let pool = orders.pool().await;

    let first = client
        .create_order(request("retry-1", "Acme"))
        .await
        .expect("create")
        .into_inner();
    assert!(first.created);
    let again = client
        .create_order(request("retry-1", "Acme"))
        .await
        .expect("retry")
        .into_inner();
    assert!(!again.created);
    assert_eq!(again.order, first.order);

    // Concurrent retries of a new request: one order, one creator.
    let calls = (0..8).map(|_| {
        let mut client = client.clone();
        async move {
            client
                .create_order(request("retry-2", "Bolt GmbH"))
                .await
                .expect("concurrent create")
                .into_inner()
        }
    });
    let responses = futures::future::join_all(calls).await;
    let ids: HashSet<String> = responses
        .iter()
        .map(|r| r.order.as_ref().expect("order").order_id.clone())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(responses.iter().filter(|r| r.created).count(), 1);

    assert_eq!(count(&pool, "SELECT count(*) FROM orders.orders").await, 2);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM orders.create_requests").await,
        2
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM orders.timeline WHERE type = 'gendan.v1.OrderCreated'"
        )
        .await,
        2
    );

    orders.stop().await;
}

#[tokio::test]
async fn invalid_requests_name_the_field_and_store_nothing() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let pool = orders.pool().await;

    type Breaker = fn(&mut CreateOrderRequest);
    let cases: Vec<(&str, Breaker)> = vec![
        ("client_request_id", |r| r.client_request_id = String::new()),
        ("client_request_id", |r| {
            r.client_request_id = "has spaces".to_owned()
        }),
        // Neither an id nor a name: the id is what is missing.
        ("customer_id", |r| r.customer = "  ".to_owned()),
        ("customer_id", |r| {
            r.customer_id = "no spaces allowed".to_owned()
        }),
        ("customer_id", |r| r.customer_id = "NOPE".to_owned()),
        ("customer", |r| r.customer = "Nobody Ltd".to_owned()),
        ("lines", |r| r.lines.clear()),
        ("lines[0].product", |r| r.lines[0].product = String::new()),
        ("lines[1].quantity", |r| r.lines[1].quantity = 0),
        ("lines[1].unit_price_minor", |r| {
            r.lines[1].unit_price_minor = -5
        }),
        ("lines[0].unit_price_minor", |r| {
            r.lines[0].unit_price_minor = i64::MAX
        }),
        ("currency", |r| r.currency = "usd".to_owned()),
        ("currency", |r| r.currency = "ABC".to_owned()),
        ("requested_delivery_date", |r| {
            r.requested_delivery_date = "2026-02-30".to_owned()
        }),
        ("requested_delivery_date", |r| {
            r.requested_delivery_date = "2001-01-01".to_owned()
        }),
        ("incoterm", |r| r.incoterm = "DDU".to_owned()),
        ("payment_terms", |r| r.payment_terms = "p".repeat(201)),
    ];
    for (n, (field, breaker)) in cases.into_iter().enumerate() {
        let mut bad = request(&format!("bad-{n}"), "Acme");
        breaker(&mut bad);
        let status = client
            .create_order(bad)
            .await
            .expect_err("invalid request refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().contains(field),
            "{field} not named in {:?}",
            status.message()
        );
    }
    for table in [
        "SELECT count(*) FROM orders.orders",
        "SELECT count(*) FROM orders.order_lines",
        "SELECT count(*) FROM orders.create_requests",
        "SELECT count(*) FROM orders.timeline",
        "SELECT count(*) FROM orders.outbox",
    ] {
        assert_eq!(count(&pool, table).await, 0, "{table}");
    }

    let malformed = client
        .get_order(GetOrderRequest {
            order_id: "order-1".to_owned(),
        })
        .await
        .expect_err("malformed id");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(malformed.message().contains("order_id"));

    let unknown_id = uuid::Uuid::now_v7().to_string();
    let unknown = client
        .get_order(GetOrderRequest {
            order_id: unknown_id.clone(),
        })
        .await
        .expect_err("unknown id");
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains(&unknown_id));
    let no_timeline = client
        .get_timeline(GetTimelineRequest {
            order_id: unknown_id,
        })
        .await
        .expect_err("unknown timeline");
    assert_eq!(no_timeline.code(), Code::NotFound);

    orders.stop().await;
}

#[tokio::test]
async fn order_created_is_published_with_its_event_id_and_trace() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let mut reader = SubjectReader::open(
        &orders.nats.url,
        streams::EVENTS,
        "gendan.evt.orders.order_created",
    )
    .await
    .expect("reader");

    let order = create(&mut client, "trace-1", "Acme").await;
    let seen = reader
        .next_of_type(OrderCreated::TYPE_NAME, WAIT)
        .await
        .expect("OrderCreated on the stream");
    assert_eq!(seen.subject, "gendan.evt.orders.order_created");
    let envelope = seen.envelope().expect("envelope");
    assert_eq!(envelope.order_id, order.order_id);
    assert_eq!(envelope.source, "orders");
    assert_eq!(envelope.correlation_id, order.order_id);
    assert_eq!(
        seen.header("Nats-Msg-Id").as_deref(),
        Some(envelope.event_id.as_str())
    );
    let traceparent = seen.header("traceparent").expect("traceparent header");
    let trace_id = gendan_telemetry::trace_id_of(&traceparent).expect("valid traceparent");
    let payload: OrderCreated = seen.decode().expect("payload");
    assert_eq!(payload.order.as_ref(), Some(&order));

    // The first timeline entry is that event, with the same trace.
    let entries = timeline(&mut client, &order.order_id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].event_id, envelope.event_id);
    assert_eq!(entries[0].r#type, OrderCreated::TYPE_NAME);
    assert_eq!(entries[0].trace_id, trace_id);
    assert!(
        entries[0].summary.starts_with("Order received from Acme"),
        "{}",
        entries[0].summary
    );

    orders.stop().await;
}

#[tokio::test]
async fn confirm_order_answers_once_and_re_announces_on_repeat() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    let mut confirmed = SubjectReader::open(
        &orders.nats.url,
        streams::EVENTS,
        "gendan.evt.orders.order_confirmed",
    )
    .await
    .expect("reader");

    let order = create(&mut client, "confirm-1", "Acme").await;
    let id = order.order_id.clone();
    let command = Outgoing::command(
        "test",
        "orders",
        &id,
        &ConfirmOrder {
            revision: 0,
            order_id: id.clone(),
            promised_delivery_date: "2030-03-01".to_owned(),
        },
        &Cause::root(&id),
    );
    bus.publish(&command).await.expect("send ConfirmOrder");

    let seen = confirmed
        .next_of_type(OrderConfirmed::TYPE_NAME, WAIT)
        .await
        .expect("OrderConfirmed");
    let reply: OrderConfirmed = seen.decode().expect("payload");
    assert_eq!(reply.order_id, id);
    assert_eq!(reply.promised_delivery_date, "2030-03-01");
    assert_eq!(
        seen.envelope().expect("envelope").causation_id,
        command.envelope.event_id
    );

    let entries = timeline(&mut client, &id).await;
    let confirmation = entries
        .iter()
        .find(|e| e.r#type == OrderConfirmed::TYPE_NAME)
        .expect("confirmation on the timeline");
    assert_eq!(
        confirmation.summary,
        "Order confirmed: promised delivery 2030-03-01"
    );

    // The saga re-sends (its reply was late): the same fact is announced
    // again under the same event id (the bus drops it), and the stored
    // date stays.
    gendan_tests::repeat_command(
        &bus,
        &orders.pool,
        "orders",
        &id,
        &ConfirmOrder {
            revision: 0,
            order_id: id.clone(),
            promised_delivery_date: "2030-04-01".to_owned(),
        },
    )
    .await
    .expect("re-sent ConfirmOrder handled");
    let confirmations = timeline(&mut client, &id)
        .await
        .into_iter()
        .filter(|e| e.r#type == OrderConfirmed::TYPE_NAME)
        .count();
    assert_eq!(confirmations, 1, "one confirmation on the timeline");

    // A command for an order nobody created is dead-lettered.
    let mut dead = SubjectReader::open(
        &orders.nats.url,
        streams::DEAD_LETTERS,
        "gendan.dlq.orders-commands",
    )
    .await
    .expect("dlq reader");
    let stranger = uuid::Uuid::now_v7().to_string();
    bus.publish(&Outgoing::command(
        "test",
        "orders",
        &stranger,
        &ConfirmOrder {
            revision: 0,
            order_id: stranger.clone(),
            promised_delivery_date: "2030-03-01".to_owned(),
        },
        &Cause::root(&stranger),
    ))
    .await
    .expect("send ConfirmOrder for unknown order");
    let dead_letter = dead
        .next(WAIT)
        .await
        .expect("dlq read")
        .expect("dead letter");
    assert_eq!(dead_letter.envelope().expect("envelope").order_id, stranger);
    let reason = dead_letter.header("Gendan-Dlq-Reason").unwrap_or_default();
    assert!(reason.contains("unknown order"), "{reason}");

    orders.stop().await;
}

#[tokio::test]
async fn saga_events_move_the_order_and_are_recorded_once() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    let order = create(&mut client, "saga-1", "Acme").await;
    let id = order.order_id.clone();

    publish_saga_event(
        &bus,
        &id,
        &PhaseChanged {
            order_id: id.clone(),
            from: Phase::Received as i32,
            to: Phase::Confirmed as i32,
            projected_delivery_date: "2030-02-01".to_owned(),
        },
    )
    .await;
    let moved = eventually(WAIT, "phase confirmed", || {
        let mut client = client.clone();
        let id = id.clone();
        async move {
            let order = get(&mut client, &id).await;
            (order.phase == Phase::Confirmed as i32).then_some(order)
        }
    })
    .await
    .expect("phase moves");
    assert_eq!(moved.projected_delivery_date, "2030-02-01");

    // A late PhaseChanged to an earlier phase, delivered twice under two
    // Nats-Msg-Id values: recorded once, and the order does not move back.
    let late = Outgoing::event(
        "saga",
        &id,
        &PhaseChanged {
            order_id: id.clone(),
            from: Phase::Received as i32,
            to: Phase::Review as i32,
            projected_delivery_date: String::new(),
        },
        &Cause::root(&id),
    );
    let js = bus.jetstream();
    for copy in ["copy-a", "copy-b"] {
        js.send_publish(
            late.subject.clone(),
            PublishMessage::build()
                .payload(late.envelope.encode_to_vec().into())
                .message_id(copy),
        )
        .await
        .expect("publish copy")
        .await
        .expect("copy acknowledged");
    }
    // Then a stall: once it is on the timeline, both copies were handled.
    let stalled = publish_saga_event(
        &bus,
        &id,
        &SagaStalled {
            order_id: id.clone(),
            step: "check_capacity".to_owned(),
            reason: "no reply after 3 attempts".to_owned(),
        },
    )
    .await;
    let entries = eventually(WAIT, "stall on the timeline", || {
        let mut client = client.clone();
        let id = id.clone();
        let stall_id = stalled.envelope.event_id.clone();
        async move {
            let entries = timeline(&mut client, &id).await;
            entries
                .iter()
                .any(|e| e.event_id == stall_id)
                .then_some(entries)
        }
    })
    .await
    .expect("stall recorded");
    let copies = entries
        .iter()
        .filter(|e| e.event_id == late.envelope.event_id)
        .count();
    assert_eq!(copies, 1, "{entries:#?}");
    let summaries: Vec<&str> = entries.iter().map(|e| e.summary.as_str()).collect();
    assert!(
        summaries.contains(&"Phase received → confirmed, projected delivery 2030-02-01"),
        "{summaries:?}"
    );
    assert!(
        summaries.contains(&"Workflow stalled at step check_capacity: no reply after 3 attempts"),
        "{summaries:?}"
    );
    assert!(
        entries
            .iter()
            .all(|e| e.source == "orders" || e.source == "saga")
    );

    let now = get(&mut client, &id).await;
    assert_eq!(now.phase, Phase::Confirmed as i32, "never moves back");
    assert_eq!(now.workflow_status, "stalled");

    // Events about orders we never created are ignored, not dead-lettered.
    let stranger = uuid::Uuid::now_v7().to_string();
    publish_saga_event(
        &bus,
        &stranger,
        &SagaStalled {
            order_id: stranger.clone(),
            ..Default::default()
        },
    )
    .await;
    let pool = orders.pool().await;
    eventually(WAIT, "stranger's event handled", || {
        let pool = pool.clone();
        async move {
            let handled: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM orders.inbox WHERE consumer = 'orders-timeline'",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            (handled >= 5).then_some(())
        }
    })
    .await
    .expect("inbox");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM orders.timeline t \
             WHERE NOT EXISTS (SELECT 1 FROM orders.orders o WHERE o.order_id = t.order_id)"
        )
        .await,
        0
    );

    orders.stop().await;
}

/// Publishes `payload` as an event of `source` (`gendan.evt.<source>.*`).
async fn publish_event<M: prost::Message + TypeName>(
    bus: &Bus,
    source: &str,
    order_id: &str,
    payload: &M,
) -> Outgoing {
    let message = Outgoing::event(source, order_id, payload, &Cause::root(order_id));
    bus.publish(&message).await.expect("publish");
    message
}

async fn send_close(bus: &Bus, order_id: &str) -> Outgoing {
    let command = Outgoing::command(
        "test",
        "orders",
        order_id,
        &CloseOrder {
            order_id: order_id.to_owned(),
            ..Default::default()
        },
        &Cause::root(order_id),
    );
    bus.publish(&command).await.expect("send CloseOrder");
    command
}

/// Waits until the event `message` is on the order's timeline (so every
/// event published before it was handled too: one consumer, stream order).
async fn wait_recorded(client: &Client, order_id: &str, message: &Outgoing) {
    let event_id = message.envelope.event_id.clone();
    eventually(WAIT, "event on the timeline", || {
        let mut client = client.clone();
        let order_id = order_id.to_owned();
        let event_id = event_id.clone();
        async move {
            let entries = timeline(&mut client, &order_id).await;
            entries.iter().any(|e| e.event_id == event_id).then_some(())
        }
    })
    .await
    .expect("event recorded");
}

/// Publishes a saga PhaseChanged and waits until the order shows `to`.
async fn move_to(client: &Client, bus: &Bus, order_id: &str, from: Phase, to: Phase) {
    let moved = publish_saga_event(
        bus,
        order_id,
        &PhaseChanged {
            order_id: order_id.to_owned(),
            from: from as i32,
            to: to as i32,
            projected_delivery_date: String::new(),
        },
    )
    .await;
    wait_recorded(client, order_id, &moved).await;
    let mut client = client.clone();
    assert_eq!(get(&mut client, order_id).await.phase, to as i32);
}

fn accept_request(order_id: &str, accepted_by: &str) -> AcceptOrderRequest {
    AcceptOrderRequest {
        order_id: order_id.to_owned(),
        accepted_by: accepted_by.to_owned(),
        note: "1000 brackets received in good order".to_owned(),
    }
}

async fn notices(client: &mut Client, order_id: &str) -> Vec<CustomerNotice> {
    client
        .list_notices(ListNoticesRequest {
            order_id: order_id.to_owned(),
        })
        .await
        .expect("list notices")
        .into_inner()
        .notices
}

#[tokio::test]
async fn acceptance_only_in_phase_acceptance_and_only_once() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    let pool = orders.pool().await;
    let mut accepted_events = SubjectReader::open(
        &orders.nats.url,
        streams::EVENTS,
        "gendan.evt.orders.order_accepted",
    )
    .await
    .expect("reader");
    let order = create(&mut client, "accept-1", "Acme").await;
    let id = order.order_id.clone();

    // Invalid input names the field and writes nothing.
    let cases = [
        ("order_id", accept_request("", "J. Smith")),
        ("order_id", accept_request("PO-77", "J. Smith")),
        ("accepted_by", accept_request(&id, "   ")),
        ("accepted_by", accept_request(&id, &"x".repeat(201))),
        (
            "note",
            AcceptOrderRequest {
                note: "x".repeat(2001),
                ..accept_request(&id, "J. Smith")
            },
        ),
    ];
    for (field, bad) in cases {
        let status = client.accept_order(bad).await.expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    let unknown = client
        .accept_order(accept_request(
            &uuid::Uuid::now_v7().to_string(),
            "J. Smith",
        ))
        .await
        .expect_err("unknown order");
    assert_eq!(unknown.code(), Code::NotFound);

    // Not before delivery: the order is still received, then shipping.
    let early = client
        .accept_order(accept_request(&id, "J. Smith"))
        .await
        .expect_err("too early");
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(early.message().contains("phase received"), "{early:?}");
    move_to(&client, &bus, &id, Phase::Received, Phase::Shipping).await;
    let still_early = client
        .accept_order(accept_request(&id, "J. Smith"))
        .await
        .expect_err("still too early");
    assert_eq!(still_early.code(), Code::FailedPrecondition);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM orders.orders WHERE accepted_at IS NOT NULL"
        )
        .await,
        0
    );

    // Asked again before delivery, orders says what acceptance waits for.
    let asked = RestateFact {
        order_id: id.clone(),
        step: "customer_acceptance".to_owned(),
        awaited: OrderAccepted::TYPE_NAME.to_owned(),
        revision: 0,
    };
    let mut statuses = SubjectReader::open(
        &orders.nats.url,
        streams::EVENTS,
        "gendan.evt.orders.status_reported",
    )
    .await
    .expect("reader");
    gendan_tests::repeat_command(&bus, &orders.pool, "orders", &id, &asked)
        .await
        .expect("RestateFact handled");
    let reported: StatusReported = statuses
        .next_of_type(StatusReported::TYPE_NAME, WAIT)
        .await
        .expect("StatusReported on the stream")
        .decode()
        .expect("payload");
    assert_eq!(
        (reported.step.as_str(), reported.status.as_str()),
        (
            "customer_acceptance",
            "phase shipping: the goods are not delivered yet"
        )
    );

    move_to(&client, &bus, &id, Phase::Shipping, Phase::Acceptance).await;
    let accepted = client
        .accept_order(accept_request(&id, " J. Smith (Acme QA) "))
        .await
        .expect("accepted")
        .into_inner();
    assert_eq!(accepted.order_id, id);
    assert_eq!(accepted.phase, Phase::Acceptance as i32);

    let seen = accepted_events
        .next_of_type(OrderAccepted::TYPE_NAME, WAIT)
        .await
        .expect("OrderAccepted on the stream");
    let event: OrderAccepted = seen.decode().expect("payload");
    assert_eq!(
        seen.envelope().expect("envelope").event_id,
        fact_id("orders", OrderAccepted::TYPE_NAME, &id, "accepted").to_string()
    );
    assert_eq!(event.order_id, id);
    assert_eq!(event.accepted_by, "J. Smith (Acme QA)");
    assert_eq!(event.note, "1000 brackets received in good order");
    let entries = timeline(&mut client, &id).await;
    assert!(
        entries.iter().any(|e| e.summary
            == "Goods accepted by J. Smith (Acme QA): 1000 brackets received in good order"),
        "{entries:#?}"
    );

    // A second acceptance says when and by whom the first one was.
    let again = client
        .accept_order(accept_request(&id, "Someone Else"))
        .await
        .expect_err("accepted twice");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("already accepted on"), "{again:?}");
    assert!(again.message().contains("J. Smith (Acme QA)"), "{again:?}");
    // Asked again once accepted, orders announces the same fact (every
    // inbox, the timeline's included, drops it).
    gendan_tests::repeat_command(&bus, &orders.pool, "orders", &id, &asked)
        .await
        .expect("RestateFact handled");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM orders.timeline WHERE type = 'gendan.v1.OrderAccepted'"
        )
        .await,
        1
    );

    orders.stop().await;
}

#[tokio::test]
async fn close_order_writes_the_summary_and_the_order_becomes_read_only() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    let mut closed_events = SubjectReader::open(
        &orders.nats.url,
        streams::EVENTS,
        "gendan.evt.orders.order_closed",
    )
    .await
    .expect("reader");
    let order = create(&mut client, "close-1", "Acme").await;
    let id = order.order_id.clone();
    let received = order
        .created_at
        .as_ref()
        .and_then(gendan_proto::timestamp_to)
        .expect("created_at")
        .date_naive();
    let day = |n: i64| gendan_proto::date_to_string(received + chrono::Duration::days(n));

    // The order's life as the other departments report it.
    publish_event(
        &bus,
        "orders-test",
        &id,
        &OrderConfirmed {
            revision: 0,
            order_id: id.clone(),
            promised_delivery_date: day(25),
        },
    )
    .await;
    publish_event(
        &bus,
        "procurement",
        &id,
        &PurchaseOrderPlaced {
            order_id: id.clone(),
            purchase_order_id: "PO-1".to_owned(),
            amount_minor: 10_000,
            currency: "USD".to_owned(),
            expected_date: day(5),
            ..Default::default()
        },
    )
    .await;
    publish_event(
        &bus,
        "procurement",
        &id,
        &MaterialsDelayed {
            order_id: id.clone(),
            purchase_order_id: "PO-1".to_owned(),
            expected_ready_date: day(8),
            reason: "supplier furnace repair".to_owned(),
        },
    )
    .await;
    publish_event(
        &bus,
        "quality",
        &id,
        &FinalInspectionFailed {
            order_id: id.clone(),
            inspection_id: "FI-1".to_owned(),
            summary: "burrs on 3 of 80 samples".to_owned(),
            sample_size: 80,
            defective_units: 3,
            ..Default::default()
        },
    )
    .await;
    publish_event(
        &bus,
        "quality",
        &id,
        &FinalInspectionPassed {
            order_id: id.clone(),
            inspection_id: "FI-2".to_owned(),
            revision: 2,
            sample_size: 80,
            ..Default::default()
        },
    )
    .await;
    publish_event(
        &bus,
        "logistics",
        &id,
        &ShipmentBooked {
            order_id: id.clone(),
            booking_reference: "BK-1".to_owned(),
            freight_cost_minor: 4_000,
            currency: "USD".to_owned(),
            ..Default::default()
        },
    )
    .await;
    publish_event(
        &bus,
        "logistics",
        &id,
        &Delivered {
            revision: 0,
            order_id: id.clone(),
            delivered_on: day(20),
            proof_of_delivery: "POD-9".to_owned(),
        },
    )
    .await;
    move_to(&client, &bus, &id, Phase::Received, Phase::Acceptance).await;
    client
        .accept_order(accept_request(&id, "J. Smith"))
        .await
        .expect("accepted");
    move_to(&client, &bus, &id, Phase::Acceptance, Phase::Settlement).await;

    let not_yet = client
        .get_summary(GetSummaryRequest {
            order_id: id.clone(),
        })
        .await
        .expect_err("not closed yet");
    assert_eq!(not_yet.code(), Code::FailedPrecondition);
    assert!(not_yet.message().contains("not closed yet"), "{not_yet:?}");

    let close = send_close(&bus, &id).await;
    let seen = closed_events
        .next_of_type(OrderClosed::TYPE_NAME, WAIT)
        .await
        .expect("OrderClosed");
    assert_eq!(
        seen.envelope().expect("envelope").causation_id,
        close.envelope.event_id
    );
    let summary = seen
        .decode::<OrderClosed>()
        .expect("payload")
        .summary
        .expect("summary");
    assert_eq!(summary.order_id, id);
    assert_eq!(summary.promised_delivery_date, day(25));
    assert_eq!(summary.delivered_on, day(20));
    assert!(summary.on_time);
    assert_eq!(summary.lead_time_days, 20);
    assert_eq!(summary.currency, "USD");
    assert_eq!(summary.cost_budget_minor, 0);
    assert_eq!(summary.cost_actual_minor, 14_000);
    // Good units over those inspected the first time: 77 of 80.
    assert_eq!(summary.first_pass_yield, 77.0 / 80.0);
    assert_eq!(summary.exceptions, 2, "{:?}", summary.exception_notes);
    assert!(
        summary
            .lessons
            .contains("Materials arrived 3 days late: confirm supplier lead times"),
        "{}",
        summary.lessons
    );
    assert!(summary.closed_at.is_some());

    let stored = client
        .get_summary(GetSummaryRequest {
            order_id: id.clone(),
        })
        .await
        .expect("summary")
        .into_inner();
    assert_eq!(stored, summary);
    let closed = get(&mut client, &id).await;
    assert_eq!(closed.phase, Phase::Closed as i32);

    // Read-only: later saga events are recorded but change nothing.
    publish_saga_event(
        &bus,
        &id,
        &DeliveryRiskChanged {
            order_id: id.clone(),
            at_risk: true,
            risk_changed: true,
            projected_delivery_date: "2031-01-01".to_owned(),
            ..Default::default()
        },
    )
    .await;
    publish_saga_event(
        &bus,
        &id,
        &PhaseChanged {
            order_id: id.clone(),
            from: Phase::Closed as i32,
            to: Phase::Cancelled as i32,
            projected_delivery_date: String::new(),
        },
    )
    .await;
    let stalled = publish_saga_event(
        &bus,
        &id,
        &SagaStalled {
            order_id: id.clone(),
            step: "late".to_owned(),
            reason: "after closing".to_owned(),
        },
    )
    .await;
    wait_recorded(&client, &id, &stalled).await;
    let after = get(&mut client, &id).await;
    assert_eq!(after.phase, Phase::Closed as i32);
    assert!(!after.at_risk);
    assert_eq!(
        after.projected_delivery_date,
        closed.projected_delivery_date
    );
    assert_eq!(after.workflow_status, closed.workflow_status);
    assert_eq!(after.updated_at, closed.updated_at);
    let refused = client
        .accept_order(accept_request(&id, "J. Smith"))
        .await
        .expect_err("closed order");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("closed"), "{refused:?}");

    // A repeated CloseOrder announces the same fact under the same event id:
    // the bus drops it, and the timeline keeps one closing.
    gendan_tests::repeat_command(
        &bus,
        &orders.pool,
        "orders",
        &id,
        &CloseOrder {
            order_id: id.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("CloseOrder handled again");
    let closings = timeline(&mut client, &id)
        .await
        .into_iter()
        .filter(|e| e.r#type == OrderClosed::TYPE_NAME)
        .count();
    assert_eq!(closings, 1);

    // The customer heard of the closing once, and of nothing after it.
    let kinds: Vec<String> = notices(&mut client, &id)
        .await
        .into_iter()
        .map(|n| n.kind)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "closed").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("closed"),
        "{kinds:?}"
    );

    orders.stop().await;
}

/// Finance's `CostLedgerClosed`, on the timeline before `CloseOrder`, gives
/// the summary its cost figures as they are (what orders saw itself, the
/// purchase order here, no longer counts), and reads as a sentence there.
#[tokio::test]
async fn the_summary_takes_the_figures_finance_closed_the_cost_ledger_with() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    let order = create(&mut client, "close-ledger-1", "Acme").await;
    let id = order.order_id.clone();
    publish_event(
        &bus,
        "procurement",
        &id,
        &PurchaseOrderPlaced {
            order_id: id.clone(),
            purchase_order_id: "PO-1".to_owned(),
            amount_minor: 10_000,
            currency: "USD".to_owned(),
            ..Default::default()
        },
    )
    .await;
    let line = |category: &str, plan: i64, actual: i64, variance_bp: i32| CostCategoryLine {
        category: category.to_owned(),
        plan_minor: plan,
        actual_minor: actual,
        variance_minor: actual - plan,
        variance_bp,
        over: actual > plan,
    };
    let closed = CostLedgerClosed {
        order_id: id.clone(),
        currency: "USD".to_owned(),
        budget_minor: 150_000,
        actual_minor: 160_000,
        variance_minor: 10_000,
        variance_bp: 667,
        categories: vec![
            line("material", 100_000, 95_000, -500),
            line("labour", 40_000, 40_000, 0),
            line("rework", 0, 12_000, 0),
            line("freight", 10_000, 13_000, 3_000),
        ],
        unconverted: vec![UnconvertedCost {
            currency: "CNY".to_owned(),
            amount_minor: 120_000,
        }],
        revenue_minor: order.total_minor,
        margin_minor: order.total_minor - 160_000,
    };
    let recorded = publish_event(&bus, "finance", &id, &closed).await;
    wait_recorded(&client, &id, &recorded).await;

    send_close(&bus, &id).await;
    let summary = eventually(WAIT, "the order closed", || {
        let mut client = client.clone();
        let order_id = id.clone();
        async move {
            client
                .get_summary(GetSummaryRequest { order_id })
                .await
                .ok()
                .map(tonic::Response::into_inner)
        }
    })
    .await
    .expect("summary");
    assert_eq!(summary.cost_budget_minor, 150_000);
    assert_eq!(summary.cost_actual_minor, 160_000);
    assert_eq!(summary.cost_variance_minor, 10_000);
    assert_eq!(summary.cost_variance_bp, 667);
    assert_eq!(summary.cost_categories, closed.categories);
    assert_eq!(summary.unconverted_costs, closed.unconverted);
    for lesson in [
        "Costs ran 100.00 USD over the budget of 1500.00 USD (+6.67 %): rework 120.00 USD over \
         its plan of 0.00; freight 30.00 USD over its plan of 100.00.",
        "Costs of 1200.00 CNY had no exchange rate into USD",
    ] {
        assert!(
            summary.lessons.contains(lesson),
            "{lesson} in {}",
            summary.lessons
        );
    }
    let sentence = timeline(&mut client, &id)
        .await
        .into_iter()
        .find(|e| e.r#type == CostLedgerClosed::TYPE_NAME)
        .expect("the closed ledger on the timeline")
        .summary;
    assert_eq!(
        sentence,
        "Cost ledger closed: actual 1600.00 USD against the budget of 1500.00 USD (+100.00 USD, \
         +6.67 %), margin 650.00 USD; without an exchange rate: 1200.00 CNY"
    );

    orders.stop().await;
}

#[tokio::test]
async fn customer_notices_follow_what_the_customer_cares_about() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    let mut published =
        SubjectReader::open(&orders.nats.url, streams::NOTICES, "gendan.notify.customer")
            .await
            .expect("notice reader");
    let order = create(&mut client, "notice-1", "Acme").await;
    let id = order.order_id.clone();

    move_to(&client, &bus, &id, Phase::Received, Phase::Review).await;
    move_to(&client, &bus, &id, Phase::Review, Phase::Production).await;
    // A late phase change moves nothing and tells the customer nothing.
    publish_saga_event(
        &bus,
        &id,
        &PhaseChanged {
            order_id: id.clone(),
            from: Phase::Received as i32,
            to: Phase::Confirmed as i32,
            projected_delivery_date: String::new(),
        },
    )
    .await;
    // Only a flip of the risk flag is news.
    publish_saga_event(
        &bus,
        &id,
        &DeliveryRiskChanged {
            order_id: id.clone(),
            at_risk: true,
            promised_delivery_date: "2030-03-10".to_owned(),
            projected_delivery_date: "2030-03-15".to_owned(),
            reason: "press line down".to_owned(),
            risk_changed: true,
        },
    )
    .await;
    publish_saga_event(
        &bus,
        &id,
        &DeliveryRiskChanged {
            order_id: id.clone(),
            at_risk: true,
            promised_delivery_date: "2030-03-10".to_owned(),
            projected_delivery_date: "2030-03-16".to_owned(),
            reason: String::new(),
            risk_changed: false,
        },
    )
    .await;
    let clarification = Decision {
        decision_id: "d-1".to_owned(),
        order_id: id.clone(),
        kind: "delivery_date".to_owned(),
        ..Default::default()
    };
    publish_saga_event(
        &bus,
        &id,
        &DecisionRequested {
            decision: Some(clarification.clone()),
            reminder: false,
        },
    )
    .await;
    publish_saga_event(
        &bus,
        &id,
        &DecisionRequested {
            decision: Some(clarification),
            reminder: true,
        },
    )
    .await;
    let shipped = publish_event(
        &bus,
        "logistics",
        &id,
        &Shipped {
            revision: 0,
            order_id: id.clone(),
            shipped_on: "2030-03-12".to_owned(),
            bill_of_lading: "COSU6182".to_owned(),
        },
    )
    .await;
    wait_recorded(&client, &id, &shipped).await;

    let list = notices(&mut client, &id).await;
    let kinds: Vec<&str> = list.iter().map(|n| n.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["phase", "phase", "delivery_risk", "decision", "shipped"],
        "{list:#?}"
    );
    assert!(
        list.iter()
            .all(|n| n.customer == "Acme" && n.order_id == id)
    );
    assert_eq!(list[1].subject, format!("Order {id}: in production"));
    assert!(list[1].body.starts_with("Dear Acme,"), "{}", list[1].body);
    assert!(
        list[2]
            .body
            .contains("We now expect to deliver your order on 2030-03-15"),
        "{}",
        list[2].body
    );
    assert!(list[4].body.contains("bill of lading COSU6182"));
    // No webhook configured: nothing will deliver them.
    let parked = eventually(WAIT, "notices marked not_configured", || {
        let mut client = client.clone();
        let id = id.clone();
        async move {
            let list = notices(&mut client, &id).await;
            list.iter()
                .all(|n| n.delivery_status == "not_configured")
                .then_some(list)
        }
    })
    .await
    .expect("not configured");
    assert!(parked.iter().all(|n| n.delivery_attempts == 0));

    // Each notice is on the bus for notification adapters.
    let mut on_bus = Vec::new();
    for _ in 0..5 {
        let seen = published
            .next_of_type(CustomerNotice::TYPE_NAME, WAIT)
            .await
            .expect("CustomerNotice published");
        assert_eq!(seen.subject, "gendan.notify.customer");
        on_bus.push(seen.decode::<CustomerNotice>().expect("payload").notice_id);
    }
    let stored: Vec<String> = list.into_iter().map(|n| n.notice_id).collect();
    assert_eq!(on_bus, stored);

    let malformed = client
        .list_notices(ListNoticesRequest {
            order_id: "nope".to_owned(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(malformed.message().contains("order_id"));
    let unknown = client
        .list_notices(ListNoticesRequest {
            order_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    let no_summary = client
        .get_summary(GetSummaryRequest {
            order_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(no_summary.code(), Code::NotFound);

    orders.stop().await;
}

/// One request the test's webhook server received.
#[derive(Debug, Clone)]
struct Received {
    head: String,
    body: String,
}

/// What the test's webhook servers received, in order.
type Log = std::sync::Arc<std::sync::Mutex<Vec<Received>>>;

/// A tiny HTTP/1.1 server: answers each request with the status `answer`
/// picks from the request count so far and the body; records every request.
async fn webhook_server(answer: fn(usize, &str) -> u16) -> (u16, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind webhook server");
    let port = listener.local_addr().expect("addr").port();
    let received: Log = Default::default();
    let log = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(answer_one(socket, log.clone(), answer));
        }
    });
    (port, received)
}

/// The same over TLS, with `certified` as the server's certificate (made
/// for `localhost`).
async fn tls_webhook_server(
    certified: &rcgen::CertifiedKey,
    answer: fn(usize, &str) -> u16,
) -> (u16, Log) {
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("the server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind TLS webhook server");
    let port = listener.local_addr().expect("addr").port();
    let received: Log = Default::default();
    let log = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                // A client that does not trust us gives up in the handshake.
                if let Ok(stream) = acceptor.accept(socket).await {
                    answer_one(stream, log, answer).await;
                }
            });
        }
    });
    (port, received)
}

/// Reads one request (the head, then Content-Length bytes of body), records
/// it and answers it with the status `answer` picks.
async fn answer_one<S>(mut socket: S, log: Log, answer: fn(usize, &str) -> u16)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head, body) = loop {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buffer.len() < end + 4 + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]);
        break (head, body.to_string());
    };
    let status = {
        let mut log = log.lock().expect("log");
        let status = answer(log.len(), &body);
        log.push(Received { head, body });
        status
    };
    let response =
        format!("HTTP/1.1 {status} Test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

#[tokio::test]
async fn notices_go_over_https_to_a_receiver_the_ca_file_vouches_for() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let ca_file = tempfile::NamedTempFile::new().expect("a CA file");
    std::fs::write(ca_file.path(), certified.cert.pem()).expect("the CA file written");
    let (port, received) = tls_webhook_server(&certified, |_, _| 200).await;
    let trusting = WebhookSettings {
        url: Some(format!("https://localhost:{port}/notices")),
        ca_file: Some(ca_file.path().to_owned()),
        poll_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let delivered = review_notice(trusting, "tls-hook-1", "delivered").await;
    let requests = received.lock().expect("log").clone();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert!(requests[0].head.starts_with("POST /notices HTTP/1.1"));
    assert!(requests[0].body.contains(&delivered.notice_id));

    // Without the CA file the receiver's certificate is not trusted: the
    // handshake fails and the notice is retried, never delivered to it.
    let (port, untrusted) = tls_webhook_server(&certified, |_, _| 200).await;
    let distrusting = WebhookSettings {
        url: Some(format!("https://localhost:{port}/notices")),
        max_attempts: 2,
        first_retry: Duration::from_millis(50),
        poll_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let failed = review_notice(distrusting, "tls-hook-2", "failed").await;
    assert!(untrusted.lock().expect("log").is_empty());
    assert_eq!(failed.delivery_attempts, 2, "{failed:?}");
}

/// Orders with `webhook`, one order of Acme's moved to review; its review
/// notice once it reaches `status`.
async fn review_notice(
    webhook: WebhookSettings,
    request_id: &str,
    status: &'static str,
) -> CustomerNotice {
    let orders = Orders::start_with(Some(webhook)).await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    let order = create(&mut client, request_id, "Acme").await;
    move_to(
        &client,
        &bus,
        &order.order_id,
        Phase::Received,
        Phase::Review,
    )
    .await;
    let notice = notice_in(&client, &order.order_id, status).await;
    orders.stop().await;
    notice
}

#[tokio::test]
async fn the_webhook_delivers_notices_retrying_failures_and_giving_up_in_the_end() {
    // The first request fails (a relay restarting); the customer "Doomed
    // Ltd" is always refused with 503.
    let (port, received) = webhook_server(|seen, body| {
        if body.contains("Doomed Ltd") {
            503
        } else if seen == 0 {
            500
        } else {
            200
        }
    })
    .await;
    let orders = Orders::start_with(Some(WebhookSettings {
        url: Some(format!("http://127.0.0.1:{port}/notices")),
        secret: Some(gendan_settings::Secret::new("the-shared-secret")),
        max_attempts: 3,
        first_retry: Duration::from_millis(100),
        max_retry: Duration::from_millis(400),
        poll_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    }))
    .await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;

    let order = create(&mut client, "hook-1", "Acme").await;
    let id = order.order_id.clone();
    move_to(&client, &bus, &id, Phase::Received, Phase::Review).await;
    let delivered = eventually(WAIT, "notice delivered", || {
        let mut client = client.clone();
        let id = id.clone();
        async move {
            let list = notices(&mut client, &id).await;
            list.into_iter().find(|n| n.delivery_status == "delivered")
        }
    })
    .await
    .expect("delivered");
    assert_eq!(
        delivered.delivery_attempts, 2,
        "one failure, then delivered"
    );
    {
        let requests = received.lock().expect("log").clone();
        assert_eq!(requests.len(), 2, "{requests:#?}");
        for request in &requests {
            assert!(
                request.head.starts_with("POST /notices HTTP/1.1"),
                "{}",
                request.head
            );
            let head = request.head.to_ascii_lowercase();
            assert!(head.contains("content-type: application/json"), "{head}");
            assert!(
                head.contains(&format!("idempotency-key: {}", delivered.notice_id)),
                "{head}"
            );
            assert!(
                request
                    .body
                    .contains(&format!("\"notice_id\":\"{}\"", delivered.notice_id))
            );
            assert!(
                request.body.contains("\"kind\":\"phase\""),
                "{}",
                request.body
            );
            assert!(
                request.body.contains("\"customer\":\"Acme\""),
                "{}",
                request.body
            );
            // Signed: the receiver's check passes with the shared secret
            // and fails with another.
            let header = |name: &str| {
                request
                    .head
                    .lines()
                    .find_map(|line| {
                        let (key, value) = line.split_once(':')?;
                        key.eq_ignore_ascii_case(name)
                            .then(|| value.trim().to_owned())
                    })
                    .unwrap_or_default()
            };
            let (timestamp, signature) = (header("gendan-timestamp"), header("gendan-signature"));
            let now = chrono::Utc::now().timestamp();
            let check = |secret: &[u8]| {
                gendan_orders::webhook::signature::verify(
                    secret,
                    &timestamp,
                    &signature,
                    request.body.as_bytes(),
                    now,
                    300,
                )
            };
            assert_eq!(check(b"the-shared-secret"), Ok(()), "{}", request.head);
            assert!(check(b"a-guess").is_err());
        }
    }

    // A receiver that keeps failing: three attempts, then failed for good.
    let doomed = create(&mut client, "hook-2", "Doomed Ltd").await;
    move_to(
        &client,
        &bus,
        &doomed.order_id,
        Phase::Received,
        Phase::Review,
    )
    .await;
    let failed = eventually(WAIT, "notice failed", || {
        let mut client = client.clone();
        let id = doomed.order_id.clone();
        async move {
            let list = notices(&mut client, &id).await;
            list.into_iter().find(|n| n.delivery_status == "failed")
        }
    })
    .await
    .expect("failed");
    assert_eq!(failed.delivery_attempts, 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let doomed_requests = received
        .lock()
        .expect("log")
        .iter()
        .filter(|r| r.body.contains("Doomed Ltd"))
        .count();
    assert_eq!(doomed_requests, 3, "never more than max_attempts");

    orders.stop().await;
}

/// Waits until the order has a notice in `status`, and returns it.
async fn notice_in(client: &Client, order_id: &str, status: &'static str) -> CustomerNotice {
    eventually(WAIT, status, || {
        let mut client = client.clone();
        let id = order_id.to_owned();
        async move {
            let list = notices(&mut client, &id).await;
            list.into_iter().find(|n| n.delivery_status == status)
        }
    })
    .await
    .expect("notice state")
}

/// Enters the customer "Hooked Co", whose notices go to `port`, and makes
/// one order of it and one of Acme's (no URL of its own), both moved to
/// review so each has a phase notice.
async fn hooked_and_plain_orders(orders: &Orders, port: u16) -> (v1::Order, v1::Order) {
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    client
        .upsert_customer(v1::Customer {
            notice_webhook_url: format!("http://127.0.0.1:{port}/hooked"),
            ..test_customer("HOOKED", "Hooked Co")
        })
        .await
        .expect("a customer with a webhook of its own");
    // Named by its id in `customer`: the order carries the master's name.
    let hooked = create(&mut client, "own-hook-1", "HOOKED").await;
    assert_eq!(hooked.customer, "Hooked Co");
    assert_eq!(hooked.customer_id, "HOOKED");
    let plain = create(&mut client, "own-hook-2", "Acme").await;
    for order in [&hooked, &plain] {
        move_to(
            &client,
            &bus,
            &order.order_id,
            Phase::Received,
            Phase::Review,
        )
        .await;
    }
    (hooked, plain)
}

#[tokio::test]
async fn a_customer_with_a_webhook_of_its_own_gets_its_notices_there() {
    let (deployment_port, deployment) = webhook_server(|_, _| 200).await;
    let (own_port, own) = webhook_server(|_, _| 200).await;
    let orders = Orders::start_with(Some(WebhookSettings {
        url: Some(format!("http://127.0.0.1:{deployment_port}/notices")),
        poll_interval: Duration::from_millis(50),
        ..Default::default()
    }))
    .await;
    let client = orders.client().await;
    let (hooked, plain) = hooked_and_plain_orders(&orders, own_port).await;

    let hooked_notice = notice_in(&client, &hooked.order_id, "delivered").await;
    let plain_notice = notice_in(&client, &plain.order_id, "delivered").await;
    let own_requests = own.lock().expect("log").clone();
    assert_eq!(own_requests.len(), 1, "{own_requests:#?}");
    assert!(
        own_requests[0].head.starts_with("POST /hooked HTTP/1.1"),
        "{}",
        own_requests[0].head
    );
    assert!(
        own_requests[0]
            .body
            .contains(&format!("\"notice_id\":\"{}\"", hooked_notice.notice_id)),
        "{}",
        own_requests[0].body
    );
    assert!(own_requests[0].body.contains("\"customer\":\"Hooked Co\""));
    // The deployment's relay got the other customer's notice, not this one's.
    let deployment_requests = deployment.lock().expect("log").clone();
    assert_eq!(deployment_requests.len(), 1, "{deployment_requests:#?}");
    assert!(
        deployment_requests[0]
            .body
            .contains(&format!("\"notice_id\":\"{}\"", plain_notice.notice_id))
    );

    orders.stop().await;
}

#[tokio::test]
async fn without_a_deployment_webhook_a_customer_with_its_own_still_gets_notices() {
    let (own_port, own) = webhook_server(|_, _| 200).await;
    let orders = Orders::start_with(Some(WebhookSettings {
        url: None,
        poll_interval: Duration::from_millis(50),
        ..Default::default()
    }))
    .await;
    let client = orders.client().await;
    let (hooked, plain) = hooked_and_plain_orders(&orders, own_port).await;

    let delivered = notice_in(&client, &hooked.order_id, "delivered").await;
    assert_eq!(delivered.delivery_attempts, 1);
    // Nobody to post the other customer's notice to: parked for good.
    let parked = notice_in(&client, &plain.order_id, "not_configured").await;
    assert_eq!(parked.delivery_attempts, 0);
    let own_requests = own.lock().expect("log").clone();
    assert_eq!(own_requests.len(), 1, "{own_requests:#?}");
    assert!(own_requests[0].body.contains(&hooked.order_id));

    orders.stop().await;
}

#[tokio::test]
async fn an_order_whose_workflow_has_not_started_is_announced_again_as_the_same_fact() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    let mut created_events = SubjectReader::open(
        &orders.nats.url,
        streams::EVENTS,
        "gendan.evt.orders.order_created",
    )
    .await
    .expect("reader");
    let waiting = create(&mut client, "announce-1", "Acme").await;
    let started = create(&mut client, "announce-2", "Acme").await;
    // The first announcement already carries the fact's id.
    let mut first_ids = HashSet::new();
    for _ in 0..2 {
        let seen = created_events
            .next_of_type(OrderCreated::TYPE_NAME, WAIT)
            .await
            .expect("OrderCreated");
        first_ids.insert(seen.envelope().expect("envelope").event_id);
    }
    let fact = |order_id: &str| {
        gendan_messaging::fact_id("orders", OrderCreated::TYPE_NAME, order_id, "created")
            .to_string()
    };
    assert!(
        first_ids.contains(&fact(&waiting.order_id)),
        "{first_ids:?}"
    );
    // The saga started one of them.
    move_to(
        &client,
        &bus,
        &started.order_id,
        Phase::Received,
        Phase::Review,
    )
    .await;

    // Due at once: only the order still in received is announced again.
    let announcer = gendan_orders::announcer::Announcer::new(orders.pool.clone(), Duration::ZERO);
    assert_eq!(announcer.pass().await.expect("pass"), 1);
    let attempts: Vec<(String, i32)> =
        sqlx::query_as("SELECT order_id::text, announce_attempts FROM orders ORDER BY order_id")
            .fetch_all(&orders.pool)
            .await
            .expect("attempts");
    let of = |id: &str| attempts.iter().find(|(o, _)| o == id).map(|(_, a)| *a);
    assert_eq!(of(&waiting.order_id), Some(1));
    assert_eq!(of(&started.order_id), Some(0));
    // The announcement is the same fact: written under its id, and the bus
    // (within its duplicate window) keeps the one message.
    let outbox: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT event_id FROM outbox WHERE subject = 'gendan.evt.orders.order_created'",
    )
    .fetch_all(&orders.pool)
    .await
    .expect("outbox");
    assert!(
        outbox.is_empty()
            || outbox
                .iter()
                .all(|id| id.to_string() == fact(&waiting.order_id)),
        "{outbox:?}"
    );
    eventually(WAIT, "the announcement relayed", || {
        let pool = orders.pool.clone();
        async move {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
                .fetch_one(&pool)
                .await
                .ok()?;
            (left == 0).then_some(())
        }
    })
    .await
    .expect("relayed");
    assert!(
        created_events
            .next(Duration::from_millis(500))
            .await
            .expect("read")
            .is_none(),
        "no second OrderCreated message"
    );
    // Not due again before its wait (doubled) is over.
    let patient =
        gendan_orders::announcer::Announcer::new(orders.pool.clone(), Duration::from_secs(3600));
    assert_eq!(patient.pass().await.expect("pass"), 0);
    orders.stop().await;
}

/// One milestone of a calendar the test announces as the saga.
fn milestone(
    key: &str,
    kind: v1::MilestoneKind,
    planned: &str,
    projected: &str,
    actual: &str,
    depends_on: &[&str],
) -> v1::Milestone {
    let moved_by = if actual.is_empty() {
        "MaterialsDelayed PO-7"
    } else {
        "actual"
    };
    v1::Milestone {
        key: key.to_owned(),
        kind: kind as i32,
        subject: key
            .split_once(':')
            .map(|(_, s)| s)
            .unwrap_or_default()
            .to_owned(),
        label: key.replace(['_', ':'], " "),
        planned: planned.to_owned(),
        projected: projected.to_owned(),
        actual: actual.to_owned(),
        depends_on: depends_on.iter().map(|&key| key.to_owned()).collect(),
        moved_by: moved_by.to_owned(),
        ..Default::default()
    }
}

async fn get_milestones(
    client: &mut Client,
    order_id: &str,
) -> Result<v1::GetMilestonesResponse, tonic::Status> {
    client
        .get_milestones(v1::GetMilestonesRequest {
            order_id: order_id.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Waits until GetMilestones shows calendar `version`.
async fn calendar_version(
    client: &Client,
    order_id: &str,
    version: u64,
) -> v1::GetMilestonesResponse {
    eventually(WAIT, "calendar version", || {
        let mut client = client.clone();
        let order_id = order_id.to_owned();
        async move {
            let calendar = get_milestones(&mut client, &order_id).await.ok()?;
            (calendar.version == version).then_some(calendar)
        }
    })
    .await
    .expect("calendar stored")
}

#[tokio::test]
async fn the_calendar_keeps_the_latest_snapshot_with_statuses_as_of_today() {
    use v1::MilestoneKind as Kind;
    use v1::MilestoneStatus as Status;

    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    let order = create(&mut client, "calendar-1", "Acme").await;
    let id = order.order_id.clone();
    // Offsets from today, far enough from it that a day passing during the
    // test changes no status.
    let today = Utc::now().date_naive();
    let day = |offset: i64| gendan_proto::date_to_string(today + chrono::Duration::days(offset));

    // Promised on confirmation, projected by the saga's risk verdict: the
    // calendar shows both from the order row.
    bus.publish(&Outgoing::command(
        "test",
        "orders",
        &id,
        &ConfirmOrder {
            revision: 0,
            order_id: id.clone(),
            promised_delivery_date: day(28),
        },
        &Cause::root(&id),
    ))
    .await
    .expect("send ConfirmOrder");
    eventually(WAIT, "order confirmed", || {
        let mut client = client.clone();
        let id = id.clone();
        async move {
            let entries = timeline(&mut client, &id).await;
            entries
                .iter()
                .any(|e| e.r#type == OrderConfirmed::TYPE_NAME)
                .then_some(())
        }
    })
    .await
    .expect("confirmation recorded");
    publish_saga_event(
        &bus,
        &id,
        &DeliveryRiskChanged {
            order_id: id.clone(),
            at_risk: true,
            promised_delivery_date: day(28),
            projected_delivery_date: day(32),
            reason: "materials late".to_owned(),
            risk_changed: true,
        },
    )
    .await;

    let second = v1::MilestonesChanged {
        order_id: id.clone(),
        version: 2,
        milestones: vec![
            milestone(
                "confirmed",
                Kind::Confirmed,
                &day(-20),
                &day(-21),
                &day(-21),
                &[],
            ),
            milestone(
                "materials_in",
                Kind::MaterialsIn,
                &day(-10),
                &day(-7),
                &day(-7),
                &["confirmed"],
            ),
            milestone(
                "production_start",
                Kind::ProductionStart,
                &day(-5),
                &day(2),
                "",
                &["materials_in"],
            ),
            milestone(
                "stage_done:shirt/sewing",
                Kind::StageDone,
                &day(10),
                &day(14),
                "",
                &["production_start"],
            ),
            milestone(
                "ex_factory",
                Kind::ExFactory,
                &day(20),
                &day(19),
                "",
                &["stage_done:shirt/sewing", "materials_in"],
            ),
        ],
        changed: vec!["production_start".to_owned()],
        projected_delivery_date: day(32),
        cause: "MaterialsDelayed PO-7: materials_in later".to_owned(),
        incomplete: vec!["no lane quoted".to_owned()],
    };
    let announced = publish_saga_event(&bus, &id, &second).await;
    let calendar = calendar_version(&client, &id, 2).await;
    let seen: Vec<(&str, Status, i32)> = calendar
        .milestones
        .iter()
        .map(|m| (m.key.as_str(), m.status(), m.variance_days))
        .collect();
    assert_eq!(
        seen,
        [
            ("confirmed", Status::Done, -1),
            ("materials_in", Status::DoneLate, 3),
            ("production_start", Status::Overdue, 7),
            ("stage_done:shirt/sewing", Status::Slipping, 4),
            ("ex_factory", Status::OnPlan, -1),
        ]
    );
    let ex_factory = &calendar.milestones[4];
    assert_eq!(
        ex_factory.depends_on,
        ["stage_done:shirt/sewing", "materials_in"]
    );
    assert_eq!(ex_factory.kind(), Kind::ExFactory);
    assert_eq!(ex_factory.planned, day(20));
    assert_eq!(ex_factory.projected, day(19));
    assert_eq!(ex_factory.actual, "");
    assert_eq!(calendar.milestones[3].subject, "shirt/sewing");
    assert_eq!(calendar.milestones[2].moved_by, "MaterialsDelayed PO-7");
    assert_eq!(calendar.order_id, id);
    assert_eq!(calendar.incomplete, ["no lane quoted"]);
    assert_eq!(calendar.promised_delivery_date, day(28));
    assert_eq!(calendar.projected_delivery_date, day(32));
    // The order itself carries its promise, its next open milestone (the
    // earliest projected not yet done) and its slip.
    let listed = get(&mut client, &id).await;
    assert_eq!(listed.promised_delivery_date, day(28));
    assert_eq!(listed.next_milestone_date, day(2));
    assert_eq!(listed.next_milestone, calendar.milestones[2].label);
    assert_eq!(listed.slip_days, 4);
    let entries = timeline(&mut client, &id).await;
    let entry = entries
        .iter()
        .find(|e| e.event_id == announced.envelope.event_id)
        .expect("on the timeline");
    assert_eq!(
        entry.summary,
        "Calendar re-projected (version 2): MaterialsDelayed PO-7: materials_in later"
    );

    // Version 2 again under another Nats-Msg-Id (a redelivery), then an
    // older version 1 with other dates: neither changes the calendar. The
    // older one is recorded on the timeline, so both were handled by then.
    bus.jetstream()
        .send_publish(
            announced.subject.clone(),
            PublishMessage::build()
                .payload(announced.envelope.encode_to_vec().into())
                .message_id("calendar-v2-again"),
        )
        .await
        .expect("publish copy")
        .await
        .expect("copy acknowledged");
    let older = v1::MilestonesChanged {
        version: 1,
        milestones: vec![
            milestone("confirmed", Kind::Confirmed, &day(-20), &day(-20), "", &[]),
            milestone(
                "packing_done",
                Kind::PackingDone,
                &day(15),
                &day(15),
                "",
                &[],
            ),
        ],
        cause: "first plan".to_owned(),
        incomplete: Vec::new(),
        ..second.clone()
    };
    let older = publish_saga_event(&bus, &id, &older).await;
    wait_recorded(&client, &id, &older).await;
    assert_eq!(
        get_milestones(&mut client, &id).await.expect("calendar"),
        calendar,
        "an older or repeated version changes nothing"
    );
    let copies = timeline(&mut client, &id)
        .await
        .iter()
        .filter(|e| e.event_id == announced.envelope.event_id)
        .count();
    assert_eq!(copies, 1);

    // Version 3 no longer has the stage (a re-plan merged it away).
    let third = v1::MilestonesChanged {
        version: 3,
        milestones: second
            .milestones
            .iter()
            .filter(|m| m.key != "stage_done:shirt/sewing")
            .cloned()
            .map(|mut m| {
                if m.key == "ex_factory" {
                    m.depends_on = vec!["production_start".to_owned()];
                }
                m
            })
            .collect(),
        cause: "WorkOrderRescheduled".to_owned(),
        incomplete: Vec::new(),
        ..second.clone()
    };
    publish_saga_event(&bus, &id, &third).await;
    let calendar = calendar_version(&client, &id, 3).await;
    let keys: Vec<&str> = calendar.milestones.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "confirmed",
            "materials_in",
            "production_start",
            "ex_factory"
        ]
    );
    assert_eq!(calendar.milestones[3].depends_on, ["production_start"]);
    assert!(calendar.incomplete.is_empty());

    // The calendar is the merchandiser's: the customer gets no notice of it.
    let calendar_notices: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notices n JOIN timeline t ON t.event_id = n.source_event_id \
         WHERE t.type = 'gendan.v1.MilestonesChanged'",
    )
    .fetch_one(&orders.pool)
    .await
    .expect("notices");
    assert_eq!(calendar_notices, 0);

    let unknown = uuid::Uuid::now_v7().to_string();
    let status = get_milestones(&mut client, &unknown)
        .await
        .expect_err("unknown order");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let too_long = "7".repeat(1000);
    for bad in ["", "not-an-order", too_long.as_str()] {
        let status = get_milestones(&mut client, bad)
            .await
            .expect_err("bad order id");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("order_id"), "{status:?}");
    }

    orders.stop().await;
}
