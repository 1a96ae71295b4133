//! Waits that go wrong outside the factory: a deposit or balance unpaid
//! after every reminder, a supplier late, a machine down.

use gendan_proto::TypeName;
use gendan_proto::v1::{self, Department, ExceptionKind, Phase};

use super::{ORDER, engine, incoming, sent, start};
use crate::state::{ExceptionRecord, SagaState, Status, StepStatus};
use crate::workflow::{Timing, answers};

/// A saga in the materials phase: the PO is placed, the deposit is
/// required and unpaid.
pub(super) fn in_materials(engine: &super::Engine) -> SagaState {
    let created = incoming(&v1::OrderCreated {
        order: Some(super::order()),
    });
    let mut saga = engine.begin(super::order(), &created, start()).unwrap();
    for (phase, step) in engine.workflow().steps() {
        if (phase.phase as i32) < (Phase::Materials as i32) {
            let state = saga.step_mut(step.name);
            state.status = StepStatus::Done;
            state.runs = 1;
        }
    }
    saga.facts.deposit_required = true;
    saga.phase = Phase::Confirmed;
    engine.advance(&mut saga, &gendan_messaging::Cause::root(ORDER), start());
    let ordered = incoming(&v1::MaterialsOrdered {
        order_id: ORDER.to_owned(),
        expected_ready_date: "2026-03-20".to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &ordered, start()).unwrap();
    saga.outgoing.clear();
    saga
}

fn escalated(kind: v1::InvoiceKind) -> v1::PaymentEscalated {
    v1::PaymentEscalated {
        order_id: ORDER.to_owned(),
        invoice_id: "INV-2026-1".to_owned(),
        invoice_kind: kind as i32,
        outstanding_minor: 300_000,
        currency: "CNY".to_owned(),
        due_date: "2026-02-10".to_owned(),
        days_overdue: 15,
        reminders: 3,
    }
}

#[test]
fn reminders_are_one_open_exception_closed_by_the_payment() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    for n in 1..=2 {
        let reminder = incoming(&v1::PaymentReminder {
            order_id: ORDER.to_owned(),
            invoice_id: "INV-2026-1".to_owned(),
            invoice_kind: v1::InvoiceKind::Deposit as i32,
            reminder: n,
            days_overdue: n * 7,
            ..Default::default()
        });
        engine.react(&mut saga, &reminder, start()).unwrap();
    }
    let overdue: Vec<_> = saga
        .exceptions
        .iter()
        .filter(|e| e.kind == ExceptionKind::PaymentOverdue)
        .collect();
    assert_eq!(overdue.len(), 1, "one record, brought up to date");
    assert!(
        overdue[0].cause.contains("reminder 2"),
        "{}",
        overdue[0].cause
    );
    let paid = incoming(&v1::DepositReceived {
        order_id: ORDER.to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &paid, start()).unwrap();
    assert!(saga.exceptions.iter().all(|e| !e.is_open()));
}

#[test]
fn an_escalated_deposit_asks_and_keep_waiting_extends_the_due_date() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    let event = incoming(&escalated(v1::InvoiceKind::Deposit));
    engine.react(&mut saga, &event, start()).unwrap();
    let decision = saga.decisions.last().expect("asked").clone();
    assert_eq!(decision.kind, "deposit_overdue");
    assert_eq!(decision.step, "deposit_received");
    assert_eq!(saga.status, Status::Running);
    // The balance step, not yet begun, is not touched by the deposit's
    // escalation.
    assert_eq!(saga.step("paid_in_full").failures, 0);

    saga.outgoing.clear();
    engine
        .apply_answer(
            &mut saga,
            decision.decision_id,
            answers::KEEP_WAITING,
            "finance.wu",
            "",
            start(),
        )
        .unwrap();
    let extended: Vec<v1::ExtendPaymentDue> = sent(&saga);
    assert_eq!(extended.len(), 1);
    assert_eq!(extended[0].invoice_kind, v1::InvoiceKind::Deposit as i32);
    assert_eq!(saga.step("deposit_received").status, StepStatus::Waiting);
    assert!(saga.step("deposit_received").deadline.is_some());

    // Escalated again later: a new question.
    engine.react(&mut saga, &event, start()).unwrap();
    assert_eq!(
        saga.decisions.iter().filter(|d| d.is_open()).count(),
        1,
        "asked once more"
    );
}

#[test]
fn releasing_production_without_the_deposit_lets_production_start() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    let ready = incoming(&v1::MaterialsReady {
        order_id: ORDER.to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &ready, start()).unwrap();
    engine
        .react(
            &mut saga,
            &incoming(&escalated(v1::InvoiceKind::Deposit)),
            start(),
        )
        .unwrap();
    assert_eq!(saga.phase, Phase::Materials);
    let decision = saga.decisions.last().unwrap().decision_id;
    engine
        .apply_answer(
            &mut saga,
            decision,
            answers::RELEASE_PRODUCTION,
            "gm",
            "good customer",
            start(),
        )
        .unwrap();
    assert_eq!(saga.phase, Phase::Production);
}

#[test]
fn a_late_supplier_asks_and_resourcing_instructs_procurement() {
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
    let exception = saga
        .exceptions
        .iter()
        .find(|e| e.kind == ExceptionKind::SupplierLate)
        .expect("registered");
    assert_eq!(exception.owner, v1::Department::Procurement);
    let decision = saga.decisions.last().unwrap().clone();
    assert_eq!(decision.kind, "supplier_late");
    // The same chase delivered again asks nothing new.
    engine.react(&mut saga, &late, start()).unwrap();
    assert_eq!(saga.decisions.iter().filter(|d| d.is_open()).count(), 1);

    saga.outgoing.clear();
    engine
        .apply_answer(
            &mut saga,
            decision.decision_id,
            answers::RESOURCE,
            "buyer",
            "",
            start(),
        )
        .unwrap();
    let resourced: Vec<v1::ResourceMaterials> = sent(&saga);
    assert_eq!(resourced.len(), 1);
    assert_eq!(resourced[0].purchase_order_id, "PO-7");
    assert_eq!(saga.step("materials_ready").status, StepStatus::Waiting);
    let closed = saga
        .exceptions
        .iter()
        .find(|e| e.kind == ExceptionKind::SupplierLate)
        .unwrap();
    assert_eq!(closed.decision.as_deref(), Some(answers::RESOURCE));
}

#[test]
fn a_machine_down_moves_the_projection_and_says_why() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    saga.promised = chrono::NaiveDate::from_ymd_opt(2026, 4, 10);
    saga.projected = chrono::NaiveDate::from_ymd_opt(2026, 4, 8);
    saga.outgoing.clear();
    let down = v1::WorkOrderRescheduled {
        order_id: ORDER.to_owned(),
        work_centre: "SEW".to_owned(),
        cause: "line SEW down since 2026-03-04 09:00 (motor failure), about 4 days' delay"
            .to_owned(),
        previous_end: "2026-03-30".to_owned(),
        projected_end: "2026-04-03".to_owned(),
        downtime_hours: 96.0,
        ..Default::default()
    };
    engine.react(&mut saga, &incoming(&down), start()).unwrap();
    assert_eq!(saga.projected, chrono::NaiveDate::from_ymd_opt(2026, 4, 12));
    assert!(saga.at_risk);
    let risk: Vec<v1::DeliveryRiskChanged> = sent(&saga);
    assert!(
        risk[0].reason.contains("line SEW down"),
        "{}",
        risk[0].reason
    );
    let up = v1::WorkOrderRescheduled {
        resolved: true,
        previous_end: "2026-04-03".to_owned(),
        projected_end: "2026-04-03".to_owned(),
        ..down
    };
    engine.react(&mut saga, &incoming(&up), start()).unwrap();
    let record = saga
        .exceptions
        .iter()
        .find(|e| e.kind == ExceptionKind::EquipmentDown)
        .unwrap();
    assert!(!record.is_open());
    assert_eq!(record.impact_days, 4);
}

/// A saga whose every step but `paid_in_full` (and closing) is done.
fn waiting_for_payment(engine: &super::Engine) -> SagaState {
    let mut saga = in_materials(engine);
    let waiting = ["paid_in_full", "close_cost_ledger", "close_order"];
    for (_, step) in engine.workflow().steps() {
        if !waiting.contains(&step.name) {
            let state = saga.step_mut(step.name);
            if !state.status.is_finished() {
                state.status = StepStatus::Done;
            }
        }
    }
    saga.phase = Phase::Acceptance;
    engine.advance(&mut saga, &gendan_messaging::Cause::root(ORDER), start());
    saga
}

#[test]
fn an_escalated_balance_can_go_to_collection() {
    let engine = engine();
    let mut saga = waiting_for_payment(&engine);
    assert_eq!(saga.step("paid_in_full").status, StepStatus::Waiting);
    engine
        .react(
            &mut saga,
            &incoming(&escalated(v1::InvoiceKind::Balance)),
            start(),
        )
        .unwrap();
    let decision = saga.decisions.last().unwrap().clone();
    assert_eq!(decision.kind, "balance_overdue");
    saga.outgoing.clear();
    engine
        .apply_answer(
            &mut saga,
            decision.decision_id,
            answers::REFER_TO_COLLECTION,
            "cfo",
            "",
            start(),
        )
        .unwrap();
    assert_eq!(sent::<v1::ReferToCollection>(&saga).len(), 1);
    assert_eq!(saga.step("paid_in_full").status, StepStatus::Waiting);
}

#[test]
fn a_question_the_event_overtook_is_withdrawn_and_cannot_be_answered() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    engine
        .react(
            &mut saga,
            &incoming(&escalated(v1::InvoiceKind::Deposit)),
            start(),
        )
        .unwrap();
    let id = saga.decisions.last().unwrap().decision_id;
    let paid = incoming(&v1::DepositReceived {
        order_id: ORDER.to_owned(),
        ..Default::default()
    });
    engine.react(&mut saga, &paid, start()).unwrap();
    assert_eq!(saga.step("deposit_received").status, StepStatus::Done);
    assert!(saga.decisions.iter().all(|d| !d.is_open()));
    let err = engine
        .apply_answer(&mut saga, id, answers::KEEP_WAITING, "finance", "", start())
        .unwrap_err();
    assert!(err.to_string().contains("already answered"), "{err}");
    assert_eq!(saga.step("deposit_received").status, StepStatus::Done);
}

#[test]
fn each_late_purchase_order_is_its_own_question() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    for po in ["PO-1", "PO-2"] {
        let late = incoming(&v1::PurchaseOrderLate {
            order_id: ORDER.to_owned(),
            purchase_order_id: po.to_owned(),
            lateness: "unconfirmed".to_owned(),
            ..Default::default()
        });
        engine.react(&mut saga, &late, start()).unwrap();
    }
    let open: Vec<_> = saga
        .decisions
        .iter()
        .filter(|d| d.is_open())
        .cloned()
        .collect();
    assert_eq!(open.len(), 2);
    saga.outgoing.clear();
    engine
        .apply_answer(
            &mut saga,
            open[0].decision_id,
            answers::RESOURCE,
            "buyer",
            "",
            start(),
        )
        .unwrap();
    let resourced: Vec<v1::ResourceMaterials> = sent(&saga);
    assert_eq!(resourced[0].purchase_order_id, "PO-1");
    // PO-2's record stays open until its own question is answered.
    let open_records = saga
        .exceptions
        .iter()
        .filter(|e| e.kind == ExceptionKind::SupplierLate && e.is_open())
        .count();
    assert_eq!(open_records, 1);
}

#[test]
fn cancelling_undoes_a_command_sent_but_not_yet_answered() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    // procure_materials answered; plan_production sent again and waiting.
    saga.step_mut("plan_production").status = StepStatus::Waiting;
    saga.outgoing.clear();
    engine
        .cancel_requested(&mut saga, "sales", "customer withdrew", start())
        .unwrap();
    assert_eq!(sent::<v1::CancelWorkOrder>(&saga).len(), 1);
}

#[test]
fn resuming_one_stalled_step_keeps_the_saga_parked_on_another() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    engine.stall(&mut saga, "materials_ready", "a", None, start());
    engine.stall(&mut saga, "deposit_received", "b", None, start());
    engine
        .retry(&mut saga, "materials_ready", "ops", "", start())
        .unwrap();
    assert_eq!(saga.status, Status::Stalled);
    assert!(
        saga.stalled_reason
            .as_deref()
            .unwrap_or("")
            .starts_with("deposit_received"),
        "{:?}",
        saga.stalled_reason
    );
}

#[test]
fn a_timer_that_fires_while_the_saga_is_parked_is_kept_for_later() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    engine.stall(&mut saga, "deposit_received", "b", None, start());
    saga.timer_changes.clear();
    engine.timer_fired(&mut saga, "materials_ready", start());
    assert!(
        saga.timer_changes.iter().any(
            |t| matches!(t, crate::state::TimerChange::Set(key, _) if key == "materials_ready")
        )
    );
}

#[test]
fn a_supplier_confirming_a_later_date_is_a_late_supplier_until_the_materials_are_in() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    let delayed = |date: &str| {
        incoming(&v1::MaterialsDelayed {
            order_id: ORDER.to_owned(),
            purchase_order_id: "po-1".to_owned(),
            expected_ready_date: date.to_owned(),
            reason: "supplier confirmed a later ETA".to_owned(),
        })
    };
    // Earlier than planned is no exception.
    engine
        .react(&mut saga, &delayed("2026-03-18"), start())
        .unwrap();
    assert!(
        saga.exceptions
            .iter()
            .all(|e| e.kind != ExceptionKind::SupplierLate)
    );
    engine
        .react(&mut saga, &delayed("2026-03-25"), start())
        .unwrap();
    let late: Vec<_> = saga
        .exceptions
        .iter()
        .filter(|e| e.kind == ExceptionKind::SupplierLate)
        .collect();
    assert_eq!(late.len(), 1);
    assert!(
        late[0]
            .cause
            .contains("2026-03-25 instead of 2026-03-18 (7 days later)"),
        "{}",
        late[0].cause
    );
    assert!(late[0].is_open());
    let ready = incoming(&v1::MaterialsReady {
        order_id: ORDER.to_owned(),
        ready_on: "2026-03-25".to_owned(),
        revision: 1,
    });
    engine.react(&mut saga, &ready, start()).unwrap();
    assert!(
        saga.exceptions
            .iter()
            .filter(|e| e.kind == ExceptionKind::SupplierLate)
            .all(|e| !e.is_open())
    );
}

#[test]
fn an_overdue_wait_asks_its_owner_again_and_shows_where_things_stand() {
    let engine = engine();
    let mut saga = in_materials(&engine);
    assert_eq!(saga.step("materials_ready").status, StepStatus::Waiting);
    saga.outgoing.clear();
    engine.timer_fired(&mut saga, "materials_ready", start());
    let asked: Vec<v1::RestateFact> = sent(&saga);
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (
            asked[0].step.as_str(),
            asked[0].awaited.as_str(),
            asked[0].revision
        ),
        // The procurement answer named no revision, so any ready counts: the
        // latest is asked for.
        ("materials_ready", v1::MaterialsReady::TYPE_NAME, 0)
    );
    assert!(
        saga.outgoing
            .iter()
            .any(|o| o.subject == "gendan.cmd.procurement.restate_fact")
    );
    // Procurement does not hold the fact yet: it says why, and that is the
    // step's visible cause while it waits.
    let mut reported = incoming(&v1::StatusReported {
        order_id: ORDER.to_owned(),
        step: "materials_ready".to_owned(),
        awaited: v1::MaterialsReady::TYPE_NAME.to_owned(),
        status: "PO 1 (FAB-OXF) not confirmed by its supplier".to_owned(),
    });
    reported.envelope.source = "procurement".to_owned();
    engine.react(&mut saga, &reported, start()).unwrap();
    assert_eq!(
        saga.step("materials_ready").last_error.as_deref(),
        Some("procurement: PO 1 (FAB-OXF) not confirmed by its supplier")
    );
    assert_eq!(saga.step("materials_ready").status, StepStatus::Waiting);
}

#[test]
fn an_overdue_wait_asked_enough_times_asks_a_person_to_chase_it() {
    let engine = engine();
    let asks = engine.workflow().overdue_asks;
    let mut saga = in_materials(&engine);
    let chasing = |saga: &SagaState| -> Vec<ExceptionRecord> {
        saga.exceptions
            .iter()
            .filter(|e| e.kind == ExceptionKind::OverdueWait)
            .cloned()
            .collect()
    };
    let mut reported = incoming(&v1::StatusReported {
        order_id: ORDER.to_owned(),
        step: "materials_ready".to_owned(),
        awaited: v1::MaterialsReady::TYPE_NAME.to_owned(),
        status: "PO 1 (FAB-OXF) not confirmed by its supplier".to_owned(),
    });
    reported.envelope.source = "procurement".to_owned();
    for ask in 1..asks {
        engine.timer_fired(&mut saga, "materials_ready", start());
        engine.react(&mut saga, &reported, start()).unwrap();
        assert!(chasing(&saga).is_empty(), "ask {ask} is not yet a person's");
    }
    // The last ask: still no fact, so a person chases it; later asks open
    // nothing more.
    engine.timer_fired(&mut saga, "materials_ready", start());
    engine.timer_fired(&mut saga, "materials_ready", start());
    let open = chasing(&saga);
    assert_eq!(open.len(), 1);
    assert!(open[0].is_open());
    assert_eq!(open[0].owner, Department::Procurement);
    assert!(
        open[0].cause.contains(&format!("asked {asks} times"))
            && open[0].cause.contains("not confirmed by its supplier"),
        "{}",
        open[0].cause
    );
    assert_eq!(saga.step("materials_ready").status, StepStatus::Waiting);
    assert_eq!(saga.status, Status::Running);
    // The fact arrives: the wait is over and so is the chase.
    let ready = incoming(&v1::MaterialsReady {
        order_id: ORDER.to_owned(),
        ready_on: "2026-03-25".to_owned(),
        revision: 1,
    });
    engine.react(&mut saga, &ready, start()).unwrap();
    assert!(chasing(&saga).iter().all(|e| !e.is_open()));
}

#[test]
fn a_wait_its_owner_chases_only_asks_again_now_and_then() {
    let engine = engine();
    let mut saga = waiting_for_payment(&engine);
    let deadline = saga.step("paid_in_full").deadline.expect("a recheck");
    let every = chrono::Duration::from_std(Timing::default().recheck_every).unwrap();
    assert_eq!(deadline, start() + every);
    saga.outgoing.clear();
    let projected = saga.projected;
    let exceptions = saga.exceptions.len();
    engine.timer_fired(&mut saga, "paid_in_full", deadline);
    // Finance is asked whether the order was paid in full; nothing is
    // flagged, since finance's dunning chases the customer.
    let asked: Vec<v1::RestateFact> = sent(&saga);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].awaited, v1::OrderPaidInFull::TYPE_NAME);
    assert!(
        saga.outgoing
            .iter()
            .any(|o| o.subject == "gendan.cmd.finance.restate_fact")
    );
    assert_eq!(saga.projected, projected);
    assert_eq!(saga.exceptions.len(), exceptions);
    assert_eq!(saga.step("paid_in_full").deadline, Some(deadline + every));
    assert_eq!(saga.step("paid_in_full").status, StepStatus::Waiting);
}
