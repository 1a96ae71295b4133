//! `gendan exceptions`: the exception register of every order — what went
//! wrong, who owns it, how far it moved the delivery, and the decision that
//! closed it — listed with filters, or one record in full. The demo prints
//! the same table at its end.

use clap::{Subcommand, ValueEnum};
use gendan_proto::v1::{self, Department, ExceptionKind, ExceptionState};
use serde_json::{Value, json};

use crate::cli::{Output, channel, dash, print_json, print_pairs, print_table, status_error};
use crate::retry::rpc;
use crate::stack::Addrs;

#[derive(Debug, Subcommand)]
pub enum ExceptionsCommand {
    /// Exceptions, newest first.
    List {
        #[arg(long)]
        order: Option<String>,
        /// Only open ones (default), only closed ones, or all.
        #[arg(long, value_enum, default_value_t = StateArg::Open)]
        state: StateArg,
        /// The kind's name, e.g. final_inspection_failed, stalled_step.
        #[arg(long)]
        kind: Option<String>,
        /// The owning department, e.g. quality, production, operations.
        #[arg(long)]
        owner: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One exception in full.
    Show { exception: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Open,
    Closed,
    All,
}

/// `final_inspection_failed` → the enum, or an error listing the names.
fn kind_of(name: &str) -> anyhow::Result<ExceptionKind> {
    ExceptionKind::from_short_name(name).ok_or_else(|| {
        let known: Vec<String> = (1..=32)
            .filter_map(|n| ExceptionKind::try_from(n).ok())
            .map(kind_name)
            .collect();
        anyhow::anyhow!(
            "unknown exception kind {name:?}; one of {}",
            known.join(", ")
        )
    })
}

fn owner_of(name: &str) -> anyhow::Result<Department> {
    Department::from_short_name(name).ok_or_else(|| anyhow::anyhow!("unknown department {name:?}"))
}

pub fn kind_name(kind: ExceptionKind) -> String {
    kind.short_name()
}

fn owner_name(owner: i32) -> String {
    Department::try_from(owner)
        .unwrap_or(Department::Unspecified)
        .short_name()
}

fn kind_of_record(record: &v1::OrderException) -> String {
    kind_name(ExceptionKind::try_from(record.kind).unwrap_or(ExceptionKind::Unspecified))
}

fn when(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(gendan_proto::timestamp_to)
        .map(|at| at.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

pub fn record_json(record: &v1::OrderException) -> Value {
    json!({
        "exception_id": record.exception_id,
        "order_id": record.order_id,
        "kind": kind_of_record(record),
        "cause": record.cause,
        "owner": owner_name(record.owner),
        "step": record.step,
        "opened_at": when(record.opened_at.as_ref()),
        "deadline": when(record.deadline.as_ref()),
        "impact_days": record.impact_days,
        "decision": record.decision,
        "decided_by": record.decided_by,
        "closed_at": when(record.closed_at.as_ref()),
        "resolution": record.resolution,
        "decision_id": record.decision_id,
    })
}

/// The register as a table (or JSON).
pub fn print_register(records: &[v1::OrderException], output: Output) {
    match output {
        Output::Json => print_json(&Value::Array(records.iter().map(record_json).collect())),
        Output::Table => print_table(
            &[
                "exception",
                "order",
                "kind",
                "owner",
                "opened",
                "impact",
                "decision",
                "closed",
                "cause",
            ],
            records
                .iter()
                .map(|r| {
                    vec![
                        r.exception_id.clone(),
                        r.order_id.clone(),
                        kind_of_record(r),
                        owner_name(r.owner),
                        when(r.opened_at.as_ref()),
                        format!("{:+}d", r.impact_days),
                        match (r.decision.is_empty(), r.decided_by.is_empty()) {
                            (true, _) => "-".to_owned(),
                            (false, true) => r.decision.clone(),
                            (false, false) => format!("{} ({})", r.decision, r.decided_by),
                        },
                        when(r.closed_at.as_ref()),
                        dash(&r.cause),
                    ]
                })
                .collect(),
        ),
    }
}

pub async fn exceptions(command: ExceptionsCommand, output: Output) -> anyhow::Result<()> {
    let addrs = Addrs::from_env();
    let saga = v1::saga_service_client::SagaServiceClient::new(channel(&addrs, "saga").await?);
    match command {
        ExceptionsCommand::List {
            order,
            state,
            kind,
            owner,
            limit,
        } => {
            let request = v1::ListExceptionsRequest {
                order_id: order.unwrap_or_default(),
                kind: kind
                    .as_deref()
                    .map(kind_of)
                    .transpose()?
                    .unwrap_or_default() as i32,
                state: match state {
                    StateArg::Open => ExceptionState::Open,
                    StateArg::Closed => ExceptionState::Closed,
                    StateArg::All => ExceptionState::Any,
                } as i32,
                owner: owner
                    .as_deref()
                    .map(owner_of)
                    .transpose()?
                    .unwrap_or_default() as i32,
                limit,
            };
            let listed = rpc!(saga, list_exceptions, request)
                .map_err(status_error)?
                .exceptions;
            print_register(&listed, output);
        }
        ExceptionsCommand::Show { exception } => {
            let record = rpc!(
                saga,
                get_exception,
                v1::GetExceptionRequest {
                    exception_id: exception,
                }
            )
            .map_err(status_error)?;
            match output {
                Output::Json => print_json(&record_json(&record)),
                Output::Table => print_pairs(&record_json(&record)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_owners_are_named_as_the_register_shows_them() {
        assert_eq!(
            kind_of("final_inspection_failed").unwrap(),
            ExceptionKind::FinalInspectionFailed
        );
        assert_eq!(kind_name(ExceptionKind::StalledStep), "stalled_step");
        let err = kind_of("late_lunch").unwrap_err().to_string();
        assert!(err.contains("stalled_step"), "{err}");
        assert_eq!(owner_of("quality").unwrap(), Department::Quality);
        assert!(owner_of("marketing").is_err());
    }
}
