//! Order amendments, against the orders service alone over real NATS and
//! PostgreSQL, with the test playing the saga (it moves the order with
//! `PhaseChanged` and sends `ConfirmOrder` itself): AmendOrder in phase
//! production replaces the lines, total and requested date, announces
//! `OrderAmended` as one fact with what changed, and is on the timeline and
//! in the customer's notices; every field is checked and named with nothing
//! written; a retry returns the first amendment and announces nothing;
//! unknown orders, shipped orders and request ids of another order are
//! refused. The amended order moves back to review, is confirmed again
//! with revision 2 and a new promised date (the customer is told why), and
//! a re-sent or older ConfirmOrder answers with the stored revision's event.

use std::time::Duration;

use chrono::Utc;
use gendan_messaging::{Bus, Cause, Outgoing, fact_id, streams};
use gendan_orders::Application;
use gendan_proto::TypeName;
use gendan_proto::v1::order_service_client::OrderServiceClient;
use gendan_proto::v1::{
    self, AmendOrderRequest, Amendment, ConfirmOrder, CreateOrderRequest, GetOrderRequest,
    GetTimelineRequest, ListAmendmentsRequest, ListNoticesRequest, OrderAmended, OrderConfirmed,
    OrderLine, Phase, PhaseChanged,
};
use gendan_tests::{Running, SubjectReader, enter_test_customers, eventually};
use sqlx::PgPool;
use tonic::Code;
use tonic::transport::Channel;

/// Generous: the machine may be busy with other test binaries.
const WAIT: Duration = Duration::from_secs(30);

type Client = OrderServiceClient<Channel>;

/// A running orders service on its own database and NATS server.
struct Orders {
    svc: Running,
}

impl Orders {
    async fn start() -> Orders {
        let svc = Running::start("orders", Application::build)
            .await
            .expect("orders starts");
        // Orders are for "Acme", which must be in the customer master.
        enter_test_customers(&svc.endpoint())
            .await
            .expect("test customers entered");
        Orders { svc }
    }

    async fn client(&self) -> Client {
        OrderServiceClient::connect(self.svc.endpoint())
            .await
            .expect("orders grpc")
    }

    fn bus(&self) -> Bus {
        self.svc.bus.clone()
    }

    async fn reader(&self, subject: &str) -> SubjectReader {
        SubjectReader::open(&self.svc.nats.url, streams::EVENTS, subject)
            .await
            .expect("reader")
    }

    async fn stop(self) {
        self.svc.stop().await.expect("orders stops cleanly");
    }
}

fn line(product: &str, spec: &str, quantity: u32, unit_price_minor: i64) -> OrderLine {
    OrderLine {
        product: product.to_owned(),
        spec: spec.to_owned(),
        quantity,
        unit_price_minor,
    }
}

/// An order of 100 SHIRT-01 (blue) at 12.00 and 40 CAP-03 at 3.00 USD,
/// wanted in 30 days.
async fn create(client: &mut Client, client_request_id: &str) -> v1::Order {
    let requested = Utc::now().date_naive() + chrono::Duration::days(30);
    let request = CreateOrderRequest {
        client_request_id: client_request_id.to_owned(),
        customer: "Acme".to_owned(),
        lines: vec![
            line("SHIRT-01", "blue", 100, 1200),
            line("CAP-03", "", 40, 300),
        ],
        currency: "USD".to_owned(),
        requested_delivery_date: gendan_proto::date_to_string(requested),
        incoterm: "FOB".to_owned(),
        payment_terms: "30% T/T deposit, 70% against B/L copy".to_owned(),
        export: true,
        customer_id: String::new(),
    };
    client
        .create_order(request)
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

/// Publishes the saga's PhaseChanged `from` → `to` and waits until the
/// order shows `to` (back as well as forward).
async fn move_to(client: &Client, bus: &Bus, order_id: &str, from: Phase, to: Phase) {
    let moved = Outgoing::event(
        "saga",
        order_id,
        &PhaseChanged {
            order_id: order_id.to_owned(),
            from: from as i32,
            to: to as i32,
            projected_delivery_date: String::new(),
        },
        &Cause::root(order_id),
    );
    bus.publish(&moved).await.expect("publish");
    eventually(WAIT, "the order in its new phase", || {
        let mut client = client.clone();
        let order_id = order_id.to_owned();
        async move {
            let order = get(&mut client, &order_id).await;
            (order.phase == to as i32).then_some(())
        }
    })
    .await
    .expect("phase moved");
}

/// The amendment of the first test: SHIRT-01 to 120 navy at 12.50,
/// CAP-03 removed, 50 TROUSER-02 added, the date 14 days later.
fn amend_request(order: &v1::Order, key: &str) -> AmendOrderRequest {
    let requested =
        gendan_proto::date_from_str(&order.requested_delivery_date).expect("requested date");
    AmendOrderRequest {
        order_id: order.order_id.clone(),
        client_request_id: key.to_owned(),
        lines: vec![
            line("SHIRT-01", "navy", 120, 1250),
            line("TROUSER-02", "slim", 50, 2000),
        ],
        requested_delivery_date: gendan_proto::date_to_string(
            requested + chrono::Duration::days(14),
        ),
        reason: "PO rev B".to_owned(),
        requested_by: "buyer@acme".to_owned(),
    }
}

async fn amend(
    client: &mut Client,
    request: AmendOrderRequest,
) -> Result<Amendment, tonic::Status> {
    client
        .amend_order(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn amendments(client: &mut Client, order_id: &str) -> Vec<Amendment> {
    client
        .list_amendments(ListAmendmentsRequest {
            order_id: order_id.to_owned(),
        })
        .await
        .expect("list amendments")
        .into_inner()
        .amendments
}

async fn notices(client: &mut Client, order_id: &str) -> Vec<v1::CustomerNotice> {
    client
        .list_notices(ListNoticesRequest {
            order_id: order_id.to_owned(),
        })
        .await
        .expect("notices")
        .into_inner()
        .notices
}

async fn timeline(client: &mut Client, order_id: &str) -> Vec<v1::TimelineEntry> {
    client
        .get_timeline(GetTimelineRequest {
            order_id: order_id.to_owned(),
        })
        .await
        .expect("timeline")
        .into_inner()
        .entries
}

async fn count(pool: &PgPool, sql: &'static str, order_id: &str) -> i64 {
    let id = uuid::Uuid::parse_str(order_id).expect("order id");
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("count query")
}

const AMENDED_ON_TIMELINE: &str =
    "SELECT count(*) FROM timeline WHERE order_id = $1 AND type = 'gendan.v1.OrderAmended'";
const AMENDMENT_ROWS: &str = "SELECT count(*) FROM order_amendments WHERE order_id = $1";
const CONFIRMED_ON_TIMELINE: &str =
    "SELECT count(*) FROM timeline WHERE order_id = $1 AND type = 'gendan.v1.OrderConfirmed'";

#[tokio::test]
async fn amendments_are_checked_applied_announced_once_and_idempotent() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus();
    let pool = orders.svc.pool.clone();
    let mut amended_events = orders.reader("gendan.evt.orders.order_amended").await;
    let created = create(&mut client, "amend-1").await;
    let id = created.order_id.clone();

    let stranger = uuid::Uuid::now_v7().to_string();
    let unknown = amend(
        &mut client,
        AmendOrderRequest {
            order_id: stranger.clone(),
            ..amend_request(&created, "a-unknown")
        },
    )
    .await
    .expect_err("unknown order");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let nobody = client
        .list_amendments(ListAmendmentsRequest {
            order_id: stranger.clone(),
        })
        .await
        .expect_err("unknown order");
    assert_eq!(nobody.code(), Code::NotFound);

    move_to(&client, &bus, &id, Phase::Received, Phase::Materials).await;
    let before = get(&mut client, &id).await;

    // Every invalid field is named, and nothing is written.
    let yesterday =
        gendan_proto::date_to_string(Utc::now().date_naive() - chrono::Duration::days(1));
    type Breaker = fn(&mut AmendOrderRequest);
    let cases: Vec<(&str, Breaker)> = vec![
        ("order_id", |r| r.order_id = "PO-1".to_owned()),
        ("client_request_id", |r| r.client_request_id.clear()),
        ("client_request_id", |r| {
            r.client_request_id = "has space".to_owned()
        }),
        ("lines", |r| r.lines.clear()),
        ("lines", |r| r.lines = vec![r.lines[0].clone(); 501]),
        ("lines[1].product", |r| r.lines[1].product = " ".to_owned()),
        ("lines[1].product", |r| {
            r.lines[1].product = "SHIRT-01".to_owned()
        }),
        ("lines[0].spec", |r| r.lines[0].spec = "s".repeat(2001)),
        ("lines[0].quantity", |r| r.lines[0].quantity = 0),
        ("lines[0].unit_price_minor", |r| {
            r.lines[0].unit_price_minor = -1
        }),
        ("requested_delivery_date", |r| {
            r.requested_delivery_date = "15/03/2027".to_owned()
        }),
        ("reason", |r| r.reason.clear()),
        ("reason", |r| r.reason = "r".repeat(501)),
        ("requested_by", |r| r.requested_by = " ".to_owned()),
        ("requested_by", |r| r.requested_by = "b".repeat(201)),
    ];
    let mut requests: Vec<(String, AmendOrderRequest)> = cases
        .into_iter()
        .enumerate()
        .map(|(n, (field, breaker))| {
            let mut bad = amend_request(&before, &format!("bad-{n}"));
            breaker(&mut bad);
            (field.to_owned(), bad)
        })
        .collect();
    let mut past = amend_request(&before, "bad-past");
    past.requested_delivery_date = yesterday;
    requests.push(("requested_delivery_date".to_owned(), past));
    // The order's own lines and date: it changes nothing.
    let mut same = amend_request(&before, "bad-same");
    same.lines = before.lines.clone();
    same.requested_delivery_date = String::new();
    requests.push(("changes nothing".to_owned(), same));
    for (field, bad) in requests {
        let status = amend(&mut client, bad).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().contains(&field),
            "{field} not named in {:?}",
            status.message()
        );
    }
    assert!(amendments(&mut client, &id).await.is_empty());
    assert_eq!(
        get(&mut client, &id).await,
        before,
        "the order is unchanged"
    );
    assert_eq!(count(&pool, AMENDMENT_ROWS, &id).await, 0);
    assert_eq!(count(&pool, AMENDED_ON_TIMELINE, &id).await, 0);

    // The amendment: lines, total and date replaced, what changed named.
    let request = amend_request(&before, "erp-7:amend.1");
    let amendment = amend(&mut client, request.clone()).await.expect("amended");
    assert!(uuid::Uuid::parse_str(&amendment.amendment_id).is_ok());
    assert_eq!(amendment.order_id, id);
    assert_eq!(amendment.number, 1);
    assert_eq!(amendment.phase, Phase::Materials as i32);
    assert_eq!(amendment.reason, "PO rev B");
    assert_eq!(amendment.requested_by, "buyer@acme");
    assert_eq!(amendment.lines_before, before.lines);
    assert_eq!(amendment.lines_after, request.lines);
    assert_eq!(amendment.total_before_minor, 132_000);
    assert_eq!(amendment.total_after_minor, 250_000);
    assert_eq!(
        amendment.requested_date_before,
        before.requested_delivery_date
    );
    assert_eq!(
        amendment.requested_date_after,
        request.requested_delivery_date
    );
    assert!(amendment.amended_at.is_some());
    let date_change = format!(
        "requested date {} → {}",
        before.requested_delivery_date, request.requested_delivery_date
    );
    assert_eq!(
        amendment.changes,
        [
            "SHIRT-01 quantity 100 → 120",
            "SHIRT-01 spec \"blue\" → \"navy\"",
            "SHIRT-01 unit price 12.00 → 12.50",
            "removed CAP-03 (40)",
            "added TROUSER-02 × 50",
            date_change.as_str(),
        ]
    );

    let order = get(&mut client, &id).await;
    assert_eq!(order.lines, request.lines);
    assert_eq!(order.total_minor, 250_000);
    assert_eq!(
        order.requested_delivery_date,
        request.requested_delivery_date
    );
    assert_eq!(order.phase, Phase::Materials as i32);

    // One fact on the stream: the order as amended and the amendment.
    let seen = amended_events
        .next_of_type(OrderAmended::TYPE_NAME, WAIT)
        .await
        .expect("OrderAmended on the stream");
    let envelope = seen.envelope().expect("envelope");
    let fact = fact_id(
        "orders",
        OrderAmended::TYPE_NAME,
        &id,
        &format!("amendment:{id}:1"),
    );
    assert_eq!(envelope.event_id, fact.to_string());
    let event: OrderAmended = seen.decode().expect("payload");
    assert_eq!(event.amendment.as_ref(), Some(&amendment));
    assert_eq!(event.order.as_ref(), Some(&order));

    // On the timeline, and the customer is told.
    let summary = format!(
        "Amendment 1 by buyer@acme (PO rev B): {}",
        amendment.changes.join("; ")
    );
    let entries = timeline(&mut client, &id).await;
    assert!(
        entries
            .iter()
            .any(|e| e.event_id == envelope.event_id && e.summary == summary),
        "{entries:#?}"
    );
    let told = notices(&mut client, &id).await;
    let notice = told
        .iter()
        .find(|n| n.kind == "amendment")
        .expect("amendment notice");
    assert!(
        notice.body.contains("We received your amendment 1")
            && notice.body.contains("SHIRT-01 quantity 100 → 120"),
        "{}",
        notice.body
    );

    // A retry (whatever else it says) returns the first amendment and
    // writes nothing.
    let mut retry = amend_request(&order, "erp-7:amend.1");
    retry.lines[0].quantity = 999;
    assert_eq!(amend(&mut client, retry).await.expect("retry"), amendment);
    assert_eq!(
        amendments(&mut client, &id).await,
        std::slice::from_ref(&amendment)
    );
    assert_eq!(count(&pool, AMENDMENT_ROWS, &id).await, 1);
    assert_eq!(count(&pool, AMENDED_ON_TIMELINE, &id).await, 1);

    // A second amendment is number 2, and it is the next OrderAmended on
    // the stream: the retry announced nothing.
    let second = amend(
        &mut client,
        AmendOrderRequest {
            order_id: id.clone(),
            client_request_id: "erp-7:amend.2".to_owned(),
            lines: vec![
                line("SHIRT-01", "navy", 130, 1250),
                line("TROUSER-02", "slim", 50, 2000),
            ],
            requested_delivery_date: String::new(),
            reason: "PO rev C".to_owned(),
            requested_by: "buyer@acme".to_owned(),
        },
    )
    .await
    .expect("second amendment");
    assert_eq!(second.number, 2);
    assert_eq!(second.changes, ["SHIRT-01 quantity 120 → 130"]);
    assert_eq!(second.requested_date_after, second.requested_date_before);
    let next: OrderAmended = amended_events
        .next_of_type(OrderAmended::TYPE_NAME, WAIT)
        .await
        .expect("second OrderAmended")
        .decode()
        .expect("payload");
    assert_eq!(next.amendment.map(|a| a.number), Some(2));
    assert_eq!(amendments(&mut client, &id).await, [amendment, second]);

    // Another order: the same request id is refused; once shipped, no
    // amendment; nothing written on it.
    let other = create(&mut client, "amend-2").await;
    let reused = amend(&mut client, amend_request(&other, "erp-7:amend.1"))
        .await
        .expect_err("request id of another order");
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert!(reused.message().contains("client_request_id"), "{reused:?}");
    move_to(
        &client,
        &bus,
        &other.order_id,
        Phase::Received,
        Phase::Shipping,
    )
    .await;
    let shipped = amend(&mut client, amend_request(&other, "a-shipped"))
        .await
        .expect_err("shipped");
    assert_eq!(shipped.code(), Code::FailedPrecondition);
    assert!(shipped.message().contains("shipping"), "{shipped:?}");
    assert!(amendments(&mut client, &other.order_id).await.is_empty());
    assert_eq!(count(&pool, AMENDMENT_ROWS, &other.order_id).await, 0);

    orders.stop().await;
}

/// Sends the saga's ConfirmOrder.
async fn send_confirm(bus: &Bus, order_id: &str, promised: &str, revision: u32) {
    let command = Outgoing::command(
        "test",
        "orders",
        order_id,
        &ConfirmOrder {
            order_id: order_id.to_owned(),
            promised_delivery_date: promised.to_owned(),
            revision,
        },
        &Cause::root(order_id),
    );
    bus.publish(&command).await.expect("send ConfirmOrder");
}

/// The promised date and confirmed revision the order row holds.
async fn promise(pool: &PgPool, order_id: &str) -> (Option<chrono::NaiveDate>, i32) {
    sqlx::query_as(
        "SELECT promised_delivery_date, confirmed_revision FROM orders WHERE order_id = $1",
    )
    .bind(uuid::Uuid::parse_str(order_id).expect("order id"))
    .fetch_one(pool)
    .await
    .expect("promise query")
}

#[tokio::test]
async fn an_amended_order_is_confirmed_again_with_the_next_revision() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus();
    let pool = orders.svc.pool.clone();
    let mut confirmed = orders.reader("gendan.evt.orders.order_confirmed").await;
    let order = create(&mut client, "confirm-again-1").await;
    let id = order.order_id.clone();
    let today = Utc::now().date_naive();
    let first_date = gendan_proto::date_to_string(today + chrono::Duration::days(35));
    let second_date = gendan_proto::date_to_string(today + chrono::Duration::days(50));

    // The first confirmation: revision 0 counts as 1.
    send_confirm(&bus, &id, &first_date, 0).await;
    let seen = confirmed
        .next_of_type(OrderConfirmed::TYPE_NAME, WAIT)
        .await
        .expect("OrderConfirmed");
    let first_id = seen.envelope().expect("envelope").event_id;
    let fact = |revision: u32| {
        fact_id(
            "orders",
            OrderConfirmed::TYPE_NAME,
            &id,
            &format!("confirmation:{id}:{revision}"),
        )
        .to_string()
    };
    assert_eq!(first_id, fact(1));
    let first: OrderConfirmed = seen.decode().expect("payload");
    assert_eq!(first.promised_delivery_date, first_date);
    assert_eq!(first.revision, 1);

    move_to(&client, &bus, &id, Phase::Received, Phase::Confirmed).await;
    move_to(&client, &bus, &id, Phase::Confirmed, Phase::Production).await;
    // The goods are being made: their spec cannot change any more.
    let respec = amend(&mut client, amend_request(&order, "crm:amend-0"))
        .await
        .expect_err("a spec change in production");
    assert_eq!(respec.code(), Code::FailedPrecondition);
    assert!(respec.message().contains("lines[0].spec"), "{respec:?}");
    let mut request = amend_request(&order, "crm:amend-1");
    request.lines[0].spec = order.lines[0].spec.clone();
    let amendment = amend(&mut client, request)
        .await
        .expect("amended in production");
    assert_eq!(amendment.number, 1);

    // The saga reviews it: the order goes back to review (a move back the
    // orders service follows because it starts where the order is).
    move_to(&client, &bus, &id, Phase::Production, Phase::Review).await;
    send_confirm(&bus, &id, &second_date, 2).await;
    let seen = confirmed
        .next_of_type(OrderConfirmed::TYPE_NAME, WAIT)
        .await
        .expect("OrderConfirmed of revision 2");
    let second_id = seen.envelope().expect("envelope").event_id;
    assert_eq!(second_id, fact(2));
    let again: OrderConfirmed = seen.decode().expect("payload");
    assert_eq!(again.revision, 2);
    assert_eq!(again.promised_delivery_date, second_date);
    let second_day = gendan_proto::date_from_str(&second_date);
    assert_eq!(promise(&pool, &id).await, (second_day, 2));

    let entries = timeline(&mut client, &id).await;
    let expected =
        format!("Order confirmed again (amendment): delivery promised for {second_date}");
    assert!(
        entries
            .iter()
            .any(|e| e.event_id == second_id && e.summary == expected),
        "{entries:#?}"
    );
    let told = notices(&mut client, &id).await;
    let again_notices: Vec<&v1::CustomerNotice> = told
        .iter()
        .filter(|n| n.kind == "confirmed_again")
        .collect();
    assert_eq!(again_notices.len(), 1, "{told:#?}");
    let body = &again_notices[0].body;
    assert!(
        body.contains("After amendment 1 (PO rev B): SHIRT-01 quantity 100 → 120")
            && body.contains(&second_date),
        "{body}"
    );

    // Re-sent (with another date, even), and an older revision: the stored
    // revision 2 is answered again under its own event id, so nothing new
    // is recorded, changed or told.
    let third_date = gendan_proto::date_to_string(today + chrono::Duration::days(60));
    for (date, revision) in [(&third_date, 2), (&first_date, 1)] {
        let command = ConfirmOrder {
            order_id: id.clone(),
            promised_delivery_date: date.clone(),
            revision,
        };
        gendan_tests::repeat_command(&bus, &pool, "orders", &id, &command)
            .await
            .expect("repeat handled");
        assert_eq!(
            promise(&pool, &id).await,
            (second_day, 2),
            "revision {revision}"
        );
    }
    assert_eq!(count(&pool, CONFIRMED_ON_TIMELINE, &id).await, 2);
    let confirmations: Vec<String> = timeline(&mut client, &id)
        .await
        .into_iter()
        .filter(|e| e.r#type == OrderConfirmed::TYPE_NAME)
        .map(|e| e.event_id)
        .collect();
    assert_eq!(confirmations, [fact(1), fact(2)]);
    let told = notices(&mut client, &id).await;
    let again_told = told.iter().filter(|n| n.kind == "confirmed_again").count();
    assert_eq!(again_told, 1);

    // Forward again to confirmed: the order follows, and the customer, who
    // heard of that phase already, gets no second phase notice.
    move_to(&client, &bus, &id, Phase::Review, Phase::Confirmed).await;
    let told = notices(&mut client, &id).await;
    let phases: Vec<&str> = told
        .iter()
        .filter(|n| n.kind == "phase")
        .map(|n| n.subject.as_str())
        .collect();
    assert_eq!(phases.len(), 2, "{phases:?}");

    orders.stop().await;
}
