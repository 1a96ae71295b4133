//! What the review's cost answers teach the saga: each department's part
//! of the estimate (the material cost from the materials check, the routing
//! hours from the capacity check, the freight quote, the inspection
//! sample) and finance's estimate with its margin and the customer's
//! credit, kept as [`CostFacts`](crate::facts::CostFacts) for the
//! `estimate_costs` command and the margin decision.

use gendan_messaging::{HandlerError, Incoming};
use gendan_proto::TypeName;
use gendan_proto::v1;

use super::{Answer, Verdict, revision};
use crate::facts::{CostEstimate, CostFacts, FreightQuote, Money};
use crate::state::SagaState;

/// The material cost of the answer that completes the materials check
/// (a repeat after it is settled changes nothing the estimate used).
pub(super) fn materials_checked(costs: &mut CostFacts, checked: &v1::MaterialsChecked) {
    costs.material_cost = checked
        .material_cost
        .iter()
        .map(Money::from_proto)
        .collect();
    costs.uncosted_materials = checked.uncosted_materials.clone();
}

/// The routing hours of the answer that completes the capacity check.
pub(super) fn capacity_checked(costs: &mut CostFacts, checked: &v1::CapacityChecked) {
    costs.hours_by_work_centre = checked
        .hours_by_work_centre
        .iter()
        .map(|(centre, hours)| (centre.clone(), *hours))
        .collect();
}

/// The answers of the estimating steps (`quote_freight`,
/// `estimate_inspection`, `estimate_costs`), each with the revision of the
/// review it answers: an amendment's review estimates again, and an answer
/// to the review before it completes nothing (its facts are dropped with
/// it).
pub(super) fn answer(state: &mut SagaState, incoming: &Incoming) -> Result<Answer, HandlerError> {
    let costs = &mut state.facts.costs;
    let answer = match incoming.type_name() {
        v1::FreightQuoted::TYPE_NAME => {
            let quoted: v1::FreightQuoted = incoming.payload()?;
            // A quote without a lane still completes its step: the
            // estimate goes on without freight and says what is missing.
            costs.freight = Some(FreightQuote {
                amount_minor: quoted.freight_cost_minor,
                currency: quoted.currency,
                lane_code: quoted.lane_code,
                problem: quoted.problem,
            });
            Answer {
                revision: revision(quoted.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::InspectionEstimated::TYPE_NAME => {
            let estimated: v1::InspectionEstimated = incoming.payload()?;
            costs.inspection_sample_units = estimated.sample_units;
            Answer {
                revision: revision(estimated.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::CostsEstimated::TYPE_NAME => {
            let estimated: v1::CostsEstimated = incoming.payload()?;
            let Some(estimate) = estimated.estimate.as_ref() else {
                return Err(HandlerError::Rejected(
                    "CostsEstimated without an estimate".into(),
                ));
            };
            let mut kept = CostEstimate::from_proto(estimate);
            if estimated.revision > 0 {
                kept.revision = estimated.revision;
            }
            if kept.currency.is_empty() {
                kept.currency = state.order.currency.clone();
            }
            state.facts.costs.estimate = Some(kept);
            Answer {
                revision: revision(estimated.revision),
                ..Verdict::Completes.into()
            }
        }
        v1::CostEstimateFailed::TYPE_NAME => {
            // A cost with no exchange rate into the order currency: the
            // step parks until an operator has set the rate and retries.
            let failed: v1::CostEstimateFailed = incoming.payload()?;
            Answer {
                revision: revision(failed.revision),
                ..Verdict::Fails(format!("cost estimate: {}", failed.reason)).into()
            }
        }
        v1::CostLedgerClosed::TYPE_NAME => {
            // Kept for close_order, which hands the figures to orders.
            let closed: v1::CostLedgerClosed = incoming.payload()?;
            costs.ledger_closed = Some(prost::Message::encode_to_vec(&closed));
            Verdict::Completes.into()
        }
        _ => Verdict::Informs.into(),
    };
    Ok(answer)
}
