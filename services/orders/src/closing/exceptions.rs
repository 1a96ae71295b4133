//! The exceptions of the closing summary: what went wrong during the
//! order, one note each, and the lessons written from their counts.
//!
//! [`exceptions`] walks the timeline once: stalls, risk flags (a flip to at
//! risk only), failed final inspections, material delays (with the days
//! late against the purchase order's first expected date), rejected
//! documents, packing mismatches and decisions asked of a person (not their
//! reminders). [`lessons`] turns the counts into advice for the next order.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use gendan_proto::v1::{
    DecisionRequested, DeliveryRiskChanged, DocumentsRejected, FinalInspectionFailed,
    MaterialsDelayed, PackingChecked, PurchaseOrderPlaced, SagaStalled,
};
use gendan_proto::{TypeName, date_from_str};
use prost::Message;

use super::{count, days, or_unknown, times};
use crate::timeline::RecordedEvent;

/// Exceptions and the counts lessons are written from.
#[derive(Debug, Default)]
pub(super) struct Exceptions {
    pub(super) notes: Vec<String>,
    stalls: u32,
    risk_flags: u32,
    inspection_failures: u32,
    material_delays: u32,
    /// Longest material delay in days, where the original date is known.
    material_days_late: Option<i64>,
    document_rejections: u32,
    packing_mismatches: u32,
    decisions: u32,
}

pub(super) fn exceptions(events: &[RecordedEvent]) -> Exceptions {
    let mut found = Exceptions::default();
    // Original expected dates per purchase order, for "N days late".
    let mut po_expected: BTreeMap<String, NaiveDate> = BTreeMap::new();
    for event in events {
        let payload = event.payload.as_deref();
        match event.r#type.as_str() {
            PurchaseOrderPlaced::TYPE_NAME => {
                if let Some(po) = payload.and_then(|p| PurchaseOrderPlaced::decode(p).ok())
                    && let Some(date) = date_from_str(&po.expected_date)
                {
                    po_expected.entry(po.purchase_order_id).or_insert(date);
                }
            }
            SagaStalled::TYPE_NAME => {
                found.stalls += 1;
                found
                    .notes
                    .push(match payload.and_then(|p| SagaStalled::decode(p).ok()) {
                        Some(e) => format!("Workflow stalled at step {}: {}", e.step, e.reason),
                        None => "Workflow stalled".to_owned(),
                    });
            }
            DeliveryRiskChanged::TYPE_NAME => {
                let Some(e) = payload.and_then(|p| DeliveryRiskChanged::decode(p).ok()) else {
                    continue;
                };
                if !(e.at_risk && e.risk_changed) {
                    continue;
                }
                found.risk_flags += 1;
                let mut note = format!(
                    "Delivery flagged at risk: projected {} against promised {}",
                    or_unknown(&e.projected_delivery_date),
                    or_unknown(&e.promised_delivery_date)
                );
                if !e.reason.is_empty() {
                    note.push_str(&format!(" ({})", e.reason));
                }
                found.notes.push(note);
            }
            FinalInspectionFailed::TYPE_NAME => {
                found.inspection_failures += 1;
                let e = payload
                    .and_then(|p| FinalInspectionFailed::decode(p).ok())
                    .unwrap_or_default();
                let mut note = "Final inspection failed".to_owned();
                if !e.inspection_id.is_empty() {
                    note = format!("Final inspection {} failed", e.inspection_id);
                }
                if !e.summary.is_empty() {
                    note.push_str(&format!(": {}", e.summary));
                }
                found.notes.push(note);
            }
            MaterialsDelayed::TYPE_NAME => {
                found.material_delays += 1;
                let e = payload
                    .and_then(|p| MaterialsDelayed::decode(p).ok())
                    .unwrap_or_default();
                let late = date_from_str(&e.expected_ready_date).and_then(|ready| {
                    let planned = po_expected.get(&e.purchase_order_id)?;
                    Some((ready - *planned).num_days()).filter(|days| *days > 0)
                });
                if let Some(days) = late {
                    found.material_days_late =
                        Some(found.material_days_late.unwrap_or(0).max(days));
                }
                let mut note = "Materials delayed".to_owned();
                if !e.purchase_order_id.is_empty() {
                    note.push_str(&format!(" (purchase order {})", e.purchase_order_id));
                }
                if !e.expected_ready_date.is_empty() {
                    note.push_str(&format!(" to {}", e.expected_ready_date));
                }
                if let Some(days) = late {
                    note.push_str(&format!(", {} late", self::days(days)));
                }
                if !e.reason.is_empty() {
                    note.push_str(&format!(": {}", e.reason));
                }
                found.notes.push(note);
            }
            DocumentsRejected::TYPE_NAME => {
                found.document_rejections += 1;
                let e = payload
                    .and_then(|p| DocumentsRejected::decode(p).ok())
                    .unwrap_or_default();
                found.notes.push(if e.problems.is_empty() {
                    "Documents rejected".to_owned()
                } else {
                    format!("Documents rejected: {}", e.problems.join("; "))
                });
            }
            PackingChecked::TYPE_NAME => {
                let Some(e) = payload.and_then(|p| PackingChecked::decode(p).ok()) else {
                    continue;
                };
                if e.matches {
                    continue;
                }
                found.packing_mismatches += 1;
                found.notes.push(if e.mismatches.is_empty() {
                    "Packing did not match the packing spec".to_owned()
                } else {
                    format!(
                        "Packing did not match the packing spec: {}",
                        e.mismatches.join("; ")
                    )
                });
            }
            DecisionRequested::TYPE_NAME => {
                let Some(e) = payload.and_then(|p| DecisionRequested::decode(p).ok()) else {
                    continue;
                };
                if e.reminder {
                    continue;
                }
                found.decisions += 1;
                let decision = e.decision.unwrap_or_default();
                found
                    .notes
                    .push(format!("Decision needed: {}", or_unknown(&decision.kind)));
            }
            _ => {}
        }
    }
    found
}

pub(super) fn lessons(found: &Exceptions) -> Vec<String> {
    let mut lessons = Vec::new();
    if found.material_delays > 0 {
        lessons.push(match found.material_days_late {
            Some(late) => format!(
                "Materials arrived {} late: confirm supplier lead times before promising a \
                 delivery date.",
                days(late)
            ),
            None => format!(
                "Materials were delayed {}: confirm supplier lead times before promising a \
                 delivery date.",
                times(found.material_delays)
            ),
        });
    }
    if found.inspection_failures > 0 {
        lessons.push(format!(
            "Final inspection failed {}: tighten in-process inspection at the stages where the \
             defects arose.",
            times(found.inspection_failures)
        ));
    }
    if found.packing_mismatches > 0 {
        lessons.push(format!(
            "Packing did not match the customer's spec {}: review the packing spec with the \
             warehouse before packing.",
            times(found.packing_mismatches)
        ));
    }
    if found.document_rejections > 0 {
        lessons.push(format!(
            "Documents were rejected {}: prepare and check them before the goods are ready.",
            times(found.document_rejections)
        ));
    }
    if found.stalls > 0 {
        lessons.push(format!(
            "The workflow stalled {}: review who owns the stalled steps and their timeouts.",
            times(found.stalls)
        ));
    }
    if found.risk_flags > 0 {
        lessons.push(format!(
            "Delivery was flagged at risk {}: the customer was told each time.",
            times(found.risk_flags)
        ));
    }
    if found.decisions > 0 {
        lessons.push(format!(
            "{} needed a person's answer.",
            count(found.decisions as usize, "decision", "decisions")
        ));
    }
    lessons
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use gendan_proto::v1::Decision;

    use super::*;
    use crate::closing::fixtures::{event, facts};
    use crate::closing::summarize;

    #[test]
    fn exceptions_are_counted_with_notes_and_lessons() {
        let events = vec![
            event(&PurchaseOrderPlaced {
                purchase_order_id: "PO-1".to_owned(),
                expected_date: "2030-01-20".to_owned(),
                ..Default::default()
            }),
            event(&MaterialsDelayed {
                purchase_order_id: "PO-1".to_owned(),
                expected_ready_date: "2030-01-25".to_owned(),
                reason: "supplier furnace repair".to_owned(),
                ..Default::default()
            }),
            event(&SagaStalled {
                step: "procure_materials".to_owned(),
                reason: "no reply after 5 attempts".to_owned(),
                ..Default::default()
            }),
            // Only a flip to at-risk counts.
            event(&DeliveryRiskChanged {
                at_risk: true,
                risk_changed: true,
                projected_delivery_date: "2030-03-12".to_owned(),
                promised_delivery_date: "2030-03-10".to_owned(),
                ..Default::default()
            }),
            event(&DeliveryRiskChanged {
                at_risk: true,
                risk_changed: false,
                ..Default::default()
            }),
            event(&DeliveryRiskChanged {
                at_risk: false,
                risk_changed: true,
                ..Default::default()
            }),
            event(&FinalInspectionFailed {
                inspection_id: "I-1".to_owned(),
                summary: "burrs".to_owned(),
                ..Default::default()
            }),
            event(&PackingChecked {
                matches: true,
                ..Default::default()
            }),
            event(&PackingChecked {
                matches: false,
                mismatches: vec!["carton marks".to_owned()],
                ..Default::default()
            }),
            event(&DocumentsRejected {
                problems: vec!["certificate of origin missing".to_owned()],
                ..Default::default()
            }),
            event(&DecisionRequested {
                decision: Some(Decision {
                    kind: "delivery_date".to_owned(),
                    ..Default::default()
                }),
                reminder: false,
            }),
            event(&DecisionRequested {
                decision: Some(Decision::default()),
                reminder: true,
            }),
        ];
        let summary = summarize(&facts(), &events, Utc::now());
        assert_eq!(summary.exceptions, 7, "{:#?}", summary.exception_notes);
        assert_eq!(
            summary.exception_notes[0],
            "Materials delayed (purchase order PO-1) to 2030-01-25, 5 days late: supplier furnace repair"
        );
        assert_eq!(
            summary.exception_notes[4],
            "Packing did not match the packing spec: carton marks"
        );
        for lesson in [
            "Materials arrived 5 days late",
            "Final inspection failed once",
            "Packing did not match the customer's spec once",
            "Documents were rejected once",
            "The workflow stalled once",
            "Delivery was flagged at risk once",
            "1 decision needed a person's answer.",
        ] {
            assert!(
                summary.lessons.contains(lesson),
                "{lesson} in {}",
                summary.lessons
            );
        }
    }

    #[test]
    fn events_without_payload_still_count_by_type() {
        let mut stalled = event(&SagaStalled::default());
        stalled.payload = None;
        let mut risk = event(&DeliveryRiskChanged::default());
        risk.payload = None;
        let summary = summarize(&facts(), &[stalled, risk], Utc::now());
        assert_eq!(summary.exceptions, 1);
        assert_eq!(summary.exception_notes, vec!["Workflow stalled".to_owned()]);
    }
}
