//! How a number of units a carrier claims is shared among the products that
//! travelled: a carrier names units of a shipment, not lines, so the saga
//! apportions them to the shipment's goods in proportion to each product's
//! quantity (largest remainder), to value the claim and to know what a
//! replacement must make. Pure, so its rules are property-tested.

use std::collections::BTreeMap;

use crate::facts::Goods;

/// `units` of `shipped` (several lines of one product count as one),
/// apportioned by quantity: every product gets the floor of its share, and
/// the units left go one each to the largest remainders (ties to the first
/// product shipped). More units than shipped are all of it; products that
/// get none are left out; the result keeps the shipment's order.
pub fn apportion(shipped: &[Goods], units: u32) -> Vec<Goods> {
    let mut order: Vec<&str> = Vec::new();
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for goods in shipped.iter().filter(|g| g.quantity > 0) {
        let total = totals.entry(goods.product.as_str()).or_insert_with(|| {
            order.push(goods.product.as_str());
            0
        });
        *total += u64::from(goods.quantity);
    }
    let whole: u64 = totals.values().sum();
    let claimed = u64::from(units).min(whole);
    if claimed == 0 {
        return Vec::new();
    }
    // (product, floor share, remainder numerator)
    let mut shares: Vec<(&str, u64, u64)> = order
        .iter()
        .map(|product| {
            let quantity = totals[product];
            let exact = quantity * claimed;
            (*product, exact / whole, exact % whole)
        })
        .collect();
    let given: u64 = shares.iter().map(|(_, share, _)| share).sum();
    let mut by_remainder: Vec<usize> = (0..shares.len()).collect();
    // Stable: equal remainders keep the shipment's order.
    by_remainder.sort_by(|a, b| shares[*b].2.cmp(&shares[*a].2));
    for index in by_remainder.into_iter().take((claimed - given) as usize) {
        shares[index].1 += 1;
    }
    shares
        .into_iter()
        .filter(|(_, share, _)| *share > 0)
        .map(|(product, share, _)| Goods {
            product: product.to_owned(),
            quantity: u32::try_from(share).unwrap_or(u32::MAX),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn goods(product: &str, quantity: u32) -> Goods {
        Goods {
            product: product.to_owned(),
            quantity,
        }
    }

    #[test]
    fn units_follow_the_quantities_and_the_rest_goes_to_the_largest_remainder() {
        let shipped = [goods("A", 300), goods("B", 100)];
        assert_eq!(apportion(&shipped, 4), vec![goods("A", 3), goods("B", 1)]);
        assert_eq!(apportion(&shipped, 2), vec![goods("A", 2)]);
        assert_eq!(apportion(&shipped, 1), vec![goods("A", 1)]);
        assert_eq!(apportion(&shipped, 0), vec![]);
        assert_eq!(apportion(&shipped, 999), shipped.to_vec());
        // Two lines of one product are one product.
        let split = [goods("A", 50), goods("B", 100), goods("A", 50)];
        assert_eq!(
            apportion(&split, 200),
            vec![goods("A", 100), goods("B", 100)]
        );
        // Equal remainders: the first product shipped.
        assert_eq!(
            apportion(&[goods("B", 1), goods("A", 1)], 1),
            vec![goods("B", 1)]
        );
    }

    proptest! {
        #[test]
        fn the_shares_add_up_and_never_exceed_what_travelled(
            quantities in proptest::collection::vec((0usize..4, 0u32..5_000), 0..6),
            units in 0u32..30_000,
        ) {
            let names = ["A", "B", "C", "D"];
            let shipped: Vec<Goods> = quantities
                .iter()
                .map(|(name, quantity)| goods(names[*name], *quantity))
                .collect();
            let whole: u32 = shipped.iter().map(|g| g.quantity).sum();
            let shares = apportion(&shipped, units);
            let total: u32 = shares.iter().map(|g| g.quantity).sum();
            prop_assert_eq!(total, units.min(whole));
            for share in &shares {
                let of_product: u32 = shipped
                    .iter()
                    .filter(|g| g.product == share.product)
                    .map(|g| g.quantity)
                    .sum();
                prop_assert!(share.quantity > 0 && share.quantity <= of_product);
                // Within one unit of the exact proportional share.
                let exact = f64::from(of_product) * f64::from(units.min(whole)) / f64::from(whole);
                prop_assert!((f64::from(share.quantity) - exact).abs() < 1.0 + 1e-9);
            }
            let mut names_seen: Vec<&str> = shares.iter().map(|g| g.product.as_str()).collect();
            names_seen.dedup();
            prop_assert_eq!(names_seen.len(), shares.len());
        }
    }
}
