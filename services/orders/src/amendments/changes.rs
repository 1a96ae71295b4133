//! What an amendment changes, in words: one sentence per change, computed
//! from the order's lines and requested date before and after.
//!
//! Products are matched by product code (an amendment has at most one line
//! per product; an order created with a product on several lines has them
//! merged into one by its first amendment, which is said as such). The
//! sentences come in a fixed order — each product of the order as it was,
//! in line order (changed fields, or removed), then the products added, in
//! the amendment's line order, then the requested date — so the same
//! amendment always reads the same on the timeline, in the notice and in
//! the closing summary. Reordering lines alone changes nothing. Money is
//! written with [`crate::summary::amount`], the currency said once by the
//! caller where it matters.

use chrono::NaiveDate;
use gendan_proto::v1::OrderLine;

use crate::summary::amount;

/// The changes from `before` to `after`, oldest line first; empty when the
/// amendment changes nothing.
pub fn describe(
    before: &[OrderLine],
    after: &[OrderLine],
    date_before: NaiveDate,
    date_after: NaiveDate,
    currency: &str,
) -> Vec<String> {
    let mut changes = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for line in before {
        let product = line.product.as_str();
        if seen.contains(&product) {
            continue;
        }
        seen.push(product);
        let was: Vec<&OrderLine> = before.iter().filter(|l| l.product == product).collect();
        match after.iter().find(|l| l.product == product) {
            None => changes.push(format!("removed {product} ({})", quantity_of(&was))),
            Some(now) => changed_fields(product, &was, now, currency, &mut changes),
        }
    }
    for (index, line) in after.iter().enumerate() {
        let is_new = !before.iter().any(|l| l.product == line.product);
        let repeated = after[..index].iter().any(|l| l.product == line.product);
        if is_new && !repeated {
            changes.push(format!("added {} × {}", line.product, line.quantity));
        }
    }
    if date_before != date_after {
        changes.push(format!("requested date {date_before} → {date_after}"));
    }
    changes
}

/// The changes as one line of text ("a; b; c"), for the timeline and the
/// closing summary.
pub fn joined(changes: &[String]) -> String {
    if changes.is_empty() {
        "no change listed".to_owned()
    } else {
        changes.join("; ")
    }
}

/// What changed on a product kept by the amendment: its quantity, spec and
/// unit price, or, when it was on several lines, their merging into one.
fn changed_fields(
    product: &str,
    was: &[&OrderLine],
    now: &OrderLine,
    currency: &str,
    changes: &mut Vec<String>,
) {
    let [one] = was else {
        let quantities: Vec<String> = was.iter().map(|l| l.quantity.to_string()).collect();
        changes.push(format!(
            "{product} {} lines ({}) → 1 line of {}, spec {:?}, unit price {}",
            was.len(),
            quantities.join(" + "),
            now.quantity,
            now.spec,
            amount(now.unit_price_minor, currency)
        ));
        return;
    };
    if one.quantity != now.quantity {
        changes.push(format!(
            "{product} quantity {} → {}",
            one.quantity, now.quantity
        ));
    }
    if one.spec != now.spec {
        changes.push(format!("{product} spec {:?} → {:?}", one.spec, now.spec));
    }
    if one.unit_price_minor != now.unit_price_minor {
        changes.push(format!(
            "{product} unit price {} → {}",
            amount(one.unit_price_minor, currency),
            amount(now.unit_price_minor, currency)
        ));
    }
}

/// The units of a product over its lines.
fn quantity_of(lines: &[&OrderLine]) -> u64 {
    lines.iter().map(|l| u64::from(l.quantity)).sum()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn line(product: &str, spec: &str, quantity: u32, unit_price_minor: i64) -> OrderLine {
        OrderLine {
            product: product.to_owned(),
            spec: spec.to_owned(),
            quantity,
            unit_price_minor,
        }
    }

    fn date(text: &str) -> NaiveDate {
        gendan_proto::date_from_str(text).expect("date")
    }

    #[test]
    fn every_kind_of_change_reads_as_a_sentence() {
        let before = vec![
            line("SHIRT-01", "blue", 100, 1200),
            line("CAP-03", "", 40, 300),
        ];
        let after = vec![
            line("SHIRT-01", "navy", 120, 1250),
            line("TROUSER-02", "slim", 50, 2000),
        ];
        assert_eq!(
            describe(
                &before,
                &after,
                date("2027-03-01"),
                date("2027-03-15"),
                "USD"
            ),
            [
                "SHIRT-01 quantity 100 → 120",
                "SHIRT-01 spec \"blue\" → \"navy\"",
                "SHIRT-01 unit price 12.00 → 12.50",
                "removed CAP-03 (40)",
                "added TROUSER-02 × 50",
                "requested date 2027-03-01 → 2027-03-15",
            ]
        );
    }

    #[test]
    fn nothing_changed_is_an_empty_list_whatever_the_line_order() {
        let lines = vec![line("A", "x", 1, 10), line("B", "", 2, 0)];
        let reordered = vec![lines[1].clone(), lines[0].clone()];
        let day = date("2027-01-01");
        assert!(describe(&lines, &lines, day, day, "USD").is_empty());
        assert!(describe(&lines, &reordered, day, day, "USD").is_empty());
        assert_eq!(joined(&[]), "no change listed");
        assert_eq!(joined(&["a".to_owned(), "b".to_owned()]), "a; b".to_owned());
    }

    #[test]
    fn a_product_on_several_lines_is_merged_and_said_so() {
        let before = vec![
            line("BRKT-100", "zinc", 10, 125),
            line("BRKT-200", "", 5, 5000),
            line("BRKT-100", "second delivery", 4, 125),
        ];
        let after = vec![
            line("BRKT-100", "zinc", 14, 125),
            line("BRKT-200", "", 5, 5000),
        ];
        let day = date("2027-01-01");
        assert_eq!(
            describe(&before, &after, day, day, "USD"),
            ["BRKT-100 2 lines (10 + 4) → 1 line of 14, spec \"zinc\", unit price 1.25"]
        );
        let removed = describe(&before, &after[1..], day, day, "USD");
        assert_eq!(removed, ["removed BRKT-100 (14)"]);
    }

    #[test]
    fn prices_use_the_currency_minor_unit() {
        let day = date("2027-01-01");
        let changes = describe(
            &[line("A", "", 1, 1200)],
            &[line("A", "", 1, 1250)],
            day,
            day,
            "JPY",
        );
        assert_eq!(changes, ["A unit price 1200 → 1250"]);
    }

    /// Lines with distinct products from a small catalogue.
    fn lines() -> impl Strategy<Value = Vec<OrderLine>> {
        prop::collection::btree_map(0u8..6, (0u8..3, 1u32..4, 0i64..3), 0..6).prop_map(|map| {
            map.into_iter()
                .map(|(product, (spec, quantity, price))| {
                    line(&format!("P{product}"), &format!("s{spec}"), quantity, price)
                })
                .collect()
        })
    }

    fn as_set(lines: &[OrderLine]) -> std::collections::BTreeSet<(String, String, u32, i64)> {
        lines
            .iter()
            .map(|l| {
                (
                    l.product.clone(),
                    l.spec.clone(),
                    l.quantity,
                    l.unit_price_minor,
                )
            })
            .collect()
    }

    proptest! {
        /// No change is reported exactly when the lines (in any order) and
        /// the date are the same.
        #[test]
        fn empty_exactly_when_nothing_differs(
            before in lines(),
            after in lines(),
            same_day in any::<bool>(),
        ) {
            let day = date("2027-01-01");
            let other = if same_day { day } else { date("2027-02-01") };
            let changes = describe(&before, &after, day, other, "USD");
            prop_assert_eq!(
                changes.is_empty(),
                as_set(&before) == as_set(&after) && same_day
            );
        }

        /// Every product removed and added is named once; a kept product
        /// yields one sentence per field that differs.
        #[test]
        fn each_change_is_counted_once(before in lines(), after in lines()) {
            let day = date("2027-01-01");
            let changes = describe(&before, &after, day, day, "USD");
            let removed = before
                .iter()
                .filter(|b| !after.iter().any(|a| a.product == b.product))
                .count();
            let added = after
                .iter()
                .filter(|a| !before.iter().any(|b| b.product == a.product))
                .count();
            let fields: usize = before
                .iter()
                .filter_map(|b| after.iter().find(|a| a.product == b.product).map(|a| (b, a)))
                .map(|(b, a)| {
                    usize::from(b.quantity != a.quantity)
                        + usize::from(b.spec != a.spec)
                        + usize::from(b.unit_price_minor != a.unit_price_minor)
                })
                .sum();
            prop_assert_eq!(changes.iter().filter(|c| c.starts_with("removed ")).count(), removed);
            prop_assert_eq!(changes.iter().filter(|c| c.starts_with("added ")).count(), added);
            prop_assert_eq!(changes.len(), removed + added + fields);
        }
    }
}
