//! The order's amendments as the closing summary lists them
//! (`OrderSummary.amendments`), read like the rest of the summary from the
//! `OrderAmended` events on the timeline ([`crate::closing`]).

use std::collections::BTreeMap;

use gendan_proto::TypeName;
use gendan_proto::v1::{Amendment, OrderAmended};
use prost::Message;

use super::changes::joined;
use crate::summary::{amount, money};
use crate::timeline::RecordedEvent;

/// One line per amendment, by number: "amendment 1 (PO rev B): SHIRT-01
/// quantity 100 → 120; total 1000.00 → 1200.00 USD" (the total only when
/// it changed). An amendment announced twice is listed once.
pub fn lines(currency: &str, events: &[RecordedEvent]) -> Vec<String> {
    let mut by_number: BTreeMap<u32, Amendment> = BTreeMap::new();
    for event in events {
        if event.r#type != OrderAmended::TYPE_NAME {
            continue;
        }
        let Some(amendment) = event
            .payload
            .as_deref()
            .and_then(|payload| OrderAmended::decode(payload).ok())
            .and_then(|amended| amended.amendment)
        else {
            continue;
        };
        by_number.entry(amendment.number).or_insert(amendment);
    }
    by_number
        .values()
        .map(|amendment| line(amendment, currency))
        .collect()
}

fn line(amendment: &Amendment, currency: &str) -> String {
    let mut text = format!(
        "amendment {} ({}): {}",
        amendment.number,
        amendment.reason,
        joined(&amendment.changes)
    );
    if amendment.total_before_minor != amendment.total_after_minor {
        text.push_str(&format!(
            "; total {} → {}",
            amount(amendment.total_before_minor, currency),
            money(amendment.total_after_minor, currency)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn amended(number: u32, before: i64, after: i64) -> RecordedEvent {
        let payload = OrderAmended {
            order: None,
            amendment: Some(Amendment {
                number,
                reason: "PO rev B".to_owned(),
                total_before_minor: before,
                total_after_minor: after,
                changes: vec!["SHIRT-01 quantity 100 → 120".to_owned()],
                ..Default::default()
            }),
        };
        RecordedEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            r#type: OrderAmended::TYPE_NAME.to_owned(),
            occurred_at: Utc::now(),
            payload: Some(payload.encode_to_vec()),
        }
    }

    #[test]
    fn each_amendment_is_listed_once_in_number_order() {
        let events = vec![
            amended(2, 120_000, 120_000),
            amended(1, 100_000, 120_000),
            amended(1, 100_000, 120_000),
            RecordedEvent {
                payload: None,
                ..amended(3, 0, 0)
            },
        ];
        assert_eq!(
            lines("USD", &events),
            [
                "amendment 1 (PO rev B): SHIRT-01 quantity 100 → 120; total 1000.00 → 1200.00 USD",
                "amendment 2 (PO rev B): SHIRT-01 quantity 100 → 120",
            ]
        );
        assert!(lines("USD", &[]).is_empty());
    }
}
