//! The workflow as data: phases in order, the steps of each phase, what each
//! step sends, which event completes it, and what happens when it times out.
//!
//! The engine knows nothing about particular steps; adding a phase or a step
//! means adding an entry here (and, when a new event carries facts the saga
//! keeps, an effect in [`crate::effects`]).

use std::time::Duration;

use gendan_messaging::{Cause, Outgoing};
use gendan_proto::TypeName;
use gendan_proto::v1::{self, Phase};

use crate::SERVICE;
use crate::effects::facts;
use crate::state::SagaState;

/// Builds the command a step sends when it starts (and re-sends on timeout).
pub type CommandBuilder = fn(&SagaState, &Cause) -> Outgoing;

#[derive(Clone, Copy)]
pub enum StepAction {
    /// Send a command to a service and wait for the completing event.
    Send(CommandBuilder),
    /// Wait for an event that arrives on its own (production progress).
    Await,
    /// Ask a person; the step completes when the decision is answered.
    Decide(DecisionSpec),
}

/// A decision a step opens: what is asked and the answers it accepts.
#[derive(Clone, Copy)]
pub struct DecisionSpec {
    pub kind: &'static str,
    pub question: fn(&SagaState) -> String,
    pub options: &'static [&'static str],
}

/// How to undo a step's effect when the order is cancelled.
#[derive(Clone, Copy)]
pub struct CompensationDef {
    pub action: &'static str,
    pub command: CommandBuilder,
    pub completes_on: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub enum OnTimeout {
    /// Re-send the (idempotent) command after `after`, doubling each time;
    /// after `max_attempts` sends park the saga as stalled. For a decision
    /// the re-send is a reminder.
    Resend { after: Duration, max_attempts: u32 },
    /// The step's deadline is the projected delivery date; when it passes,
    /// flag the order at risk and look again a day later. Never stalls.
    FlagOverdue,
    /// Wait without a deadline of the saga's own: the party owning the wait
    /// chases it (finance dunning for payment, the customer's acceptance).
    Never,
}

#[derive(Clone, Copy)]
pub struct StepDef {
    pub name: &'static str,
    /// Steps of the same phase that must be finished before this one starts;
    /// steps without gates start together.
    pub after: &'static [&'static str],
    pub action: StepAction,
    /// Fully qualified type of the event that completes the step ("" for a
    /// decision, which a person completes).
    pub completes_on: &'static str,
    /// Other event types that complete the step too.
    pub completes_also: &'static [&'static str],
    /// Event types that answer "cannot be done": the saga parks with the
    /// reason the event gives.
    pub fails_on: &'static [&'static str],
    pub on_timeout: OnTimeout,
    /// A step that only runs when this holds when it would start; otherwise
    /// it is skipped as not needed.
    pub when: Option<fn(&SagaState) -> bool>,
    pub compensation: Option<CompensationDef>,
    /// Starts as soon as its gates (`after`, which may name steps of earlier
    /// phases) are finished, even while an earlier phase is still running.
    pub early: bool,
}

impl StepDef {
    /// Whether an event of `type_name` completes this step.
    pub fn completes(&self, type_name: &str) -> bool {
        self.completes_on == type_name || self.completes_also.contains(&type_name)
    }
}

pub struct PhaseDef {
    pub phase: Phase,
    pub steps: Vec<StepDef>,
}

pub struct Workflow {
    pub phases: Vec<PhaseDef>,
}

/// Per-deployment timing of command steps.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub command_timeout: Duration,
    pub max_attempts: u32,
    /// Time a person has to answer a decision before a reminder; after
    /// `decision_reminders` reminders the saga parks as stalled.
    pub decision_timeout: Duration,
    pub decision_reminders: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            command_timeout: Duration::from_secs(30),
            max_attempts: 5,
            decision_timeout: Duration::from_secs(2 * 24 * 3600),
            decision_reminders: 2,
        }
    }
}

/// Answers of the delivery-date clarification.
pub mod answers {
    pub const ACCEPT_PROPOSED_DATE: &str = "accept_proposed_date";
    pub const KEEP_REQUESTED_DATE: &str = "keep_requested_date";
    pub const CANCEL_ORDER: &str = "cancel_order";
}

impl Workflow {
    /// The twelve phases of DESIGN.md §2 for an order that goes well, with
    /// the real parallelism: materials and the deposit run side by side,
    /// production waits for both (the deposit only when the terms ask for
    /// it), documents are prepared while packing runs, and the balance is
    /// invoiced at shipment while the goods travel.
    pub fn standard(timing: Timing) -> Self {
        let resend = OnTimeout::Resend {
            after: timing.command_timeout,
            max_attempts: timing.max_attempts,
        };
        let remind = OnTimeout::Resend {
            after: timing.decision_timeout,
            max_attempts: timing.decision_reminders + 1,
        };
        let send = |name, after, command, completes_on| StepDef {
            name,
            after,
            action: StepAction::Send(command),
            completes_on,
            completes_also: &[],
            fails_on: &[],
            on_timeout: resend,
            when: None,
            compensation: None,
            early: false,
        };
        let wait = |name, after, completes_on, on_timeout| StepDef {
            action: StepAction::Await,
            on_timeout,
            ..send(name, after, check_materials, completes_on)
        };
        let phase = |phase, steps| PhaseDef { phase, steps };
        Workflow {
            phases: vec![
                phase(
                    Phase::Review,
                    vec![
                        StepDef {
                            fails_on: &[],
                            ..send(
                                "check_materials",
                                &[],
                                check_materials,
                                v1::MaterialsChecked::TYPE_NAME,
                            )
                        },
                        send(
                            "capacity_check",
                            &["check_materials"],
                            check_capacity,
                            v1::CapacityChecked::TYPE_NAME,
                        ),
                        StepDef {
                            when: Some(requested_date_at_risk),
                            action: StepAction::Decide(DecisionSpec {
                                kind: "delivery_date",
                                question: delivery_date_question,
                                options: &[
                                    answers::ACCEPT_PROPOSED_DATE,
                                    answers::KEEP_REQUESTED_DATE,
                                    answers::CANCEL_ORDER,
                                ],
                            }),
                            on_timeout: remind,
                            ..send(
                                "clarify_delivery_date",
                                &["capacity_check"],
                                check_capacity,
                                "",
                            )
                        },
                        send(
                            "confirm_order",
                            &["clarify_delivery_date"],
                            confirm_order,
                            v1::OrderConfirmed::TYPE_NAME,
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
                                open_receivable,
                                v1::ReceivableOpened::TYPE_NAME,
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
                                plan_work_order,
                                v1::WorkOrderPlanned::TYPE_NAME,
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
                                procure_materials,
                                v1::MaterialsOrdered::TYPE_NAME,
                            )
                        },
                        wait(
                            "materials_ready",
                            &["procure_materials"],
                            v1::MaterialsReady::TYPE_NAME,
                            OnTimeout::FlagOverdue,
                        ),
                        StepDef {
                            when: Some(deposit_required),
                            ..wait(
                                "deposit_received",
                                &[],
                                v1::DepositReceived::TYPE_NAME,
                                OnTimeout::FlagOverdue,
                            )
                        },
                    ],
                ),
                phase(
                    Phase::Production,
                    vec![wait(
                        "production_completed",
                        &[],
                        v1::WorkOrderCompleted::TYPE_NAME,
                        OnTimeout::FlagOverdue,
                    )],
                ),
                phase(
                    Phase::FinalInspection,
                    vec![
                        send(
                            "request_final_inspection",
                            &[],
                            request_final_inspection,
                            v1::FinalInspectionOpened::TYPE_NAME,
                        ),
                        StepDef {
                            fails_on: &[v1::FinalInspectionFailed::TYPE_NAME],
                            ..wait(
                                "final_inspection_passed",
                                &["request_final_inspection"],
                                v1::FinalInspectionPassed::TYPE_NAME,
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
                                prepare_packing,
                                v1::PackingListReady::TYPE_NAME,
                            )
                        },
                        wait(
                            "packing_checked",
                            &["prepare_packing"],
                            v1::PackingChecked::TYPE_NAME,
                            OnTimeout::FlagOverdue,
                        ),
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
                            prepare_documents,
                            v1::DocumentsReady::TYPE_NAME,
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
                                book_shipment,
                                v1::ShipmentBooked::TYPE_NAME,
                            )
                        },
                        wait(
                            "shipped",
                            &["book_shipment"],
                            v1::Shipped::TYPE_NAME,
                            OnTimeout::FlagOverdue,
                        ),
                        wait(
                            "delivered",
                            &["shipped"],
                            v1::Delivered::TYPE_NAME,
                            OnTimeout::FlagOverdue,
                        ),
                    ],
                ),
                phase(
                    Phase::Acceptance,
                    vec![wait(
                        "customer_acceptance",
                        &[],
                        v1::OrderAccepted::TYPE_NAME,
                        OnTimeout::Never,
                    )],
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
                            completes_also: &[v1::NoInvoiceDue::TYPE_NAME],
                            ..send(
                                "invoice_at_shipment",
                                &["shipped"],
                                invoice_balance,
                                v1::InvoiceIssued::TYPE_NAME,
                            )
                        },
                        StepDef {
                            early: true,
                            when: Some(balance_at_delivery),
                            completes_also: &[v1::NoInvoiceDue::TYPE_NAME],
                            ..send(
                                "invoice_at_delivery",
                                &["delivered"],
                                invoice_balance,
                                v1::InvoiceIssued::TYPE_NAME,
                            )
                        },
                        wait(
                            "paid_in_full",
                            &["invoice_at_shipment", "invoice_at_delivery"],
                            v1::OrderPaidInFull::TYPE_NAME,
                            OnTimeout::Never,
                        ),
                    ],
                ),
                phase(
                    Phase::Closed,
                    vec![send(
                        "close_order",
                        &[],
                        close_order,
                        v1::OrderClosed::TYPE_NAME,
                    )],
                ),
            ],
        }
    }

    /// Every event type some step or compensation waits for.
    pub fn awaits(&self, type_name: &str) -> bool {
        self.steps().any(|(_, step)| {
            step.completes(type_name)
                || step.fails_on.contains(&type_name)
                || step
                    .compensation
                    .is_some_and(|c| c.completes_on == type_name)
        })
    }

    pub fn steps(&self) -> impl Iterator<Item = (&PhaseDef, &StepDef)> {
        self.phases
            .iter()
            .flat_map(|phase| phase.steps.iter().map(move |step| (phase, step)))
    }

    pub fn step(&self, name: &str) -> Option<(&PhaseDef, &StepDef)> {
        self.steps().find(|(_, step)| step.name == name)
    }
}

fn items(state: &SagaState) -> Vec<v1::ProductQuantity> {
    state
        .order
        .lines
        .iter()
        .map(|line| v1::ProductQuantity {
            product: line.product.clone(),
            quantity: line.quantity,
        })
        .collect()
}

fn deposit_required(state: &SagaState) -> bool {
    state.fact_bool(facts::DEPOSIT_REQUIRED)
}

fn material_date(state: &SagaState) -> String {
    state
        .fact_str(facts::MATERIAL_DATE)
        .unwrap_or_default()
        .to_owned()
}

fn order(state: &SagaState) -> v1::Order {
    state.order.clone()
}

fn check_materials(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::CheckMaterials {
        order_id: state.order_id.clone(),
        items: items(state),
        needed_by: String::new(),
    };
    Outgoing::command(SERVICE, "procurement", &state.order_id, &command, cause)
}

fn procure_materials(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::ProcureMaterials {
        order_id: state.order_id.clone(),
        items: items(state),
        needed_by: material_date(state),
    };
    Outgoing::command(SERVICE, "procurement", &state.order_id, &command, cause)
}

fn cancel_materials(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::CancelMaterials {
        order_id: state.order_id.clone(),
        reason: "order cancelled".to_owned(),
    };
    Outgoing::command(SERVICE, "procurement", &state.order_id, &command, cause)
}

/// Share of the order value budgeted for its costs until finance keeps
/// budgets per customer: a 25% gross margin target.
const COST_BUDGET_PERCENT: i64 = 75;

/// The share of `total_minor` budgeted for costs, rounded down to a minor
/// unit (never wrapping: totals are far below `i64::MAX / 100`, and the
/// product saturates if one is not).
fn cost_budget(total_minor: i64) -> i64 {
    total_minor.saturating_mul(COST_BUDGET_PERCENT) / 100
}

fn open_receivable(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::OpenReceivable {
        order_id: state.order_id.clone(),
        customer: state.order.customer.clone(),
        total_minor: state.order.total_minor,
        currency: state.order.currency.clone(),
        payment_terms: state.order.payment_terms.clone(),
        cost_budget_minor: cost_budget(state.order.total_minor),
        ..Default::default()
    };
    Outgoing::command(SERVICE, "finance", &state.order_id, &command, cause)
}

fn cancel_receivable(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::CancelReceivable {
        order_id: state.order_id.clone(),
        reason: "order cancelled".to_owned(),
    };
    Outgoing::command(SERVICE, "finance", &state.order_id, &command, cause)
}

fn balance_milestone(state: &SagaState) -> &str {
    state
        .fact_str(facts::BALANCE_MILESTONE)
        .unwrap_or("shipment")
}

fn balance_at_shipment(state: &SagaState) -> bool {
    balance_milestone(state) == "shipment"
}

fn balance_at_delivery(state: &SagaState) -> bool {
    balance_milestone(state) == "delivery"
}

fn invoice_balance(state: &SagaState, cause: &Cause) -> Outgoing {
    let milestone = balance_milestone(state);
    let date_fact = if milestone == "delivery" {
        facts::DELIVERED_ON
    } else {
        facts::SHIPPED_ON
    };
    let command = v1::InvoiceBalance {
        order_id: state.order_id.clone(),
        milestone: milestone.to_owned(),
        milestone_date: state.fact_str(date_fact).unwrap_or_default().to_owned(),
    };
    Outgoing::command(SERVICE, "finance", &state.order_id, &command, cause)
}

fn request_final_inspection(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::RequestFinalInspection {
        order_id: state.order_id.clone(),
        items: items(state),
    };
    Outgoing::command(SERVICE, "quality", &state.order_id, &command, cause)
}

fn prepare_packing(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::PreparePacking {
        order: Some(order(state)),
    };
    Outgoing::command(SERVICE, "logistics", &state.order_id, &command, cause)
}

fn prepare_documents(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::PrepareDocuments {
        order: Some(order(state)),
        ..Default::default()
    };
    Outgoing::command(SERVICE, "logistics", &state.order_id, &command, cause)
}

fn book_shipment(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::BookShipment {
        order: Some(order(state)),
        ready_date: state
            .fact_str(facts::READY_DATE)
            .unwrap_or_default()
            .to_owned(),
        deliver_by: state
            .promised
            .map(gendan_proto::date_to_string)
            .unwrap_or_default(),
    };
    Outgoing::command(SERVICE, "logistics", &state.order_id, &command, cause)
}

fn close_order(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::CloseOrder {
        order_id: state.order_id.clone(),
    };
    Outgoing::command(SERVICE, "orders", &state.order_id, &command, cause)
}

/// The factory's earliest date is after the date the customer asked for.
fn requested_date_at_risk(state: &SagaState) -> bool {
    state
        .projected
        .is_some_and(|projected| projected > state.requested)
}

fn delivery_date_question(state: &SagaState) -> String {
    format!(
        "The factory can complete order {} on {} at the earliest, after the requested {}. \
         Accept the proposed date (agreed with the customer), keep the requested date at risk, or cancel the order?",
        state.order_id,
        state
            .projected
            .map(gendan_proto::date_to_string)
            .unwrap_or_default(),
        gendan_proto::date_to_string(state.requested)
    )
}

fn cancel_work_order(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::CancelWorkOrder {
        order_id: state.order_id.clone(),
        reason: "order cancelled".to_owned(),
    };
    Outgoing::command(SERVICE, "production", &state.order_id, &command, cause)
}

fn check_capacity(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::CheckOrderCapacity {
        order_id: state.order_id.clone(),
        items: items(state),
        requested_delivery_date: gendan_proto::date_to_string(state.requested),
        earliest_start: material_date(state),
    };
    Outgoing::command(SERVICE, "production", &state.order_id, &command, cause)
}

fn confirm_order(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::ConfirmOrder {
        order_id: state.order_id.clone(),
        promised_delivery_date: gendan_proto::date_to_string(
            state.promised.unwrap_or(state.requested),
        ),
    };
    Outgoing::command(SERVICE, "orders", &state.order_id, &command, cause)
}

fn plan_work_order(state: &SagaState, cause: &Cause) -> Outgoing {
    let command = v1::PlanWorkOrder {
        order_id: state.order_id.clone(),
        items: items(state),
        earliest_start: material_date(state),
    };
    Outgoing::command(SERVICE, "production", &state.order_id, &command, cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_unique_and_gates_refer_to_steps_that_come_before() {
        let workflow = Workflow::standard(Timing::default());
        let mut seen = std::collections::HashSet::new();
        let mut earlier_phases: Vec<&str> = Vec::new();
        for phase in &workflow.phases {
            let mut earlier = Vec::new();
            for step in &phase.steps {
                assert!(seen.insert(step.name), "duplicate step {}", step.name);
                for gate in step.after {
                    // A step waits for steps before it in its phase; an early
                    // step may also wait for steps of earlier phases.
                    let known =
                        earlier.contains(gate) || (step.early && earlier_phases.contains(gate));
                    assert!(known, "{} waits for unknown {gate}", step.name);
                }
                earlier.push(step.name);
            }
            earlier_phases.extend(earlier);
        }
    }

    #[test]
    fn every_compensated_or_failing_step_sends_a_command() {
        let workflow = Workflow::standard(Timing::default());
        for (_, step) in workflow.steps() {
            if step.compensation.is_some() || !step.fails_on.is_empty() {
                assert!(
                    matches!(step.action, StepAction::Send(_) | StepAction::Await),
                    "{} has an answer but asks nobody",
                    step.name
                );
            }
            assert!(
                !step.completes_on.is_empty() || matches!(step.action, StepAction::Decide(_)),
                "{} can never complete",
                step.name
            );
        }
    }

    #[test]
    fn the_cost_budget_keeps_every_minor_unit() {
        assert_eq!(cost_budget(99), 74);
        assert_eq!(cost_budget(1_000_000), 750_000);
        assert_eq!(cost_budget(0), 0);
        assert!(cost_budget(i64::MAX) > 0);
    }

    #[test]
    fn phases_are_in_workflow_order() {
        let workflow = Workflow::standard(Timing::default());
        let order: Vec<i32> = workflow.phases.iter().map(|p| p.phase as i32).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }
}
