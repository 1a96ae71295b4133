//! Cargo the carrier lost or damaged: one question per carrier claim,
//! answered by a credit note (go on as delivered) or a replacement shipment
//! of the claimed units, shared among the products that travelled.

use gendan_proto::v1::{self, Phase};

use super::after_shipping::{packed_and_documented, planned, remade, shipped_and_delivered};
use super::waiting::in_materials;
use super::{ORDER, engine, incoming, sent, start};
use crate::facts::ClaimedBy;
use crate::state::{SagaState, StepStatus};
use crate::workflow::answers;

/// A saga whose goods are on their way (booked under `SEA-FRI-1` and
/// shipped, revision 1), for an order of `lines`.
fn in_transit(engine: &super::Engine, lines: Vec<v1::OrderLine>) -> SagaState {
    let mut saga = in_materials(engine);
    saga.order.lines = lines;
    saga.order.total_minor = saga
        .order
        .lines
        .iter()
        .map(|l| l.unit_price_minor * i64::from(l.quantity))
        .sum();
    for (phase, step) in engine.workflow().steps() {
        if (phase.phase as i32) < (Phase::Shipping as i32)
            || step.name == "book_shipment"
            || step.name == "shipped"
        {
            let state = saga.step_mut(step.name);
            if !state.status.is_finished() {
                state.status = StepStatus::Done;
                state.runs = 1;
            }
        }
    }
    saga.facts.booking_reference = Some("SEA-FRI-1".to_owned());
    saga.phase = Phase::Documents;
    engine.advance(&mut saga, &gendan_messaging::Cause::root(ORDER), start());
    assert_eq!(saga.step("delivered").status, StepStatus::Waiting);
    saga
}

fn line(product: &str, quantity: u32, unit_price_minor: i64) -> v1::OrderLine {
    v1::OrderLine {
        product: product.to_owned(),
        quantity,
        unit_price_minor,
        ..Default::default()
    }
}

fn cargo_claim(kind: &str, quantity: u32) -> v1::CargoClaimOpened {
    v1::CargoClaimOpened {
        order_id: ORDER.to_owned(),
        claim_id: "CLM-20260302-ABC".to_owned(),
        booking_reference: "SEA-FRI-1".to_owned(),
        kind: kind.to_owned(),
        description: "container overboard".to_owned(),
        quantity,
    }
}

/// Reports the claim and returns the question it opened.
fn asked(engine: &super::Engine, saga: &mut SagaState, claim: &v1::CargoClaimOpened) -> uuid::Uuid {
    engine.react(saga, &incoming(claim), start()).unwrap();
    let decision = saga.decisions.iter().find(|d| d.is_open()).unwrap().clone();
    assert_eq!(decision.kind, "cargo_claim");
    assert_eq!(decision.subject.as_deref(), Some(claim.claim_id.as_str()));
    assert!(decision.options.iter().any(|o| o == answers::REPLACEMENT));
    saga.outgoing.clear();
    decision.decision_id
}

#[test]
fn lost_cargo_credited_goes_on_as_delivered() {
    let engine = engine();
    let mut saga = in_transit(&engine, vec![line("SHIRT", 500, 2_000)]);
    let id = asked(&engine, &mut saga, &cargo_claim("lost", 500));
    engine
        .apply_answer(&mut saga, id, answers::CREDIT_NOTE, "sales", "", start())
        .unwrap();
    let credits: Vec<v1::IssueCreditNote> = sent(&saga);
    // All 500 units of a 1,000,000 order.
    assert_eq!(
        (credits[0].claim_id.as_str(), credits[0].amount_minor),
        ("CLM-20260302-ABC", 1_000_000)
    );
    assert_eq!(saga.step("delivered").status, StepStatus::Done);
    assert_eq!(saga.phase, Phase::Acceptance);
}

#[test]
fn damaged_cargo_replaced_is_made_again_per_product_and_shipped_then_goes_on_to_acceptance() {
    let engine = engine();
    let mut saga = in_transit(
        &engine,
        vec![line("SHIRT", 300, 2_000), line("CAP", 100, 500)],
    );
    // 200 of 400 units: 150 shirts and 50 caps, valued at their prices.
    let id = asked(&engine, &mut saga, &cargo_claim("damaged", 200));
    let claim = &saga.facts.claims["CLM-20260302-ABC"];
    assert_eq!(claim.value_minor, 150 * 2_000 + 50 * 500);
    assert!(
        saga.decisions[0].question.contains("150 SHIRT and 50 CAP"),
        "{}",
        saga.decisions[0].question
    );
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
    let redelivery = saga.facts.redelivery.clone().unwrap();
    assert_eq!(redelivery.claimed_by, ClaimedBy::Carrier);
    assert_eq!(redelivery.booking_revision, 2);
    // Made again: both products, the claimed quantities only.
    let plans: Vec<v1::PlanWorkOrder> = sent(&saga);
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].revision, 2);
    let items: Vec<(&str, u32)> = plans[0]
        .items
        .iter()
        .map(|i| (i.product.as_str(), i.quantity))
        .collect();
    assert_eq!(items, [("SHIRT", 150), ("CAP", 50)]);
    assert!(sent::<v1::IssueCreditNote>(&saga).is_empty());

    let react = |saga: &mut SagaState, event: gendan_messaging::Incoming| {
        engine.react(saga, &event, start()).unwrap();
    };
    react(&mut saga, planned(2));
    for event in remade(2) {
        react(&mut saga, event);
    }
    let packing: Vec<v1::PreparePacking> = sent(&saga);
    let packed = packing.last().unwrap().order.clone().unwrap();
    let lines: Vec<(&str, u32, i64)> = packed
        .lines
        .iter()
        .map(|l| (l.product.as_str(), l.quantity, l.unit_price_minor))
        .collect();
    assert_eq!(lines, [("SHIRT", 150, 2_000), ("CAP", 50, 500)]);
    assert_eq!(packed.total_minor, 325_000);
    for event in packed_and_documented(2) {
        react(&mut saga, event);
    }
    let bookings: Vec<v1::BookShipment> = sent(&saga);
    assert_eq!(bookings.last().unwrap().revision, 2);
    assert!(bookings.last().unwrap().redelivery);

    // What is left of the first shipment arriving completes nothing.
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
    assert!(saga.facts.redelivery.is_some());
    saga.outgoing.clear();
    react(
        &mut saga,
        incoming(&v1::ShipmentBooked {
            order_id: ORDER.to_owned(),
            booking_reference: "SEA-FRI-2".to_owned(),
            revision: 2,
            ..Default::default()
        }),
    );
    for event in shipped_and_delivered(2) {
        react(&mut saga, event);
    }
    // Delivered again: the replacement is done, nothing to resolve with
    // orders, and the customer's acceptance is next.
    assert!(saga.facts.redelivery.is_none());
    assert_eq!(saga.step("delivered").status, StepStatus::Done);
    assert_eq!(saga.step("resolve_redelivery").status, StepStatus::Skipped);
    assert!(sent::<v1::ResolveClaim>(&saga).is_empty());
    assert_eq!(saga.phase, Phase::Acceptance);
    assert_eq!(saga.step("customer_acceptance").status, StepStatus::Waiting);
}

#[test]
fn a_replacement_lost_in_turn_and_credited_leaves_no_redelivery_behind() {
    let engine = engine();
    let mut saga = in_transit(&engine, vec![line("SHIRT", 500, 2_000)]);
    let id = asked(&engine, &mut saga, &cargo_claim("lost", 500));
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
    assert_eq!(
        saga.facts
            .redelivery
            .as_ref()
            .and_then(|r| r.replaces_booking.as_deref()),
        Some("SEA-FRI-1")
    );
    // News of the lost shipment, after the answer, asks nothing more.
    let mut more = cargo_claim("damaged", 10);
    more.claim_id = "CLM-LATE".to_owned();
    engine.react(&mut saga, &incoming(&more), start()).unwrap();
    assert!(saga.decisions.iter().all(|d| !d.is_open()));

    let react = |saga: &mut SagaState, event: gendan_messaging::Incoming| {
        engine.react(saga, &event, start()).unwrap();
    };
    react(&mut saga, planned(2));
    for event in remade(2).into_iter().chain(packed_and_documented(2)) {
        react(&mut saga, event);
    }
    react(
        &mut saga,
        incoming(&v1::ShipmentBooked {
            order_id: ORDER.to_owned(),
            booking_reference: "SEA-FRI-2".to_owned(),
            revision: 2,
            ..Default::default()
        }),
    );
    react(&mut saga, shipped_and_delivered(2).remove(0));
    // The replacement is lost too: a second question, which cannot
    // replace again while the first replacement is under way.
    let mut again = cargo_claim("lost", 500);
    again.claim_id = "CLM-2".to_owned();
    again.booking_reference = "SEA-FRI-2".to_owned();
    let second = asked(&engine, &mut saga, &again);
    let refused = engine
        .apply_answer(
            &mut saga,
            second,
            answers::REPLACEMENT,
            "merchandiser",
            "",
            start(),
        )
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("answer credit_note or wait_for_goods"),
        "{refused}"
    );
    engine
        .apply_answer(
            &mut saga,
            second,
            answers::CREDIT_NOTE,
            "merchandiser",
            "",
            start(),
        )
        .unwrap();
    assert_eq!(saga.step("delivered").status, StepStatus::Done);
    assert!(saga.facts.redelivery.is_none(), "nothing left to make good");
    assert_eq!(saga.phase, Phase::Acceptance);
}

#[test]
fn an_answer_the_question_did_not_offer_is_refused() {
    let engine = engine();
    let mut saga = in_transit(&engine, vec![line("SHIRT", 500, 2_000)]);
    let id = asked(&engine, &mut saga, &cargo_claim("lost", 500));
    // Asked before `replacement` was an answer (an upgrade).
    saga.decisions[0]
        .options
        .retain(|o| o != answers::REPLACEMENT);
    let refused = engine
        .apply_answer(
            &mut saga,
            id,
            answers::REPLACEMENT,
            "merchandiser",
            "",
            start(),
        )
        .unwrap_err();
    assert!(refused.to_string().contains("replacement"), "{refused}");
    assert!(saga.facts.redelivery.is_none());
    assert!(saga.decisions[0].is_open());
}
