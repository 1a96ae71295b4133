//! The answer a department gives to `RestateFact` when it does not hold the
//! fact a saga step awaits: `StatusReported`, where things stand (ADR 0010).
//! Each department decides what it holds and words the status; the message
//! itself is the same everywhere.

use gendan_proto::v1::{RestateFact, StatusReported};

use crate::envelope::{Cause, Outgoing};

/// `StatusReported` from `service` for the step `asked` names: a new
/// observation, so a new event id each time.
pub fn status_reported(
    service: &str,
    order_id: &str,
    asked: &RestateFact,
    status: String,
    cause: &Cause,
) -> Outgoing {
    tracing::info!(%status, step = %asked.step, "awaited fact not held, reporting the status");
    let reported = StatusReported {
        order_id: order_id.to_owned(),
        step: asked.step.clone(),
        awaited: asked.awaited.trim().to_owned(),
        status,
    };
    Outgoing::event(service, order_id, &reported, cause)
}
