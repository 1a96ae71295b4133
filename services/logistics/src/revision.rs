//! Revisions of an order's packing list, documents and bookings, without a
//! database.
//!
//! When the customer amends an order before it ships, the saga sends
//! `PreparePacking` and then `PrepareDocuments` again with the next revision
//! (2, 3, …) and the amended order; a redelivery of claimed goods is packed
//! the same way, with only the claimed lines. [`of_command`] reads a
//! command's revision (0 from a sender that predates revisions counts as
//! 1), [`action`] says what it does against the revision stored, and
//! [`booking_action`] what a `BookShipment` does against the order's
//! current shipment. The `*_key` functions name each answer as one fact, so
//! that announcing it again (a re-sent command or report, a relay after a
//! crash) keeps its event id, and each booking's `Shipped` and `Delivered`
//! are facts of their own. The first revision keeps the key its answer had
//! before revisions existed: a command re-sent across the upgrade is still
//! the same fact.

use std::cmp::Ordering;

use gendan_grpc::FieldError;

/// What a command of some revision does when the order already has a
/// stored list (or document set). Without one it builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The command's revision is newer: build again from the amended order
    /// it carries; the stored revision is superseded.
    Build,
    /// The command's revision is the stored one: answer it again.
    Repeat,
    /// The command's revision was superseded since: answer the current one.
    AnswerCurrent,
}

/// A command's revision: 0 or 1 is the first; larger than the stored
/// column holds is a sender's bug.
pub fn of_command(revision: u32, field: &str) -> Result<u32, FieldError> {
    if i32::try_from(revision).is_err() {
        return Err(FieldError::new(
            field,
            format!("{revision} is not a revision (at most {})", i32::MAX),
        ));
    }
    Ok(revision.max(1))
}

/// What a command of revision `asked` does against the stored revision
/// `stored` (both as [`of_command`] reads them; 0 counts as 1).
pub fn action(asked: u32, stored: u32) -> Action {
    match asked.max(1).cmp(&stored.max(1)) {
        Ordering::Greater => Action::Build,
        Ordering::Equal => Action::Repeat,
        Ordering::Less => Action::AnswerCurrent,
    }
}

/// Where the order's current shipment stands, as a booking decision sees
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shipping {
    /// Booked, the goods not gone yet.
    Booked,
    /// Shipped or delivered: the goods left under the booking.
    Left,
    /// Cancelled by the saga.
    Cancelled,
}

/// The order's current shipment, as a booking decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentBooking {
    pub shipping: Shipping,
    /// The current booking's revision.
    pub revision: u32,
    /// The latest revision answered with it (at least `revision`).
    pub announced: u32,
}

/// What a `BookShipment` does against the order's current shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingAction {
    /// Books a shipment: the first, a re-booking of goods still waiting
    /// (the current booking is cancelled, kept on record), or a redelivery
    /// (the earlier shipment, whatever its state, stays on record).
    Book,
    /// The saga cancelled the shipment: it is not booked again.
    Refuse,
    /// The current booking's revision: answered again from the record.
    Repeat,
    /// A revision a later booking replaced: that revision's booking again.
    AnswerEarlier,
    /// A re-booking asked after the goods left: the booking they left under
    /// answers the new revision, and they are said shipped again.
    GoodsLeft,
}

/// What a `BookShipment` of revision `asked` (0 counts as 1) does, with
/// `redelivery` set or not, against the order's current shipment.
pub fn booking_action(
    asked: u32,
    redelivery: bool,
    current: Option<CurrentBooking>,
) -> BookingAction {
    let Some(current) = current else {
        return BookingAction::Book;
    };
    let asked = asked.max(1);
    // A redelivery is new goods: booked whatever became of the earlier
    // ones, unless this revision was answered already (a re-sent command).
    if redelivery && asked > current.announced.max(current.revision) {
        return BookingAction::Book;
    }
    if current.shipping == Shipping::Cancelled {
        return BookingAction::Refuse;
    }
    match asked.cmp(&current.revision.max(1)) {
        Ordering::Equal => BookingAction::Repeat,
        Ordering::Less => BookingAction::AnswerEarlier,
        Ordering::Greater => match current.shipping {
            Shipping::Booked => BookingAction::Book,
            Shipping::Left | Shipping::Cancelled => BookingAction::GoodsLeft,
        },
    }
}

/// The fact key of `ShipmentBooked` for the booking `booking_reference`
/// answering BookShipment `revision`.
pub fn booked_key(booking_reference: &str, revision: u32) -> String {
    format!("{booking_reference}#{revision}")
}

/// The fact key of `Shipped` for goods that left under `bill_of_lading`,
/// said for booking `revision`.
pub fn shipped_key(revision: u32, bill_of_lading: &str) -> String {
    if revision <= 1 {
        format!("shipped:{bill_of_lading}")
    } else {
        format!("shipped#{revision}:{bill_of_lading}")
    }
}

/// The fact key of `Delivered` for booking `revision`: one delivery per
/// booking, a repeated report is the same fact.
pub fn delivered_key(revision: u32) -> String {
    if revision <= 1 {
        "delivered".to_owned()
    } else {
        format!("delivered#{revision}")
    }
}

/// The fact key of `PackingListReady` for list `revision`.
pub fn packing_list_key(revision: u32) -> String {
    if revision <= 1 {
        "packing_list".to_owned()
    } else {
        format!("packing_list#{revision}")
    }
}

/// The fact key of `PackingChecked` for check `number` (1 = the first) of
/// list `revision`. Each check of a list is its own fact: after a repack
/// the warehouse reports again and the saga must hear the new verdict.
pub fn packing_check_key(revision: u32, number: u32) -> String {
    format!("packing_list#{}:check#{number}", revision.max(1))
}

/// The fact key of `DocumentsReady` for document set `revision`.
pub fn documents_key(revision: u32) -> String {
    if revision <= 1 {
        "documents".to_owned()
    } else {
        format!("documents#{revision}")
    }
}

/// The fact key of `DocumentsRejected` for document set `revision` and
/// its `problems`. A rejected set is rebuilt when its command is re-sent
/// (master data may have been fixed): the same problems again are the
/// same fact, different ones a new one.
pub fn documents_rejected_key(revision: u32, problems: &[String]) -> String {
    format!(
        "documents#{}:rejected:{}",
        revision.max(1),
        problems.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn zero_is_the_first_revision() {
        assert_eq!(of_command(0, "revision").unwrap(), 1);
        assert_eq!(of_command(1, "revision").unwrap(), 1);
        assert_eq!(of_command(3, "revision").unwrap(), 3);
        let too_large = of_command(u32::MAX, "revision").unwrap_err();
        assert_eq!(too_large.field, "revision");
    }

    #[test]
    fn a_newer_revision_builds_the_same_repeats_an_older_answers_the_current() {
        assert_eq!(action(2, 1), Action::Build);
        assert_eq!(action(2, 2), Action::Repeat);
        assert_eq!(action(1, 2), Action::AnswerCurrent);
        // Stored before revisions existed, or asked by an older sender.
        assert_eq!(action(0, 1), Action::Repeat);
        assert_eq!(action(1, 0), Action::Repeat);
        assert_eq!(action(0, 2), Action::AnswerCurrent);
    }

    #[test]
    fn the_first_revision_keeps_its_old_key() {
        assert_eq!(packing_list_key(0), "packing_list");
        assert_eq!(packing_list_key(1), "packing_list");
        assert_eq!(packing_list_key(2), "packing_list#2");
        assert_eq!(documents_key(1), "documents");
        assert_eq!(documents_key(3), "documents#3");
        assert_eq!(packing_check_key(2, 1), "packing_list#2:check#1");
    }

    #[test]
    fn shipment_keys_keep_the_first_booking_and_differ_per_booking() {
        assert_eq!(
            booked_key("ROAD-MON-20260309-0A1B", 1),
            "ROAD-MON-20260309-0A1B#1"
        );
        assert_eq!(shipped_key(0, "RD-1"), "shipped:RD-1");
        assert_eq!(shipped_key(1, "RD-1"), "shipped:RD-1");
        assert_eq!(shipped_key(2, "RD-2"), "shipped#2:RD-2");
        assert_ne!(shipped_key(1, "RD-1"), shipped_key(2, "RD-1"));
        assert_eq!(delivered_key(1), "delivered");
        assert_eq!(delivered_key(2), "delivered#2");
    }

    fn current(shipping: Shipping, revision: u32) -> Option<CurrentBooking> {
        Some(CurrentBooking {
            shipping,
            revision,
            announced: revision,
        })
    }

    #[test]
    fn a_booking_by_revision_without_redelivery_is_as_before() {
        use super::BookingAction::*;
        assert_eq!(booking_action(0, false, None), Book);
        assert_eq!(
            booking_action(1, false, current(Shipping::Booked, 1)),
            Repeat
        );
        assert_eq!(booking_action(0, false, current(Shipping::Left, 1)), Repeat);
        assert_eq!(
            booking_action(1, false, current(Shipping::Booked, 2)),
            AnswerEarlier
        );
        assert_eq!(booking_action(2, false, current(Shipping::Booked, 1)), Book);
        assert_eq!(
            booking_action(2, false, current(Shipping::Left, 1)),
            GoodsLeft
        );
        for asked in [1, 2, 3] {
            assert_eq!(
                booking_action(asked, false, current(Shipping::Cancelled, 2)),
                Refuse,
                "{asked}"
            );
        }
    }

    #[test]
    fn a_redelivery_books_whatever_became_of_the_earlier_goods() {
        use super::BookingAction::*;
        for shipping in [Shipping::Booked, Shipping::Left, Shipping::Cancelled] {
            assert_eq!(
                booking_action(2, true, current(shipping, 1)),
                Book,
                "{shipping:?}"
            );
        }
        assert_eq!(booking_action(1, true, None), Book);
        // Re-sent: the redelivery's booking is the current one.
        assert_eq!(
            booking_action(2, true, current(Shipping::Booked, 2)),
            Repeat
        );
        assert_eq!(booking_action(2, true, current(Shipping::Left, 2)), Repeat);
        // An earlier revision re-sent answers its own booking.
        assert_eq!(
            booking_action(1, true, current(Shipping::Left, 2)),
            AnswerEarlier
        );
        // A revision a re-booking already answered with the goods that left
        // is answered the same way again, not booked.
        let gone = Some(CurrentBooking {
            shipping: Shipping::Left,
            revision: 1,
            announced: 2,
        });
        assert_eq!(booking_action(2, true, gone), GoodsLeft);
        assert_eq!(booking_action(3, true, gone), Book);
    }

    #[test]
    fn a_different_rejection_is_a_different_fact() {
        let cap = ["product cap has no HS code".to_owned()];
        let cap_again = ["product cap has no HS code".to_owned()];
        let weight = ["product cap has no net weight".to_owned()];
        assert_eq!(
            documents_rejected_key(2, &cap),
            documents_rejected_key(2, &cap_again)
        );
        assert_ne!(
            documents_rejected_key(2, &cap),
            documents_rejected_key(2, &weight)
        );
        assert_ne!(
            documents_rejected_key(1, &cap),
            documents_rejected_key(2, &cap)
        );
    }

    proptest! {
        #[test]
        fn keys_of_different_revisions_differ(a in 1u32..10_000, b in 1u32..10_000, n in 1u32..100) {
            prop_assume!(a != b);
            prop_assert_ne!(packing_list_key(a), packing_list_key(b));
            prop_assert_ne!(documents_key(a), documents_key(b));
            prop_assert_ne!(packing_check_key(a, n), packing_check_key(b, n));
            prop_assert_ne!(packing_check_key(a, n), packing_check_key(a, n + 1));
            prop_assert_ne!(shipped_key(a, "BL"), shipped_key(b, "BL"));
            prop_assert_ne!(delivered_key(a), delivered_key(b));
        }

        #[test]
        fn a_redelivery_above_the_current_booking_always_books(
            current_revision in 1u32..1_000,
            above in 1u32..1_000,
            left in proptest::bool::ANY,
        ) {
            let shipping = if left { Shipping::Left } else { Shipping::Booked };
            let asked = current_revision + above;
            prop_assert_eq!(
                booking_action(asked, true, current(shipping, current_revision)),
                BookingAction::Book
            );
            // Without the flag, goods that left are never booked again.
            if left {
                prop_assert_eq!(
                    booking_action(asked, false, current(shipping, current_revision)),
                    BookingAction::GoodsLeft
                );
            }
        }

        #[test]
        fn a_build_one_way_is_an_older_revision_the_other(asked in 0u32..1_000, stored in 0u32..1_000) {
            let there = action(asked, stored);
            let back = action(stored, asked);
            match there {
                Action::Build => prop_assert_eq!(back, Action::AnswerCurrent),
                Action::Repeat => prop_assert_eq!(back, Action::Repeat),
                Action::AnswerCurrent => prop_assert_eq!(back, Action::Build),
            }
        }
    }
}
