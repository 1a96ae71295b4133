//! `OrderService.WatchOrders` against real PostgreSQL and NATS: the
//! snapshot, live changes as the saga's events change orders, an order
//! leaving a filter, resuming after a token, and the cap on watches.

use std::time::Duration;

use chrono::Utc;
use gendan_messaging::{Bus, Cause, Outgoing};
use gendan_orders::Application;
use gendan_orders::watch::WatchSettings;
use gendan_proto::TypeName;
use gendan_proto::v1::order_service_client::OrderServiceClient;
use gendan_proto::v1::{
    self, CreateOrderRequest, DeliveryRiskChanged, OrderChange, OrderLine, Phase, PhaseChanged,
    WatchOrdersRequest,
};
use gendan_tests::{TestDb, TestNats, enter_test_customers, service_settings};
use tokio_util::sync::CancellationToken;
use tonic::Streaming;
use tonic::transport::Channel;

type Client = OrderServiceClient<Channel>;

/// Generous: a loaded machine may take seconds to commit and poll.
const WAIT: Duration = Duration::from_secs(20);

struct Orders {
    _nats: TestNats,
    _db: TestDb,
    port: u16,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<gendan_orders::Result<()>>,
}

impl Orders {
    async fn start(max_watchers: usize) -> Orders {
        gendan_telemetry::init_for_tests();
        let nats = TestNats::start().await.expect("nats starts");
        let db = TestDb::create().await.expect("database created");
        let app = Application::build(service_settings(&db, &nats, "orders"))
            .await
            .expect("orders starts")
            .with_watch(WatchSettings {
                poll: Duration::from_millis(50),
                max_watchers,
            });
        let port = app.port();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        enter_test_customers(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("test customers entered");
        Orders {
            _nats: nats,
            _db: db,
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

    async fn stop(self) {
        self.cancel.cancel();
        let result = self.task.await.expect("orders task joins");
        result.expect("orders stops cleanly");
    }
}

async fn create(client: &mut Client, client_request_id: &str, customer: &str) -> String {
    let requested = Utc::now().date_naive() + chrono::Duration::days(30);
    client
        .create_order(CreateOrderRequest {
            client_request_id: client_request_id.to_owned(),
            customer: customer.to_owned(),
            lines: vec![OrderLine {
                product: "BRKT-100".to_owned(),
                spec: String::new(),
                quantity: 100,
                unit_price_minor: 125,
            }],
            currency: "USD".to_owned(),
            requested_delivery_date: gendan_proto::date_to_string(requested),
            incoterm: "FOB".to_owned(),
            payment_terms: "30% T/T deposit, 70% against B/L copy".to_owned(),
            export: true,
            customer_id: String::new(),
        })
        .await
        .expect("create order")
        .into_inner()
        .order
        .expect("order in response")
        .order_id
}

async fn publish<M: prost::Message + TypeName>(bus: &Bus, order_id: &str, payload: &M) {
    let message = Outgoing::event("saga", order_id, payload, &Cause::root(order_id));
    bus.publish(&message).await.expect("publish");
}

fn at_risk(order_id: &str, at_risk: bool) -> DeliveryRiskChanged {
    DeliveryRiskChanged {
        order_id: order_id.to_owned(),
        at_risk,
        promised_delivery_date: "2030-01-10".to_owned(),
        projected_delivery_date: "2030-01-20".to_owned(),
        reason: "press line down".to_owned(),
        risk_changed: true,
    }
}

async fn watch(client: &mut Client, request: WatchOrdersRequest) -> Streaming<OrderChange> {
    client
        .watch_orders(request)
        .await
        .expect("watch starts")
        .into_inner()
}

async fn next(stream: &mut Streaming<OrderChange>) -> OrderChange {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a change within the wait")
        .expect("the stream is healthy")
        .expect("the stream is open")
}

/// The orders of the snapshot, and the token of the caught-up marker.
async fn snapshot(stream: &mut Streaming<OrderChange>) -> (Vec<String>, String) {
    let mut orders = Vec::new();
    loop {
        let change = next(stream).await;
        if change.caught_up {
            assert!(change.order.is_none(), "{change:?}");
            return (orders, change.resume_token);
        }
        assert!(change.initial, "{change:?}");
        orders.push(change.order.expect("an order").order_id);
    }
}

/// The next change about `order_id`, passing over changes of others (the
/// order intake touches rows too).
async fn next_about(stream: &mut Streaming<OrderChange>, order_id: &str) -> OrderChange {
    loop {
        let change = next(stream).await;
        if change
            .order
            .as_ref()
            .is_some_and(|o| o.order_id == order_id)
        {
            return change;
        }
    }
}

#[tokio::test]
async fn a_watch_sends_the_list_then_each_change_and_who_left_the_filter() {
    let orders = Orders::start(8).await;
    let mut client = orders.client().await;
    let bus = Bus::connect(&orders._nats.url, "test").await.expect("bus");
    let first = create(&mut client, "watch-1", "Acme").await;
    let second = create(&mut client, "watch-2", "Bolt GmbH").await;

    let mut everything = watch(&mut client, WatchOrdersRequest::default()).await;
    let (listed, _) = snapshot(&mut everything).await;
    assert_eq!(listed, [second.clone(), first.clone()], "newest first");
    let mut at_risk_only = watch(
        &mut client,
        WatchOrdersRequest {
            at_risk_only: true,
            ..Default::default()
        },
    )
    .await;
    let (none, _) = snapshot(&mut at_risk_only).await;
    assert!(none.is_empty(), "{none:?}");

    // The saga flags the first order at risk: both watches see it.
    publish(&bus, &first, &at_risk(&first, true)).await;
    let change = next_about(&mut everything, &first).await;
    assert!(change.order.as_ref().unwrap().at_risk, "{change:?}");
    assert!(!change.initial && !change.left_filter, "{change:?}");
    let change = next_about(&mut at_risk_only, &first).await;
    assert!(change.order.as_ref().unwrap().at_risk, "{change:?}");

    // Back on track: it leaves the at-risk list, once.
    publish(&bus, &first, &at_risk(&first, false)).await;
    let left = next_about(&mut at_risk_only, &first).await;
    assert!(left.left_filter, "{left:?}");
    assert!(!left.order.as_ref().unwrap().at_risk);

    // A filter by customer sees only that customer's orders.
    let mut bolt = watch(
        &mut client,
        WatchOrdersRequest {
            customer: "BOLT".to_owned(),
            ..Default::default()
        },
    )
    .await;
    let (bolts, _) = snapshot(&mut bolt).await;
    assert_eq!(bolts, std::slice::from_ref(&second));

    // Bad requests name the field.
    for (request, field) in [
        (
            WatchOrdersRequest {
                phase: 99,
                ..Default::default()
            },
            "phase",
        ),
        (
            WatchOrdersRequest {
                resume_token: "yesterday".to_owned(),
                ..Default::default()
            },
            "resume_token",
        ),
        (
            WatchOrdersRequest {
                customer: "x".repeat(201),
                ..Default::default()
            },
            "customer",
        ),
    ] {
        let refused = client.watch_orders(request).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(refused.message().contains(field), "{}", refused.message());
    }
    drop((everything, at_risk_only, bolt));
    orders.stop().await;
}

#[tokio::test]
async fn a_watch_started_again_with_a_token_misses_nothing_in_between() {
    let orders = Orders::start(8).await;
    let mut client = orders.client().await;
    let bus = Bus::connect(&orders._nats.url, "test").await.expect("bus");
    let order_id = create(&mut client, "resume-1", "Acme").await;

    let mut first_watch = watch(&mut client, WatchOrdersRequest::default()).await;
    let (_, mut token) = snapshot(&mut first_watch).await;
    publish(&bus, &order_id, &at_risk(&order_id, true)).await;
    let seen = next_about(&mut first_watch, &order_id).await;
    token = if seen.resume_token.is_empty() {
        token
    } else {
        seen.resume_token
    };
    // The client goes away; the order moves on meanwhile.
    drop(first_watch);
    publish(
        &bus,
        &order_id,
        &PhaseChanged {
            order_id: order_id.clone(),
            from: Phase::Received as i32,
            to: Phase::Review as i32,
            projected_delivery_date: String::new(),
        },
    )
    .await;
    // Wait until the change is stored, then resume from the token.
    gendan_tests::eventually(WAIT, "the phase stored", || {
        let mut client = client.clone();
        let order_id = order_id.clone();
        async move {
            let order = client
                .get_order(v1::GetOrderRequest { order_id })
                .await
                .ok()?
                .into_inner();
            (order.phase == Phase::Review as i32).then_some(())
        }
    })
    .await
    .expect("the phase is stored");
    let mut resumed = watch(
        &mut client,
        WatchOrdersRequest {
            resume_token: token,
            ..Default::default()
        },
    )
    .await;
    let caught_up = next(&mut resumed).await;
    assert!(caught_up.caught_up, "no snapshot on resume: {caught_up:?}");
    let change = next_about(&mut resumed, &order_id).await;
    assert_eq!(change.order.unwrap().phase, Phase::Review as i32);
    drop(resumed);
    orders.stop().await;
}

#[tokio::test]
async fn a_replica_refuses_a_watch_beyond_its_cap() {
    let orders = Orders::start(2).await;
    let mut client = orders.client().await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = watch(&mut client, WatchOrdersRequest::default()).await;
        snapshot(&mut stream).await;
        open.push(stream);
    }
    let refused = client
        .watch_orders(WatchOrdersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    // A watch whose client went away frees its place.
    drop(open.pop());
    let reopened = gendan_tests::eventually(WAIT, "a place freed", || {
        let mut client = client.clone();
        async move {
            client
                .watch_orders(WatchOrdersRequest::default())
                .await
                .ok()
                .map(|response| response.into_inner())
        }
    })
    .await
    .expect("a watch gets the freed place");
    drop((open, reopened));
    orders.stop().await;
}
