//! The seeded mix of exceptions the simulated world plays when asked
//! (`gendan demo` by default; never in `gendan bench`): which orders fail
//! final inspection, and how often.
//!
//! The first order to reach final inspection fails twice (so a person is
//! asked and the customer grants a concession), the second fails once (a
//! rework and a re-inspection); after those, one order in eight fails once,
//! chosen by the seed, so a long run keeps showing the loop.

use std::collections::HashMap;
use std::sync::Mutex;

use super::rng::Lcg;

#[derive(Debug, Default)]
pub(crate) struct Mix {
    enabled: bool,
    seed: u64,
    /// Failures planned per order, fixed when its first inspection opens.
    plans: Mutex<HashMap<String, u32>>,
}

impl Mix {
    pub(crate) fn new(enabled: bool, seed: u64) -> Self {
        Mix {
            enabled,
            seed,
            plans: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the final inspection `revision` (1, 2, ...) of `order_id`
    /// finds the lot defective.
    pub(crate) fn final_inspection_fails(&self, order_id: &str, revision: u32) -> bool {
        if !self.enabled {
            return false;
        }
        let Ok(mut plans) = self.plans.lock() else {
            return false;
        };
        let seen = plans.len();
        let failures = *plans
            .entry(order_id.to_owned())
            .or_insert_with(|| planned_failures(self.seed, order_id, seen));
        revision.max(1) <= failures
    }
}

/// The failures of the `nth` order (0-based) to reach final inspection.
fn planned_failures(seed: u64, order_id: &str, nth: usize) -> u32 {
    match nth {
        0 => 2,
        1 => 1,
        _ => u32::from(Lcg::for_key(seed, &format!("fi:{order_id}")).below(8) == 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_orders_show_both_loops_and_a_plan_never_changes() {
        let mix = Mix::new(true, 1);
        assert!(mix.final_inspection_fails("a", 1));
        assert!(mix.final_inspection_fails("a", 2));
        assert!(!mix.final_inspection_fails("a", 3));
        assert!(mix.final_inspection_fails("b", 1));
        assert!(!mix.final_inspection_fails("b", 2));
        // Asked again, "a" keeps its plan.
        assert!(mix.final_inspection_fails("a", 2));
        let later = (0..200)
            .filter(|n| mix.final_inspection_fails(&format!("o{n}"), 1))
            .count();
        assert!((5..60).contains(&later), "{later} of 200");
    }

    #[test]
    fn off_means_nothing_fails() {
        let mix = Mix::new(false, 1);
        assert!(!mix.final_inspection_fails("a", 1));
    }
}
