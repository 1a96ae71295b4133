//! The estimate's examples (a USD order with costs in USD and CNY, a
//! customer with a credit limit) and its properties over random inputs and
//! rates.

use proptest::prelude::*;

use super::*;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()
}

/// A USD order of 10,000.00 with costs in USD and CNY.
fn input() -> Input {
    Input {
        currency: "USD".into(),
        revenue_minor: 1_000_000,
        materials: vec![(300_000, "USD".into()), (1_000_000, "CNY".into())],
        uncosted_materials: vec!["FABRIC-X: no supplier offer".into()],
        hours_by_work_centre: [("SEW".to_owned(), 12.5), ("CUT".to_owned(), 4.0)]
            .into_iter()
            .collect(),
        labour_rates: [("CUT".to_owned(), ("USD".to_owned(), 2_000))]
            .into_iter()
            .collect(),
        freight: Some((50_000, "USD".into())),
        freight_problem: String::new(),
        inspection_sample_units: 80,
        inspection_rate: Some(("USD".into(), 100)),
        min_margin_bp: 1_500,
        credit_limit: (0, "USD".into()),
        open_balances: vec![],
    }
}

fn cny_rate() -> RatesInto {
    // 0.1408 USD per CNY, in force from 1 December.
    let from = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    [("CNY".to_owned(), (1_408_000_000, from))]
        .into_iter()
        .collect()
}

#[test]
fn each_cost_is_a_part_and_the_lines_sum_them_in_the_order_currency() {
    let estimate = estimate(&input(), &cny_rate(), day()).unwrap();
    let material: Vec<&Part> = estimate
        .parts
        .iter()
        .filter(|p| p.category == MATERIAL)
        .collect();
    assert_eq!(material.len(), 2, "one part per currency");
    let cny = material.iter().find(|p| p.original.1 == "CNY").unwrap();
    assert_eq!(cny.order_amount_minor, 140_800);
    assert_eq!(cny.rate, Some((1_408_000_000, cny_rate()["CNY"].1)));
    let usd = material.iter().find(|p| p.original.1 == "USD").unwrap();
    assert_eq!((usd.order_amount_minor, usd.rate), (300_000, None));

    assert_eq!(estimate.lines[MATERIAL], 440_800);
    assert_eq!(estimate.lines[LABOUR], 8_000, "CUT only: 4 h × 20.00");
    assert_eq!(estimate.lines[FREIGHT], 50_000);
    assert_eq!(estimate.lines[INSPECTION], 8_000, "80 units × 1.00");
    assert_eq!(estimate.cost_minor, 506_800);
    assert_eq!(estimate.margin_minor, 493_200);
    assert_eq!(estimate.margin_bp, 4_932);
    assert_eq!(estimate.below_margin, None);
    assert_eq!(
        estimate.warnings,
        vec![
            "material not costed: FABRIC-X: no supplier offer".to_owned(),
            "no labour rate for work centre \"SEW\": 12.5 h not costed".to_owned(),
        ]
    );
}

#[test]
fn what_cannot_be_costed_is_a_warning() {
    let mut without = input();
    without.freight = None;
    without.freight_problem = "no lane from CN to NO".into();
    without.inspection_rate = None;
    let estimate = estimate(&without, &cny_rate(), day()).unwrap();
    assert!(!estimate.lines.contains_key(FREIGHT));
    assert!(!estimate.lines.contains_key(INSPECTION));
    assert!(
        estimate
            .warnings
            .contains(&"freight not costed: no lane from CN to NO".to_owned())
    );
    assert!(
        estimate
            .warnings
            .iter()
            .any(|w| w.starts_with("no inspection rate: 80 sampled units"))
    );

    let mut no_sample = input();
    no_sample.inspection_sample_units = 0;
    no_sample.inspection_rate = None;
    let estimate = super::estimate(&no_sample, &cny_rate(), day()).unwrap();
    assert!(!estimate.lines.contains_key(INSPECTION));
    assert!(!estimate.warnings.iter().any(|w| w.contains("inspection")));
}

#[test]
fn every_currency_without_a_rate_is_named() {
    let mut input = input();
    input.freight = Some((20_000, "EUR".into()));
    assert_eq!(
        foreign_currencies(&input),
        ["CNY".to_owned(), "EUR".to_owned()].into_iter().collect()
    );
    let err = estimate(&input, &RatesInto::new(), day()).unwrap_err();
    assert_eq!(
        err,
        Error::MissingRate {
            currencies: vec!["CNY".into(), "EUR".into()],
            to: "USD".into(),
            on: day(),
        }
    );
    assert_eq!(
        err.to_string(),
        "no exchange rate CNY→USD, EUR→USD on or before 2026-12-05; set them with \
         SetExchangeRate"
    );
    let err = estimate(&input, &cny_rate(), day()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no exchange rate EUR→USD on or before 2026-12-05; set one with SetExchangeRate"
    );
}

#[test]
fn a_cost_above_the_order_value_comes_before_the_floor() {
    let mut input = input();
    input.revenue_minor = 500_000;
    let estimate = estimate(&input, &cny_rate(), day()).unwrap();
    assert_eq!(estimate.margin_minor, -6_800);
    assert_eq!(estimate.margin_bp, -136);
    assert_eq!(
        estimate.below_margin.as_deref(),
        Some("estimated cost 5068.00 USD exceeds the order value 5000.00 USD")
    );

    input.revenue_minor = 580_000;
    let estimate = super::estimate(&input, &cny_rate(), day()).unwrap();
    assert_eq!(estimate.margin_bp, 1_262, "73,200 / 580,000 rounded down");
    assert_eq!(
        estimate.below_margin.as_deref(),
        Some("margin 12.62% is below the customer's floor of 15.00%")
    );

    input.min_margin_bp = 0;
    let estimate = super::estimate(&input, &cny_rate(), day()).unwrap();
    assert_eq!(estimate.below_margin, None, "no floor, no loss");
}

#[test]
fn a_customer_owing_more_than_its_limit_with_this_order_is_over_it() {
    // 5,000.00 USD and 10,000.00 CNY (1,408.00 USD) open elsewhere, and
    // this order's 10,000.00 USD: 16,408.00 USD.
    let mut input = input();
    input.open_balances = vec![(1_000_000, "CNY".into()), (500_000, "USD".into())];
    input.credit_limit = (1_500_000, "USD".into());
    let estimate = estimate(&input, &cny_rate(), day()).unwrap();
    assert_eq!(estimate.credit_exposure_minor, 1_640_800);
    assert_eq!(estimate.credit_limit_minor, 1_500_000);
    assert_eq!(
        estimate.over_credit_limit.as_deref(),
        Some(
            "order value 10000.00 USD would bring the customer's open balance to 16408.00 \
             USD, over its credit limit of 15000.00 USD"
        )
    );
    assert_eq!(estimate.below_margin, None, "credit and margin are apart");

    // A limit in CNY is valued in the order currency: 200,000.00 CNY is
    // 28,160.00 USD, above what the customer would owe.
    input.credit_limit = (20_000_000, "CNY".into());
    let estimate = super::estimate(&input, &cny_rate(), day()).unwrap();
    assert_eq!(estimate.credit_limit_minor, 2_816_000);
    assert_eq!(estimate.over_credit_limit, None);

    input.credit_limit = (0, "USD".into());
    let estimate = super::estimate(&input, &cny_rate(), day()).unwrap();
    assert_eq!(
        estimate.credit_exposure_minor, 1_640_800,
        "measured all the same"
    );
    assert_eq!(
        estimate.over_credit_limit, None,
        "no limit, nothing over it"
    );
}

#[test]
fn a_balance_without_a_rate_fails_only_against_a_limit() {
    let mut input = input();
    input.open_balances = vec![(300_000, "EUR".into())];
    input.credit_limit = (5_000_000, "USD".into());
    assert!(foreign_currencies(&input).contains("EUR"));
    let err = estimate(&input, &cny_rate(), day()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no exchange rate EUR→USD on or before 2026-12-05; set one with SetExchangeRate"
    );
    input.credit_limit = (5_000_000, "GBP".into());
    let Err(Error::MissingRate { currencies, .. }) = estimate(&input, &cny_rate(), day()) else {
        panic!("the limit's currency has no rate either");
    };
    assert_eq!(currencies, ["EUR", "GBP"]);

    // Without a limit the balance is left out and said so.
    input.credit_limit = (0, "USD".into());
    let estimate = super::estimate(&input, &cny_rate(), day()).unwrap();
    assert_eq!(estimate.credit_exposure_minor, 1_000_000);
    assert!(
        estimate.warnings.contains(
            &"open balance of 3000.00 EUR left out of the credit exposure: no exchange rate \
              EUR→USD"
                .to_owned()
        ),
        "{:?}",
        estimate.warnings
    );
}

#[test]
fn margin_bp_rounds_toward_zero() {
    assert_eq!(margin_bp(1, 3), 3_333);
    assert_eq!(margin_bp(-1, 3), -3_333);
    assert_eq!(margin_bp(5, 0), 0);
    assert_eq!(margin_bp(-i64::MAX, 1), i32::MIN);
    assert_eq!(percent(1_240), "12.40%");
    assert_eq!(percent(-5), "-0.05%");
}

#[test]
fn amounts_that_overflow_are_an_error() {
    // Two amounts of one currency that cannot be added.
    let mut repeated = input();
    repeated.materials = vec![(i64::MAX, "USD".into()), (1, "USD".into())];
    assert!(matches!(
        estimate(&repeated, &cny_rate(), day()),
        Err(Error::Overflow(_))
    ));
    // Categories that cannot be added.
    let mut huge = input();
    huge.materials = vec![(i64::MAX, "USD".into())];
    assert!(matches!(
        estimate(&huge, &cny_rate(), day()),
        Err(Error::Overflow(_))
    ));
}

const CURRENCIES: [&str; 3] = ["USD", "CNY", "EUR"];

fn currency() -> impl Strategy<Value = String> {
    prop::sample::select(CURRENCIES.to_vec()).prop_map(str::to_owned)
}

prop_compose! {
    fn any_input()(
        order_currency in currency(),
        revenue_minor in 0i64..100_000_000_000_000,
        materials in prop::collection::vec((0i64..1_000_000_000_000, currency()), 0..6),
        hours in prop::collection::hash_map("[A-Z]{2,4}", 0.0f64..1_000.0, 0..5),
        rated in prop::collection::vec((currency(), 0i64..1_000_000), 5),
        freight in prop::option::of((0i64..1_000_000_000, currency())),
        inspection_sample_units in 0u32..5_000,
        inspection_rate in prop::option::of((currency(), 0i64..1_000_000)),
        min_margin_bp in 0u32..=10_000,
    ) -> Input {
        // Every other centre gets a rate, so some are costed and some
        // warned about.
        let mut centres: Vec<&String> = hours.keys().collect();
        centres.sort();
        let labour_rates: Rates = centres
            .iter()
            .zip(rated)
            .step_by(2)
            .map(|(centre, rate)| ((*centre).clone(), rate))
            .collect();
        Input {
            currency: order_currency,
            revenue_minor,
            materials,
            uncosted_materials: vec![],
            hours_by_work_centre: hours,
            labour_rates,
            freight,
            freight_problem: String::new(),
            inspection_sample_units,
            inspection_rate,
            min_margin_bp,
            credit_limit: (0, String::new()),
            open_balances: vec![],
        }
    }
}

proptest! {
    /// The estimate is the sum of its parts; margin and cost make up
    /// the order value; a person is asked exactly when the cost exceeds
    /// the value or the margin is under a floor; and a missing rate
    /// names exactly the currencies without one.
    #[test]
    fn the_estimate_is_the_sum_of_its_parts(
        input in any_input(),
        scaled in prop::collection::vec(1i64..100_000_000_000, 3),
        known in prop::collection::vec(any::<bool>(), 3),
    ) {
        let rates: RatesInto = CURRENCIES
            .iter()
            .zip(scaled.iter().zip(&known))
            .filter(|(_, (_, known))| **known)
            .map(|(currency, (scaled, _))| ((*currency).to_owned(), (*scaled, day())))
            .collect();
        let needed = foreign_currencies(&input);
        let missing: Vec<String> = needed
            .iter()
            .filter(|currency| !rates.contains_key(*currency))
            .cloned()
            .collect();
        match estimate(&input, &rates, day()) {
            Err(Error::MissingRate { currencies, .. }) => {
                prop_assert_eq!(currencies, missing);
            }
            Err(Error::Overflow(what)) => prop_assert!(false, "overflow: {}", what),
            Ok(estimate) => {
                prop_assert!(missing.is_empty());
                let parts: i64 = estimate.parts.iter().map(|p| p.order_amount_minor).sum();
                let lines: i64 = estimate.lines.values().sum();
                prop_assert_eq!(estimate.cost_minor, parts);
                prop_assert_eq!(estimate.cost_minor, lines);
                prop_assert_eq!(estimate.margin_minor + estimate.cost_minor, input.revenue_minor);
                for part in &estimate.parts {
                    if part.original.1 == input.currency {
                        prop_assert_eq!(part.order_amount_minor, part.original.0);
                        prop_assert_eq!(part.rate, None);
                    } else {
                        prop_assert!(part.rate.is_some());
                    }
                }
                let floor = i64::from(input.min_margin_bp);
                let asked = estimate.cost_minor > input.revenue_minor
                    || (floor > 0 && i64::from(estimate.margin_bp) < floor);
                prop_assert_eq!(estimate.below_margin.is_some(), asked);
            }
        }
    }
}

proptest! {
    /// The exposure is the order value plus every open balance valued in
    /// the order currency, and a person is asked about credit exactly when
    /// there is a limit and the exposure passes it.
    #[test]
    fn over_the_credit_limit_exactly_when_the_exposure_passes_a_limit(
        order_currency in currency(),
        revenue_minor in 0i64..1_000_000_000_000,
        open_balances in prop::collection::vec((0i64..1_000_000_000_000, currency()), 0..4),
        limit_minor in 0i64..=1_000_000_000_000_000,
        limit_currency in currency(),
        scaled in prop::collection::vec(1i64..100_000_000_000, 3),
    ) {
        let rates: RatesInto = CURRENCIES
            .iter()
            .zip(&scaled)
            .map(|(currency, scaled)| ((*currency).to_owned(), (*scaled, day())))
            .collect();
        let input = Input {
            currency: order_currency.clone(),
            revenue_minor,
            credit_limit: (limit_minor, limit_currency),
            open_balances: open_balances.clone(),
            ..Input::default()
        };
        let estimate = estimate(&input, &rates, day()).unwrap();
        let valued: i64 = open_balances
            .iter()
            .map(|(amount_minor, currency)| {
                if *currency == order_currency {
                    *amount_minor
                } else {
                    fx::convert(*amount_minor, currency, &order_currency, rates[currency].0)
                        .unwrap()
                }
            })
            .sum();
        prop_assert_eq!(estimate.credit_exposure_minor, revenue_minor + valued);
        prop_assert_eq!(estimate.credit_limit_minor > 0, limit_minor > 0);
        prop_assert_eq!(
            estimate.over_credit_limit.is_some(),
            estimate.credit_limit_minor > 0
                && estimate.credit_exposure_minor > estimate.credit_limit_minor
        );
    }
}
