//! Applying received money to invoices, oldest first (pure).
//!
//! Credits (the unapplied part of each payment or credit note, oldest
//! first) are poured into open invoices (oldest due first) until one side
//! runs out.
//! This is the usual rule a customer's accountant expects: a payment settles
//! the invoice that has waited longest. What is left of a payment stays
//! unapplied and settles the next invoice when it is issued.

/// One allocation: `amount_minor` of credit `credit` applied to `invoice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation<C, I> {
    pub credit: C,
    pub invoice: I,
    pub amount_minor: i64,
}

/// Allocates `credits` (id, amount available) to `invoices` (id, amount
/// open), both already oldest first. Non-positive amounts are skipped.
pub fn allocate<C: Clone, I: Clone>(
    credits: &[(C, i64)],
    invoices: &[(I, i64)],
) -> Vec<Allocation<C, I>> {
    let mut allocations = Vec::new();
    let mut credits = credits.iter().filter(|(_, a)| *a > 0).cloned().peekable();
    let mut current = credits.next();
    for (invoice, open) in invoices.iter().filter(|(_, a)| *a > 0) {
        let mut open = *open;
        while open > 0 {
            let Some((credit, available)) = current.as_mut() else {
                return allocations;
            };
            let amount_minor = open.min(*available);
            allocations.push(Allocation {
                credit: credit.clone(),
                invoice: invoice.clone(),
                amount_minor,
            });
            open -= amount_minor;
            *available -= amount_minor;
            if *available == 0 {
                current = credits.next();
            }
        }
    }
    allocations
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn oldest_invoice_is_settled_first() {
        let allocations = allocate(&[("p1", 500)], &[("inv1", 300), ("inv2", 700)]);
        assert_eq!(
            allocations,
            vec![
                Allocation {
                    credit: "p1",
                    invoice: "inv1",
                    amount_minor: 300
                },
                Allocation {
                    credit: "p1",
                    invoice: "inv2",
                    amount_minor: 200
                },
            ]
        );
    }

    #[test]
    fn several_credits_fill_one_invoice() {
        let allocations = allocate(&[("p1", 100), ("p2", 0), ("p3", 250)], &[("inv1", 300)]);
        let amounts: Vec<_> = allocations
            .iter()
            .map(|a| (a.credit, a.amount_minor))
            .collect();
        assert_eq!(amounts, vec![("p1", 100), ("p3", 200)]);
    }

    #[test]
    fn nothing_to_apply() {
        assert!(allocate::<&str, &str>(&[], &[("inv1", 300)]).is_empty());
        assert!(allocate::<&str, &str>(&[("p1", 300)], &[]).is_empty());
    }

    proptest! {
        #[test]
        fn never_over_applies(
            credits in prop::collection::vec(0i64..10_000, 0..6),
            invoices in prop::collection::vec(0i64..10_000, 0..6),
        ) {
            let credits: Vec<(usize, i64)> = credits.into_iter().enumerate().collect();
            let invoices: Vec<(usize, i64)> = invoices.into_iter().enumerate().collect();
            let allocations = allocate(&credits, &invoices);
            let applied: i64 = allocations.iter().map(|a| a.amount_minor).sum();
            let available: i64 = credits.iter().map(|c| c.1).sum();
            let open: i64 = invoices.iter().map(|i| i.1).sum();
            // Everything that can be applied is, and nothing more.
            prop_assert_eq!(applied, available.min(open));
            for (id, amount) in &credits {
                let used: i64 = allocations.iter().filter(|a| a.credit == *id).map(|a| a.amount_minor).sum();
                prop_assert!(used <= *amount);
            }
            for (id, amount) in &invoices {
                let paid: i64 = allocations.iter().filter(|a| a.invoice == *id).map(|a| a.amount_minor).sum();
                prop_assert!(paid <= *amount);
            }
            prop_assert!(allocations.iter().all(|a| a.amount_minor > 0));
        }
    }
}
