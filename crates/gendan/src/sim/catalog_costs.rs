//! The cost side of the demo catalogue: the exchange rates and the
//! inspection rate finance values the demo's costs with, and the margin
//! floor of each demo customer.
//!
//! The demo's costs are in CNY (supplier offers, labour rates, the
//! inspection rate, the domestic road and air lanes) and USD (the export sea
//! and air lanes); its orders are in USD (export customers) or CNY
//! (domestic ones). So one rate, CNY into USD, values every cost of every
//! order: finance uses a pair's rate directly or inverted. It is in force
//! from the first of January of the current year, before any day the
//! demo's business calendar shows (it only moves forward from today, ADR
//! 0009), so no booking date lacks a rate.
//!
//! The floors sit well under what the sample prices leave
//! ([`super::catalog`]'s `price_range`): the review's estimate of every
//! sample order clears its customer's floor and no margin decision stops
//! the demo. The test below keeps the two consistent.

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use gendan_proto::v1::{ExchangeRate, InspectionRate};

use super::Clients;

/// Exchange rates: from, to, units of `to` per unit of `from`, source.
pub(super) const EXCHANGE_RATES: [(&str, &str, &str, &str); 1] =
    [("CNY", "USD", "0.1408", "PBOC central parity")];

/// The cost of inspecting one sampled unit: currency, minor units (3.00
/// CNY, a third-party inspector's rate spread over the units drawn).
pub(super) const INSPECTION_RATE: (&str, i64) = ("CNY", 300);

/// Margin floors of the demo customers, basis points: the European buyers
/// ask more of their orders, one domestic trader none.
const MARGIN_FLOORS: [(&str, u32); 7] = [
    ("NORDWIND", 1200),
    ("MAPLE", 1000),
    ("SAKURA", 1000),
    ("ATLAS", 800),
    ("LUMEN", 1200),
    ("JINYU", 500),
    ("RUYI", 0),
];

/// The margin floor of a demo customer (0 for an id it does not know).
pub(super) fn min_margin_bp(customer_id: &str) -> u32 {
    MARGIN_FLOORS
        .iter()
        .find(|(id, _)| *id == customer_id)
        .map(|(_, floor)| *floor)
        .unwrap_or(0)
}

/// The first of January of `today`'s year: the demo's rates are in force
/// for the whole year, so the same catalogue loaded again on another day
/// replaces them instead of adding a rate per day.
pub(super) fn rates_valid_from(today: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today)
}

/// Loads the exchange rates and the inspection rate into finance.
/// Idempotent: the same pair and date replace the rate.
pub(super) async fn seed_costs(clients: &Clients) -> anyhow::Result<()> {
    let mut finance = clients.finance.clone();
    let valid_from =
        gendan_proto::date_to_string(rates_valid_from(chrono::Utc::now().date_naive()));
    for (from, to, rate, source) in EXCHANGE_RATES {
        finance
            .set_exchange_rate(ExchangeRate {
                from_currency: from.to_owned(),
                to_currency: to.to_owned(),
                rate: rate.to_owned(),
                valid_from: valid_from.clone(),
                source: source.to_owned(),
                recorded_at: None,
            })
            .await
            .with_context(|| format!("finance: exchange rate {from} → {to}"))?;
    }
    let (currency, rate_minor_per_unit) = INSPECTION_RATE;
    finance
        .set_inspection_rate(InspectionRate {
            currency: currency.to_owned(),
            rate_minor_per_unit,
        })
        .await
        .context("finance: inspection rate")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::catalog::{
        BOMS, CUSTOMER_PROFILES, LANES, OFFERS, PACKING, PRODUCTS, price_range,
    };
    use super::*;

    /// Labour per unit of the production demo's routings at the demo's
    /// labour rates, in fen, with each line's set-up spread over 100 units
    /// (the smallest sample line): production keeps its routings to itself,
    /// so they are restated here. Cutting, sewing, finishing and packing
    /// hours at 35, 42, 38 and 30 CNY an hour.
    const LABOUR_FEN_PER_UNIT: [(&str, f64); 3] = [
        ("shirt-oxford", 1340.0 + 291.0),
        ("jacket-denim", 3975.0 + 448.0),
        ("tote-canvas", 485.0 + 134.0),
    ];

    /// Sampled units per unit made: ISO 2859-1 level II draws 20 of a lot
    /// of 100 (code letter F), fewer per unit from a larger lot.
    const SAMPLED_PER_UNIT: f64 = 0.2;

    /// Units of the order's currency per fen.
    fn fen_in(currency: &str) -> f64 {
        match currency {
            "CNY" => 1.0,
            "USD" => EXCHANGE_RATES[0].2.parse().unwrap(),
            other => panic!("no demo rate into {other}"),
        }
    }

    /// The dearest standard cost of one unit of `product` in `currency`,
    /// minor units: every material at its dearest offer with scrap, labour,
    /// inspection, and the dearest lane of the currency for 100 units to
    /// any customer's packing (air, billed per started kilogram).
    fn worst_unit_cost(product: usize, currency: &str) -> f64 {
        let (name, _, _, weight, _) = PRODUCTS[product];
        let mut dearest: HashMap<&str, i64> = HashMap::new();
        for (_, material, _, price, _) in OFFERS {
            let entry = dearest.entry(material).or_insert(0);
            *entry = (*entry).max(price);
        }
        let (_, lines) = BOMS.iter().find(|(p, _)| *p == name).unwrap();
        let material: f64 = lines
            .iter()
            .map(|(m, per_unit, scrap)| per_unit * (1.0 + scrap / 100.0) * dearest[m] as f64)
            .sum();
        let labour = LABOUR_FEN_PER_UNIT
            .iter()
            .find(|(p, _)| *p == name)
            .unwrap()
            .1;
        let inspection = SAMPLED_PER_UNIT * INSPECTION_RATE.1 as f64;
        let mut freight: f64 = 0.0;
        for (_, units, _, _, tare) in PACKING {
            let cartons = 100_u32.div_ceil(units[product]);
            let kg = (100.0 * weight + f64::from(cartons) * tare).ceil();
            for lane in LANES.iter().filter(|lane| lane.8 == currency) {
                let cost = match lane.6 {
                    "per_kg" => kg * lane.7 as f64,
                    _ => f64::from(cartons) * lane.7 as f64,
                };
                freight = freight.max(cost / 100.0);
            }
        }
        (material + labour + inspection) * fen_in(currency) + freight
    }

    #[test]
    fn every_sample_price_clears_its_customers_floor_with_room_to_spare() {
        for (product, (name, ..)) in PRODUCTS.iter().enumerate() {
            for (customer_id, _, _, export) in CUSTOMER_PROFILES {
                let currency = if export { "USD" } else { "CNY" };
                let (low, _) = price_range(name, export);
                let cost = worst_unit_cost(product, currency);
                // Five points above the floor, for what the estimate counts
                // that this does not (rounding, a dearer sampling plan).
                let room = f64::from(min_margin_bp(customer_id) + 500) / 10_000.0;
                assert!(
                    cost <= low as f64 * (1.0 - room),
                    "{name} for {customer_id}: worst cost {cost:.0} against the lowest price {low}"
                );
            }
        }
    }

    #[test]
    fn one_rate_values_every_cost_of_every_order() {
        let pair_known = |from: &str, to: &str| {
            from == to
                || EXCHANGE_RATES
                    .iter()
                    .any(|(a, b, ..)| (*a, *b) == (from, to) || (*a, *b) == (to, from))
        };
        let mut cost_currencies = vec!["CNY", INSPECTION_RATE.0];
        cost_currencies.extend(LANES.iter().map(|lane| lane.8));
        for (.., export) in CUSTOMER_PROFILES {
            let order_currency = if export { "USD" } else { "CNY" };
            for &cost in &cost_currencies {
                assert!(
                    pair_known(cost, order_currency),
                    "{cost} → {order_currency}"
                );
            }
        }
        for (_, _, rate, source) in EXCHANGE_RATES {
            let rate: f64 = rate.parse().unwrap();
            assert!(rate > 0.0 && rate < 1_000_000.0);
            assert!(!source.is_empty() && source.len() <= 200);
        }
    }

    #[test]
    fn the_rates_are_in_force_before_the_demo_starts() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert_eq!(
            rates_valid_from(today),
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
        );
        assert!(
            rates_valid_from(chrono::Utc::now().date_naive()) <= chrono::Utc::now().date_naive()
        );
        for (customer_id, ..) in CUSTOMER_PROFILES {
            assert!(min_margin_bp(customer_id) <= 10_000);
        }
        assert_eq!(min_margin_bp("NORDWIND"), 1200);
    }
}
