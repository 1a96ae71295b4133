//! The customer notice for a resolved claim.
//!
//! [`crate::notices`] decides when the customer is told and stores the
//! notice; this module writes what a `ClaimResolved` tells them: a rejected
//! claim with our reason (the resolution note), a credit note with the
//! amount to be credited, a replacement or a rework with what will be done.
//! It lives beside the claims so the words stay next to the rules they
//! describe.

use gendan_proto::v1::{ClaimResolution, ClaimResolved};
use prost::Message;

use super::kind_name;
use crate::notices::{Draft, letter};
use crate::store::OrderState;
use crate::summary::money;

/// The notice a `ClaimResolved` payload calls for; `None` when it does not
/// decode or carries no claim.
pub fn compose(payload: &[u8], order: &OrderState) -> Option<Draft> {
    let event = ClaimResolved::decode(payload).ok()?;
    let claim = event.claim?;
    let id = order.order_id;
    let what = format!(
        "your {} claim on {} × {}",
        kind_name(claim.kind),
        claim.quantity,
        claim.product
    );
    let note = claim.resolution_note.trim().trim_end_matches('.');
    let (subject, mut text) = match claim.resolution() {
        ClaimResolution::Rejected => {
            let mut text = format!("We have reviewed {what} and rejected it.");
            if note.is_empty() {
                text.push_str(" Please contact us if you would like to discuss our reasons.");
            } else {
                text.push_str(&format!(" The reason: {note}."));
            }
            ("your claim was rejected", text)
        }
        ClaimResolution::CreditNote => (
            "a credit note for your claim",
            format!(
                "We have accepted {what}. A credit of {} will be issued to you for the \
                 claimed goods.",
                money(claim.value_minor, &order.currency)
            ),
        ),
        ClaimResolution::Replacement => (
            "a replacement for your claim",
            format!(
                "We have accepted {what}. We will make and ship {} × {} again to replace \
                 the claimed goods.",
                claim.quantity, claim.product
            ),
        ),
        ClaimResolution::Rework => (
            "rework for your claim",
            format!("We have accepted {what}. We will rework the claimed goods."),
        ),
        // An open claim is not a resolution to tell anyone about.
        ClaimResolution::Unspecified => return None,
    };
    let rejected = claim.resolution() == ClaimResolution::Rejected;
    if !rejected && !note.is_empty() {
        text.push_str(&format!(" Our note: {note}."));
    }
    Some(Draft {
        kind: "claim",
        subject: format!("Order {id}: {subject}"),
        body: letter(&order.customer, &text, id),
    })
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};
    use gendan_proto::v1::{Claim, ClaimKind, Phase};
    use uuid::Uuid;

    use super::*;

    fn order() -> OrderState {
        OrderState {
            order_id: Uuid::nil(),
            customer: "Acme Trading".to_owned(),
            currency: "USD".to_owned(),
            requested_delivery_date: NaiveDate::from_ymd_opt(2030, 3, 1).unwrap(),
            promised_delivery_date: None,
            projected_delivery_date: None,
            phase: Phase::Acceptance as i32,
            total_minor: 100_000,
            created_at: Utc::now(),
            accepted_at: None,
            accepted_by: None,
            closed_at: None,
            summary: None,
            furthest_phase: 0,
        }
    }

    fn resolved(resolution: ClaimResolution, note: &str) -> Vec<u8> {
        ClaimResolved {
            claim: Some(Claim {
                kind: ClaimKind::Damage as i32,
                product: "BRKT-100".to_owned(),
                quantity: 2,
                value_minor: 250,
                resolution: resolution as i32,
                resolution_note: note.to_owned(),
                ..Default::default()
            }),
            open_claims: 0,
        }
        .encode_to_vec()
    }

    #[test]
    fn a_rejected_claim_tells_the_reason() {
        let draft = compose(
            &resolved(ClaimResolution::Rejected, "damage caused after delivery."),
            &order(),
        )
        .expect("notice");
        assert_eq!(draft.kind, "claim");
        assert_eq!(
            draft.subject,
            "Order 00000000-0000-0000-0000-000000000000: your claim was rejected"
        );
        assert!(
            draft.body.contains(
                "We have reviewed your damage claim on 2 × BRKT-100 and rejected it. The \
                 reason: damage caused after delivery."
            ),
            "{}",
            draft.body
        );
        assert!(
            draft.body.starts_with("Dear Acme Trading,"),
            "{}",
            draft.body
        );

        let silent = compose(&resolved(ClaimResolution::Rejected, " "), &order()).expect("notice");
        assert!(silent.body.contains("contact us"), "{}", silent.body);
    }

    #[test]
    fn a_credit_note_tells_the_amount() {
        let draft = compose(&resolved(ClaimResolution::CreditNote, ""), &order()).expect("notice");
        assert!(
            draft
                .body
                .contains("A credit of 2.50 USD will be issued to you"),
            "{}",
            draft.body
        );
        assert!(!draft.body.contains("Our note"), "{}", draft.body);
    }

    #[test]
    fn replacement_and_rework_say_what_happens_and_open_claims_say_nothing() {
        let replacement = compose(
            &resolved(ClaimResolution::Replacement, "ships with the next lot"),
            &order(),
        )
        .expect("notice");
        assert!(
            replacement
                .body
                .contains("make and ship 2 × BRKT-100 again"),
            "{}",
            replacement.body
        );
        assert!(
            replacement
                .body
                .contains("Our note: ships with the next lot.")
        );
        let rework = compose(&resolved(ClaimResolution::Rework, ""), &order()).expect("notice");
        assert!(rework.body.contains("rework the claimed goods"));
        assert_eq!(
            compose(&resolved(ClaimResolution::Unspecified, ""), &order()),
            None
        );
        assert_eq!(compose(&[0xff, 0xff], &order()), None);
    }
}
