//! What the workflow has learned about one order from the events it reacted
//! to: typed, with real dates and enums, and kept as JSON in the
//! `sagas.facts` column (field names are the column's keys, so sagas saved
//! by earlier versions load unchanged; a missing field takes its default).
//! [`CostFacts`] holds what the review's cost estimate is made of (each
//! department's answer) and finance's estimate with its margin and the
//! customer's credit.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// When the balance is invoiced, per the payment terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceMilestone {
    /// Against the bill of lading copy, once the goods are shipped.
    #[default]
    Shipment,
    /// Once the customer has the goods.
    Delivery,
}

/// How a failed final inspection was finally dispositioned by a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concession {
    pub approved_by: String,
    pub note: String,
}

// Not `Eq`: the review's routing hours are fractional (`CostFacts`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    /// Earliest date the materials are in (review), later the expected
    /// ready date of the purchase orders.
    pub material_date: Option<NaiveDate>,
    /// The terms ask for a deposit before production.
    pub deposit_required: bool,
    pub balance_milestone: BalanceMilestone,
    /// Production finished (the goods are ready to inspect and pack).
    pub ready_date: Option<NaiveDate>,
    pub shipped_on: Option<NaiveDate>,
    pub delivered_on: Option<NaiveDate>,
    /// Final inspections failed so far (quality's count).
    pub final_inspection_failures: u32,
    /// The nonconformance of the last failed final inspection, and the
    /// defective units it found: what the next rework is for.
    pub open_nonconformance: Option<String>,
    pub defective_units: u32,
    /// The lot was accepted as it is by a decision (customer approval).
    pub concession: Option<Concession>,
    /// Goods scrapped by a decision: production runs again (revision > 1).
    pub remakes: u32,
    /// The customer's claims on delivered goods, by claim id.
    pub claims: std::collections::BTreeMap<String, ClaimFact>,
    /// The order's amendments applied so far (the last one's number).
    pub amendments: u32,
    /// Per step, the revision it runs for an amendment and the amendment's
    /// number: a department told "amendment 2" adjusts its work instead of
    /// redoing it (a remake of the same step is not an amendment).
    pub amended_runs: std::collections::BTreeMap<String, (u32, u32)>,
    /// An amendment came once production had begun: the material the order
    /// holds is in the goods (procurement releases none of it).
    pub materials_in_use: bool,
    /// The booking the goods travel under (the carrier's claims name it).
    pub booking_reference: Option<String>,
    /// A claim being settled by making (or reworking) the claimed goods and
    /// shipping them again: what the sub-flow's commands are about.
    pub redelivery: Option<Redelivery>,
    /// The procurement revision a remake runs (the materials are bought
    /// afresh: the order's stock went into the scrapped goods), until a
    /// procurement of it or a later revision is answered.
    pub remake_procurement: Option<u32>,
    /// Per step, the revision its last completing answer named: what the
    /// answers awaited after it must carry (`StepDef::revision_of`).
    pub answered_revisions: std::collections::BTreeMap<String, u32>,
    /// What the review's cost estimate is made of, and the estimate.
    pub costs: CostFacts,
    /// The order's time-and-action calendar, from the review's first
    /// answer on; `None` for an order reviewed before calendars existed.
    pub calendar: Option<crate::calendar::Calendar>,
    /// The payment milestone each invoice is for, by invoice id: what an
    /// extension of its due date moves.
    pub invoice_payments: std::collections::BTreeMap<String, crate::calendar::Key>,
}

/// An amount in minor units of a currency (`v1::Money`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: String,
}

impl Money {
    pub fn from_proto(money: &gendan_proto::v1::Money) -> Self {
        Money {
            amount_minor: money.amount_minor,
            currency: money.currency.clone(),
        }
    }

    pub fn to_proto(&self) -> gendan_proto::v1::Money {
        gendan_proto::v1::Money {
            amount_minor: self.amount_minor,
            currency: self.currency.clone(),
        }
    }
}

/// The review's answers finance estimates the order's cost from, each kept
/// as its department gave it, and the estimate finance made of them. An
/// amendment reviews again and replaces them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CostFacts {
    /// Standard material cost per currency (procurement's
    /// `MaterialsChecked`).
    pub material_cost: Vec<Money>,
    /// Materials no supplier offers, left out of `material_cost`.
    pub uncosted_materials: Vec<String>,
    /// Routing hours per work centre, set-up included (production's
    /// `CapacityChecked`).
    pub hours_by_work_centre: std::collections::BTreeMap<String, f64>,
    /// Logistics' freight quote (`FreightQuoted`).
    pub freight: Option<FreightQuote>,
    /// Units one final inspection will sample (quality's
    /// `InspectionEstimated`).
    pub inspection_sample_units: u32,
    /// Finance's estimate (`CostsEstimated`).
    pub estimate: Option<CostEstimate>,
    /// Finance's closing figures (`CostLedgerClosed`, encoded as it came),
    /// passed on to orders with `CloseOrder` for the summary.
    #[serde(default)]
    pub ledger_closed: Option<Vec<u8>>,
    /// The events stream's sequence of the last event applied to the saga
    /// (`CloseCostLedger.events_through`).
    #[serde(default)]
    pub events_through: u64,
}

/// What shipping the order will cost, or why it could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreightQuote {
    pub amount_minor: i64,
    pub currency: String,
    pub lane_code: String,
    /// Why no lane could be priced ("" when the amount is the quote).
    #[serde(default)]
    pub problem: String,
}

impl FreightQuote {
    /// The quote as the estimate takes it: an amount, or none and why.
    pub fn cost(&self) -> Result<Money, String> {
        if !self.problem.is_empty() {
            return Err(self.problem.clone());
        }
        Ok(Money {
            amount_minor: self.amount_minor,
            currency: self.currency.clone(),
        })
    }
}

/// Finance's estimate of the order's cost and of the customer's credit, in
/// the order currency: what the margin decision asks about.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CostEstimate {
    /// The `estimate_costs` run it answers (0: not named).
    pub revision: u32,
    pub currency: String,
    pub revenue_minor: i64,
    pub cost_minor: i64,
    /// Revenue less cost (negative: a loss), and as basis points of the
    /// revenue.
    pub margin_minor: i64,
    pub margin_bp: i32,
    /// The customer's floor (0: none).
    pub min_margin_bp: u32,
    /// Why a person must decide ("" when the margin is acceptable).
    pub below_margin: String,
    /// Planned cost per category ("material", "labour", …).
    pub lines: Vec<CostLine>,
    /// What the customer would owe with this order (its other open
    /// receivables and this order's value) and its credit limit (0: none).
    pub credit_exposure_minor: i64,
    pub credit_limit_minor: i64,
    /// Why a person must decide about credit ("" when within the limit,
    /// and in estimates kept before the check).
    pub over_credit_limit: String,
}

/// The planned cost of one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostLine {
    pub category: String,
    pub amount_minor: i64,
}

impl CostEstimate {
    pub fn from_proto(estimate: &gendan_proto::v1::CostEstimate) -> Self {
        CostEstimate {
            revision: estimate.revision,
            currency: estimate.currency.clone(),
            revenue_minor: estimate.revenue_minor,
            cost_minor: estimate.cost_minor,
            margin_minor: estimate.margin_minor,
            margin_bp: estimate.margin_bp,
            min_margin_bp: estimate.min_margin_bp,
            below_margin: estimate.below_margin.clone(),
            lines: estimate
                .lines
                .iter()
                .map(|line| CostLine {
                    category: line.category.clone(),
                    amount_minor: line.amount_minor,
                })
                .collect(),
            credit_exposure_minor: estimate.credit_exposure_minor,
            credit_limit_minor: estimate.credit_limit_minor,
            over_credit_limit: estimate.over_credit_limit.clone(),
        }
    }
}

/// How a claim's goods are made good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedeliveryKind {
    /// Made again from new material.
    Replacement,
    /// The claimed goods, returned, are reworked.
    Rework,
}

/// Who raised the claim whose goods are made good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimedBy {
    /// The customer (`ClaimRaised`): orders resolves the claim once the
    /// goods are delivered again.
    #[default]
    Customer,
    /// The carrier lost or damaged the goods (`CargoClaimOpened`): the
    /// replacement is done once delivered; the claim against the carrier is
    /// logistics' business.
    Carrier,
}

/// Goods of one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goods {
    pub product: String,
    pub quantity: u32,
}

/// The goods of one claim, made good and shipped again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredRedelivery")]
pub struct Redelivery {
    pub claim_id: String,
    pub kind: RedeliveryKind,
    pub claimed_by: ClaimedBy,
    /// What is made (or reworked) and shipped again, one entry per product.
    pub goods: Vec<Goods>,
    /// The booking revision that books the redelivery (later ones re-book
    /// it after a missed departure).
    pub booking_revision: u32,
    /// The shipment a carrier lost, which this replaces: later claims on
    /// it are the carrier's business with logistics.
    pub replaces_booking: Option<String>,
}

/// A redelivery as stored: sagas saved before a redelivery could carry
/// several products kept one (`product`, `quantity`).
#[derive(Deserialize)]
struct StoredRedelivery {
    claim_id: String,
    kind: RedeliveryKind,
    #[serde(default)]
    claimed_by: ClaimedBy,
    #[serde(default)]
    goods: Vec<Goods>,
    #[serde(default)]
    product: String,
    #[serde(default)]
    quantity: u32,
    booking_revision: u32,
    #[serde(default)]
    replaces_booking: Option<String>,
}

impl From<StoredRedelivery> for Redelivery {
    fn from(stored: StoredRedelivery) -> Self {
        let mut goods = stored.goods;
        if goods.is_empty() && !stored.product.is_empty() {
            goods.push(Goods {
                product: stored.product,
                quantity: stored.quantity,
            });
        }
        Redelivery {
            claim_id: stored.claim_id,
            kind: stored.kind,
            claimed_by: stored.claimed_by,
            goods,
            booking_revision: stored.booking_revision,
            replaces_booking: stored.replaces_booking,
        }
    }
}

impl Redelivery {
    /// "12 SKU-A and 3 SKU-B", for commands' reasons and notes.
    pub fn describe(&self) -> String {
        describe(&self.goods)
    }
}

/// "12 SKU-A and 3 SKU-B".
pub fn describe(goods: &[Goods]) -> String {
    let parts: Vec<String> = goods
        .iter()
        .map(|g| format!("{} {}", g.quantity, g.product))
        .collect();
    match parts.split_last() {
        None => "nothing".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// A claim as the saga needs it to resolve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimFact {
    /// The claimed product; a carrier's claim names a shipment's units
    /// ("(shipment)"), shared among its products in `goods`.
    pub product: String,
    pub quantity: u32,
    /// The claimed goods' value (minor units of the order's currency).
    pub value_minor: i64,
    #[serde(default)]
    pub claimed_by: ClaimedBy,
    /// The claimed goods per product (empty in sagas saved before: one
    /// product, `product`).
    #[serde(default)]
    pub goods: Vec<Goods>,
}

impl ClaimFact {
    /// The claimed goods, one entry per product.
    pub fn goods(&self) -> Vec<Goods> {
        if self.goods.is_empty() {
            return vec![Goods {
                product: self.product.clone(),
                quantity: self.quantity,
            }];
        }
        self.goods.clone()
    }
}

impl Facts {
    /// The amendment `step`'s run of `revision` adjusts to (0: none).
    pub fn amendment_of(&self, step: &str, revision: u32) -> u32 {
        match self.amended_runs.get(step) {
            Some(&(run, amendment)) if run == revision => amendment,
            _ => 0,
        }
    }

    /// The delivery step finished, however it did (delivered, credited
    /// after a second loss, skipped by an operator): goods the carrier lost
    /// and that were made again are done with. A customer's claim is done
    /// when orders resolves it, not here.
    pub fn delivery_finished(&mut self) {
        if self
            .redelivery
            .as_ref()
            .is_some_and(|r| r.claimed_by == ClaimedBy::Carrier)
        {
            self.redelivery = None;
        }
    }

    /// A rework is due: the last final inspection failed and nothing has
    /// answered it yet.
    pub fn rework_due(&self) -> bool {
        self.open_nonconformance.is_some()
            || self
                .redelivery
                .as_ref()
                .is_some_and(|r| r.kind == RedeliveryKind::Rework)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_saved_by_the_string_keyed_version_still_load() {
        let stored = serde_json::json!({
            "material_date": "2026-03-04",
            "deposit_required": true,
            "balance_milestone": "delivery",
            "ready_date": "2026-04-01",
            "final_inspection_failures": 1,
        });
        let facts: Facts = serde_json::from_value(stored).unwrap();
        assert_eq!(facts.material_date, NaiveDate::from_ymd_opt(2026, 3, 4));
        assert!(facts.deposit_required);
        assert_eq!(facts.balance_milestone, BalanceMilestone::Delivery);
        assert_eq!(facts.final_inspection_failures, 1);
        assert_eq!(facts.shipped_on, None);
    }

    #[test]
    fn facts_round_trip_through_json() {
        let facts = Facts {
            material_date: NaiveDate::from_ymd_opt(2026, 1, 2),
            open_nonconformance: Some("nc-1".into()),
            defective_units: 3,
            concession: Some(Concession {
                approved_by: "buyer".into(),
                note: "ok".into(),
            }),
            ..Facts::default()
        };
        let json = serde_json::to_value(&facts).unwrap();
        assert_eq!(json["material_date"], "2026-01-02");
        let back: Facts = serde_json::from_value(json).unwrap();
        assert_eq!(back, facts);
    }

    #[test]
    fn cost_facts_round_trip_and_are_empty_in_sagas_saved_before_them() {
        let stored = serde_json::json!({ "material_date": "2026-03-04" });
        let facts: Facts = serde_json::from_value(stored).unwrap();
        assert_eq!(facts.costs, CostFacts::default());

        let mut facts = Facts::default();
        facts.costs.hours_by_work_centre.insert("SEW".into(), 12.5);
        facts.costs.freight = Some(FreightQuote {
            amount_minor: 0,
            currency: String::new(),
            lane_code: String::new(),
            problem: "no lane to DE".into(),
        });
        facts.costs.estimate = Some(CostEstimate {
            revision: 2,
            below_margin: "margin -1.30% below the floor 15.00%".into(),
            over_credit_limit: "order value 100.00 CNY would bring …".into(),
            ..CostEstimate::default()
        });
        let back: Facts = serde_json::from_value(serde_json::to_value(&facts).unwrap()).unwrap();
        assert_eq!(back, facts);
        assert_eq!(
            back.costs.freight.unwrap().cost(),
            Err("no lane to DE".to_owned())
        );
    }

    #[test]
    fn a_redelivery_saved_with_one_product_loads_as_goods() {
        let stored = r#"{"claim_id":"c1","kind":"replacement","product":"SKU-A","quantity":12,"booking_revision":2}"#;
        let redelivery: Redelivery = serde_json::from_str(stored).unwrap();
        assert_eq!(redelivery.claimed_by, ClaimedBy::Customer);
        assert_eq!(redelivery.describe(), "12 SKU-A");
        let again: Redelivery =
            serde_json::from_str(&serde_json::to_string(&redelivery).unwrap()).unwrap();
        assert_eq!(again, redelivery);
    }

    #[test]
    fn goods_read_as_a_list() {
        let goods = |product: &str, quantity| Goods {
            product: product.to_owned(),
            quantity,
        };
        assert_eq!(describe(&[]), "nothing");
        assert_eq!(
            describe(&[goods("A", 1), goods("B", 2), goods("C", 3)]),
            "1 A, 2 B and 3 C"
        );
    }
}
