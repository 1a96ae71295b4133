//! The questions the standard workflow asks a person, each with the
//! answers it accepts and what every answer does (see [`super::Effect`]): a
//! new kind of decision is an entry here and a place in the table
//! ([`super::standard`]) that asks it.

use gendan_proto::v1::{self, Department, ExceptionKind};

use super::commands::*;
use super::reruns::{REMAKE, REPLACE_CLAIMED, REWORK_CLAIMED};
use super::{DecisionOption, DecisionSpec, Effect, FactChange};
use crate::facts::{CostEstimate, describe};
use crate::state::SagaState;

/// Answers of the decisions below.
pub mod answers {
    pub const ACCEPT_PROPOSED_DATE: &str = "accept_proposed_date";
    pub const KEEP_REQUESTED_DATE: &str = "keep_requested_date";
    pub const CANCEL_ORDER: &str = "cancel_order";
    pub const CONCESSION: &str = "concession";
    pub const SCRAP_AND_REMAKE: &str = "scrap_and_remake";
    pub const KEEP_WAITING: &str = "keep_waiting";
    pub const RELEASE_PRODUCTION: &str = "release_production";
    pub const REFER_TO_COLLECTION: &str = "refer_to_collection";
    pub const WAIT_FOR_SUPPLIER: &str = "wait_for_supplier";
    pub const RESOURCE: &str = "resource_from_next_supplier";
    pub const CREDIT_NOTE: &str = "credit_note";
    pub const REJECT_CLAIM: &str = "reject_claim";
    pub const REPLACEMENT: &str = "replacement";
    pub const REWORK: &str = "rework";
    pub const WAIT_FOR_GOODS: &str = "wait_for_goods";
    pub const ACCEPT_AT_LOSS: &str = "accept_at_loss";
    pub const RE_QUOTE: &str = "re_quote";
    pub const REJECT: &str = "reject";
}

/// Every decision the standard workflow asks.
pub static DECISIONS: &[&DecisionSpec] = &[
    &DELIVERY_DATE,
    &FINAL_INSPECTION,
    &DEPOSIT_OVERDUE,
    &BALANCE_OVERDUE,
    &SUPPLIER_LATE,
    &CLAIM_RESOLUTION,
    &CARGO_CLAIM,
    &MARGIN,
];

/// The review's estimate leaves less margin than the customer's floor,
/// costs more than the order is worth, or would take what the customer
/// owes past its credit limit: take the order as it is, re-quote (sales
/// agrees a new price or a smaller order with the customer; the amendment
/// reviews it again), or reject it.
pub static MARGIN: DecisionSpec = DecisionSpec {
    kind: v1::DecisionKind::Margin,
    name: "margin",
    question: margin_question,
    options: &[
        DecisionOption {
            answer: answers::ACCEPT_AT_LOSS,
            effects: &[Effect::Complete],
        },
        DecisionOption {
            answer: answers::RE_QUOTE,
            effects: &[Effect::AwaitAmendment],
        },
        DecisionOption {
            answer: answers::REJECT,
            effects: &[Effect::CancelOrder],
        },
    ],
    // Sales owns the price (orders): only they can re-quote or take the
    // order at a thin margin or over the limit; finance measured both. One
    // record kind for both: the question says which applies.
    exception: Some((ExceptionKind::BelowMargin, Department::Orders)),
};

/// The carrier lost or damaged the cargo (a carrier claim is on record):
/// credit the customer for it and go on as delivered, make the goods again
/// and ship them (a replacement shipment; done once delivered), or wait for
/// the goods.
pub static CARGO_CLAIM: DecisionSpec = DecisionSpec {
    kind: v1::DecisionKind::CargoClaim,
    name: "cargo_claim",
    question: cargo_question,
    options: &[
        DecisionOption {
            answer: answers::CREDIT_NOTE,
            effects: &[Effect::Send(issue_credit_note), Effect::Complete],
        },
        DecisionOption {
            answer: answers::REPLACEMENT,
            effects: &[
                Effect::Fact(FactChange::ReplaceClaimed),
                Effect::Reopen {
                    steps: REPLACE_CLAIMED,
                    reset_failures: true,
                },
            ],
        },
        DecisionOption {
            answer: answers::WAIT_FOR_GOODS,
            effects: &[Effect::KeepWaiting],
        },
    ],
    exception: None,
};

/// A customer claim on delivered goods, one question per claim. Acceptance
/// completes when the last claim is resolved (orders then accepts).
pub static CLAIM_RESOLUTION: DecisionSpec = DecisionSpec {
    kind: v1::DecisionKind::ClaimResolution,
    name: "claim_resolution",
    question: claim_question,
    options: &[
        DecisionOption {
            answer: answers::CREDIT_NOTE,
            effects: &[
                Effect::Send(issue_credit_note),
                Effect::Send(resolve_claim_by_credit),
                Effect::KeepWaiting,
            ],
        },
        DecisionOption {
            answer: answers::REPLACEMENT,
            effects: &[
                Effect::Fact(FactChange::ReplaceClaimed),
                Effect::Reopen {
                    steps: REPLACE_CLAIMED,
                    reset_failures: true,
                },
                Effect::KeepWaiting,
            ],
        },
        DecisionOption {
            answer: answers::REWORK,
            effects: &[
                Effect::Fact(FactChange::ReworkClaimed),
                Effect::Reopen {
                    steps: REWORK_CLAIMED,
                    reset_failures: true,
                },
                Effect::KeepWaiting,
            ],
        },
        DecisionOption {
            answer: answers::REJECT_CLAIM,
            effects: &[Effect::Send(reject_claim), Effect::KeepWaiting],
        },
    ],
    exception: None,
};

/// The deposit was reminded on every day of the dunning schedule.
pub static DEPOSIT_OVERDUE: DecisionSpec = DecisionSpec {
    kind: v1::DecisionKind::DepositOverdue,
    name: "deposit_overdue",
    question: deposit_question,
    options: &[
        DecisionOption {
            answer: answers::KEEP_WAITING,
            effects: &[Effect::Send(extend_deposit_due), Effect::KeepWaiting],
        },
        DecisionOption {
            answer: answers::RELEASE_PRODUCTION,
            effects: &[Effect::Complete],
        },
        DecisionOption {
            answer: answers::CANCEL_ORDER,
            effects: &[Effect::CancelOrder],
        },
    ],
    exception: None,
};

/// The balance was reminded on every day of the dunning schedule.
pub static BALANCE_OVERDUE: DecisionSpec = DecisionSpec {
    kind: v1::DecisionKind::BalanceOverdue,
    name: "balance_overdue",
    question: balance_question,
    options: &[
        DecisionOption {
            answer: answers::KEEP_WAITING,
            effects: &[Effect::Send(extend_balance_due), Effect::KeepWaiting],
        },
        DecisionOption {
            answer: answers::REFER_TO_COLLECTION,
            effects: &[Effect::Send(refer_to_collection), Effect::KeepWaiting],
        },
    ],
    exception: None,
};

/// A supplier missed its confirmation or delivery.
pub static SUPPLIER_LATE: DecisionSpec = DecisionSpec {
    kind: v1::DecisionKind::SupplierLate,
    name: "supplier_late",
    question: supplier_question,
    options: &[
        DecisionOption {
            answer: answers::WAIT_FOR_SUPPLIER,
            effects: &[Effect::Send(accept_supplier_delay), Effect::KeepWaiting],
        },
        DecisionOption {
            answer: answers::RESOURCE,
            effects: &[Effect::Send(resource_materials), Effect::KeepWaiting],
        },
        DecisionOption {
            answer: answers::CANCEL_ORDER,
            effects: &[Effect::CancelOrder],
        },
    ],
    exception: None,
};

/// The factory's earliest date is after the requested one.
pub static DELIVERY_DATE: DecisionSpec = DecisionSpec {
    kind: v1::DecisionKind::DeliveryDate,
    name: "delivery_date",
    question: delivery_date_question,
    options: &[
        DecisionOption {
            answer: answers::ACCEPT_PROPOSED_DATE,
            effects: &[Effect::Fact(FactChange::PromiseProjected), Effect::Complete],
        },
        DecisionOption {
            answer: answers::KEEP_REQUESTED_DATE,
            effects: &[Effect::Complete],
        },
        DecisionOption {
            answer: answers::CANCEL_ORDER,
            effects: &[Effect::CancelOrder],
        },
    ],
    exception: Some((ExceptionKind::DeliveryDateClarification, Department::Orders)),
};

/// Final inspection failed as often as allowed.
pub static FINAL_INSPECTION: DecisionSpec = DecisionSpec {
    kind: v1::DecisionKind::FinalInspection,
    name: "final_inspection",
    question: final_inspection_question,
    options: &[
        DecisionOption {
            answer: answers::CONCESSION,
            effects: &[Effect::Fact(FactChange::GrantConcession), Effect::Complete],
        },
        DecisionOption {
            answer: answers::SCRAP_AND_REMAKE,
            effects: &[
                Effect::Fact(FactChange::Remake),
                Effect::Reopen {
                    steps: REMAKE,
                    reset_failures: true,
                },
            ],
        },
        DecisionOption {
            answer: answers::CANCEL_ORDER,
            effects: &[Effect::CancelOrder],
        },
    ],
    exception: None,
};

fn delivery_date_question(state: &SagaState) -> String {
    format!(
        "Order {} can be delivered on {} at the earliest, after the requested {}. \
         Accept the proposed date (agreed with the customer), keep the requested date at risk, or cancel the order? \
         (The customer may instead amend the order: AmendOrder withdraws this question and reviews the amended order.)",
        state.order_id,
        state
            .projected
            .map(gendan_proto::date_to_string)
            .unwrap_or_default(),
        gendan_proto::date_to_string(state.requested)
    )
}

/// The estimate the margin question is about: finance's answer to the
/// current run of `estimate_costs` (an older one, left behind by a run an
/// operator skipped, decides nothing).
pub(super) fn margin_estimate(state: &SagaState) -> Option<&CostEstimate> {
    let run = state.step("estimate_costs").revision();
    state
        .facts
        .costs
        .estimate
        .as_ref()
        .filter(|estimate| estimate.revision == 0 || estimate.revision == run)
}

fn margin_question(state: &SagaState) -> String {
    let Some(estimate) = margin_estimate(state) else {
        return format!(
            "The cost estimate of order {} is not at hand. Accept the order as it is, re-quote, \
             or reject it?",
            state.order_id
        );
    };
    let currency = estimate.currency.as_str();
    let money = |minor| gendan_proto::money(minor, currency);
    let floor = match estimate.min_margin_bp {
        0 => "the customer sets no floor".to_owned(),
        bp => format!("the customer's floor is {}", percent(i64::from(bp))),
    };
    let margin = format!(
        "estimated cost {} against an order value of {}: margin {}, {floor}",
        money(estimate.cost_minor),
        money(estimate.revenue_minor),
        percent(i64::from(estimate.margin_bp)),
    );
    let credit = format!(
        "order value {} would bring {}'s open balance to {}, over its credit limit of {}",
        money(estimate.revenue_minor),
        state.order.customer,
        money(estimate.credit_exposure_minor),
        money(estimate.credit_limit_minor),
    );
    let below_margin = !estimate.below_margin.is_empty();
    let over_limit = !estimate.over_credit_limit.is_empty();
    // Neither does not ask (the step's `when`); the margin figures are the
    // question's default, as before credit was checked.
    let findings = match (below_margin, over_limit) {
        (true, true) => format!("{margin}; and {credit}"),
        (false, true) => credit,
        _ => margin,
    };
    format!(
        "Order {}: {findings}. Accept the order as it is, re-quote (sales agrees a new price or a \
         smaller order with the customer and amends the order, which is estimated again), or \
         reject the order?",
        state.order_id,
    )
}

/// Basis points as people read a margin: `-130` → `"-1.30%"`.
fn percent(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    let magnitude = bp.unsigned_abs();
    format!("{sign}{}.{:02}%", magnitude / 100, magnitude % 100)
}

fn cargo_question(state: &SagaState) -> String {
    let claim_id = state.focus.as_deref().unwrap_or("?");
    let claim = state.facts.claims.get(claim_id);
    format!(
        "The carrier lost or damaged {} units of order {} ({}; carrier claim {claim_id}, value \
         {}). Credit the customer and go on as delivered, replace the goods (made again and \
         shipped), or wait for the goods?",
        claim.map(|c| c.quantity).unwrap_or(0),
        state.order_id,
        claim.map(|c| describe(&c.goods())).unwrap_or_default(),
        gendan_proto::money(
            claim.map(|c| c.value_minor).unwrap_or(0),
            &state.order.currency
        )
    )
}

fn claim_question(state: &SagaState) -> String {
    let claim_id = state.focus.as_deref().unwrap_or("?");
    let claim = state.facts.claims.get(claim_id);
    format!(
        "The customer of order {} claims {} of {} (claim {claim_id}, value {} minor units). \
         Issue a credit note for it, replace the goods (made again and shipped), rework them \
         (returned, reworked and shipped back), or reject the claim?",
        state.order_id,
        claim.map(|c| c.quantity).unwrap_or(0),
        claim.map(|c| c.product.as_str()).unwrap_or("?"),
        claim.map(|c| c.value_minor).unwrap_or(0)
    )
}

fn deposit_question(state: &SagaState) -> String {
    format!(
        "The deposit of order {} ({}) is unpaid after every reminder. Keep waiting (the due date \
         moves two weeks), release production without the deposit, or cancel the order?",
        state.order_id, state.order.customer
    )
}

fn balance_question(state: &SagaState) -> String {
    format!(
        "The balance of order {} ({}) is unpaid after every reminder. Keep waiting (the due date \
         moves two weeks), or refer it to collection and put the customer on credit hold?",
        state.order_id, state.order.customer
    )
}

fn supplier_question(state: &SagaState) -> String {
    format!(
        "A supplier is late with purchase order {} for order {}. Wait for the supplier (a new ETA \
         two weeks out; the dates move and the customer is told), re-source from the next supplier \
         offer, or cancel the order?",
        state.focus.as_deref().unwrap_or("?"),
        state.order_id
    )
}

fn final_inspection_question(state: &SagaState) -> String {
    format!(
        "Order {} failed final inspection {} times (last nonconformance {}, {} defective in the sample), \
         rework included. Accept the lot by concession (the customer approves), scrap it and make it again, \
         or cancel the order?",
        state.order_id,
        state.facts.final_inspection_failures,
        state
            .facts
            .open_nonconformance
            .as_deref()
            .unwrap_or("unknown"),
        state.facts.defective_units
    )
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn margins_read_as_percentages() {
        assert_eq!(percent(-130), "-1.30%");
        assert_eq!(percent(1500), "15.00%");
        assert_eq!(percent(5), "0.05%");
        assert_eq!(percent(-5), "-0.05%");
        assert_eq!(percent(0), "0.00%");
    }
}
