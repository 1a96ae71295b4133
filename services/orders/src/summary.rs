//! One-sentence English summaries of bus events for the order timeline.
//!
//! The timeline is what a merchandiser reads to answer "what happened to this
//! order?", so each entry carries a sentence made from the event's type and
//! payload ("Phase review → confirmed"). The sentence is written once, when
//! the event is recorded; events of types this build does not know (a newer
//! service, an external adapter) still get a generic sentence naming the type.
//! [`money`] and [`amount`] are how orders writes money everywhere.

use gendan_proto::TypeName;
use gendan_proto::v1::{
    CapacityChecked, ClaimRaised, ClaimResolved, CostLedgerClosed, DeadLetterReplayed,
    DecisionMade, DecisionRequested, DeliveryRiskChanged, Envelope, ExceptionClosed,
    ExceptionOpened, MilestonesChanged, OrderAccepted, OrderAmended, OrderCancelled, OrderClosed,
    OrderConfirmed, OrderCreated, Phase, PhaseChanged, ReworkCompleted, ReworkPlanned,
    SagaCompleted, SagaResumed, SagaStalled, StatusReported, WorkOrderCancelled,
    WorkOrderCompleted, WorkOrderPlanned, WorkOrderPlanningFailed, WorkOrderProgressed,
};
use prost::Message;

/// The summary of `envelope`; falls back to the generic sentence when the
/// payload does not decode as its declared type.
pub fn describe(envelope: &Envelope) -> String {
    specific(envelope).unwrap_or_else(|| generic(envelope))
}

fn specific(envelope: &Envelope) -> Option<String> {
    let payload = envelope.payload.as_slice();
    let text = match envelope.r#type.as_str() {
        OrderCreated::TYPE_NAME => {
            let order = OrderCreated::decode(payload).ok()?.order?;
            let lines = plural(order.lines.len(), "line", "lines");
            format!(
                "Order received from {}: {lines}, total {}, requested delivery {}",
                order.customer,
                money(order.total_minor, &order.currency),
                order.requested_delivery_date
            )
        }
        StatusReported::TYPE_NAME => {
            let event = StatusReported::decode(payload).ok()?;
            format!(
                "Asked again about {} (overdue), {} says: {}",
                event.step, envelope.source, event.status
            )
        }
        DeadLetterReplayed::TYPE_NAME => {
            let event = DeadLetterReplayed::decode(payload).ok()?;
            format!(
                "{} replayed {} (dead letter {} of {}: {})",
                event.replayed_by,
                event.r#type.trim_start_matches("gendan.v1."),
                event.sequence,
                event.consumer,
                event.reason
            )
        }
        OrderConfirmed::TYPE_NAME => {
            let event = OrderConfirmed::decode(payload).ok()?;
            if event.revision > 1 {
                format!(
                    "Order confirmed again (amendment): delivery promised for {}",
                    or_unknown(&event.promised_delivery_date)
                )
            } else {
                format!(
                    "Order confirmed: promised delivery {}",
                    or_unknown(&event.promised_delivery_date)
                )
            }
        }
        OrderAmended::TYPE_NAME => {
            let amendment = OrderAmended::decode(payload).ok()?.amendment?;
            format!(
                "Amendment {} by {} ({}): {}",
                amendment.number,
                amendment.requested_by,
                amendment.reason,
                crate::amendments::changes::joined(&amendment.changes)
            )
        }
        OrderAccepted::TYPE_NAME => {
            let event = OrderAccepted::decode(payload).ok()?;
            let mut text = format!("Goods accepted by {}", event.accepted_by);
            if !event.note.is_empty() {
                text.push_str(&format!(": {}", event.note));
            }
            text
        }
        ClaimRaised::TYPE_NAME => {
            let claim = ClaimRaised::decode(payload).ok()?.claim?;
            format!(
                "Claim raised by {}: {}, {} × {}: {}",
                claim.raised_by,
                crate::claims::kind_name(claim.kind),
                claim.quantity,
                claim.product,
                claim.description
            )
        }
        ClaimResolved::TYPE_NAME => {
            let event = ClaimResolved::decode(payload).ok()?;
            let claim = event.claim?;
            let mut text = format!(
                "Claim on {} × {} resolved: {}",
                claim.quantity,
                claim.product,
                crate::claims::resolution_name(claim.resolution)
            );
            if !claim.resolution_note.is_empty() {
                text.push_str(&format!(" ({})", claim.resolution_note));
            }
            text.push_str(&format!(
                ", {} still open",
                plural(event.open_claims as usize, "claim", "claims")
            ));
            text
        }
        OrderClosed::TYPE_NAME => {
            let summary = OrderClosed::decode(payload).ok()?.summary?;
            format!(
                "Order closed: {}, lead time {} days, {}",
                if summary.delivered_on.is_empty() {
                    "no delivery recorded".to_owned()
                } else if summary.on_time {
                    format!("delivered on time ({})", summary.delivered_on)
                } else {
                    format!(
                        "delivered late ({} against promised {})",
                        summary.delivered_on, summary.promised_delivery_date
                    )
                },
                summary.lead_time_days,
                plural(summary.exceptions as usize, "exception", "exceptions")
            )
        }
        CostLedgerClosed::TYPE_NAME => {
            crate::closing::costs::sentence(&CostLedgerClosed::decode(payload).ok()?)
        }
        PhaseChanged::TYPE_NAME => {
            let event = PhaseChanged::decode(payload).ok()?;
            let mut text = format!(
                "Phase {} → {}",
                phase_name(event.from),
                phase_name(event.to)
            );
            if !event.projected_delivery_date.is_empty() {
                text.push_str(&format!(
                    ", projected delivery {}",
                    event.projected_delivery_date
                ));
            }
            text
        }
        DeliveryRiskChanged::TYPE_NAME => {
            let event = DeliveryRiskChanged::decode(payload).ok()?;
            let mut text = if !event.risk_changed {
                format!(
                    "Projected delivery now {} ({} the promised {})",
                    or_unknown(&event.projected_delivery_date),
                    if event.at_risk { "after" } else { "within" },
                    or_unknown(&event.promised_delivery_date)
                )
            } else if event.at_risk {
                format!(
                    "Delivery at risk: projected {} against promised {}",
                    or_unknown(&event.projected_delivery_date),
                    or_unknown(&event.promised_delivery_date)
                )
            } else {
                format!(
                    "Delivery back on track: projected {}",
                    or_unknown(&event.projected_delivery_date)
                )
            };
            if !event.reason.is_empty() {
                text.push_str(&format!(" ({})", event.reason));
            }
            text
        }
        MilestonesChanged::TYPE_NAME => {
            let event = MilestonesChanged::decode(payload).ok()?;
            let mut text = format!("Calendar re-projected (version {})", event.version);
            if !event.cause.is_empty() {
                text.push_str(&format!(": {}", event.cause));
            }
            text
        }
        SagaStalled::TYPE_NAME => {
            let event = SagaStalled::decode(payload).ok()?;
            format!("Workflow stalled at step {}: {}", event.step, event.reason)
        }
        SagaResumed::TYPE_NAME => {
            let event = SagaResumed::decode(payload).ok()?;
            let mut text = format!("Workflow resumed at step {}", event.step);
            match (event.action.is_empty(), event.operator.is_empty()) {
                (false, false) => {
                    text.push_str(&format!(" ({} by {})", event.action, event.operator))
                }
                (false, true) => text.push_str(&format!(" ({})", event.action)),
                (true, false) => text.push_str(&format!(" (by {})", event.operator)),
                (true, true) => {}
            }
            text
        }
        SagaCompleted::TYPE_NAME => {
            let event = SagaCompleted::decode(payload).ok()?;
            format!("Workflow completed in phase {}", phase_name(event.phase))
        }
        CapacityChecked::TYPE_NAME => {
            let event = CapacityChecked::decode(payload).ok()?;
            if !event.problem.is_empty() {
                format!("Capacity check failed: {}", event.problem)
            } else {
                let verdict = if event.feasible {
                    "feasible".to_owned()
                } else {
                    format!(
                        "not feasible by {}",
                        or_unknown(&event.requested_delivery_date)
                    )
                };
                let reserved = match event.reserved_until.as_str() {
                    "" => String::new(),
                    until => format!("; its hours reserved until {until}"),
                };
                format!(
                    "Capacity check: earliest completion {} ({verdict}{reserved})",
                    or_unknown(&event.earliest_completion)
                )
            }
        }
        WorkOrderPlanned::TYPE_NAME => {
            let event = WorkOrderPlanned::decode(payload).ok()?;
            format!(
                "Work order planned: {}, {} → {}",
                plural(event.stages.len(), "stage", "stages"),
                or_unknown(&event.planned_start),
                or_unknown(&event.planned_end)
            )
        }
        WorkOrderProgressed::TYPE_NAME => {
            let event = WorkOrderProgressed::decode(payload).ok()?;
            let mut text = format!(
                "Production {} {}: {} good, {} scrap, {:.0}% done",
                event.product,
                event.stage,
                event.good_quantity,
                event.scrap_quantity,
                event.progress * 100.0
            );
            if !event.projected_end.is_empty() {
                text.push_str(&format!(", projected end {}", event.projected_end));
            }
            text
        }
        WorkOrderCompleted::TYPE_NAME => {
            let event = WorkOrderCompleted::decode(payload).ok()?;
            format!(
                "Work order completed on {}: {} good, {} scrap",
                or_unknown(&event.completed_on),
                event.good_quantity,
                event.scrap_quantity
            )
        }
        DecisionRequested::TYPE_NAME => {
            let event = DecisionRequested::decode(payload).ok()?;
            let decision = event.decision?;
            format!(
                "{} {} ({}): {} Options: {}",
                if event.reminder {
                    "Reminder, decision needed"
                } else {
                    "Decision needed"
                },
                decision.kind,
                decision.decision_id,
                decision.question,
                decision.options.join(", ")
            )
        }
        DecisionMade::TYPE_NAME => {
            let decision = DecisionMade::decode(payload).ok()?.decision?;
            let mut text = format!(
                "Decision {}: {} by {}",
                decision.kind, decision.answer, decision.answered_by
            );
            if !decision.comment.is_empty() {
                text.push_str(&format!(" ({})", decision.comment));
            }
            text
        }
        OrderCancelled::TYPE_NAME => {
            let event = OrderCancelled::decode(payload).ok()?;
            format!("Order cancelled by {}: {}", event.operator, event.reason)
        }
        WorkOrderPlanningFailed::TYPE_NAME => {
            let event = WorkOrderPlanningFailed::decode(payload).ok()?;
            format!("Work order could not be planned: {}", event.reason)
        }
        WorkOrderCancelled::TYPE_NAME => {
            let event = WorkOrderCancelled::decode(payload).ok()?;
            if event.note.is_empty() {
                format!(
                    "Work order stopped, {:.1} capacity hours released",
                    event.released_hours
                )
            } else {
                format!("Work order cancellation: {}", event.note)
            }
        }
        ExceptionOpened::TYPE_NAME => {
            let record = ExceptionOpened::decode(payload).ok()?.exception?;
            format!(
                "Exception opened ({}, owner {}): {}",
                exception_kind_name(record.kind),
                department_name(record.owner),
                record.cause
            )
        }
        ExceptionClosed::TYPE_NAME => {
            let record = ExceptionClosed::decode(payload).ok()?.exception?;
            let mut text = format!(
                "Exception closed ({}): {}",
                exception_kind_name(record.kind),
                record.resolution
            );
            if record.impact_days != 0 {
                text.push_str(&format!(", delivery moved {} days", record.impact_days));
            }
            text
        }
        ReworkPlanned::TYPE_NAME => {
            let event = ReworkPlanned::decode(payload).ok()?;
            format!(
                "Rework {} planned, to finish {}",
                event.revision,
                or_unknown(&event.planned_end)
            )
        }
        ReworkCompleted::TYPE_NAME => {
            let event = ReworkCompleted::decode(payload).ok()?;
            format!(
                "Rework {} completed on {}: {} good, {} scrap",
                event.revision,
                or_unknown(&event.completed_on),
                event.good_quantity,
                event.scrap_quantity
            )
        }
        _ => return None,
    };
    Some(text)
}

/// "Event WorkOrderRescheduled from production".
fn generic(envelope: &Envelope) -> String {
    let short = envelope
        .r#type
        .rsplit('.')
        .next()
        .filter(|name| !name.is_empty())
        .unwrap_or("(untyped)");
    if envelope.source.is_empty() {
        format!("Event {short}")
    } else {
        format!("Event {short} from {}", envelope.source)
    }
}

fn phase_name(number: i32) -> &'static str {
    Phase::try_from(number)
        .map(Phase::short_name)
        .unwrap_or("unknown")
}

fn or_unknown(date: &str) -> &str {
    if date.is_empty() { "unknown" } else { date }
}

fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

pub use gendan_proto::{amount, money};

/// `EXCEPTION_KIND_FINAL_INSPECTION_FAILED` → `final inspection failed`.
pub fn exception_kind_name(kind: i32) -> String {
    gendan_proto::v1::ExceptionKind::try_from(kind)
        .map(|k| k.short_name().replace('_', " "))
        .unwrap_or_else(|_| format!("kind {kind}"))
}

fn department_name(owner: i32) -> String {
    gendan_proto::v1::Department::try_from(owner)
        .map(gendan_proto::v1::Department::short_name)
        .unwrap_or_else(|_| format!("department {owner}"))
}

#[cfg(test)]
mod tests;
