//! The merchandiser's command line: orders from a file, the tracking table,
//! one order with its timeline ([`crate::orders_cli`]), the customer's
//! claims ([`crate::claims_cli`])
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

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use gendan_proto::v1::{self, Phase};
use serde_json::{Value, json};
use tonic::transport::Channel;

pub use crate::orders_cli::{OrdersCommand, orders};
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
