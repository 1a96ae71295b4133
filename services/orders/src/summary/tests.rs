use gendan_proto::v1::{Order, OrderLine, StagePlan};

use super::*;

fn envelope<M: Message + TypeName>(payload: &M) -> Envelope {
    Envelope {
        event_id: "e".to_owned(),
        r#type: M::TYPE_NAME.to_owned(),
        source: "saga".to_owned(),
        payload: payload.encode_to_vec(),
        ..Default::default()
    }
}

#[test]
fn saga_events_read_as_sentences() {
    let phase = PhaseChanged {
        from: Phase::Review as i32,
        to: Phase::Confirmed as i32,
        ..Default::default()
    };
    assert_eq!(describe(&envelope(&phase)), "Phase review → confirmed");

    let stalled = SagaStalled {
        step: "check_capacity".to_owned(),
        reason: "no reply after 5 attempts".to_owned(),
        ..Default::default()
    };
    assert_eq!(
        describe(&envelope(&stalled)),
        "Workflow stalled at step check_capacity: no reply after 5 attempts"
    );
}

#[test]
fn a_calendar_re_projection_says_what_moved_it() {
    let moved = MilestonesChanged {
        version: 3,
        cause: "MaterialsDelayed PO-7: materials_in 2026-03-09 → 2026-03-16".to_owned(),
        ..Default::default()
    };
    assert_eq!(
        describe(&envelope(&moved)),
        "Calendar re-projected (version 3): MaterialsDelayed PO-7: materials_in 2026-03-09 \
         → 2026-03-16"
    );
    let silent = MilestonesChanged {
        version: 4,
        ..Default::default()
    };
    assert_eq!(
        describe(&envelope(&silent)),
        "Calendar re-projected (version 4)"
    );
}

#[test]
fn a_status_report_says_who_reports_what_about_which_step() {
    let mut reported = envelope(&StatusReported {
        step: "shipped".to_owned(),
        status: "booked on SEA-FRI-1, ETD 2026-03-10; not reported shipped".to_owned(),
        ..Default::default()
    });
    reported.source = "logistics".to_owned();
    assert_eq!(
        describe(&reported),
        "Asked again about shipped (overdue), logistics says: booked on SEA-FRI-1, ETD \
         2026-03-10; not reported shipped"
    );
}

#[test]
fn a_replayed_dead_letter_says_who_replayed_what_and_why_it_failed() {
    let replayed = DeadLetterReplayed {
        sequence: 7,
        r#type: "gendan.v1.MesQuantityReported".to_owned(),
        consumer: "production-mes".to_owned(),
        reason: "no work order".to_owned(),
        replayed_by: "ops:li".to_owned(),
        ..Default::default()
    };
    assert_eq!(
        describe(&envelope(&replayed)),
        "ops:li replayed MesQuantityReported (dead letter 7 of production-mes: no work order)"
    );
}

#[test]
fn production_events_read_as_sentences() {
    let planned = WorkOrderPlanned {
        planned_start: "2026-12-02".to_owned(),
        planned_end: "2026-12-18".to_owned(),
        stages: vec![StagePlan::default(); 3],
        ..Default::default()
    };
    assert_eq!(
        describe(&envelope(&planned)),
        "Work order planned: 3 stages, 2026-12-02 → 2026-12-18"
    );

    let checked = CapacityChecked {
        earliest_completion: "2026-12-18".to_owned(),
        feasible: true,
        ..Default::default()
    };
    assert_eq!(
        describe(&envelope(&checked)),
        "Capacity check: earliest completion 2026-12-18 (feasible)"
    );
}

#[test]
fn order_created_names_customer_and_total() {
    let created = OrderCreated {
        order: Some(Order {
            customer: "Acme".to_owned(),
            lines: vec![OrderLine::default()],
            currency: "USD".to_owned(),
            total_minor: 125_000,
            requested_delivery_date: "2026-12-20".to_owned(),
            ..Default::default()
        }),
    };
    assert_eq!(
        describe(&envelope(&created)),
        "Order received from Acme: 1 line, total 1250.00 USD, requested delivery 2026-12-20"
    );
}

#[test]
fn claims_read_as_sentences() {
    use gendan_proto::v1::{Claim, ClaimKind, ClaimResolution};

    let claim = Claim {
        kind: ClaimKind::Damage as i32,
        product: "BRKT-100".to_owned(),
        quantity: 2,
        description: "two cartons crushed".to_owned(),
        raised_by: "J. Smith".to_owned(),
        ..Default::default()
    };
    let raised = ClaimRaised {
        claim: Some(claim.clone()),
    };
    assert_eq!(
        describe(&envelope(&raised)),
        "Claim raised by J. Smith: damage, 2 × BRKT-100: two cartons crushed"
    );
    let resolved = ClaimResolved {
        claim: Some(Claim {
            resolution: ClaimResolution::Rejected as i32,
            resolution_note: "damaged after delivery".to_owned(),
            ..claim
        }),
        open_claims: 0,
    };
    assert_eq!(
        describe(&envelope(&resolved)),
        "Claim on 2 × BRKT-100 resolved: rejected (damaged after delivery), 0 claims still \
         open"
    );
}

#[test]
fn unknown_or_broken_events_get_a_generic_sentence() {
    let unknown = Envelope {
        r#type: "gendan.v1.InvoiceIssued".to_owned(),
        source: "finance".to_owned(),
        ..Default::default()
    };
    assert_eq!(describe(&unknown), "Event InvoiceIssued from finance");

    let broken = Envelope {
        r#type: PhaseChanged::TYPE_NAME.to_owned(),
        payload: vec![0xff, 0xff, 0xff],
        ..Default::default()
    };
    assert_eq!(describe(&broken), "Event PhaseChanged");
}

#[test]
fn amendments_and_confirmations_again_read_as_sentences() {
    use gendan_proto::v1::Amendment;

    let amended = OrderAmended {
        order: None,
        amendment: Some(Amendment {
            number: 1,
            requested_by: "buyer@acme".to_owned(),
            reason: "PO rev B".to_owned(),
            changes: vec![
                "SHIRT-01 quantity 100 → 120".to_owned(),
                "requested date 2027-03-01 → 2027-03-15".to_owned(),
            ],
            ..Default::default()
        }),
    };
    assert_eq!(
        describe(&envelope(&amended)),
        "Amendment 1 by buyer@acme (PO rev B): SHIRT-01 quantity 100 → 120; requested \
         date 2027-03-01 → 2027-03-15"
    );
    let again = OrderConfirmed {
        order_id: String::new(),
        promised_delivery_date: "2027-03-20".to_owned(),
        revision: 2,
    };
    assert_eq!(
        describe(&envelope(&again)),
        "Order confirmed again (amendment): delivery promised for 2027-03-20"
    );
    let first = OrderConfirmed {
        revision: 0,
        ..again
    };
    assert_eq!(
        describe(&envelope(&first)),
        "Order confirmed: promised delivery 2027-03-20"
    );
}
