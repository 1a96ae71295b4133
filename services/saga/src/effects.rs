//! What the saga keeps from each event it reacts to: the facts that move the
//! projected delivery date and the promise, the facts later steps need
//! (material date, deposit gate, shipment dates), and whether the event
//! completes or fails the step waiting for it.

use chrono::NaiveDate;
use gendan_messaging::{HandlerError, Incoming};
use gendan_proto::v1;
use gendan_proto::{TypeName, date_from_str, date_to_string};

use crate::state::SagaState;

/// Facts kept in `sagas.facts`.
pub mod facts {
    pub const MATERIAL_DATE: &str = "material_date";
    pub const DEPOSIT_REQUIRED: &str = "deposit_required";
    /// "shipment" or "delivery": when the balance is invoiced per the terms.
    pub const BALANCE_MILESTONE: &str = "balance_milestone";
    pub const READY_DATE: &str = "ready_date";
    pub const SHIPPED_ON: &str = "shipped_on";
    pub const DELIVERED_ON: &str = "delivered_on";
    pub const FINAL_INSPECTION_FAILURES: &str = "final_inspection_failures";
}

/// Events that update facts without completing a step of their own.
pub const INFORMING: &[&str] = &[
    v1::WorkOrderProgressed::TYPE_NAME,
    v1::MaterialsDelayed::TYPE_NAME,
];

/// The result of an event for the step that waits for it.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The step's work is done.
    Completes,
    /// The answer says the step cannot succeed as asked; park the saga.
    Fails(String),
    /// The event only updates facts (progress, a delay) and completes
    /// nothing.
    Informs,
}

/// Applies `incoming` to `state`. An event without special meaning here
/// completes the step waiting for it.
pub fn apply(state: &mut SagaState, incoming: &Incoming) -> Result<Verdict, HandlerError> {
    let type_name = incoming.type_name();
    let verdict = match type_name {
        v1::MaterialsChecked::TYPE_NAME => {
            let checked: v1::MaterialsChecked = incoming.payload()?;
            if !checked.problem.is_empty() {
                return Ok(Verdict::Fails(format!(
                    "materials check: {}",
                    checked.problem
                )));
            }
            if let Some(date) = date(&checked.earliest_material_date, "earliest_material_date")? {
                state.set_fact(facts::MATERIAL_DATE, date_to_string(date));
            }
            Verdict::Completes
        }
        v1::CapacityChecked::TYPE_NAME => {
            let checked: v1::CapacityChecked = incoming.payload()?;
            if !checked.problem.is_empty() {
                return Ok(Verdict::Fails(format!(
                    "capacity check: {}",
                    checked.problem
                )));
            }
            state.projected = date(&checked.earliest_completion, "earliest_completion")?;
            Verdict::Completes
        }
        v1::OrderConfirmed::TYPE_NAME => {
            let confirmed: v1::OrderConfirmed = incoming.payload()?;
            state.promised = date(&confirmed.promised_delivery_date, "promised_delivery_date")?
                .or(state.promised);
            Verdict::Completes
        }
        v1::ReceivableOpened::TYPE_NAME => {
            let opened: v1::ReceivableOpened = incoming.payload()?;
            state.set_fact(facts::DEPOSIT_REQUIRED, opened.deposit_required);
            let on_delivery = opened
                .installments
                .iter()
                .any(|installment| installment.trigger == "on_delivery");
            let milestone = if on_delivery { "delivery" } else { "shipment" };
            state.set_fact(facts::BALANCE_MILESTONE, milestone);
            Verdict::Completes
        }
        v1::MaterialsOrdered::TYPE_NAME => {
            let ordered: v1::MaterialsOrdered = incoming.payload()?;
            if let Some(ready) = date(&ordered.expected_ready_date, "expected_ready_date")? {
                state.set_fact(facts::MATERIAL_DATE, date_to_string(ready));
            }
            Verdict::Completes
        }
        v1::MaterialsDelayed::TYPE_NAME => {
            let delayed: v1::MaterialsDelayed = incoming.payload()?;
            if let Some(ready) = date(&delayed.expected_ready_date, "expected_ready_date")? {
                shift_projection_by_material_delay(state, ready);
            }
            Verdict::Informs
        }
        v1::ProcurementFailed::TYPE_NAME => {
            let failed: v1::ProcurementFailed = incoming.payload()?;
            Verdict::Fails(failed.reason)
        }
        v1::WorkOrderPlanningFailed::TYPE_NAME => {
            let failed: v1::WorkOrderPlanningFailed = incoming.payload()?;
            Verdict::Fails(failed.reason)
        }
        v1::WorkOrderPlanned::TYPE_NAME => {
            let planned: v1::WorkOrderPlanned = incoming.payload()?;
            state.projected = date(&planned.planned_end, "planned_end")?.or(state.projected);
            Verdict::Completes
        }
        v1::WorkOrderProgressed::TYPE_NAME => {
            let progressed: v1::WorkOrderProgressed = incoming.payload()?;
            if let Some(projected) = date(&progressed.projected_end, "projected_end")? {
                state.projected = Some(projected);
            }
            Verdict::Informs
        }
        v1::WorkOrderCompleted::TYPE_NAME => {
            let completed: v1::WorkOrderCompleted = incoming.payload()?;
            if let Some(done) = date(&completed.completed_on, "completed_on")? {
                state.set_fact(facts::READY_DATE, date_to_string(done));
                state.projected = Some(done.max(state.projected.unwrap_or(done)));
            }
            Verdict::Completes
        }
        v1::FinalInspectionFailed::TYPE_NAME => {
            let failed: v1::FinalInspectionFailed = incoming.payload()?;
            state.set_fact(facts::FINAL_INSPECTION_FAILURES, failed.failures);
            Verdict::Fails(format!(
                "final inspection failed ({}), nonconformance {}: rework and re-inspect, or decide",
                failed.summary, failed.nonconformance_id
            ))
        }
        v1::PackingChecked::TYPE_NAME => {
            let checked: v1::PackingChecked = incoming.payload()?;
            if checked.matches {
                Verdict::Completes
            } else {
                Verdict::Fails(format!(
                    "packing does not match the spec: {}",
                    checked.mismatches.join("; ")
                ))
            }
        }
        v1::DocumentsRejected::TYPE_NAME => {
            let rejected: v1::DocumentsRejected = incoming.payload()?;
            Verdict::Fails(format!("documents: {}", rejected.problems.join("; ")))
        }
        v1::ShipmentBooked::TYPE_NAME => {
            let booked: v1::ShipmentBooked = incoming.payload()?;
            if let Some(eta) = date(&booked.eta, "eta")? {
                state.projected = Some(eta);
            }
            Verdict::Completes
        }
        v1::Shipped::TYPE_NAME => {
            let shipped: v1::Shipped = incoming.payload()?;
            if let Some(on) = date(&shipped.shipped_on, "shipped_on")? {
                state.set_fact(facts::SHIPPED_ON, date_to_string(on));
            }
            Verdict::Completes
        }
        v1::Delivered::TYPE_NAME => {
            let delivered: v1::Delivered = incoming.payload()?;
            if let Some(on) = date(&delivered.delivered_on, "delivered_on")? {
                state.set_fact(facts::DELIVERED_ON, date_to_string(on));
                state.projected = Some(on);
            }
            Verdict::Completes
        }
        v1::ReceivableOpeningFailed::TYPE_NAME => {
            let failed: v1::ReceivableOpeningFailed = incoming.payload()?;
            Verdict::Fails(failed.reason)
        }
        v1::PackingListFailed::TYPE_NAME => {
            let failed: v1::PackingListFailed = incoming.payload()?;
            Verdict::Fails(failed.reason)
        }
        v1::ShipmentBookingFailed::TYPE_NAME => {
            let failed: v1::ShipmentBookingFailed = incoming.payload()?;
            Verdict::Fails(failed.reason)
        }
        v1::InvoiceIssued::TYPE_NAME => {
            // Only the balance invoice answers InvoiceBalance; the deposit
            // invoice comes with the receivable.
            let issued: v1::InvoiceIssued = incoming.payload()?;
            if issued.kind == "deposit" {
                Verdict::Informs
            } else {
                Verdict::Completes
            }
        }
        _ => Verdict::Completes,
    };
    Ok(verdict)
}

/// A later material date pushes the projection out by the same delay.
fn shift_projection_by_material_delay(state: &mut SagaState, ready: NaiveDate) {
    let before = state.fact_str(facts::MATERIAL_DATE).and_then(date_from_str);
    state.set_fact(facts::MATERIAL_DATE, date_to_string(ready));
    if let (Some(before), Some(projected)) = (before, state.projected)
        && ready > before
    {
        state.projected = Some(projected + (ready - before));
    }
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

/// An optional wire date; a malformed one rejects the message.
fn date(text: &str, field: &str) -> Result<Option<NaiveDate>, HandlerError> {
    if text.is_empty() {
        return Ok(None);
    }
    date_from_str(text)
        .map(Some)
        .ok_or_else(|| HandlerError::Rejected(format!("{field} {text:?} is not a YYYY-MM-DD date")))
}
