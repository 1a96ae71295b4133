//! What the saga keeps from each event it reacts to: the facts that move the
//! projected delivery date and the promise, or that fail a step.

use gendan_messaging::{HandlerError, Incoming};
use gendan_proto::v1;
use gendan_proto::{TypeName, date_from_str};

use crate::state::SagaState;

/// The result of an event for the step it completes.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The step's work is done.
    Completes,
    /// The answer says the step cannot succeed as asked; park the saga.
    Fails(String),
    /// The event only updates facts (progress) and completes nothing.
    Informs,
}

/// Applies `incoming` to `state`; events the saga does not care about are
/// `Informs` with no change.
pub fn apply(state: &mut SagaState, incoming: &Incoming) -> Result<Verdict, HandlerError> {
    let type_name = incoming.type_name();
    if type_name == v1::CapacityChecked::TYPE_NAME {
        let checked: v1::CapacityChecked = incoming.payload()?;
        if !checked.problem.is_empty() {
            return Ok(Verdict::Fails(format!(
                "capacity check: {}",
                checked.problem
            )));
        }
        state.projected = date(&checked.earliest_completion, "earliest_completion")?;
        Ok(Verdict::Completes)
    } else if type_name == v1::OrderConfirmed::TYPE_NAME {
        let confirmed: v1::OrderConfirmed = incoming.payload()?;
        state.promised =
            date(&confirmed.promised_delivery_date, "promised_delivery_date")?.or(state.promised);
        Ok(Verdict::Completes)
    } else if type_name == v1::WorkOrderPlanned::TYPE_NAME {
        let planned: v1::WorkOrderPlanned = incoming.payload()?;
        state.projected = date(&planned.planned_end, "planned_end")?.or(state.projected);
        Ok(Verdict::Completes)
    } else if type_name == v1::WorkOrderPlanningFailed::TYPE_NAME {
        let failed: v1::WorkOrderPlanningFailed = incoming.payload()?;
        Ok(Verdict::Fails(failed.reason))
    } else if type_name == v1::WorkOrderProgressed::TYPE_NAME {
        let progressed: v1::WorkOrderProgressed = incoming.payload()?;
        if let Some(projected) = date(&progressed.projected_end, "projected_end")? {
            state.projected = Some(projected);
        }
        Ok(Verdict::Informs)
    } else if type_name == v1::WorkOrderCompleted::TYPE_NAME {
        let completed: v1::WorkOrderCompleted = incoming.payload()?;
        state.projected = date(&completed.completed_on, "completed_on")?.or(state.projected);
        Ok(Verdict::Completes)
    } else {
        Ok(Verdict::Informs)
    }
}

/// An optional wire date; a malformed one rejects the message.
fn date(text: &str, field: &str) -> Result<Option<chrono::NaiveDate>, HandlerError> {
    if text.is_empty() {
        return Ok(None);
    }
    date_from_str(text)
        .map(Some)
        .ok_or_else(|| HandlerError::Rejected(format!("{field} {text:?} is not a YYYY-MM-DD date")))
}

/// What an answered decision means for the workflow.
#[derive(Debug, PartialEq, Eq)]
pub enum DecisionEffect {
    Continue,
    CancelOrder,
}

/// Applies the answer of a decision of `kind` to the saga.
pub fn apply_decision(state: &mut SagaState, kind: &str, answer: &str) -> DecisionEffect {
    use crate::workflow::answers;
    match (kind, answer) {
        (_, answers::CANCEL_ORDER) => DecisionEffect::CancelOrder,
        ("delivery_date", answers::ACCEPT_PROPOSED_DATE) => {
            // The customer agreed to the factory's date: it becomes the
            // promise, and the order is no longer late against it.
            state.promised = state.projected.or(state.promised);
            DecisionEffect::Continue
        }
        _ => DecisionEffect::Continue,
    }
}
