//! The twelve phases of DESIGN.md §2 as a table, with the real parallelism
//! (the review's checks and estimates side by side, materials and the
//! deposit, documents while packing, the balance invoiced while the goods
//! travel) and the exception loops: a failed final inspection is reworked
//! and inspected again, and after as many failures as allowed a person
//! decides.
//!
//! The review estimates the order's cost before it is confirmed: each
//! department prices its part (procurement's material cost with the
//! materials check, production's routing hours with the capacity check,
//! logistics' freight quote, quality's inspection sample), finance adds up
//! the estimate and its margin, and when the margin is below the customer's
//! floor (or the order costs more than it is worth), or the order would take
//! what the customer owes past its credit limit, a person decides
//! (`margin`). At closing finance closes the order's cost ledger before the
//! order is closed, so the summary has its final figures.

use gendan_proto::TypeName;
use gendan_proto::v1::{self, Department, ExceptionKind, Phase};

use super::commands::*;
use super::decisions::{
    BALANCE_OVERDUE, CARGO_CLAIM, CLAIM_RESOLUTION, DELIVERY_DATE, DEPOSIT_OVERDUE,
    FINAL_INSPECTION, MARGIN, SUPPLIER_LATE, margin_estimate,
};
use super::reruns::REWORK_LOOP;
use super::{
    CompensationDef, Escalation, OnFailure, OnTimeout, PhaseDef, StepDef, StepKind, Timing,
    Workflow,
};
use crate::calendar::Kind;
use crate::facts::{BalanceMilestone, ClaimedBy};
use crate::state::SagaState;

impl Workflow {
    pub fn standard(timing: Timing) -> Self {
        let resend = OnTimeout::Resend {
            after: timing.command_timeout,
            max_attempts: timing.max_attempts,
        };
        let send = |name, after, owner, command, completes_on| StepDef {
            name,
            after,
            kind: StepKind::Send(command),
            owner,
            completes_on,
            fails_on: &[],
            on_failure: OnFailure::Stall,
            failure_kind: ExceptionKind::StepFailed,
            on_timeout: resend,
            when: None,
            compensation: None,
            early: false,
            revision_of: None,
            milestone: None,
        };
        let wait = |name, after, owner, completes_on, on_timeout| StepDef {
            kind: StepKind::Await,
            on_timeout,
            ..send(name, after, owner, check_materials, completes_on)
        };
        let phase = |phase, steps| PhaseDef { phase, steps };
        use Department as D;
        Workflow {
            compensation_resend: timing.command_timeout,
            compensation_attempts: timing.max_attempts,
            decision_timeout: timing.decision_timeout,
            decision_reminders: timing.decision_reminders,
            overdue_asks: timing.overdue_asks,
            phases: vec![
                phase(
                    Phase::Review,
                    vec![
                        send(
                            "check_materials",
                            &[],
                            D::Procurement,
                            check_materials,
                            &[v1::MaterialsChecked::TYPE_NAME],
                        ),
                        // Asked at once, beside the materials check: it
                        // needs nothing but the order and its customer.
                        StepDef {
                            when: Some(under_review),
                            ..send(
                                "estimate_inspection",
                                &[],
                                D::Quality,
                                estimate_inspection,
                                &[v1::InspectionEstimated::TYPE_NAME],
                            )
                        },
                        // The check reserves the hours it answers with;
                        // a cancelled order gives them back.
                        StepDef {
                            compensation: Some(CompensationDef {
                                action: "release_capacity",
                                command: release_capacity,
                                completes_on: v1::CapacityReleased::TYPE_NAME,
                            }),
                            ..send(
                                "capacity_check",
                                &["check_materials"],
                                D::Production,
                                check_capacity,
                                &[v1::CapacityChecked::TYPE_NAME],
                            )
                        },
                        // Freight from the day the goods can leave.
                        StepDef {
                            when: Some(under_review),
                            ..send(
                                "quote_freight",
                                &["capacity_check"],
                                D::Logistics,
                                quote_freight,
                                &[v1::FreightQuoted::TYPE_NAME],
                            )
                        },
                        StepDef {
                            kind: StepKind::Decide(&DELIVERY_DATE),
                            when: Some(requested_date_at_risk),
                            completes_on: &[],
                            // After the freight quote: the delivery date
                            // needs the lane's departures and transit.
                            ..send(
                                "clarify_delivery_date",
                                &["capacity_check", "quote_freight"],
                                D::Orders,
                                check_capacity,
                                &[],
                            )
                        },
                        // A cost with no exchange rate parks the step: an
                        // operator sets the rate and retries it.
                        StepDef {
                            when: Some(under_review),
                            fails_on: &[v1::CostEstimateFailed::TYPE_NAME],
                            failure_kind: ExceptionKind::ExchangeRateMissing,
                            ..send(
                                "estimate_costs",
                                &[
                                    "check_materials",
                                    "capacity_check",
                                    "quote_freight",
                                    "estimate_inspection",
                                ],
                                D::Finance,
                                estimate_costs,
                                &[v1::CostsEstimated::TYPE_NAME],
                            )
                        },
                        // A re-quote waits for the amended price (which
                        // reviews the order again); if none comes within a
                        // decision's time, the question is asked again.
                        StepDef {
                            kind: StepKind::Decide(&MARGIN),
                            when: Some(below_margin_or_over_credit),
                            completes_on: &[],
                            on_timeout: OnTimeout::AskEvery(timing.decision_timeout),
                            ..send(
                                "review_margin",
                                &["estimate_costs"],
                                D::Orders,
                                estimate_costs,
                                &[],
                            )
                        },
                        send(
                            "confirm_order",
                            &["clarify_delivery_date", "review_margin"],
                            D::Orders,
                            confirm_order,
                            &[v1::OrderConfirmed::TYPE_NAME],
                        ),
                    ],
                ),
                phase(
                    Phase::Confirmed,
                    vec![
                        StepDef {
                            fails_on: &[v1::ReceivableOpeningFailed::TYPE_NAME],
                            compensation: Some(CompensationDef {
                                action: "cancel_receivable",
                                command: cancel_receivable,
                                completes_on: v1::ReceivableCancelled::TYPE_NAME,
                            }),
                            ..send(
                                "open_receivable",
                                &[],
                                D::Finance,
                                open_receivable,
                                &[v1::ReceivableOpened::TYPE_NAME],
                            )
                        },
                        StepDef {
                            fails_on: &[v1::WorkOrderPlanningFailed::TYPE_NAME],
                            compensation: Some(CompensationDef {
                                action: "cancel_work_order",
                                command: cancel_work_order,
                                completes_on: v1::WorkOrderCancelled::TYPE_NAME,
                            }),
                            ..send(
                                "plan_production",
                                &[],
                                D::Production,
                                plan_work_order,
                                &[v1::WorkOrderPlanned::TYPE_NAME],
                            )
                        },
                    ],
                ),
                phase(
                    Phase::Materials,
                    vec![
                        StepDef {
                            fails_on: &[v1::ProcurementFailed::TYPE_NAME],
                            compensation: Some(CompensationDef {
                                action: "cancel_materials",
                                command: cancel_materials,
                                completes_on: v1::MaterialsCancelled::TYPE_NAME,
                            }),
                            ..send(
                                "procure_materials",
                                &[],
                                D::Procurement,
                                procure_materials,
                                &[v1::MaterialsOrdered::TYPE_NAME],
                            )
                        },
                        StepDef {
                            milestone: Some(Kind::MaterialsIn),
                            fails_on: &[v1::PurchaseOrderLate::TYPE_NAME],
                            on_failure: OnFailure::Decide(&SUPPLIER_LATE),
                            failure_kind: ExceptionKind::SupplierLate,
                            revision_of: Some("procure_materials"),
                            ..wait(
                                "materials_ready",
                                &["procure_materials"],
                                D::Procurement,
                                &[v1::MaterialsReady::TYPE_NAME],
                                OnTimeout::FlagOverdue,
                            )
                        },
                        StepDef {
                            when: Some(deposit_required),
                            fails_on: &[v1::PaymentEscalated::TYPE_NAME],
                            on_failure: OnFailure::Decide(&DEPOSIT_OVERDUE),
                            failure_kind: ExceptionKind::PaymentOverdue,
                            ..wait(
                                "deposit_received",
                                &[],
                                D::Finance,
                                &[v1::DepositReceived::TYPE_NAME],
                                OnTimeout::FlagOverdue,
                            )
                        },
                    ],
                ),
                phase(
                    Phase::Production,
                    vec![StepDef {
                        milestone: Some(Kind::StageDone),
                        revision_of: Some("plan_production"),
                        ..wait(
                            "production_completed",
                            &[],
                            D::Production,
                            &[v1::WorkOrderCompleted::TYPE_NAME],
                            OnTimeout::FlagOverdue,
                        )
                    }],
                ),
                phase(
                    Phase::FinalInspection,
                    vec![
                        // The rework loop: skipped on the first pass, run
                        // after each failed inspection.
                        StepDef {
                            when: Some(rework_due),
                            ..send(
                                "plan_rework",
                                &[],
                                D::Production,
                                start_rework,
                                &[v1::ReworkPlanned::TYPE_NAME],
                            )
                        },
                        StepDef {
                            when: Some(rework_due),
                            revision_of: Some("plan_rework"),
                            ..wait(
                                "rework_done",
                                &["plan_rework"],
                                D::Production,
                                &[v1::ReworkCompleted::TYPE_NAME],
                                OnTimeout::FlagOverdue,
                            )
                        },
                        send(
                            "request_final_inspection",
                            &["rework_done"],
                            D::Quality,
                            request_final_inspection,
                            &[v1::FinalInspectionOpened::TYPE_NAME],
                        ),
                        StepDef {
                            milestone: Some(Kind::FinalInspection),
                            fails_on: &[v1::FinalInspectionFailed::TYPE_NAME],
                            on_failure: OnFailure::Reopen {
                                steps: REWORK_LOOP,
                                limit: timing.final_inspection_failures.max(1),
                                limit_for: Some(customer_failure_limit),
                                then: Escalation::Decide(&FINAL_INSPECTION),
                            },
                            failure_kind: ExceptionKind::FinalInspectionFailed,
                            revision_of: Some("request_final_inspection"),
                            ..wait(
                                "final_inspection_passed",
                                &["request_final_inspection"],
                                D::Quality,
                                &[v1::FinalInspectionPassed::TYPE_NAME],
                                OnTimeout::FlagOverdue,
                            )
                        },
                    ],
                ),
                phase(
                    Phase::Packing,
                    vec![
                        StepDef {
                            fails_on: &[v1::PackingListFailed::TYPE_NAME],
                            ..send(
                                "prepare_packing",
                                &[],
                                D::Logistics,
                                prepare_packing,
                                &[v1::PackingListReady::TYPE_NAME],
                            )
                        },
                        // A mismatch comes as PackingChecked { matches:
                        // false }: the verdict fails the step.
                        StepDef {
                            milestone: Some(Kind::PackingDone),
                            revision_of: Some("prepare_packing"),
                            ..wait(
                                "packing_checked",
                                &["prepare_packing"],
                                D::Logistics,
                                &[v1::PackingChecked::TYPE_NAME],
                                OnTimeout::FlagOverdue,
                            )
                        },
                    ],
                ),
                phase(
                    Phase::Documents,
                    vec![StepDef {
                        fails_on: &[v1::DocumentsRejected::TYPE_NAME],
                        early: true,
                        ..send(
                            "prepare_documents",
                            &["prepare_packing"],
                            D::Logistics,
                            prepare_documents,
                            &[v1::DocumentsReady::TYPE_NAME],
                        )
                    }],
                ),
                phase(
                    Phase::Shipping,
                    vec![
                        StepDef {
                            fails_on: &[v1::ShipmentBookingFailed::TYPE_NAME],
                            ..send(
                                "book_shipment",
                                &[],
                                D::Logistics,
                                book_shipment,
                                &[v1::ShipmentBooked::TYPE_NAME],
                            )
                        },
                        // A missed ETD re-books (a new booking revision);
                        // missed twice, an operator looks.
                        StepDef {
                            milestone: Some(Kind::ExFactory),
                            fails_on: &[v1::ShipmentLate::TYPE_NAME],
                            revision_of: Some("book_shipment"),
                            on_failure: OnFailure::Reopen {
                                steps: &["book_shipment", "shipped"],
                                limit: 2,
                                limit_for: None,
                                then: Escalation::Stall,
                            },
                            failure_kind: ExceptionKind::ShipmentLate,
                            ..wait(
                                "shipped",
                                &["book_shipment"],
                                D::Logistics,
                                &[v1::Shipped::TYPE_NAME],
                                OnTimeout::FlagOverdue,
                            )
                        },
                        // Lost or damaged cargo asks whether to credit the
                        // customer (one question per carrier claim).
                        StepDef {
                            milestone: Some(Kind::Delivered),
                            fails_on: &[v1::CargoClaimOpened::TYPE_NAME],
                            revision_of: Some("book_shipment"),
                            on_failure: OnFailure::Decide(&CARGO_CLAIM),
                            failure_kind: ExceptionKind::CargoClaim,
                            ..wait(
                                "delivered",
                                &["shipped"],
                                D::Logistics,
                                &[v1::Delivered::TYPE_NAME],
                                OnTimeout::FlagOverdue,
                            )
                        },
                    ],
                ),
                phase(
                    Phase::Acceptance,
                    vec![
                        StepDef {
                            fails_on: &[v1::ClaimRaised::TYPE_NAME],
                            on_failure: OnFailure::Decide(&CLAIM_RESOLUTION),
                            failure_kind: ExceptionKind::CustomerClaim,
                            ..wait(
                                "customer_acceptance",
                                &[],
                                D::Orders,
                                &[v1::OrderAccepted::TYPE_NAME],
                                OnTimeout::AskEvery(timing.recheck_every),
                            )
                        },
                        // A claim settled by making its goods good: once
                        // they are delivered again (the shipping phase is
                        // done), the claim is resolved (skipped otherwise).
                        StepDef {
                            when: Some(redelivery_due),
                            ..send(
                                "resolve_redelivery",
                                &[],
                                D::Orders,
                                resolve_claim_by_redelivery,
                                &[v1::ClaimResolved::TYPE_NAME],
                            )
                        },
                    ],
                ),
                phase(
                    Phase::Settlement,
                    vec![
                        // The balance is invoiced at the milestone the
                        // terms name: against the B/L copy at shipment, or
                        // on delivery; the other step is skipped. Terms that
                        // bill nothing then answer that no invoice is due.
                        StepDef {
                            early: true,
                            when: Some(balance_at_shipment),
                            ..send(
                                "invoice_at_shipment",
                                &["shipped"],
                                D::Finance,
                                invoice_balance,
                                &[v1::InvoiceIssued::TYPE_NAME, v1::NoInvoiceDue::TYPE_NAME],
                            )
                        },
                        StepDef {
                            early: true,
                            when: Some(balance_at_delivery),
                            ..send(
                                "invoice_at_delivery",
                                &["delivered"],
                                D::Finance,
                                invoice_balance,
                                &[v1::InvoiceIssued::TYPE_NAME, v1::NoInvoiceDue::TYPE_NAME],
                            )
                        },
                        // Finance chases the balance on its dunning schedule;
                        // after the last reminder a person decides.
                        StepDef {
                            fails_on: &[v1::PaymentEscalated::TYPE_NAME],
                            on_failure: OnFailure::Decide(&BALANCE_OVERDUE),
                            failure_kind: ExceptionKind::PaymentOverdue,
                            ..wait(
                                "paid_in_full",
                                &["invoice_at_shipment", "invoice_at_delivery"],
                                D::Finance,
                                &[v1::OrderPaidInFull::TYPE_NAME],
                                OnTimeout::AskEvery(timing.recheck_every),
                            )
                        },
                    ],
                ),
                phase(
                    Phase::Closed,
                    vec![
                        send(
                            "close_cost_ledger",
                            &[],
                            D::Finance,
                            close_cost_ledger,
                            &[v1::CostLedgerClosed::TYPE_NAME],
                        ),
                        send(
                            "close_order",
                            &["close_cost_ledger"],
                            D::Orders,
                            close_order,
                            &[v1::OrderClosed::TYPE_NAME],
                        ),
                    ],
                ),
            ],
        }
    }
}

fn deposit_required(state: &SagaState) -> bool {
    state.facts.deposit_required
}

/// A customer's claim is being settled by delivering its goods again (a
/// carrier's replacement is done once delivered: nothing to resolve).
fn redelivery_due(state: &SagaState) -> bool {
    state
        .facts
        .redelivery
        .as_ref()
        .is_some_and(|r| r.claimed_by == ClaimedBy::Customer)
}

/// The failed final inspections the order's customer allows before a
/// person decides, when its rules set a number (0: the deployment's).
fn customer_failure_limit(state: &SagaState) -> Option<u32> {
    state
        .order
        .customer_rules
        .as_ref()
        .map(|rules| rules.final_inspection_failures)
        .filter(|limit| *limit > 0)
}

fn rework_due(state: &SagaState) -> bool {
    state.facts.rework_due()
}

fn balance_at_shipment(state: &SagaState) -> bool {
    state.facts.balance_milestone == BalanceMilestone::Shipment
}

fn balance_at_delivery(state: &SagaState) -> bool {
    state.facts.balance_milestone == BalanceMilestone::Delivery
}

/// The earliest delivery is after the date the customer asked for.
fn requested_date_at_risk(state: &SagaState) -> bool {
    state
        .projected
        .is_some_and(|projected| projected > state.requested)
}

/// Finance's estimate of the current review leaves less margin than the
/// customer's floor, costs more than the order is worth, or takes what the
/// customer owes past its credit limit.
fn below_margin_or_over_credit(state: &SagaState) -> bool {
    margin_estimate(state).is_some_and(|estimate| {
        !estimate.below_margin.is_empty() || !estimate.over_credit_limit.is_empty()
    })
}

/// The order is being reviewed (first, or again after an amendment): not
/// yet confirmed. A saga confirmed before the review estimated costs skips
/// the estimate instead of walking back into review for it.
fn under_review(state: &SagaState) -> bool {
    !state.step("confirm_order").status.is_finished()
}
