//! `gendan orders`: create an order from a file, the tracking table, one
//! order with its customer, cost plan, workflow steps and timeline,
//! acceptance, and (through [`crate::calendar_cli`], [`crate::summary_cli`],
//! [`crate::claims_cli`] and [`crate::amend`]) its time-and-action calendar,
//! closing summary, claims and amendments.
//!
//! Orders are the largest family of commands, so they live apart from
//! [`crate::cli`], which keeps the helpers every command shares (output,
//! connections, errors) and the smaller families (payments, inspections).
//! `crate::cli::{OrdersCommand, orders}` still name what is here.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use gendan_proto::v1::{self, Phase};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::{
    Output, channel, dash, money, next_milestone, phase_name, print_json, print_table,
    status_error, write_line,
};
use crate::retry::rpc;
use crate::stack::Addrs;

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Create an order from a JSON file (see docs/cli.md for the fields).
    Create {
        #[arg(long)]
        file: PathBuf,
    },
    /// The tracking table: phase, next milestone, promised and projected dates, risk.
    List {
        #[arg(long)]
        phase: Option<String>,
        #[arg(long)]
        customer: Option<String>,
        #[arg(long)]
        at_risk: bool,
        /// Only orders with an open exception.
        #[arg(long)]
        exceptions: bool,
        /// Most days late first instead of newest first.
        #[arg(long)]
        by_slip: bool,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One order: its customer's defaults, its cost plan, its workflow
    /// steps and its timeline.
    Show { order_id: String },
    /// The order's time-and-action calendar: each milestone's planned,
    /// projected and actual date, variance and status.
    Calendar { order_id: String },
    /// The orders list as it changes, a line per change, until interrupted.
    Watch {
        #[arg(long)]
        phase: Option<String>,
        #[arg(long)]
        customer: Option<String>,
        #[arg(long)]
        at_risk: bool,
    },
    /// The customer accepts delivered goods.
    Accept {
        order_id: String,
        #[arg(long)]
        by: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// The closing summary of a closed order.
    Summary { order_id: String },
    /// Raise the customer's claim on delivered goods (phase acceptance only).
    Claim(crate::claims_cli::ClaimArgs),
    /// An order's claims and how each was resolved.
    Claims { order_id: String },
    /// Amend an order's lines or requested date (until its goods ship).
    Amend(crate::amend::AmendArgs),
    /// An order's amendments, oldest first.
    Amendments { order_id: String },
}

/// An order file: JSON with the fields of `CreateOrder`. The customer is
/// named by `customer_id`, or by `customer` (an id or a name); currency,
/// incoterm and payment terms left out are the customer's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderFile {
    client_request_id: Option<String>,
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    customer: String,
    lines: Vec<LineFile>,
    #[serde(default)]
    currency: String,
    requested_delivery_date: String,
    #[serde(default)]
    incoterm: String,
    #[serde(default)]
    payment_terms: String,
    #[serde(default)]
    export: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineFile {
    product: String,
    #[serde(default)]
    spec: String,
    quantity: u32,
    unit_price_minor: i64,
}

pub async fn orders(command: OrdersCommand, output: Output) -> anyhow::Result<()> {
    let addrs = Addrs::from_env();
    let mut orders =
        v1::order_service_client::OrderServiceClient::new(channel(&addrs, "orders").await?);
    match command {
        OrdersCommand::Create { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let parsed: OrderFile = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid order file", file.display()))?;
            let request = v1::CreateOrderRequest {
                client_request_id: parsed
                    .client_request_id
                    .unwrap_or_else(|| format!("cli-{}", uuid::Uuid::now_v7().simple())),
                customer: parsed.customer,
                lines: parsed
                    .lines
                    .into_iter()
                    .map(|line| v1::OrderLine {
                        product: line.product,
                        spec: line.spec,
                        quantity: line.quantity,
                        unit_price_minor: line.unit_price_minor,
                    })
                    .collect(),
                currency: parsed.currency,
                requested_delivery_date: parsed.requested_delivery_date,
                incoterm: parsed.incoterm,
                payment_terms: parsed.payment_terms,
                export: parsed.export,
                customer_id: parsed.customer_id,
            };
            let response = rpc!(orders, create_order, request).map_err(status_error)?;
            let order = response.order.unwrap_or_default();
            match output {
                Output::Json => {
                    print_json(&json!({"order": order_json(&order), "created": response.created}))
                }
                Output::Table => write_line(format_args!(
                    "{} order {} for {} ({} lines, total {})",
                    if response.created {
                        "created"
                    } else {
                        "already had"
                    },
                    order.order_id,
                    order.customer,
                    order.lines.len(),
                    money(order.total_minor, &order.currency)
                )),
            }
        }
        OrdersCommand::List {
            phase,
            customer,
            at_risk,
            exceptions,
            by_slip,
            limit,
        } => {
            let phase = phase_filter(phase)?;
            let sort = if by_slip {
                v1::OrderSort::Slip
            } else {
                v1::OrderSort::Unspecified
            };
            let listed = rpc!(
                orders,
                list_orders,
                v1::ListOrdersRequest {
                    phase: phase as i32,
                    customer: customer.unwrap_or_default(),
                    at_risk_only: at_risk,
                    page_size: limit.min(500),
                    page_token: String::new(),
                    exception_open_only: exceptions,
                    sort: sort as i32,
                }
            )
            .map_err(status_error)?
            .orders;
            let mut saga =
                v1::saga_service_client::SagaServiceClient::new(channel(&addrs, "saga").await?);
            let mut rows = Vec::with_capacity(listed.len());
            for order in &listed {
                // The calendar's next milestone; an order reviewed before
                // calendars existed shows the step its workflow waits on.
                let next = if order.next_milestone.is_empty() {
                    saga.get_saga(v1::GetSagaRequest {
                        order_id: order.order_id.clone(),
                    })
                    .await
                    .ok()
                    .map(|workflow| next_milestone(&workflow.into_inner()))
                    .unwrap_or_default()
                } else {
                    format!("{} ({})", order.next_milestone, order.next_milestone_date)
                };
                // Before confirmation the customer's requested date stands.
                let promised = Some(order.promised_delivery_date.clone())
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| order.requested_delivery_date.clone());
                rows.push((order, next, promised));
            }
            match output {
                Output::Json => print_json(&Value::Array(
                    rows.iter()
                        .map(|(order, next, promised)| {
                            let mut value = order_json(order);
                            value["next_milestone"] = json!(next);
                            value["promised_delivery_date"] = json!(promised);
                            value
                        })
                        .collect(),
                )),
                Output::Table => print_table(
                    &[
                        "order",
                        "customer",
                        "customer id",
                        "phase",
                        "next milestone",
                        "promised",
                        "projected",
                        "slip",
                        "risk",
                        "exceptions",
                    ],
                    rows.iter()
                        .map(|(order, next, promised)| {
                            vec![
                                order.order_id.clone(),
                                order.customer.clone(),
                                dash(&order.customer_id),
                                phase_name(order.phase).to_owned(),
                                next.clone(),
                                promised.clone(),
                                dash(&order.projected_delivery_date),
                                slip_text(order),
                                if order.at_risk {
                                    "AT RISK".into()
                                } else {
                                    order.workflow_status.clone()
                                },
                                dash(&order.open_exceptions.join(", ")),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        OrdersCommand::Show { order_id } => {
            let order = rpc!(
                orders,
                get_order,
                v1::GetOrderRequest {
                    order_id: order_id.clone(),
                }
            )
            .map_err(status_error)?;
            let timeline = rpc!(
                orders,
                get_timeline,
                v1::GetTimelineRequest {
                    order_id: order_id.clone(),
                }
            )
            .map_err(status_error)?
            .entries;
            let mut saga =
                v1::saga_service_client::SagaServiceClient::new(channel(&addrs, "saga").await?);
            let workflow = saga
                .get_saga(v1::GetSagaRequest {
                    order_id: order_id.clone(),
                })
                .await
                .ok()
                .map(tonic::Response::into_inner);
            let details = crate::order_details::fetch(&orders, &addrs, &order).await;
            match output {
                Output::Json => print_json(&json!({
                    "order": order_json(&order),
                    "customer": details.customer_json(),
                    "cost_plan": details.cost_plan_json(),
                    "steps": workflow.as_ref().map(|s| s.steps.iter().map(|step| json!({
                        "step": step.step, "phase": phase_name(step.phase), "status": step.status,
                        "attempts": step.attempts, "last_error": step.last_error,
                    })).collect::<Vec<_>>()),
                    "timeline": timeline.iter().map(|e| json!({
                        "at": e.occurred_at.as_ref().and_then(gendan_proto::timestamp_to).map(|t| t.to_rfc3339()),
                        "type": e.r#type, "source": e.source, "summary": e.summary, "trace_id": e.trace_id,
                    })).collect::<Vec<_>>(),
                })),
                Output::Table => {
                    write_line(format_args!(
                        "order {}  {}  phase {} ({})  requested {}  projected {}{}",
                        order.order_id,
                        order.customer,
                        phase_name(order.phase),
                        order.workflow_status,
                        order.requested_delivery_date,
                        dash(&order.projected_delivery_date),
                        if order.at_risk { "  AT RISK" } else { "" }
                    ));
                    details.print();
                    if let Some(workflow) = &workflow {
                        write_line(format_args!(""));
                        print_table(
                            &["phase", "step", "status", "attempts", "note"],
                            workflow
                                .steps
                                .iter()
                                .map(|s| {
                                    vec![
                                        phase_name(s.phase).to_owned(),
                                        s.step.clone(),
                                        s.status.clone(),
                                        s.attempts.to_string(),
                                        s.last_error.clone(),
                                    ]
                                })
                                .collect(),
                        );
                    }
                    write_line(format_args!(""));
                    print_table(
                        &["at", "source", "what happened"],
                        timeline
                            .iter()
                            .map(|e| {
                                vec![
                                    e.occurred_at
                                        .as_ref()
                                        .and_then(gendan_proto::timestamp_to)
                                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                                        .unwrap_or_default(),
                                    e.source.clone(),
                                    e.summary.clone(),
                                ]
                            })
                            .collect(),
                    );
                }
            }
        }
        OrdersCommand::Accept { order_id, by, note } => {
            let order = rpc!(
                orders,
                accept_order,
                v1::AcceptOrderRequest {
                    order_id,
                    accepted_by: by,
                    note,
                }
            )
            .map_err(status_error)?;
            match output {
                Output::Json => print_json(&order_json(&order)),
                Output::Table => write_line(format_args!("order {} accepted", order.order_id)),
            }
        }
        OrdersCommand::Calendar { order_id } => {
            crate::calendar_cli::calendar(&mut orders, order_id, output).await?
        }
        OrdersCommand::Watch {
            phase,
            customer,
            at_risk,
        } => crate::watch_cli::watch(&mut orders, phase, customer, at_risk, output).await?,
        OrdersCommand::Summary { order_id } => {
            crate::summary_cli::summary(&mut orders, order_id, output).await?
        }
        OrdersCommand::Claim(args) => crate::claims_cli::raise(&mut orders, args, output).await?,
        OrdersCommand::Claims { order_id } => {
            crate::claims_cli::list(&mut orders, order_id, output).await?
        }
        OrdersCommand::Amend(args) => crate::amend::amend(&mut orders, args, output).await?,
        OrdersCommand::Amendments { order_id } => {
            crate::amend::list(&mut orders, order_id, output).await?
        }
    }
    Ok(())
}

/// A `--phase` option: any phase when absent.
pub(crate) fn phase_filter(name: Option<String>) -> anyhow::Result<Phase> {
    match name {
        None => Ok(Phase::Unspecified),
        Some(name) => {
            Phase::from_short_name(&name).with_context(|| format!("unknown phase {name:?}"))
        }
    }
}

/// Days late (`+3 d`) or early (`−2 d`) against the promise; blank
/// without a projection.
fn slip_text(order: &v1::Order) -> String {
    match order.slip_days {
        _ if order.projected_delivery_date.is_empty() => String::new(),
        0 => "0 d".to_owned(),
        days if days > 0 => format!("+{days} d"),
        days => format!("−{} d", days.unsigned_abs()),
    }
}

fn order_json(order: &v1::Order) -> Value {
    json!({
        "order_id": order.order_id,
        "customer": order.customer,
        "customer_id": order.customer_id,
        "phase": phase_name(order.phase),
        "workflow_status": order.workflow_status,
        "currency": order.currency,
        "total_minor": order.total_minor,
        "requested_delivery_date": order.requested_delivery_date,
        "projected_delivery_date": order.projected_delivery_date,
        "slip_days": order.slip_days,
        "next_milestone_date": order.next_milestone_date,
        "at_risk": order.at_risk,
        "open_exceptions": order.open_exceptions,
        "export": order.export,
        "incoterm": order.incoterm,
        "payment_terms": order.payment_terms,
        "lines": order.lines.iter().map(|l| json!({
            "product": l.product, "spec": l.spec, "quantity": l.quantity, "unit_price_minor": l.unit_price_minor,
        })).collect::<Vec<_>>(),
    })
}
