//! Finance's exchange rates, inspection rate and cost estimate over gRPC,
//! against real NATS and PostgreSQL: every refusal names its field and
//! writes nothing, a rate replaces the pair's rate of the same day, and a
//! cost booked before its currency had a rate waits unvalued (announced as
//! missing) until a rate is set, which values it at once; the ledger closes
//! with every cost announced before the closing, once.

use std::time::Duration;

use gendan_finance::Application;
use gendan_messaging::{Cause, Outgoing, streams};
use gendan_proto::TypeName;
use gendan_proto::v1::finance_service_client::FinanceServiceClient;
use gendan_proto::v1::{
    CloseCostLedger, CostLedgerClosed, CostsConverted, ExchangeRate, ExchangeRateMissing,
    GetCostEstimateRequest, GetCostLedgerRequest, GetInspectionRateRequest, InspectionRate,
    ListExchangeRatesRequest, OpenReceivable, PurchaseOrderPlaced, ReceivableOpened,
};
use gendan_tests::{Running, SubjectReader, eventually};
use tonic::Code;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(30);

async fn start() -> anyhow::Result<(Running, FinanceServiceClient<Channel>)> {
    gendan_telemetry::init_for_tests();
    let svc = Running::start("finance", Application::build).await?;
    let client = FinanceServiceClient::connect(svc.endpoint()).await?;
    Ok((svc, client))
}

fn assert_field(status: &tonic::Status, code: Code, field: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(field), "{}", status.message());
}

fn cny_usd(rate: &str, valid_from: &str) -> ExchangeRate {
    ExchangeRate {
        from_currency: "CNY".into(),
        to_currency: "USD".into(),
        rate: rate.into(),
        valid_from: valid_from.into(),
        source: "bank".into(),
        recorded_at: None,
    }
}

async fn count(svc: &Running, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&svc.pool)
        .await
        .unwrap_or(-1)
}

#[tokio::test]
async fn rates_are_validated_field_by_field_and_a_refusal_writes_nothing() -> anyhow::Result<()> {
    let (svc, mut client) = start().await?;
    let next_year = (chrono::Utc::now().date_naive() + chrono::Days::new(400)).to_string();
    type Change = fn(&mut ExchangeRate);
    let cases: Vec<(Change, &str)> = vec![
        (|r| r.from_currency = "cny".into(), "from_currency"),
        (|r| r.to_currency = "US".into(), "to_currency"),
        (|r| r.to_currency = "CNY".into(), "to_currency"),
        (|r| r.rate = "0".into(), "rate"),
        (|r| r.rate = "-0.14".into(), "rate"),
        (|r| r.rate = "1e-1".into(), "rate"),
        (|r| r.rate = "0.12345678901".into(), "rate"),
        (|r| r.rate = "1000000".into(), "rate"),
        (|r| r.valid_from = "2026-13-01".into(), "valid_from"),
        (|r| r.source = "  ".into(), "source"),
        (|r| r.source = "x".repeat(201), "source"),
    ];
    for (change, field) in cases {
        let mut request = cny_usd("0.1408", "2026-01-01");
        change(&mut request);
        let status = client.set_exchange_rate(request).await.unwrap_err();
        assert_field(&status, Code::InvalidArgument, field);
    }
    let mut far = cny_usd("0.1408", "2026-01-01");
    far.valid_from = next_year;
    let status = client.set_exchange_rate(far).await.unwrap_err();
    assert_field(&status, Code::InvalidArgument, "valid_from");
    assert_eq!(count(&svc, "SELECT count(*) FROM exchange_rates").await, 0);

    let status = client
        .list_exchange_rates(ListExchangeRatesRequest {
            limit: 1_001,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_field(&status, Code::InvalidArgument, "limit");
    let status = client
        .list_exchange_rates(ListExchangeRatesRequest {
            currency: "XX".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_field(&status, Code::InvalidArgument, "currency");

    // The same pair and day again replaces the rate; another day adds one.
    let set = client
        .set_exchange_rate(cny_usd("0.1408", "2026-01-01"))
        .await?
        .into_inner();
    assert_eq!(set.rate, "0.1408");
    assert!(set.recorded_at.is_some());
    client
        .set_exchange_rate(cny_usd("0.14100", "2026-01-01"))
        .await?;
    client
        .set_exchange_rate(cny_usd("0.1395", "2026-06-01"))
        .await?;
    let all = client
        .list_exchange_rates(ListExchangeRatesRequest::default())
        .await?
        .into_inner()
        .rates;
    let rates: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r.valid_from.as_str(), r.rate.as_str()))
        .collect();
    assert_eq!(rates, [("2026-06-01", "0.1395"), ("2026-01-01", "0.141")]);
    let in_force = client
        .list_exchange_rates(ListExchangeRatesRequest {
            currency: "USD".into(),
            on: "2026-03-15".into(),
            limit: 0,
        })
        .await?
        .into_inner()
        .rates;
    assert_eq!(in_force.len(), 1, "{in_force:?}");
    assert_eq!(in_force[0].rate, "0.141");
    svc.stop().await
}

#[tokio::test]
async fn the_inspection_rate_and_the_estimate_answer_not_found_until_there_is_one()
-> anyhow::Result<()> {
    let (svc, mut client) = start().await?;
    let status = client
        .get_inspection_rate(GetInspectionRateRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    for (rate, currency, field) in [
        (-1, "CNY", "rate_minor_per_unit"),
        (1_000_000_001, "CNY", "rate_minor_per_unit"),
        (300, "yuan", "currency"),
    ] {
        let status = client
            .set_inspection_rate(InspectionRate {
                currency: currency.into(),
                rate_minor_per_unit: rate,
            })
            .await
            .unwrap_err();
        assert_field(&status, Code::InvalidArgument, field);
    }
    assert_eq!(count(&svc, "SELECT count(*) FROM inspection_rate").await, 0);
    client
        .set_inspection_rate(InspectionRate {
            currency: "CNY".into(),
            rate_minor_per_unit: 300,
        })
        .await?;
    let rate = client
        .get_inspection_rate(GetInspectionRateRequest {})
        .await?
        .into_inner();
    assert_eq!(
        (rate.currency.as_str(), rate.rate_minor_per_unit),
        ("CNY", 300)
    );

    let status = client
        .get_cost_estimate(GetCostEstimateRequest {
            order_id: "o-never-reviewed".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = client
        .get_cost_estimate(GetCostEstimateRequest {
            order_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_field(&status, Code::InvalidArgument, "order_id");
    svc.stop().await
}

#[tokio::test]
async fn a_cost_without_a_rate_waits_and_is_valued_when_the_rate_is_set() -> anyhow::Result<()> {
    let (svc, mut client) = start().await?;
    let mut events =
        SubjectReader::open(&svc.nats.url, streams::EVENTS, "gendan.evt.finance.>").await?;
    let order = "o-fx";
    svc.command(
        order,
        &OpenReceivable {
            order_id: order.into(),
            customer: "Nordwind GmbH".into(),
            total_minor: 500_000,
            currency: "USD".into(),
            payment_terms: "100% T/T in advance".into(),
            ..Default::default()
        },
    )
    .await?;
    events
        .next_of_type(ReceivableOpened::TYPE_NAME, WAIT)
        .await?;
    let placed = PurchaseOrderPlaced {
        order_id: order.into(),
        purchase_order_id: "PO-FX-1".into(),
        supplier: "SUP-HUAFANG".into(),
        material: "FAB-DNM".into(),
        quantity: 100.0,
        amount_minor: 1_000_000,
        currency: "CNY".into(),
        ..Default::default()
    };
    let message = Outgoing::event("procurement", order, &placed, &Cause::root(order));
    svc.bus.publish(&message).await?;
    let missing: ExchangeRateMissing = events
        .next_of_type(ExchangeRateMissing::TYPE_NAME, WAIT)
        .await?
        .decode()?;
    assert_eq!(
        (missing.from_currency.as_str(), missing.to_currency.as_str()),
        ("CNY", "USD")
    );
    assert!(missing.what.contains("PO-FX-1"), "{}", missing.what);
    let ledger = client
        .get_cost_ledger(GetCostLedgerRequest {
            order_id: order.into(),
        })
        .await?
        .into_inner();
    assert_eq!(ledger.actual_minor, 0);
    assert_eq!(ledger.unconverted.len(), 1, "{ledger:?}");
    assert_eq!(ledger.unconverted[0].amount_minor, 1_000_000);

    // The USD→CNY rate serves the other way round, inverted.
    client
        .set_exchange_rate(ExchangeRate {
            from_currency: "USD".into(),
            to_currency: "CNY".into(),
            rate: "8".into(),
            valid_from: "2026-01-01".into(),
            source: "bank".into(),
            recorded_at: None,
        })
        .await?;
    let converted: CostsConverted = events
        .next_of_type(CostsConverted::TYPE_NAME, WAIT)
        .await?
        .decode()?;
    assert_eq!(converted.entries, 1);
    let ledger = eventually(WAIT, "the purchase order valued", || {
        let mut client = client.clone();
        async move {
            let ledger = client
                .get_cost_ledger(GetCostLedgerRequest {
                    order_id: order.into(),
                })
                .await
                .ok()?
                .into_inner();
            ledger.unconverted.is_empty().then_some(ledger)
        }
    })
    .await?;
    // 10,000.00 CNY at 1/8 = 1,250.00 USD.
    assert_eq!(ledger.actual_minor, 125_000);
    let entry = &ledger.entries[0];
    assert_eq!(
        (entry.amount_minor, entry.currency.as_str()),
        (1_000_000, "CNY")
    );
    assert_eq!(entry.order_amount_minor, 125_000);
    assert_eq!(entry.rate, "0.125");
    svc.stop().await
}

/// `CloseCostLedger` closes once finance's costs consumer has handled the
/// events stream as far as the saga had seen it (so a cost announced just
/// before is in the figures), and only once: a re-sent command after a
/// later cost announces the stored figures again.
#[tokio::test]
async fn the_ledger_closes_with_every_cost_before_it_and_only_once() -> anyhow::Result<()> {
    let (svc, _client) = start().await?;
    let mut events =
        SubjectReader::open(&svc.nats.url, streams::EVENTS, "gendan.evt.finance.>").await?;
    let order = "o-close";
    svc.command(
        order,
        &OpenReceivable {
            order_id: order.into(),
            customer: "Nordwind GmbH".into(),
            total_minor: 500_000,
            currency: "USD".into(),
            payment_terms: "100% T/T in advance".into(),
            ..Default::default()
        },
    )
    .await?;
    events
        .next_of_type(ReceivableOpened::TYPE_NAME, WAIT)
        .await?;
    let placed = |id: &str, amount_minor: i64| PurchaseOrderPlaced {
        order_id: order.into(),
        purchase_order_id: id.into(),
        supplier: "SUP-1".into(),
        material: "FAB".into(),
        quantity: 10.0,
        amount_minor,
        currency: "USD".into(),
        ..Default::default()
    };
    let first = Outgoing::event(
        "procurement",
        order,
        &placed("PO-C1", 40_000),
        &Cause::root(order),
    );
    svc.bus.publish(&first).await?;
    let client = async_nats::connect(&svc.nats.url).await?;
    let through = async_nats::jetstream::new(client)
        .get_stream(streams::EVENTS)
        .await?
        .info()
        .await?
        .state
        .last_sequence;
    let close = CloseCostLedger {
        order_id: order.into(),
        events_through: through,
    };
    svc.command(order, &close).await?;
    let closed: CostLedgerClosed = events
        .next_of_type(CostLedgerClosed::TYPE_NAME, WAIT)
        .await?
        .decode()?;
    assert_eq!(closed.actual_minor, 40_000, "{closed:?}");

    // A cost after the closing, then the command again: the stored figures.
    let later = Outgoing::event(
        "procurement",
        order,
        &placed("PO-C2", 5_000),
        &Cause::root(order),
    );
    svc.bus.publish(&later).await?;
    svc.repeat(order, &close).await?;
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT closing FROM cost_ledger_closings")
        .fetch_all(&svc.pool)
        .await?;
    assert_eq!(stored.len(), 1);
    let again = <CostLedgerClosed as prost::Message>::decode(stored[0].as_slice())?;
    assert_eq!(again, closed);
    svc.stop().await
}
