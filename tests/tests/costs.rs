//! End to end: what an order costs, as a merchandiser and management read
//! it. Every service over real NATS and PostgreSQL with the demo catalogue
//! (labour and most materials priced in CNY, a CNY→USD rate) and the
//! simulators: an export order in USD is estimated at review, its CNY costs
//! are booked with their USD value, and the ledger, the estimate and the
//! closing summary agree; an order below its customer's margin floor asks a
//! person at review.

use gendan::sim;
use gendan_proto::v1;
use gendan_tests::world::{World, wait_closed, world_on};

/// The demo's rate (crates/gendan/src/sim/catalog_costs.rs).
const CNY_USD: &str = "0.1408";

async fn world() -> World {
    world_on(
        sim::SimOptions {
            day: std::time::Duration::ZERO,
            seed: 11,
            ..Default::default()
        },
        None,
    )
    .await
}

/// An export sample order (USD) whose requested date the factory can make,
/// so no clarification is asked.
fn export_sample(run: &str) -> v1::CreateOrderRequest {
    (0..50)
        .map(|index| sim::sample_order(23, run, index))
        .find(|request| {
            let requested = gendan_proto::date_from_str(&request.requested_delivery_date).unwrap();
            request.export
                && requested > chrono::Utc::now().date_naive() + chrono::Duration::days(30)
        })
        .expect("an export sample")
}

async fn create(world: &World, request: v1::CreateOrderRequest) -> String {
    world
        .clients
        .orders
        .clone()
        .create_order(request)
        .await
        .expect("order created")
        .into_inner()
        .order
        .expect("the order")
        .order_id
}

#[tokio::test]
async fn an_export_order_in_usd_shows_its_cny_costs_in_usd_from_estimate_to_summary() {
    let world = world().await;
    let request = export_sample("costs-usd");
    assert_eq!(request.currency, "USD");
    let order_id = create(&world, request).await;
    wait_closed(&world.clients, &order_id).await;

    // The review's estimate: in USD, its CNY parts valued at the demo rate.
    let estimate = world
        .clients
        .finance
        .clone()
        .get_cost_estimate(v1::GetCostEstimateRequest {
            order_id: order_id.clone(),
        })
        .await
        .expect("the estimate")
        .into_inner();
    assert_eq!(estimate.currency, "USD");
    let labour: Vec<&v1::EstimatePart> = estimate
        .parts
        .iter()
        .filter(|part| part.category == "labour")
        .collect();
    assert!(!labour.is_empty(), "{estimate:?}");
    for part in &labour {
        let original = part.original.as_ref().expect("the original amount");
        assert_eq!(original.currency, "CNY", "{part:?}");
        assert_eq!(part.rate, CNY_USD, "{part:?}");
        assert!(part.order_amount_minor > 0, "{part:?}");
        assert!(part.order_amount_minor < original.amount_minor, "{part:?}");
    }
    let parts: i64 = estimate.parts.iter().map(|p| p.order_amount_minor).sum();
    let lines: i64 = estimate.lines.iter().map(|l| l.amount_minor).sum();
    assert_eq!(parts, estimate.cost_minor);
    assert_eq!(lines, estimate.cost_minor);
    assert_eq!(
        estimate.margin_minor,
        estimate.revenue_minor - estimate.cost_minor
    );

    // The ledger: every CNY entry keeps its original with its USD value and
    // the rate used; plan and actual are in USD and add up.
    let ledger = world
        .clients
        .finance
        .clone()
        .get_cost_ledger(v1::GetCostLedgerRequest {
            order_id: order_id.clone(),
        })
        .await
        .expect("the ledger")
        .into_inner();
    assert_eq!(ledger.currency, "USD");
    assert!(ledger.unconverted.is_empty(), "{:?}", ledger.unconverted);
    let cny: Vec<&v1::CostLedgerEntry> = ledger
        .entries
        .iter()
        .filter(|entry| entry.currency == "CNY" && entry.amount_minor > 0)
        .collect();
    assert!(
        cny.iter().any(|entry| entry.category == "labour"),
        "{:?}",
        ledger.entries
    );
    assert!(
        cny.iter().any(|entry| entry.category == "material"),
        "{:?}",
        ledger.entries
    );
    for entry in &cny {
        assert!(entry.converted, "{entry:?}");
        assert_eq!(entry.rate, CNY_USD, "{entry:?}");
        assert!(!entry.rate_date.is_empty(), "{entry:?}");
        // 0.1408 USD per CNY, each line rounded once.
        let expected = (entry.amount_minor as f64 * 0.1408).round() as i64;
        assert!(
            (entry.order_amount_minor - expected).abs() <= 1,
            "{entry:?}"
        );
    }
    let valued: i64 = ledger
        .entries
        .iter()
        .map(|entry| entry.order_amount_minor)
        .sum();
    assert_eq!(valued, ledger.actual_minor);
    let by_category: i64 = ledger.categories.iter().map(|c| c.actual_minor).sum();
    assert_eq!(by_category, ledger.actual_minor);
    let plan: i64 = ledger.categories.iter().map(|c| c.plan_minor).sum();
    assert_eq!(plan, ledger.budget_minor);
    assert_eq!(ledger.budget_minor, estimate.cost_minor);
    assert_eq!(
        ledger.variance_minor,
        ledger.actual_minor - ledger.budget_minor
    );
    for category in &ledger.categories {
        assert_eq!(
            category.variance_minor,
            category.actual_minor - category.plan_minor,
            "{category:?}"
        );
    }

    // The closing summary has the ledger's totals.
    let summary = world
        .clients
        .orders
        .clone()
        .get_summary(v1::GetSummaryRequest {
            order_id: order_id.clone(),
        })
        .await
        .expect("the summary")
        .into_inner();
    assert_eq!(summary.currency, "USD");
    assert_eq!(summary.cost_budget_minor, ledger.budget_minor);
    assert_eq!(summary.cost_actual_minor, ledger.actual_minor);
    assert_eq!(summary.cost_variance_minor, ledger.variance_minor);
    assert_eq!(summary.cost_categories, ledger.categories);
    world.stop().await;
}

#[tokio::test]
async fn an_order_below_its_customers_margin_floor_asks_a_person_at_review() {
    let world = world().await;
    let request = export_sample("costs-margin");
    // The customer now wants 99 % margin: no order of the demo clears it.
    let mut orders = world.clients.orders.clone();
    let mut customer = orders
        .get_customer(v1::GetCustomerRequest {
            customer_id: request.customer_id.clone(),
        })
        .await
        .expect("the demo customer")
        .into_inner();
    customer.min_margin_bp = 9_900;
    orders
        .upsert_customer(customer)
        .await
        .expect("customer updated");
    let order_id = create(&world, request).await;
    // The simulated merchandiser accepts the thin margin; the order goes on.
    wait_closed(&world.clients, &order_id).await;

    let exceptions = world
        .clients
        .saga
        .clone()
        .list_exceptions(v1::ListExceptionsRequest {
            order_id: order_id.clone(),
            kind: v1::ExceptionKind::BelowMargin as i32,
            ..Default::default()
        })
        .await
        .expect("the register")
        .into_inner()
        .exceptions;
    assert_eq!(exceptions.len(), 1, "{exceptions:?}");
    let below = &exceptions[0];
    assert!(below.cause.contains("99.00%"), "{below:?}");
    assert_eq!(below.decision, "accept_at_loss", "{below:?}");
    assert!(below.closed_at.is_some(), "{below:?}");

    let estimate = world
        .clients
        .finance
        .clone()
        .get_cost_estimate(v1::GetCostEstimateRequest {
            order_id: order_id.clone(),
        })
        .await
        .expect("the estimate")
        .into_inner();
    assert_eq!(estimate.min_margin_bp, 9_900);
    assert!(!estimate.below_margin.is_empty(), "{estimate:?}");
    world.stop().await;
}
