//! An amended order: reviewed again, each department told to adjust with
//! the next revision (production as the amendment's run), answers of the
//! runs before ignored, a date the factory cannot meet asked about (and a
//! second amendment withdrawing that question), repeats harmless, and
//! nothing changed once the goods have left.

use gendan_proto::TypeName;
use gendan_proto::v1::{self, ExceptionKind, Phase};

use super::waiting::in_materials;
use super::{ORDER, engine, incoming, sent, start};
use crate::state::{SagaState, Status, StepStatus};

fn amended(number: u32, quantity: u32, date_after: &str) -> gendan_messaging::Incoming {
    let mut order = super::order();
    order.lines[0].quantity = quantity;
    order.total_minor = i64::from(quantity) * 2_000;
    let date_before = order.requested_delivery_date.clone();
    if !date_after.is_empty() {
        order.requested_delivery_date = date_after.to_owned();
    }
    incoming(&v1::OrderAmended {
        order: Some(order),
        amendment: Some(v1::Amendment {
            order_id: ORDER.to_owned(),
            number,
            reason: "PO rev B".to_owned(),
            requested_by: "buyer".to_owned(),
            changes: vec![format!("SHIRT quantity 500 → {quantity}")],
            requested_date_before: date_before.clone(),
            requested_date_after: if date_after.is_empty() {
                date_before
            } else {
                date_after.to_owned()
            },
            ..Default::default()
        }),
    })
}

/// In production: materials in, the work order of revision 1 running.
fn in_production(engine: &super::Engine) -> SagaState {
    let mut saga = in_materials(engine);
    saga.promised = chrono::NaiveDate::from_ymd_opt(2026, 6, 30);
    let react = |saga: &mut SagaState, event: gendan_messaging::Incoming| {
        engine.react(saga, &event, start()).unwrap();
    };
    react(
        &mut saga,
        incoming(&v1::MaterialsReady {
            order_id: ORDER.to_owned(),
            ready_on: "2026-03-20".to_owned(),
            revision: 1,
        }),
    );
    react(
        &mut saga,
        incoming(&v1::DepositReceived {
            order_id: ORDER.to_owned(),
            ..Default::default()
        }),
    );
    assert_eq!(saga.phase, Phase::Production);
    saga.outgoing.clear();
    saga
}

/// Answers the review of the amendment: materials by 25 March, the
/// factory done by `earliest`, and the estimates of the review's run (a
/// margin well within the customer's).
fn review_answers(engine: &super::Engine, saga: &mut SagaState, earliest: &str) {
    let checked = incoming(&v1::MaterialsChecked {
        order_id: ORDER.to_owned(),
        earliest_material_date: "2026-03-25".to_owned(),
        ..Default::default()
    });
    engine.react(saga, &checked, start()).unwrap();
    let sampled = incoming(&v1::InspectionEstimated {
        order_id: ORDER.to_owned(),
        revision: saga.step("estimate_inspection").revision(),
        sample_units: 80,
        ..Default::default()
    });
    engine.react(saga, &sampled, start()).unwrap();
    let capacity = incoming(&v1::CapacityChecked {
        order_id: ORDER.to_owned(),
        earliest_completion: earliest.to_owned(),
        feasible: true,
        ..Default::default()
    });
    engine.react(saga, &capacity, start()).unwrap();
    let freight = incoming(&v1::FreightQuoted {
        order_id: ORDER.to_owned(),
        revision: saga.step("quote_freight").revision(),
        freight_cost_minor: 30_000,
        currency: "CNY".to_owned(),
        ..Default::default()
    });
    engine.react(saga, &freight, start()).unwrap();
    let revision = saga.step("estimate_costs").revision();
    let revenue_minor = saga.order.total_minor;
    let estimated = incoming(&v1::CostsEstimated {
        order_id: ORDER.to_owned(),
        revision,
        estimate: Some(v1::CostEstimate {
            order_id: ORDER.to_owned(),
            revision,
            currency: "CNY".to_owned(),
            revenue_minor,
            cost_minor: revenue_minor / 2,
            margin_minor: revenue_minor - revenue_minor / 2,
            margin_bp: 5_000,
            ..Default::default()
        }),
    });
    engine.react(saga, &estimated, start()).unwrap();
}

#[test]
fn an_amendment_in_production_is_reviewed_again_and_every_department_adjusts() {
    let engine = engine();
    let mut saga = in_production(&engine);
    engine
        .react(&mut saga, &amended(1, 600, ""), start())
        .unwrap();

    // The review runs again on the amended order, from the review phase.
    assert_eq!(saga.phase, Phase::Review);
    assert_eq!(saga.order.lines[0].quantity, 600);
    let checks: Vec<v1::CheckMaterials> = sent(&saga);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].items[0].quantity, 600);
    let amendment = saga
        .exceptions
        .iter()
        .find(|e| e.kind == ExceptionKind::Amendment)
        .expect("the amendment is on the register");
    assert!(amendment.is_open());
    assert!(amendment.cause.contains("SHIRT quantity 500 → 600"));

    saga.outgoing.clear();
    review_answers(&engine, &mut saga, "2026-06-20");
    // Feasible by the promise the order already had: no question, the
    // order is confirmed again with that promise as revision 2.
    assert_eq!(
        saga.step("clarify_delivery_date").status,
        StepStatus::Skipped
    );
    let confirms: Vec<v1::ConfirmOrder> = sent(&saga);
    assert_eq!(confirms.len(), 1);
    assert_eq!(confirms[0].revision, 2);
    assert_eq!(confirms[0].promised_delivery_date, "2026-06-30");

    saga.outgoing.clear();
    let confirmed = incoming(&v1::OrderConfirmed {
        order_id: ORDER.to_owned(),
        promised_delivery_date: "2026-06-30".to_owned(),
        revision: 2,
    });
    engine.react(&mut saga, &confirmed, start()).unwrap();
    assert!(
        saga.exceptions
            .iter()
            .filter(|e| e.kind == ExceptionKind::Amendment)
            .all(|e| !e.is_open()),
        "confirmed again: the amendment is settled"
    );
    let receivables: Vec<v1::OpenReceivable> = sent(&saga);
    assert_eq!(receivables.len(), 1);
    assert_eq!(receivables[0].revision, 2);
    assert_eq!(receivables[0].total_minor, 1_200_000);
    let plans: Vec<v1::PlanWorkOrder> = sent(&saga);
    assert_eq!(plans.len(), 1);
    assert_eq!((plans[0].revision, plans[0].amendment), (2, 1));
    assert_eq!(plans[0].items[0].quantity, 600);

    for answer in [
        incoming(&v1::ReceivableOpened {
            order_id: ORDER.to_owned(),
            revision: 2,
            deposit_required: true,
            ..Default::default()
        }),
        incoming(&v1::WorkOrderPlanned {
            order_id: ORDER.to_owned(),
            revision: 2,
            planned_end: "2026-06-15".to_owned(),
            ..Default::default()
        }),
    ] {
        engine.react(&mut saga, &answer, start()).unwrap();
    }
    let procures: Vec<v1::ProcureMaterials> = sent(&saga);
    assert_eq!(procures.len(), 1);
    assert_eq!(procures[0].revision, 2);
    engine
        .react(
            &mut saga,
            &incoming(&v1::MaterialsOrdered {
                order_id: ORDER.to_owned(),
                revision: 2,
                expected_ready_date: "2026-03-28".to_owned(),
                ..Default::default()
            }),
            start(),
        )
        .unwrap();
    // The first procurement's readiness, arriving late, is history.
    let stale_ready = incoming(&v1::MaterialsReady {
        order_id: ORDER.to_owned(),
        ready_on: "2026-03-20".to_owned(),
        revision: 1,
    });
    engine.react(&mut saga, &stale_ready, start()).unwrap();
    assert_eq!(saga.step("materials_ready").status, StepStatus::Waiting);
    let ready = incoming(&v1::MaterialsReady {
        order_id: ORDER.to_owned(),
        ready_on: "2026-03-28".to_owned(),
        revision: 2,
    });
    engine.react(&mut saga, &ready, start()).unwrap();
    assert_eq!(saga.phase, Phase::Production);

    // Only the amendment's run completes production.
    let completed = |revision| {
        incoming(&v1::WorkOrderCompleted {
            order_id: ORDER.to_owned(),
            revision,
            completed_on: "2026-06-10".to_owned(),
            ..Default::default()
        })
    };
    let (projected, ready) = (saga.projected, saga.facts.ready_date);
    engine.react(&mut saga, &completed(1), start()).unwrap();
    assert_eq!(saga.phase, Phase::Production);
    assert_eq!(
        (saga.projected, saga.facts.ready_date),
        (projected, ready),
        "the superseded run's completion moves no date"
    );
    engine.react(&mut saga, &completed(2), start()).unwrap();
    assert_eq!(saga.phase, Phase::FinalInspection);
    assert_eq!(saga.status, Status::Running);
}

#[test]
fn a_date_the_factory_cannot_meet_is_asked_and_a_second_amendment_withdraws_the_question() {
    let engine = engine();
    let mut saga = in_production(&engine);
    engine
        .react(&mut saga, &amended(1, 900, "2026-06-01"), start())
        .unwrap();
    assert_eq!(saga.requested.to_string(), "2026-06-01");
    review_answers(&engine, &mut saga, "2026-07-15");
    let question = saga
        .decisions
        .iter()
        .find(|d| d.is_open())
        .expect("the customer is asked about the date");
    assert_eq!(question.kind, "delivery_date");

    saga.outgoing.clear();
    engine
        .react(&mut saga, &amended(2, 700, "2026-07-31"), start())
        .unwrap();
    assert!(saga.decisions.iter().all(|d| !d.is_open()));
    assert_eq!(
        saga.step("clarify_delivery_date").status,
        StepStatus::Pending
    );
    let checks: Vec<v1::CheckMaterials> = sent(&saga);
    assert_eq!(checks[0].items[0].quantity, 700);
    review_answers(&engine, &mut saga, "2026-07-15");
    let confirms: Vec<v1::ConfirmOrder> = sent(&saga);
    assert_eq!(
        confirms.last().unwrap().promised_delivery_date,
        "2026-07-31"
    );
    // One amendment open at a time: the first was superseded.
    let amendments: Vec<_> = saga
        .exceptions
        .iter()
        .filter(|e| e.kind == ExceptionKind::Amendment)
        .collect();
    assert_eq!(amendments.len(), 2);
    assert_eq!(amendments.iter().filter(|e| e.is_open()).count(), 1);
}

#[test]
fn a_repeated_or_older_amendment_changes_nothing() {
    let engine = engine();
    let mut saga = in_production(&engine);
    engine
        .react(&mut saga, &amended(1, 600, ""), start())
        .unwrap();
    saga.outgoing.clear();
    let runs = saga.step("check_materials").runs;
    engine
        .react(&mut saga, &amended(1, 600, ""), start())
        .unwrap();
    assert!(saga.outgoing.is_empty());
    assert_eq!(saga.step("check_materials").runs, runs);
}

#[test]
fn an_amendment_after_the_goods_left_is_not_applied() {
    let engine = engine();
    let mut saga = in_production(&engine);
    saga.phase = Phase::Shipping;
    engine
        .react(&mut saga, &amended(1, 600, ""), start())
        .unwrap();
    assert_eq!(saga.order.lines[0].quantity, 500);
    assert_eq!(saga.facts.amendments, 0);
    // Nothing is asked of anyone; an operator sees why on the register.
    assert!(
        saga.outgoing
            .iter()
            .all(|out| out.envelope.r#type == v1::ExceptionOpened::TYPE_NAME)
    );
    let refused = saga
        .exceptions
        .iter()
        .find(|e| e.kind == ExceptionKind::Amendment)
        .expect("the refusal is on the register");
    assert!(refused.is_open());
    assert!(refused.cause.contains("not applied"), "{}", refused.cause);
}

#[test]
fn a_price_change_alone_adjusts_the_money_and_the_papers_not_the_goods() {
    let engine = engine();
    let mut saga = in_production(&engine);
    let mut repriced = super::order();
    repriced.lines[0].unit_price_minor = 2_500;
    repriced.total_minor = 1_250_000;
    let amended = incoming(&v1::OrderAmended {
        order: Some(repriced),
        amendment: Some(v1::Amendment {
            order_id: ORDER.to_owned(),
            number: 1,
            reason: "price agreed again".to_owned(),
            changes: vec!["SHIRT unit price 20.00 → 25.00".to_owned()],
            requested_date_before: "2026-06-30".to_owned(),
            requested_date_after: "2026-06-30".to_owned(),
            ..Default::default()
        }),
    });
    engine.react(&mut saga, &amended, start()).unwrap();
    assert_eq!(saga.step("open_receivable").status, StepStatus::Pending);
    // A new price is a new margin: estimated again (once), and asked
    // about again if it is too thin.
    assert_eq!(saga.step("estimate_costs").status, StepStatus::Pending);
    assert_eq!(saga.step("review_margin").status, StepStatus::Pending);
    let reopened = saga
        .new_log
        .iter()
        .rev()
        .find(|entry| entry.action == "reopened")
        .expect("the review runs again");
    assert_eq!(
        reopened.detail.matches("estimate_costs").count(),
        1,
        "{}",
        reopened.detail
    );
    for untouched in ["plan_production", "procure_materials", "materials_ready"] {
        assert_eq!(
            saga.step(untouched).status,
            StepStatus::Done,
            "{untouched} is not redone for a price"
        );
    }
    assert_eq!(
        saga.step("production_completed").status,
        StepStatus::Waiting
    );
}

#[test]
fn a_second_amendment_is_reviewed_against_the_promise_not_the_first_request() {
    let engine = engine();
    let mut saga = in_production(&engine);
    // Promised later than the customer first asked (agreed at review).
    saga.promised = chrono::NaiveDate::from_ymd_opt(2026, 7, 20);
    engine
        .react(&mut saga, &amended(1, 600, ""), start())
        .unwrap();
    assert_eq!(saga.requested.to_string(), "2026-07-20");
    // A second amendment before the first is confirmed keeps that date.
    engine
        .react(&mut saga, &amended(2, 650, ""), start())
        .unwrap();
    assert_eq!(saga.requested.to_string(), "2026-07-20");
}

#[test]
fn answers_of_a_run_whose_producer_named_no_revision_still_count() {
    // A saga from before revisions were answered: the work order was
    // planned twice (an operator's retry) but production named no revision.
    let engine = engine();
    let mut saga = in_production(&engine);
    saga.step_mut("plan_production").runs = 2;
    saga.facts.answered_revisions.remove("plan_production");
    let completed = incoming(&v1::WorkOrderCompleted {
        order_id: ORDER.to_owned(),
        revision: 1,
        completed_on: "2026-06-10".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &completed, start()).unwrap();
    assert_eq!(saga.phase, Phase::FinalInspection);
}

#[test]
fn a_late_purchase_order_stays_asked_through_an_amendment() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    let late = incoming(&v1::PurchaseOrderLate {
        order_id: ORDER.to_owned(),
        purchase_order_id: "PO-7".to_owned(),
        supplier: "Fabrics Ltd".to_owned(),
        material: "FABRIC".to_owned(),
        lateness: "not_received".to_owned(),
        due_date: "2026-03-20".to_owned(),
        days_late: 3,
        alternative_supplier: "Textile Co".to_owned(),
    });
    engine.react(&mut saga, &late, start()).unwrap();
    engine
        .react(&mut saga, &amended(1, 600, ""), start())
        .unwrap();
    let open: Vec<_> = saga.decisions.iter().filter(|d| d.is_open()).collect();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].subject.as_deref(), Some("PO-7"));
    assert!(
        saga.exceptions
            .iter()
            .any(|e| e.kind == ExceptionKind::SupplierLate && e.is_open())
    );
}
