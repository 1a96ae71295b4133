//! `gendan orders watch`: the orders list as it changes (WatchOrders), a
//! line per change until interrupted — the orders matching the filter
//! first, then each change as it happens. A dropped connection is resumed
//! from the last change's token, so nothing is missed; `--output json`
//! prints one JSON object per line for scripts.

use std::time::Duration;

use gendan_proto::v1::{self, Phase};
use serde_json::json;

use crate::claims_cli::OrdersClient;
use crate::cli::{Output, status_error, write_line};

/// How long to wait before resuming a watch the server ended.
const RESUME_AFTER: Duration = Duration::from_secs(1);

/// `gendan orders watch [--phase P] [--customer C] [--at-risk]`.
pub async fn watch(
    orders: &mut OrdersClient,
    phase: Option<String>,
    customer: Option<String>,
    at_risk: bool,
    output: Output,
) -> anyhow::Result<()> {
    let phase = crate::orders_cli::phase_filter(phase)?;
    let mut request = v1::WatchOrdersRequest {
        phase: phase as i32,
        customer: customer.unwrap_or_default(),
        at_risk_only: at_risk,
        resume_token: String::new(),
    };
    loop {
        let mut stream = orders
            .watch_orders(request.clone())
            .await
            .map_err(status_error)?
            .into_inner();
        while let Ok(Some(change)) = stream.message().await {
            if !change.resume_token.is_empty() {
                request.resume_token = change.resume_token.clone();
            }
            print_change(&change, output);
        }
        // The server ended the watch (a restart, a database failure):
        // resume where it stopped.
        tokio::time::sleep(RESUME_AFTER).await;
    }
}

fn print_change(change: &v1::OrderChange, output: Output) {
    let Some(order) = &change.order else {
        if output == Output::Table {
            write_line(format_args!("— live from here —"));
        }
        return;
    };
    let phase = Phase::try_from(order.phase)
        .map(Phase::short_name)
        .unwrap_or("unknown");
    match output {
        Output::Json => write_line(format_args!(
            "{}",
            json!({
                "order_id": order.order_id,
                "customer": order.customer,
                "phase": phase,
                "projected_delivery_date": order.projected_delivery_date,
                "slip_days": order.slip_days,
                "next_milestone": order.next_milestone,
                "next_milestone_date": order.next_milestone_date,
                "at_risk": order.at_risk,
                "open_exceptions": order.open_exceptions,
                "initial": change.initial,
                "left_filter": change.left_filter,
            })
        )),
        Output::Table => {
            let risk = if order.at_risk { "AT RISK" } else { "on track" };
            let left = if change.left_filter {
                "  (left the filter)"
            } else {
                ""
            };
            let next = if order.next_milestone.is_empty() {
                String::new()
            } else {
                format!(
                    "  next: {} {}",
                    order.next_milestone, order.next_milestone_date
                )
            };
            write_line(format_args!(
                "{}  {:<24} {:<16} projected {:<10} ({:+} d)  {risk}{next}{left}",
                order.order_id,
                order.customer,
                phase,
                if order.projected_delivery_date.is_empty() {
                    "-"
                } else {
                    &order.projected_delivery_date
                },
                order.slip_days,
            ));
        }
    }
}
