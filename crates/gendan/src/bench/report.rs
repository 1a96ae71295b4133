//! What a bench run prints: the figures of a finished run as a table or,
//! with `--output json`, the same figures as numbers (a figure that cannot
//! be had is `null`, with the reason beside it); and, for a run that timed
//! out, where each unfinished order stands: its phase and workflow status,
//! the steps it is waiting on, its open decisions and why it stalled, as
//! the saga's `GetSaga` tells.

use std::time::Duration;

use futures::StreamExt;
use gendan_proto::v1::{self, Phase};
use serde_json::{Value, json};

use super::closed_loop::Outcome;
use super::cpu::{Group, Usage};
use super::{BenchOptions, Counters, capacity, ms, percentile, postgres};
use crate::cli::{Output, print_json, print_table};
use crate::sim::Clients;

/// The figures of a finished run.
pub(super) struct Figures {
    orders: usize,
    concurrency: usize,
    wall: Duration,
    /// Sorted.
    completion: Vec<Duration>,
    /// Sorted.
    steps: Vec<Duration>,
    transactions_per_order: f64,
    statements_per_order: Result<f64, String>,
    messages_per_order: f64,
    cpu: Usage,
    simulator_errors: Option<u64>,
    capacity: Vec<capacity::Line>,
}

impl Figures {
    pub(super) fn new(
        options: &BenchOptions,
        outcome: &Outcome,
        steps: Vec<Duration>,
        (before, after): (&Counters, &Counters),
        simulator_errors: Option<u64>,
        capacity: &capacity::Raised,
    ) -> Self {
        let n = outcome.completion.len().max(1) as f64;
        Figures {
            orders: outcome.completion.len(),
            concurrency: options.concurrency,
            wall: outcome.wall_time(),
            completion: outcome.completion.clone(),
            steps,
            transactions_per_order: (after.postgres.transactions - before.postgres.transactions)
                as f64
                / n,
            statements_per_order: postgres::statements_per(&before.postgres, &after.postgres, n),
            messages_per_order: after.messages.saturating_sub(before.messages) as f64 / n,
            cpu: Usage::between(&before.cpu, &after.cpu),
            simulator_errors,
            capacity: capacity.lines.clone(),
        }
    }

    fn orders_per_second(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.orders as f64 / secs
        } else {
            0.0
        }
    }

    fn cpu_per_order(&self, group: Group) -> (Option<f64>, usize) {
        let n = self.orders.max(1) as f64;
        self.cpu
            .groups
            .iter()
            .find(|usage| usage.group == group)
            .map_or((None, 0), |usage| {
                (self.cpu.ms_per(usage, n), usage.processes)
            })
    }

    pub(super) fn print(&self, output: Output) {
        match output {
            Output::Json => print_json(&self.to_json()),
            Output::Table => self.print_table(),
        }
    }

    fn print_table(&self) {
        let mut rows = vec![
            row("orders/s", format!("{:.2}", self.orders_per_second())),
            row(
                "order completion p50",
                format!("{:.0} ms", ms(percentile(&self.completion, 0.50))),
            ),
            row(
                "order completion p99",
                format!("{:.0} ms", ms(percentile(&self.completion, 0.99))),
            ),
            row(
                "saga step latency p50",
                format!(
                    "{:.1} ms  ({} steps)",
                    ms(percentile(&self.steps, 0.50)),
                    self.steps.len()
                ),
            ),
            row(
                "saga step latency p99",
                format!("{:.1} ms", ms(percentile(&self.steps, 0.99))),
            ),
        ];
        for group in Group::ALL {
            let (per_order, processes) = self.cpu_per_order(group);
            let label = match group {
                Group::Gendan => "cpu gendan (this process)".to_owned(),
                _ if processes == 1 => format!("cpu {} (1 process)", group.name()),
                _ => format!("cpu {} ({processes} processes)", group.name()),
            };
            rows.push(row(
                &label,
                per_order.map_or_else(
                    || "n/a (no process found)".to_owned(),
                    |per_order| format!("{per_order:.1} ms per order"),
                ),
            ));
        }
        rows.push(row(
            "client sql statements",
            match &self.statements_per_order {
                Ok(per_order) => format!("{per_order:.0} per order"),
                Err(reason) => format!("n/a ({reason})"),
            },
        ));
        rows.push(row(
            "postgres transactions",
            format!("{:.0} per order", self.transactions_per_order),
        ));
        rows.push(row(
            "nats messages stored",
            format!("{:.0} per order", self.messages_per_order),
        ));
        rows.push(row(
            "simulator errors",
            self.simulator_errors.map_or_else(
                || "n/a (still busy when stopped)".to_owned(),
                |n| n.to_string(),
            ),
        ));
        println!();
        print_table(&["figure", "value"], rows);
        if !self.cpu.tick_rate_read {
            println!(
                "(cpu: the clock tick rate could not be read; {} ticks a second assumed)",
                self.cpu.ticks_per_second
            );
        }
        println!();
        print_table(
            &[
                "work centre",
                "catalogue h/day",
                "bench h/day",
                "peak h in flight",
            ],
            self.capacity
                .iter()
                .map(|line| {
                    vec![
                        line.catalogue.code.clone(),
                        format!("{:.0}", line.catalogue.hours_per_day),
                        format!("{:.0}", line.hours_per_day),
                        format!("{:.0}", line.peak_hours),
                    ]
                })
                .collect(),
        );
    }

    fn to_json(&self) -> Value {
        let mut cpu_ms = serde_json::Map::new();
        let mut cpu_processes = serde_json::Map::new();
        for group in Group::ALL {
            let (per_order, processes) = self.cpu_per_order(group);
            cpu_ms.insert(group.name().to_owned(), json!(per_order));
            cpu_processes.insert(group.name().to_owned(), json!(processes));
        }
        let (statements, statements_note) = match &self.statements_per_order {
            Ok(per_order) => (json!(per_order), Value::Null),
            Err(reason) => (Value::Null, json!(reason)),
        };
        json!({
            "orders": self.orders,
            "concurrency": self.concurrency,
            "wall_secs": self.wall.as_secs_f64(),
            "orders_per_sec": self.orders_per_second(),
            "order_completion_ms": {
                "p50": ms(percentile(&self.completion, 0.50)),
                "p99": ms(percentile(&self.completion, 0.99)),
            },
            "saga_step_latency_ms": {
                "p50": ms(percentile(&self.steps, 0.50)),
                "p99": ms(percentile(&self.steps, 0.99)),
                "steps": self.steps.len(),
            },
            "cpu_ms_per_order": cpu_ms,
            "cpu_processes": cpu_processes,
            "clock_ticks_per_sec": self.cpu.ticks_per_second,
            "clock_ticks_assumed": !self.cpu.tick_rate_read,
            "sql_statements_per_order": statements,
            "sql_statements_unavailable": statements_note,
            "postgres_transactions_per_order": self.transactions_per_order,
            "nats_messages_per_order": self.messages_per_order,
            "simulator_errors": self.simulator_errors,
            "capacity": self.capacity.iter().map(|line| json!({
                "work_centre": line.catalogue.code,
                "catalogue_hours_per_day": line.catalogue.hours_per_day,
                "bench_hours_per_day": line.hours_per_day,
                "peak_hours_in_flight": line.peak_hours,
            })).collect::<Vec<_>>(),
        })
    }
}

fn row(figure: &str, value: String) -> Vec<String> {
    vec![figure.to_owned(), value]
}

/// Where an unfinished order stands.
pub(super) struct Standing {
    order_id: String,
    phase: String,
    status: String,
    /// Steps waiting for an answer or stalled.
    waiting: Vec<String>,
    /// Kinds of the decisions still open.
    decisions: Vec<String>,
    reason: String,
}

/// How long one `GetSaga` may take before the order is shown as unknown.
const GET_SAGA_TIMEOUT: Duration = Duration::from_secs(5);

/// Where each of `order_ids` stands, read from the saga, several at once.
pub(super) async fn standings(clients: &Clients, order_ids: &[String]) -> Vec<Standing> {
    futures::stream::iter(order_ids)
        .map(|order_id| {
            let mut saga = clients.saga.clone();
            async move {
                let request = v1::GetSagaRequest {
                    order_id: order_id.clone(),
                };
                match tokio::time::timeout(GET_SAGA_TIMEOUT, saga.get_saga(request)).await {
                    Ok(Ok(found)) => standing_of(found.into_inner()),
                    Ok(Err(status)) => unknown(order_id, status.message()),
                    Err(_) => unknown(order_id, "GetSaga did not answer"),
                }
            }
        })
        .buffered(16)
        .collect()
        .await
}

fn standing_of(saga: v1::Saga) -> Standing {
    let waiting = saga
        .steps
        .iter()
        .filter(|step| step.status == "waiting" || step.status == "stalled")
        .map(|step| format!("{} ({})", step.step, step.status))
        .collect();
    let decisions = saga
        .decisions
        .iter()
        .filter(|decision| decision.answer.is_empty())
        .map(|decision| decision.kind.clone())
        .collect();
    // A stalled saga says why; otherwise the last error of a step still
    // trying is the best hint.
    let reason = if saga.stalled_reason.is_empty() {
        saga.steps
            .iter()
            .filter(|step| step.status != "done" && !step.last_error.is_empty())
            .map(|step| format!("{}: {}", step.step, step.last_error))
            .next_back()
            .unwrap_or_default()
    } else {
        saga.stalled_reason.clone()
    };
    Standing {
        order_id: saga.order_id,
        phase: Phase::try_from(saga.phase)
            .unwrap_or(Phase::Unspecified)
            .short_name()
            .to_owned(),
        status: saga.status,
        waiting,
        decisions,
        reason,
    }
}

fn unknown(order_id: &str, why: &str) -> Standing {
    Standing {
        order_id: order_id.to_owned(),
        phase: "?".to_owned(),
        status: "unknown".to_owned(),
        waiting: Vec::new(),
        decisions: Vec::new(),
        reason: why.to_owned(),
    }
}

/// The state of a run the deadline cut short.
pub(super) fn print_unfinished(options: &BenchOptions, outcome: &Outcome, standings: &[Standing]) {
    let completed = outcome.completion.len();
    match options.output {
        Output::Json => print_json(&json!({
            "timed_out": true,
            "timeout_secs": options.timeout.as_secs(),
            "orders": options.orders,
            "completed": completed,
            "not_created": outcome.not_created,
            "unfinished": standings.iter().map(|s| json!({
                "order_id": s.order_id,
                "phase": s.phase,
                "status": s.status,
                "waiting": s.waiting,
                "open_decisions": s.decisions,
                "reason": s.reason,
            })).collect::<Vec<_>>(),
        })),
        Output::Table => {
            println!();
            println!(
                "timed out after {:?}: {completed} of {} orders completed, {} open, {} not created",
                options.timeout,
                options.orders,
                standings.len(),
                outcome.not_created
            );
            print_table(
                &[
                    "order",
                    "phase",
                    "status",
                    "waiting on",
                    "open decisions",
                    "reason",
                ],
                standings
                    .iter()
                    .map(|s| {
                        vec![
                            s.order_id.clone(),
                            s.phase.clone(),
                            s.status.clone(),
                            dash_if_empty(s.waiting.join(", ")),
                            dash_if_empty(s.decisions.join(", ")),
                            dash_if_empty(s.reason.clone()),
                        ]
                    })
                    .collect(),
            );
        }
    }
}

fn dash_if_empty(text: String) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text
    }
}
