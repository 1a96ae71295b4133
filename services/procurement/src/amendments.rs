//! What an amended order's new need does to the supply the order already
//! holds: pure functions over plain values, like [`netting`], so the rule a
//! buyer relies on is tested without a database ([`holdings`](crate::holdings)
//! loads the values and applies the result).
//!
//! Per material, an order *holds* its stock reservation plus what it still
//! expects on open purchase orders (its allocations less what they already
//! delivered to it, which is part of the reservation). Against the new need:
//! - **Shortfall** (need above holdings): only the difference is netted like
//!   a first procurement ([`netting::net`]) against stock and open purchase
//!   orders no order holds; what is still short is bought from the best
//!   offer, at least its MOQ.
//! - **Surplus** (holdings above need) is given back in this order:
//!   1. the order's quantities on open purchase orders that are not yet at
//!      the dock, latest purchase order first. On a PO placed for the order
//!      the PO's quantity shrinks with the allocation, but never below what
//!      was delivered, what other orders still expect from it, or the
//!      supplier's minimum order quantity (the part above the order's need
//!      stays on the PO unallocated, like a first PO's MOQ surplus). A PO
//!      placed for the order that nobody expects anything from any more,
//!      with nothing delivered, is cancelled. On another order's PO only the
//!      claim is released: the quantity is that PO's free surplus again.
//!   2. the stock reservation, down to what the order's own purchase orders
//!      delivered to it.
//!
//!   What is left stays with the order as its excess: goods received for it
//!   (or at the dock waiting for inspection) are never "un-received".
//!
//! A material's earliest date is the latest of today, the expected date of
//! each purchase order the order still expects goods from after the change,
//! and the date of the netted difference.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;

use crate::netting::{self, BomLine, MaterialPlan, Milli, Offer, Supply};

/// The order's allocation on one open purchase order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPo {
    pub purchase_order_id: String,
    /// Placed for this order: its quantity shrinks with the order's need.
    pub own: bool,
    /// The supplier's confirmed ETA, else the lead-time date.
    pub expected: NaiveDate,
    /// Ordered from the supplier.
    pub quantity: Milli,
    /// Accepted plus rejected at incoming inspection.
    pub decided: Milli,
    /// Every lot the warehouse received against it, inspected or not.
    pub delivered: Milli,
    /// The order's allocation, and the part of it already received.
    pub allocated: Milli,
    pub received: Milli,
    /// What other orders still expect from it.
    pub others_outstanding: Milli,
    /// The supplier's minimum order quantity (0 when no longer offered).
    pub moq: Milli,
}

impl HeldPo {
    /// What the order still expects from it.
    pub fn outstanding(&self) -> Milli {
        (self.allocated - self.received).max(0)
    }

    /// What of that can still be given back: not yet at the dock.
    pub fn cuttable(&self) -> Milli {
        self.outstanding()
            .min((self.quantity - self.delivered).max(0))
    }
}

/// What an order holds of one material.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holding {
    /// Its stock reservation.
    pub reserved: Milli,
    /// The part of `reserved` its purchase orders delivered to it.
    pub received: Milli,
    /// Its allocations on open purchase orders, oldest PO first.
    pub on_order: Vec<HeldPo>,
}

impl Holding {
    pub fn on_order_outstanding(&self) -> Milli {
        self.on_order.iter().map(HeldPo::outstanding).sum()
    }

    /// Everything the order counts on: reserved plus still expected.
    pub fn held(&self) -> Milli {
        self.reserved.max(0) + self.on_order_outstanding()
    }

    /// The part of the reservation that may go back to free stock.
    pub fn releasable(&self) -> Milli {
        (self.reserved - self.received).max(0)
    }
}

/// What giving back surplus does to one purchase order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoCut {
    pub purchase_order_id: String,
    pub own: bool,
    /// Taken off the order's allocation (> 0).
    pub cut: Milli,
    /// The order's allocation after the cut (0: the allocation goes).
    pub allocated_after: Milli,
    pub quantity_before: Milli,
    /// The PO's quantity after the cut: unchanged on another order's PO, on
    /// a cancelled PO, or where a floor holds it.
    pub quantity_after: Milli,
    /// Nobody expects anything from it any more and nothing was delivered.
    pub cancelled: bool,
}

/// How one material of an amended order changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialChange {
    pub material: String,
    /// Gross requirement of the new items.
    pub need: Milli,
    /// What the order held before: reserved, and still expected on POs.
    pub held_in_stock: Milli,
    pub held_on_order: Milli,
    /// The shortfall (need above holdings, else 0) netted like a first
    /// procurement against what no order holds.
    pub netted: MaterialPlan,
    /// Purchase orders the surplus was given back on, latest first.
    pub cuts: Vec<PoCut>,
    /// Stock reservation released.
    pub released: Milli,
    /// Surplus that stays with the order: received for it, or at the dock.
    pub excess: Milli,
    pub earliest_date: NaiveDate,
}

impl MaterialChange {
    pub fn held(&self) -> Milli {
        self.held_in_stock + self.held_on_order
    }

    pub fn given_back(&self) -> Milli {
        self.cuts.iter().map(|cut| cut.cut).sum::<Milli>() + self.released
    }

    /// What the netted shortfall adds: stock, claims on open POs, and the
    /// shortage when an offer covers it.
    pub fn acquired(&self) -> Milli {
        let bought = if self.netted.purchase.is_some() {
            self.netted.shortage
        } else {
            0
        };
        self.netted.from_stock + self.netted.from_order() + bought
    }

    /// What the order holds once the change is applied.
    pub fn held_after(&self) -> Milli {
        self.held() - self.given_back() + self.acquired()
    }

    /// Nothing to do for this material.
    pub fn is_unchanged(&self) -> bool {
        self.given_back() == 0 && self.acquired() == 0 && self.excess == 0
    }
}

/// How a whole amended order changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmendmentPlan {
    /// By material code: every material of the new need or of the holdings.
    pub materials: Vec<MaterialChange>,
    pub earliest_material_date: NaiveDate,
    /// Why the amended items cannot be procured; empty when they can.
    pub problems: Vec<String>,
}

impl AmendmentPlan {
    pub fn problem(&self) -> String {
        self.problems.join("; ")
    }

    /// Materials still short after the order's holdings and the netting.
    pub fn shortages(&self) -> impl Iterator<Item = &MaterialChange> {
        self.materials
            .iter()
            .filter(|change| change.netted.shortage > 0)
    }
}

/// Gives `cut` of the order's allocation on `po` back.
fn cut_po(po: &HeldPo, cut: Milli) -> PoCut {
    debug_assert!(cut > 0 && cut <= po.cuttable());
    let allocated_after = po.allocated - cut;
    let still_expected = (allocated_after - po.received).max(0) + po.others_outstanding;
    let cancelled = po.own && po.delivered == 0 && still_expected == 0;
    let quantity_after = if !po.own || cancelled {
        po.quantity
    } else {
        let floor = po.delivered.max(po.decided + still_expected).max(po.moq);
        (po.quantity - cut).max(floor).min(po.quantity)
    };
    PoCut {
        purchase_order_id: po.purchase_order_id.clone(),
        own: po.own,
        cut,
        allocated_after,
        quantity_before: po.quantity,
        quantity_after,
        cancelled,
    }
}

/// The change of one material: `need` against `holding`, the difference
/// netted against `supply` (what no order holds) and `offers`.
pub fn amend_material(
    material: &str,
    need: Milli,
    holding: &Holding,
    supply: &Supply,
    offers: &[Offer],
    today: NaiveDate,
) -> MaterialChange {
    let held = holding.held();
    let netted = netting::net(material, (need - held).max(0), supply, offers, today);

    let mut surplus = (held - need).max(0);
    let mut cuts = Vec::new();
    for po in holding.on_order.iter().rev() {
        if surplus == 0 {
            break;
        }
        let cut = surplus.min(po.cuttable());
        if cut == 0 {
            continue;
        }
        surplus -= cut;
        cuts.push(cut_po(po, cut));
    }
    let released = surplus.min(holding.releasable());
    let excess = surplus - released;

    let still_expected_by = holding
        .on_order
        .iter()
        .filter(|po| {
            let cut = cuts
                .iter()
                .find(|cut| cut.purchase_order_id == po.purchase_order_id)
                .map_or(0, |cut| cut.cut);
            po.outstanding() > cut
        })
        .map(|po| po.expected)
        .max();
    let earliest_date = netted
        .earliest_date
        .max(today)
        .max(still_expected_by.unwrap_or(today));
    MaterialChange {
        material: material.to_owned(),
        need,
        held_in_stock: holding.reserved.max(0),
        held_on_order: holding.on_order_outstanding(),
        netted,
        cuts,
        released,
        excess,
        earliest_date,
    }
}

/// Explodes `items` and changes every material of the new need or of the
/// `holdings` (by material). `supplies` (what no order holds) and `offers`
/// are by material; a material missing from them has none.
pub fn plan(
    items: &[(String, u32)],
    boms: &HashMap<String, Vec<BomLine>>,
    holdings: &HashMap<String, Holding>,
    supplies: &HashMap<String, Supply>,
    offers: &HashMap<String, Vec<Offer>>,
    today: NaiveDate,
) -> AmendmentPlan {
    let (required, mut problems) = netting::explode(items, boms);
    let materials: BTreeSet<&str> = required
        .keys()
        .map(String::as_str)
        .chain(
            holdings
                .iter()
                .filter(|(_, holding)| holding.held() > 0)
                .map(|(material, _)| material.as_str()),
        )
        .collect();
    let empty_holding = Holding::default();
    let empty_supply = Supply::default();
    let mut changes = Vec::with_capacity(materials.len());
    for material in materials {
        let need = required.get(material).copied().unwrap_or(0);
        let holding = holdings.get(material).unwrap_or(&empty_holding);
        let supply = supplies.get(material).unwrap_or(&empty_supply);
        let material_offers = offers.get(material).map_or(&[][..], Vec::as_slice);
        let change = amend_material(material, need, holding, supply, material_offers, today);
        if change.netted.shortage > 0 && change.netted.purchase.is_none() {
            problems.push(format!(
                "material {material:?} is short and no supplier offers it"
            ));
        }
        changes.push(change);
    }
    let earliest_material_date = changes
        .iter()
        .map(|change| change.earliest_date)
        .max()
        .unwrap_or(today)
        .max(today);
    AmendmentPlan {
        materials: changes,
        earliest_material_date,
        problems,
    }
}

#[cfg(test)]
mod tests;
