//! The review's cost estimate of an order (pure): what the departments
//! answered (procurement's material cost per currency, production's hours
//! per work centre, logistics' freight quote, quality's sample size) costed
//! with finance's own standard costs (labour rates, the inspection rate),
//! valued in the order currency and measured against the order value.
//!
//! [`estimate`] builds one [`Part`] per cost in its own currency (material:
//! one per currency; labour: one per work centre, hours × rate by
//! [`costs::labour_cost`]; freight: the quote; inspection: sample units ×
//! rate), converts each with [`fx::convert`] at the rate the IO side looked
//! up ([`RatesInto`], for the currencies [`foreign_currencies`] names), and
//! sums them per category into the budget lines. What cannot be costed (no
//! offer, no labour rate, no lane, no inspection rate) is a warning, not an
//! error: the estimate goes on without it. A cost whose currency has no
//! rate is an error ([`Error::MissingRate`]) naming every such currency, so
//! one `SetExchangeRate` round fixes them all. [`crate::estimates`] stores
//! and announces the result.
//!
//! The same estimate measures the customer's credit (`credit`): what it
//! would owe with this order (the outstanding of its other open
//! receivables, which the IO side reads per currency, plus this order's
//! value) against its credit limit, both valued in the order currency with
//! the same rates. With a limit, a balance or the limit in a currency
//! without a rate is missing like a cost's; without one nothing is decided
//! on the figure, so such a balance is left out with a warning.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::NaiveDate;
use gendan_proto::money;

use crate::costs::{self, FREIGHT, INSPECTION, LABOUR, MATERIAL, Rates};
use crate::fx;

/// Rates into the order currency by the currency they convert from: the
/// rate scaled by [`fx::RATE_SCALE`] and the date it is in force from.
pub type RatesInto = BTreeMap<String, (i64, NaiveDate)>;

/// What the estimate is made of, checked ([`crate::validate::estimate_costs`])
/// and completed with finance's standard costs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Input {
    /// The order currency: every total is in it.
    pub currency: String,
    /// The order value.
    pub revenue_minor: i64,
    /// Standard material cost, by currency (a currency may repeat: its
    /// amounts are added).
    pub materials: Vec<(i64, String)>,
    /// Materials procurement could not price ("FABRIC-X: no supplier offer").
    pub uncosted_materials: Vec<String>,
    pub hours_by_work_centre: HashMap<String, f64>,
    pub labour_rates: Rates,
    /// The freight quote; `None` when logistics found no lane.
    pub freight: Option<(i64, String)>,
    /// Why there is no quote ("" when there is one).
    pub freight_problem: String,
    pub inspection_sample_units: u32,
    /// Currency and minor units per sampled unit.
    pub inspection_rate: Option<(String, i64)>,
    /// The customer's margin floor in basis points (0 = none).
    pub min_margin_bp: u32,
    /// The customer's credit limit and its currency (0 = none; the
    /// currency is never empty once checked).
    pub credit_limit: (i64, String),
    /// What the customer owes on its other open receivables, one entry
    /// per currency (read by [`crate::estimates`]).
    pub open_balances: Vec<(i64, String)>,
}

/// One cost, in its own currency and in the order's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub category: &'static str,
    pub description: String,
    /// Amount and currency as costed.
    pub original: (i64, String),
    pub order_amount_minor: i64,
    /// The rate used and the date it is in force from; `None` in the order
    /// currency.
    pub rate: Option<(i64, NaiveDate)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    pub currency: String,
    pub parts: Vec<Part>,
    /// Per category, in the order currency: the budget lines.
    pub lines: BTreeMap<&'static str, i64>,
    pub cost_minor: i64,
    pub revenue_minor: i64,
    /// revenue - cost (negative: a loss).
    pub margin_minor: i64,
    /// The margin in basis points of revenue, rounded toward zero (0 when
    /// revenue is 0).
    pub margin_bp: i32,
    pub min_margin_bp: u32,
    /// Why a person must decide: the cost exceeds the order value, or the
    /// margin is below the customer's floor.
    pub below_margin: Option<String>,
    /// What the customer would owe with this order: the outstanding of its
    /// other open receivables plus the order value.
    pub credit_exposure_minor: i64,
    /// The customer's credit limit in the order currency (0 = none).
    pub credit_limit_minor: i64,
    /// Why a person must decide about credit: the exposure is over the
    /// limit.
    pub over_credit_limit: Option<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Costs in these currencies have no rate into `to` on or before `on`.
    MissingRate {
        currencies: Vec<String>,
        to: String,
        on: NaiveDate,
    },
    /// An amount too large to add up or convert (what it was).
    Overflow(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingRate { currencies, to, on } => {
                let pairs: Vec<String> = currencies.iter().map(|c| format!("{c}→{to}")).collect();
                let which = if currencies.len() == 1 { "one" } else { "them" };
                write!(
                    f,
                    "no exchange rate {} on or before {on}; set {which} with SetExchangeRate",
                    pairs.join(", ")
                )
            }
            Error::Overflow(what) => write!(f, "the estimate overflows: {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// A cost in its own currency, before conversion.
struct Costed {
    category: &'static str,
    description: String,
    amount_minor: i64,
    currency: String,
}

/// Every cost of `input` in its own currency, and what could not be costed.
fn costed(input: &Input) -> Result<(Vec<Costed>, Vec<String>), Error> {
    let mut parts = Vec::new();
    let mut warnings = Vec::new();

    // One part per currency: procurement already sums per currency, but a
    // repeat must not become two lines of the same thing.
    let mut materials: BTreeMap<&str, i64> = BTreeMap::new();
    for (amount_minor, currency) in &input.materials {
        let sum = materials.entry(currency.as_str()).or_insert(0);
        *sum = sum
            .checked_add(*amount_minor)
            .ok_or_else(|| Error::Overflow(format!("material cost in {currency}")))?;
    }
    for (currency, amount_minor) in materials {
        parts.push(Costed {
            category: MATERIAL,
            description: format!("materials priced in {currency} (standard cost)"),
            amount_minor,
            currency: currency.to_owned(),
        });
    }
    warnings.extend(
        input
            .uncosted_materials
            .iter()
            .map(|material| format!("material not costed: {material}")),
    );

    let mut centres: Vec<(&String, &f64)> = input.hours_by_work_centre.iter().collect();
    // Map order is random; the parts of a repeat must come out the same.
    centres.sort_by(|a, b| a.0.cmp(b.0));
    for (work_centre, &hours) in centres {
        // A centre the routing passes through without hours costs nothing
        // and needs no rate.
        if hours == 0.0 {
            continue;
        }
        let Some((currency, rate)) = input.labour_rates.get(work_centre) else {
            warnings.push(format!(
                "no labour rate for work centre {work_centre:?}: {hours} h not costed"
            ));
            continue;
        };
        let Some(amount_minor) = costs::labour_cost(hours, *rate) else {
            warnings.push(format!("{hours} h at {work_centre:?} cannot be costed"));
            continue;
        };
        parts.push(Costed {
            category: LABOUR,
            description: format!(
                "labour {work_centre}: {hours} h at {}/h",
                money(*rate, currency)
            ),
            amount_minor,
            currency: currency.clone(),
        });
    }

    let problem = input.freight_problem.trim();
    match &input.freight {
        Some((amount_minor, currency)) => {
            parts.push(Costed {
                category: FREIGHT,
                description: "freight quote".to_owned(),
                amount_minor: *amount_minor,
                currency: currency.clone(),
            });
            if !problem.is_empty() {
                warnings.push(format!("freight: {problem}"));
            }
        }
        None if problem.is_empty() => warnings.push("freight not costed: no quote".to_owned()),
        None => warnings.push(format!("freight not costed: {problem}")),
    }

    let units = input.inspection_sample_units;
    if units > 0 {
        match &input.inspection_rate {
            None => warnings.push(format!(
                "no inspection rate: {units} sampled units not costed; set one with \
                 SetInspectionRate"
            )),
            Some((currency, rate)) => {
                let amount_minor = rate
                    .checked_mul(i64::from(units))
                    .ok_or_else(|| Error::Overflow(format!("{units} sampled units")))?;
                parts.push(Costed {
                    category: INSPECTION,
                    description: format!(
                        "final inspection: {units} sampled units at {} each",
                        money(*rate, currency)
                    ),
                    amount_minor,
                    currency: currency.clone(),
                });
            }
        }
    }
    Ok((parts, warnings))
}

/// The currencies other than the order's that the estimate of `input`
/// converts (its costs, the customer's open balances and, when there is
/// one, its credit limit): the rates the IO side must look up. Empty when
/// the costs overflow ([`estimate`] says so).
pub fn foreign_currencies(input: &Input) -> BTreeSet<String> {
    let Ok((parts, _)) = costed(input) else {
        return BTreeSet::new();
    };
    let (limit_minor, limit_currency) = &input.credit_limit;
    let limit = (*limit_minor > 0).then_some(limit_currency);
    parts
        .iter()
        .map(|part| &part.currency)
        .chain(input.open_balances.iter().map(|(_, currency)| currency))
        .chain(limit)
        .filter(|currency| **currency != input.currency)
        .cloned()
        .collect()
}

/// `amount_minor` of `currency` in the order currency at the rate of
/// `rates`; `None` when there is none.
fn into_order(
    input: &Input,
    rates: &RatesInto,
    amount_minor: i64,
    currency: &str,
) -> Result<Option<i64>, Error> {
    if currency == input.currency {
        return Ok(Some(amount_minor));
    }
    let Some(&(scaled, _)) = rates.get(currency) else {
        return Ok(None);
    };
    fx::convert(amount_minor, currency, &input.currency, scaled)
        .map(Some)
        .ok_or_else(|| {
            Error::Overflow(format!(
                "{} cannot be converted into {}",
                money(amount_minor, currency),
                input.currency
            ))
        })
}

/// The customer's exposure with this order and its credit limit, both in
/// the order currency. Currencies that must be valued and have no rate are
/// added to `missing`; a balance that need not be (no limit) is a warning.
/// This order counts at its full value, even when an amendment's review
/// finds part of it paid: its own receivable is not among the balances.
fn credit(
    input: &Input,
    rates: &RatesInto,
    missing: &mut BTreeSet<String>,
    warnings: &mut Vec<String>,
) -> Result<(i64, i64), Error> {
    let (limit_minor, limit_currency) = &input.credit_limit;
    let limited = *limit_minor > 0;
    let mut order_limit_minor = 0;
    if limited {
        match into_order(input, rates, *limit_minor, limit_currency)? {
            // A limit that rounds to nothing is still a limit: no credit
            // at all, not none to check.
            Some(converted) => order_limit_minor = converted.max(1),
            None => {
                missing.insert(limit_currency.clone());
            }
        }
    }
    let mut exposure_minor = input.revenue_minor;
    for (amount_minor, currency) in &input.open_balances {
        match into_order(input, rates, *amount_minor, currency)? {
            Some(converted) => {
                exposure_minor = exposure_minor
                    .checked_add(converted)
                    .ok_or_else(|| Error::Overflow("the credit exposure".to_owned()))?;
            }
            None if limited => {
                missing.insert(currency.clone());
            }
            None => warnings.push(format!(
                "open balance of {} left out of the credit exposure: no exchange rate \
                 {currency}→{}",
                money(*amount_minor, currency),
                input.currency
            )),
        }
    }
    Ok((exposure_minor, order_limit_minor))
}

/// The estimate of `input` with `rates` into the order currency in force
/// on `on` (named in the error when one is missing).
pub fn estimate(input: &Input, rates: &RatesInto, on: NaiveDate) -> Result<Estimate, Error> {
    let (costed, mut warnings) = costed(input)?;
    let mut missing: BTreeSet<String> = BTreeSet::new();
    let mut parts = Vec::with_capacity(costed.len());
    for cost in costed {
        let (order_amount_minor, rate) = if cost.currency == input.currency {
            (cost.amount_minor, None)
        } else if let Some(&(scaled, valid_from)) = rates.get(&cost.currency) {
            let converted = fx::convert(cost.amount_minor, &cost.currency, &input.currency, scaled)
                .ok_or_else(|| {
                    Error::Overflow(format!(
                        "{} cannot be converted into {}",
                        money(cost.amount_minor, &cost.currency),
                        input.currency
                    ))
                })?;
            (converted, Some((scaled, valid_from)))
        } else {
            missing.insert(cost.currency);
            continue;
        };
        parts.push(Part {
            category: cost.category,
            description: cost.description,
            original: (cost.amount_minor, cost.currency),
            order_amount_minor,
            rate,
        });
    }
    let (credit_exposure_minor, credit_limit_minor) =
        credit(input, rates, &mut missing, &mut warnings)?;
    if !missing.is_empty() {
        return Err(Error::MissingRate {
            currencies: missing.into_iter().collect(),
            to: input.currency.clone(),
            on,
        });
    }

    let overflow = |what: &str| Error::Overflow(what.to_owned());
    let mut lines: BTreeMap<&'static str, i64> = BTreeMap::new();
    for part in &parts {
        let line = lines.entry(part.category).or_insert(0);
        *line = line
            .checked_add(part.order_amount_minor)
            .ok_or_else(|| overflow(part.category))?;
    }
    let cost_minor = lines
        .values()
        .try_fold(0i64, |sum, line| sum.checked_add(*line))
        .ok_or_else(|| overflow("the total cost"))?;
    let revenue_minor = input.revenue_minor;
    let margin_minor = revenue_minor
        .checked_sub(cost_minor)
        .ok_or_else(|| overflow("the margin"))?;
    let margin_bp = margin_bp(margin_minor, revenue_minor);
    let below_margin = below_margin(
        &input.currency,
        cost_minor,
        revenue_minor,
        margin_bp,
        input.min_margin_bp,
    );
    let over_credit_limit = over_credit_limit(
        &input.currency,
        revenue_minor,
        credit_exposure_minor,
        credit_limit_minor,
    );
    debug_assert_eq!(
        parts
            .iter()
            .map(|p| i128::from(p.order_amount_minor))
            .sum::<i128>(),
        i128::from(cost_minor)
    );
    Ok(Estimate {
        currency: input.currency.clone(),
        parts,
        lines,
        cost_minor,
        revenue_minor,
        margin_minor,
        margin_bp,
        min_margin_bp: input.min_margin_bp,
        below_margin,
        credit_exposure_minor,
        credit_limit_minor,
        over_credit_limit,
        warnings,
    })
}

/// `margin × 10000 / revenue`, rounded toward zero; 0 when revenue is 0,
/// and held to the `i32` range the message carries (only a loss many
/// times the order value reaches it).
pub fn margin_bp(margin_minor: i64, revenue_minor: i64) -> i32 {
    if revenue_minor == 0 {
        return 0;
    }
    // i128: margin × 10000 overflows i64 for large orders. Integer division
    // rounds toward zero.
    let bp = i128::from(margin_minor) * 10_000 / i128::from(revenue_minor);
    i32::try_from(bp).unwrap_or(if bp < 0 { i32::MIN } else { i32::MAX })
}

/// Basis points as a percentage with two decimals ("12.40%").
fn percent(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    let magnitude = bp.unsigned_abs();
    format!("{sign}{}.{:02}%", magnitude / 100, magnitude % 100)
}

/// Why the estimate needs a person's decision, if it does: a cost above
/// the order value first (a loss whatever the floor), then a margin below
/// the customer's floor.
fn below_margin(
    currency: &str,
    cost_minor: i64,
    revenue_minor: i64,
    margin_bp: i32,
    min_margin_bp: u32,
) -> Option<String> {
    if cost_minor > revenue_minor {
        return Some(format!(
            "estimated cost {} exceeds the order value {}",
            money(cost_minor, currency),
            money(revenue_minor, currency)
        ));
    }
    if min_margin_bp > 0 && i64::from(margin_bp) < i64::from(min_margin_bp) {
        return Some(format!(
            "margin {} is below the customer's floor of {}",
            percent(i64::from(margin_bp)),
            percent(i64::from(min_margin_bp))
        ));
    }
    None
}

/// Why the customer's credit needs a person's decision, if it does: it has
/// a limit and this order would take what it owes past it.
fn over_credit_limit(
    currency: &str,
    revenue_minor: i64,
    exposure_minor: i64,
    limit_minor: i64,
) -> Option<String> {
    if limit_minor <= 0 || exposure_minor <= limit_minor {
        return None;
    }
    Some(format!(
        "order value {} would bring the customer's open balance to {}, over its credit limit \
         of {}",
        money(revenue_minor, currency),
        money(exposure_minor, currency),
        money(limit_minor, currency)
    ))
}

#[cfg(test)]
mod tests;
