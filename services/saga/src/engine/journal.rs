//! The saga's own log (`saga_log`): what happened to it, step by step, in
//! the trace it happened in, and the register's openings and closings
//! beside them. Lines are kept in memory with the saga and saved with it.

use chrono::{DateTime, Utc};

use crate::state::{LogEntry, SagaState};

/// The trace id of the span the saga is changed in, for the log line and
/// the step's record.
pub(super) fn current_trace_id() -> Option<String> {
    gendan_telemetry::current_traceparent()
        .and_then(|tp| gendan_telemetry::trace_id_of(&tp).map(str::to_owned))
}

pub(crate) fn log(
    saga: &mut SagaState,
    at: DateTime<Utc>,
    step: &str,
    action: &str,
    detail: String,
) {
    saga.new_log.push(LogEntry {
        at,
        step: step.to_owned(),
        action: action.to_owned(),
        detail,
        trace_id: current_trace_id(),
    });
}

/// A register change on the saga's own log.
pub(crate) fn log_exception(
    saga: &mut SagaState,
    at: DateTime<Utc>,
    record: &crate::state::ExceptionRecord,
    action: &str,
) {
    let step = if record.step.is_empty() {
        "-".to_owned()
    } else {
        record.step.clone()
    };
    let kind = record.kind.short_name();
    let detail = match &record.resolution {
        Some(resolution) => format!("{kind}: {resolution}"),
        None => format!("{kind}: {}", record.cause),
    };
    log(saga, at, &step, action, detail);
}
