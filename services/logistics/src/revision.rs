//! Revisions of an order's packing list and documents, without a database.
//!
//! When the customer amends an order before it ships, the saga sends
//! `PreparePacking` and then `PrepareDocuments` again with the next revision
//! (2, 3, …) and the amended order. [`of_command`] reads a command's
//! revision (0 from a sender that predates revisions counts as 1),
//! [`action`] says what it does against the revision stored, and the
//! `*_key` functions name each answer as one fact, so that announcing it
//! again (a re-sent command, a relay after a crash) keeps its event id.
//! The first revision keeps the key its answer had before revisions
//! existed: a command re-sent across the upgrade is still the same fact.

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
