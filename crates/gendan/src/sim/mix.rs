//! The seeded mix of exceptions the simulated world plays when asked
//! (`gendan demo` by default; never in `gendan bench`): which orders fail
//! final inspection, and how often.
//!
//! One machine breaks down once, as the first order whose work on it is due
//! within the repair's two days starts production, and is repaired two
//! simulated days later.
//!
//! The first order to reach final inspection fails twice (so a person is
//! asked and the customer grants a concession), the second fails once (a
//! rework and a re-inspection); after those, one order in eight fails once,
//! chosen by the seed, so a long run keeps showing the loop.
//!
//! The first order the customer sees delivered is claimed (damaged goods)
//! instead of accepted; it is accepted once the claim is resolved.
//!
//! The first purchase order placed is confirmed twelve days late by its
//! supplier (the materials come later; the order's dates move).
//!
//! The first order to reach the materials phase is amended by the customer
//! (10% more of its first line): reviewed again, and every department
//! adjusts.
//!
//! The first balance invoice issued is paid only when finance reminds the
//! customer of it (when the simulators can move the business calendar to
//! the reminder's day; ADR 0009).

use std::collections::HashMap;
use std::sync::Mutex;

use super::rng::Lcg;

#[derive(Debug, Default)]
pub(crate) struct Mix {
    enabled: bool,
    seed: u64,
    /// Failures planned per order, fixed when its first inspection opens.
    plans: Mutex<HashMap<String, u32>>,
    /// Whether the one breakdown has happened.
    broke_down: std::sync::atomic::AtomicBool,
    /// The first order the customer saw delivered: the one it claims on.
    first_delivered: Mutex<Option<String>>,
    /// The first order seen in materials: the one the customer amends.
    first_in_materials: Mutex<Option<String>>,
    /// The first purchase order placed: the one confirmed late.
    first_purchase_order: Mutex<Option<String>>,
    /// The first balance invoice issued: the one paid only when reminded.
    first_balance_invoice: Mutex<Option<String>>,
}

impl Mix {
    pub(crate) fn new(enabled: bool, seed: u64) -> Self {
        Mix {
            enabled,
            seed,
            plans: Mutex::new(HashMap::new()),
            broke_down: std::sync::atomic::AtomicBool::new(false),
            first_delivered: Mutex::new(None),
            first_in_materials: Mutex::new(None),
            first_purchase_order: Mutex::new(None),
            first_balance_invoice: Mutex::new(None),
        }
    }

    /// Whether the customer leaves the balance invoice `invoice_id` unpaid
    /// until it is reminded; the answer stays for the same invoice.
    pub(crate) fn pays_when_reminded(&self, invoice_id: &str) -> bool {
        if !self.enabled {
            return false;
        }
        let Ok(mut first) = self.first_balance_invoice.lock() else {
            return false;
        };
        is_first_seen(&mut first, invoice_id)
    }

    /// Whether the supplier of `purchase_order_id` confirms it late; the
    /// answer stays for the same PO.
    pub(crate) fn supplier_late(&self, purchase_order_id: &str) -> bool {
        if !self.enabled {
            return false;
        }
        let Ok(mut first) = self.first_purchase_order.lock() else {
            return false;
        };
        is_first_seen(&mut first, purchase_order_id)
    }

    /// Whether the customer amends `order_id`, seen entering materials; the
    /// answer stays for the same order.
    pub(crate) fn amends(&self, order_id: &str) -> bool {
        if !self.enabled {
            return false;
        }
        let Ok(mut first) = self.first_in_materials.lock() else {
            return false;
        };
        is_first_seen(&mut first, order_id)
    }

    /// Whether the customer claims on `order_id`'s delivery instead of
    /// accepting it; asked again for the same order, the answer stays.
    pub(crate) fn claims_on_delivery(&self, order_id: &str) -> bool {
        if !self.enabled {
            return false;
        }
        let Ok(mut first) = self.first_delivered.lock() else {
            return false;
        };
        is_first_seen(&mut first, order_id)
    }

    /// True exactly once when the mix is on: the machine that breaks down.
    pub(crate) fn breaks_down_once(&self) -> bool {
        self.enabled
            && !self
                .broke_down
                .swap(true, std::sync::atomic::Ordering::SeqCst)
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

/// Whether `id` is the first one asked about (the first order delivered,
/// the first in materials, the first purchase order), remembering it in
/// `first`.
fn is_first_seen(first: &mut Option<String>, id: &str) -> bool {
    first.get_or_insert_with(|| id.to_owned()).as_str() == id
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
        assert!(!mix.breaks_down_once());
    }

    #[test]
    fn only_the_first_delivered_order_is_claimed() {
        let mut first = None;
        assert!(is_first_seen(&mut first, "a"));
        assert!(!is_first_seen(&mut first, "b"));
        assert!(is_first_seen(&mut first, "a"), "the answer stays");

        let mix = Mix::new(true, 1);
        assert!(mix.claims_on_delivery("x"));
        assert!(!mix.claims_on_delivery("y"));
        assert!(mix.claims_on_delivery("x"));
        assert!(!Mix::new(false, 1).claims_on_delivery("x"));
        assert!(mix.amends("m"));
        assert!(!mix.amends("n"));
        assert!(!Mix::new(false, 1).amends("m"));
        assert!(mix.supplier_late("po-1"));
        assert!(!mix.supplier_late("po-2"));
        assert!(!Mix::new(false, 1).supplier_late("po-1"));
        assert!(mix.pays_when_reminded("inv-1"));
        assert!(!mix.pays_when_reminded("inv-2"));
        assert!(mix.pays_when_reminded("inv-1"));
        assert!(!Mix::new(false, 1).pays_when_reminded("inv-1"));
    }

    #[test]
    fn one_machine_breaks_down_once() {
        let mix = Mix::new(true, 1);
        assert!(mix.breaks_down_once());
        assert!(!mix.breaks_down_once());
    }
}
