//! Choosing a carrier lane, without a database.
//!
//! Every lane departs weekly on one weekday and wants the goods a number of
//! cut-off days before departure: ETD is the first departure on or after
//! ready date + cut-off, ETA is ETD + transit days. Freight is the rate per
//! carton times cartons, or the rate per kg times the gross weight rounded up
//! to whole kilograms (how carriers bill), in minor units with checked
//! arithmetic. The cheapest lane arriving by the deliver-by date wins (ties:
//! earlier arrival, then lane code); when none arrives in time the fastest is
//! booked and the booking says it is late, so the saga can warn the customer.
//!
//! Costs in different currencies are never compared (there are no exchange
//! rates here): lanes priced in the order's currency are used; without any,
//! the lanes are used only if they all share one currency.

use std::fmt;

use chrono::{Datelike, Duration, NaiveDate};

use crate::packing::{Carton, kg};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sea,
    Air,
    Road,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "sea" => Some(Mode::Sea),
            "air" => Some(Mode::Air),
            "road" => Some(Mode::Road),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Sea => "sea",
            Mode::Air => "air",
            Mode::Road => "road",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostBasis {
    PerCarton,
    PerKg,
}

impl CostBasis {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "per_carton" => Some(CostBasis::PerCarton),
            "per_kg" => Some(CostBasis::PerKg),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CostBasis::PerCarton => "per_carton",
            CostBasis::PerKg => "per_kg",
        }
    }
}

/// A configured carrier lane, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub code: String,
    pub carrier: String,
    pub mode: Mode,
    /// ISO weekday, 1 = Monday .. 7 = Sunday.
    pub departure_weekday: u32,
    pub transit_days: u32,
    pub cutoff_days: u32,
    pub cost_basis: CostBasis,
    pub rate_minor: i64,
    pub currency: String,
}

/// What is shipped, from the packing list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    pub cartons: u32,
    /// 0 when some product's weight is unknown.
    pub gross_weight_kg: f64,
}

impl Load {
    /// The load of a packing list's cartons. The weight is 0 when a
    /// carton's is unknown: a partial sum would underprice freight billed
    /// by weight.
    pub fn of(cartons: &[Carton]) -> Self {
        let weighed = cartons.iter().all(|carton| carton.gross_weight_kg > 0.0);
        Load {
            cartons: u32::try_from(cartons.len()).unwrap_or(u32::MAX),
            gross_weight_kg: if weighed {
                kg(cartons.iter().map(|carton| carton.gross_weight_kg).sum())
            } else {
                0.0
            },
        }
    }
}

/// The first departure on `weekday` on or after `ready + cutoff_days`.
pub fn etd(ready: NaiveDate, cutoff_days: u32, weekday: u32) -> NaiveDate {
    let earliest = ready + Duration::days(i64::from(cutoff_days));
    let today = earliest.weekday().number_from_monday();
    let wait = (weekday + 7 - today) % 7;
    earliest + Duration::days(i64::from(wait))
}

/// Freight for `load` on `lane`, or why it cannot be priced.
pub fn freight_cost(lane: &Lane, load: Load) -> Result<i64, String> {
    let units = match lane.cost_basis {
        CostBasis::PerCarton => i64::from(load.cartons),
        CostBasis::PerKg => {
            if !load.gross_weight_kg.is_finite() || load.gross_weight_kg <= 0.0 {
                return Err("the gross weight is unknown (a product has no net weight)".into());
            }
            // Billed per started kilogram; the gram rounding keeps 12.0000001
            // from becoming 13.
            let grams = (load.gross_weight_kg * 1000.0).round();
            if grams > 1e15 {
                return Err("the gross weight is too large".into());
            }
            (grams as i64 + 999) / 1000
        }
    };
    units
        .checked_mul(lane.rate_minor)
        .ok_or_else(|| "the freight cost does not fit in minor units".to_owned())
}

/// A priced, dated lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub lane: Lane,
    pub etd: NaiveDate,
    pub eta: NaiveDate,
    pub cost_minor: i64,
    pub meets_deliver_by: bool,
}

/// Why no lane could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoLane(pub String);

impl fmt::Display for NoLane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The lane to book for `load`, ready on `ready`, to arrive by `deliver_by`.
pub fn choose(
    lanes: &[Lane],
    load: Load,
    ready: NaiveDate,
    deliver_by: NaiveDate,
    order_currency: &str,
) -> Result<Quote, NoLane> {
    if lanes.is_empty() {
        return Err(NoLane("no carrier lanes are configured".into()));
    }
    let in_order_currency: Vec<&Lane> = lanes
        .iter()
        .filter(|lane| lane.currency == order_currency)
        .collect();
    let comparable = if in_order_currency.is_empty() {
        let first = &lanes[0].currency;
        if lanes.iter().any(|lane| &lane.currency != first) {
            let mut currencies: Vec<&str> = lanes.iter().map(|l| l.currency.as_str()).collect();
            currencies.sort_unstable();
            currencies.dedup();
            return Err(NoLane(format!(
                "no lane is priced in {order_currency} and the lanes' currencies ({}) cannot be compared",
                currencies.join(", ")
            )));
        }
        lanes.iter().collect()
    } else {
        in_order_currency
    };

    let mut quotes = Vec::new();
    let mut unpriced = Vec::new();
    for lane in comparable {
        match freight_cost(lane, load) {
            Ok(cost_minor) => {
                let etd = etd(ready, lane.cutoff_days, lane.departure_weekday);
                let eta = etd + Duration::days(i64::from(lane.transit_days));
                quotes.push(Quote {
                    lane: lane.clone(),
                    etd,
                    eta,
                    cost_minor,
                    meets_deliver_by: eta <= deliver_by,
                });
            }
            Err(reason) => unpriced.push(format!("{}: {reason}", lane.code)),
        }
    }
    let on_time = quotes.iter().filter(|q| q.meets_deliver_by).min_by(|a, b| {
        (a.cost_minor, a.eta, &a.lane.code).cmp(&(b.cost_minor, b.eta, &b.lane.code))
    });
    if let Some(best) = on_time {
        return Ok(best.clone());
    }
    quotes
        .iter()
        .min_by(|a, b| {
            (a.eta, a.cost_minor, &a.lane.code).cmp(&(b.eta, b.cost_minor, &b.lane.code))
        })
        .cloned()
        .ok_or_else(|| NoLane(format!("no lane can be priced ({})", unpriced.join("; "))))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn lane(
        code: &str,
        mode: Mode,
        weekday: u32,
        transit: u32,
        basis: CostBasis,
        rate: i64,
    ) -> Lane {
        Lane {
            code: code.into(),
            carrier: format!("{code} line"),
            mode,
            departure_weekday: weekday,
            transit_days: transit,
            cutoff_days: 2,
            cost_basis: basis,
            rate_minor: rate,
            currency: "USD".into(),
        }
    }

    #[test]
    fn etd_is_the_first_departure_after_the_cutoff() {
        // 2026-03-02 is a Monday; cut-off 2 days -> earliest Wednesday.
        assert_eq!(etd(date("2026-03-02"), 2, 3), date("2026-03-04"));
        assert_eq!(etd(date("2026-03-02"), 2, 5), date("2026-03-06"));
        // Tuesday departure already gone that week: next Tuesday.
        assert_eq!(etd(date("2026-03-02"), 2, 2), date("2026-03-10"));
    }

    #[test]
    fn freight_per_carton_and_per_started_kg() {
        let load = Load {
            cartons: 10,
            gross_weight_kg: 120.2,
        };
        assert_eq!(
            freight_cost(&lane("A", Mode::Sea, 1, 1, CostBasis::PerCarton, 500), load),
            Ok(5000)
        );
        assert_eq!(
            freight_cost(&lane("B", Mode::Air, 1, 1, CostBasis::PerKg, 300), load),
            Ok(121 * 300)
        );
        let unknown = Load {
            cartons: 10,
            gross_weight_kg: 0.0,
        };
        assert!(freight_cost(&lane("B", Mode::Air, 1, 1, CostBasis::PerKg, 300), unknown).is_err());
        let huge = lane("C", Mode::Sea, 1, 1, CostBasis::PerCarton, i64::MAX);
        assert!(freight_cost(&huge, load).is_err());
    }

    #[test]
    fn the_cheapest_lane_arriving_in_time_wins() {
        let lanes = vec![
            lane("SEA", Mode::Sea, 5, 30, CostBasis::PerCarton, 400),
            lane("AIR", Mode::Air, 2, 3, CostBasis::PerKg, 450),
            lane("ROAD", Mode::Road, 1, 12, CostBasis::PerCarton, 900),
        ];
        let load = Load {
            cartons: 10,
            gross_weight_kg: 100.0,
        };
        let ready = date("2026-03-02");
        // Sea arrives 2026-04-05: too late for 2026-03-25; road (9000) is
        // cheaper than air (45000) and arrives 2026-03-21.
        let quote = choose(&lanes, load, ready, date("2026-03-25"), "USD").unwrap();
        assert_eq!(quote.lane.code, "ROAD");
        assert_eq!(
            (quote.etd, quote.eta),
            (date("2026-03-09"), date("2026-03-21"))
        );
        assert_eq!(quote.cost_minor, 9000);
        assert!(quote.meets_deliver_by);
        // Plenty of time: sea.
        assert_eq!(
            choose(&lanes, load, ready, date("2026-05-01"), "USD")
                .unwrap()
                .lane
                .code,
            "SEA"
        );
        // Nothing in time: the fastest, flagged late.
        let late = choose(&lanes, load, ready, date("2026-03-05"), "USD").unwrap();
        assert_eq!(late.lane.code, "AIR");
        assert!(!late.meets_deliver_by);
    }

    #[test]
    fn currencies_are_not_mixed() {
        let mut eur = lane("EUR", Mode::Sea, 1, 10, CostBasis::PerCarton, 1);
        eur.currency = "EUR".into();
        let lanes = vec![
            lane("USD", Mode::Sea, 1, 10, CostBasis::PerCarton, 100),
            eur,
        ];
        let load = Load {
            cartons: 1,
            gross_weight_kg: 1.0,
        };
        let ready = date("2026-03-02");
        let far = date("2027-01-01");
        assert_eq!(
            choose(&lanes, load, ready, far, "USD").unwrap().lane.code,
            "USD"
        );
        assert_eq!(
            choose(&lanes, load, ready, far, "EUR").unwrap().lane.code,
            "EUR"
        );
        assert!(
            choose(&lanes, load, ready, far, "CNY")
                .unwrap_err()
                .0
                .contains("EUR, USD")
        );
        assert!(choose(&[], load, ready, far, "USD").is_err());
    }

    proptest! {
        #[test]
        fn etd_is_the_right_weekday_within_a_week(days in 0i64..3_000, cutoff in 0u32..30, weekday in 1u32..=7) {
            let ready = date("2025-01-01") + Duration::days(days);
            let departure = etd(ready, cutoff, weekday);
            let earliest = ready + Duration::days(i64::from(cutoff));
            prop_assert_eq!(departure.weekday().number_from_monday(), weekday);
            prop_assert!(departure >= earliest);
            prop_assert!(departure < earliest + Duration::days(7));
        }
    }
}
