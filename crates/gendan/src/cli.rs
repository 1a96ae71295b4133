//! The merchandiser's command line: orders from a file, the tracking table,
//! one order with its timeline, the customer's claims ([`crate::claims_cli`])
//! and amendments ([`crate::amend`]), the customer master
//! ([`crate::customers_cli`]), an order's customer and cost plan in
//! `orders show` ([`crate::order_details`]), its closing summary
//! ([`crate::summary_cli`]), finance's rates, estimates and ledgers
//! ([`crate::finance_cli`]),
//! and the records other departments make
//! (payments, inspection results, decisions, operator actions on stalled
//! workflows). Every command talks to the running services over gRPC (the
//! addresses of `gendan up`, or `GENDAN_<SERVICE>__GRPC_ADDR`) and prints an
//! aligned table, or JSON with `--output json` for scripts.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use gendan_proto::v1::{self, Phase};
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::retry::rpc;
use crate::stack::Addrs;
pub use crate::workflow_cli::{DecisionsCommand, SagasCommand, StepArgs, decisions, sagas};

/// `println!` for command output: a reader that went away (`| head`) ends
/// the command quietly instead of a panic.
macro_rules! out {
    ($($arg:tt)*) => {
        write_line(format_args!($($arg)*))
    };
}

pub(crate) fn write_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = writeln!(stdout, "{line}")
        && err.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct Format {
    /// Print a table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

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
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One order: its customer's defaults, its cost plan, its workflow
    /// steps and its timeline.
    Show { order_id: String },
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

#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// Record a payment received (idempotent by --key).
    Record {
        #[arg(long)]
        order: String,
        /// Amount in minor units (cents, fen).
        #[arg(long)]
        amount_minor: i64,
        #[arg(long)]
        currency: String,
        /// Value date, YYYY-MM-DD (default today).
        #[arg(long)]
        received_on: Option<String>,
        #[arg(long, default_value = "")]
        reference: String,
        /// Idempotency key: the same key twice records one payment.
        #[arg(long)]
        key: String,
    },
    /// Receivable of an order: schedule, invoices, payments, outstanding.
    Show { order_id: String },
}

#[derive(Debug, Subcommand)]
pub enum InspectionsCommand {
    /// Open inspections (optionally of one order).
    List {
        #[arg(long)]
        order: Option<String>,
    },
    /// Record a result; pass or fail is computed from the defects.
    Record {
        #[arg(long)]
        inspection: String,
        #[arg(long)]
        inspector: String,
        /// Units inspected (at least the plan's sample size).
        #[arg(long)]
        sample: u32,
        #[arg(long, default_value_t = 0)]
        critical: u32,
        #[arg(long, default_value_t = 0)]
        major: u32,
        #[arg(long, default_value_t = 0)]
        minor: u32,
    },
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

/// A connection to `service`, tried a few times (a service restarting
/// refuses connections for a moment) before saying it cannot be reached.
pub(crate) async fn channel(addrs: &Addrs, service: &str) -> anyhow::Result<Channel> {
    let addr = addrs.of(service);
    let endpoint = Channel::from_shared(format!("http://{addr}"))?;
    let mut wait = std::time::Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(_) if attempt < 4 => {
                attempt += 1;
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!(
                        "cannot reach the {service} service at {addr} (is `gendan up` running?)"
                    )
                });
            }
        }
    }
}

pub(crate) fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

pub(crate) fn phase_name(phase: i32) -> &'static str {
    Phase::try_from(phase)
        .unwrap_or(Phase::Unspecified)
        .short_name()
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
                Output::Table => out!(
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
                ),
            }
        }
        OrdersCommand::List {
            phase,
            customer,
            at_risk,
            limit,
        } => {
            let phase = match phase {
                None => Phase::Unspecified,
                Some(name) => Phase::from_short_name(&name)
                    .with_context(|| format!("unknown phase {name:?}"))?,
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
                }
            )
            .map_err(status_error)?
            .orders;
            let mut saga =
                v1::saga_service_client::SagaServiceClient::new(channel(&addrs, "saga").await?);
            let mut rows = Vec::with_capacity(listed.len());
            for order in &listed {
                let workflow = saga
                    .get_saga(v1::GetSagaRequest {
                        order_id: order.order_id.clone(),
                    })
                    .await
                    .ok()
                    .map(tonic::Response::into_inner);
                let next = workflow.as_ref().map(next_milestone).unwrap_or_default();
                // The promise is the saga's (the confirmed date); before
                // confirmation the customer's requested date stands.
                let promised = workflow
                    .map(|w| w.promised_delivery_date)
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
                    out!(
                        "order {}  {}  phase {} ({})  requested {}  projected {}{}",
                        order.order_id,
                        order.customer,
                        phase_name(order.phase),
                        order.workflow_status,
                        order.requested_delivery_date,
                        dash(&order.projected_delivery_date),
                        if order.at_risk { "  AT RISK" } else { "" }
                    );
                    details.print();
                    if let Some(workflow) = &workflow {
                        out!("");
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
                    out!("");
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
                Output::Table => out!("order {} accepted", order.order_id),
            }
        }
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

/// The first waiting step and its deadline: what the order waits for next.
pub(crate) fn next_milestone(saga: &v1::Saga) -> String {
    match saga.status.as_str() {
        "completed" => return "done".into(),
        "cancelled" => return "cancelled".into(),
        "stalled" => return format!("STALLED: {}", saga.stalled_reason),
        _ => {}
    }
    saga.steps
        .iter()
        .find(|s| s.status == "waiting")
        .map(|s| {
            let by = s
                .deadline
                .as_ref()
                .and_then(gendan_proto::timestamp_to)
                .map(|d| format!(" (by {})", d.format("%Y-%m-%d")))
                .unwrap_or_default();
            format!("{}{by}", s.step)
        })
        .unwrap_or_default()
}

pub async fn payments(command: PaymentsCommand, output: Output) -> anyhow::Result<()> {
    let addrs = Addrs::from_env();
    let finance =
        v1::finance_service_client::FinanceServiceClient::new(channel(&addrs, "finance").await?);
    match command {
        PaymentsCommand::Record {
            order,
            amount_minor,
            currency,
            received_on,
            reference,
            key,
        } => {
            let received_on = received_on.unwrap_or_else(|| {
                chrono::Utc::now()
                    .date_naive()
                    .format("%Y-%m-%d")
                    .to_string()
            });
            let recorded = rpc!(
                finance,
                record_payment,
                v1::RecordPaymentRequest {
                    order_id: order,
                    amount_minor,
                    currency: currency.clone(),
                    received_on,
                    reference,
                    idempotency_key: key,
                }
            )
            .map_err(status_error)?;
            match output {
                Output::Json => print_json(&json!({
                    "created": recorded.created,
                    "outstanding_minor": recorded.outstanding_minor,
                })),
                Output::Table => out!(
                    "{}; outstanding {}",
                    if recorded.created {
                        "payment recorded"
                    } else {
                        "payment already recorded with this key"
                    },
                    money(recorded.outstanding_minor, &currency)
                ),
            }
        }
        PaymentsCommand::Show { order_id } => {
            let receivable = rpc!(
                finance,
                get_receivable,
                v1::GetReceivableRequest { order_id }
            )
            .map_err(status_error)?;
            let currency = receivable.currency.clone();
            let value = json!({
                "order_id": receivable.order_id,
                "customer": receivable.customer,
                "status": receivable.status,
                "payment_terms": receivable.payment_terms,
                "total": money(receivable.total_minor, &currency),
                "invoiced": money(receivable.invoiced_minor, &currency),
                "paid": money(receivable.paid_minor, &currency),
                "outstanding": money(receivable.outstanding_minor, &currency),
                "invoices": receivable.invoices.iter().map(|i| json!({
                    "invoice_id": i.invoice_id, "kind": i.kind, "amount": money(i.amount_minor, &i.currency),
                    "paid": money(i.paid_minor, &i.currency), "issued_on": i.issued_on, "due_date": i.due_date,
                })).collect::<Vec<_>>(),
                "payments": receivable.payments.iter().map(|p| json!({
                    "payment_id": p.payment_id, "amount": money(p.amount_minor, &p.currency),
                    "received_on": p.received_on, "reference": p.reference,
                })).collect::<Vec<_>>(),
            });
            match output {
                Output::Json => print_json(&value),
                Output::Table => {
                    print_pairs(&json!({
                        "order_id": value["order_id"], "customer": value["customer"], "status": value["status"],
                        "payment_terms": value["payment_terms"], "total": value["total"], "invoiced": value["invoiced"],
                        "paid": value["paid"], "outstanding": value["outstanding"],
                    }));
                    out!("");
                    print_table(
                        &["invoice", "kind", "amount", "paid", "issued", "due"],
                        receivable
                            .invoices
                            .iter()
                            .map(|i| {
                                vec![
                                    i.invoice_id.clone(),
                                    i.kind.clone(),
                                    money(i.amount_minor, &i.currency),
                                    money(i.paid_minor, &i.currency),
                                    i.issued_on.clone(),
                                    i.due_date.clone(),
                                ]
                            })
                            .collect(),
                    );
                }
            }
        }
    }
    Ok(())
}

pub async fn inspections(command: InspectionsCommand, output: Output) -> anyhow::Result<()> {
    let addrs = Addrs::from_env();
    let quality =
        v1::quality_service_client::QualityServiceClient::new(channel(&addrs, "quality").await?);
    match command {
        InspectionsCommand::List { order } => {
            let listed = rpc!(
                quality,
                list_inspections,
                v1::ListInspectionsRequest {
                    order_id: order.unwrap_or_default(),
                    open_only: true,
                }
            )
            .map_err(status_error)?
            .inspections;
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|i| {
                    vec![
                        i.inspection_id.clone(),
                        i.order_id.clone(),
                        if i.kind == v1::InspectionKind::Incoming as i32 {
                            "incoming".into()
                        } else {
                            "final".into()
                        },
                        i.lot_size.to_string(),
                        i.code_letter.clone(),
                        i.sample_size.to_string(),
                    ]
                })
                .collect();
            match output {
                Output::Json => print_json(&json!(rows)),
                Output::Table => print_table(
                    &["inspection", "order", "kind", "lot", "letter", "sample"],
                    rows,
                ),
            }
        }
        InspectionsCommand::Record {
            inspection,
            inspector,
            sample,
            critical,
            major,
            minor,
        } => {
            let defects = [
                (v1::DefectClass::Critical, critical),
                (v1::DefectClass::Major, major),
                (v1::DefectClass::Minor, minor),
            ]
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(class, count)| v1::DefectCount {
                defect_class: class as i32,
                count,
                description: String::new(),
            })
            .collect();
            let recorded = rpc!(
                quality,
                record_inspection_result,
                v1::RecordInspectionResultRequest {
                    inspection_id: inspection,
                    inspector,
                    sample_inspected: sample,
                    defects,
                }
            )
            .map_err(status_error)?;
            let passed = recorded.status == v1::InspectionStatus::Passed as i32;
            match output {
                Output::Json => print_json(&json!({
                    "inspection_id": recorded.inspection_id,
                    "passed": passed,
                    "nonconformance_id": recorded.nonconformance_id,
                })),
                Output::Table => out!(
                    "inspection {} {}{}",
                    recorded.inspection_id,
                    if passed { "PASSED" } else { "FAILED" },
                    if recorded.nonconformance_id.is_empty() {
                        String::new()
                    } else {
                        format!(", nonconformance {}", recorded.nonconformance_id)
                    }
                ),
            }
        }
    }
    Ok(())
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

pub use gendan_proto::money;

pub(crate) fn dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_owned()
    }
}

pub(crate) fn print_json(value: &Value) {
    out!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

pub(crate) fn print_pairs(value: &Value) {
    if let Value::Object(map) = value {
        let width = map.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out!("{key:<width$}  {text}");
        }
    }
}

/// An aligned table, each column as wide as its widest cell, without
/// borders so it reads like the other command-line tools' output and
/// survives `grep` and `cut`. Laid out by comfy-table, which measures
/// wide (CJK) characters by their display width, as customer and product
/// names in Chinese need.
pub fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(headers.to_vec())
        .add_rows(rows);
    for column in table.column_iter_mut() {
        // Two spaces between columns, none before the first.
        column.set_padding((0, 2));
    }
    for line in table.lines() {
        out!("{}", line.trim_end());
    }
}
