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
}

#[derive(Debug, Clone, Copy)]
pub enum OnTimeout {
    /// Re-send the (idempotent) command after `after`, doubling each time;
    /// after `max_attempts` sends park the saga as stalled.
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
    /// Fully qualified type of the event that completes the step.
    pub completes_on: &'static str,
    pub on_timeout: OnTimeout,
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
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            command_timeout: Duration::from_secs(30),
            max_attempts: 5,
        }
    }
}

impl Workflow {
    /// received → review (capacity check, confirmation) → confirmed
    /// (production planning) → production (until the MES reports completion).
    pub fn standard(timing: Timing) -> Self {
        let resend = OnTimeout::Resend {
            after: timing.command_timeout,
            max_attempts: timing.max_attempts,
        };
        Workflow {
            phases: vec![
                PhaseDef {
                    phase: Phase::Review,
                    steps: vec![
                        StepDef {
                            name: "capacity_check",
                            after: &[],
                            action: StepAction::Send(check_capacity),
                            completes_on: v1::CapacityChecked::TYPE_NAME,
                            on_timeout: resend,
                        },
                        StepDef {
                            name: "confirm_order",
                            after: &["capacity_check"],
                            action: StepAction::Send(confirm_order),
                            completes_on: v1::OrderConfirmed::TYPE_NAME,
                            on_timeout: resend,
                        },
                    ],
                },
                PhaseDef {
                    phase: Phase::Confirmed,
                    steps: vec![StepDef {
                        name: "plan_production",
                        after: &[],
                        action: StepAction::Send(plan_work_order),
                        completes_on: v1::WorkOrderPlanned::TYPE_NAME,
                        on_timeout: resend,
                    }],
                },
                PhaseDef {
                    phase: Phase::Production,
                    steps: vec![StepDef {
                        name: "production_completed",
                        after: &[],
                        action: StepAction::Await,
                        completes_on: v1::WorkOrderCompleted::TYPE_NAME,
                        on_timeout: OnTimeout::FlagOverdue,
                    }],
                },
            ],
        }
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
