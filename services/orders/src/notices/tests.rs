use gendan_proto::v1::{Decision, OrderSummary};

use super::*;

fn order() -> OrderState {
    OrderState {
        order_id: Uuid::nil(),
        customer: "Acme Trading".to_owned(),
        currency: "USD".to_owned(),
        requested_delivery_date: NaiveDate::from_ymd_opt(2030, 3, 1).unwrap(),
        promised_delivery_date: Some(NaiveDate::from_ymd_opt(2030, 3, 10).unwrap()),
        projected_delivery_date: Some(NaiveDate::from_ymd_opt(2030, 3, 12).unwrap()),
        phase: Phase::Production as i32,
        total_minor: 100_000,
        created_at: Utc::now(),
        accepted_at: None,
        accepted_by: None,
        closed_at: None,
        summary: None,
        furthest_phase: 0,
    }
}

fn envelope<M: Message + TypeName>(payload: &M) -> Envelope {
    Envelope {
        event_id: "e".to_owned(),
        r#type: M::TYPE_NAME.to_owned(),
        payload: payload.encode_to_vec(),
        ..Default::default()
    }
}

#[test]
fn a_phase_change_reads_as_a_letter_to_the_customer() {
    let draft = compose(
        &envelope(&PhaseChanged {
            to: Phase::Production as i32,
            projected_delivery_date: "2030-03-09".to_owned(),
            ..Default::default()
        }),
        &order(),
    )
    .expect("notice");
    assert_eq!(draft.kind, "phase");
    assert_eq!(
        draft.subject,
        "Order 00000000-0000-0000-0000-000000000000: in production"
    );
    assert!(
        draft.body.starts_with("Dear Acme Trading,\n\n"),
        "{}",
        draft.body
    );
    assert!(
        draft.body.contains(
            "Your order is now in production. We currently expect to deliver on 2030-03-09."
        ),
        "{}",
        draft.body
    );
}

#[test]
fn risk_notices_only_when_the_flag_flips() {
    let mut risk = DeliveryRiskChanged {
        at_risk: true,
        promised_delivery_date: "2030-03-10".to_owned(),
        projected_delivery_date: "2030-03-15".to_owned(),
        reason: "press line down".to_owned(),
        risk_changed: false,
        ..Default::default()
    };
    assert_eq!(compose(&envelope(&risk), &order()), None);
    risk.risk_changed = true;
    let draft = compose(&envelope(&risk), &order()).expect("notice");
    assert_eq!(draft.kind, "delivery_risk");
    assert!(draft.body.contains(
        "We now expect to deliver your order on 2030-03-15, later than the 2030-03-10 we \
         promised. The reason: press line down."
    ));
}

#[test]
fn goods_the_carrier_lost_are_told_with_how_they_are_made_good() {
    let made = |kind: &str, answer: &str| DecisionMade {
        decision: Some(Decision {
            kind: kind.to_owned(),
            answer: answer.to_owned(),
            subject: "CLM-1".to_owned(),
            ..Default::default()
        }),
    };
    let draft = compose(
        &envelope(&made(CARGO_CLAIM_DECISION, "replacement")),
        &order(),
    )
    .expect("notice");
    assert_eq!(draft.kind, "cargo_claim");
    assert!(draft.subject.ends_with("replacement goods on the way"));
    assert!(
        draft.body.contains("(carrier claim CLM-1)"),
        "{}",
        draft.body
    );
    assert!(
        draft.body.contains("making the goods again"),
        "{}",
        draft.body
    );
    let credited = compose(
        &envelope(&made(CARGO_CLAIM_DECISION, "credit_note")),
        &order(),
    )
    .expect("notice");
    assert!(
        credited.body.contains("credit note follows"),
        "{}",
        credited.body
    );
    // Waiting for the goods, or another decision's answer: nothing new.
    let waiting = made(CARGO_CLAIM_DECISION, "wait_for_goods");
    assert_eq!(compose(&envelope(&waiting), &order()), None);
    assert_eq!(
        compose(
            &envelope(&made("claim_resolution", "replacement")),
            &order()
        ),
        None
    );
}

#[test]
fn only_first_delivery_date_decisions_reach_the_customer() {
    let decision = Decision {
        kind: DELIVERY_DATE_DECISION.to_owned(),
        ..Default::default()
    };
    let first = DecisionRequested {
        decision: Some(decision.clone()),
        reminder: false,
    };
    let draft = compose(&envelope(&first), &order()).expect("notice");
    assert_eq!(draft.kind, "decision");
    assert!(
        draft
            .body
            .contains("The earliest date we can deliver is 2030-03-12.")
    );
    let reminder = DecisionRequested {
        decision: Some(decision),
        reminder: true,
    };
    assert_eq!(compose(&envelope(&reminder), &order()), None);
    let concession = DecisionRequested {
        decision: Some(Decision {
            kind: "concession".to_owned(),
            ..Default::default()
        }),
        reminder: false,
    };
    assert_eq!(compose(&envelope(&concession), &order()), None);
}

#[test]
fn shipping_delivery_and_closing_are_told() {
    let shipped = compose(
        &envelope(&Shipped {
            shipped_on: "2030-03-05".to_owned(),
            bill_of_lading: "COSU123".to_owned(),
            ..Default::default()
        }),
        &order(),
    )
    .expect("shipped");
    assert!(
        shipped
            .body
            .contains("left our factory on 2030-03-05 under bill of lading COSU123.")
    );
    let delivered = compose(
        &envelope(&Delivered {
            delivered_on: "2030-03-09".to_owned(),
            ..Default::default()
        }),
        &order(),
    )
    .expect("delivered");
    assert_eq!(delivered.kind, "delivered");
    let closed = compose(
        &envelope(&OrderClosed {
            summary: Some(OrderSummary {
                delivered_on: "2030-03-09".to_owned(),
                ..Default::default()
            }),
        }),
        &order(),
    )
    .expect("closed");
    assert!(closed.body.contains("It was delivered on 2030-03-09."));
    // Closing as a phase is not told again.
    let closing_phase = compose(
        &envelope(&PhaseChanged {
            to: Phase::Closed as i32,
            from: Phase::Settlement as i32,
            ..Default::default()
        }),
        &order(),
    );
    assert!(closing_phase.is_none(), "{closing_phase:?}");
}

#[test]
fn a_payment_reminder_and_a_concession_request_reach_the_customer() {
    let reminder = compose(
        &envelope(&PaymentReminder {
            invoice_id: "INV-2030-7".to_owned(),
            outstanding_minor: 30_000,
            currency: "USD".to_owned(),
            due_date: "2030-02-01".to_owned(),
            reminder: 2,
            days_overdue: 7,
            ..Default::default()
        }),
        &order(),
    )
    .expect("a reminder");
    assert_eq!(reminder.kind, "payment_reminder");
    assert!(reminder.subject.contains("payment reminder 2"));
    assert!(
        reminder.body.contains("INV-2030-7 (300.00 USD)"),
        "{}",
        reminder.body
    );
    let concession = compose(
        &envelope(&DecisionRequested {
            decision: Some(Decision {
                kind: FINAL_INSPECTION_DECISION.to_owned(),
                ..Default::default()
            }),
            reminder: false,
        }),
        &order(),
    )
    .expect("a question");
    assert!(
        concession.body.contains("concession"),
        "{}",
        concession.body
    );
}
