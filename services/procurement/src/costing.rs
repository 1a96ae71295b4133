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

use std::collections::{BTreeMap, HashMap};

use gendan_proto::v1::Money;

use crate::netting::{self, Milli, Offer};

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
