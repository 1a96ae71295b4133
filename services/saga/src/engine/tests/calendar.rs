//! The calendar as the saga keeps it: built from the review's answers,
//! planned at confirmation, moved by a late supplier and a machine down,
//! and announced as `MilestonesChanged` whenever a date moved.

use gendan_proto::v1;

use super::{ORDER, engine, incoming, order, sent, start};
use crate::engine::Engine;
use crate::state::SagaState;

fn stage(stage: &str, start: &str, end: &str) -> v1::StagePlan {
    v1::StagePlan {
        product: "SHIRT".to_owned(),
        stage: stage.to_owned(),
        planned_start: start.to_owned(),
        planned_end: end.to_owned(),
        ..Default::default()
    }
}

/// The last calendar the saga announced, and clears what it sent.
fn announced(saga: &mut SagaState) -> Option<v1::MilestonesChanged> {
    let last = sent::<v1::MilestonesChanged>(saga).pop();
    saga.outgoing.clear();
    last
}

fn projected(changed: &v1::MilestonesChanged, key: &str) -> String {
    changed
        .milestones
        .iter()
        .find(|milestone| milestone.key == key)
        .unwrap_or_else(|| panic!("no milestone {key}"))
        .projected
        .clone()
}

/// Reviewed and confirmed on Monday 2026-03-02: materials on the 9th,
/// cutting on the 9th and 10th, sewing to the 17th, a sea lane leaving
/// Fridays (2 days' cut-off, 21 days' transit), 30 % deposit due 7 days
/// after confirmation before production, the balance 30 days after
/// shipment.
fn confirmed(engine: &Engine) -> SagaState {
    let created = incoming(&v1::OrderCreated {
        order: Some(order()),
    });
    let mut saga = engine.begin(order(), &created, start()).unwrap();
    let answers = [
        incoming(&v1::MaterialsChecked {
            order_id: ORDER.to_owned(),
            earliest_material_date: "2026-03-09".to_owned(),
            ..Default::default()
        }),
        incoming(&v1::CapacityChecked {
            order_id: ORDER.to_owned(),
            earliest_completion: "2026-03-17".to_owned(),
            feasible: true,
            stages: vec![
                stage("cutting", "2026-03-09", "2026-03-10"),
                stage("sewing", "2026-03-11", "2026-03-17"),
            ],
            planned_start: "2026-03-09".to_owned(),
            ..Default::default()
        }),
        incoming(&v1::FreightQuoted {
            order_id: ORDER.to_owned(),
            lane_code: "SEA".to_owned(),
            departure_weekday: 5,
            cutoff_days: 2,
            transit_days: 21,
            ..Default::default()
        }),
        incoming(&v1::OrderConfirmed {
            order_id: ORDER.to_owned(),
            ..Default::default()
        }),
        incoming(&v1::ReceivableOpened {
            order_id: ORDER.to_owned(),
            deposit_required: true,
            installments: vec![
                v1::Installment {
                    kind: "deposit".to_owned(),
                    due_days: 7,
                    payment_trigger: v1::PaymentTrigger::OnConfirmation as i32,
                    ..Default::default()
                },
                v1::Installment {
                    kind: "balance".to_owned(),
                    due_days: 30,
                    payment_trigger: v1::PaymentTrigger::AgainstBlCopy as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }),
    ];
    for answer in answers.iter() {
        engine.react(&mut saga, answer, start()).unwrap();
    }
    saga
}

#[test]
fn the_review_plans_every_milestone_and_confirmation_fixes_the_plan() {
    let engine = engine();
    let mut saga = confirmed(&engine);
    let calendar = announced(&mut saga).expect("the calendar is announced");
    assert_eq!(calendar.order_id, ORDER);
    let keys: Vec<&str> = calendar.milestones.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "confirmed",
            "materials_in",
            "payment_due:deposit",
            "production_start",
            "stage_done:SHIRT/cutting",
            "stage_done:SHIRT/sewing",
            "final_inspection",
            "packing_done",
            "ex_factory",
            "delivered",
            "accepted",
            "payment_due:balance",
        ]
    );
    // Sewing ends Tuesday the 17th: inspected Wednesday, packed Thursday;
    // two days' cut-off miss Friday the 20th, so the 27th.
    assert_eq!(projected(&calendar, "ex_factory"), "2026-03-27");
    assert_eq!(projected(&calendar, "delivered"), "2026-04-17");
    assert_eq!(calendar.projected_delivery_date, "2026-04-17");
    assert_eq!(projected(&calendar, "payment_due:balance"), "2026-04-26");
    assert!(calendar.incomplete.is_empty(), "{:?}", calendar.incomplete);
    // Confirmed: every milestone is planned on its projection.
    for milestone in calendar.milestones.iter() {
        assert_eq!(milestone.planned, milestone.projected, "{}", milestone.key);
    }
    assert_eq!(
        calendar.milestones[0].label, "order confirmed",
        "{:?}",
        calendar.milestones[0]
    );
}

#[test]
fn a_late_supplier_moves_materials_through_delivery_and_says_why() {
    let engine = engine();
    let mut saga = confirmed(&engine);
    let before = announced(&mut saga).unwrap();
    let delayed = incoming(&v1::MaterialsDelayed {
        order_id: ORDER.to_owned(),
        purchase_order_id: "PO-7".to_owned(),
        expected_ready_date: "2026-03-16".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &delayed, start()).unwrap();
    let after = announced(&mut saga).expect("the slip is announced");
    assert!(after.version > before.version);
    assert!(after.changed.contains(&"materials_in".to_owned()));
    assert!(after.changed.contains(&"delivered".to_owned()));
    assert!(!after.changed.contains(&"payment_due:deposit".to_owned()));
    assert_eq!(projected(&after, "materials_in"), "2026-03-16");
    assert_eq!(projected(&after, "stage_done:SHIRT/sewing"), "2026-03-24");
    assert_eq!(projected(&after, "delivered"), "2026-04-24");
    assert!(
        after.cause.starts_with("MaterialsDelayed PO-7: "),
        "{}",
        after.cause
    );
    // The plan is what was promised at confirmation.
    let delivered = after
        .milestones
        .iter()
        .find(|m| m.key == "delivered")
        .unwrap();
    assert_eq!(delivered.planned, "2026-04-17");

    // The same news again moves nothing and announces nothing.
    engine.react(&mut saga, &delayed, start()).unwrap();
    assert!(announced(&mut saga).is_none());
}

#[test]
fn a_machine_down_moves_sewing_and_later_but_not_cutting() {
    let engine = engine();
    let mut saga = confirmed(&engine);
    announced(&mut saga);
    let progress = |stage: &str, end: &str, done: &str| v1::StageProgress {
        product: "SHIRT".to_owned(),
        stage: stage.to_owned(),
        projected_end: end.to_owned(),
        actual_start: if stage == "cutting" { "2026-03-09" } else { "" }.to_owned(),
        actual_end: done.to_owned(),
        ..Default::default()
    };
    let down = incoming(&v1::WorkOrderRescheduled {
        order_id: ORDER.to_owned(),
        work_centre: "SEW".to_owned(),
        previous_end: "2026-03-17".to_owned(),
        projected_end: "2026-03-19".to_owned(),
        stages: vec![
            progress("cutting", "2026-03-10", "2026-03-10"),
            progress("sewing", "2026-03-19", ""),
        ],
        ..Default::default()
    });
    engine
        .react(&mut saga, &down, start() + chrono::Duration::days(8))
        .unwrap();
    let after = announced(&mut saga).expect("the re-plan is announced");
    assert!(
        !after
            .changed
            .contains(&"stage_done:SHIRT/cutting".to_owned())
    );
    assert!(
        after
            .changed
            .contains(&"stage_done:SHIRT/sewing".to_owned())
    );
    assert_eq!(projected(&after, "stage_done:SHIRT/sewing"), "2026-03-19");
    assert_eq!(projected(&after, "final_inspection"), "2026-03-20");
    let cutting = after
        .milestones
        .iter()
        .find(|m| m.key == "stage_done:SHIRT/cutting")
        .unwrap();
    assert_eq!(cutting.actual, "2026-03-10");
    assert!(
        after.cause.starts_with("WorkOrderRescheduled SEW: "),
        "{}",
        after.cause
    );
}

#[test]
fn a_saga_reviewed_before_calendars_keeps_none() {
    let engine = engine();
    let created = incoming(&v1::OrderCreated {
        order: Some(order()),
    });
    let mut saga = engine.begin(order(), &created, start()).unwrap();
    for (_, step) in engine.workflow().steps() {
        if step.name == "capacity_check" {
            saga.step_mut(step.name).status = crate::state::StepStatus::Done;
        }
    }
    let delayed = incoming(&v1::MaterialsDelayed {
        order_id: ORDER.to_owned(),
        expected_ready_date: "2026-03-16".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &delayed, start()).unwrap();
    assert!(saga.facts.calendar.is_none());
    assert!(announced(&mut saga).is_none());
    // And facts saved before calendars existed load without one.
    let facts: crate::facts::Facts = serde_json::from_str(r#"{"deposit_required": true}"#).unwrap();
    assert!(facts.calendar.is_none());
}

/// The calendar of `confirmed`, with the review and confirmation done and
/// the materials phase under way: waiting for the materials and the
/// deposit.
fn waiting_for_materials(engine: &Engine) -> SagaState {
    let mut saga = confirmed(engine);
    for (phase, step) in engine.workflow().steps() {
        if (phase.phase as i32) < (v1::Phase::Materials as i32) {
            let state = saga.step_mut(step.name);
            state.status = crate::state::StepStatus::Done;
            state.runs = 1;
        }
    }
    saga.phase = v1::Phase::Confirmed;
    engine.advance(&mut saga, &gendan_messaging::Cause::root(ORDER), start());
    let ordered = incoming(&v1::MaterialsOrdered {
        order_id: ORDER.to_owned(),
        expected_ready_date: "2026-03-09".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &ordered, start()).unwrap();
    saga.outgoing.clear();
    saga
}

fn at(day: &str) -> chrono::DateTime<chrono::Utc> {
    day.parse::<chrono::NaiveDate>()
        .unwrap()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
}

#[test]
fn a_wait_falls_due_on_its_milestone_not_on_the_delivery_day() {
    let engine = engine();
    let saga = waiting_for_materials(&engine);
    // Materials are expected on Monday the 9th; delivery on April 17th.
    assert_eq!(
        saga.step("materials_ready").deadline,
        Some(at("2026-03-10"))
    );
}

#[test]
fn a_later_eta_rearms_the_wait_and_a_missed_one_is_overdue_and_slips_what_follows() {
    let engine = engine();
    let mut saga = waiting_for_materials(&engine);
    // The supplier confirms the 16th before the first deadline.
    let delayed = incoming(&v1::MaterialsDelayed {
        order_id: ORDER.to_owned(),
        purchase_order_id: "PO-7".to_owned(),
        expected_ready_date: "2026-03-16".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &delayed, at("2026-03-05")).unwrap();
    saga.outgoing.clear();
    // On the 10th the wait is not late: the new ETA is ahead.
    engine.timer_fired(&mut saga, "materials_ready", at("2026-03-10"));
    assert_eq!(
        saga.step("materials_ready").deadline,
        Some(at("2026-03-17"))
    );
    assert!(!saga.new_log.iter().any(|entry| entry.action == "overdue"));
    // The 16th passes with nothing in: overdue, and the calendar slips
    // from today.
    engine.timer_fired(&mut saga, "materials_ready", at("2026-03-17"));
    assert!(saga.new_log.iter().any(|entry| entry.action == "overdue"));
    let slipped = announced(&mut saga).expect("the slip is announced");
    assert_eq!(projected(&slipped, "materials_in"), "2026-03-17");
    assert_eq!(projected(&slipped, "stage_done:SHIRT/sewing"), "2026-03-25");
}

#[test]
fn a_deployment_that_works_saturdays_and_inspects_for_three_days_plans_with_that() {
    let settings = crate::calendar::CalendarSettings {
        week: crate::calendar::WorkWeek {
            weekdays: vec![1, 2, 3, 4, 5, 6],
            closed: Default::default(),
        },
        durations: crate::calendar::Durations {
            inspection: 3,
            ..Default::default()
        },
    };
    let engine = engine().with_calendar(settings);
    let mut saga = confirmed(&engine);
    let calendar = announced(&mut saga).unwrap();
    // Sewing ends Tuesday the 17th; three working days of inspection to
    // Friday the 20th, packed Saturday the 21st.
    assert_eq!(projected(&calendar, "final_inspection"), "2026-03-20");
    assert_eq!(projected(&calendar, "packing_done"), "2026-03-21");
}

#[test]
fn a_carrier_eta_moves_the_delivery_both_ways() {
    let engine = engine();
    let mut saga = confirmed(&engine);
    announced(&mut saga);
    let tracked = |eta: &str| {
        incoming(&v1::TrackingUpdated {
            order_id: ORDER.to_owned(),
            status: "in transit".to_owned(),
            location: "Hamburg".to_owned(),
            eta: eta.to_owned(),
            ..Default::default()
        })
    };
    engine
        .react(&mut saga, &tracked("2026-04-22"), start())
        .unwrap();
    let later = announced(&mut saga).expect("the later ETA is announced");
    assert_eq!(later.projected_delivery_date, "2026-04-22");
    assert!(
        later.cause.starts_with("carrier ETA (in transit Hamburg)"),
        "{}",
        later.cause
    );
    assert_eq!(saga.projected, "2026-04-22".parse().ok());
    // An earlier ETA brings it back, but never before the goods can leave
    // and cross: the sailing on the 27th plus 21 days is the 17th.
    engine
        .react(&mut saga, &tracked("2026-04-10"), start())
        .unwrap();
    let earlier = announced(&mut saga).expect("the earlier ETA is announced");
    assert_eq!(earlier.projected_delivery_date, "2026-04-17");
}

#[test]
fn a_run_that_moves_the_calendar_several_times_announces_it_once() {
    let engine = engine();
    let mut saga = confirmed(&engine);
    let all: Vec<v1::MilestonesChanged> = sent(&saga);
    assert!(all.len() > 1, "each review answer re-projects");
    crate::effects::calendar::coalesce(&mut saga.outgoing);
    let once: Vec<v1::MilestonesChanged> = sent(&saga);
    assert_eq!(once.len(), 1);
    let last = all.last().unwrap();
    assert_eq!(once[0].version, last.version);
    assert_eq!(once[0].milestones, last.milestones);
    // Every key any of them moved, each once.
    for key in all.iter().flat_map(|one| one.changed.iter()) {
        assert_eq!(
            once[0].changed.iter().filter(|k| *k == key).count(),
            1,
            "{key}"
        );
    }
    // The other messages of the run stay, in their order.
    let others = saga
        .outgoing
        .iter()
        .filter(|out| {
            out.envelope.r#type != <v1::MilestonesChanged as gendan_proto::TypeName>::TYPE_NAME
        })
        .count();
    assert!(others > 0);
}

#[test]
fn an_invoice_dates_its_payment_and_an_extension_moves_it_and_what_waits_for_it() {
    let engine = engine();
    let mut saga = confirmed(&engine);
    announced(&mut saga);
    // The deposit invoice went out three days late: due on the 12th.
    let issued = incoming(&v1::InvoiceIssued {
        order_id: ORDER.to_owned(),
        invoice_id: "INV-1".to_owned(),
        kind: "deposit".to_owned(),
        due_date: "2026-03-12".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &issued, start()).unwrap();
    let invoiced = announced(&mut saga).expect("the due date is announced");
    assert_eq!(projected(&invoiced, "payment_due:deposit"), "2026-03-12");
    // Production waits for the deposit.
    assert_eq!(projected(&invoiced, "production_start"), "2026-03-12");
    // Finance extends it a week.
    let extended = incoming(&v1::PaymentDueExtended {
        order_id: ORDER.to_owned(),
        invoice_id: "INV-1".to_owned(),
        new_due_date: "2026-03-19".to_owned(),
    });
    engine.react(&mut saga, &extended, start()).unwrap();
    let moved = announced(&mut saga).expect("the extension is announced");
    assert_eq!(projected(&moved, "payment_due:deposit"), "2026-03-19");
    assert!(
        moved.cause.starts_with("PaymentDueExtended INV-1"),
        "{}",
        moved.cause
    );
    // An invoice of a kind the terms do not have dates nothing.
    let stray = incoming(&v1::InvoiceIssued {
        order_id: ORDER.to_owned(),
        invoice_id: "INV-9".to_owned(),
        kind: "surcharge".to_owned(),
        due_date: "2026-05-01".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &stray, start()).unwrap();
    assert!(announced(&mut saga).is_none());
}

#[test]
fn each_installment_is_paid_on_the_day_its_invoice_was_settled() {
    let engine = engine();
    let mut saga = confirmed(&engine);
    announced(&mut saga);
    let issued = incoming(&v1::InvoiceIssued {
        order_id: ORDER.to_owned(),
        invoice_id: "INV-1".to_owned(),
        kind: "deposit".to_owned(),
        due_date: "2026-03-09".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &issued, start()).unwrap();
    // A payment short of the invoice settles nothing.
    let part = incoming(&v1::PaymentReceived {
        order_id: ORDER.to_owned(),
        payment_id: "P-1".to_owned(),
        received_on: "2026-03-05".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &part, start()).unwrap();
    let calendar = saga.facts.calendar.as_ref().expect("a calendar");
    let deposit = crate::calendar::Key::payment("deposit");
    assert_eq!(calendar.actual(&deposit), None);
    // The rest, two days later, settles it: the deposit was paid then.
    let rest = incoming(&v1::PaymentReceived {
        order_id: ORDER.to_owned(),
        payment_id: "P-2".to_owned(),
        received_on: "2026-03-07".to_owned(),
        invoices_paid: vec!["INV-1".to_owned()],
        ..Default::default()
    });
    engine.react(&mut saga, &rest, start()).unwrap();
    let changed = announced(&mut saga).expect("the payment is announced");
    let paid = changed
        .milestones
        .iter()
        .find(|m| m.key == "payment_due:deposit")
        .expect("the deposit milestone");
    assert_eq!(paid.actual, "2026-03-07");
    // The balance is not paid by it.
    let balance = changed
        .milestones
        .iter()
        .find(|m| m.key == "payment_due:balance")
        .expect("the balance milestone");
    assert!(balance.actual.is_empty(), "{balance:?}");
}

#[test]
fn every_event_the_calendar_learns_from_reaches_the_saga() {
    use gendan_proto::TypeName as _;
    let engine = engine();
    // The batch path hands a saga only the events it reacts to.
    for type_name in [
        v1::MaterialsChecked::TYPE_NAME,
        v1::MaterialsOrdered::TYPE_NAME,
        v1::MaterialsDelayed::TYPE_NAME,
        v1::MaterialsReady::TYPE_NAME,
        v1::CapacityChecked::TYPE_NAME,
        v1::WorkOrderPlanned::TYPE_NAME,
        v1::WorkOrderProgressed::TYPE_NAME,
        v1::WorkOrderRescheduled::TYPE_NAME,
        v1::WorkOrderCompleted::TYPE_NAME,
        v1::ReworkPlanned::TYPE_NAME,
        v1::FreightQuoted::TYPE_NAME,
        v1::InspectionEstimated::TYPE_NAME,
        v1::ShipmentBooked::TYPE_NAME,
        v1::TrackingUpdated::TYPE_NAME,
        v1::OrderConfirmed::TYPE_NAME,
        v1::ReceivableOpened::TYPE_NAME,
        v1::InvoiceIssued::TYPE_NAME,
        v1::PaymentDueExtended::TYPE_NAME,
        v1::PaymentReceived::TYPE_NAME,
        v1::InProcessInspectionPassed::TYPE_NAME,
        v1::FinalInspectionPassed::TYPE_NAME,
        v1::PackingChecked::TYPE_NAME,
        v1::DocumentsReady::TYPE_NAME,
        v1::Shipped::TYPE_NAME,
        v1::Delivered::TYPE_NAME,
        v1::OrderAccepted::TYPE_NAME,
        v1::DepositReceived::TYPE_NAME,
        v1::OrderPaidInFull::TYPE_NAME,
    ] {
        assert!(
            engine.reacts_to(type_name),
            "{type_name} never reaches the saga"
        );
    }
}
