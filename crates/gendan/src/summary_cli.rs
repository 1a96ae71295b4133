//! `gendan orders summary`: the closing summary of a closed order
//! (GetSummary) as the merchandiser files it — dates and lead time, cost
//! budget against actual with the variance, plan against actual per cost
//! category as finance closed the ledger, the costs left without an
//! exchange rate, first-pass yield, exceptions, decisions and lessons.

use gendan_proto::v1::{self, OrderSummary};
use serde_json::{Value, json};

use crate::claims_cli::OrdersClient;
use crate::cli::{Output, money, print_json, print_pairs, print_table, status_error, write_line};
use crate::costs_cli::signed_percent;
use crate::retry::rpc;

/// The summary as data; amounts as people read them, with the minor units
/// of the cost figures for scripts.
pub fn summary_json(summary: &OrderSummary) -> Value {
    let currency = summary.currency.as_str();
    json!({
        "order_id": summary.order_id,
        "promised": summary.promised_delivery_date,
        "delivered_on": summary.delivered_on,
        "on_time": summary.on_time,
        "lead_time_days": summary.lead_time_days,
        "cost_budget": money(summary.cost_budget_minor, currency),
        "cost_actual": money(summary.cost_actual_minor, currency),
        "cost_variance": format!(
            "{} ({})",
            money(summary.cost_variance_minor, currency),
            signed_percent(summary.cost_variance_bp.into())
        ),
        "cost_variance_minor": summary.cost_variance_minor,
        "cost_variance_bp": summary.cost_variance_bp,
        "cost_categories": summary.cost_categories.iter().map(|line| json!({
            "category": line.category,
            "plan_minor": line.plan_minor,
            "actual_minor": line.actual_minor,
            "variance_minor": line.variance_minor,
            "variance_bp": line.variance_bp,
            "over": line.over,
        })).collect::<Vec<_>>(),
        "unconverted_costs": summary
            .unconverted_costs
            .iter()
            .map(|cost| money(cost.amount_minor, &cost.currency))
            .collect::<Vec<_>>(),
        "first_pass_yield": summary.first_pass_yield,
        "exceptions": summary.exceptions,
        "exception_notes": summary.exception_notes,
        "exceptions_by_kind": summary
            .exceptions_by_kind
            .iter()
            .map(|t| format!("{}: {} ({:+} d)", t.kind, t.count, t.impact_days))
            .collect::<Vec<_>>(),
        "decisions": summary.decisions,
        "lessons": summary.lessons,
    })
}

/// Plan against actual per category, for the table output.
fn category_rows(summary: &OrderSummary) -> Vec<Vec<String>> {
    let currency = summary.currency.as_str();
    summary
        .cost_categories
        .iter()
        .map(|line| {
            vec![
                line.category.clone(),
                money(line.plan_minor, currency),
                money(line.actual_minor, currency),
                money(line.variance_minor, currency),
                if line.plan_minor > 0 {
                    signed_percent(line.variance_bp.into())
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
        .collect()
}

pub async fn summary(
    orders: &mut OrdersClient,
    order_id: String,
    output: Output,
) -> anyhow::Result<()> {
    let summary =
        rpc!(orders, get_summary, v1::GetSummaryRequest { order_id }).map_err(status_error)?;
    let mut value = summary_json(&summary);
    match output {
        Output::Json => print_json(&value),
        Output::Table => {
            // The categories read better as a table of their own.
            if let Value::Object(map) = &mut value {
                map.remove("cost_categories");
                map.remove("cost_variance_minor");
                map.remove("cost_variance_bp");
            }
            print_pairs(&value);
            if !summary.cost_categories.is_empty() {
                write_line(format_args!(""));
                print_table(
                    &["category", "plan", "actual", "variance", "variance %", ""],
                    category_rows(&summary),
                );
            }
        }
    }
    Ok(())
}
