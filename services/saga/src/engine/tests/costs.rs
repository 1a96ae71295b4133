//! The review's cost estimate and what the saga does with it: each
//! department's part passed on to finance, a margin below the customer's
//! floor or an order over its credit limit asked about (accepted,
//! re-quoted until the amended price is estimated again, or rejected), a
//! missing exchange rate parking the estimate, and the ledger closed before
//! the order.

use chrono::Duration;
use gendan_messaging::Incoming;
use gendan_proto::v1::{self, Department, ExceptionKind, Phase};

use super::{ORDER, engine, incoming, sent, start};
use crate::state::{ExceptionRecord, SagaState, Status, StepStatus};
use crate::workflow::answers;

/// The order of `super::order()` for a customer who wants 15% margin, has
/// 50,000.00 of credit and inspects at general level III, AQL 1.0.
fn order() -> v1::Order {
    v1::Order {
        customer_rules: Some(v1::CustomerRules {
            inspection_level: v1::InspectionLevel::GeneralIii as i32,
            major_aql: Some(1.0),
            min_margin_bp: 1_500,
            credit_limit_minor: 5_000_000,
            ..Default::default()
        }),
        ..super::order()
    }
}

fn money(amount_minor: i64, currency: &str) -> v1::Money {
    v1::Money {
        amount_minor,
        currency: currency.to_owned(),
    }
}

/// The review's answers up to the estimate, each of `revision`: materials,
/// the inspection sample, capacity (done by 20 May, before the requested
/// 30 June) and freight.
fn review_answers(revision: u32) -> Vec<Incoming> {
    vec![
        incoming(&v1::MaterialsChecked {
            order_id: ORDER.to_owned(),
            earliest_material_date: "2026-03-10".to_owned(),
            material_cost: vec![money(400_000, "CNY"), money(10_000, "USD")],
            uncosted_materials: vec!["LABEL-9: no supplier offer".to_owned()],
            ..Default::default()
        }),
        incoming(&v1::InspectionEstimated {
            order_id: ORDER.to_owned(),
            revision,
            sample_units: 80,
            ..Default::default()
        }),
        incoming(&v1::CapacityChecked {
            order_id: ORDER.to_owned(),
            earliest_completion: "2026-05-20".to_owned(),
            feasible: true,
            hours_by_work_centre: [("SEW".to_owned(), 120.5), ("CUT".to_owned(), 8.0)]
                .into_iter()
                .collect(),
            ..Default::default()
        }),
        incoming(&v1::FreightQuoted {
            order_id: ORDER.to_owned(),
            revision,
            freight_cost_minor: 35_000,
            currency: "CNY".to_owned(),
            lane_code: "SHA-HAM-SEA".to_owned(),
            carrier: "COSCO".to_owned(),
            mode: "sea".to_owned(),
            problem: String::new(),
            ..Default::default()
        }),
    ]
}

/// Finance's estimate of `revision`: `cost_minor` against the order's
/// 10,000.00 CNY, below the floor when `below` says why.
fn estimate(revision: u32, cost_minor: i64, below: &str) -> v1::CostEstimate {
    let revenue_minor = 1_000_000;
    let margin_minor = revenue_minor - cost_minor;
    v1::CostEstimate {
        order_id: ORDER.to_owned(),
        revision,
        currency: "CNY".to_owned(),
        revenue_minor,
        lines: vec![v1::CostBudgetLine {
            category: "material".to_owned(),
            amount_minor: cost_minor,
        }],
        cost_minor,
        margin_minor,
        margin_bp: (margin_minor * 10_000 / revenue_minor) as i32,
        min_margin_bp: 1_500,
        below_margin: below.to_owned(),
        ..Default::default()
    }
}

fn announced(estimate: v1::CostEstimate) -> Incoming {
    incoming(&v1::CostsEstimated {
        order_id: ORDER.to_owned(),
        revision: estimate.revision,
        estimate: Some(estimate),
    })
}

fn estimated(revision: u32, cost_minor: i64, below: &str) -> Incoming {
    announced(estimate(revision, cost_minor, below))
}

/// The first estimate, for a customer who would owe `exposure_minor` with
/// the order against its 50,000.00 CNY limit, over it when `over` says why.
fn estimated_with_credit(
    cost_minor: i64,
    below: &str,
    exposure_minor: i64,
    over: &str,
) -> Incoming {
    announced(v1::CostEstimate {
        credit_exposure_minor: exposure_minor,
        credit_limit_minor: 5_000_000,
        over_credit_limit: over.to_owned(),
        ..estimate(1, cost_minor, below)
    })
}

/// Finance's reason, and the saga's words for it in the question.
const OVER_LIMIT: &str = "order value 10000.00 CNY would bring the customer's open balance to \
                          58400.00 CNY, over its credit limit of 50000.00 CNY";
const OVER_LIMIT_ASKED: &str = "order value 10000.00 CNY would bring Acme's open balance to \
                                58400.00 CNY, over its credit limit of 50000.00 CNY";

/// A new saga whose review has answered everything the estimate needs.
fn at_the_estimate(engine: &super::Engine) -> SagaState {
    let created = incoming(&v1::OrderCreated {
        order: Some(order()),
    });
    let mut saga = engine.begin(order(), &created, start()).unwrap();
    for answer in review_answers(1) {
        engine.react(&mut saga, &answer, start()).unwrap();
    }
    saga
}

/// Asked about a margin of -1.30%: the decision's id.
fn asked_about_the_margin(engine: &super::Engine, saga: &mut SagaState) -> uuid::Uuid {
    saga.outgoing.clear();
    let below = "margin -1.30% is below the customer's floor of 15.00%";
    engine
        .react(saga, &estimated(1, 1_013_000, below), start())
        .unwrap();
    let decision = saga.decisions.iter().find(|d| d.is_open()).expect("asked");
    assert_eq!(decision.kind, "margin");
    assert_eq!(decision.step, "review_margin");
    decision.decision_id
}

fn open_of(saga: &SagaState, kind: ExceptionKind) -> Vec<&ExceptionRecord> {
    saga.exceptions
        .iter()
        .filter(|e| e.kind == kind && e.is_open())
        .collect()
}

#[test]
fn each_department_prices_its_part_and_finance_gets_them_all() {
    let engine = engine();
    let created = incoming(&v1::OrderCreated {
        order: Some(order()),
    });
    let mut saga = engine.begin(order(), &created, start()).unwrap();
    // The inspection estimate needs only the order: asked at once.
    let inspections: Vec<v1::EstimateInspection> = sent(&saga);
    assert_eq!(inspections.len(), 1);
    assert_eq!(
        inspections[0].inspection_level,
        v1::InspectionLevel::GeneralIii as i32
    );
    assert_eq!(inspections[0].major_aql, Some(1.0));
    assert_eq!(inspections[0].items[0].quantity, 500);
    assert_eq!(inspections[0].revision, 1);

    for answer in review_answers(1) {
        engine.react(&mut saga, &answer, start()).unwrap();
    }
    let quotes: Vec<v1::QuoteFreight> = sent(&saga);
    assert_eq!(quotes.len(), 1);
    // Production ends Wednesday the 20th: inspected on the 21st, packed on
    // the 22nd, when the goods can leave.
    assert_eq!(
        quotes[0].ready_date, "2026-05-22",
        "when the goods can leave"
    );
    assert_eq!(quotes[0].deliver_by, "2026-06-30");
    assert_eq!(quotes[0].order.as_ref().unwrap().order_id, ORDER);

    let estimates: Vec<v1::EstimateCosts> = sent(&saga);
    assert_eq!(estimates.len(), 1);
    let estimate = &estimates[0];
    assert_eq!((estimate.revision, estimate.currency.as_str()), (1, "CNY"));
    assert_eq!(estimate.revenue_minor, 1_000_000);
    assert_eq!(
        estimate.material_cost,
        vec![money(400_000, "CNY"), money(10_000, "USD")]
    );
    assert_eq!(estimate.uncosted_materials, ["LABEL-9: no supplier offer"]);
    assert_eq!(estimate.hours_by_work_centre.get("SEW"), Some(&120.5));
    assert_eq!(estimate.freight, Some(money(35_000, "CNY")));
    assert_eq!(estimate.freight_problem, "");
    assert_eq!(estimate.inspection_sample_units, 80);
    assert_eq!(estimate.min_margin_bp, 1_500);
    // The limit in the order currency (the customer's default), and the
    // customer as its receivables name it.
    assert_eq!(
        (
            estimate.credit_limit_minor,
            estimate.credit_limit_currency.as_str()
        ),
        (5_000_000, "CNY")
    );
    assert_eq!(estimate.customer, "Acme");
    // Not confirmed before the estimate is in.
    assert_eq!(saga.step("confirm_order").status, StepStatus::Pending);
}

#[test]
fn freight_without_a_lane_is_estimated_without_freight_and_says_why() {
    let engine = engine();
    let created = incoming(&v1::OrderCreated {
        order: Some(order()),
    });
    let mut saga = engine.begin(order(), &created, start()).unwrap();
    let mut answers = review_answers(1);
    answers.pop();
    answers.push(incoming(&v1::FreightQuoted {
        order_id: ORDER.to_owned(),
        revision: 1,
        problem: "no lane from SHA to the customer's port".to_owned(),
        ..Default::default()
    }));
    for answer in answers {
        engine.react(&mut saga, &answer, start()).unwrap();
    }
    let estimates: Vec<v1::EstimateCosts> = sent(&saga);
    assert_eq!(estimates[0].freight, None);
    assert_eq!(
        estimates[0].freight_problem,
        "no lane from SHA to the customer's port"
    );
}

#[test]
fn an_estimate_within_the_margin_asks_nobody_and_the_order_is_confirmed() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    saga.outgoing.clear();
    engine
        .react(&mut saga, &estimated(1, 700_000, ""), start())
        .unwrap();
    assert_eq!(saga.step("review_margin").status, StepStatus::Skipped);
    assert!(saga.decisions.is_empty());
    assert_eq!(sent::<v1::ConfirmOrder>(&saga).len(), 1);
    let kept = saga.facts.costs.estimate.as_ref().unwrap();
    assert_eq!((kept.cost_minor, kept.margin_bp), (700_000, 3_000));
}

#[test]
fn a_margin_below_the_floor_asks_sales_with_the_figures() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    asked_about_the_margin(&engine, &mut saga);
    let decision = saga.decisions.last().unwrap();
    assert!(
        decision.question.contains(
            "estimated cost 10130.00 CNY against an order value of 10000.00 CNY: margin -1.30%, \
             the customer's floor is 15.00%"
        ),
        "{}",
        decision.question
    );
    assert_eq!(
        decision.options,
        [answers::ACCEPT_AT_LOSS, answers::RE_QUOTE, answers::REJECT]
    );
    let below = open_of(&saga, ExceptionKind::BelowMargin);
    assert_eq!(below.len(), 1);
    assert_eq!(below[0].owner, Department::Orders);
    assert_eq!(below[0].decision_id, Some(decision.decision_id));
    assert!(sent::<v1::ConfirmOrder>(&saga).is_empty());
}

#[test]
fn an_order_over_the_credit_limit_asks_sales_though_the_margin_is_fine() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    saga.outgoing.clear();
    let over = estimated_with_credit(700_000, "", 5_840_000, OVER_LIMIT);
    engine.react(&mut saga, &over, start()).unwrap();
    let decision = saga.decisions.iter().find(|d| d.is_open()).expect("asked");
    assert_eq!(decision.kind, "margin");
    assert_eq!(decision.step, "review_margin");
    assert!(
        decision.question.contains(OVER_LIMIT_ASKED),
        "{}",
        decision.question
    );
    assert!(
        !decision.question.contains("margin 30.00%"),
        "not in question"
    );
    assert_eq!(open_of(&saga, ExceptionKind::BelowMargin).len(), 1);
    assert!(sent::<v1::ConfirmOrder>(&saga).is_empty());
    let kept = saga.facts.costs.estimate.as_ref().unwrap();
    assert_eq!(kept.over_credit_limit, OVER_LIMIT);
    assert_eq!(
        (kept.credit_exposure_minor, kept.credit_limit_minor),
        (5_840_000, 5_000_000)
    );
}

#[test]
fn a_thin_margin_over_the_credit_limit_names_both() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    let below = "margin -1.30% is below the customer's floor of 15.00%";
    let both = estimated_with_credit(1_013_000, below, 5_840_000, OVER_LIMIT);
    engine.react(&mut saga, &both, start()).unwrap();
    let decision = saga.decisions.iter().find(|d| d.is_open()).expect("asked");
    let margin = "margin -1.30%, the customer's floor is 15.00%";
    assert!(
        decision
            .question
            .contains(&format!("{margin}; and {OVER_LIMIT_ASKED}")),
        "{}",
        decision.question
    );
}

#[test]
fn an_estimate_within_the_margin_and_the_credit_limit_asks_nobody() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    saga.outgoing.clear();
    let within = estimated_with_credit(700_000, "", 4_200_000, "");
    engine.react(&mut saga, &within, start()).unwrap();
    assert_eq!(saga.step("review_margin").status, StepStatus::Skipped);
    assert!(saga.decisions.is_empty());
    assert_eq!(sent::<v1::ConfirmOrder>(&saga).len(), 1);
}

#[test]
fn accepting_at_a_loss_confirms_the_order() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    let id = asked_about_the_margin(&engine, &mut saga);
    engine
        .apply_answer(
            &mut saga,
            id,
            answers::ACCEPT_AT_LOSS,
            "sales.chen",
            "",
            start(),
        )
        .unwrap();
    assert_eq!(saga.step("review_margin").status, StepStatus::Done);
    assert_eq!(sent::<v1::ConfirmOrder>(&saga).len(), 1);
    assert!(open_of(&saga, ExceptionKind::BelowMargin).is_empty());
}

#[test]
fn rejecting_cancels_the_order() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    let id = asked_about_the_margin(&engine, &mut saga);
    engine
        .apply_answer(
            &mut saga,
            id,
            answers::REJECT,
            "sales.chen",
            "not at this price",
            start(),
        )
        .unwrap();
    assert_eq!(saga.status, Status::Cancelled);
    assert_eq!(saga.phase, Phase::Cancelled);
    assert!(saga.exceptions.iter().all(|e| !e.is_open()));
}

/// The customer's new price, as `OrderAmended` of the prices alone.
fn repriced(number: u32, unit_price_minor: i64) -> Incoming {
    let mut order = order();
    order.lines[0].unit_price_minor = unit_price_minor;
    order.total_minor = unit_price_minor * 500;
    incoming(&v1::OrderAmended {
        order: Some(order),
        amendment: Some(v1::Amendment {
            order_id: ORDER.to_owned(),
            number,
            reason: "re-quoted".to_owned(),
            changes: vec![format!("SHIRT unit price → {unit_price_minor}")],
            requested_date_before: "2026-06-30".to_owned(),
            requested_date_after: "2026-06-30".to_owned(),
            ..Default::default()
        }),
    })
}

#[test]
fn a_re_quote_waits_for_the_new_price_whose_estimate_replaces_the_question() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    let id = asked_about_the_margin(&engine, &mut saga);
    engine
        .apply_answer(
            &mut saga,
            id,
            answers::RE_QUOTE,
            "sales.chen",
            "offer 24.00",
            start(),
        )
        .unwrap();
    // Answered, but the margin is still too thin: the step waits and the
    // exception stays open with the answer on it.
    assert_eq!(saga.step("review_margin").status, StepStatus::Waiting);
    assert!(saga.step("review_margin").deadline.is_some());
    let below = open_of(&saga, ExceptionKind::BelowMargin);
    assert_eq!(below.len(), 1);
    assert_eq!(below[0].decision.as_deref(), Some(answers::RE_QUOTE));
    assert_eq!(below[0].decided_by.as_deref(), Some("sales.chen"));
    assert_eq!(saga.step("confirm_order").status, StepStatus::Pending);

    // The customer takes the new price: the review runs again and its
    // estimate (revision 2) is within the floor.
    saga.outgoing.clear();
    engine
        .react(&mut saga, &repriced(1, 2_400), start())
        .unwrap();
    assert!(open_of(&saga, ExceptionKind::BelowMargin).is_empty());
    assert_eq!(saga.step("review_margin").status, StepStatus::Pending);
    for answer in review_answers(2) {
        engine.react(&mut saga, &answer, start()).unwrap();
    }
    let estimates: Vec<v1::EstimateCosts> = sent(&saga);
    assert_eq!(estimates.len(), 1);
    assert_eq!(
        (estimates[0].revision, estimates[0].revenue_minor),
        (2, 1_200_000)
    );

    // The first estimate, delivered again late, is history.
    let below = "margin -1.30% is below the customer's floor of 15.00%";
    engine
        .react(&mut saga, &estimated(1, 1_013_000, below), start())
        .unwrap();
    assert_eq!(saga.step("estimate_costs").status, StepStatus::Waiting);
    assert_eq!(saga.step("review_margin").status, StepStatus::Pending);
    assert!(saga.decisions.iter().all(|d| !d.is_open()));

    engine
        .react(&mut saga, &estimated(2, 900_000, ""), start())
        .unwrap();
    assert_eq!(saga.step("review_margin").status, StepStatus::Skipped);
    assert!(saga.decisions.iter().all(|d| !d.is_open()));
    let confirms: Vec<v1::ConfirmOrder> = sent(&saga);
    assert_eq!(confirms.len(), 1);
}

#[test]
fn a_re_quote_still_below_the_floor_asks_again() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    let id = asked_about_the_margin(&engine, &mut saga);
    engine
        .apply_answer(&mut saga, id, answers::RE_QUOTE, "sales.chen", "", start())
        .unwrap();
    engine
        .react(&mut saga, &repriced(1, 2_010), start())
        .unwrap();
    for answer in review_answers(2) {
        engine.react(&mut saga, &answer, start()).unwrap();
    }
    let below = "margin 0.50% is below the customer's floor of 15.00%";
    engine
        .react(&mut saga, &estimated(2, 1_000_000, below), start())
        .unwrap();
    let open: Vec<_> = saga.decisions.iter().filter(|d| d.is_open()).collect();
    assert_eq!(open.len(), 1);
    assert_ne!(open[0].decision_id, id);
    assert_eq!(open_of(&saga, ExceptionKind::BelowMargin).len(), 1);
}

#[test]
fn a_re_quote_nobody_followed_up_is_asked_again() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    let id = asked_about_the_margin(&engine, &mut saga);
    engine
        .apply_answer(&mut saga, id, answers::RE_QUOTE, "sales.chen", "", start())
        .unwrap();
    saga.outgoing.clear();
    let later = start() + Duration::days(3);
    engine.timer_fired(&mut saga, "review_margin", later);
    let asked: Vec<v1::DecisionRequested> = sent(&saga);
    assert_eq!(asked.len(), 1);
    let again = saga.decisions.iter().find(|d| d.is_open()).unwrap();
    assert_eq!(again.kind, "margin");
    // The same exception, now waiting on the new question.
    let below = open_of(&saga, ExceptionKind::BelowMargin);
    assert_eq!(below.len(), 1);
    assert_eq!(below[0].decision_id, Some(again.decision_id));
}

#[test]
fn a_missing_exchange_rate_parks_the_estimate_until_an_operator_retries() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    let failed = incoming(&v1::CostEstimateFailed {
        order_id: ORDER.to_owned(),
        revision: 1,
        reason: "no exchange rate USD→CNY on 2026-03-02".to_owned(),
    });
    engine.react(&mut saga, &failed, start()).unwrap();
    assert_eq!(saga.status, Status::Stalled);
    assert_eq!(saga.step("estimate_costs").status, StepStatus::Stalled);
    let missing = open_of(&saga, ExceptionKind::ExchangeRateMissing);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].owner, Department::Finance);
    assert_eq!(missing[0].step, "estimate_costs");
    assert!(missing[0].cause.contains("USD→CNY"), "{}", missing[0].cause);

    saga.outgoing.clear();
    engine
        .retry(
            &mut saga,
            "estimate_costs",
            "finance.wu",
            "rate set",
            start(),
        )
        .unwrap();
    assert_eq!(saga.status, Status::Running);
    let estimates: Vec<v1::EstimateCosts> = sent(&saga);
    assert_eq!(estimates.len(), 1);
    assert_eq!(estimates[0].revision, 1, "the same estimate asked again");
    assert!(open_of(&saga, ExceptionKind::ExchangeRateMissing).is_empty());
}

#[test]
fn the_receivable_leaves_the_budget_to_finance_and_closing_closes_the_ledger_first() {
    let engine = engine();
    let mut saga = at_the_estimate(&engine);
    engine
        .react(&mut saga, &estimated(1, 700_000, ""), start())
        .unwrap();
    let confirmed = incoming(&v1::OrderConfirmed {
        order_id: ORDER.to_owned(),
        promised_delivery_date: "2026-06-30".to_owned(),
        revision: 1,
    });
    saga.outgoing.clear();
    engine.react(&mut saga, &confirmed, start()).unwrap();
    let receivables: Vec<v1::OpenReceivable> = sent(&saga);
    assert_eq!(receivables[0].cost_budget_minor, 0);
    assert!(receivables[0].budget_lines.is_empty());

    // Everything but closing done: the ledger closes, then the order.
    for (_, step) in engine.workflow().steps() {
        if !step.name.starts_with("close_") {
            let state = saga.step_mut(step.name);
            if !state.status.is_finished() {
                state.status = StepStatus::Done;
            }
        }
    }
    saga.outgoing.clear();
    engine.advance(&mut saga, &gendan_messaging::Cause::root(ORDER), start());
    assert_eq!(saga.phase, Phase::Closed);
    assert_eq!(sent::<v1::CloseCostLedger>(&saga).len(), 1);
    assert!(sent::<v1::CloseOrder>(&saga).is_empty());
    let closed = incoming(&v1::CostLedgerClosed {
        order_id: ORDER.to_owned(),
        currency: "CNY".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &closed, start()).unwrap();
    assert_eq!(sent::<v1::CloseOrder>(&saga).len(), 1);
}

#[test]
fn a_saga_confirmed_before_the_estimate_existed_does_not_walk_back_for_it() {
    let engine = engine();
    let mut saga = super::waiting::in_materials(&engine);
    let new_steps = [
        "estimate_inspection",
        "quote_freight",
        "estimate_costs",
        "review_margin",
    ];
    // As loaded from before the steps were added: no state of their own.
    for step in new_steps {
        saga.steps.remove(step);
    }
    saga.outgoing.clear();
    engine.advance(&mut saga, &gendan_messaging::Cause::root(ORDER), start());
    assert_eq!(saga.phase, Phase::Materials);
    assert!(sent::<v1::PhaseChanged>(&saga).is_empty());
    assert!(sent::<v1::EstimateCosts>(&saga).is_empty());
    for step in new_steps {
        assert_eq!(saga.step(step).status, StepStatus::Skipped, "{step}");
    }
}
