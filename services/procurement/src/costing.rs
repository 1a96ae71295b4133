//! Standard material cost of an order, the procurement part of the review's
//! cost estimate (`MaterialsChecked.material_cost`): pure, over the BOM
//! explosion ([`netting::explode`]) and the supplier offers.
//!
//! Every material is costed for its whole gross requirement at the unit
//! price of the offer a shortage of it would be bought from
//! ([`netting::best_offer`]), whether stock, open purchase orders or a new
//! one will cover it: the estimate is what the order consumes, and stock
//! was paid for once too. Sums are kept per currency (finance converts
//! them); a material that cannot be costed is named instead, so the
//! estimate shows what it leaves out rather than a cost that is too low
//! without saying so.
//!
//! The same price values what `ProcureMaterials` takes from stock for an
//! order ([`stock_issued`], `MaterialsOrdered.stock_issued`): the order's
//! purchase orders cost only what it buys, so without this the material it
//! consumes from stock would cost it nothing against a budget that counts
//! it. Only what a revision newly reserves is listed; a reservation an
//! amendment releases is not credited back: finance's entries are costs,
//! never negative, so the order keeps the cost of stock it gave back (and
//! an order that takes that stock later is charged for it as well).

use std::collections::{BTreeMap, HashMap};

use gendan_proto::v1::{Money, StockIssue};

use crate::netting::{self, MaterialPlan, Milli, Offer};

/// The order's material cost per currency and what it leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaterialCost {
    /// One line per currency, sorted by currency.
    pub by_currency: Vec<Money>,
    /// "FABRIC-X: no supplier offer", by material code.
    pub uncosted: Vec<String>,
}

/// Costs `required` (gross requirement per material, thousandths of its
/// unit) at the chosen offer's unit price of each material in `offers`.
pub fn material_cost(
    required: &BTreeMap<String, Milli>,
    offers: &HashMap<String, Vec<Offer>>,
) -> MaterialCost {
    let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
    let mut uncosted = Vec::new();
    for (material, &quantity) in required {
        let material_offers = offers.get(material).map_or(&[][..], Vec::as_slice);
        let Some(offer) = netting::best_offer(material_offers) else {
            uncosted.push(format!("{material}: no supplier offer"));
            continue;
        };
        let Some(amount) = netting::amount_minor(quantity, offer.unit_price_minor) else {
            uncosted.push(format!(
                "{material}: its cost does not fit in minor units of {}",
                offer.currency
            ));
            continue;
        };
        let sum = sums.entry(offer.currency.as_str()).or_insert(0);
        match sum.checked_add(amount) {
            Some(total) => *sum = total,
            // The material is left out whole, so the sum stays what the
            // other materials cost.
            None => uncosted.push(format!(
                "{material}: the order's material cost in {} does not fit in minor units",
                offer.currency
            )),
        }
    }
    MaterialCost {
        by_currency: sums
            .into_iter()
            .map(|(currency, amount_minor)| Money {
                amount_minor,
                currency: currency.to_owned(),
            })
            .collect(),
        uncosted,
    }
}

/// What the netted `lines` reserve from stock (`from_stock`), one issue per
/// material sorted by material code, each valued at the unit price of the
/// offer a purchase of it would use ([`netting::best_offer`]) in `offers`,
/// the ones netting read. A material nobody offers, or whose value does not
/// fit in minor units, is issued at 0 with no currency: finance books it as
/// not costed rather than guess a price.
pub fn stock_issued<'a>(
    lines: impl IntoIterator<Item = &'a MaterialPlan>,
    offers: &HashMap<String, Vec<Offer>>,
    units: &HashMap<String, String>,
) -> Vec<StockIssue> {
    let mut reserved: BTreeMap<&str, Milli> = BTreeMap::new();
    for line in lines {
        if line.from_stock > 0 {
            let total = reserved.entry(line.material.as_str()).or_insert(0);
            *total = total.saturating_add(line.from_stock);
        }
    }
    reserved
        .into_iter()
        .map(|(material, quantity)| {
            let material_offers = offers.get(material).map_or(&[][..], Vec::as_slice);
            let (amount_minor, currency) = netting::best_offer(material_offers)
                .and_then(|offer| {
                    let amount = netting::amount_minor(quantity, offer.unit_price_minor)?;
                    Some((amount, offer.currency.clone()))
                })
                .unwrap_or_default();
            StockIssue {
                material: material.to_owned(),
                quantity_milli: quantity,
                unit: units.get(material).cloned().unwrap_or_default(),
                amount_minor,
                currency,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::netting::{BomLine, Supply, net};

    fn offer(supplier: &str, currency: &str, lead: u32, price: i64) -> Offer {
        Offer {
            supplier: supplier.to_owned(),
            currency: currency.to_owned(),
            lead_time_days: lead,
            unit_price_minor: price,
            moq: 0,
        }
    }

    fn money(amount_minor: i64, currency: &str) -> Money {
        Money {
            amount_minor,
            currency: currency.to_owned(),
        }
    }

    #[test]
    fn a_material_bought_from_stock_is_still_costed_at_its_offer_price() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let offers = HashMap::from([(
            "fabric".to_owned(),
            // The quicker offer is the one a shortage would be bought from.
            vec![offer("SLOW", "USD", 30, 150), offer("FAST", "USD", 7, 250)],
        )]);
        // 12.5 m needed, all of it in stock: nothing to buy.
        let required = BTreeMap::from([("fabric".to_owned(), 12_500)]);
        let stock = Supply {
            free_stock: 100_000,
            on_order: Vec::new(),
        };
        let netted = net("fabric", 12_500, &stock, &offers["fabric"], today);
        assert!(netted.purchase.is_none());

        let cost = material_cost(&required, &offers);
        // 12.5 x 2.50 = 31.25.
        assert_eq!(cost.by_currency, [money(3_125, "USD")]);
        assert!(cost.uncosted.is_empty());
    }

    #[test]
    fn costs_are_summed_per_currency_in_currency_order() {
        let items = [("shirt".to_owned(), 100)];
        let boms = HashMap::from([(
            "shirt".to_owned(),
            vec![
                BomLine {
                    material: "fabric".to_owned(),
                    per_unit: 1_500,
                    scrap_bp: 0,
                },
                BomLine {
                    material: "button".to_owned(),
                    per_unit: 8_000,
                    scrap_bp: 0,
                },
                BomLine {
                    material: "label".to_owned(),
                    per_unit: 1_000,
                    scrap_bp: 0,
                },
            ],
        )]);
        let (required, problems) = netting::explode(&items, &boms);
        assert!(problems.is_empty());
        let offers = HashMap::from([
            ("fabric".to_owned(), vec![offer("MILL", "USD", 10, 400)]),
            ("button".to_owned(), vec![offer("TRIM", "CNY", 5, 3)]),
            ("label".to_owned(), vec![offer("TRIM", "CNY", 5, 12)]),
        ]);

        let cost = material_cost(&required, &offers);
        // 150 m x 4.00 USD; 800 buttons x 0.03 + 100 labels x 0.12 CNY.
        assert_eq!(
            cost.by_currency,
            [money(2_400 + 1_200, "CNY"), money(60_000, "USD")]
        );
        assert!(cost.uncosted.is_empty());
    }

    #[test]
    fn a_material_without_offer_is_listed_and_left_out() {
        let required =
            BTreeMap::from([("FABRIC-X".to_owned(), 5_000), ("THREAD".to_owned(), 2_000)]);
        let offers = HashMap::from([("THREAD".to_owned(), vec![offer("S", "EUR", 3, 99)])]);

        let cost = material_cost(&required, &offers);
        assert_eq!(cost.by_currency, [money(198, "EUR")]);
        assert_eq!(cost.uncosted, ["FABRIC-X: no supplier offer"]);
    }

    fn stock(free_stock: Milli) -> Supply {
        Supply {
            free_stock,
            on_order: Vec::new(),
        }
    }

    #[test]
    fn stock_taken_is_valued_at_the_offer_a_purchase_would_use() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let offers = HashMap::from([
            (
                "FABRIC".to_owned(),
                // The quicker offer is chosen even though it costs more.
                vec![
                    offer("SLOW", "USD", 30, 400),
                    offer("FAST", "CNY", 7, 1_000),
                ],
            ),
            ("ZIP".to_owned(), vec![offer("TRIM", "USD", 5, 199)]),
        ]);
        let units = HashMap::from([
            ("FABRIC".to_owned(), "m".to_owned()),
            ("ZIP".to_owned(), "pcs".to_owned()),
        ]);
        let lines = [
            // 2.5 of 4 zips from stock, the rest bought.
            net("ZIP", 4_000, &stock(2_500), &offers["ZIP"], today),
            // 120 m of 150 m from stock.
            net("FABRIC", 150_000, &stock(120_000), &offers["FABRIC"], today),
            // Nothing in stock: nothing issued.
            net("LABEL", 1_000, &stock(0), &[], today),
            // 4 buttons in stock that nobody offers.
            net("BUTTON", 4_000, &stock(10_000), &[], today),
        ];

        let issued = stock_issued(&lines, &offers, &units);
        let issue =
            |material: &str, quantity_milli, unit: &str, amount_minor, currency: &str| StockIssue {
                material: material.to_owned(),
                quantity_milli,
                unit: unit.to_owned(),
                amount_minor,
                currency: currency.to_owned(),
            };
        assert_eq!(
            issued,
            [
                issue("BUTTON", 4_000, "", 0, ""),
                // 120 m x 10.00 CNY = 1,200.00 CNY.
                issue("FABRIC", 120_000, "m", 120_000, "CNY"),
                // 2.5 x 1.99 = 4.975, rounded half up.
                issue("ZIP", 2_500, "pcs", 498, "USD"),
            ]
        );
    }

    #[test]
    fn a_stock_value_that_overflows_is_issued_uncosted() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let offers = HashMap::from([("GOLD".to_owned(), vec![offer("S", "USD", 1, i64::MAX)])]);
        let lines = [net("GOLD", 2_000, &stock(5_000), &offers["GOLD"], today)];

        let issued = stock_issued(&lines, &offers, &HashMap::new());
        assert_eq!(issued.len(), 1);
        assert_eq!(issued[0].quantity_milli, 2_000);
        assert_eq!(
            (issued[0].amount_minor, issued[0].currency.as_str()),
            (0, "")
        );
        assert!(stock_issued(&lines[..0], &offers, &HashMap::new()).is_empty());
    }

    #[test]
    fn a_cost_that_overflows_is_uncosted_with_the_reason() {
        let required = BTreeMap::from([
            ("A".to_owned(), 1_000),
            ("B".to_owned(), 1_000),
            ("HUGE".to_owned(), i64::MAX),
        ]);
        let offers = HashMap::from([
            ("A".to_owned(), vec![offer("S", "USD", 1, i64::MAX - 10)]),
            ("B".to_owned(), vec![offer("S", "USD", 1, 100)]),
            ("HUGE".to_owned(), vec![offer("S", "USD", 1, i64::MAX)]),
        ]);

        let cost = material_cost(&required, &offers);
        assert_eq!(cost.by_currency, [money(i64::MAX - 10, "USD")]);
        assert_eq!(
            cost.uncosted,
            [
                "B: the order's material cost in USD does not fit in minor units",
                "HUGE: its cost does not fit in minor units of USD",
            ]
        );
    }
}
