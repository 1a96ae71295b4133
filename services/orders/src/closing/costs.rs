//! The cost figures of the closing summary and the lessons they teach.
//!
//! Finance closes the order's cost ledger before the saga closes the order,
//! and the saga hands its `CostLedgerClosed` to orders in `CloseOrder`. It
//! carries the budget (the review's estimate), the actual cost, the
//! variance, plan against actual per category, every figure in the order
//! currency at the rates of the booking dates, and the costs still without
//! an exchange rate. [`costs`] takes those figures as they are
//! ([`from_ledger`]), so the summary has by construction the same totals as
//! `GetCostLedger`. A `CloseOrder` without them (sent by an older saga)
//! falls back to the last `CostLedgerClosed` on the timeline.
//!
//! Orders closed before finance closed ledgers have none; their figures are
//! still reconstructed from the events orders saw
//! ([`super::reconstruction`]), as they always were.
//!
//! [`lessons`] names what went over plan ("rework 320.00 USD over its plan
//! of 0.00") and the costs left out for want of a rate; [`sentence`] is the
//! timeline's line for `CostLedgerClosed`.

use gendan_proto::TypeName;
use gendan_proto::v1::{CostCategoryLine, CostLedgerClosed, UnconvertedCost};
use prost::Message;

use super::count;
use super::reconstruction::reconstructed;
use crate::summary::{amount, money};
use crate::timeline::RecordedEvent;

/// Budget and actual cost of the order, in the order currency.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Costs {
    pub budget_minor: i64,
    pub actual_minor: i64,
    /// `actual - budget`, and in basis points of the budget (0 without a
    /// budget).
    pub variance_minor: i64,
    pub variance_bp: i32,
    /// Plan against actual per category, as finance closed the ledger;
    /// empty for a reconstruction (orders never knew the plan's split).
    pub categories: Vec<CostCategoryLine>,
    /// Costs finance could not value in the order currency at closing (no
    /// exchange rate), per currency: not in `actual_minor`.
    pub unconverted: Vec<UnconvertedCost>,
    /// Reconstruction only: cost items in another currency, left out of
    /// `actual_minor`.
    pub skipped_other_currency: usize,
    /// Reconstruction only: the sum did not fit in i64; `actual_minor` holds
    /// what did.
    pub overflowed: bool,
}

/// The order's costs: finance's figures as `CloseOrder` brought them, else
/// from the last `CostLedgerClosed` on the timeline, else the
/// reconstruction of an order closed before finance closed ledgers.
pub fn costs(currency: &str, ledger: Option<&CostLedgerClosed>, events: &[RecordedEvent]) -> Costs {
    let closed = ledger.cloned().or_else(|| {
        events
            .iter()
            .filter(|e| e.r#type == CostLedgerClosed::TYPE_NAME)
            .filter_map(|e| CostLedgerClosed::decode(e.payload.as_deref()?).ok())
            .next_back()
    });
    match closed {
        Some(closed) => from_ledger(closed),
        None => reconstructed(currency, events),
    }
}

/// Finance's closing figures as they are: recomputing them here could only
/// make the summary disagree with the ledger.
pub fn from_ledger(closed: CostLedgerClosed) -> Costs {
    Costs {
        budget_minor: closed.budget_minor,
        actual_minor: closed.actual_minor,
        variance_minor: closed.variance_minor,
        variance_bp: closed.variance_bp,
        categories: closed.categories,
        unconverted: closed.unconverted,
        ..Costs::default()
    }
}

/// `actual - budget` (saturating) and that in basis points of the budget,
/// rounded half away from zero like finance's figures; 0 bp without a
/// budget, where a percentage would mean nothing.
pub fn variance(budget_minor: i64, actual_minor: i64) -> (i64, i32) {
    let variance = actual_minor.saturating_sub(budget_minor);
    if budget_minor <= 0 {
        return (variance, 0);
    }
    let numerator = i128::from(variance) * 10_000;
    let budget = i128::from(budget_minor);
    let (quotient, remainder) = (numerator / budget, numerator % budget);
    let bp = if 2 * remainder.abs() >= budget {
        quotient + numerator.signum()
    } else {
        quotient
    };
    let bp = i32::try_from(bp).unwrap_or(if bp > 0 { i32::MAX } else { i32::MIN });
    (variance, bp)
}

/// "+7.00 %", "-12.34 %", "0.00 %" from basis points.
pub fn percent(bp: i32) -> String {
    let sign = match bp.signum() {
        1 => "+",
        -1 => "-",
        _ => "",
    };
    let abs = bp.unsigned_abs();
    format!("{sign}{}.{:02} %", abs / 100, abs % 100)
}

/// The lessons of the order's costs, in `currency` (the order's).
pub fn lessons(costs: &Costs, currency: &str) -> Vec<String> {
    let mut lessons = Vec::new();
    // A category over its plan: "rework 320.00 USD over its plan of 0.00".
    let over: Vec<String> = costs
        .categories
        .iter()
        .filter(|line| line.over || line.variance_minor > 0)
        .map(|line| {
            format!(
                "{} {} over its plan of {}",
                line.category,
                money(line.variance_minor, currency),
                amount(line.plan_minor, currency)
            )
        })
        .collect();
    let over_budget = costs.budget_minor > 0 && costs.actual_minor > costs.budget_minor;
    if over_budget {
        let why = if over.is_empty() {
            "check which cost lines grew".to_owned()
        } else {
            over.join("; ")
        };
        lessons.push(format!(
            "Costs ran {} over the budget of {} ({}): {why}.",
            money(costs.variance_minor, currency),
            money(costs.budget_minor, currency),
            percent(costs.variance_bp)
        ));
    } else if costs.budget_minor > 0 && !over.is_empty() {
        lessons.push(format!(
            "Costs stayed within the budget of {}, but not every category kept to its plan: {}.",
            money(costs.budget_minor, currency),
            over.join("; ")
        ));
    } else if costs.budget_minor == 0 && !costs.categories.is_empty() && costs.actual_minor > 0 {
        // Finance closed a ledger without a plan: nothing to measure against,
        // which is itself worth fixing before the next order.
        lessons.push(format!(
            "No cost budget was set (no estimate at review): the actual cost of {} was not \
             measured against a plan.",
            money(costs.actual_minor, currency)
        ));
    }
    if !costs.unconverted.is_empty() {
        let amounts: Vec<String> = costs
            .unconverted
            .iter()
            .map(|cost| money(cost.amount_minor, &cost.currency))
            .collect();
        lessons.push(format!(
            "Costs of {} had no exchange rate into {currency} and are not in the actual cost: \
             set the rate and the ledger values them (this summary keeps the closing's figures).",
            amounts.join(" and ")
        ));
    }
    if costs.skipped_other_currency > 0 {
        lessons.push(format!(
            "{} in another currency left out of the actual cost.",
            count(
                costs.skipped_other_currency,
                "cost item was",
                "cost items were"
            )
        ));
    }
    if costs.overflowed {
        lessons.push("The actual cost exceeds what can be added up; it is incomplete.".to_owned());
    }
    lessons
}

/// The timeline's sentence for `CostLedgerClosed`: "Cost ledger closed:
/// actual 5350.00 USD against the budget of 5000.00 USD (+350.00 USD,
/// +7.00 %), margin 1150.00 USD".
pub fn sentence(closed: &CostLedgerClosed) -> String {
    let currency = closed.currency.as_str();
    let mut text = if closed.budget_minor > 0 {
        let variance = money(closed.variance_minor, currency);
        let variance = if closed.variance_minor > 0 {
            format!("+{variance}")
        } else {
            variance
        };
        format!(
            "Cost ledger closed: actual {} against the budget of {} ({variance}, {})",
            money(closed.actual_minor, currency),
            money(closed.budget_minor, currency),
            percent(closed.variance_bp)
        )
    } else {
        format!(
            "Cost ledger closed: actual {} (no budget)",
            money(closed.actual_minor, currency)
        )
    };
    if closed.revenue_minor > 0 {
        text.push_str(&format!(
            ", margin {}",
            money(closed.margin_minor, currency)
        ));
    }
    if !closed.unconverted.is_empty() {
        let amounts: Vec<String> = closed
            .unconverted
            .iter()
            .map(|cost| money(cost.amount_minor, &cost.currency))
            .collect();
        text.push_str(&format!(
            "; without an exchange rate: {}",
            amounts.join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use proptest::prelude::*;

    use gendan_proto::v1::{CostOverrun, PurchaseOrderPlaced};

    use super::*;
    use crate::closing::fixtures::{event, facts};
    use crate::closing::summarize;

    fn line(category: &str, plan: i64, actual: i64) -> CostCategoryLine {
        let (variance_minor, variance_bp) = variance(plan, actual);
        CostCategoryLine {
            category: category.to_owned(),
            plan_minor: plan,
            actual_minor: actual,
            variance_minor,
            variance_bp,
            over: actual > plan,
        }
    }

    fn closed(budget: i64, categories: Vec<CostCategoryLine>) -> CostLedgerClosed {
        let actual: i64 = categories.iter().map(|line| line.actual_minor).sum();
        let (variance_minor, variance_bp) = variance(budget, actual);
        CostLedgerClosed {
            order_id: "o-1".to_owned(),
            currency: "USD".to_owned(),
            budget_minor: budget,
            actual_minor: actual,
            variance_minor,
            variance_bp,
            categories,
            unconverted: Vec::new(),
            revenue_minor: 800_000,
            margin_minor: 800_000 - actual,
        }
    }

    #[test]
    fn the_last_closed_ledger_gives_the_figures() {
        let first = closed(500_000, vec![line("material", 300_000, 290_000)]);
        let mut last = closed(
            500_000,
            vec![
                line("material", 300_000, 290_000),
                line("labour", 150_000, 148_000),
                line("rework", 0, 32_000),
                line("freight", 50_000, 65_000),
            ],
        );
        last.unconverted = vec![UnconvertedCost {
            currency: "CNY".to_owned(),
            amount_minor: 120_000,
        }];
        let events = vec![
            // What orders saw itself counts for nothing once finance closed
            // the ledger.
            event(&PurchaseOrderPlaced {
                purchase_order_id: "PO-1".to_owned(),
                amount_minor: 1_000,
                currency: "USD".to_owned(),
                ..Default::default()
            }),
            event(&CostOverrun {
                budget_minor: 500_000,
                actual_minor: 510_000,
                ..Default::default()
            }),
            event(&first),
            event(&last),
        ];
        let summary = summarize(&facts(), &events, Utc::now());
        assert_eq!(summary.cost_budget_minor, 500_000);
        assert_eq!(summary.cost_actual_minor, 535_000);
        assert_eq!(summary.cost_variance_minor, 35_000);
        assert_eq!(summary.cost_variance_bp, 700);
        assert_eq!(
            summary.cost_variance_minor,
            summary.cost_actual_minor - summary.cost_budget_minor
        );
        assert_eq!(summary.cost_categories, last.categories);
        assert_eq!(summary.unconverted_costs, last.unconverted);
        for lesson in [
            "Costs ran 350.00 USD over the budget of 5000.00 USD (+7.00 %): rework 320.00 USD \
             over its plan of 0.00; freight 150.00 USD over its plan of 500.00.",
            "Costs of 1200.00 CNY had no exchange rate into USD and are not in the actual cost",
        ] {
            assert!(
                summary.lessons.contains(lesson),
                "{lesson} in {}",
                summary.lessons
            );
        }
        assert!(!summary.lessons.contains("material"), "{}", summary.lessons);
    }

    #[test]
    fn a_category_over_plan_is_named_within_the_budget() {
        let ledger = closed(
            500_000,
            vec![
                line("material", 400_000, 380_000),
                line("rework", 0, 12_000),
            ],
        );
        let summary = summarize(&facts(), &[event(&ledger)], Utc::now());
        assert_eq!(summary.cost_variance_minor, -108_000);
        assert_eq!(summary.cost_variance_bp, -2_160);
        assert!(
            summary.lessons.contains(
                "Costs stayed within the budget of 5000.00 USD, but not every category kept \
                 to its plan: rework 120.00 USD over its plan of 0.00."
            ),
            "{}",
            summary.lessons
        );
    }

    #[test]
    fn a_ledger_on_plan_teaches_nothing_about_costs() {
        let ledger = closed(500_000, vec![line("material", 500_000, 500_000)]);
        let costs = costs("USD", None, &[event(&ledger)]);
        assert_eq!(costs.variance_minor, 0);
        assert!(lessons(&costs, "USD").is_empty());
    }

    #[test]
    fn the_figures_closeorder_brings_win_over_the_timeline() {
        let on_timeline = closed(500_000, vec![line("material", 500_000, 500_000)]);
        let brought = closed(500_000, vec![line("material", 500_000, 560_000)]);
        let costs = costs("USD", Some(&brought), &[event(&on_timeline)]);
        assert_eq!(costs.actual_minor, brought.actual_minor);
        assert_eq!(costs.categories, brought.categories);
    }

    #[test]
    fn variance_in_basis_points_rounds_half_away_from_zero() {
        assert_eq!(variance(500_000, 535_000), (35_000, 700));
        assert_eq!(variance(3, 4), (1, 3_333));
        assert_eq!(variance(3, 5), (2, 6_667));
        assert_eq!(variance(3, 2), (-1, -3_333));
        assert_eq!(variance(20_000, 20_001), (1, 1));
        assert_eq!(variance(20_000, 19_999), (-1, -1));
        assert_eq!(variance(0, 100), (100, 0));
        assert_eq!(variance(1, i64::MAX).1, i32::MAX);
        assert_eq!(percent(700), "+7.00 %");
        assert_eq!(percent(-2_160), "-21.60 %");
        assert_eq!(percent(0), "0.00 %");
    }

    #[test]
    fn the_closed_ledger_reads_as_a_sentence() {
        let mut ledger = closed(
            500_000,
            vec![
                line("material", 300_000, 290_000),
                line("rework", 0, 245_000),
            ],
        );
        assert_eq!(
            sentence(&ledger),
            "Cost ledger closed: actual 5350.00 USD against the budget of 5000.00 USD \
             (+350.00 USD, +7.00 %), margin 2650.00 USD"
        );
        ledger.budget_minor = 0;
        ledger.revenue_minor = 0;
        ledger.unconverted = vec![UnconvertedCost {
            currency: "CNY".to_owned(),
            amount_minor: 120_000,
        }];
        assert_eq!(
            sentence(&ledger),
            "Cost ledger closed: actual 5350.00 USD (no budget); without an exchange rate: \
             1200.00 CNY"
        );
    }

    proptest! {
        #[test]
        fn the_variance_is_actual_less_budget(budget in 0i64..1_000_000_000_000, actual in 0i64..1_000_000_000_000) {
            let (minor, bp) = variance(budget, actual);
            prop_assert_eq!(minor, actual - budget);
            if budget > 0 {
                let exact = (actual - budget) as f64 * 10_000.0 / budget as f64;
                prop_assert!((f64::from(bp) - exact).abs() <= 0.5 + 1e-6 || bp == i32::MAX);
            } else {
                prop_assert_eq!(bp, 0);
            }
        }
    }
}
