//! After the goods leave: a missed departure re-booked, and the customer's
//! claims, one question each.

use gendan_proto::v1::{self, ExceptionKind, Phase};

use super::waiting::in_materials;
use super::{ORDER, engine, incoming, sent, start};
use crate::state::{Status, StepStatus};
use crate::workflow::answers;

#[test]
fn a_missed_etd_rebooks_as_a_new_revision() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    for (phase, step) in engine.workflow().steps() {
        if (phase.phase as i32) < (Phase::Shipping as i32) {
            let state = saga.step_mut(step.name);
            if !state.status.is_finished() {
                state.status = StepStatus::Done;
                state.runs = 1;
            }
        }
    }
    saga.phase = Phase::Documents;
    engine.advance(&mut saga, &gendan_messaging::Cause::root(ORDER), start());
    let booked = v1::ShipmentBooked {
        order_id: ORDER.to_owned(),
        etd: "2026-03-10".to_owned(),
        eta: "2026-03-30".to_owned(),
        booking_reference: "BK-1".to_owned(),
        revision: 1,
        ..Default::default()
    };
    engine
        .react(&mut saga, &incoming(&booked), start())
        .unwrap();
    saga.outgoing.clear();
    let late = v1::ShipmentLate {
        order_id: ORDER.to_owned(),
        booking_reference: "BK-1".to_owned(),
        etd: "2026-03-10".to_owned(),
        days_late: 1,
        revision: 1,
    };
    engine.react(&mut saga, &incoming(&late), start()).unwrap();
    let rebooked: Vec<v1::BookShipment> = sent(&saga);
    assert_eq!(rebooked.len(), 1);
    assert_eq!(rebooked[0].revision, 2);
    assert_eq!(saga.status, Status::Running);
    // The first booking's lateness, delivered again, is history.
    engine.react(&mut saga, &incoming(&late), start()).unwrap();
    assert_eq!(saga.step("shipped").failures, 1);
}

fn claim(id: &str, quantity: u32) -> v1::ClaimRaised {
    v1::ClaimRaised {
        claim: Some(v1::Claim {
            claim_id: id.to_owned(),
            order_id: ORDER.to_owned(),
            kind: v1::ClaimKind::Damage as i32,
            product: "SHIRT".to_owned(),
            quantity,
            description: "crushed cartons".to_owned(),
            raised_by: "buyer".to_owned(),
            value_minor: i64::from(quantity) * 2_000,
            ..Default::default()
        }),
    }
}

#[test]
fn each_claim_gets_its_own_question_and_a_credit_note_or_a_rejection() {
    let engine = engine();
    let mut saga = in_acceptance(&engine);
    assert_eq!(saga.phase, Phase::Acceptance);
    engine
        .react(&mut saga, &incoming(&claim("CLM-1", 2)), start())
        .unwrap();
    engine
        .react(&mut saga, &incoming(&claim("CLM-2", 5)), start())
        .unwrap();
    // The first claim delivered again asks nothing new.
    engine
        .react(&mut saga, &incoming(&claim("CLM-1", 2)), start())
        .unwrap();
    let open: Vec<_> = saga
        .decisions
        .iter()
        .filter(|d| d.is_open())
        .cloned()
        .collect();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].subject.as_deref(), Some("CLM-1"));
    assert!(open[0].question.contains("CLM-1"), "{}", open[0].question);
    let claims: Vec<_> = saga
        .exceptions
        .iter()
        .filter(|e| e.kind == ExceptionKind::CustomerClaim)
        .collect();
    assert_eq!(claims.len(), 2);

    saga.outgoing.clear();
    engine
        .apply_answer(
            &mut saga,
            open[0].decision_id,
            answers::CREDIT_NOTE,
            "sales",
            "",
            start(),
        )
        .unwrap();
    let credits: Vec<v1::IssueCreditNote> = sent(&saga);
    assert_eq!(credits.len(), 1);
    assert_eq!(
        (credits[0].claim_id.as_str(), credits[0].amount_minor),
        ("CLM-1", 4_000)
    );
    let resolved: Vec<v1::ResolveClaim> = sent(&saga);
    assert_eq!(
        resolved[0].resolution,
        v1::ClaimResolution::CreditNote as i32
    );
    assert_eq!(saga.step("customer_acceptance").status, StepStatus::Waiting);

    saga.outgoing.clear();
    engine
        .apply_answer(
            &mut saga,
            open[1].decision_id,
            answers::REJECT_CLAIM,
            "qa",
            "",
            start(),
        )
        .unwrap();
    let resolved: Vec<v1::ResolveClaim> = sent(&saga);
    assert_eq!(
        (resolved[0].claim_id.as_str(), resolved[0].resolution),
        ("CLM-2", v1::ClaimResolution::Rejected as i32)
    );
    assert!(sent::<v1::IssueCreditNote>(&saga).is_empty());

    // Orders accepts once the last claim is resolved.
    let accepted = incoming(&v1::OrderAccepted {
        order_id: ORDER.to_owned(),
        accepted_by: "claims resolved".to_owned(),
        note: String::new(),
    });
    engine.react(&mut saga, &accepted, start()).unwrap();
    assert_eq!(saga.step("customer_acceptance").status, StepStatus::Done);
    assert!(
        saga.exceptions
            .iter()
            .filter(|e| e.kind == ExceptionKind::CustomerClaim)
            .all(|e| !e.is_open())
    );
}

#[test]
fn retrying_a_step_parked_on_unanswered_claims_asks_each_claim_again() {
    let engine = engine();
    let mut saga = in_acceptance(&engine);
    engine
        .react(&mut saga, &incoming(&claim("CLM-1", 2)), start())
        .unwrap();
    engine
        .react(&mut saga, &incoming(&claim("CLM-2", 1)), start())
        .unwrap();
    engine.stall(
        &mut saga,
        "customer_acceptance",
        "claim unanswered",
        None,
        start(),
    );
    engine
        .retry(
            &mut saga,
            "customer_acceptance",
            "ops",
            "asked the merchandiser",
            start(),
        )
        .unwrap();
    let open: Vec<_> = saga.decisions.iter().filter(|d| d.is_open()).collect();
    assert_eq!(open.len(), 2);
    let mut subjects: Vec<_> = open.iter().filter_map(|d| d.subject.clone()).collect();
    subjects.sort();
    assert_eq!(subjects, ["CLM-1", "CLM-2"]);
    assert_eq!(saga.status, Status::Running);
    assert_eq!(saga.step("customer_acceptance").status, StepStatus::Waiting);
}

/// A saga in acceptance (everything before done, revision 1 each) with one
/// claim asked about.
/// A saga waiting for the customer's acceptance: every step before done
/// (revision 1 each), the redelivery step skipped as not needed.
fn in_acceptance(engine: &super::Engine) -> crate::state::SagaState {
    let mut saga = in_materials(engine);
    let waiting = [
        "customer_acceptance",
        "resolve_redelivery",
        "paid_in_full",
        "close_cost_ledger",
        "close_order",
    ];
    for (_, step) in engine.workflow().steps() {
        if !waiting.contains(&step.name) {
            let state = saga.step_mut(step.name);
            if !state.status.is_finished() {
                state.status = StepStatus::Done;
            }
            state.runs = state.runs.max(1);
        }
    }
    saga.phase = Phase::Shipping;
    engine.advance(&mut saga, &gendan_messaging::Cause::root(ORDER), start());
    assert_eq!(saga.phase, Phase::Acceptance);
    assert_eq!(saga.step("resolve_redelivery").status, StepStatus::Skipped);
    saga
}

fn claimed(engine: &super::Engine) -> (crate::state::SagaState, uuid::Uuid) {
    let mut saga = in_acceptance(engine);
    engine
        .react(&mut saga, &incoming(&claim("CLM-9", 3)), start())
        .unwrap();
    let id = saga
        .decisions
        .iter()
        .find(|d| d.is_open())
        .unwrap()
        .decision_id;
    saga.outgoing.clear();
    (saga, id)
}

#[test]
fn a_replacement_makes_ships_and_delivers_the_claimed_goods_then_resolves_the_claim() {
    let engine = engine();
    let (mut saga, id) = claimed(&engine);
    engine
        .apply_answer(
            &mut saga,
            id,
            answers::REPLACEMENT,
            "merchandiser",
            "",
            start(),
        )
        .unwrap();
    // Back to production planning for the claimed 3 units only.
    assert_eq!(saga.phase, Phase::Confirmed);
    assert_eq!(saga.step("customer_acceptance").status, StepStatus::Waiting);
    let plans: Vec<v1::PlanWorkOrder> = sent(&saga);
    assert_eq!(plans.len(), 1);
    assert_eq!((plans[0].revision, plans[0].amendment), (2, 0));
    assert_eq!(plans[0].items.len(), 1);
    assert_eq!(plans[0].items[0].quantity, 3);
    let react = |saga: &mut crate::state::SagaState, event: gendan_messaging::Incoming| {
        engine.react(saga, &event, start()).unwrap();
    };
    react(&mut saga, planned(2));
    let procure: Vec<v1::ProcureMaterials> = sent(&saga);
    assert_eq!((procure[0].revision, procure[0].remake), (2, true));
    assert_eq!(procure[0].items[0].quantity, 3);
    for event in remade(2) {
        react(&mut saga, event);
    }
    let packing: Vec<v1::PreparePacking> = sent(&saga);
    let packed_order = packing.last().unwrap().order.clone().unwrap();
    assert_eq!(packing.last().unwrap().revision, 2);
    assert_eq!(packed_order.lines.len(), 1);
    assert_eq!(packed_order.lines[0].quantity, 3);
    for event in packed_and_documented(2) {
        react(&mut saga, event);
    }
    let bookings: Vec<v1::BookShipment> = sent(&saga);
    assert_eq!(bookings.last().unwrap().revision, 2);
    assert!(bookings.last().unwrap().redelivery);
    // The first shipment's reports, delivered again, complete nothing.
    react(
        &mut saga,
        incoming(&v1::ShipmentBooked {
            order_id: ORDER.to_owned(),
            booking_reference: "BK-2".to_owned(),
            revision: 2,
            ..Default::default()
        }),
    );
    react(
        &mut saga,
        incoming(&v1::Delivered {
            order_id: ORDER.to_owned(),
            delivered_on: "2026-03-30".to_owned(),
            revision: 1,
            ..Default::default()
        }),
    );
    assert_ne!(saga.step("delivered").status, StepStatus::Done);
    saga.outgoing.clear();
    for event in shipped_and_delivered(2) {
        react(&mut saga, event);
    }
    let resolved: Vec<v1::ResolveClaim> = sent(&saga);
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (resolved[0].claim_id.as_str(), resolved[0].resolution),
        ("CLM-9", v1::ClaimResolution::Replacement as i32)
    );
    react(
        &mut saga,
        incoming(&v1::ClaimResolved {
            claim: Some(v1::Claim {
                claim_id: "CLM-9".to_owned(),
                ..Default::default()
            }),
            open_claims: 0,
        }),
    );
    assert_eq!(saga.step("resolve_redelivery").status, StepStatus::Done);
    assert!(saga.facts.redelivery.is_none());
    react(
        &mut saga,
        incoming(&v1::OrderAccepted {
            order_id: ORDER.to_owned(),
            accepted_by: "claims resolved".to_owned(),
            note: String::new(),
        }),
    );
    assert_eq!(saga.phase, Phase::Settlement);
}

/// Production planned run `revision` (goods made again).
pub(super) fn planned(revision: u32) -> gendan_messaging::Incoming {
    incoming(&v1::WorkOrderPlanned {
        order_id: ORDER.to_owned(),
        revision,
        planned_end: "2026-05-01".to_owned(),
        ..Default::default()
    })
}

/// The answers that take goods made again (production revision
/// `revision`, planned) from materials through a passed final inspection.
pub(super) fn remade(revision: u32) -> Vec<gendan_messaging::Incoming> {
    vec![
        incoming(&v1::MaterialsOrdered {
            order_id: ORDER.to_owned(),
            revision,
            expected_ready_date: "2026-04-20".to_owned(),
            ..Default::default()
        }),
        incoming(&v1::MaterialsReady {
            order_id: ORDER.to_owned(),
            ready_on: "2026-04-20".to_owned(),
            revision,
        }),
        incoming(&v1::WorkOrderCompleted {
            order_id: ORDER.to_owned(),
            revision,
            completed_on: "2026-05-01".to_owned(),
            ..Default::default()
        }),
        incoming(&v1::FinalInspectionOpened {
            order_id: ORDER.to_owned(),
            revision,
            ..Default::default()
        }),
        incoming(&v1::FinalInspectionPassed {
            order_id: ORDER.to_owned(),
            revision,
            ..Default::default()
        }),
    ]
}

/// The warehouse's and the carrier's reports of booking revision
/// `revision`: shipped, then delivered.
pub(super) fn shipped_and_delivered(revision: u32) -> Vec<gendan_messaging::Incoming> {
    vec![
        incoming(&v1::Shipped {
            order_id: ORDER.to_owned(),
            shipped_on: "2026-05-03".to_owned(),
            revision,
            ..Default::default()
        }),
        incoming(&v1::Delivered {
            order_id: ORDER.to_owned(),
            delivered_on: "2026-05-20".to_owned(),
            revision,
            ..Default::default()
        }),
    ]
}

/// The answers that pack and document goods again (revision `revision`).
pub(super) fn packed_and_documented(revision: u32) -> Vec<gendan_messaging::Incoming> {
    vec![
        incoming(&v1::PackingListReady {
            order_id: ORDER.to_owned(),
            cartons: 1,
            revision,
        }),
        incoming(&v1::PackingChecked {
            order_id: ORDER.to_owned(),
            matches: true,
            revision,
            ..Default::default()
        }),
        incoming(&v1::DocumentsReady {
            order_id: ORDER.to_owned(),
            revision,
            ..Default::default()
        }),
    ]
}

#[test]
fn a_claim_reworked_is_reworked_not_made_again() {
    let engine = engine();
    let (mut saga, id) = claimed(&engine);
    engine
        .apply_answer(&mut saga, id, answers::REWORK, "merchandiser", "", start())
        .unwrap();
    assert_eq!(saga.phase, Phase::FinalInspection);
    assert!(sent::<v1::PlanWorkOrder>(&saga).is_empty());
    let reworks: Vec<v1::StartRework> = sent(&saga);
    assert_eq!(reworks.len(), 1);
    assert_eq!(reworks[0].items[0].quantity, 3);
    assert!(reworks[0].reason.contains("CLM-9"), "{}", reworks[0].reason);
}

#[test]
fn a_saga_saved_before_a_new_step_existed_does_not_walk_back_for_it() {
    let engine = engine();
    let (mut saga, id) = claimed(&engine);
    engine
        .apply_answer(
            &mut saga,
            id,
            answers::CREDIT_NOTE,
            "merchandiser",
            "",
            start(),
        )
        .unwrap();
    let accepted = incoming(&v1::OrderAccepted {
        order_id: ORDER.to_owned(),
        accepted_by: "claims resolved".to_owned(),
        note: String::new(),
    });
    engine.react(&mut saga, &accepted, start()).unwrap();
    assert_eq!(saga.phase, Phase::Settlement);
    // As loaded from before the step was added: no state of its own.
    saga.steps.remove("resolve_redelivery");
    saga.outgoing.clear();
    engine.advance(&mut saga, &gendan_messaging::Cause::root(ORDER), start());
    assert_eq!(saga.phase, Phase::Settlement);
    assert!(sent::<v1::PhaseChanged>(&saga).is_empty());
    assert_eq!(saga.step("resolve_redelivery").status, StepStatus::Skipped);
}

#[test]
fn one_claims_goods_are_made_good_at_a_time_and_shipped_goods_are_not_cancelled() {
    let engine = engine();
    let (mut saga, id) = claimed(&engine);
    engine
        .react(&mut saga, &incoming(&claim("CLM-10", 1)), start())
        .unwrap();
    let second = saga
        .decisions
        .iter()
        .find(|d| d.is_open() && d.subject.as_deref() == Some("CLM-10"))
        .unwrap()
        .decision_id;
    saga.facts.shipped_on = chrono::NaiveDate::from_ymd_opt(2026, 3, 12);
    engine
        .apply_answer(
            &mut saga,
            id,
            answers::REPLACEMENT,
            "merchandiser",
            "",
            start(),
        )
        .unwrap();
    let refused = engine
        .apply_answer(
            &mut saga,
            second,
            answers::REWORK,
            "merchandiser",
            "",
            start(),
        )
        .unwrap_err();
    assert!(refused.to_string().contains("CLM-9"), "{refused}");
    // The replacement walks the phases again, but the goods have left.
    assert_eq!(saga.phase, Phase::Confirmed);
    let cancel = engine.cancel_requested(&mut saga, "ops", "changed mind", start());
    assert!(cancel.is_err());
}
