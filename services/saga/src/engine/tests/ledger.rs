//! The cost ledger's news on the register: an overrun per category (and
//! one for the whole budget), and a cost without an exchange rate, open
//! until a rate values its pair.

use gendan_proto::v1::{self, Department, ExceptionKind, Phase};

use super::waiting::in_materials;
use super::{ORDER, engine, incoming, start};
use crate::state::{ExceptionRecord, SagaState, Status};

fn open_of(saga: &SagaState, kind: ExceptionKind) -> Vec<&ExceptionRecord> {
    saga.exceptions
        .iter()
        .filter(|e| e.kind == kind && e.is_open())
        .collect()
}

#[test]
fn each_category_over_its_plan_is_its_own_exception() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    let overrun = |category: &str, budget_minor, actual_minor, cause: &str| {
        incoming(&v1::CostOverrun {
            order_id: ORDER.to_owned(),
            budget_minor,
            actual_minor,
            category: category.to_owned(),
            currency: "USD".to_owned(),
            cause: cause.to_owned(),
        })
    };
    let events = [
        overrun("rework", 0, 32_000, "rework work order WO-7"),
        overrun("", 210_000, 240_000, "rework work order WO-7"),
        overrun("rework", 0, 45_000, "rework work order WO-8"),
    ];
    for event in &events {
        engine.react(&mut saga, event, start()).unwrap();
    }
    let overruns = open_of(&saga, ExceptionKind::CostOverrun);
    assert_eq!(overruns.len(), 2, "{overruns:#?}");
    let rework = overruns.iter().find(|e| e.step == "cost:rework").unwrap();
    assert_eq!(
        rework.cause,
        "rework costs 450.00 USD passed their plan of 0.00 USD: rework work order WO-8"
    );
    assert_eq!(rework.owner, Department::Finance);
    let total = overruns.iter().find(|e| e.step == "cost:total").unwrap();
    assert_eq!(
        total.cause,
        "costs 2400.00 USD passed the budget 2100.00 USD: rework work order WO-7"
    );
    // Costs are not the customer's business.
    assert_eq!(saga.status, Status::Running);
}

#[test]
fn a_cost_without_a_rate_is_open_until_a_rate_values_its_pair() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    let missing = |from: &str, what: &str| {
        incoming(&v1::ExchangeRateMissing {
            order_id: ORDER.to_owned(),
            from_currency: from.to_owned(),
            to_currency: "CNY".to_owned(),
            on: "2026-03-05".to_owned(),
            what: what.to_owned(),
        })
    };
    engine
        .react(
            &mut saga,
            &missing("USD", "purchase order PO-3 1,200.00 USD"),
            start(),
        )
        .unwrap();
    engine
        .react(
            &mut saga,
            &missing("EUR", "purchase order PO-4 300.00 EUR"),
            start(),
        )
        .unwrap();
    let open = open_of(&saga, ExceptionKind::ExchangeRateMissing);
    assert_eq!(open.len(), 2);
    let usd = open.iter().find(|e| e.step == "fx:USD/CNY").unwrap();
    assert_eq!(usd.owner, Department::Finance);
    assert!(usd.cause.contains("PO-3"), "{}", usd.cause);
    assert!(usd.cause.contains("2026-03-05"), "{}", usd.cause);

    let converted = incoming(&v1::CostsConverted {
        order_id: ORDER.to_owned(),
        from_currency: "USD".to_owned(),
        to_currency: "CNY".to_owned(),
        entries: 1,
        rate: "7.1030".to_owned(),
    });
    engine.react(&mut saga, &converted, start()).unwrap();
    let open = open_of(&saga, ExceptionKind::ExchangeRateMissing);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].step, "fx:EUR/CNY");
    let closed = saga
        .exceptions
        .iter()
        .find(|e| e.step == "fx:USD/CNY")
        .unwrap();
    assert!(
        closed
            .resolution
            .as_deref()
            .unwrap_or("")
            .contains("valued at rate 7.1030"),
        "{:?}",
        closed.resolution
    );
    // News for the register only: no step moved.
    assert_eq!(saga.phase, Phase::Materials);
}
