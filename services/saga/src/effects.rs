//! What the saga keeps from each event it reacts to: the facts that move the
//! projected delivery date and the promise, the facts later steps need
//! (material date, deposit gate, shipment dates, the nonconformance to
//! rework), and the event's verdict for the step waiting for it — with the
//! revision it answers, so an answer to an earlier run of a step that has
//! run again is kept as a fact but completes nothing. [`costs`] keeps what
//! the review's cost estimate is made of and the estimate itself;
//! [`calendar`] what each event says about the order's milestones.

use chrono::NaiveDate;
use gendan_messaging::{HandlerError, Incoming};
use gendan_proto::v1;
use gendan_proto::{TypeName, date_from_str};

use crate::facts::{BalanceMilestone, ClaimFact, ClaimedBy, Goods};
use crate::state::SagaState;

pub mod calendar;
mod costs;

/// Events that update facts or the register without completing a step.
pub const INFORMING: &[&str] = &[
    v1::WorkOrderProgressed::TYPE_NAME,
    v1::MaterialsDelayed::TYPE_NAME,
    v1::CostOverrun::TYPE_NAME,
    v1::ExchangeRateMissing::TYPE_NAME,
    v1::CostsConverted::TYPE_NAME,
    v1::PaymentReminder::TYPE_NAME,
    v1::WorkOrderRescheduled::TYPE_NAME,
    v1::StatusReported::TYPE_NAME,
    // Dates for the order's calendar (`calendar`).
    v1::TrackingUpdated::TYPE_NAME,
    v1::InProcessInspectionPassed::TYPE_NAME,
    v1::PaymentDueExtended::TYPE_NAME,
    v1::PaymentReceived::TYPE_NAME,
];

/// The result of an event for the step that waits for it.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The step's work is done.
    Completes,
    /// The answer says the step cannot succeed as asked; the step's
    /// failure policy decides what follows.
    Fails(String),
    /// The event only updates facts (progress, a delay) and completes
    /// nothing.
    Informs,
}

/// A verdict, the revision of the step's run it answers (`None` when the
/// event does not say), and the one step it is for when several steps wait
/// for the same event type (a deposit's escalation, not the balance's).
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub verdict: Verdict,
    pub revision: Option<u32>,
    pub step: Option<&'static str>,
    /// What the answer is about when its step can ask several questions at
    /// once (a claim id): one question per subject.
    pub subject: Option<String>,
}

impl From<Verdict> for Answer {
    fn from(verdict: Verdict) -> Self {
        Answer {
            verdict,
            revision: None,
            step: None,
            subject: None,
        }
    }
}

fn revision(revision: u32) -> Option<u32> {
    (revision > 0).then_some(revision)
}

/// Applies `incoming` to `state`. An event without special meaning here
/// completes the step waiting for it.
pub fn apply(state: &mut SagaState, incoming: &Incoming) -> Result<Answer, HandlerError> {
    // How far along the events stream the order's story has been seen:
    // finance closes the cost ledger once its costs consumer got as far.
    let seen = &mut state.facts.costs.events_through;
    *seen = (*seen).max(incoming.stream_sequence);
    let facts = &mut state.facts;
    let answer: Answer = match incoming.type_name() {
        v1::MaterialsChecked::TYPE_NAME => {
            let checked: v1::MaterialsChecked = incoming.payload()?;
            if !checked.problem.is_empty() {
                return Ok(Verdict::Fails(format!("materials check: {}", checked.problem)).into());
            }
            if let Some(date) = date(&checked.earliest_material_date, "earliest_material_date")? {
                state.facts.material_date = Some(date);
            }
            // The estimate is made of what the completing answer said; a
            // repeat after the check is settled changes none of it.
            if !state.step("check_materials").status.is_finished() {
                costs::materials_checked(&mut state.facts.costs, &checked);
            }
            Verdict::Completes.into()
        }
        v1::CapacityChecked::TYPE_NAME => {
            let checked: v1::CapacityChecked = incoming.payload()?;
            if !checked.problem.is_empty() {
                return Ok(Answer {
                    revision: revision(checked.revision),
                    ..Verdict::Fails(format!("capacity check: {}", checked.problem)).into()
                });
            }
            // A second answer to a re-sent check (a new computation) must not
            // move the date the customer was asked about once it is settled.
            if !state.step("capacity_check").status.is_finished() {
                state.projected = date(&checked.earliest_completion, "earliest_completion")?;
                costs::capacity_checked(&mut state.facts.costs, &checked);
            }
            // The answer to an earlier check (before an amendment asked
            // again) is history.
            Answer {
                revision: revision(checked.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::FreightQuoted::TYPE_NAME
        | v1::InspectionEstimated::TYPE_NAME
        | v1::CostsEstimated::TYPE_NAME
        | v1::CostEstimateFailed::TYPE_NAME
        | v1::CostLedgerClosed::TYPE_NAME => costs::answer(state, incoming)?,
        v1::OrderConfirmed::TYPE_NAME => {
            let confirmed: v1::OrderConfirmed = incoming.payload()?;
            state.promised = date(&confirmed.promised_delivery_date, "promised_delivery_date")?
                .or(state.promised);
            Answer {
                revision: revision(confirmed.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::ReceivableOpened::TYPE_NAME => {
            let opened: v1::ReceivableOpened = incoming.payload()?;
            facts.deposit_required = opened.deposit_required;
            let on_delivery = opened.installments.iter().any(|installment| {
                match installment.payment_trigger() {
                    v1::PaymentTrigger::OnDelivery => true,
                    // A producer that predates the enum says it in words.
                    v1::PaymentTrigger::Unspecified => installment.trigger == "on_delivery",
                    _ => false,
                }
            });
            facts.balance_milestone = if on_delivery {
                BalanceMilestone::Delivery
            } else {
                BalanceMilestone::Shipment
            };
            Answer {
                revision: revision(opened.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::MaterialsOrdered::TYPE_NAME => {
            let ordered: v1::MaterialsOrdered = incoming.payload()?;
            if let Some(ready) = date(&ordered.expected_ready_date, "expected_ready_date")? {
                facts.material_date = Some(ready);
            }
            // The remake's materials are bought: later revisions adjust.
            if facts
                .remake_procurement
                .is_some_and(|remake| ordered.revision >= remake)
            {
                facts.remake_procurement = None;
            }
            Answer {
                revision: revision(ordered.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::MaterialsDelayed::TYPE_NAME => {
            let delayed: v1::MaterialsDelayed = incoming.payload()?;
            if let Some(ready) = date(&delayed.expected_ready_date, "expected_ready_date")? {
                shift_projection_by_material_delay(state, ready);
            }
            Verdict::Informs.into()
        }
        v1::ProcurementFailed::TYPE_NAME => {
            let failed: v1::ProcurementFailed = incoming.payload()?;
            Verdict::Fails(failed.reason).into()
        }
        v1::WorkOrderPlanningFailed::TYPE_NAME => {
            let failed: v1::WorkOrderPlanningFailed = incoming.payload()?;
            Verdict::Fails(failed.reason).into()
        }
        v1::WorkOrderPlanned::TYPE_NAME => {
            let planned: v1::WorkOrderPlanned = incoming.payload()?;
            state.projected = date(&planned.planned_end, "planned_end")?.or(state.projected);
            Answer {
                revision: revision(planned.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::WorkOrderProgressed::TYPE_NAME => {
            let progressed: v1::WorkOrderProgressed = incoming.payload()?;
            if let Some(projected) = date(&progressed.projected_end, "projected_end")? {
                state.projected = Some(projected);
            }
            Verdict::Informs.into()
        }
        v1::WorkOrderCompleted::TYPE_NAME => {
            let completed: v1::WorkOrderCompleted = incoming.payload()?;
            if let Some(done) = date(&completed.completed_on, "completed_on")? {
                facts.ready_date = Some(done);
                state.projected = Some(done.max(state.projected.unwrap_or(done)));
            }
            Answer {
                revision: revision(completed.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::ReworkPlanned::TYPE_NAME => {
            let planned: v1::ReworkPlanned = incoming.payload()?;
            if let Some(end) = date(&planned.planned_end, "planned_end")? {
                state.projected = Some(end.max(state.projected.unwrap_or(end)));
            }
            Answer {
                revision: revision(planned.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::ReworkCompleted::TYPE_NAME => {
            let completed: v1::ReworkCompleted = incoming.payload()?;
            if let Some(done) = date(&completed.completed_on, "completed_on")? {
                facts.ready_date = Some(done);
            }
            Answer {
                revision: revision(completed.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::FinalInspectionOpened::TYPE_NAME => {
            let opened: v1::FinalInspectionOpened = incoming.payload()?;
            Answer {
                revision: revision(opened.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::FinalInspectionPassed::TYPE_NAME => {
            let passed: v1::FinalInspectionPassed = incoming.payload()?;
            facts.open_nonconformance = None;
            Answer {
                revision: revision(passed.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::FinalInspectionFailed::TYPE_NAME => {
            let failed: v1::FinalInspectionFailed = incoming.payload()?;
            facts.final_inspection_failures = failed.failures.max(facts.final_inspection_failures);
            facts.open_nonconformance = Some(failed.nonconformance_id.clone());
            facts.defective_units = failed.defective_units;
            Answer {
                revision: revision(failed.revision),
                ..Verdict::Fails(format!(
                    "final inspection failed ({}), nonconformance {}",
                    failed.summary, failed.nonconformance_id
                ))
                .into()
            }
        }
        v1::PackingChecked::TYPE_NAME => {
            let checked: v1::PackingChecked = incoming.payload()?;
            let verdict = if checked.matches {
                Verdict::Completes
            } else {
                Verdict::Fails(format!(
                    "packing does not match the spec: {}",
                    checked.mismatches.join("; ")
                ))
            };
            Answer {
                revision: revision(checked.revision),
                ..verdict.into()
            }
        }
        v1::MaterialsReady::TYPE_NAME => {
            let ready: v1::MaterialsReady = incoming.payload()?;
            Answer {
                revision: revision(ready.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::PackingListReady::TYPE_NAME => {
            let ready: v1::PackingListReady = incoming.payload()?;
            Answer {
                revision: revision(ready.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::DocumentsReady::TYPE_NAME => {
            let ready: v1::DocumentsReady = incoming.payload()?;
            Answer {
                revision: revision(ready.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::DocumentsRejected::TYPE_NAME => {
            let rejected: v1::DocumentsRejected = incoming.payload()?;
            Verdict::Fails(format!("documents: {}", rejected.problems.join("; "))).into()
        }
        v1::ShipmentBooked::TYPE_NAME => {
            let booked: v1::ShipmentBooked = incoming.payload()?;
            if let Some(eta) = date(&booked.eta, "eta")? {
                state.projected = Some(eta);
            }
            if !booked.booking_reference.is_empty() {
                state.facts.booking_reference = Some(booked.booking_reference.clone());
            }
            Answer {
                revision: revision(booked.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::ShipmentLate::TYPE_NAME => {
            let late: v1::ShipmentLate = incoming.payload()?;
            Answer {
                revision: revision(late.revision),
                ..Verdict::Fails(format!(
                    "the goods did not leave by the booked ETD {} (booking {}, {} days late); re-booking",
                    late.etd, late.booking_reference, late.days_late
                ))
                .into()
            }
        }
        v1::Shipped::TYPE_NAME => {
            let shipped: v1::Shipped = incoming.payload()?;
            if let Some(on) = date(&shipped.shipped_on, "shipped_on")? {
                facts.shipped_on = Some(on);
            }
            Answer {
                revision: revision(shipped.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::Delivered::TYPE_NAME => {
            let delivered: v1::Delivered = incoming.payload()?;
            if let Some(on) = date(&delivered.delivered_on, "delivered_on")? {
                facts.delivered_on = Some(on);
                state.projected = Some(on);
            }
            Answer {
                revision: revision(delivered.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::ClaimResolved::TYPE_NAME => {
            // Only the claim whose goods were made good completes the
            // redelivery; a claim resolved otherwise is news for orders.
            let resolved: v1::ClaimResolved = incoming.payload()?;
            let claim_id = resolved.claim.map(|c| c.claim_id).unwrap_or_default();
            let ours = facts
                .redelivery
                .as_ref()
                .is_some_and(|r| r.claim_id == claim_id);
            if ours {
                facts.redelivery = None;
                Verdict::Completes.into()
            } else {
                Verdict::Informs.into()
            }
        }
        v1::ReceivableOpeningFailed::TYPE_NAME => {
            let failed: v1::ReceivableOpeningFailed = incoming.payload()?;
            Verdict::Fails(failed.reason).into()
        }
        v1::PackingListFailed::TYPE_NAME => {
            let failed: v1::PackingListFailed = incoming.payload()?;
            Verdict::Fails(failed.reason).into()
        }
        v1::ShipmentBookingFailed::TYPE_NAME => {
            let failed: v1::ShipmentBookingFailed = incoming.payload()?;
            Verdict::Fails(failed.reason).into()
        }
        v1::InvoiceIssued::TYPE_NAME => {
            // Only the balance invoice answers InvoiceBalance; the deposit
            // invoice comes with the receivable.
            let issued: v1::InvoiceIssued = incoming.payload()?;
            let deposit = match issued.invoice_kind() {
                v1::InvoiceKind::Deposit => true,
                v1::InvoiceKind::Unspecified => issued.kind == "deposit",
                _ => false,
            };
            if deposit {
                Verdict::Informs.into()
            } else {
                Verdict::Completes.into()
            }
        }
        v1::WorkOrderRescheduled::TYPE_NAME => {
            let moved: v1::WorkOrderRescheduled = incoming.payload()?;
            let before = date(&moved.previous_end, "previous_end")?;
            let after = date(&moved.projected_end, "projected_end")?;
            // Everything after production moves with it.
            if let (Some(before), Some(after), Some(projected)) = (before, after, state.projected) {
                state.projected = Some(projected + (after - before));
            }
            Verdict::Informs.into()
        }
        v1::PaymentEscalated::TYPE_NAME => {
            let escalated: v1::PaymentEscalated = incoming.payload()?;
            let step = match escalated.invoice_kind() {
                v1::InvoiceKind::Deposit => "deposit_received",
                _ => "paid_in_full",
            };
            Answer {
                step: Some(step),
                ..Verdict::Fails(format!(
                    "invoice {} unpaid {} days after its due date {} ({} reminders)",
                    escalated.invoice_id,
                    escalated.days_overdue,
                    escalated.due_date,
                    escalated.reminders
                ))
                .into()
            }
        }
        v1::PurchaseOrderLate::TYPE_NAME => {
            let late: v1::PurchaseOrderLate = incoming.payload()?;
            let what = if late.lateness == "unconfirmed" {
                "has not confirmed"
            } else {
                "has not delivered"
            };
            // One question per late purchase order.
            Answer {
                subject: Some(late.purchase_order_id.clone()),
                ..Verdict::Fails(format!(
                    "supplier {} {what} purchase order {} ({}) due {}, {} days late",
                    late.supplier,
                    late.purchase_order_id,
                    late.material,
                    late.due_date,
                    late.days_late
                ))
                .into()
            }
        }
        v1::ClaimRaised::TYPE_NAME => {
            let raised: v1::ClaimRaised = incoming.payload()?;
            let claim = raised
                .claim
                .ok_or_else(|| HandlerError::Rejected("ClaimRaised without a claim".into()))?;
            facts.claims.insert(
                claim.claim_id.clone(),
                ClaimFact {
                    product: claim.product.clone(),
                    quantity: claim.quantity,
                    value_minor: claim.value_minor,
                    claimed_by: ClaimedBy::Customer,
                    goods: vec![Goods {
                        product: claim.product.clone(),
                        quantity: claim.quantity,
                    }],
                },
            );
            let kind = v1::ClaimKind::try_from(claim.kind)
                .map(|k| {
                    k.as_str_name()
                        .trim_start_matches("CLAIM_KIND_")
                        .to_lowercase()
                })
                .unwrap_or_else(|_| "unknown".to_owned());
            Answer {
                subject: Some(claim.claim_id.clone()),
                ..Verdict::Fails(format!(
                    "{} claims {} of {} {}: {}",
                    claim.raised_by, kind, claim.quantity, claim.product, claim.description
                ))
                .into()
            }
        }
        v1::CargoClaimOpened::TYPE_NAME => {
            let claim: v1::CargoClaimOpened = incoming.payload()?;
            // A claim on an earlier shipment than the one under way (the
            // goods first delivered, while a claim's redelivery travels) is
            // the carrier's business with logistics, not this step's.
            let current = state.facts.booking_reference.as_deref();
            let replaced = state.facts.redelivery.as_ref().is_some_and(|r| {
                r.replaces_booking.as_deref() == Some(claim.booking_reference.as_str())
            });
            if replaced || current.is_some_and(|current| current != claim.booking_reference) {
                return Ok(Verdict::Informs.into());
            }
            // A carrier claim names units, not lines: they are shared among
            // the products that travelled (a redelivery's own goods, or the
            // order's lines) and valued at their prices.
            let travelled: Vec<Goods> = match &state.facts.redelivery {
                Some(redelivery) => redelivery.goods.clone(),
                None => state
                    .order
                    .lines
                    .iter()
                    .map(|line| Goods {
                        product: line.product.clone(),
                        quantity: line.quantity,
                    })
                    .collect(),
            };
            let goods = crate::shares::apportion(&travelled, claim.quantity);
            let value_minor = goods
                .iter()
                .map(|g| {
                    let price = state
                        .order
                        .lines
                        .iter()
                        .find(|line| line.product == g.product)
                        .map_or(0, |line| line.unit_price_minor);
                    price.saturating_mul(i64::from(g.quantity))
                })
                .fold(0i64, i64::saturating_add);
            state.facts.claims.insert(
                claim.claim_id.clone(),
                ClaimFact {
                    product: "(shipment)".to_owned(),
                    quantity: claim.quantity,
                    value_minor,
                    claimed_by: ClaimedBy::Carrier,
                    goods,
                },
            );
            Answer {
                subject: Some(claim.claim_id.clone()),
                ..Verdict::Fails(format!(
                    "the carrier {} {} units (booking {}): {}; carrier claim {}",
                    if claim.kind == "lost" {
                        "lost"
                    } else {
                        "damaged"
                    },
                    claim.quantity,
                    claim.booking_reference,
                    claim.description,
                    claim.claim_id
                ))
                .into()
            }
        }
        // News for the register (`crate::exceptions::note_event`), and
        // dates only the calendar keeps.
        v1::CostOverrun::TYPE_NAME
        | v1::ExchangeRateMissing::TYPE_NAME
        | v1::CostsConverted::TYPE_NAME
        | v1::PaymentReminder::TYPE_NAME
        | v1::TrackingUpdated::TYPE_NAME
        | v1::InProcessInspectionPassed::TYPE_NAME
        | v1::PaymentDueExtended::TYPE_NAME => Verdict::Informs.into(),
        v1::StatusReported::TYPE_NAME => {
            // The owner of an overdue wait says where things stand: the
            // step's visible cause until its fact arrives.
            let reported: v1::StatusReported = incoming.payload()?;
            let source = incoming.envelope.source.clone();
            if let Some(step) = state.steps.get_mut(&reported.step)
                && !step.status.is_finished()
            {
                step.last_error = Some(format!("{source}: {}", reported.status));
                state.dirty_steps.insert(reported.step.clone());
            }
            Verdict::Informs.into()
        }
        _ => Verdict::Completes.into(),
    };
    Ok(answer)
}

/// A later material date pushes the projection out by the same delay.
fn shift_projection_by_material_delay(state: &mut SagaState, ready: NaiveDate) {
    let before = state.facts.material_date.replace(ready);
    if let (Some(before), Some(projected)) = (before, state.projected)
        && ready > before
    {
        state.projected = Some(projected + (ready - before));
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
