//! The customer notices of an amendment.
//!
//! [`crate::notices`] decides when the customer is told and stores the
//! notice; this module writes what they are told: that their amendment was
//! received and is being reviewed (`OrderAmended`, kind `amendment`), and,
//! once the saga has reviewed it, that the order is confirmed again, for
//! which date, and why — the amendment it follows (`OrderConfirmed` of a
//! revision above 1, kind `confirmed_again`). A first confirmation makes no
//! notice here: the order reaching phase confirmed tells the customer.

use gendan_proto::v1::{Amendment, OrderAmended, OrderConfirmed};
use prost::Message;

use super::changes::joined;
use crate::notices::{Draft, letter};
use crate::store::OrderState;

/// The notice an `OrderAmended` payload calls for; `None` when it does not
/// decode or carries no amendment.
pub fn received(payload: &[u8], order: &OrderState) -> Option<Draft> {
    let amendment = OrderAmended::decode(payload).ok()?.amendment?;
    let id = order.order_id;
    let mut text = format!(
        "We received your amendment {} of this order ({}), asked by {}: {}.",
        amendment.number,
        amendment.reason.trim_end_matches('.'),
        amendment.requested_by,
        joined(&amendment.changes)
    );
    text.push_str(
        " We are reviewing it with our materials and production planning, and will confirm \
         the delivery date once the review is done.",
    );
    Some(Draft {
        kind: "amendment",
        subject: format!("Order {id}: amendment {} received", amendment.number),
        body: letter(&order.customer, &text, id),
    })
}

/// The notice an `OrderConfirmed` payload calls for: one for a revision
/// above 1 only, explained by `latest`, the order's latest amendment (the
/// one the saga reviewed); `None` otherwise or when it does not decode.
pub fn confirmed_again(
    payload: &[u8],
    order: &OrderState,
    latest: Option<&Amendment>,
) -> Option<Draft> {
    let event = OrderConfirmed::decode(payload).ok()?;
    if event.revision <= 1 {
        return None;
    }
    let id = order.order_id;
    let promised = if event.promised_delivery_date.is_empty() {
        "a date we will confirm shortly".to_owned()
    } else {
        event.promised_delivery_date.clone()
    };
    let (subject, mut text) = match latest {
        Some(amendment) => (
            format!(
                "Order {id}: confirmed again after amendment {}",
                amendment.number
            ),
            format!(
                "After amendment {} ({}): {}, your order is confirmed again for delivery on \
                 {promised}.",
                amendment.number,
                amendment.reason.trim_end_matches('.'),
                joined(&amendment.changes)
            ),
        ),
        None => (
            format!("Order {id}: confirmed again"),
            format!("Your amended order is confirmed again for delivery on {promised}."),
        ),
    };
    // Only a date the amendment asked for is explained: one that kept the
    // date was reviewed against the promise the order already had.
    let asked = latest
        .filter(|amendment| amendment.requested_date_after != amendment.requested_date_before)
        .map(|amendment| amendment.requested_date_after.as_str())
        .filter(|asked| !asked.is_empty() && *asked < event.promised_delivery_date.as_str());
    if let Some(asked) = asked {
        text.push_str(&format!(
            " That is later than the {asked} you asked for: the amended order needs the extra \
             time in materials and production."
        ));
    }
    Some(Draft {
        kind: "confirmed_again",
        subject,
        body: letter(&order.customer, &text, id),
    })
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};
    use gendan_proto::v1::Phase;
    use uuid::Uuid;

    use super::*;

    fn order() -> OrderState {
        OrderState {
            order_id: Uuid::nil(),
            customer: "Acme Trading".to_owned(),
            currency: "USD".to_owned(),
            requested_delivery_date: NaiveDate::from_ymd_opt(2027, 3, 15).unwrap(),
            promised_delivery_date: Some(NaiveDate::from_ymd_opt(2027, 3, 20).unwrap()),
            projected_delivery_date: None,
            phase: Phase::Review as i32,
            total_minor: 100_000,
            created_at: Utc::now(),
            accepted_at: None,
            accepted_by: None,
            closed_at: None,
            summary: None,
            furthest_phase: 0,
        }
    }

    fn amendment() -> Amendment {
        Amendment {
            number: 1,
            reason: "PO rev B".to_owned(),
            requested_by: "buyer@acme".to_owned(),
            requested_date_before: "2027-03-01".to_owned(),
            requested_date_after: "2027-03-15".to_owned(),
            changes: vec![
                "SHIRT-01 quantity 100 → 120".to_owned(),
                "requested date 2027-03-01 → 2027-03-15".to_owned(),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_received_amendment_is_acknowledged_with_what_it_changes() {
        let payload = OrderAmended {
            order: None,
            amendment: Some(amendment()),
        }
        .encode_to_vec();
        let draft = received(&payload, &order()).expect("notice");
        assert_eq!(draft.kind, "amendment");
        assert_eq!(
            draft.subject,
            "Order 00000000-0000-0000-0000-000000000000: amendment 1 received"
        );
        assert!(
            draft.body.contains(
                "We received your amendment 1 of this order (PO rev B), asked by buyer@acme: \
                 SHIRT-01 quantity 100 → 120; requested date 2027-03-01 → 2027-03-15. We are \
                 reviewing it"
            ),
            "{}",
            draft.body
        );
        assert!(
            draft.body.starts_with("Dear Acme Trading,"),
            "{}",
            draft.body
        );
        let empty = OrderAmended::default().encode_to_vec();
        assert_eq!(received(&empty, &order()), None);
    }

    #[test]
    fn a_confirmation_again_tells_the_date_and_why() {
        let confirmed = |revision, date: &str| {
            OrderConfirmed {
                order_id: String::new(),
                promised_delivery_date: date.to_owned(),
                revision,
            }
            .encode_to_vec()
        };
        let latest = amendment();
        let draft =
            confirmed_again(&confirmed(2, "2027-03-20"), &order(), Some(&latest)).expect("notice");
        assert_eq!(draft.kind, "confirmed_again");
        assert!(draft.subject.ends_with("confirmed again after amendment 1"));
        assert!(
            draft.body.contains(
                "After amendment 1 (PO rev B): SHIRT-01 quantity 100 → 120; requested date \
                 2027-03-01 → 2027-03-15, your order is confirmed again for delivery on \
                 2027-03-20. That is later than the 2027-03-15 you asked for"
            ),
            "{}",
            draft.body
        );
        let on_time =
            confirmed_again(&confirmed(2, "2027-03-15"), &order(), Some(&latest)).expect("notice");
        assert!(!on_time.body.contains("later than"), "{}", on_time.body);
        // An amendment that kept the date was reviewed against the promise
        // the order had: nothing to explain.
        let same_date = Amendment {
            requested_date_after: latest.requested_date_before.clone(),
            ..amendment()
        };
        let kept = confirmed_again(&confirmed(2, "2027-03-20"), &order(), Some(&same_date))
            .expect("notice");
        assert!(!kept.body.contains("later than"), "{}", kept.body);
        let unexplained =
            confirmed_again(&confirmed(3, "2027-03-20"), &order(), None).expect("notice");
        assert!(
            unexplained
                .body
                .contains("Your amended order is confirmed again for delivery on 2027-03-20."),
            "{}",
            unexplained.body
        );
        for first in [0, 1] {
            assert_eq!(
                confirmed_again(&confirmed(first, "2027-03-20"), &order(), Some(&latest)),
                None
            );
        }
    }
}
