//! The commands the workflow's steps send, built from the saga's copy of the
//! order and what it learned since. Each carries the step's revision where
//! the department keeps one per run (see [`super::Revision`]).

use gendan_messaging::{Cause, Outgoing};
use gendan_proto::date_to_string;
use gendan_proto::v1;

use super::Revision;
use crate::SERVICE;
use crate::facts::{BalanceMilestone, RedeliveryKind};
use crate::state::SagaState;

/// What the step's work is for: the order's lines, or while a claim's
/// goods are made good, only those.
fn items(state: &SagaState) -> Vec<v1::ProductQuantity> {
    if let Some(redelivery) = &state.facts.redelivery {
        return redelivery
            .goods
            .iter()
            .map(|goods| v1::ProductQuantity {
                product: goods.product.clone(),
                quantity: goods.quantity,
            })
            .collect();
    }
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

fn material_date(state: &SagaState) -> String {
    state
        .facts
        .material_date
        .map(date_to_string)
        .unwrap_or_default()
}

fn to(service: &str, state: &SagaState, cause: &Cause, command: &impl CommandPayload) -> Outgoing {
    command.outgoing(service, &state.order_id, cause)
}

/// Any command payload; keeps the builders to one line of addressing.
trait CommandPayload {
    fn outgoing(&self, service: &str, order_id: &str, cause: &Cause) -> Outgoing;
}

impl<M: prost::Message + gendan_proto::TypeName> CommandPayload for M {
    fn outgoing(&self, service: &str, order_id: &str, cause: &Cause) -> Outgoing {
        Outgoing::command(SERVICE, service, order_id, self, cause)
    }
}

pub fn check_materials(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let command = v1::CheckMaterials {
        order_id: state.order_id.clone(),
        items: items(state),
        needed_by: String::new(),
    };
    to("procurement", state, cause, &command)
}

/// The review's capacity check; with its revision, production reserves the
/// hours it answers with until the order is planned, checked again or
/// cancelled ([`release_capacity`]).
pub fn check_capacity(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    let command = v1::CheckOrderCapacity {
        order_id: state.order_id.clone(),
        items: items(state),
        requested_delivery_date: date_to_string(state.requested),
        earliest_start: material_date(state),
        revision,
    };
    to("production", state, cause, &command)
}

/// A cancelled order's reserved hours given back.
pub fn release_capacity(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let command = v1::ReleaseCapacity {
        order_id: state.order_id.clone(),
        reason: "order cancelled".to_owned(),
    };
    to("production", state, cause, &command)
}

pub fn confirm_order(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    let command = v1::ConfirmOrder {
        order_id: state.order_id.clone(),
        promised_delivery_date: date_to_string(state.promised.unwrap_or(state.requested)),
        revision,
    };
    to("orders", state, cause, &command)
}

/// The review's freight quote: the order's goods, ready when the factory
/// can finish them, delivered by the date the review is against.
pub fn quote_freight(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    let command = v1::QuoteFreight {
        order: Some(shipping_order(state)),
        // When the goods can leave: packed (and documented, for export)
        // after the capacity check's plan; an order without a calendar
        // has only the check's earliest completion.
        ready_date: state
            .facts
            .calendar
            .as_ref()
            .and_then(|calendar| calendar.ready_to_ship())
            .or(state.projected)
            .map(date_to_string)
            .unwrap_or_default(),
        deliver_by: date_to_string(state.requested),
        revision,
    };
    to("logistics", state, cause, &command)
}

/// The review's inspection estimate: what the final inspection will sample
/// at the customer's level and AQL.
pub fn estimate_inspection(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    // The customer's rules as they were when the order was made.
    let rules = state.order.customer_rules.as_ref();
    let command = v1::EstimateInspection {
        order_id: state.order_id.clone(),
        items: items(state),
        inspection_level: rules.map_or(0, |rules| rules.inspection_level),
        major_aql: rules.and_then(|rules| rules.major_aql),
        revision,
    };
    to("quality", state, cause, &command)
}

/// The review's cost estimate, from what each department answered (see
/// [`crate::facts::CostFacts`]); finance adds labour and inspection at its
/// rates, measures the margin against the customer's floor, and what the
/// customer would owe with this order against its credit limit.
pub fn estimate_costs(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    let costs = &state.facts.costs;
    // The customer's rules as they were when the order was made.
    let rules = state.order.customer_rules.as_ref();
    let (freight, freight_problem) = match costs.freight.as_ref().map(|quote| quote.cost()) {
        Some(Ok(cost)) => (Some(cost.to_proto()), String::new()),
        Some(Err(problem)) => (None, problem),
        // An operator skipped the quote: the estimate says so.
        None => (None, "freight was not quoted".to_owned()),
    };
    let command = v1::EstimateCosts {
        order_id: state.order_id.clone(),
        revision,
        currency: state.order.currency.clone(),
        revenue_minor: state.order.total_minor,
        material_cost: costs
            .material_cost
            .iter()
            .map(|cost| cost.to_proto())
            .collect(),
        uncosted_materials: costs.uncosted_materials.clone(),
        hours_by_work_centre: costs
            .hours_by_work_centre
            .iter()
            .map(|(centre, hours)| (centre.clone(), *hours))
            .collect(),
        freight,
        freight_problem,
        inspection_sample_units: costs.inspection_sample_units,
        min_margin_bp: rules.map_or(0, |rules| rules.min_margin_bp),
        credit_limit_minor: rules.map_or(0, |rules| rules.credit_limit_minor),
        // The limit is in the customer's currency, which the order's copy
        // of the rules does not carry. The order currency is the
        // customer's default, so it stands in; an order placed in another
        // currency has its limit read in that one.
        credit_limit_currency: state.order.currency.clone(),
        // As `open_receivable` names the customer, so finance finds the
        // customer's other receivables by it.
        customer: state.order.customer.clone(),
    };
    to("finance", state, cause, &command)
}

pub fn open_receivable(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    let command = v1::OpenReceivable {
        order_id: state.order_id.clone(),
        customer: state.order.customer.clone(),
        total_minor: state.order.total_minor,
        currency: state.order.currency.clone(),
        payment_terms: state.order.payment_terms.clone(),
        // Finance budgets the order from the estimate it made at review
        // (`estimate_costs`) and keeps per category: nothing to send.
        cost_budget_minor: 0,
        revision,
        // The customer's rules as they were when the order was made.
        dunning_reminder_days: state
            .order
            .customer_rules
            .as_ref()
            .map(|rules| rules.dunning_reminder_days.clone())
            .unwrap_or_default(),
        ..Default::default()
    };
    to("finance", state, cause, &command)
}

pub fn cancel_receivable(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let command = v1::CancelReceivable {
        order_id: state.order_id.clone(),
        reason: "order cancelled".to_owned(),
    };
    to("finance", state, cause, &command)
}

pub fn plan_work_order(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    let command = v1::PlanWorkOrder {
        order_id: state.order_id.clone(),
        items: items(state),
        earliest_start: material_date(state),
        revision,
        amendment: state.facts.amendment_of("plan_production", revision),
    };
    to("production", state, cause, &command)
}

pub fn cancel_work_order(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let command = v1::CancelWorkOrder {
        order_id: state.order_id.clone(),
        reason: "order cancelled".to_owned(),
    };
    to("production", state, cause, &command)
}

pub fn procure_materials(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    let command = v1::ProcureMaterials {
        order_id: state.order_id.clone(),
        items: items(state),
        needed_by: material_date(state),
        revision,
        materials_in_use: state.facts.materials_in_use,
        // Until a procurement of the remake's revision or later was
        // answered, whatever revision runs buys the materials afresh (a
        // failed remake procurement retried, or amended meanwhile).
        remake: state
            .facts
            .remake_procurement
            .is_some_and(|remake| revision >= remake),
    };
    to("procurement", state, cause, &command)
}

pub fn cancel_materials(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let command = v1::CancelMaterials {
        order_id: state.order_id.clone(),
        reason: "order cancelled".to_owned(),
    };
    to("procurement", state, cause, &command)
}

/// Rework of what the last final inspection rejected: the whole lot of each
/// product (a sample's defects say the lot is suspect, not which units).
pub fn start_rework(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    let reason = match &state.facts.redelivery {
        Some(redelivery) => format!(
            "claim {}: {} returned by the customer for rework",
            redelivery.claim_id,
            redelivery.describe()
        ),
        None => format!(
            "final inspection failed ({} defective in the sample)",
            state.facts.defective_units
        ),
    };
    let command = v1::StartRework {
        order_id: state.order_id.clone(),
        revision,
        items: items(state),
        nonconformance_id: state.facts.open_nonconformance.clone().unwrap_or_default(),
        reason,
    };
    to("production", state, cause, &command)
}

pub fn request_final_inspection(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    // The customer's rules as they were when the order was made.
    let rules = state.order.customer_rules.as_ref();
    let command = v1::RequestFinalInspection {
        order_id: state.order_id.clone(),
        items: items(state),
        revision,
        inspection_level: rules.map_or(0, |rules| rules.inspection_level),
        major_aql: rules.and_then(|rules| rules.major_aql),
    };
    to("quality", state, cause, &command)
}

/// The order as logistics packs, documents and ships it: whole, or while a
/// claim's goods are made good, with only the claimed goods: one line per
/// product, at the price of the order's first line of it.
fn shipping_order(state: &SagaState) -> v1::Order {
    let mut order = state.order.clone();
    if let Some(redelivery) = &state.facts.redelivery {
        order.lines = redelivery
            .goods
            .iter()
            .filter_map(|goods| {
                let line = state
                    .order
                    .lines
                    .iter()
                    .find(|line| line.product == goods.product)?;
                Some(v1::OrderLine {
                    quantity: goods.quantity,
                    ..line.clone()
                })
            })
            .collect();
        order.total_minor = order
            .lines
            .iter()
            .map(|line| {
                line.unit_price_minor
                    .saturating_mul(i64::from(line.quantity))
            })
            .sum();
    }
    order
}

pub fn prepare_packing(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    let command = v1::PreparePacking {
        order: Some(shipping_order(state)),
        revision,
    };
    to("logistics", state, cause, &command)
}

pub fn prepare_documents(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    let command = v1::PrepareDocuments {
        order: Some(shipping_order(state)),
        revision,
        ..Default::default()
    };
    to("logistics", state, cause, &command)
}

pub fn book_shipment(state: &SagaState, revision: Revision, cause: &Cause) -> Outgoing {
    let command = v1::BookShipment {
        order: Some(shipping_order(state)),
        // Only the redelivery's own booking books new goods; a later
        // revision re-books it (a missed departure) like any booking.
        redelivery: state
            .facts
            .redelivery
            .as_ref()
            .is_some_and(|r| r.booking_revision == revision),
        ready_date: state
            .facts
            .ready_date
            .map(date_to_string)
            .unwrap_or_default(),
        deliver_by: state.promised.map(date_to_string).unwrap_or_default(),
        revision,
    };
    to("logistics", state, cause, &command)
}

pub fn invoice_balance(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let (milestone, billing, date) = match state.facts.balance_milestone {
        BalanceMilestone::Delivery => (
            "delivery",
            v1::BillingMilestone::Delivery,
            state.facts.delivered_on,
        ),
        BalanceMilestone::Shipment => (
            "shipment",
            v1::BillingMilestone::Shipment,
            state.facts.shipped_on,
        ),
    };
    let command = v1::InvoiceBalance {
        order_id: state.order_id.clone(),
        milestone: milestone.to_owned(),
        milestone_date: date.map(date_to_string).unwrap_or_default(),
        billing_milestone: billing as i32,
    };
    to("finance", state, cause, &command)
}

/// Days a decision to wait longer gives a customer or a supplier.
const GRACE_DAYS: i64 = 14;

/// The end of a grace period counted from the change being made (the
/// engine's clock, never the wall clock).
fn grace_date(state: &SagaState) -> String {
    date_to_string(state.updated_at.date_naive() + chrono::Duration::days(GRACE_DAYS))
}

fn extend_due(state: &SagaState, kind: v1::InvoiceKind, cause: &Cause) -> Outgoing {
    let command = v1::ExtendPaymentDue {
        order_id: state.order_id.clone(),
        invoice_kind: kind as i32,
        new_due_date: grace_date(state),
        reason: "decided to wait for the customer's payment".to_owned(),
    };
    to("finance", state, cause, &command)
}

pub fn extend_deposit_due(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    extend_due(state, v1::InvoiceKind::Deposit, cause)
}

pub fn extend_balance_due(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    extend_due(state, v1::InvoiceKind::Balance, cause)
}

pub fn refer_to_collection(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let command = v1::ReferToCollection {
        order_id: state.order_id.clone(),
        reason: "balance unpaid after every reminder".to_owned(),
    };
    to("finance", state, cause, &command)
}

/// The late purchase order the answer is about: its decision's subject.
fn late_purchase_order(state: &SagaState) -> String {
    state.focus.clone().unwrap_or_default()
}

pub fn accept_supplier_delay(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let command = v1::AcceptSupplierDelay {
        order_id: state.order_id.clone(),
        purchase_order_id: late_purchase_order(state),
        new_expected_date: grace_date(state),
    };
    to("procurement", state, cause, &command)
}

pub fn resource_materials(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let command = v1::ResourceMaterials {
        order_id: state.order_id.clone(),
        purchase_order_id: late_purchase_order(state),
        reason: "supplier late; re-sourced by decision".to_owned(),
    };
    to("procurement", state, cause, &command)
}

/// The claim the answer being applied is about.
fn claim_in_focus(state: &SagaState) -> (String, i64) {
    let claim_id = state.focus.clone().unwrap_or_default();
    let value = state
        .facts
        .claims
        .get(&claim_id)
        .map(|claim| claim.value_minor)
        .unwrap_or(0);
    (claim_id, value)
}

pub fn issue_credit_note(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let (claim_id, value_minor) = claim_in_focus(state);
    let command = v1::IssueCreditNote {
        order_id: state.order_id.clone(),
        reason: format!("claim {claim_id} resolved by a credit note"),
        claim_id,
        amount_minor: value_minor,
        currency: state.order.currency.clone(),
    };
    to("finance", state, cause, &command)
}

fn resolve_claim(state: &SagaState, resolution: v1::ClaimResolution, cause: &Cause) -> Outgoing {
    let (claim_id, _) = claim_in_focus(state);
    let note = match resolution {
        v1::ClaimResolution::CreditNote => "a credit note for the claimed goods".to_owned(),
        v1::ClaimResolution::Replacement => "the claimed goods made again".to_owned(),
        v1::ClaimResolution::Rework => "the claimed goods reworked".to_owned(),
        _ => "the claim is not accepted after review".to_owned(),
    };
    let command = v1::ResolveClaim {
        order_id: state.order_id.clone(),
        claim_id,
        resolution: resolution as i32,
        note,
    };
    to("orders", state, cause, &command)
}

/// The claim whose goods were made good and delivered again is resolved
/// (replacement or rework); orders then accepts when no claim is open.
pub fn resolve_claim_by_redelivery(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let Some(redelivery) = &state.facts.redelivery else {
        // Only started while a redelivery is due (its `when`).
        return resolve_claim(state, v1::ClaimResolution::Replacement, cause);
    };
    let (resolution, note) = match redelivery.kind {
        RedeliveryKind::Replacement => (
            v1::ClaimResolution::Replacement,
            format!("{} made again and delivered", redelivery.describe()),
        ),
        RedeliveryKind::Rework => (
            v1::ClaimResolution::Rework,
            format!("{} reworked and delivered again", redelivery.describe()),
        ),
    };
    let command = v1::ResolveClaim {
        order_id: state.order_id.clone(),
        claim_id: redelivery.claim_id.clone(),
        resolution: resolution as i32,
        note,
    };
    to("orders", state, cause, &command)
}

pub fn resolve_claim_by_credit(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    resolve_claim(state, v1::ClaimResolution::CreditNote, cause)
}

pub fn reject_claim(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    resolve_claim(state, v1::ClaimResolution::Rejected, cause)
}

/// Finance's closing figures of the cost ledger, on the order's timeline
/// before the order is closed (its summary takes them from there).
pub fn close_cost_ledger(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let command = v1::CloseCostLedger {
        order_id: state.order_id.clone(),
        events_through: state.facts.costs.events_through,
    };
    to("finance", state, cause, &command)
}

pub fn close_order(state: &SagaState, _: Revision, cause: &Cause) -> Outgoing {
    let ledger = state
        .facts
        .costs
        .ledger_closed
        .as_deref()
        .and_then(|bytes| prost::Message::decode(bytes).ok());
    let command = v1::CloseOrder {
        order_id: state.order_id.clone(),
        ledger,
    };
    to("orders", state, cause, &command)
}
