//! `gendan decisions` and `gendan sagas`: the questions waiting for a
//! person and their answers, and the workflows an operator looks after
//! (stalled ones, retry, skip, cancel).

use clap::{Args, Subcommand};
use gendan_proto::v1;
use serde_json::{Value, json};

use crate::cli::{
    Output, channel, dash, next_milestone, phase_name, print_json, print_table, status_error,
    write_line,
};
use crate::retry::rpc;
use crate::stack::Addrs;

#[derive(Debug, Subcommand)]
pub enum DecisionsCommand {
    /// Decisions waiting for a person.
    List {
        #[arg(long)]
        order: Option<String>,
        /// Include answered ones.
        #[arg(long)]
        all: bool,
    },
    /// Answer a decision with one of its options.
    Answer {
        #[arg(long)]
        order: String,
        #[arg(long)]
        decision: String,
        #[arg(long)]
        answer: String,
        #[arg(long)]
        operator: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SagasCommand {
    /// Workflows parked for an operator.
    Stalled,
    /// Run a stalled step again.
    Retry(StepArgs),
    /// Consider a stalled step done and move on.
    Skip(StepArgs),
    /// Cancel an order (until shipping) and compensate what was done.
    Cancel {
        #[arg(long)]
        order: String,
        #[arg(long)]
        operator: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct StepArgs {
    #[arg(long)]
    pub order: String,
    #[arg(long)]
    pub step: String,
    #[arg(long)]
    pub operator: String,
    #[arg(long, default_value = "")]
    pub reason: String,
}

pub async fn decisions(command: DecisionsCommand, output: Output) -> anyhow::Result<()> {
    let addrs = Addrs::from_env();
    let saga = v1::saga_service_client::SagaServiceClient::new(channel(&addrs, "saga").await?);
    match command {
        DecisionsCommand::List { order, all } => {
            let listed = rpc!(
                saga,
                list_decisions,
                v1::ListDecisionsRequest {
                    order_id: order.unwrap_or_default(),
                    open_only: !all,
                    limit: 500,
                }
            )
            .map_err(status_error)?
            .decisions;
            match output {
                Output::Json => print_json(&Value::Array(
                    listed
                        .iter()
                        .map(|d| json!({
                            "decision_id": d.decision_id, "order_id": d.order_id, "kind": d.kind,
                            "question": d.question, "options": d.options, "answer": d.answer,
                        }))
                        .collect(),
                )),
                Output::Table => print_table(
                    &["decision", "order", "kind", "options", "answer", "question"],
                    listed
                        .iter()
                        .map(|d| {
                            vec![
                                d.decision_id.clone(),
                                d.order_id.clone(),
                                d.kind.clone(),
                                d.options.join("|"),
                                dash(&d.answer),
                                d.question.clone(),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        DecisionsCommand::Answer {
            order,
            decision,
            answer,
            operator,
            comment,
        } => {
            let answered = rpc!(
                saga,
                decide,
                v1::DecideRequest {
                    order_id: order,
                    decision_id: decision,
                    answer,
                    operator,
                    comment,
                }
            )
            .map_err(status_error)?;
            print_saga(&answered, output);
        }
    }
    Ok(())
}

pub async fn sagas(command: SagasCommand, output: Output) -> anyhow::Result<()> {
    let addrs = Addrs::from_env();
    let saga = v1::saga_service_client::SagaServiceClient::new(channel(&addrs, "saga").await?);
    let step_request = |args: StepArgs| v1::StepRequest {
        order_id: args.order,
        step: args.step,
        operator: args.operator,
        reason: args.reason,
    };
    match command {
        SagasCommand::Stalled => {
            let stalled = rpc!(saga, list_stalled, v1::ListStalledRequest { limit: 500 })
                .map_err(status_error)?
                .sagas;
            match output {
                Output::Json => print_json(&Value::Array(
                    stalled
                        .iter()
                        .map(|s| json!({"order_id": s.order_id, "phase": phase_name(s.phase), "reason": s.stalled_reason}))
                        .collect(),
                )),
                Output::Table => print_table(
                    &["order", "phase", "reason"],
                    stalled
                        .iter()
                        .map(|s| vec![s.order_id.clone(), phase_name(s.phase).to_owned(), s.stalled_reason.clone()])
                        .collect(),
                ),
            }
        }
        SagasCommand::Retry(args) => {
            let resumed = rpc!(saga, retry_step, step_request(args)).map_err(status_error)?;
            print_saga(&resumed, output);
        }
        SagasCommand::Skip(args) => {
            let resumed = rpc!(saga, skip_step, step_request(args)).map_err(status_error)?;
            print_saga(&resumed, output);
        }
        SagasCommand::Cancel {
            order,
            operator,
            reason,
        } => {
            let cancelled = rpc!(
                saga,
                cancel_order,
                v1::CancelOrderRequest {
                    order_id: order,
                    operator,
                    reason,
                }
            )
            .map_err(status_error)?;
            print_saga(&cancelled, output);
        }
    }
    Ok(())
}

fn print_saga(saga: &v1::Saga, output: Output) {
    match output {
        Output::Json => print_json(&json!({
            "order_id": saga.order_id,
            "phase": phase_name(saga.phase),
            "status": saga.status,
            "next_milestone": next_milestone(saga),
        })),
        Output::Table => write_line(format_args!(
            "order {}: phase {}, {}; next: {}",
            saga.order_id,
            phase_name(saga.phase),
            saga.status,
            next_milestone(saga)
        )),
    }
}
