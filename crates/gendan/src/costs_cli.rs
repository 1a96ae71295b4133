//! `gendan finance estimate` and `gendan finance ledger`: an order's costs
//! as finance keeps them, every figure in the order currency.
//!
//! The estimate is the review's (GetCostEstimate): the plan per category,
//! which is the budget the ledger is measured against, each part with its
//! own amount and the rate that valued it, the revenue, cost and margin
//! against the customer's floor, what the customer would owe with the order
//! against its credit limit, why a person had to decide, and what could
//! not be costed. The ledger (GetCostLedger) sets plan against actual per
//! category with the variance, then lists the entries as booked: the
//! original amount and currency, the value in the order currency at the
//! rate of the booking date, and the costs still waiting for a rate.
//! [`plan_rows`] and [`percent`] serve `gendan orders show` too.

use gendan_proto::v1::{self, CostEstimate, CostLedger};
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::cli::{Output, dash, money, print_json, print_table, status_error, write_line};
use crate::retry::rpc;

/// The finance client the `finance` commands share.
pub type FinanceClient = v1::finance_service_client::FinanceServiceClient<Channel>;

/// Basis points as a percentage: 1234 → "12.34 %", -500 → "-5.00 %".
pub fn percent(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    let abs = bp.unsigned_abs();
    format!("{sign}{}.{:02} %", abs / 100, abs % 100)
}

/// A variance's percentage with its sign: "+7.00 %", "-21.60 %".
pub fn signed_percent(bp: i64) -> String {
    if bp > 0 {
        format!("+{}", percent(bp))
    } else {
        percent(bp)
    }
}

/// A variance with its sign: "+350.00 USD".
fn signed_money(minor: i64, currency: &str) -> String {
    if minor > 0 {
        format!("+{}", money(minor, currency))
    } else {
        money(minor, currency)
    }
}

/// The customer's margin floor: "none" or "10.00 %".
pub fn floor_text(bp: u32) -> String {
    match bp {
        0 => "none".to_owned(),
        bp => percent(i64::from(bp)),
    }
}

/// The customer's credit limit in the estimate's currency: "none" or
/// "50000.00 USD".
fn credit_limit_text(estimate: &CostEstimate) -> String {
    match estimate.credit_limit_minor {
        0 => "none".to_owned(),
        limit => money(limit, &estimate.currency),
    }
}

/// `0.1408` as given, "-" for a part in the order currency (no rate).
fn rate_text(rate: &str, rate_date: &str) -> (String, String) {
    (dash(rate), dash(rate_date))
}

/// Lines of "key  value", keys aligned, in the order given (`print_pairs`
/// sorts its keys; a cost summary reads top-down).
pub fn print_lines(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    for (key, value) in pairs {
        write_line(format_args!("{key:<width$}  {value}"));
    }
}

/// Rows of the plan per category with its share of the cost, and a total.
pub fn plan_rows(estimate: &CostEstimate) -> Vec<Vec<String>> {
    let currency = estimate.currency.as_str();
    let mut rows: Vec<Vec<String>> = estimate
        .lines
        .iter()
        .map(|line| {
            let share = if estimate.cost_minor > 0 {
                percent(bp_of(line.amount_minor, estimate.cost_minor))
            } else {
                "-".to_owned()
            };
            vec![
                line.category.clone(),
                money(line.amount_minor, currency),
                share,
            ]
        })
        .collect();
    rows.push(vec![
        "total".to_owned(),
        money(estimate.cost_minor, currency),
        String::new(),
    ]);
    rows
}

/// `part` of `whole` in basis points, rounded half away from zero.
fn bp_of(part: i64, whole: i64) -> i64 {
    if whole == 0 {
        return 0;
    }
    let numerator = i128::from(part) * 10_000;
    let whole = i128::from(whole);
    let (quotient, remainder) = (numerator / whole, numerator % whole);
    let rounded = if 2 * remainder.abs() >= whole.abs() {
        quotient + numerator.signum() * whole.signum()
    } else {
        quotient
    };
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// The margin line: "1150.00 USD (14.38 %)".
pub fn margin_text(estimate: &CostEstimate) -> String {
    format!(
        "{} ({})",
        money(estimate.margin_minor, &estimate.currency),
        percent(i64::from(estimate.margin_bp))
    )
}

pub fn estimate_json(estimate: &CostEstimate) -> Value {
    let currency = estimate.currency.as_str();
    json!({
        "order_id": estimate.order_id,
        "revision": estimate.revision,
        "estimated_on": estimate.estimated_on,
        "currency": currency,
        "revenue_minor": estimate.revenue_minor,
        "revenue": money(estimate.revenue_minor, currency),
        "lines": estimate.lines.iter().map(|line| json!({
            "category": line.category,
            "plan_minor": line.amount_minor,
            "plan": money(line.amount_minor, currency),
        })).collect::<Vec<_>>(),
        "cost_minor": estimate.cost_minor,
        "cost": money(estimate.cost_minor, currency),
        "margin_minor": estimate.margin_minor,
        "margin": money(estimate.margin_minor, currency),
        "margin_bp": estimate.margin_bp,
        "min_margin_bp": estimate.min_margin_bp,
        "below_margin": estimate.below_margin,
        "credit_exposure_minor": estimate.credit_exposure_minor,
        "credit_exposure": money(estimate.credit_exposure_minor, currency),
        "credit_limit_minor": estimate.credit_limit_minor,
        "credit_limit": money(estimate.credit_limit_minor, currency),
        "over_credit_limit": estimate.over_credit_limit,
        "parts": estimate.parts.iter().map(|part| {
            let original = part.original.clone().unwrap_or_default();
            json!({
                "category": part.category,
                "description": part.description,
                "original_minor": original.amount_minor,
                "original_currency": original.currency,
                "original": money(original.amount_minor, &original.currency),
                "rate": part.rate,
                "rate_date": part.rate_date,
                "order_amount_minor": part.order_amount_minor,
                "value": money(part.order_amount_minor, currency),
            })
        }).collect::<Vec<_>>(),
        "warnings": estimate.warnings,
    })
}

fn print_estimate(estimate: &CostEstimate) {
    let currency = estimate.currency.as_str();
    write_line(format_args!(
        "cost estimate of order {}, revision {}, made on {}, in {currency}",
        estimate.order_id,
        estimate.revision,
        dash(&estimate.estimated_on)
    ));
    write_line(format_args!(""));
    print_table(&["category", "plan", "share"], plan_rows(estimate));
    if !estimate.parts.is_empty() {
        write_line(format_args!(""));
        let value_header = format!("in {currency}");
        print_table(
            &[
                "category",
                "part",
                "original",
                "rate",
                "rate from",
                value_header.as_str(),
            ],
            estimate
                .parts
                .iter()
                .map(|part| {
                    let original = part.original.clone().unwrap_or_default();
                    let (rate, rate_date) = rate_text(&part.rate, &part.rate_date);
                    vec![
                        part.category.clone(),
                        part.description.clone(),
                        money(original.amount_minor, &original.currency),
                        rate,
                        rate_date,
                        money(part.order_amount_minor, currency),
                    ]
                })
                .collect(),
        );
    }
    write_line(format_args!(""));
    let mut lines = vec![
        ("revenue", money(estimate.revenue_minor, currency)),
        ("cost", money(estimate.cost_minor, currency)),
        ("margin", margin_text(estimate)),
        ("margin floor", floor_text(estimate.min_margin_bp)),
    ];
    if !estimate.below_margin.is_empty() {
        lines.push(("below margin", estimate.below_margin.clone()));
    }
    lines.push((
        "credit exposure",
        money(estimate.credit_exposure_minor, currency),
    ));
    lines.push(("credit limit", credit_limit_text(estimate)));
    if !estimate.over_credit_limit.is_empty() {
        lines.push(("over credit limit", estimate.over_credit_limit.clone()));
    }
    print_lines(&lines);
    print_warnings(&estimate.warnings);
}

fn print_warnings(warnings: &[String]) {
    if warnings.is_empty() {
        return;
    }
    write_line(format_args!(""));
    write_line(format_args!("warnings:"));
    for warning in warnings {
        write_line(format_args!("  {warning}"));
    }
}

/// `gendan finance estimate <order>`.
pub async fn estimate(
    finance: &mut FinanceClient,
    order_id: String,
    output: Output,
) -> anyhow::Result<()> {
    let estimate = rpc!(
        finance,
        get_cost_estimate,
        v1::GetCostEstimateRequest { order_id }
    )
    .map_err(status_error)?;
    match output {
        Output::Json => print_json(&estimate_json(&estimate)),
        Output::Table => print_estimate(&estimate),
    }
    Ok(())
}

pub fn ledger_json(ledger: &CostLedger) -> Value {
    let currency = ledger.currency.as_str();
    json!({
        "order_id": ledger.order_id,
        "currency": currency,
        "budget_minor": ledger.budget_minor,
        "budget": money(ledger.budget_minor, currency),
        "actual_minor": ledger.actual_minor,
        "actual": money(ledger.actual_minor, currency),
        "variance_minor": ledger.variance_minor,
        "variance_bp": ledger.variance_bp,
        "over_budget": ledger.over_budget,
        "revenue_minor": ledger.revenue_minor,
        "margin_minor": ledger.margin_minor,
        "categories": ledger.categories.iter().map(|line| json!({
            "category": line.category,
            "plan_minor": line.plan_minor,
            "actual_minor": line.actual_minor,
            "variance_minor": line.variance_minor,
            "variance_bp": line.variance_bp,
            "over": line.over,
        })).collect::<Vec<_>>(),
        "entries": ledger.entries.iter().map(|entry| json!({
            "event_id": entry.event_id,
            "category": entry.category,
            "description": entry.description,
            "amount_minor": entry.amount_minor,
            "currency": entry.currency,
            "booked_at": entry.booked_at,
            "converted": entry.converted,
            "order_amount_minor": entry.order_amount_minor,
            "rate": entry.rate,
            "rate_date": entry.rate_date,
            "warning": entry.warning,
        })).collect::<Vec<_>>(),
        "unconverted": ledger.unconverted.iter().map(|cost| json!({
            "currency": cost.currency,
            "amount_minor": cost.amount_minor,
        })).collect::<Vec<_>>(),
        "warnings": ledger.warnings,
    })
}

fn print_ledger(ledger: &CostLedger) {
    let currency = ledger.currency.as_str();
    write_line(format_args!(
        "cost ledger of order {}, in {}",
        ledger.order_id,
        dash(currency)
    ));
    write_line(format_args!(""));
    let mut rows: Vec<Vec<String>> = ledger
        .categories
        .iter()
        .map(|line| {
            vec![
                line.category.clone(),
                money(line.plan_minor, currency),
                money(line.actual_minor, currency),
                signed_money(line.variance_minor, currency),
                if line.plan_minor > 0 {
                    signed_percent(i64::from(line.variance_bp))
                } else {
                    "-".to_owned()
                },
                if line.over {
                    "OVER".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    rows.push(vec![
        "total".to_owned(),
        money(ledger.budget_minor, currency),
        money(ledger.actual_minor, currency),
        signed_money(ledger.variance_minor, currency),
        if ledger.budget_minor > 0 {
            signed_percent(i64::from(ledger.variance_bp))
        } else {
            "-".to_owned()
        },
        if ledger.over_budget {
            "OVER BUDGET".into()
        } else {
            String::new()
        },
    ]);
    print_table(
        &["category", "plan", "actual", "variance", "variance %", ""],
        rows,
    );
    write_line(format_args!(""));
    print_lines(&[
        ("revenue", money(ledger.revenue_minor, currency)),
        ("margin", money(ledger.margin_minor, currency)),
    ]);
    if !ledger.entries.is_empty() {
        write_line(format_args!(""));
        let value_header = format!("in {}", dash(currency));
        print_table(
            &[
                "booked",
                "category",
                "what",
                "original",
                "rate",
                "rate from",
                value_header.as_str(),
                "note",
            ],
            ledger
                .entries
                .iter()
                .map(|entry| {
                    let (rate, rate_date) = rate_text(&entry.rate, &entry.rate_date);
                    let (value, note) = if entry.converted {
                        (
                            money(entry.order_amount_minor, currency),
                            entry.warning.clone(),
                        )
                    } else if entry.warning.is_empty() {
                        ("-".to_owned(), "no exchange rate yet".to_owned())
                    } else {
                        ("-".to_owned(), entry.warning.clone())
                    };
                    vec![
                        entry.booked_at.chars().take(10).collect(),
                        entry.category.clone(),
                        entry.description.clone(),
                        money(entry.amount_minor, &entry.currency),
                        rate,
                        rate_date,
                        value,
                        note,
                    ]
                })
                .collect(),
        );
    }
    if !ledger.unconverted.is_empty() {
        let amounts: Vec<String> = ledger
            .unconverted
            .iter()
            .map(|cost| money(cost.amount_minor, &cost.currency))
            .collect();
        write_line(format_args!(""));
        write_line(format_args!(
            "not in the actual until a rate is set (gendan finance rates set): {}",
            amounts.join(", ")
        ));
    }
    print_warnings(&ledger.warnings);
}

/// `gendan finance ledger <order>`.
pub async fn ledger(
    finance: &mut FinanceClient,
    order_id: String,
    output: Output,
) -> anyhow::Result<()> {
    let ledger = rpc!(
        finance,
        get_cost_ledger,
        v1::GetCostLedgerRequest { order_id }
    )
    .map_err(status_error)?;
    match output {
        Output::Json => print_json(&ledger_json(&ledger)),
        Output::Table => print_ledger(&ledger),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_as_people_write_them() {
        assert_eq!(percent(1234), "12.34 %");
        assert_eq!(percent(-500), "-5.00 %");
        assert_eq!(percent(0), "0.00 %");
        assert_eq!(signed_percent(700), "+7.00 %");
        assert_eq!(signed_percent(-2160), "-21.60 %");
        assert_eq!(floor_text(0), "none");
        assert_eq!(floor_text(1500), "15.00 %");
    }

    #[test]
    fn a_credit_limit_reads_in_the_order_currency_and_zero_as_none() {
        let limited = CostEstimate {
            currency: "USD".to_owned(),
            credit_limit_minor: 5_000_000,
            ..Default::default()
        };
        assert_eq!(credit_limit_text(&limited), "50000.00 USD");
        assert_eq!(credit_limit_text(&CostEstimate::default()), "none");
    }

    #[test]
    fn the_plan_lists_each_category_with_its_share_and_a_total() {
        let estimate = CostEstimate {
            currency: "USD".to_owned(),
            cost_minor: 300_000,
            lines: vec![
                v1::CostBudgetLine {
                    category: "material".to_owned(),
                    amount_minor: 200_000,
                },
                v1::CostBudgetLine {
                    category: "labour".to_owned(),
                    amount_minor: 100_000,
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            plan_rows(&estimate),
            vec![
                vec!["material", "2000.00 USD", "66.67 %"],
                vec!["labour", "1000.00 USD", "33.33 %"],
                vec!["total", "3000.00 USD", ""],
            ]
        );
        assert_eq!(bp_of(1, 3), 3333);
        assert_eq!(bp_of(2, 3), 6667);
        assert_eq!(bp_of(-1, 3), -3333);
    }
}
