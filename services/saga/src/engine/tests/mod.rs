//! The pure core on an in-memory saga with a manual clock: the failure
//! policies, the loop and its counter, decision effects and revisions.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use gendan_messaging::{Cause, Incoming, Outgoing};
use gendan_proto::TypeName;
use gendan_proto::v1::{self, ExceptionKind, Phase};
use prost::Message;

use super::{DECIDE, Engine};
use crate::clock::ManualClock;
use crate::state::{SagaState, Status, StepStatus, TimerChange};
use crate::workflow::{Timing, Workflow, answers};

const ORDER: &str = "0190a0b0-0000-7000-8000-000000000001";

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap()
}

fn engine() -> Engine {
    Engine::new(
        Workflow::standard(Timing::default()),
        Arc::new(ManualClock::new(start())),
    )
}

fn incoming<M: Message + TypeName>(payload: &M) -> Incoming {
    let out = Outgoing::event("test", ORDER, payload, &Cause::root(ORDER));
    Incoming {
        subject: out.subject,
        envelope: out.envelope,
        traceparent: None,
        delivered: 1,
        stream_sequence: 1,
    }
}

fn order() -> v1::Order {
    v1::Order {
        order_id: ORDER.to_owned(),
        customer: "Acme".to_owned(),
        requested_delivery_date: "2026-06-30".to_owned(),
        lines: vec![v1::OrderLine {
            product: "SHIRT".to_owned(),
            quantity: 500,
            ..Default::default()
        }],
        total_minor: 1_000_000,
        currency: "CNY".to_owned(),
        ..Default::default()
    }
}

/// A saga whose steps before final inspection are done, waiting for the
/// first final inspection to be opened.
fn at_final_inspection(engine: &Engine) -> SagaState {
    let created = incoming(&v1::OrderCreated {
        order: Some(order()),
    });
    let mut saga = engine.begin(order(), &created, start()).unwrap();
    for (phase, step) in engine.workflow().steps() {
        if (phase.phase as i32) < (Phase::FinalInspection as i32) {
            let state = saga.step_mut(step.name);
            state.status = StepStatus::Done;
            state.runs = 1;
        }
    }
    saga.phase = Phase::Production;
    saga.outgoing.clear();
    engine.advance(&mut saga, &Cause::root(ORDER), start());
    saga
}

/// The commands of type `M` the saga is about to send, decoded.
fn sent<M: Message + TypeName + Default>(saga: &SagaState) -> Vec<M> {
    saga.outgoing
        .iter()
        .filter(|out| out.envelope.r#type == M::TYPE_NAME)
        .map(|out| M::decode(out.envelope.payload.as_slice()).unwrap())
        .collect()
}

fn failed(revision: u32, failures: u32) -> Incoming {
    incoming(&v1::FinalInspectionFailed {
        order_id: ORDER.to_owned(),
        inspection_id: format!("insp-{revision}"),
        nonconformance_id: format!("nc-{revision}"),
        failures,
        summary: "major 3 > Ac 2".to_owned(),
        revision,
        defective_units: 3,
        sample_size: 50,
    })
}

fn opened(revision: u32) -> Incoming {
    incoming(&v1::FinalInspectionOpened {
        order_id: ORDER.to_owned(),
        inspection_id: format!("insp-{revision}"),
        revision,
        ..Default::default()
    })
}

fn rework_answers(engine: &Engine, saga: &mut SagaState, revision: u32) {
    let planned = incoming(&v1::ReworkPlanned {
        order_id: ORDER.to_owned(),
        revision,
        planned_end: "2026-04-02".to_owned(),
        ..Default::default()
    });
    engine.react(saga, &planned, start()).unwrap();
    let done = incoming(&v1::ReworkCompleted {
        order_id: ORDER.to_owned(),
        revision,
        completed_on: "2026-04-02".to_owned(),
        ..Default::default()
    });
    engine.react(saga, &done, start()).unwrap();
}

#[test]
fn the_first_inspection_skips_rework_and_asks_for_revision_one() {
    let engine = engine();
    let saga = at_final_inspection(&engine);
    assert_eq!(saga.phase, Phase::FinalInspection);
    assert_eq!(saga.step("plan_rework").status, StepStatus::Skipped);
    assert_eq!(saga.step("rework_done").status, StepStatus::Skipped);
    let requests: Vec<v1::RequestFinalInspection> = sent(&saga);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].revision, 1);
}

#[test]
fn a_failed_inspection_loops_through_rework_to_a_new_revision_without_stalling() {
    let engine = engine();
    let mut saga = at_final_inspection(&engine);
    engine.react(&mut saga, &opened(1), start()).unwrap();
    saga.outgoing.clear();

    engine.react(&mut saga, &failed(1, 1), start()).unwrap();
    assert_eq!(saga.status, Status::Running, "the loop needs no operator");
    assert_eq!(saga.step("final_inspection_passed").failures, 1);
    let reworks: Vec<v1::StartRework> = sent(&saga);
    assert_eq!(reworks.len(), 1, "rework ordered");
    assert_eq!(reworks[0].revision, 1);
    assert_eq!(reworks[0].nonconformance_id, "nc-1");
    let open: Vec<_> = saga.exceptions.iter().filter(|e| e.is_open()).collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].kind, ExceptionKind::FinalInspectionFailed);

    saga.outgoing.clear();
    rework_answers(&engine, &mut saga, 1);
    let requests: Vec<v1::RequestFinalInspection> = sent(&saga);
    assert_eq!(requests.len(), 1, "re-inspection asked once rework is done");
    assert_eq!(requests[0].revision, 2);

    // The same failure delivered again is history: it answers revision 1.
    engine.react(&mut saga, &failed(1, 1), start()).unwrap();
    assert_eq!(saga.step("final_inspection_passed").failures, 1);

    engine.react(&mut saga, &opened(2), start()).unwrap();
    let passed = incoming(&v1::FinalInspectionPassed {
        order_id: ORDER.to_owned(),
        inspection_id: "insp-2".to_owned(),
        revision: 2,
        ..Default::default()
    });
    engine.react(&mut saga, &passed, start()).unwrap();
    assert_eq!(
        saga.step("final_inspection_passed").status,
        StepStatus::Done
    );
    assert_eq!(saga.phase, Phase::Packing);
    assert!(saga.exceptions.iter().all(|e| !e.is_open()));
    assert!(!saga.facts.rework_due());
}

#[test]
fn a_stale_pass_of_an_earlier_revision_completes_nothing() {
    let engine = engine();
    let mut saga = at_final_inspection(&engine);
    engine.react(&mut saga, &opened(1), start()).unwrap();
    engine.react(&mut saga, &failed(1, 1), start()).unwrap();
    let stale = incoming(&v1::FinalInspectionPassed {
        order_id: ORDER.to_owned(),
        inspection_id: "insp-1".to_owned(),
        revision: 1,
        ..Default::default()
    });
    engine.react(&mut saga, &stale, start()).unwrap();
    assert_ne!(
        saga.step("final_inspection_passed").status,
        StepStatus::Done
    );
}

/// Two failures (the default limit): the second asks a person.
fn failed_twice(engine: &Engine) -> SagaState {
    let mut saga = at_final_inspection(engine);
    engine.react(&mut saga, &opened(1), start()).unwrap();
    engine.react(&mut saga, &failed(1, 1), start()).unwrap();
    rework_answers(engine, &mut saga, 1);
    engine.react(&mut saga, &opened(2), start()).unwrap();
    saga.outgoing.clear();
    engine.react(&mut saga, &failed(2, 2), start()).unwrap();
    saga
}

#[test]
fn after_the_limit_of_failures_a_person_decides() {
    let engine = engine();
    let saga = failed_twice(&engine);
    assert_eq!(saga.status, Status::Running);
    assert!(sent::<v1::StartRework>(&saga).is_empty(), "no third rework");
    let decision = saga.decisions.last().expect("a decision");
    assert_eq!(decision.kind, "final_inspection");
    assert_eq!(decision.step, "final_inspection_passed");
    assert!(decision.options.contains(&answers::CONCESSION.to_owned()));
    let requested: Vec<v1::DecisionRequested> = sent(&saga);
    assert_eq!(requested.len(), 1);
    let exception = saga
        .exceptions
        .iter()
        .find(|e| e.is_open())
        .expect("the failure is open");
    assert_eq!(exception.decision_id, Some(decision.decision_id));
    assert!(
        saga.timer_changes
            .iter()
            .any(|t| matches!(t, TimerChange::Set(key, _) if key == &format!("{DECIDE}final_inspection_passed")))
    );
}

#[test]
fn a_customer_that_allows_one_failure_is_asked_at_the_first() {
    let engine = engine();
    let mut saga = at_final_inspection(&engine);
    saga.order.customer_rules = Some(v1::CustomerRules {
        final_inspection_failures: 1,
        ..Default::default()
    });
    engine.react(&mut saga, &opened(1), start()).unwrap();
    saga.outgoing.clear();
    engine.react(&mut saga, &failed(1, 1), start()).unwrap();
    assert!(sent::<v1::StartRework>(&saga).is_empty(), "no rework");
    let decision = saga.decisions.last().expect("a decision at once");
    assert_eq!(decision.kind, "final_inspection");
}

#[test]
fn a_customer_that_allows_three_failures_gets_a_third_rework() {
    let engine = engine();
    let mut saga = at_final_inspection(&engine);
    saga.order.customer_rules = Some(v1::CustomerRules {
        final_inspection_failures: 3,
        ..Default::default()
    });
    engine.react(&mut saga, &opened(1), start()).unwrap();
    engine.react(&mut saga, &failed(1, 1), start()).unwrap();
    rework_answers(&engine, &mut saga, 1);
    engine.react(&mut saga, &opened(2), start()).unwrap();
    saga.outgoing.clear();
    engine.react(&mut saga, &failed(2, 2), start()).unwrap();
    // The deployment's limit is two; the customer's three: reworked again.
    assert!(saga.decisions.is_empty());
    assert_eq!(sent::<v1::StartRework>(&saga).len(), 1);
}

#[test]
fn a_concession_completes_the_inspection_and_is_recorded() {
    let engine = engine();
    let mut saga = failed_twice(&engine);
    let id = saga.decisions.last().unwrap().decision_id;
    engine
        .apply_answer(
            &mut saga,
            id,
            answers::CONCESSION,
            "buyer",
            "customer ok'd 2 marks",
            start(),
        )
        .unwrap();
    assert_eq!(
        saga.step("final_inspection_passed").status,
        StepStatus::Done
    );
    assert_eq!(saga.phase, Phase::Packing);
    let concession = saga.facts.concession.as_ref().expect("recorded");
    assert_eq!(concession.approved_by, "buyer");
    let closed = saga
        .exceptions
        .iter()
        .find(|e| e.kind == ExceptionKind::FinalInspectionFailed && e.decision.is_some())
        .unwrap();
    assert_eq!(closed.decision.as_deref(), Some(answers::CONCESSION));
    assert_eq!(closed.decided_by.as_deref(), Some("buyer"));
    assert!(closed.closed_at.is_some());
}

#[test]
fn scrap_and_remake_runs_production_again_as_revision_two() {
    let engine = engine();
    let mut saga = failed_twice(&engine);
    let id = saga.decisions.last().unwrap().decision_id;
    saga.outgoing.clear();
    engine
        .apply_answer(
            &mut saga,
            id,
            answers::SCRAP_AND_REMAKE,
            "qa-lead",
            "",
            start(),
        )
        .unwrap();
    assert_eq!(
        saga.phase,
        Phase::Confirmed,
        "the order is back in production planning"
    );
    let plans: Vec<v1::PlanWorkOrder> = sent(&saga);
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].revision, 2);
    assert_eq!(saga.step("final_inspection_passed").failures, 0);
    assert_eq!(saga.facts.remakes, 1);

    // The first run's completion, delivered late, does not count.
    let old = incoming(&v1::WorkOrderCompleted {
        order_id: ORDER.to_owned(),
        revision: 1,
        completed_on: "2026-03-30".to_owned(),
        ..Default::default()
    });
    let planned = incoming(&v1::WorkOrderPlanned {
        order_id: ORDER.to_owned(),
        revision: 2,
        planned_end: "2026-05-01".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &planned, start()).unwrap();
    // The scrapped lot used up the materials: they are bought afresh.
    let procure: Vec<v1::ProcureMaterials> = sent(&saga);
    assert_eq!(procure.len(), 1);
    assert_eq!((procure[0].revision, procure[0].remake), (2, true));
    // A later revision (an amendment before the remake's materials were
    // bought) still buys them afresh.
    let later = crate::workflow::commands::procure_materials(
        &saga,
        3,
        &gendan_messaging::Cause::root(ORDER),
    );
    let later = v1::ProcureMaterials::decode(later.envelope.payload.as_slice()).unwrap();
    assert!(later.remake);
    for answer in [
        incoming(&v1::MaterialsOrdered {
            order_id: ORDER.to_owned(),
            revision: 2,
            expected_ready_date: "2026-04-10".to_owned(),
            ..Default::default()
        }),
        incoming(&v1::MaterialsReady {
            order_id: ORDER.to_owned(),
            ready_on: "2026-04-10".to_owned(),
            revision: 2,
        }),
    ] {
        engine.react(&mut saga, &answer, start()).unwrap();
    }
    assert_eq!(
        saga.facts.remake_procurement, None,
        "bought: later revisions adjust"
    );
    engine.react(&mut saga, &old, start()).unwrap();
    assert_eq!(
        saga.step("production_completed").status,
        StepStatus::Waiting
    );
    let new = incoming(&v1::WorkOrderCompleted {
        order_id: ORDER.to_owned(),
        revision: 2,
        completed_on: "2026-05-01".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &new, start()).unwrap();
    let requests: Vec<v1::RequestFinalInspection> = sent(&saga);
    assert_eq!(
        requests.last().unwrap().revision,
        3,
        "a new inspection of the new lot"
    );
    assert_eq!(saga.phase, Phase::FinalInspection);
}

#[test]
fn cancelling_by_decision_compensates_in_reverse() {
    let engine = engine();
    let mut saga = failed_twice(&engine);
    let id = saga.decisions.last().unwrap().decision_id;
    saga.outgoing.clear();
    engine
        .apply_answer(
            &mut saga,
            id,
            answers::CANCEL_ORDER,
            "sales",
            "customer withdrew",
            start(),
        )
        .unwrap();
    assert_eq!(saga.status, Status::Cancelled);
    assert_eq!(saga.phase, Phase::Cancelled);
    let types: Vec<&str> = saga
        .outgoing
        .iter()
        .map(|o| o.envelope.r#type.as_str())
        .filter(|t| t.starts_with("gendan.v1.Cancel") || *t == v1::ReleaseCapacity::TYPE_NAME)
        .collect();
    assert_eq!(
        types,
        [
            v1::CancelMaterials::TYPE_NAME,
            v1::CancelWorkOrder::TYPE_NAME,
            v1::CancelReceivable::TYPE_NAME,
            v1::ReleaseCapacity::TYPE_NAME,
        ]
    );
    assert!(saga.exceptions.iter().all(|e| !e.is_open()));
}

#[test]
fn an_answer_outside_the_options_is_refused_and_changes_nothing() {
    let engine = engine();
    let mut saga = failed_twice(&engine);
    let id = saga.decisions.last().unwrap().decision_id;
    let before = saga.step("final_inspection_passed");
    let err = engine
        .apply_answer(&mut saga, id, "ship_it_anyway", "x", "", start())
        .unwrap_err();
    assert!(err.to_string().contains("ship_it_anyway"), "{err}");
    assert_eq!(saga.step("final_inspection_passed"), before);
    assert!(saga.decisions.last().unwrap().is_open());
}

#[test]
fn a_step_without_a_loop_stalls_and_the_stall_is_an_exception() {
    let engine = engine();
    let mut saga = at_final_inspection(&engine);
    engine.react(&mut saga, &opened(1), start()).unwrap();
    let passed = incoming(&v1::FinalInspectionPassed {
        order_id: ORDER.to_owned(),
        inspection_id: "insp-1".to_owned(),
        revision: 1,
        ..Default::default()
    });
    engine.react(&mut saga, &passed, start()).unwrap();
    let failed = incoming(&v1::PackingListFailed {
        order_id: ORDER.to_owned(),
        reason: "no packing spec for customer \"Acme\"".to_owned(),
    });
    engine.react(&mut saga, &failed, start()).unwrap();
    assert_eq!(saga.status, Status::Stalled);
    let exception = saga.exceptions.iter().find(|e| e.is_open()).unwrap();
    assert_eq!(exception.step, "prepare_packing");
    assert_eq!(exception.owner, v1::Department::Logistics);

    engine
        .retry(&mut saga, "prepare_packing", "ops", "spec entered", start())
        .unwrap();
    assert_eq!(saga.status, Status::Running);
    let closed = saga
        .exceptions
        .iter()
        .find(|e| e.step == "prepare_packing")
        .unwrap();
    assert_eq!(closed.decision.as_deref(), Some("retry"));
    assert_eq!(closed.decided_by.as_deref(), Some("ops"));
}

#[test]
fn a_resent_command_keeps_its_revision() {
    let engine = engine();
    let mut saga = at_final_inspection(&engine);
    saga.outgoing.clear();
    let later = start() + Duration::seconds(31);
    engine.timer_fired(&mut saga, "request_final_inspection", later);
    let requests: Vec<v1::RequestFinalInspection> = sent(&saga);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].revision, 1);
    assert_eq!(saga.step("request_final_inspection").attempts, 2);
}

#[test]
fn delivery_risk_opens_an_exception_that_says_why_and_closes_on_track() {
    let engine = engine();
    let mut saga = at_final_inspection(&engine);
    saga.promised = chrono::NaiveDate::from_ymd_opt(2026, 4, 1);
    saga.projected = chrono::NaiveDate::from_ymd_opt(2026, 3, 25);
    engine.react(&mut saga, &opened(1), start()).unwrap();
    engine.react(&mut saga, &failed(1, 1), start()).unwrap();
    saga.outgoing.clear();
    let planned = incoming(&v1::ReworkPlanned {
        order_id: ORDER.to_owned(),
        revision: 1,
        planned_end: "2026-04-05".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &planned, start()).unwrap();
    assert!(saga.at_risk);
    let risk: Vec<v1::DeliveryRiskChanged> = sent(&saga);
    assert!(
        risk[0].reason.contains("failed final inspection"),
        "{}",
        risk[0].reason
    );
    let open_risk = saga
        .exceptions
        .iter()
        .find(|e| e.kind == ExceptionKind::DeliveryRisk && e.is_open());
    assert!(open_risk.is_some());
    let inspection = saga
        .exceptions
        .iter()
        .find(|e| e.kind == ExceptionKind::FinalInspectionFailed)
        .unwrap();
    assert_eq!(inspection.impact_days, 11, "25 Mar → 5 Apr");
}

mod after_shipping;
mod amendments;
mod calendar;
mod carrier_claims;
mod costs;
mod ledger;
mod waiting;

/// A new order in review whose materials check has answered: its capacity
/// check is sent.
fn materials_checked(engine: &Engine) -> SagaState {
    let created = incoming(&v1::OrderCreated {
        order: Some(order()),
    });
    let mut saga = engine.begin(order(), &created, start()).unwrap();
    let checked = incoming(&v1::MaterialsChecked {
        order_id: ORDER.to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &checked, start()).unwrap();
    saga
}

#[test]
fn a_late_second_capacity_answer_does_not_move_the_proposed_date() {
    let engine = engine();
    let mut saga = materials_checked(&engine);
    let capacity = |date: &str| {
        incoming(&v1::CapacityChecked {
            order_id: ORDER.to_owned(),
            earliest_completion: date.to_owned(),
            ..Default::default()
        })
    };
    engine
        .react(&mut saga, &capacity("2026-08-01"), start())
        .unwrap();
    // The question waits for the lane; without one the goods are
    // delivered when packed: production ends Saturday the 1st, inspected
    // Monday, packed Tuesday.
    let quoted = incoming(&v1::FreightQuoted {
        order_id: ORDER.to_owned(),
        problem: "no lane for the test".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &quoted, start()).unwrap();
    let asked = saga.projected;
    assert_eq!(asked, chrono::NaiveDate::from_ymd_opt(2026, 8, 4));
    engine
        .react(&mut saga, &capacity("2026-09-15"), start())
        .unwrap();
    assert_eq!(saga.projected, asked);
    let decision = saga
        .decisions
        .last()
        .expect("the date is asked")
        .decision_id;
    engine
        .apply_answer(
            &mut saga,
            decision,
            answers::ACCEPT_PROPOSED_DATE,
            "buyer",
            "",
            start(),
        )
        .unwrap();
    assert_eq!(saga.promised, asked);
}

#[test]
fn the_review_reserves_capacity_by_revision_and_a_cancel_in_review_gives_it_back() {
    let engine = engine();
    let mut saga = materials_checked(&engine);
    let asked = sent::<v1::CheckOrderCapacity>(&saga);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].revision, 1, "the check reserves as revision 1");

    // An answer to some other revision (a check before an amendment) does
    // not settle this one.
    let stale = incoming(&v1::CapacityChecked {
        order_id: ORDER.to_owned(),
        earliest_completion: "2026-05-01".to_owned(),
        revision: 7,
        ..Default::default()
    });
    engine.react(&mut saga, &stale, start()).unwrap();
    assert!(!saga.step("capacity_check").status.is_finished());
    let answered = incoming(&v1::CapacityChecked {
        order_id: ORDER.to_owned(),
        earliest_completion: "2026-05-01".to_owned(),
        revision: 1,
        reserved_until: "2026-03-16".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &answered, start()).unwrap();
    assert!(saga.step("capacity_check").status.is_finished());

    saga.outgoing.clear();
    engine
        .cancel_requested(&mut saga, "sales", "customer withdrew", start())
        .unwrap();
    let released = sent::<v1::ReleaseCapacity>(&saga);
    assert_eq!(released.len(), 1, "the reserved hours are given back");
    assert_eq!(released[0].order_id, ORDER);
    // Nothing was planned, so nothing else is undone.
    assert!(sent::<v1::CancelWorkOrder>(&saga).is_empty());
    let done = incoming(&v1::CapacityReleased {
        order_id: ORDER.to_owned(),
        released_hours: 120.0,
        ..Default::default()
    });
    engine.react(&mut saga, &done, start()).unwrap();
    assert!(
        saga.compensations
            .values()
            .all(|c| c.status == crate::state::CompensationStatus::Done),
        "{:?}",
        saga.compensations
    );
}
