//! ISO 2859-1 switching rules (clause 9.3) between normal and tightened
//! inspection, as a pure function of a product's lot history; the final
//! inspection module reads the history and stores the answer.
//!
//! - Normal to tightened: 2 of 5 or fewer consecutive lots inspected at
//!   normal are not accepted.
//! - Tightened to normal: 5 consecutive lots inspected at tightened are
//!   accepted.
//!
//! Only original inspections count: a lot re-inspected after rework is a
//! resubmitted lot, which the clause leaves out, so the caller passes the
//! first inspection of each lot only. The severity each lot was inspected
//! at is part of the history, so a window never mixes the two phases: a
//! rejection before the return to normal does not count towards tightening
//! again, and an acceptance at normal does not count towards relaxing.
//! Reduced inspection and discontinuation (clause 9.4) are not applied.

use crate::sampling::Severity;

/// Lots the rules look back at: "2 out of 5 or fewer consecutive lots" and
/// "5 consecutive lots accepted". Nothing older changes the answer.
pub const WINDOW: usize = 5;

/// Lots not accepted within [`WINDOW`] that tighten normal inspection.
const REJECTIONS_TO_TIGHTEN: usize = 2;

/// The original inspection of one lot of the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lot {
    /// The severity the product's lots were inspected at then.
    pub severity: Severity,
    pub accepted: bool,
}

/// The severity of the product's next lot, from its lots so far (oldest
/// first); a product without history starts at normal.
pub fn next_severity(history: &[Lot]) -> Severity {
    let Some(last) = history.last() else {
        return Severity::Normal;
    };
    // The lots since the last switch, newest first, as far as the rules look.
    let phase = history
        .iter()
        .rev()
        .take_while(|lot| lot.severity == last.severity)
        .take(WINDOW);
    match last.severity {
        Severity::Normal => {
            let rejected = phase.filter(|lot| !lot.accepted).count();
            if rejected >= REJECTIONS_TO_TIGHTEN {
                Severity::Tightened
            } else {
                Severity::Normal
            }
        }
        Severity::Tightened => {
            let accepted_in_a_row = phase.take_while(|lot| lot.accepted).count();
            if accepted_in_a_row >= WINDOW {
                Severity::Normal
            } else {
                Severity::Tightened
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    const fn normal(accepted: bool) -> Lot {
        Lot {
            severity: Severity::Normal,
            accepted,
        }
    }

    const fn tightened(accepted: bool) -> Lot {
        Lot {
            severity: Severity::Tightened,
            accepted,
        }
    }

    #[test]
    fn examples_from_the_clause() {
        use Severity::{Normal, Tightened};
        let ok = true;
        let no = false;
        assert_eq!(next_severity(&[]), Normal);
        assert_eq!(next_severity(&[normal(no)]), Normal);
        assert_eq!(next_severity(&[normal(no), normal(no)]), Tightened);
        // 2 of 5 consecutive lots.
        let five = [normal(no), normal(ok), normal(ok), normal(ok), normal(no)];
        assert_eq!(next_severity(&five), Tightened);
        // 2 of 6 is not.
        let six = [
            normal(no),
            normal(ok),
            normal(ok),
            normal(ok),
            normal(ok),
            normal(no),
        ];
        assert_eq!(next_severity(&six), Normal);
        // Tightened until 5 in a row are accepted.
        let mut history = vec![normal(no), normal(no)];
        for _ in 0..4 {
            history.push(tightened(ok));
            assert_eq!(next_severity(&history), Tightened);
        }
        history.push(tightened(ok));
        assert_eq!(next_severity(&history), Normal);
        // Back at normal, the rejections before tightening are forgotten.
        history.push(normal(no));
        assert_eq!(next_severity(&history), Normal);
        // A rejection while tightened starts the count again.
        let restarted = [
            tightened(ok),
            tightened(ok),
            tightened(ok),
            tightened(no),
            tightened(ok),
        ];
        assert_eq!(next_severity(&restarted), Tightened);
    }

    fn lot() -> impl Strategy<Value = Lot> {
        (any::<bool>(), any::<bool>()).prop_map(|(tight, accepted)| Lot {
            severity: if tight {
                Severity::Tightened
            } else {
                Severity::Normal
            },
            accepted,
        })
    }

    fn history() -> impl Strategy<Value = Vec<Lot>> {
        prop::collection::vec(lot(), 0..30)
    }

    /// Clause 9.3 as a state machine over outcomes, lot by lot: the
    /// reference the function is checked against.
    fn replay(outcomes: &[bool]) -> Vec<Severity> {
        let mut severity = Severity::Normal;
        let mut normal_window: VecDeque<bool> = VecDeque::new();
        let mut accepted_in_a_row = 0;
        let mut severities = Vec::with_capacity(outcomes.len() + 1);
        for &accepted in outcomes {
            severities.push(severity);
            match severity {
                Severity::Normal => {
                    normal_window.push_back(accepted);
                    if normal_window.len() > WINDOW {
                        normal_window.pop_front();
                    }
                    if normal_window.iter().filter(|ok| !**ok).count() >= 2 {
                        severity = Severity::Tightened;
                        accepted_in_a_row = 0;
                    }
                }
                Severity::Tightened => {
                    accepted_in_a_row = if accepted { accepted_in_a_row + 1 } else { 0 };
                    if accepted_in_a_row >= 5 {
                        severity = Severity::Normal;
                        normal_window.clear();
                    }
                }
            }
        }
        severities.push(severity);
        severities
    }

    proptest! {
        /// At normal, fewer than 2 rejections among the last 5 lots never tighten.
        #[test]
        fn never_tightened_with_fewer_than_two_rejections(history in history()) {
            let recent = &history[history.len().saturating_sub(WINDOW)..];
            let rejected = recent.iter().filter(|lot| !lot.accepted).count();
            let at_normal = history.last().is_none_or(|lot| lot.severity == Severity::Normal);
            if at_normal && rejected < 2 {
                prop_assert_eq!(next_severity(&history), Severity::Normal);
            }
        }

        /// 2 rejections within 5 or fewer lots at normal always tighten.
        #[test]
        fn two_rejections_in_five_normal_lots_tighten(
            history in history(),
            accepted in prop::collection::vec(any::<bool>(), 0..=3),
            first in 0usize..=3,
            second in 0usize..=3,
        ) {
            let mut window: Vec<Lot> = accepted.iter().map(|ok| normal(*ok)).collect();
            window.insert(first.min(window.len()), normal(false));
            window.insert(second.min(window.len()), normal(false));
            prop_assert!(window.len() <= WINDOW);
            let mut lots = history;
            lots.extend(window);
            prop_assert_eq!(next_severity(&lots), Severity::Tightened);
        }

        /// 5 lots accepted in a row at tightened always return to normal.
        #[test]
        fn five_accepted_under_tightened_return_to_normal(history in history()) {
            let mut lots = history;
            lots.extend([tightened(true); WINDOW]);
            prop_assert_eq!(next_severity(&lots), Severity::Normal);
        }

        /// A lot rejected at tightened keeps the product tightened.
        #[test]
        fn a_rejection_under_tightened_stays_tightened(history in history()) {
            let mut lots = history;
            lots.push(tightened(false));
            prop_assert_eq!(next_severity(&lots), Severity::Tightened);
        }

        /// Only the last 5 lots matter, so the store reads no more.
        #[test]
        fn only_the_window_matters(older in history(), recent in prop::collection::vec(lot(), WINDOW)) {
            let mut lots = older;
            lots.extend(recent.iter().copied());
            prop_assert_eq!(next_severity(&lots), next_severity(&recent));
        }

        /// When every lot is inspected at the severity the function chose,
        /// it agrees with the clause replayed as a state machine.
        #[test]
        fn agrees_with_the_clause_lot_by_lot(outcomes in prop::collection::vec(any::<bool>(), 0..60)) {
            let expected = replay(&outcomes);
            let mut history = Vec::with_capacity(outcomes.len());
            for (i, accepted) in outcomes.iter().enumerate() {
                let severity = next_severity(&history);
                prop_assert_eq!(severity, expected[i], "lot {}", i);
                history.push(Lot { severity, accepted: *accepted });
            }
            prop_assert_eq!(next_severity(&history), expected[outcomes.len()]);
        }
    }
}
