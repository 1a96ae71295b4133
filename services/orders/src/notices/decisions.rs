//! The customer's part in the saga's questions: the first request of a
//! question the customer answers (a delivery date, a concession after
//! failed inspections; reminders are for our merchandiser), and how goods
//! the carrier lost or damaged are made good once that is decided.

use gendan_proto::timestamp_to;
use gendan_proto::v1::{DecisionMade, DecisionRequested};
use prost::Message;

use super::{CARGO_CLAIM_DECISION, DELIVERY_DATE_DECISION, FINAL_INSPECTION_DECISION};
use crate::store::OrderState;

/// The notice's kind, subject and text.
type Words = (&'static str, String, String);

/// A `DecisionRequested` the customer is asked.
pub(super) fn requested(payload: &[u8], order: &OrderState) -> Option<Words> {
    let id = order.order_id;
    let event = DecisionRequested::decode(payload).ok()?;
    let decision = event.decision?;
    if event.reminder {
        return None;
    }
    if decision.kind == FINAL_INSPECTION_DECISION {
        let text = "Your goods did not pass our final inspection, and a rework did not \
                bring them within the agreed quality level. We can ship them as they are if \
                you accept them by concession, or scrap and make the lot again (a later \
                delivery). Please tell us which you prefer."
            .to_owned();
        return Some((
            "decision",
            format!("Order {id}: your decision on a quality deviation"),
            text,
        ));
    }
    if decision.kind != DELIVERY_DATE_DECISION {
        return None;
    }
    let mut text = format!(
        "We cannot complete your order by the date you requested ({}).",
        order.requested_delivery_date
    );
    if let Some(date) = order.projected_delivery_date {
        text.push_str(&format!(" The earliest date we can deliver is {date}."));
    }
    text.push_str(
        " Please let us know whether you accept the new date, would like to change \
             the order, or prefer to cancel it.",
    );
    if let Some(deadline) = decision.deadline.as_ref().and_then(timestamp_to) {
        text.push_str(&format!(
            " We would be grateful for your answer by {}.",
            deadline.date_naive()
        ));
    }
    Some((
        "decision",
        format!("Order {id}: please confirm the delivery date"),
        text,
    ))
}

/// A `DecisionMade` about goods the carrier lost or damaged.
pub(super) fn made(payload: &[u8], order: &OrderState) -> Option<Words> {
    let id = order.order_id;
    // Only how goods the carrier lost or damaged are made good is
    // the customer's news; other answers have notices of their own.
    let decision = DecisionMade::decode(payload).ok()?.decision?;
    if decision.kind != CARGO_CLAIM_DECISION {
        return None;
    }
    let lost = format!(
        "The carrier has reported goods of your order lost or damaged in transit \
             (carrier claim {}).",
        decision.subject
    );
    let (subject, plan) = match decision.answer.as_str() {
        "replacement" => (
            "replacement goods on the way",
            "We are making the goods again and will ship them to you as a replacement; \
                 we will let you know when they leave and when they arrive.",
        ),
        "credit_note" => (
            "goods lost or damaged in transit credited",
            "We will credit you for them: a credit note follows, and the amount you owe \
                 is reduced accordingly.",
        ),
        _ => return None,
    };
    Some((
        "cargo_claim",
        format!("Order {id}: {subject}"),
        format!("{lost} {plan}"),
    ))
}
