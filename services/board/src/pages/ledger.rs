//! The order's cost ledger as the order page shows it
//! (`FinanceService.GetCostLedger`): budget against actual in the order
//! currency, per category and in total, the margin left of the order's
//! value, and each booked cost in its own currency beside its value in the
//! order currency (or "no rate yet", with the costs still waiting for an
//! exchange rate summed per currency).

use gendan_proto::v1;

use crate::view;

#[derive(Debug, Clone)]
pub struct LedgerView {
    pub currency: String,
    pub budget: String,
    pub actual: String,
    pub variance: String,
    pub variance_percent: String,
    pub over_budget: bool,
    pub revenue: String,
    pub margin: String,
    pub categories: Vec<CategoryRow>,
    pub entries: Vec<EntryRow>,
    /// Costs not yet in the actual, per currency ("120.00 EUR").
    pub unconverted: Vec<String>,
    pub warnings: Vec<String>,
}

/// Plan against actual of one category.
#[derive(Debug, Clone)]
pub struct CategoryRow {
    pub category: String,
    pub plan: String,
    pub actual: String,
    pub variance: String,
    pub variance_percent: String,
    pub over: bool,
}

/// One booked cost.
#[derive(Debug, Clone)]
pub struct EntryRow {
    pub booked_at: String,
    pub category: String,
    pub description: String,
    /// In the entry's own currency.
    pub amount: String,
    /// In the order currency, or "no rate yet".
    pub in_order_currency: String,
    pub converted: bool,
    /// "1 EUR = 7.81 CNY from 2026-03-01"-like, as finance gave it.
    pub rate: String,
    pub warning: String,
}

pub fn ledger_view(ledger: &v1::CostLedger) -> LedgerView {
    let currency = ledger.currency.as_str();
    let money = |minor: i64| view::money(minor, currency);
    LedgerView {
        currency: currency.to_owned(),
        budget: money(ledger.budget_minor),
        actual: money(ledger.actual_minor),
        variance: signed(ledger.variance_minor, currency),
        variance_percent: basis_points(ledger.variance_bp),
        over_budget: ledger.over_budget,
        revenue: money(ledger.revenue_minor),
        margin: money(ledger.margin_minor),
        categories: ledger
            .categories
            .iter()
            .map(|line| CategoryRow {
                category: view::words(&line.category),
                plan: money(line.plan_minor),
                actual: money(line.actual_minor),
                variance: signed(line.variance_minor, currency),
                variance_percent: basis_points(line.variance_bp),
                over: line.over,
            })
            .collect(),
        entries: ledger
            .entries
            .iter()
            .map(|entry| EntryRow {
                booked_at: booked_at(&entry.booked_at),
                category: view::words(&entry.category),
                description: entry.description.clone(),
                amount: view::money(entry.amount_minor, &entry.currency),
                in_order_currency: if entry.converted {
                    money(entry.order_amount_minor)
                } else {
                    "no rate yet".to_owned()
                },
                converted: entry.converted,
                rate: rate(entry),
                warning: entry.warning.clone(),
            })
            .collect(),
        unconverted: ledger
            .unconverted
            .iter()
            .map(|cost| view::money(cost.amount_minor, &cost.currency))
            .collect(),
        warnings: ledger.warnings.clone(),
    }
}

/// "+12.00 USD" over, "-3.00 USD" under, "0.00 USD" on budget.
fn signed(minor: i64, currency: &str) -> String {
    let amount = view::money(minor, currency);
    if minor > 0 {
        format!("+{amount}")
    } else {
        amount
    }
}

/// Basis points as a percentage: 1250 → "+12.50 %".
fn basis_points(bp: i32) -> String {
    let sign = match bp {
        0 => "",
        bp if bp > 0 => "+",
        _ => "\u{2212}",
    };
    let magnitude = bp.unsigned_abs();
    format!("{sign}{}.{:02} %", magnitude / 100, magnitude % 100)
}

/// The booking time as a date and minute (RFC 3339 on the wire).
fn booked_at(text: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|at| {
            at.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| text.to_owned())
}

fn rate(entry: &v1::CostLedgerEntry) -> String {
    match (entry.rate.is_empty(), entry.rate_date.is_empty()) {
        (true, _) => String::new(),
        (false, true) => entry.rate.clone(),
        (false, false) => format!("{} (from {})", entry.rate, entry.rate_date),
    }
}
