//! The order's exception register as the closing summary shows it: each
//! exception the saga opened, counted by kind with the days it moved the
//! delivery, and the decisions taken on them — read from the
//! `ExceptionOpened` / `ExceptionClosed` events on the timeline.

use std::collections::BTreeMap;

use gendan_proto::TypeName;
use gendan_proto::v1::{ExceptionClosed, ExceptionOpened, ExceptionTally, OrderException};
use prost::Message;

use crate::summary::exception_kind_name;
use crate::timeline::RecordedEvent;

/// Tallies by kind (in kind order) and the decisions, oldest first.
pub fn tally(events: &[RecordedEvent]) -> (Vec<ExceptionTally>, Vec<String>) {
    // The latest word on each exception: closed if it was closed.
    let mut latest: BTreeMap<String, OrderException> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for event in events {
        let Some(payload) = event.payload.as_deref() else {
            continue;
        };
        let record = match event.r#type.as_str() {
            ExceptionOpened::TYPE_NAME => ExceptionOpened::decode(payload)
                .ok()
                .and_then(|e| e.exception),
            ExceptionClosed::TYPE_NAME => ExceptionClosed::decode(payload)
                .ok()
                .and_then(|e| e.exception),
            _ => None,
        };
        let Some(record) = record else { continue };
        if !latest.contains_key(&record.exception_id) {
            order.push(record.exception_id.clone());
        }
        latest.insert(record.exception_id.clone(), record);
    }
    let mut by_kind: BTreeMap<i32, ExceptionTally> = BTreeMap::new();
    let mut decisions = Vec::new();
    for id in &order {
        let record = &latest[id];
        let tally = by_kind
            .entry(record.kind)
            .or_insert_with(|| ExceptionTally {
                kind: exception_kind_name(record.kind),
                count: 0,
                impact_days: 0,
            });
        tally.count += 1;
        tally.impact_days = tally.impact_days.saturating_add(record.impact_days);
        if !record.decision.is_empty() {
            decisions.push(format!(
                "{}: {} by {} ({})",
                exception_kind_name(record.kind),
                record.decision.replace('_', " "),
                record.decided_by,
                record.resolution
            ));
        }
    }
    (by_kind.into_values().collect(), decisions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gendan_proto::v1::ExceptionKind;

    fn event<M: Message + TypeName>(message: &M) -> RecordedEvent {
        RecordedEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            r#type: M::TYPE_NAME.to_owned(),
            occurred_at: chrono::Utc::now(),
            payload: Some(message.encode_to_vec()),
        }
    }

    fn record(id: &str, kind: ExceptionKind) -> OrderException {
        OrderException {
            exception_id: id.to_owned(),
            kind: kind as i32,
            ..Default::default()
        }
    }

    #[test]
    fn exceptions_are_counted_once_by_kind_with_their_decisions() {
        let failed = record("a", ExceptionKind::FinalInspectionFailed);
        let closed = OrderException {
            decision: "concession".into(),
            decided_by: "buyer".into(),
            resolution: "decided concession".into(),
            impact_days: 4,
            ..failed.clone()
        };
        let stall = record("b", ExceptionKind::StalledStep);
        let events = vec![
            event(&ExceptionOpened {
                exception: Some(failed),
            }),
            event(&ExceptionOpened {
                exception: Some(stall),
            }),
            event(&ExceptionClosed {
                exception: Some(closed),
            }),
        ];
        let (tallies, decisions) = tally(&events);
        assert_eq!(tallies.len(), 2);
        assert_eq!(tallies[0].kind, "stalled step");
        assert_eq!(tallies[1].kind, "final inspection failed");
        assert_eq!(tallies[1].count, 1);
        assert_eq!(tallies[1].impact_days, 4);
        assert_eq!(
            decisions,
            ["final inspection failed: concession by buyer (decided concession)"]
        );
    }
}
