//! The customer master of the orders service, over real NATS and
//! PostgreSQL: UpsertCustomer creates and replaces (keeping `created_at`),
//! GetCustomer reads one (`NotFound` for an unknown id), ListCustomers pages
//! in id order and filters by name; every invalid field is refused naming
//! it with nothing written, and so is a name another customer has (case
//! aside). CreateOrder finds its customer by id, or by the `customer` text
//! as an id and then as a name (case and spaces aside), refuses an unknown
//! one writing nothing, fills the currency, incoterm and terms the request
//! left out from the customer and keeps those it gave, and copies the
//! customer's rules onto the order, where a later change to the customer
//! does not reach. ListOrders finds a customer's orders by id or name.

use chrono::Utc;
use gendan_orders::Application;
use gendan_proto::v1::order_service_client::OrderServiceClient;
use gendan_proto::v1::{
    CreateOrderRequest, Customer, CustomerRules, GetCustomerRequest, GetOrderRequest,
    ListCustomersRequest, ListOrdersRequest, Order, OrderLine,
};
use gendan_tests::{Running, test_customer};
use sqlx::PgPool;
use tonic::Code;
use tonic::transport::Channel;

type Client = OrderServiceClient<Channel>;

async fn start() -> (Running, Client) {
    let svc = Running::start("orders", Application::build)
        .await
        .expect("orders starts");
    let client = OrderServiceClient::connect(svc.endpoint())
        .await
        .expect("orders grpc");
    (svc, client)
}

async fn upsert(client: &mut Client, customer: Customer) -> Result<Customer, tonic::Status> {
    client
        .upsert_customer(customer)
        .await
        .map(tonic::Response::into_inner)
}

async fn get(client: &mut Client, customer_id: &str) -> Result<Customer, tonic::Status> {
    client
        .get_customer(GetCustomerRequest {
            customer_id: customer_id.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The ids of a ListCustomers page and its next token.
async fn page(client: &mut Client, request: ListCustomersRequest) -> (Vec<String>, String) {
    let page = client
        .list_customers(request)
        .await
        .expect("list customers")
        .into_inner();
    let ids = page.customers.into_iter().map(|c| c.customer_id).collect();
    (ids, page.next_page_token)
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count query")
}

/// 600 shirts wanted in 30 days, for the customer named by id or `customer`
/// text, currency, incoterm and terms left to the customer.
fn order_request(client_request_id: &str, customer_id: &str, customer: &str) -> CreateOrderRequest {
    let requested = Utc::now().date_naive() + chrono::Duration::days(30);
    CreateOrderRequest {
        client_request_id: client_request_id.to_owned(),
        customer_id: customer_id.to_owned(),
        customer: customer.to_owned(),
        lines: vec![OrderLine {
            product: "shirt-oxford".to_owned(),
            spec: String::new(),
            quantity: 600,
            unit_price_minor: 750,
        }],
        currency: String::new(),
        requested_delivery_date: gendan_proto::date_to_string(requested),
        incoterm: String::new(),
        payment_terms: String::new(),
        export: true,
    }
}

async fn create(client: &mut Client, request: CreateOrderRequest) -> Result<Order, tonic::Status> {
    client
        .create_order(request)
        .await
        .map(|response| response.into_inner().order.expect("order in response"))
}

async fn orders_of(client: &mut Client, customer: &str) -> Vec<String> {
    client
        .list_orders(ListOrdersRequest {
            customer: customer.to_owned(),
            ..Default::default()
        })
        .await
        .expect("list orders")
        .into_inner()
        .orders
        .into_iter()
        .map(|order| order.order_id)
        .collect()
}

/// Nordwind with rules of its own and defaults unlike the tests' orders.
fn nordwind() -> Customer {
    Customer {
        currency: "EUR".to_owned(),
        incoterm: "CIF".to_owned(),
        payment_terms: "NET30".to_owned(),
        notice_webhook_url: "http://relay.internal:8080/nordwind".to_owned(),
        // INSPECTION_LEVEL_GENERAL_III
        inspection_level: 3,
        major_aql: Some(1.0),
        final_inspection_failures: 3,
        dunning_reminder_days: vec![5, 20],
        credit_limit_minor: 10_000_000,
        min_margin_bp: 800,
        ..test_customer("NORDWIND", "Nordwind GmbH")
    }
}

#[tokio::test]
async fn customers_are_upserted_read_and_listed_a_page_at_a_time() {
    let (svc, mut client) = start().await;
    let entered = [
        ("ATLAS", "Atlas Retail"),
        ("HANGZHOU.JY", "Hangzhou Jinyu Apparel"),
        ("LUMEN", "Lumen SA"),
        ("MAPLE", "Maple & Co"),
        ("NORDWIND", "Nordwind GmbH"),
    ];
    // Entered backwards: the list is in id order all the same.
    for (id, name) in entered.iter().rev() {
        upsert(&mut client, test_customer(id, name))
            .await
            .expect("customer entered");
    }

    // Replaced whole: every field as sent, created_at kept.
    let first = get(&mut client, "NORDWIND").await.expect("get");
    let stored = upsert(&mut client, nordwind()).await.expect("replaced");
    assert_eq!(
        Customer {
            created_at: None,
            updated_at: None,
            ..stored.clone()
        },
        nordwind()
    );
    assert_eq!(stored.created_at, first.created_at);
    let at = |customer: &Customer| {
        customer
            .updated_at
            .as_ref()
            .and_then(gendan_proto::timestamp_to)
    };
    assert!(at(&stored) >= at(&first));
    assert_eq!(get(&mut client, "NORDWIND").await.expect("get"), stored);
    // The name is kept trimmed.
    let trimmed = upsert(&mut client, test_customer("LUMEN", "  Lumen SA "))
        .await
        .expect("trimmed");
    assert_eq!(trimmed.name, "Lumen SA");

    // Two a page, each exactly once, in id order.
    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let (ids, next) = page(
            &mut client,
            ListCustomersRequest {
                page_size: 2,
                page_token: page_token.clone(),
                ..Default::default()
            },
        )
        .await;
        pages += 1;
        assert!(ids.len() <= 2);
        seen.extend(ids);
        if next.is_empty() {
            break;
        }
        page_token = next;
    }
    assert_eq!(pages, 3);
    let ids: Vec<&str> = entered.iter().map(|(id, _)| *id).collect();
    assert_eq!(seen, ids);
    let (all, next) = page(&mut client, ListCustomersRequest::default()).await;
    assert_eq!(all, ids, "page size 0 is 50");
    assert!(next.is_empty());

    // Names containing a text, case and spaces aside; % is no wildcard.
    let by_name = |text: &str| ListCustomersRequest {
        name_contains: text.to_owned(),
        ..Default::default()
    };
    assert_eq!(page(&mut client, by_name(" gmbh ")).await.0, ["NORDWIND"]);
    assert_eq!(page(&mut client, by_name("&")).await.0, ["MAPLE"]);
    assert!(page(&mut client, by_name("%")).await.0.is_empty());
    assert_eq!(
        page(&mut client, by_name("r")).await.0,
        ["ATLAS", "HANGZHOU.JY", "NORDWIND"]
    );

    let bad_token = client
        .list_customers(ListCustomersRequest {
            page_token: "not-a-token".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("bad token");
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    assert!(bad_token.message().contains("page_token"), "{bad_token:?}");

    let unknown = get(&mut client, "GHOST").await.expect_err("unknown id");
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("GHOST"), "{unknown:?}");
    let malformed = get(&mut client, "no such id").await.expect_err("malformed");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(malformed.message().contains("customer_id"), "{malformed:?}");

    svc.stop().await.expect("orders stops cleanly");
}

#[tokio::test]
async fn invalid_customers_are_refused_naming_the_field_and_nothing_is_written() {
    let (svc, mut client) = start().await;
    let rows = "SELECT count(*) FROM orders.customers";

    type Breaker = fn(&mut Customer);
    let cases: Vec<(&str, Breaker)> = vec![
        ("customer_id", |c| c.customer_id = String::new()),
        ("customer_id", |c| c.customer_id = "NORD WIND".to_owned()),
        ("customer_id", |c| c.customer_id = "N".repeat(65)),
        ("name", |c| c.name = "  ".to_owned()),
        ("name", |c| c.name = "n".repeat(201)),
        ("country", |c| c.country = "de".to_owned()),
        ("country", |c| c.country = "XX".to_owned()),
        ("currency", |c| c.currency = "eur".to_owned()),
        ("payment_terms", |c| c.payment_terms = String::new()),
        ("payment_terms", |c| c.payment_terms = "p".repeat(201)),
        ("incoterm", |c| c.incoterm = "DDU".to_owned()),
        ("notice_webhook_url", |c| {
            c.notice_webhook_url = "ftp://hooks.example.com/n".to_owned()
        }),
        ("notice_webhook_url", |c| {
            c.notice_webhook_url = "relay without scheme".to_owned()
        }),
        ("notice_webhook_url", |c| {
            c.notice_webhook_url = format!("http://relay/{}", "x".repeat(2000))
        }),
        ("inspection_level", |c| c.inspection_level = 9),
        ("major_aql", |c| c.major_aql = Some(3.0)),
        ("final_inspection_failures", |c| {
            c.final_inspection_failures = 11
        }),
        ("dunning_reminder_days", |c| {
            c.dunning_reminder_days = (1..=11).collect()
        }),
        ("dunning_reminder_days[1]", |c| {
            c.dunning_reminder_days = vec![7, 7]
        }),
        ("dunning_reminder_days[0]", |c| {
            c.dunning_reminder_days = vec![400]
        }),
        ("credit_limit_minor", |c| c.credit_limit_minor = -1),
        ("credit_limit_minor", |c| {
            c.credit_limit_minor = 1_000_000_000_000_001
        }),
        ("min_margin_bp", |c| c.min_margin_bp = 10_001),
    ];
    for (field, breaker) in cases {
        let mut bad = nordwind();
        breaker(&mut bad);
        let status = upsert(&mut client, bad).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().contains(&format!("invalid {field}:")),
            "{field} not named in {:?}",
            status.message()
        );
    }
    assert_eq!(count(&svc.pool, rows).await, 0);

    // One name per customer, case aside; the same customer may change the
    // case of its own.
    upsert(&mut client, test_customer("ACME", "Acme Trading"))
        .await
        .expect("first");
    let duplicate = upsert(&mut client, test_customer("ACME2", "ACME TRADING"))
        .await
        .expect_err("duplicate name");
    assert_eq!(duplicate.code(), Code::InvalidArgument);
    assert!(
        duplicate.message().contains("invalid name:"),
        "{duplicate:?}"
    );
    assert_eq!(count(&svc.pool, rows).await, 1);
    let renamed = upsert(&mut client, test_customer("ACME", "ACME Trading"))
        .await
        .expect("own name, other case");
    assert_eq!(renamed.name, "ACME Trading");

    // A refused replacement leaves the customer as it was.
    let mut bad = test_customer("ACME", "Acme Trading");
    bad.country = "Deutschland".to_owned();
    upsert(&mut client, bad).await.expect_err("refused");
    assert_eq!(get(&mut client, "ACME").await.expect("get"), renamed);

    svc.stop().await.expect("orders stops cleanly");
}

#[tokio::test]
async fn orders_find_their_customer_take_its_defaults_and_keep_its_rules() {
    let (svc, mut client) = start().await;
    upsert(&mut client, nordwind()).await.expect("nordwind");

    // Unknown customers and none at all: refused, nothing written.
    let unknown_id = create(&mut client, order_request("po-1", "NOPE", ""))
        .await
        .expect_err("unknown id");
    assert_eq!(unknown_id.code(), Code::InvalidArgument);
    assert!(
        unknown_id
            .message()
            .contains("invalid customer_id: no customer \"NOPE\" (see ListCustomers)"),
        "{unknown_id:?}"
    );
    let unknown_name = create(&mut client, order_request("po-2", "", "Südwind AG"))
        .await
        .expect_err("unknown name");
    assert_eq!(unknown_name.code(), Code::InvalidArgument);
    assert!(
        unknown_name
            .message()
            .contains("invalid customer: no customer \"Südwind AG\" (see ListCustomers)"),
        "{unknown_name:?}"
    );
    let nobody = create(&mut client, order_request("po-3", "", " "))
        .await
        .expect_err("no customer");
    assert_eq!(nobody.code(), Code::InvalidArgument);
    assert!(
        nobody.message().contains("invalid customer_id:"),
        "{nobody:?}"
    );
    for table in [
        "SELECT count(*) FROM orders.orders",
        "SELECT count(*) FROM orders.order_lines",
        "SELECT count(*) FROM orders.create_requests",
        "SELECT count(*) FROM orders.timeline",
        "SELECT count(*) FROM orders.outbox",
    ] {
        assert_eq!(count(&svc.pool, table).await, 0, "{table}");
    }

    // By name, case and spaces aside (the request id of the refused call is
    // free again): the master's name, id, defaults and rules.
    let by_name = create(&mut client, order_request("po-1", "", "  nordwind gmbh "))
        .await
        .expect("by name");
    assert_eq!(by_name.customer, "Nordwind GmbH");
    assert_eq!(by_name.customer_id, "NORDWIND");
    assert_eq!(
        (
            by_name.currency.as_str(),
            by_name.incoterm.as_str(),
            by_name.payment_terms.as_str()
        ),
        ("EUR", "CIF", "NET30")
    );
    let rules = CustomerRules {
        inspection_level: 3,
        major_aql: Some(1.0),
        final_inspection_failures: 3,
        dunning_reminder_days: vec![5, 20],
        credit_limit_minor: 10_000_000,
        min_margin_bp: 800,
    };
    assert_eq!(by_name.customer_rules.as_ref(), Some(&rules));

    // By id, with values of its own: they are kept.
    let mut request = order_request("po-4", "NORDWIND", "ignored when the id is given");
    request.currency = "USD".to_owned();
    request.incoterm = "FOB".to_owned();
    request.payment_terms = "30% T/T deposit, 70% against B/L copy".to_owned();
    let explicit = create(&mut client, request).await.expect("explicit");
    assert_eq!(explicit.customer, "Nordwind GmbH");
    assert_eq!(
        (
            explicit.currency.as_str(),
            explicit.incoterm.as_str(),
            explicit.payment_terms.as_str()
        ),
        ("USD", "FOB", "30% T/T deposit, 70% against B/L copy")
    );

    // A change to the customer reaches new orders, not those already made.
    upsert(
        &mut client,
        Customer {
            major_aql: Some(2.5),
            dunning_reminder_days: Vec::new(),
            min_margin_bp: 0,
            ..nordwind()
        },
    )
    .await
    .expect("changed");
    let again = client
        .get_order(GetOrderRequest {
            order_id: by_name.order_id.clone(),
        })
        .await
        .expect("get order")
        .into_inner();
    assert_eq!(again.customer_rules.as_ref(), Some(&rules));
    assert_eq!(again.customer_id, "NORDWIND");
    // Named by its id in the `customer` text.
    let later = create(&mut client, order_request("po-5", "", "NORDWIND"))
        .await
        .expect("later");
    assert_eq!(
        later.customer_rules,
        Some(CustomerRules {
            major_aql: Some(2.5),
            dunning_reminder_days: Vec::new(),
            min_margin_bp: 0,
            ..rules.clone()
        })
    );

    // ListOrders by the customer's id or its name, newest first.
    let newest_first = vec![
        later.order_id.clone(),
        explicit.order_id.clone(),
        by_name.order_id.clone(),
    ];
    assert_eq!(orders_of(&mut client, "NORDWIND").await, newest_first);
    assert_eq!(orders_of(&mut client, "Nordwind GmbH").await, newest_first);
    assert!(orders_of(&mut client, "NOPE").await.is_empty());

    svc.stop().await.expect("orders stops cleanly");
}
