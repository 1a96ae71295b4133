//! The orders service alone over real NATS and PostgreSQL, with the test
//! playing the saga: order intake and its validation, idempotent creates,
//! listing and paging, the `OrderCreated` event on the stream, the
//! `ConfirmOrder` command, and saga events moving the order and filling its
//! timeline (once per event, however often it is delivered).

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use chrono::Utc;
use gendan_messaging::{Bus, Cause, Outgoing, streams};
use gendan_orders::Application;
use gendan_proto::TypeName;
use gendan_proto::v1::order_service_client::OrderServiceClient;
use gendan_proto::v1::{
    self, ConfirmOrder, CreateOrderRequest, DeliveryRiskChanged, GetOrderRequest,
    GetTimelineRequest, ListOrdersRequest, OrderConfirmed, OrderCreated, OrderLine, Phase,
    PhaseChanged, SagaStalled,
};
use gendan_tests::{SubjectReader, TestDb, TestNats, eventually, service_settings};
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
    port: u16,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<gendan_orders::Result<()>>,
}

impl Orders {
    async fn start() -> Orders {
        gendan_telemetry::init_for_tests();
        let nats = TestNats::start().await.expect("nats starts");
        let db = TestDb::create().await.expect("database created");
        let app = Application::build(service_settings(&db, &nats, "orders"))
            .await
            .expect("orders starts");
        let port = app.port();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        Orders {
            nats,
            db,
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
        ("customer", |r| r.customer = "  ".to_owned()),
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
        ("payment_terms", |r| r.payment_terms = String::new()),
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

    // The saga re-sends (its reply was late); the stored date is re-announced.
    bus.publish(&Outgoing::command(
        "test",
        "orders",
        &id,
        &ConfirmOrder {
            order_id: id.clone(),
            promised_delivery_date: "2030-04-01".to_owned(),
        },
        &Cause::root(&id),
    ))
    .await
    .expect("re-send ConfirmOrder");
    let again: OrderConfirmed = confirmed
        .next_of_type(OrderConfirmed::TYPE_NAME, WAIT)
        .await
        .expect("OrderConfirmed again")
        .decode()
        .expect("payload");
    assert_eq!(again.promised_delivery_date, "2030-03-01");

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
