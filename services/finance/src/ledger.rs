//! The order's cost ledger as `GetCostLedger` shows it and `CloseCostLedger`
//! closes it: plan against actual per category and for the whole order, in
//! the order currency.
//!
//! [`ledger`] reads the receivable (currency, budget, order value), the
//! entries and the budget lines; [`build`] (pure) adds them up. The actual
//! cost is the sum of the entries' values in the order currency
//! (`order_amount_minor`, see [`crate::costs`]); entries still waiting for
//! a rate are summed per currency as unconverted and left out of it, so
//! the actual grows as rates are set. Per category: actual, plan, variance
//! (actual − plan) and its basis points of the plan (0 without a plan),
//! and whether it is over ([`costs::standings`], the rule the overrun
//! events follow); for the whole order the same against the budget, and
//! the margin left of the order value. [`closed`] is the same figures as
//! `CostLedgerClosed`, so the closing and the read agree by construction.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_proto::date_to_string;
use gendan_proto::v1::{
    CostCategoryLine, CostLedger, CostLedgerClosed, CostLedgerEntry, UnconvertedCost,
};
use sqlx::PgConnection;

use crate::receivables::{self, Receivable};
use crate::{Error, Result, costs, fx};

/// One stored cost entry.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct EntryRow {
    pub event_id: String,
    pub category: String,
    pub description: String,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub warning: Option<String>,
    pub booked_at: DateTime<Utc>,
    /// The value in `order_currency`; `None` while it waits.
    pub order_amount_minor: Option<i64>,
    pub order_currency: Option<String>,
    pub rate_scaled: Option<i64>,
    pub rate_date: Option<NaiveDate>,
}

/// The ledger of `order_id`; `None` when it has neither a receivable nor a
/// cost. Runs on the caller's connection (a read transaction, or the
/// consumer's under the order lock).
pub async fn ledger(conn: &mut PgConnection, order_id: &str) -> Result<Option<CostLedger>> {
    let receivable = receivables::find(conn, order_id).await?;
    let entries: Vec<EntryRow> = sqlx::query_as(
        "SELECT event_id, category, description, amount_minor, currency, warning, booked_at, \
           order_amount_minor, order_currency, rate_scaled, rate_date \
         FROM cost_entries WHERE order_id = $1 ORDER BY seq",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let plan = plan_lines(conn, order_id).await?;
    if receivable.is_none() && entries.is_empty() {
        return Ok(None);
    }
    build(order_id, receivable.as_ref(), &entries, &plan)
        .map(Some)
        .ok_or_else(|| Error::Overflow(order_id.to_owned()))
}

/// `variance` as basis points of `base`, rounded toward zero; 0 when there
/// is no base. Beyond what an `i32` holds (a cost thousands of times a tiny
/// plan) it stays at the bound: the sign and the size still read right.
pub fn basis_points(variance: i64, base: i64) -> i32 {
    if base == 0 {
        return 0;
    }
    let bp = i128::from(variance) * 10_000 / i128::from(base);
    i32::try_from(bp).unwrap_or(if bp < 0 { i32::MIN } else { i32::MAX })
}

/// Adds the ledger up (see the module doc). Without a receivable the order
/// currency is unknown, so nothing is valued and every cost is
/// unconverted. `None` on overflow.
pub fn build(
    order_id: &str,
    receivable: Option<&Receivable>,
    entries: &[EntryRow],
    plan: &[(String, i64)],
) -> Option<CostLedger> {
    let currency = receivable.map(|r| r.currency.clone()).unwrap_or_default();
    let budget_minor = receivable.map_or(0, |r| r.cost_budget_minor);
    let revenue_minor = receivable.map_or(0, |r| r.total_minor);
    let valued = |entry: &EntryRow| {
        entry.order_amount_minor.filter(|_| {
            receivable.is_some() && entry.order_currency.as_deref() == Some(currency.as_str())
        })
    };

    let mut actual_by_category: BTreeMap<&str, i64> = BTreeMap::new();
    let mut unconverted: BTreeMap<&str, i64> = BTreeMap::new();
    for entry in entries {
        if let Some(value) = valued(entry) {
            let sum = actual_by_category.entry(&entry.category).or_insert(0);
            *sum = sum.checked_add(value)?;
        } else if let (Some(amount), Some(entry_currency)) =
            (entry.amount_minor, entry.currency.as_deref())
        {
            let sum = unconverted.entry(entry_currency).or_insert(0);
            *sum = sum.checked_add(amount)?;
        }
    }
    let actual_minor = actual_by_category
        .values()
        .try_fold(0i64, |sum, amount| sum.checked_add(*amount))?;

    let actual_lines: Vec<(String, i64)> = actual_by_category
        .iter()
        .map(|(category, amount)| ((*category).to_owned(), *amount))
        .collect();
    let watched = costs::standings(budget_minor, plan, &actual_lines);
    let is_over = |category: &str| watched.iter().any(|s| s.category == category && s.over());
    let names = costs::in_listing_order(
        plan.iter()
            .map(|(category, _)| category.as_str())
            .chain(actual_by_category.keys().copied())
            .collect(),
    );
    let mut categories = Vec::with_capacity(names.len());
    for category in names {
        let plan_minor = plan
            .iter()
            .filter(|(c, _)| c == category)
            .try_fold(0i64, |sum, (_, amount)| sum.checked_add(*amount))?;
        let actual = actual_by_category.get(category).copied().unwrap_or(0);
        let variance_minor = actual.checked_sub(plan_minor)?;
        categories.push(CostCategoryLine {
            category: category.to_owned(),
            plan_minor,
            actual_minor: actual,
            variance_minor,
            variance_bp: basis_points(variance_minor, plan_minor),
            over: is_over(category),
        });
    }

    let variance_minor = actual_minor.checked_sub(budget_minor)?;
    Some(CostLedger {
        order_id: order_id.to_owned(),
        currency: currency.clone(),
        budget_minor,
        actual_minor,
        over_budget: budget_minor > 0 && actual_minor > budget_minor,
        categories,
        unconverted: unconverted
            .into_iter()
            .map(|(currency, amount_minor)| UnconvertedCost {
                currency: currency.to_owned(),
                amount_minor,
            })
            .collect(),
        warnings: entries.iter().filter_map(|e| e.warning.clone()).collect(),
        entries: entries
            .iter()
            .map(|entry| CostLedgerEntry {
                event_id: entry.event_id.clone(),
                category: entry.category.clone(),
                description: entry.description.clone(),
                amount_minor: entry.amount_minor.unwrap_or(0),
                currency: entry.currency.clone().unwrap_or_default(),
                warning: entry.warning.clone().unwrap_or_default(),
                booked_at: entry.booked_at.to_rfc3339(),
                order_amount_minor: valued(entry).unwrap_or(0),
                converted: valued(entry).is_some(),
                rate: entry.rate_scaled.map(fx::format_rate).unwrap_or_default(),
                rate_date: entry.rate_date.map(date_to_string).unwrap_or_default(),
            })
            .collect(),
        variance_minor,
        variance_bp: basis_points(variance_minor, budget_minor),
        revenue_minor,
        margin_minor: revenue_minor.checked_sub(actual_minor)?,
    })
}

/// The ledger's figures as the order's closing announces them.
pub fn closed(ledger: &CostLedger) -> CostLedgerClosed {
    CostLedgerClosed {
        order_id: ledger.order_id.clone(),
        currency: ledger.currency.clone(),
        budget_minor: ledger.budget_minor,
        actual_minor: ledger.actual_minor,
        variance_minor: ledger.variance_minor,
        variance_bp: ledger.variance_bp,
        categories: ledger.categories.clone(),
        unconverted: ledger.unconverted.clone(),
        revenue_minor: ledger.revenue_minor,
        margin_minor: ledger.margin_minor,
    }
}

/// The order's budget per category (`cost_budget_lines`).
pub async fn plan_lines(
    conn: &mut PgConnection,
    order_id: &str,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT category, amount_minor FROM cost_budget_lines WHERE order_id = $1")
        .bind(order_id)
        .fetch_all(conn)
        .await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::validate::COST_CATEGORIES;

    fn receivable(budget_minor: i64) -> Receivable {
        Receivable {
            order_id: "o-1".into(),
            customer: "Nordwind".into(),
            total_minor: 1_000_000,
            currency: "USD".into(),
            payment_terms: "100% against B/L copy".into(),
            cost_budget_minor: budget_minor,
            status: "open".into(),
            opened_on: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            deposit_received_on: None,
            paid_in_full_on: None,
            over_budget: false,
            paid_in_full_revision: None,
        }
    }

    fn entry(category: &str, amount: i64, currency: &str, value: Option<i64>) -> EntryRow {
        EntryRow {
            event_id: format!("po:{category}"),
            category: category.into(),
            description: format!("{category} cost"),
            amount_minor: Some(amount),
            currency: Some(currency.into()),
            order_amount_minor: value,
            order_currency: value.map(|_| "USD".to_owned()),
            ..EntryRow::default()
        }
    }

    #[test]
    fn converted_entries_count_and_waiting_ones_are_listed() {
        let mut converted = entry("material", 120_000, "CNY", Some(16_896));
        converted.rate_scaled = Some(1_408_000_000);
        converted.rate_date = NaiveDate::from_ymd_opt(2026, 3, 1);
        let entries = [
            converted,
            entry("labour", 25_000, "USD", Some(25_000)),
            entry("freight", 50_000, "EUR", None),
        ];
        let plan = [
            ("material".to_owned(), 20_000),
            ("labour".to_owned(), 20_000),
        ];
        let ledger = build("o-1", Some(&receivable(40_000)), &entries, &plan).unwrap();
        assert_eq!(ledger.actual_minor, 41_896);
        assert_eq!(ledger.variance_minor, 1_896);
        assert_eq!(ledger.variance_bp, 474);
        assert!(ledger.over_budget);
        assert_eq!(ledger.margin_minor, 1_000_000 - 41_896);
        assert_eq!(
            ledger.unconverted,
            [UnconvertedCost {
                currency: "EUR".into(),
                amount_minor: 50_000
            }]
        );
        let lines: Vec<(&str, i64, i64, bool)> = ledger
            .categories
            .iter()
            .map(|c| (c.category.as_str(), c.plan_minor, c.actual_minor, c.over))
            .collect();
        assert_eq!(
            lines,
            [
                ("material", 20_000, 16_896, false),
                ("labour", 20_000, 25_000, true)
            ]
        );
        assert_eq!(ledger.categories[1].variance_bp, 2_500);
        assert_eq!(ledger.entries[0].rate, "0.1408");
        assert_eq!(ledger.entries[0].rate_date, "2026-03-01");
        assert!(ledger.entries[0].converted);
        assert!(!ledger.entries[2].converted);
        let closed = closed(&ledger);
        assert_eq!(closed.actual_minor, ledger.actual_minor);
        assert_eq!(closed.categories, ledger.categories);
    }

    #[test]
    fn without_a_receivable_everything_is_unconverted() {
        let entries = [entry("material", 500, "USD", None)];
        let ledger = build("o-1", None, &entries, &[]).unwrap();
        assert_eq!(ledger.actual_minor, 0);
        assert_eq!(ledger.currency, "");
        assert_eq!(ledger.unconverted.len(), 1);
        assert!(ledger.categories.is_empty());
    }

    #[test]
    fn basis_points_round_toward_zero() {
        assert_eq!(basis_points(1, 3), 3_333);
        assert_eq!(basis_points(-1, 3), -3_333);
        assert_eq!(basis_points(5, 0), 0);
        assert_eq!(basis_points(i64::MAX, 1), i32::MAX);
    }

    fn category() -> impl Strategy<Value = &'static str> {
        prop::sample::select(COST_CATEGORIES.to_vec())
    }

    proptest! {
        #[test]
        fn variances_add_up(
            spending in prop::collection::vec((category(), 0..1_000_000_000_i64), 0..40),
            plan in prop::collection::btree_map(category(), 0..1_000_000_000_i64, 0..7),
        ) {
            let entries: Vec<EntryRow> = spending
                .iter()
                .map(|(category, amount)| entry(category, *amount, "USD", Some(*amount)))
                .collect();
            let plan: Vec<(String, i64)> = plan
                .into_iter()
                .map(|(category, amount)| (category.to_owned(), amount))
                .collect();
            let planned: i64 = plan.iter().map(|(_, amount)| amount).sum();
            let ledger = build("o-1", Some(&receivable(planned)), &entries, &plan).unwrap();

            let spent: i64 = spending.iter().map(|(_, amount)| amount).sum();
            prop_assert_eq!(ledger.actual_minor, spent);
            let by_category: i64 = ledger.categories.iter().map(|c| c.actual_minor).sum();
            prop_assert_eq!(by_category, ledger.actual_minor);
            let variances: i64 = ledger.categories.iter().map(|c| c.variance_minor).sum();
            prop_assert_eq!(variances, ledger.actual_minor - planned);
            prop_assert_eq!(ledger.variance_minor, ledger.actual_minor - planned);
            // Categories are watched when the budget is split into lines.
            let split = planned > 0 && !plan.is_empty();
            for line in &ledger.categories {
                prop_assert_eq!(line.over, split && line.actual_minor > line.plan_minor);
            }
        }
    }
}
