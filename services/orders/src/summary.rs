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
mod tests {
    use gendan_proto::v1::{Order, OrderLine, StagePlan};

    use super::*;

    fn envelope<M: Message + TypeName>(payload: &M) -> Envelope {
        Envelope {
            event_id: "e".to_owned(),
            r#type: M::TYPE_NAME.to_owned(),
            source: "saga".to_owned(),
            payload: payload.encode_to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn saga_events_read_as_sentences() {
        let phase = PhaseChanged {
            from: Phase::Review as i32,
            to: Phase::Confirmed as i32,
            ..Default::default()
        };
        assert_eq!(describe(&envelope(&phase)), "Phase review → confirmed");

        let stalled = SagaStalled {
            step: "check_capacity".to_owned(),
            reason: "no reply after 5 attempts".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            describe(&envelope(&stalled)),
            "Workflow stalled at step check_capacity: no reply after 5 attempts"
        );
    }

    #[test]
    fn a_calendar_re_projection_says_what_moved_it() {
        let moved = MilestonesChanged {
            version: 3,
            cause: "MaterialsDelayed PO-7: materials_in 2026-03-09 → 2026-03-16".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            describe(&envelope(&moved)),
            "Calendar re-projected (version 3): MaterialsDelayed PO-7: materials_in 2026-03-09 \
             → 2026-03-16"
        );
        let silent = MilestonesChanged {
            version: 4,
            ..Default::default()
        };
        assert_eq!(
            describe(&envelope(&silent)),
            "Calendar re-projected (version 4)"
        );
    }

    #[test]
    fn a_status_report_says_who_reports_what_about_which_step() {
        let mut reported = envelope(&StatusReported {
            step: "shipped".to_owned(),
            status: "booked on SEA-FRI-1, ETD 2026-03-10; not reported shipped".to_owned(),
            ..Default::default()
        });
        reported.source = "logistics".to_owned();
        assert_eq!(
            describe(&reported),
            "Asked again about shipped (overdue), logistics says: booked on SEA-FRI-1, ETD \
             2026-03-10; not reported shipped"
        );
    }

    #[test]
    fn a_replayed_dead_letter_says_who_replayed_what_and_why_it_failed() {
        let replayed = DeadLetterReplayed {
            sequence: 7,
            r#type: "gendan.v1.MesQuantityReported".to_owned(),
            consumer: "production-mes".to_owned(),
            reason: "no work order".to_owned(),
            replayed_by: "ops:li".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            describe(&envelope(&replayed)),
            "ops:li replayed MesQuantityReported (dead letter 7 of production-mes: no work order)"
        );
    }

    #[test]
    fn production_events_read_as_sentences() {
        let planned = WorkOrderPlanned {
            planned_start: "2026-12-02".to_owned(),
            planned_end: "2026-12-18".to_owned(),
            stages: vec![StagePlan::default(); 3],
            ..Default::default()
        };
        assert_eq!(
            describe(&envelope(&planned)),
            "Work order planned: 3 stages, 2026-12-02 → 2026-12-18"
        );

        let checked = CapacityChecked {
            earliest_completion: "2026-12-18".to_owned(),
            feasible: true,
            ..Default::default()
        };
        assert_eq!(
            describe(&envelope(&checked)),
            "Capacity check: earliest completion 2026-12-18 (feasible)"
        );
    }

    #[test]
    fn order_created_names_customer_and_total() {
        let created = OrderCreated {
            order: Some(Order {
                customer: "Acme".to_owned(),
                lines: vec![OrderLine::default()],
                currency: "USD".to_owned(),
                total_minor: 125_000,
                requested_delivery_date: "2026-12-20".to_owned(),
                ..Default::default()
            }),
        };
        assert_eq!(
            describe(&envelope(&created)),
            "Order received from Acme: 1 line, total 1250.00 USD, requested delivery 2026-12-20"
        );
    }

    #[test]
    fn claims_read_as_sentences() {
        use gendan_proto::v1::{Claim, ClaimKind, ClaimResolution};

        let claim = Claim {
            kind: ClaimKind::Damage as i32,
            product: "BRKT-100".to_owned(),
            quantity: 2,
            description: "two cartons crushed".to_owned(),
            raised_by: "J. Smith".to_owned(),
            ..Default::default()
        };
        let raised = ClaimRaised {
            claim: Some(claim.clone()),
        };
        assert_eq!(
            describe(&envelope(&raised)),
            "Claim raised by J. Smith: damage, 2 × BRKT-100: two cartons crushed"
        );
        let resolved = ClaimResolved {
            claim: Some(Claim {
                resolution: ClaimResolution::Rejected as i32,
                resolution_note: "damaged after delivery".to_owned(),
                ..claim
            }),
            open_claims: 0,
        };
        assert_eq!(
            describe(&envelope(&resolved)),
            "Claim on 2 × BRKT-100 resolved: rejected (damaged after delivery), 0 claims still \
             open"
        );
    }

    #[test]
    fn unknown_or_broken_events_get_a_generic_sentence() {
        let unknown = Envelope {
            r#type: "gendan.v1.InvoiceIssued".to_owned(),
            source: "finance".to_owned(),
            ..Default::default()
        };
        assert_eq!(describe(&unknown), "Event InvoiceIssued from finance");

        let broken = Envelope {
            r#type: PhaseChanged::TYPE_NAME.to_owned(),
            payload: vec![0xff, 0xff, 0xff],
            ..Default::default()
        };
        assert_eq!(describe(&broken), "Event PhaseChanged");
    }

    #[test]
    fn amendments_and_confirmations_again_read_as_sentences() {
        use gendan_proto::v1::Amendment;

        let amended = OrderAmended {
            order: None,
            amendment: Some(Amendment {
                number: 1,
                requested_by: "buyer@acme".to_owned(),
                reason: "PO rev B".to_owned(),
                changes: vec![
                    "SHIRT-01 quantity 100 → 120".to_owned(),
                    "requested date 2027-03-01 → 2027-03-15".to_owned(),
                ],
                ..Default::default()
            }),
        };
        assert_eq!(
            describe(&envelope(&amended)),
            "Amendment 1 by buyer@acme (PO rev B): SHIRT-01 quantity 100 → 120; requested \
             date 2027-03-01 → 2027-03-15"
        );
        let again = OrderConfirmed {
            order_id: String::new(),
            promised_delivery_date: "2027-03-20".to_owned(),
            revision: 2,
        };
        assert_eq!(
            describe(&envelope(&again)),
            "Order confirmed again (amendment): delivery promised for 2027-03-20"
        );
        let first = OrderConfirmed {
            revision: 0,
            ..again
        };
        assert_eq!(
            describe(&envelope(&first)),
            "Order confirmed: promised delivery 2027-03-20"
        );
    }
}
