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
    /// Event types that answer "cannot be done": the saga parks with the
    /// reason the event gives.
    pub fails_on: &'static [&'static str],
    pub on_timeout: OnTimeout,
    /// A step that only runs when this holds when it would start; otherwise
    /// it is skipped as not needed.
    pub when: Option<fn(&SagaState) -> bool>,
    pub compensation: Option<CompensationDef>,
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
    /// received → review (capacity check; a delivery-date clarification
    /// when the factory cannot make the requested date; confirmation) →
    /// confirmed (production planning) → production (until the MES reports
    /// completion).
    pub fn standard(timing: Timing) -> Self {
        let resend = OnTimeout::Resend {
            after: timing.command_timeout,
            max_attempts: timing.max_attempts,
        };
        let remind = OnTimeout::Resend {
            after: timing.decision_timeout,
            max_attempts: timing.decision_reminders + 1,
        };
        let step = |name, after, action, completes_on, on_timeout| StepDef {
            name,
            after,
            action,
            completes_on,
            fails_on: &[],
            on_timeout,
            when: None,
            compensation: None,
        };
        Workflow {
            phases: vec![
                PhaseDef {
                    phase: Phase::Review,
                    steps: vec![
                        step(
                            "capacity_check",
                            &[],
                            StepAction::Send(check_capacity),
                            v1::CapacityChecked::TYPE_NAME,
                            resend,
                        ),
                        StepDef {
                            when: Some(requested_date_at_risk),
                            ..step(
                                "clarify_delivery_date",
                                &["capacity_check"],
                                StepAction::Decide(DecisionSpec {
                                    kind: "delivery_date",
                                    question: delivery_date_question,
                                    options: &[
                                        answers::ACCEPT_PROPOSED_DATE,
                                        answers::KEEP_REQUESTED_DATE,
                                        answers::CANCEL_ORDER,
                                    ],
                                }),
                                "",
                                remind,
                            )
                        },
                        step(
                            "confirm_order",
                            &["clarify_delivery_date"],
                            StepAction::Send(confirm_order),
                            v1::OrderConfirmed::TYPE_NAME,
                            resend,
                        ),
                    ],
                },
                PhaseDef {
                    phase: Phase::Confirmed,
                    steps: vec![StepDef {
                        fails_on: &[v1::WorkOrderPlanningFailed::TYPE_NAME],
                        compensation: Some(CompensationDef {
                            action: "cancel_work_order",
                            command: cancel_work_order,
                            completes_on: v1::WorkOrderCancelled::TYPE_NAME,
                        }),
                        ..step(
                            "plan_production",
                            &[],
                            StepAction::Send(plan_work_order),
                            v1::WorkOrderPlanned::TYPE_NAME,
                            resend,
                        )
                    }],
                },
                PhaseDef {
                    phase: Phase::Production,
                    steps: vec![step(
                        "production_completed",
                        &[],
                        StepAction::Await,
                        v1::WorkOrderCompleted::TYPE_NAME,
                        OnTimeout::FlagOverdue,
                    )],
                },
            ],
        }
    }

    /// Every event type some step or compensation waits for.
    pub fn awaits(&self, type_name: &str) -> bool {
        self.steps().any(|(_, step)| {
            step.completes_on == type_name
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
        earliest_start: String::new(),
    };
    Outgoing::command(SERVICE, "production", &state.order_id, &command, cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_unique_and_gates_refer_to_earlier_steps_of_the_phase() {
        let workflow = Workflow::standard(Timing::default());
        let mut seen = std::collections::HashSet::new();
        for phase in &workflow.phases {
            let mut earlier = Vec::new();
            for step in &phase.steps {
                assert!(seen.insert(step.name), "duplicate step {}", step.name);
                for gate in step.after {
                    assert!(
                        earlier.contains(gate),
                        "{} waits for unknown {gate}",
                        step.name
                    );
                }
                earlier.push(step.name);
            }
        }
    }

    #[test]
    fn phases_are_in_workflow_order() {
        let workflow = Workflow::standard(Timing::default());
        let order: Vec<i32> = workflow.phases.iter().map(|p| p.phase as i32).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }
}
