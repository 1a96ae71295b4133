//! `gendan demo`: sample orders, domestic and export, through all twelve
//! phases with the simulators playing the world around the factory, a live
//! view of their progress, and the closing summary of every order with its
//! costs against the review's estimate (budget, actual, variance, the main
//! categories), every figure in the order's currency.
//!
//! Everything goes through the public surfaces a real deployment has: the
//! catalogue and orders over gRPC, the MES / warehouse / carrier over NATS,
//! the customer, QA and the bank over gRPC, progress read back over gRPC.
//!
//! With the exception mix on, one customer pays its balance only when
//! reminded. When that order is the last one running, the demo moves the
//! services' business calendar to the reminder's day, once, and says so
//! (ADR 0009): finance's own dunning sends the reminder.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use gendan_messaging::Bus;
use gendan_proto::amount;
use gendan_proto::v1::{self, Phase};
use gendan_runtime::clock::ShiftedClock;

use crate::cli::{money, print_table};
use crate::costs_cli::signed_percent;
use crate::progress::Progress;
use crate::sim::{self, Clients, Ports, SimOptions, Simulator};
use crate::stack::Stack;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub orders: usize,
    pub concurrency: usize,
    pub timeout: Duration,
    pub seed: u64,
    /// Real time per simulated day.
    pub day: Duration,
    /// Let the simulators play the seeded mix of exceptions.
    pub exceptions: bool,
}

/// The ports of a running stack, for the simulators' clients.
pub fn ports_of(stack: &Stack) -> Ports {
    Ports {
        orders: stack.port("orders"),
        production: stack.port("production"),
        procurement: stack.port("procurement"),
        quality: stack.port("quality"),
        logistics: stack.port("logistics"),
        finance: stack.port("finance"),
        saga: stack.port("saga"),
    }
}

/// Creates `count` sample orders, `concurrency` at a time; returns their ids
/// with the instant each was accepted.
pub async fn create_orders(
    clients: &Clients,
    seed: u64,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let run = &run_id[..12];
    let created: Vec<anyhow::Result<(String, Instant)>> = futures::stream::iter(0..count)
        .map(|index| {
            let mut orders = clients.orders.clone();
            let request = sim::sample_order(seed, run, index);
            async move {
                let response = orders
                    .create_order(request)
                    .await
                    .context("creating a sample order")?
                    .into_inner();
                let order_id = response.order.map(|o| o.order_id).unwrap_or_default();
                Ok((order_id, Instant::now()))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    created.into_iter().collect()
}

/// Runs the demo on a started stack. Returns the orders as they ended.
pub async fn run(
    bus: &Bus,
    stack: &Stack,
    options: &DemoOptions,
    calendar: ShiftedClock,
) -> anyhow::Result<Vec<v1::Order>> {
    let clients = Clients::connect(&ports_of(stack)).await?;
    sim::seed_catalog(&clients)
        .await
        .context("loading the demo catalogue")?;
    let simulator = Simulator::start(
        bus.clone(),
        clients.clone(),
        SimOptions {
            day: options.day,
            seed: options.seed,
            exceptions: options.exceptions,
            calendar: Some(calendar.clone()),
            ..Default::default()
        },
    )
    .await?;
    let mut calendar_moved = false;

    let started = Instant::now();
    println!(
        "creating {} orders ({} at a time); one simulated day = {} ms",
        options.orders,
        options.concurrency,
        options.day.as_millis()
    );
    let created =
        create_orders(&clients, options.seed, options.orders, options.concurrency).await?;
    let order_ids: Vec<String> = created.into_iter().map(|(id, _)| id).collect();

    let deadline = started + options.timeout;
    let mut progress = Progress::new(order_ids.len());
    let outcome = loop {
        let snapshot = fetch(&clients, &order_ids).await?;
        let closed = snapshot
            .iter()
            .filter(|o| o.workflow_status == "completed")
            .count();
        progress.show(&snapshot);
        if closed == order_ids.len() {
            break Ok(snapshot);
        }
        if !calendar_moved
            && let Some(held) = simulator.held_payment()
            && only_waiting_on(&snapshot, &held.order_id)
        {
            calendar_moved = true;
            match move_to_first_reminder(&clients, &calendar, &held).await {
                Ok(moved) => progress.say(&moved),
                Err(err) => break Err((snapshot, format!("{err:#}"))),
            }
        }
        let stalled: Vec<&v1::Order> = snapshot
            .iter()
            .filter(|o| o.workflow_status == "stalled" || o.workflow_status == "cancelled")
            .collect();
        if !stalled.is_empty() {
            break Err((
                snapshot.clone(),
                "some orders stalled or were cancelled".to_owned(),
            ));
        }
        if Instant::now() > deadline {
            break Err((
                snapshot,
                format!("not every order closed within {:?}", options.timeout),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    progress.finish();
    let stats = simulator.stop().await?;
    let elapsed = started.elapsed();
    match outcome {
        Ok(orders) => {
            println!();
            print_summaries(&clients, &orders).await?;
            print_register(&clients, &orders).await?;
            println!(
                "\nthe world outside: {} MES stages, {} lots received, {} inspections, {} orders packed, {} shipped, {} delivered, {} accepted, {} payments, {} clarifications answered",
                stats.mes_stages,
                stats.goods_received,
                stats.inspections_recorded,
                stats.packed,
                stats.shipped,
                stats.delivered,
                stats.accepted,
                stats.payments,
                stats.decisions_answered
            );
            println!(
                "\n{} orders went through all twelve phases to closed in {:.1} s: {:.2} orders/s",
                orders.len(),
                elapsed.as_secs_f64(),
                orders.len() as f64 / elapsed.as_secs_f64()
            );
            Ok(orders)
        }
        Err((orders, reason)) => {
            println!();
            print_orders(&orders);
            report_stalled(&clients, &orders).await;
            bail!("{reason}")
        }
    }
}

/// Whether `order_id` is the only order still running, and it is in
/// settlement (waiting for its payment).
fn only_waiting_on(orders: &[v1::Order], order_id: &str) -> bool {
    orders.iter().all(|order| {
        if order.order_id == order_id {
            order.phase == Phase::Settlement as i32 && order.workflow_status == "running"
        } else {
            order.workflow_status == "completed"
        }
    })
}

/// Moves the business calendar to the day finance first reminds the
/// customer of the held invoice (its due date plus the schedule's first
/// day); returns what to tell the viewer.
async fn move_to_first_reminder(
    clients: &Clients,
    calendar: &ShiftedClock,
    held: &sim::HeldPayment,
) -> anyhow::Result<String> {
    let schedule = clients
        .finance
        .clone()
        .get_dunning_schedule(v1::GetDunningScheduleRequest {})
        .await
        .context("reading the dunning schedule")?
        .into_inner();
    let first = schedule.reminder_days.first().copied().unwrap_or(1);
    let day = held.due_date + chrono::Days::new(u64::from(first));
    let moved = calendar.advance_to(day);
    Ok(format!(
        "order {} is the last one running: its customer has not paid the balance invoice {}, \
         due {}; moving the business calendar {moved} days on to {day}, when finance sends \
         the first reminder",
        held.order_id, held.invoice_id, held.due_date
    ))
}

/// Reads the orders, several requests in flight, in `ids` order.
pub async fn fetch(clients: &Clients, ids: &[String]) -> anyhow::Result<Vec<v1::Order>> {
    futures::stream::iter(ids)
        .map(|id| {
            let mut orders = clients.orders.clone();
            async move {
                let order = orders
                    .get_order(v1::GetOrderRequest {
                        order_id: id.clone(),
                    })
                    .await
                    .with_context(|| format!("reading order {id}"))?;
                Ok(order.into_inner())
            }
        })
        .buffered(16)
        .collect::<Vec<anyhow::Result<v1::Order>>>()
        .await
        .into_iter()
        .collect()
}

fn phase_name(order: &v1::Order) -> &'static str {
    Phase::try_from(order.phase)
        .unwrap_or(Phase::Unspecified)
        .short_name()
}

fn print_orders(orders: &[v1::Order]) {
    print_table(
        &[
            "order",
            "customer",
            "phase",
            "status",
            "requested",
            "projected",
            "risk",
        ],
        orders
            .iter()
            .map(|o| {
                vec![
                    o.order_id.clone(),
                    o.customer.clone(),
                    phase_name(o).to_owned(),
                    o.workflow_status.clone(),
                    o.requested_delivery_date.clone(),
                    o.projected_delivery_date.clone(),
                    if o.at_risk {
                        "AT RISK".into()
                    } else {
                        "ok".into()
                    },
                ]
            })
            .collect(),
    );
}

/// The exception register of the demo's orders: what went wrong, who owned
/// it, what it cost in days and what was decided.
async fn print_register(clients: &Clients, orders: &[v1::Order]) -> anyhow::Result<()> {
    let mut records = Vec::new();
    for order in orders {
        let listed = clients
            .saga
            .clone()
            .list_exceptions(v1::ListExceptionsRequest {
                order_id: order.order_id.clone(),
                state: v1::ExceptionState::Any as i32,
                ..Default::default()
            })
            .await
            .with_context(|| format!("reading the exceptions of {}", order.order_id))?
            .into_inner()
            .exceptions;
        records.extend(listed);
    }
    println!("\nthe exception register ({} exceptions):", records.len());
    if !records.is_empty() {
        crate::register::print_register(&records, crate::cli::Output::Table);
    }
    Ok(())
}

/// The closing summary of each order, as the merchandiser archives it,
/// then its costs against the review's estimate.
async fn print_summaries(clients: &Clients, orders: &[v1::Order]) -> anyhow::Result<()> {
    let mut summaries = Vec::with_capacity(orders.len());
    for order in orders {
        let summary = clients
            .orders
            .clone()
            .get_summary(v1::GetSummaryRequest {
                order_id: order.order_id.clone(),
            })
            .await
            .with_context(|| format!("reading the summary of {}", order.order_id))?
            .into_inner();
        summaries.push(summary);
    }
    print_table(
        &[
            "order",
            "customer",
            "kind",
            "value",
            "promised",
            "delivered",
            "on time",
            "lead time",
            "yield",
            "exceptions",
        ],
        orders
            .iter()
            .zip(&summaries)
            .map(|(order, summary)| {
                vec![
                    order.order_id.clone(),
                    order.customer.clone(),
                    if order.export {
                        format!("export {}", order.incoterm)
                    } else {
                        "domestic".into()
                    },
                    money(order.total_minor, &order.currency),
                    summary.promised_delivery_date.clone(),
                    summary.delivered_on.clone(),
                    if summary.on_time {
                        "yes".into()
                    } else {
                        "LATE".into()
                    },
                    format!("{} d", summary.lead_time_days),
                    format!("{:.0}%", summary.first_pass_yield * 100.0),
                    summary.exceptions.to_string(),
                ]
            })
            .collect(),
    );
    print_costs(orders, &summaries);
    Ok(())
}

/// Categories shown as columns of the cost table, in the ledger's order.
const COST_COLUMNS: [&str; 5] = ["material", "labour", "rework", "inspection", "freight"];

/// Budget (the review's estimate), actual and variance of each order in
/// its own currency, as finance closed the ledger, with the actual of the
/// main categories ("(+120.00)": over its plan by that much). The variance
/// is printed as the summary has it and checked against actual − budget.
fn print_costs(orders: &[v1::Order], summaries: &[v1::OrderSummary]) {
    println!("\ncosts against the review's estimate, in each order's currency:");
    let mut headers = vec![
        "order",
        "currency",
        "budget",
        "actual",
        "variance",
        "variance %",
    ];
    headers.extend(COST_COLUMNS);
    headers.push("no rate");
    let mut mismatches = Vec::new();
    let rows: Vec<Vec<String>> = orders
        .iter()
        .zip(summaries)
        .map(|(order, summary)| {
            let currency = summary.currency.as_str();
            let expected = summary
                .cost_actual_minor
                .saturating_sub(summary.cost_budget_minor);
            if summary.cost_variance_minor != expected {
                mismatches.push(format!(
                    "{}: variance {} but actual − budget is {}",
                    order.order_id,
                    amount(summary.cost_variance_minor, currency),
                    amount(expected, currency)
                ));
            }
            let mut row = vec![
                order.order_id.clone(),
                currency.to_owned(),
                amount(summary.cost_budget_minor, currency),
                amount(summary.cost_actual_minor, currency),
                signed(summary.cost_variance_minor, currency),
                if summary.cost_budget_minor > 0 {
                    signed_percent(summary.cost_variance_bp.into())
                } else {
                    "-".to_owned()
                },
            ];
            for category in COST_COLUMNS {
                let line = summary
                    .cost_categories
                    .iter()
                    .find(|line| line.category == category);
                row.push(match line {
                    None => "-".to_owned(),
                    Some(line) if line.over || line.variance_minor > 0 => format!(
                        "{} ({})",
                        amount(line.actual_minor, currency),
                        signed(line.variance_minor, currency)
                    ),
                    Some(line) => amount(line.actual_minor, currency),
                });
            }
            let unconverted: Vec<String> = summary
                .unconverted_costs
                .iter()
                .map(|cost| money(cost.amount_minor, &cost.currency))
                .collect();
            row.push(if unconverted.is_empty() {
                "-".to_owned()
            } else {
                unconverted.join(", ")
            });
            row
        })
        .collect();
    print_table(&headers, rows);
    for mismatch in mismatches {
        println!("does not add up: {mismatch}");
    }
}

/// "+350.00" / "-12.00" / "0.00": a variance, its sign always shown.
fn signed(minor: i64, currency: &str) -> String {
    if minor > 0 {
        format!("+{}", amount(minor, currency))
    } else {
        amount(minor, currency)
    }
}

async fn report_stalled(clients: &Clients, orders: &[v1::Order]) {
    for order in orders.iter().filter(|o| o.workflow_status == "stalled") {
        if let Ok(saga) = clients
            .saga
            .clone()
            .get_saga(v1::GetSagaRequest {
                order_id: order.order_id.clone(),
            })
            .await
        {
            println!(
                "{} stalled: {}",
                order.order_id,
                saga.into_inner().stalled_reason
            );
        }
    }
}
