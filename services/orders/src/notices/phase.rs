//! The customer's words for each phase the order reaches: the subject
//! label and the sentence of a `PhaseChanged` notice.

use gendan_proto::v1::Phase;

use crate::store::OrderState;

/// The subject label and the sentence for the phase the order moved to.
pub(super) fn phase_text(phase: Phase, order: &OrderState) -> (&'static str, String) {
    let (label, text) = match phase {
        Phase::Unspecified | Phase::Received => (
            "received",
            "We have received your order and are checking it.",
        ),
        Phase::Review => (
            "under review",
            "We are reviewing your order: the specifications, the materials and our \
             production capacity.",
        ),
        Phase::Confirmed => {
            let text = match order.promised_delivery_date {
                Some(date) => format!("Your order is confirmed for delivery on {date}."),
                None => "Your order is confirmed.".to_owned(),
            };
            return ("confirmed", text);
        }
        Phase::Materials => (
            "sourcing materials",
            "We are sourcing the materials for your order.",
        ),
        Phase::Production => ("in production", "Your order is now in production."),
        Phase::FinalInspection => (
            "in final inspection",
            "Production is finished and your goods are in final quality inspection.",
        ),
        Phase::Packing => (
            "being packed",
            "Your goods passed final inspection and are being packed.",
        ),
        Phase::Documents => (
            "preparing documents",
            "We are preparing the shipping documents for your order.",
        ),
        Phase::Shipping => (
            "arranging shipment",
            "We are arranging the shipment of your order.",
        ),
        Phase::Acceptance => (
            "awaiting your acceptance",
            "Your goods have been delivered. Please inspect them and confirm acceptance, or \
             tell us about any problem.",
        ),
        Phase::Settlement => (
            "settlement",
            "Thank you for accepting the goods. The final invoice will follow according to \
             the agreed payment terms.",
        ),
        Phase::Closed => ("completed", "Your order is complete."),
        Phase::Cancelled => ("cancelled", "Your order has been cancelled."),
    };
    (label, text.to_owned())
}
