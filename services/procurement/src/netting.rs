//! BOM explosion, netting and supplier choice: pure functions over plain
//! values, so the arithmetic a buyer relies on is tested without a database.
//!
//! Quantities are integer thousandths of the material's unit ([`Milli`]) and
//! scrap allowances integer basis points (1/100 of a percent): sums and
//! comparisons are exact, where floating point would leave a shortage of
//! 0.0000001 m. A requirement is rounded *up* to the next thousandth, because
//! a factory that rounds down runs short on the last unit.
//!
//! Netting per material, in this order:
//! 1. free stock (on hand minus what other orders hold),
//! 2. quantities still to arrive on open purchase orders that no other order
//!    has claimed, earliest expected first,
//! 3. what is left is a shortage, bought from the best offer
//!    ([`best_offer`]) in `max(shortage, MOQ)`.
//!
//! The earliest material date is the latest of the dates each used source
//! delivers: today for stock, a purchase order's expected date for the part
//! netted against it, today + lead time for a shortage.

use std::collections::{BTreeMap, HashMap};

use chrono::{Days, NaiveDate};

/// Thousandths of a material's unit.
pub type Milli = i64;

/// Basis points per 100 %.
pub const FULL_PERCENT_BP: i64 = 10_000;

/// One line of a product's bill of materials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BomLine {
    pub material: String,
    pub per_unit: Milli,
    pub scrap_bp: i64,
}

/// Quantity still to arrive on one open purchase order that this order may
/// count on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnOrder {
    pub purchase_order_id: String,
    pub available: Milli,
    pub expected: NaiveDate,
}

/// What can cover a material's requirement before buying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Supply {
    pub free_stock: Milli,
    /// Sorted by expected date by [`net`] itself.
    pub on_order: Vec<OnOrder>,
}

/// A supplier's offer for one material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub supplier: String,
    pub currency: String,
    pub lead_time_days: u32,
    pub unit_price_minor: i64,
    pub moq: Milli,
}

/// A purchase to place for a shortage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    pub offer: Offer,
    pub quantity: Milli,
    pub expected: NaiveDate,
}

/// How one material's requirement is covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialPlan {
    pub material: String,
    pub required: Milli,
    pub free_stock: Milli,
    /// Everything on open POs this order may count on.
    pub on_order: Milli,
    pub from_stock: Milli,
    /// Quantity taken per purchase order.
    pub from_orders: Vec<(String, Milli)>,
    pub shortage: Milli,
    /// Set when there is a shortage and an offer to cover it.
    pub purchase: Option<Purchase>,
    /// When all of it can be in.
    pub earliest_date: NaiveDate,
}

impl MaterialPlan {
    pub fn from_order(&self) -> Milli {
        self.from_orders.iter().map(|(_, quantity)| quantity).sum()
    }
}

/// The netting of a whole order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// By material code.
    pub materials: Vec<MaterialPlan>,
    pub earliest_material_date: NaiveDate,
    /// Why the order cannot be procured as it stands; empty when it can.
    pub problems: Vec<String>,
}

impl Plan {
    pub fn shortages(&self) -> impl Iterator<Item = &MaterialPlan> {
        self.materials.iter().filter(|line| line.shortage > 0)
    }

    pub fn problem(&self) -> String {
        self.problems.join("; ")
    }
}

/// Gross requirement per material of `items` (product, quantity): quantity x
/// per-unit x (1 + scrap %), rounded up per product line and summed per
/// material. Products without a bill of materials are returned as problems.
pub fn explode(
    items: &[(String, u32)],
    boms: &HashMap<String, Vec<BomLine>>,
) -> (BTreeMap<String, Milli>, Vec<String>) {
    let mut required: BTreeMap<String, Milli> = BTreeMap::new();
    let mut problems = Vec::new();
    for (product, quantity) in items {
        let Some(lines) = boms.get(product).filter(|lines| !lines.is_empty()) else {
            problems.push(format!("product {product:?} has no bill of materials"));
            continue;
        };
        for line in lines {
            match line_requirement(*quantity, line) {
                Some(need) => {
                    let total = required.entry(line.material.clone()).or_insert(0);
                    match total.checked_add(need) {
                        Some(sum) => *total = sum,
                        None => problems.push(format!(
                            "requirement of material {:?} is too large",
                            line.material
                        )),
                    }
                }
                None => problems.push(format!(
                    "requirement of material {:?} for product {product:?} is too large",
                    line.material
                )),
            }
        }
    }
    (required, problems)
}

/// `quantity` x `per_unit` x (1 + scrap), rounded up to a thousandth.
pub fn line_requirement(quantity: u32, line: &BomLine) -> Option<Milli> {
    let numerator = i128::from(quantity)
        .checked_mul(i128::from(line.per_unit))?
        .checked_mul(i128::from(FULL_PERCENT_BP.checked_add(line.scrap_bp)?))?;
    let denominator = i128::from(FULL_PERCENT_BP);
    let rounded_up = (numerator + denominator - 1).div_euclid(denominator);
    i64::try_from(rounded_up).ok()
}

/// The offer a shortage is bought from: shortest lead time, then lowest
/// price, then supplier code (so two equal offers always give one answer).
pub fn best_offer(offers: &[Offer]) -> Option<&Offer> {
    offers.iter().min_by(|a, b| rank(a).cmp(&rank(b)))
}

/// The offer a late supplier's purchase order is moved to: the best offer
/// by the same rule among every *other* supplier's.
pub fn best_offer_except<'a>(offers: &'a [Offer], late_supplier: &str) -> Option<&'a Offer> {
    offers
        .iter()
        .filter(|offer| offer.supplier != late_supplier)
        .min_by(|a, b| rank(a).cmp(&rank(b)))
}

fn rank(offer: &Offer) -> (u32, i64, &str) {
    (
        offer.lead_time_days,
        offer.unit_price_minor,
        offer.supplier.as_str(),
    )
}

/// What is ordered for a shortage: at least the supplier's minimum.
pub fn order_quantity(shortage: Milli, moq: Milli) -> Milli {
    shortage.max(moq)
}

/// `quantity` (thousandths) x `unit_price_minor`, rounded half up to a minor
/// unit; `None` when it does not fit an `i64`.
pub fn amount_minor(quantity: Milli, unit_price_minor: i64) -> Option<i64> {
    let product = i128::from(quantity).checked_mul(i128::from(unit_price_minor))?;
    let rounded = (product + 500).div_euclid(1000);
    i64::try_from(rounded).ok()
}

/// `today` plus a lead time, saturating at the last representable date.
pub fn after_days(today: NaiveDate, days: u32) -> NaiveDate {
    today
        .checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(NaiveDate::MAX)
}

/// Nets one material's requirement against its supply and, for a shortage,
/// chooses the purchase. A shortage without offers has `purchase: None`.
pub fn net(
    material: &str,
    required: Milli,
    supply: &Supply,
    offers: &[Offer],
    today: NaiveDate,
) -> MaterialPlan {
    let free_stock = supply.free_stock.max(0);
    let from_stock = required.min(free_stock);
    let mut rest = required - from_stock;
    let mut earliest_date = today;

    let mut on_order: Vec<&OnOrder> = supply
        .on_order
        .iter()
        .filter(|po| po.available > 0)
        .collect();
    on_order.sort_by(|a, b| {
        (a.expected, &a.purchase_order_id).cmp(&(b.expected, &b.purchase_order_id))
    });
    let on_order_total = on_order.iter().map(|po| po.available).sum();
    let mut from_orders = Vec::new();
    for po in on_order {
        if rest == 0 {
            break;
        }
        let take = rest.min(po.available);
        rest -= take;
        earliest_date = earliest_date.max(po.expected);
        from_orders.push((po.purchase_order_id.clone(), take));
    }

    let shortage = rest;
    let purchase = if shortage > 0 {
        best_offer(offers).map(|offer| Purchase {
            offer: offer.clone(),
            quantity: order_quantity(shortage, offer.moq),
            expected: after_days(today, offer.lead_time_days),
        })
    } else {
        None
    };
    if let Some(purchase) = &purchase {
        earliest_date = earliest_date.max(purchase.expected);
    }
    debug_assert_eq!(
        from_stock + from_orders.iter().map(|(_, q)| q).sum::<Milli>() + shortage,
        required
    );
    MaterialPlan {
        material: material.to_owned(),
        required,
        free_stock,
        on_order: on_order_total,
        from_stock,
        from_orders,
        shortage,
        purchase,
        earliest_date,
    }
}

/// Explodes and nets a whole order. `supplies` and `offers` are by material;
/// a material missing from them has no supply and no offer.
pub fn plan(
    items: &[(String, u32)],
    boms: &HashMap<String, Vec<BomLine>>,
    supplies: &HashMap<String, Supply>,
    offers: &HashMap<String, Vec<Offer>>,
    today: NaiveDate,
) -> Plan {
    let (required, mut problems) = explode(items, boms);
    let empty_supply = Supply::default();
    let mut materials = Vec::with_capacity(required.len());
    for (material, quantity) in required {
        let supply = supplies.get(&material).unwrap_or(&empty_supply);
        let material_offers = offers.get(&material).map_or(&[][..], Vec::as_slice);
        let line = net(&material, quantity, supply, material_offers, today);
        if line.shortage > 0 && line.purchase.is_none() {
            problems.push(format!(
                "material {material:?} is short and no supplier offers it"
            ));
        }
        materials.push(line);
    }
    let earliest_material_date = materials
        .iter()
        .map(|line| line.earliest_date)
        .max()
        .unwrap_or(today)
        .max(today);
    Plan {
        materials,
        earliest_material_date,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn offer(supplier: &str, lead: u32, price: i64, moq: Milli) -> Offer {
        Offer {
            supplier: supplier.to_owned(),
            currency: "USD".to_owned(),
            lead_time_days: lead,
            unit_price_minor: price,
            moq,
        }
    }

    fn line(material: &str, per_unit: Milli, scrap_bp: i64) -> BomLine {
        BomLine {
            material: material.to_owned(),
            per_unit,
            scrap_bp,
        }
    }

    #[test]
    fn explosion_applies_scrap_rounds_up_and_sums_across_products() {
        let boms = HashMap::from([
            // 1.5 m fabric + 3 % scrap, 8 buttons.
            (
                "shirt".to_owned(),
                vec![line("fabric", 1_500, 300), line("button", 8_000, 0)],
            ),
            ("dress".to_owned(), vec![line("fabric", 2_000, 0)]),
        ]);
        let items = vec![("shirt".to_owned(), 100), ("dress".to_owned(), 10)];
        let (required, problems) = explode(&items, &boms);
        assert!(problems.is_empty());
        // 100 x 1.5 x 1.03 = 154.5 m, + 10 x 2 = 20 m.
        assert_eq!(required["fabric"], 174_500);
        assert_eq!(required["button"], 800_000);

        // 1 x 0.001 x 1.005 = 0.001005: rounded up to 0.002.
        let (required, _) = explode(
            &[("x".to_owned(), 1)],
            &HashMap::from([("x".to_owned(), vec![line("thread", 1, 50)])]),
        );
        assert_eq!(required["thread"], 2);
    }

    #[test]
    fn a_product_without_bom_is_a_problem() {
        let (required, problems) = explode(&[("kimono".to_owned(), 3)], &HashMap::new());
        assert!(required.is_empty());
        assert_eq!(problems, ["product \"kimono\" has no bill of materials"]);
    }

    #[test]
    fn best_offer_prefers_lead_time_then_price_then_code() {
        let offers = [
            offer("B", 10, 100, 0),
            offer("A", 10, 100, 0),
            offer("C", 5, 900, 0),
            offer("D", 5, 800, 0),
        ];
        assert_eq!(best_offer(&offers).unwrap().supplier, "D");
        assert_eq!(best_offer(&offers[..2]).unwrap().supplier, "A");
        assert!(best_offer(&[]).is_none());
    }

    #[test]
    fn the_next_offer_skips_the_late_supplier() {
        let offers = [
            offer("FAST", 5, 800, 0),
            offer("SLOW", 20, 300, 0),
            offer("MID", 10, 500, 0),
        ];
        assert_eq!(best_offer_except(&offers, "FAST").unwrap().supplier, "MID");
        assert_eq!(best_offer_except(&offers, "MID").unwrap().supplier, "FAST");
        assert!(best_offer_except(&offers[..1], "FAST").is_none());
    }

    #[test]
    fn netting_uses_stock_then_open_pos_then_buys_at_least_the_moq() {
        let today = day("2026-03-02");
        let supply = Supply {
            free_stock: 40_000,
            on_order: vec![
                OnOrder {
                    purchase_order_id: "late".into(),
                    available: 100_000,
                    expected: day("2026-03-20"),
                },
                OnOrder {
                    purchase_order_id: "early".into(),
                    available: 30_000,
                    expected: day("2026-03-10"),
                },
            ],
        };
        let offers = [offer("S1", 14, 250, 500_000), offer("S2", 7, 300, 200_000)];
        // 100 needed: 40 stock, 30 early PO, 30 late PO, no shortage.
        let covered = net("fabric", 100_000, &supply, &offers, today);
        assert_eq!(covered.from_stock, 40_000);
        assert_eq!(
            covered.from_orders,
            [("early".to_owned(), 30_000), ("late".to_owned(), 30_000)]
        );
        assert_eq!(covered.shortage, 0);
        assert!(covered.purchase.is_none());
        assert_eq!(covered.earliest_date, day("2026-03-20"));

        // 250 needed: 80 short, bought from S2 (7 days) at its MOQ of 200.
        let short = net("fabric", 250_000, &supply, &offers, today);
        assert_eq!(short.shortage, 80_000);
        let purchase = short.purchase.unwrap();
        assert_eq!(purchase.offer.supplier, "S2");
        assert_eq!(purchase.quantity, 200_000);
        assert_eq!(purchase.expected, day("2026-03-09"));
        // The late PO is still needed, so the date is the later of the two.
        assert_eq!(short.earliest_date, day("2026-03-20"));
    }

    #[test]
    fn plan_reports_missing_offers_and_the_latest_date() {
        let today = day("2026-03-02");
        let boms = HashMap::from([(
            "shirt".to_owned(),
            vec![line("fabric", 1_000, 0), line("label", 1_000, 0)],
        )]);
        let offers = HashMap::from([("fabric".to_owned(), vec![offer("S1", 10, 100, 0)])]);
        let plan = plan(
            &[("shirt".to_owned(), 5)],
            &boms,
            &HashMap::new(),
            &offers,
            today,
        );
        assert_eq!(plan.earliest_material_date, day("2026-03-12"));
        assert_eq!(
            plan.problems,
            ["material \"label\" is short and no supplier offers it"]
        );
        assert_eq!(plan.shortages().count(), 2);
    }

    #[test]
    fn amounts_round_half_up_to_minor_units() {
        // 2.5 units at 199 = 497.5 -> 498.
        assert_eq!(amount_minor(2_500, 199), Some(498));
        assert_eq!(amount_minor(1_000, 199), Some(199));
        assert_eq!(amount_minor(1, 1), Some(0));
        assert_eq!(amount_minor(i64::MAX, i64::MAX), None);
    }

    proptest! {
        #[test]
        fn netting_conserves_quantities(
            required in 0i64..10_000_000,
            free_stock in -1_000_000i64..10_000_000,
            pos in proptest::collection::vec((0i64..5_000_000, 0u32..60), 0..4),
            offers in proptest::collection::vec((0u32..60, 0i64..10_000, 0i64..5_000_000), 0..4),
        ) {
            let today = day("2026-03-02");
            let supply = Supply {
                free_stock,
                on_order: pos
                    .iter()
                    .enumerate()
                    .map(|(i, (available, days))| OnOrder {
                        purchase_order_id: format!("po{i}"),
                        available: *available,
                        expected: after_days(today, *days),
                    })
                    .collect(),
            };
            let offers: Vec<Offer> = offers
                .iter()
                .enumerate()
                .map(|(i, (lead, price, moq))| offer(&format!("S{i}"), *lead, *price, *moq))
                .collect();
            let line = net("m", required, &supply, &offers, today);

            prop_assert_eq!(line.from_stock + line.from_order() + line.shortage, required);
            prop_assert!(line.from_stock >= 0 && line.shortage >= 0);
            prop_assert!(line.from_stock <= free_stock.max(0));
            for (po, taken) in &line.from_orders {
                let available = supply
                    .on_order
                    .iter()
                    .find(|o| &o.purchase_order_id == po)
                    .unwrap()
                    .available;
                prop_assert!(*taken > 0 && *taken <= available);
            }
            // Nothing is bought while stock or open POs could still cover it.
            if line.shortage > 0 {
                prop_assert_eq!(line.from_stock, free_stock.max(0));
                prop_assert_eq!(line.from_order(), line.on_order);
            }
            prop_assert!(line.earliest_date >= today);
            match &line.purchase {
                Some(purchase) => {
                    prop_assert!(line.shortage > 0);
                    prop_assert!(purchase.quantity >= line.shortage);
                    prop_assert!(purchase.quantity >= purchase.offer.moq);
                    let best = best_offer(&offers).unwrap();
                    prop_assert_eq!(&purchase.offer, best);
                    for other in &offers {
                        prop_assert!(other.lead_time_days >= best.lead_time_days);
                    }
                    prop_assert!(line.earliest_date >= purchase.expected);
                }
                None => prop_assert!(line.shortage == 0 || offers.is_empty()),
            }
            if line.shortage == 0 && line.from_order() == 0 {
                prop_assert_eq!(line.earliest_date, today);
            }
        }

        #[test]
        fn the_next_offer_is_the_best_of_the_other_suppliers(
            offers in proptest::collection::vec((0u32..5, 0u32..60, 0i64..10_000), 0..6),
            late in 0u32..5,
        ) {
            let offers: Vec<Offer> = offers
                .iter()
                .map(|(supplier, lead, price)| offer(&format!("S{supplier}"), *lead, *price, 0))
                .collect();
            let late = format!("S{late}");
            let others: Vec<Offer> =
                offers.iter().filter(|o| o.supplier != late).cloned().collect();
            let next = best_offer_except(&offers, &late);
            prop_assert!(next.is_none_or(|o| o.supplier != late));
            prop_assert_eq!(next, best_offer(&others));
        }

        #[test]
        fn requirement_covers_quantity_times_per_unit_with_scrap(
            quantity in 0u32..1_000_000,
            per_unit in 1i64..1_000_000,
            scrap_bp in 0i64..=10_000,
        ) {
            let need = line_requirement(quantity, &line("m", per_unit, scrap_bp)).unwrap();
            let exact = i128::from(quantity) * i128::from(per_unit) * i128::from(10_000 + scrap_bp);
            // Rounded up, by less than one thousandth.
            prop_assert!(i128::from(need) * 10_000 >= exact);
            prop_assert!(i128::from(need) * 10_000 - exact < 10_000);
            prop_assert!(i128::from(need) >= i128::from(quantity) * i128::from(per_unit));
        }
    }
}
