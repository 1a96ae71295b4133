//! How the saga's `PhaseChanged` events move the order's read model.
//!
//! The saga owns the workflow; orders mirrors its phase for GetOrder, the
//! tracking list and the customer's notices. [`phase_move`] is the rule,
//! pure so it is tested here; [`crate::store::move_phase`] applies it under
//! the order's row lock. Forward moves always apply. A move back applies
//! only when it starts where the order is — the saga looping back (an
//! amendment reviewed again, a lot made again) — so a late or replayed
//! event from an earlier phase never moves the order back. The furthest
//! phase the order ever reached tells a first arrival ([`PhaseMove::Forward`],
//! worth a customer notice) from a return after a loop ([`PhaseMove::Again`],
//! the customer heard of that phase already).

use gendan_proto::v1::Phase;

/// How a saga `PhaseChanged` moved the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseMove {
    /// Not applied: a late or replayed event, an order already there, or a
    /// cancelled or closed order.
    Stayed,
    /// Forward to a phase the order had never reached.
    Forward,
    /// Forward again to a phase it had reached before a loop back.
    Again,
    /// Back to an earlier phase: the saga looped back.
    Back,
}

impl PhaseMove {
    pub fn moved(self) -> bool {
        self != PhaseMove::Stayed
    }
}

/// Where an order in phase `current` that once got as far as `furthest`
/// goes on a move `from` → `to` (`from` is `None` for "forward only").
/// Cancelled is the highest number and nothing leaves it, so cancelling
/// works from every phase.
pub fn phase_move(current: Phase, furthest: Phase, from: Option<Phase>, to: Phase) -> PhaseMove {
    debug_assert!(Phase::Cancelled > Phase::Closed);
    if to == current || to == Phase::Unspecified || current == Phase::Cancelled {
        return PhaseMove::Stayed;
    }
    if to > current {
        return if to > furthest {
            PhaseMove::Forward
        } else {
            PhaseMove::Again
        };
    }
    if from == Some(current) {
        PhaseMove::Back
    } else {
        PhaseMove::Stayed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_moves_apply_and_late_ones_do_not_move_back() {
        use gendan_proto::v1::Phase::*;
        assert_eq!(
            phase_move(Received, Received, Some(Received), Review),
            PhaseMove::Forward
        );
        // Skipping phases is still forward, whatever `from` says.
        assert_eq!(
            phase_move(Received, Received, Some(Review), Confirmed),
            PhaseMove::Forward
        );
        // A late "received → review" reaching an order in confirmed.
        assert_eq!(
            phase_move(Confirmed, Confirmed, Some(Received), Review),
            PhaseMove::Stayed
        );
        assert_eq!(
            phase_move(Confirmed, Confirmed, None, Review),
            PhaseMove::Stayed
        );
        assert_eq!(
            phase_move(Confirmed, Confirmed, Some(Review), Confirmed),
            PhaseMove::Stayed
        );
        assert_eq!(
            phase_move(Production, Production, Some(Production), Unspecified),
            PhaseMove::Stayed
        );
    }

    #[test]
    fn the_saga_loops_back_and_walks_forward_again() {
        use gendan_proto::v1::Phase::*;
        assert_eq!(
            phase_move(Production, Production, Some(Production), Review),
            PhaseMove::Back
        );
        assert_eq!(
            phase_move(Review, Production, Some(Review), Confirmed),
            PhaseMove::Again
        );
        assert_eq!(
            phase_move(Materials, Production, Some(Materials), Production),
            PhaseMove::Again
        );
        assert_eq!(
            phase_move(Production, Production, Some(Production), FinalInspection),
            PhaseMove::Forward
        );
    }

    #[test]
    fn cancelled_is_reached_from_anywhere_and_never_left() {
        use gendan_proto::v1::Phase::*;
        assert_eq!(
            phase_move(Review, Production, Some(Review), Cancelled),
            PhaseMove::Forward
        );
        assert_eq!(
            phase_move(Cancelled, Cancelled, Some(Cancelled), Review),
            PhaseMove::Stayed
        );
        assert!(!PhaseMove::Stayed.moved());
        assert!(PhaseMove::Back.moved());
    }
}
