//! Claims on delivered goods, against the orders service alone over real
//! NATS and PostgreSQL, with the test playing the saga (it moves the order
//! with `PhaseChanged` and sends `ResolveClaim` itself): RaiseClaim only in
//! phase acceptance, every field checked and named with nothing written,
//! the claim priced and announced with `ClaimRaised`, idempotent retries,
//! AcceptOrder refused while a claim is open; ResolveClaim answering
//! `ClaimResolved` as one fact, the customer told, the order accepted by
//! "claims resolved" once the last claim is resolved, a repeat answering
//! again without a second acceptance, and malformed commands dead-lettered
//! with the field named.

use std::time::Duration;

use chrono::Utc;
use gendan_messaging::{Bus, Cause, Outgoing, fact_id, streams};
use gendan_orders::Application;
use gendan_proto::TypeName;
use gendan_proto::v1::order_service_client::OrderServiceClient;
use gendan_proto::v1::{
    self, AcceptOrderRequest, Claim, ClaimKind, ClaimRaised, ClaimResolution, ClaimResolved,
    CreateOrderRequest, GetOrderRequest, GetTimelineRequest, ListClaimsRequest, ListNoticesRequest,
    OrderAccepted, OrderLine, Phase, PhaseChanged, RaiseClaimRequest, ResolveClaim,
};
use gendan_tests::{Running, SubjectReader, enter_test_customers, eventually};
use sqlx::PgPool;
use tonic::Code;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);

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

    async fn bus(&self) -> Bus {
        self.svc.bus.clone()
    }

    /// The service's pool (tables are schema-qualified all the same).
    async fn pool(&self) -> PgPool {
        self.svc.pool.clone()
    }

    async fn reader(&self, stream: &str, subject: &str) -> SubjectReader {
        SubjectReader::open(&self.svc.nats.url, stream, subject)
            .await
            .expect("reader")
    }

    async fn stop(self) {
        self.svc.stop().await.expect("orders stops cleanly");
    }
}

/// An order of 1000 BRKT-100 at 1.25 and 20 BRKT-200 at 50.00 USD.
async fn create(client: &mut Client, client_request_id: &str) -> v1::Order {
    let requested = Utc::now().date_naive() + chrono::Duration::days(30);
    let request = CreateOrderRequest {
        client_request_id: client_request_id.to_owned(),
        customer: "Acme".to_owned(),
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

/// Publishes a saga PhaseChanged and waits until the order shows `to`.
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
        let request = GetOrderRequest {
            order_id: order_id.to_owned(),
        };
        async move {
            let order = client.get_order(request).await.ok()?.into_inner();
            (order.phase == to as i32).then_some(())
        }
    })
    .await
    .expect("phase moved");
}

fn claim_request(order_id: &str, key: &str, product: &str, quantity: u32) -> RaiseClaimRequest {
    RaiseClaimRequest {
        order_id: order_id.to_owned(),
        client_request_id: key.to_owned(),
        kind: ClaimKind::Damage as i32,
        product: product.to_owned(),
        quantity,
        description: "cartons crushed, brackets bent".to_owned(),
        evidence: vec![
            "photo:IMG-0042.jpg".to_owned(),
            "survey SR-2030-88".to_owned(),
        ],
        raised_by: "J. Smith (Acme QA)".to_owned(),
    }
}

async fn raise(client: &mut Client, request: RaiseClaimRequest) -> Result<Claim, tonic::Status> {
    client
        .raise_claim(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn claims(client: &mut Client, order_id: &str) -> Vec<Claim> {
    client
        .list_claims(ListClaimsRequest {
            order_id: order_id.to_owned(),
        })
        .await
        .expect("list claims")
        .into_inner()
        .claims
}

fn accept_request(order_id: &str) -> AcceptOrderRequest {
    AcceptOrderRequest {
        order_id: order_id.to_owned(),
        accepted_by: "J. Smith".to_owned(),
        note: String::new(),
    }
}

/// Sends the saga's ResolveClaim for `claim_id`.
async fn send_resolve(
    bus: &Bus,
    order_id: &str,
    claim_id: &str,
    resolution: ClaimResolution,
    note: &str,
) -> Outgoing {
    let command = Outgoing::command(
        "test",
        "orders",
        order_id,
        &ResolveClaim {
            order_id: order_id.to_owned(),
            claim_id: claim_id.to_owned(),
            resolution: resolution as i32,
            note: note.to_owned(),
        },
        &Cause::root(order_id),
    );
    bus.publish(&command).await.expect("send ResolveClaim");
    command
}

/// Waits until the commands consumer handled `command` (its inbox row).
async fn handled(pool: &PgPool, command: &Outgoing) {
    let message_id = command.event_id().to_owned();
    eventually(WAIT, "the command handled", || {
        let pool = pool.clone();
        let message_id = message_id.clone();
        async move {
            let seen: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM orders.inbox \
                 WHERE consumer = 'orders-commands' AND message_id = $1",
            )
            .bind(&message_id)
            .fetch_one(&pool)
            .await
            .ok()?;
            (seen > 0).then_some(())
        }
    })
    .await
    .expect("command handled");
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count query")
}

/// Claims stored, and `ClaimRaised` entries on the timeline.
async fn claim_rows(pool: &PgPool) -> (i64, i64) {
    let timeline = "SELECT count(*) FROM orders.timeline WHERE type = 'gendan.v1.ClaimRaised'";
    (
        count(pool, "SELECT count(*) FROM orders.claims").await,
        count(pool, timeline).await,
    )
}

#[tokio::test]
async fn claims_are_raised_in_acceptance_only_checked_priced_and_idempotent() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    let pool = orders.pool().await;
    let mut raised_events = orders
        .reader(streams::EVENTS, "gendan.evt.orders.claim_raised")
        .await;
    let id = create(&mut client, "claims-1").await.order_id;

    // Not before delivery.
    let early = raise(&mut client, claim_request(&id, "c-1", "BRKT-200", 2))
        .await
        .expect_err("too early");
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(early.message().contains("phase received"), "{early:?}");
    move_to(&client, &bus, &id, Phase::Received, Phase::Shipping).await;
    let in_transit = raise(&mut client, claim_request(&id, "c-1", "BRKT-200", 2))
        .await
        .expect_err("still too early");
    assert_eq!(in_transit.code(), Code::FailedPrecondition);
    assert!(
        in_transit.message().contains("phase shipping"),
        "{in_transit:?}"
    );

    let stranger = uuid::Uuid::now_v7().to_string();
    let unknown = raise(&mut client, claim_request(&stranger, "c-1", "BRKT-200", 2))
        .await
        .expect_err("unknown order");
    assert_eq!(unknown.code(), Code::NotFound);

    move_to(&client, &bus, &id, Phase::Shipping, Phase::Acceptance).await;

    // Every invalid field is named, and nothing is written.
    type Breaker = fn(&mut RaiseClaimRequest);
    let cases: Vec<(&str, Breaker)> = vec![
        ("order_id", |r| r.order_id = "PO-1".to_owned()),
        ("client_request_id", |r| r.client_request_id = String::new()),
        ("client_request_id", |r| {
            r.client_request_id = "has space".to_owned()
        }),
        ("kind", |r| r.kind = ClaimKind::Unspecified as i32),
        ("kind", |r| r.kind = 99),
        ("product", |r| r.product = " ".to_owned()),
        ("product", |r| r.product = "BOLT-9".to_owned()),
        ("quantity", |r| r.quantity = 0),
        ("quantity", |r| r.quantity = 21),
        ("description", |r| r.description = String::new()),
        ("description", |r| r.description = "d".repeat(2001)),
        ("evidence", |r| r.evidence = vec!["photo".to_owned(); 21]),
        ("evidence[1]", |r| r.evidence[1] = "  ".to_owned()),
        ("evidence[0]", |r| r.evidence[0] = "e".repeat(501)),
        ("raised_by", |r| r.raised_by = String::new()),
        ("raised_by", |r| r.raised_by = "r".repeat(201)),
    ];
    for (n, (field, breaker)) in cases.into_iter().enumerate() {
        let mut bad = claim_request(&id, &format!("bad-{n}"), "BRKT-200", 2);
        breaker(&mut bad);
        let status = raise(&mut client, bad)
            .await
            .expect_err("invalid claim refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().contains(field),
            "{field} not named in {:?}",
            status.message()
        );
    }
    assert_eq!(claim_rows(&pool).await, (0, 0));

    // Two damaged BRKT-200 at 50.00: 100.00 USD.
    let claim = raise(
        &mut client,
        claim_request(&id, "crm-7:claim.1", " BRKT-200 ", 2),
    )
    .await
    .expect("claim raised");
    assert!(uuid::Uuid::parse_str(&claim.claim_id).is_ok(), "{claim:?}");
    assert_eq!(claim.order_id, id);
    assert_eq!(claim.kind(), ClaimKind::Damage);
    assert_eq!((claim.product.as_str(), claim.quantity), ("BRKT-200", 2));
    assert_eq!(claim.value_minor, 10_000);
    assert_eq!(claim.evidence, ["photo:IMG-0042.jpg", "survey SR-2030-88"]);
    assert_eq!(claim.resolution(), ClaimResolution::Unspecified);
    assert!(claim.raised_at.is_some() && claim.resolved_at.is_none());

    // The first ClaimRaised on the stream is this one: the refused
    // requests announced nothing.
    let seen = raised_events
        .next_of_type(ClaimRaised::TYPE_NAME, WAIT)
        .await
        .expect("ClaimRaised on the stream");
    assert_eq!(seen.envelope().expect("envelope").order_id, id);
    let event: ClaimRaised = seen.decode().expect("payload");
    assert_eq!(event.claim.as_ref(), Some(&claim));
    let entries = client
        .get_timeline(GetTimelineRequest {
            order_id: id.clone(),
        })
        .await
        .expect("get timeline")
        .into_inner()
        .entries;
    assert!(
        entries.iter().any(|e| e.summary
            == "Claim raised by J. Smith (Acme QA): damage, 2 × BRKT-200: cartons crushed, \
                brackets bent"),
        "{entries:#?}"
    );

    // A retry with the same request id returns the first claim, whatever
    // else it says, and writes nothing.
    let retried = raise(
        &mut client,
        claim_request(&id, "crm-7:claim.1", "BRKT-100", 9),
    )
    .await
    .expect("retry");
    assert_eq!(retried, claim);
    assert_eq!(claim_rows(&pool).await, (1, 1));

    // 2 of the 20 BRKT-200 are claimed: at most 18 more.
    let too_many = raise(
        &mut client,
        claim_request(&id, "crm-7:claim.2", "BRKT-200", 19),
    )
    .await
    .expect_err("more than delivered");
    assert_eq!(too_many.code(), Code::InvalidArgument);
    assert!(too_many.message().contains("quantity"), "{too_many:?}");
    assert!(
        too_many.message().contains("at most 18 more"),
        "{too_many:?}"
    );
    let second = raise(
        &mut client,
        claim_request(&id, "crm-7:claim.2", "BRKT-200", 18),
    )
    .await
    .expect("the rest claimed");
    assert_eq!(second.value_minor, 90_000);

    assert_eq!(claims(&mut client, &id).await, [claim, second]);
    let malformed = client
        .list_claims(ListClaimsRequest {
            order_id: "PO-1".to_owned(),
        })
        .await
        .expect_err("malformed id");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(malformed.message().contains("order_id"), "{malformed:?}");
    let nobody = client
        .list_claims(ListClaimsRequest {
            order_id: stranger.clone(),
        })
        .await
        .expect_err("unknown order");
    assert_eq!(nobody.code(), Code::NotFound);

    // The goods cannot be accepted while claims are open.
    let refused = client
        .accept_order(accept_request(&id))
        .await
        .expect_err("claims open");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("2 open claims"), "{refused:?}");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM orders.orders WHERE accepted_at IS NOT NULL"
        )
        .await,
        0
    );

    orders.stop().await;
}

#[tokio::test]
async fn resolving_the_last_claim_accepts_the_order_once() {
    let orders = Orders::start().await;
    let mut client = orders.client().await;
    let bus = orders.bus().await;
    let pool = orders.pool().await;
    let mut resolved_events = orders
        .reader(streams::EVENTS, "gendan.evt.orders.claim_resolved")
        .await;
    let mut accepted_events = orders
        .reader(streams::EVENTS, "gendan.evt.orders.order_accepted")
        .await;
    let mut dead = orders
        .reader(streams::DEAD_LETTERS, "gendan.dlq.orders-commands")
        .await;
    let id = create(&mut client, "claims-2").await.order_id;
    move_to(&client, &bus, &id, Phase::Received, Phase::Acceptance).await;

    let damage = raise(&mut client, claim_request(&id, "c-damage", "BRKT-100", 2))
        .await
        .expect("damage claim");
    assert_eq!(damage.value_minor, 250);
    let shortage = raise(
        &mut client,
        RaiseClaimRequest {
            kind: ClaimKind::Shortage as i32,
            ..claim_request(&id, "c-shortage", "BRKT-200", 1)
        },
    )
    .await
    .expect("shortage claim");

    // An unknown claim and a missing resolution are dead-lettered, naming
    // the field; nothing is resolved.
    let unknown_claim = uuid::Uuid::now_v7().to_string();
    send_resolve(&bus, &id, &unknown_claim, ClaimResolution::CreditNote, "").await;
    send_resolve(
        &bus,
        &id,
        &damage.claim_id,
        ClaimResolution::Unspecified,
        "",
    )
    .await;
    for field in ["claim_id", "resolution"] {
        let letter = dead
            .next(WAIT)
            .await
            .expect("dlq read")
            .expect("dead letter");
        let reason = letter.header("Gendan-Dlq-Reason").unwrap_or_default();
        assert!(reason.contains(field), "{field}: {reason}");
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM orders.claims WHERE resolution IS NOT NULL"
        )
        .await,
        0
    );

    // The damage claim is credited: one claim still open.
    let command = send_resolve(
        &bus,
        &id,
        &damage.claim_id,
        ClaimResolution::CreditNote,
        "credit agreed with the buyer",
    )
    .await;
    let seen = resolved_events
        .next_of_type(ClaimResolved::TYPE_NAME, WAIT)
        .await
        .expect("ClaimResolved");
    let envelope = seen.envelope().expect("envelope");
    let fact = fact_id(
        "orders",
        ClaimResolved::TYPE_NAME,
        &id,
        &format!("claim:{}", damage.claim_id),
    );
    assert_eq!(
        envelope.event_id,
        fact.to_string(),
        "a resolution is one fact"
    );
    assert_eq!(envelope.causation_id, command.envelope.event_id);
    let credited: ClaimResolved = seen.decode().expect("payload");
    assert_eq!(credited.open_claims, 1);
    let claim = credited.claim.expect("claim");
    assert_eq!(claim.claim_id, damage.claim_id);
    assert_eq!(claim.resolution(), ClaimResolution::CreditNote);
    assert_eq!(claim.resolution_note, "credit agreed with the buyer");
    assert!(claim.resolved_at.is_some());
    let still_open = client
        .accept_order(accept_request(&id))
        .await
        .expect_err("a claim is open");
    assert!(
        still_open.message().contains("1 open claim"),
        "{still_open:?}"
    );

    // The shortage is rejected: none open, so orders accepts the goods.
    send_resolve(
        &bus,
        &id,
        &shortage.claim_id,
        ClaimResolution::Rejected,
        "counted complete at loading",
    )
    .await;
    let rejected: ClaimResolved = resolved_events
        .next_of_type(ClaimResolved::TYPE_NAME, WAIT)
        .await
        .expect("second ClaimResolved")
        .decode()
        .expect("payload");
    assert_eq!(rejected.open_claims, 0);
    assert_eq!(
        rejected.claim.as_ref().map(Claim::resolution),
        Some(ClaimResolution::Rejected)
    );
    let accepted: OrderAccepted = accepted_events
        .next_of_type(OrderAccepted::TYPE_NAME, WAIT)
        .await
        .expect("OrderAccepted")
        .decode()
        .expect("payload");
    assert_eq!(accepted.order_id, id);
    assert_eq!(accepted.accepted_by, "claims resolved");
    assert!(
        accepted
            .note
            .contains("damage claim on 2 × BRKT-100: credit note"),
        "{}",
        accepted.note
    );
    assert!(
        accepted
            .note
            .contains("shortage claim on 1 × BRKT-200: rejected (counted complete at loading)"),
        "{}",
        accepted.note
    );
    let twice = client
        .accept_order(accept_request(&id))
        .await
        .expect_err("accepted already");
    assert!(twice.message().contains("claims resolved"), "{twice:?}");

    // The customer is told how each claim ended.
    let notices = client
        .list_notices(ListNoticesRequest {
            order_id: id.clone(),
        })
        .await
        .expect("notices")
        .into_inner()
        .notices;
    let claim_notices: Vec<&str> = notices
        .iter()
        .filter(|n| n.kind == "claim")
        .map(|n| n.body.as_str())
        .collect();
    assert_eq!(claim_notices.len(), 2, "{notices:#?}");
    assert!(claim_notices[0].contains("A credit of 2.50 USD will be issued"));
    assert!(
        claim_notices[1].contains("rejected it. The reason: counted complete at loading."),
        "{}",
        claim_notices[1]
    );

    // The saga re-sends (with another answer, even): the stored resolution
    // is answered again, and nothing is accepted, noticed or recorded twice.
    let again = send_resolve(
        &bus,
        &id,
        &shortage.claim_id,
        ClaimResolution::CreditNote,
        "changed our mind",
    )
    .await;
    handled(&pool, &again).await;
    let stored = claims(&mut client, &id).await;
    assert_eq!(stored[1].resolution(), ClaimResolution::Rejected);
    assert_eq!(stored[1].resolution_note, "counted complete at loading");
    for (sql, expected) in [
        (
            "SELECT count(*) FROM orders.timeline WHERE type = 'gendan.v1.OrderAccepted'",
            1,
        ),
        (
            "SELECT count(*) FROM orders.timeline WHERE type = 'gendan.v1.ClaimResolved'",
            2,
        ),
        (
            "SELECT count(*) FROM orders.notices WHERE kind = 'claim'",
            2,
        ),
    ] {
        assert_eq!(count(&pool, sql).await, expected, "{sql}");
    }

    // Accepted: no new claim, but a retried raise still finds its claim.
    let late = raise(&mut client, claim_request(&id, "c-late", "BRKT-100", 1))
        .await
        .expect_err("accepted already");
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert!(late.message().contains("phase acceptance"), "{late:?}");
    let retried = raise(&mut client, claim_request(&id, "c-damage", "BRKT-100", 2))
        .await
        .expect("retry after acceptance");
    assert_eq!(retried.claim_id, damage.claim_id);
    assert_eq!(retried.resolution(), ClaimResolution::CreditNote);

    orders.stop().await;
}
