//! The cost figures of an order closed before finance closed cost ledgers:
//! what orders can tell from the events it saw, kept so that a summary of
//! such an order reads as it always did ([`super::costs`] prefers
//! finance's `CostLedgerClosed` whenever the timeline has one).

use std::collections::BTreeMap;

use gendan_proto::TypeName;
use gendan_proto::v1::{
    CostOverrun, PurchaseOrderPlaced, ReceivableOpened, ShipmentBooked, ShipmentCancelled,
};
use prost::Message;

use super::costs::{Costs, variance};
use super::non_empty_or_index;
use crate::timeline::RecordedEvent;

/// The figures of an order whose ledger finance never closed: the latest
/// whole-order `CostOverrun` verdict (budget and actual) when there is one
/// (a category's overrun measures the category, not the order). Otherwise
/// the actual cost is what the order committed to outside: every purchase
/// order placed (`PurchaseOrderPlaced.amount_minor`, the last announcement
/// per purchase order id) plus the freight of the bookings not cancelled
/// (`ShipmentBooked.freight_cost_minor`, per booking reference), in the
/// order currency; and the budget is the one finance announced with the
/// receivable (`ReceivableOpened.cost_budget_minor`, 0 when none).
///
/// Known limit: labour, rework and expedite costs lived only on finance's
/// ledger, so a reconstruction misses them unless a `CostOverrun` said so.
pub fn reconstructed(currency: &str, events: &[RecordedEvent]) -> Costs {
    let overrun = events
        .iter()
        .filter(|e| e.r#type == CostOverrun::TYPE_NAME)
        .filter_map(|e| CostOverrun::decode(e.payload.as_deref()?).ok())
        .rfind(|overrun| overrun.category.is_empty());
    if let Some(overrun) = overrun {
        return with_variance(Costs {
            budget_minor: overrun.budget_minor,
            actual_minor: overrun.actual_minor,
            ..Costs::default()
        });
    }

    let budget_minor = events
        .iter()
        .filter(|e| e.r#type == ReceivableOpened::TYPE_NAME)
        .filter_map(|e| ReceivableOpened::decode(e.payload.as_deref()?).ok())
        .next_back()
        .map(|opened| opened.cost_budget_minor)
        .unwrap_or(0);

    // Keyed so a re-announced PO or booking counts once.
    let mut items: BTreeMap<(u8, String), (i64, String)> = BTreeMap::new();
    for (index, event) in events.iter().enumerate() {
        let Some(payload) = event.payload.as_deref() else {
            continue;
        };
        match event.r#type.as_str() {
            PurchaseOrderPlaced::TYPE_NAME => {
                let Ok(po) = PurchaseOrderPlaced::decode(payload) else {
                    continue;
                };
                let key = non_empty_or_index(po.purchase_order_id, index);
                items.insert((0, key), (po.amount_minor, po.currency));
            }
            ShipmentBooked::TYPE_NAME => {
                let Ok(booking) = ShipmentBooked::decode(payload) else {
                    continue;
                };
                let key = non_empty_or_index(booking.booking_reference, index);
                items.insert((1, key), (booking.freight_cost_minor, booking.currency));
            }
            // A cancelled shipment's freight is not spent; a new booking
            // that follows counts on its own.
            ShipmentCancelled::TYPE_NAME => items.retain(|(kind, _), _| *kind != 1),
            _ => {}
        }
    }
    let mut costs = Costs {
        budget_minor,
        ..Costs::default()
    };
    for (amount, item_currency) in items.into_values() {
        if !item_currency.is_empty() && item_currency != currency {
            costs.skipped_other_currency += 1;
            continue;
        }
        match costs.actual_minor.checked_add(amount) {
            Some(sum) => costs.actual_minor = sum,
            None => costs.overflowed = true,
        }
    }
    with_variance(costs)
}

fn with_variance(mut costs: Costs) -> Costs {
    (costs.variance_minor, costs.variance_bp) = variance(costs.budget_minor, costs.actual_minor);
    costs
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use proptest::prelude::*;

    use super::*;
    use crate::closing::costs::{costs, lessons};
    use crate::closing::fixtures::{event, facts};
    use crate::closing::summarize;

    #[test]
    fn without_a_closed_ledger_the_whole_order_overrun_wins() {
        let events = vec![
            event(&PurchaseOrderPlaced {
                purchase_order_id: "PO-1".to_owned(),
                amount_minor: 1_000,
                currency: "USD".to_owned(),
                ..Default::default()
            }),
            event(&CostOverrun {
                budget_minor: 5_000,
                actual_minor: 6_000,
                ..Default::default()
            }),
            event(&CostOverrun {
                budget_minor: 5_000,
                actual_minor: 7_500,
                ..Default::default()
            }),
            // A category's overrun measures the category, not the order.
            event(&CostOverrun {
                budget_minor: 0,
                actual_minor: 900,
                category: "rework".to_owned(),
                ..Default::default()
            }),
        ];
        let summary = summarize(&facts(), &events, Utc::now());
        assert_eq!(summary.cost_budget_minor, 5_000);
        assert_eq!(summary.cost_actual_minor, 7_500);
        assert_eq!(summary.cost_variance_minor, 2_500);
        assert_eq!(summary.cost_variance_bp, 5_000);
        assert!(summary.cost_categories.is_empty());
        assert!(
            summary.lessons.contains(
                "Costs ran 25.00 USD over the budget of 50.00 USD (+50.00 %): check which cost \
                 lines grew."
            ),
            "{}",
            summary.lessons
        );
    }

    #[test]
    fn committed_costs_count_each_po_and_live_booking_once() {
        let po = |id: &str, amount: i64, currency: &str| {
            event(&PurchaseOrderPlaced {
                purchase_order_id: id.to_owned(),
                amount_minor: amount,
                currency: currency.to_owned(),
                ..Default::default()
            })
        };
        let booking = |reference: &str, amount: i64| {
            event(&ShipmentBooked {
                booking_reference: reference.to_owned(),
                freight_cost_minor: amount,
                currency: "USD".to_owned(),
                ..Default::default()
            })
        };
        let events = vec![
            po("PO-1", 10_000, "USD"),
            po("PO-1", 10_000, "USD"),
            po("PO-2", 2_500, ""),
            po("PO-3", 900, "EUR"),
            booking("BK-1", 4_000),
            event(&ShipmentCancelled::default()),
            booking("BK-2", 4_500),
        ];
        let costs = costs("USD", None, &events);
        assert_eq!(costs.budget_minor, 0);
        assert_eq!(costs.actual_minor, 10_000 + 2_500 + 4_500);
        assert_eq!(costs.variance_minor, costs.actual_minor);
        assert_eq!(costs.variance_bp, 0);
        assert_eq!(costs.skipped_other_currency, 1);
        assert!(!costs.overflowed);
        assert_eq!(
            lessons(&costs, "USD"),
            vec!["1 cost item was in another currency left out of the actual cost.".to_owned()]
        );
    }

    #[test]
    fn the_budget_is_the_one_announced_with_the_receivable() {
        let events = vec![
            event(&ReceivableOpened {
                cost_budget_minor: 75_000,
                ..Default::default()
            }),
            event(&PurchaseOrderPlaced {
                purchase_order_id: "PO-1".into(),
                amount_minor: 20_000,
                currency: "USD".into(),
                ..Default::default()
            }),
        ];
        let costs = costs("USD", None, &events);
        assert_eq!(costs.budget_minor, 75_000);
        assert_eq!(costs.actual_minor, 20_000);
        assert_eq!(costs.variance_minor, -55_000);
        assert_eq!(costs.variance_bp, -7_333);
    }

    #[test]
    fn cost_sums_never_wrap() {
        let events: Vec<RecordedEvent> = (0..3)
            .map(|n| {
                event(&PurchaseOrderPlaced {
                    purchase_order_id: format!("PO-{n}"),
                    amount_minor: i64::MAX / 2,
                    ..Default::default()
                })
            })
            .collect();
        let costs = costs("USD", None, &events);
        assert!(costs.overflowed);
        assert!(costs.actual_minor > 0);
    }

    proptest! {
        #[test]
        fn committed_cost_is_the_checked_sum(amounts in proptest::collection::vec(0i64..i64::MAX / 4, 0..8)) {
            let events: Vec<RecordedEvent> = amounts
                .iter()
                .enumerate()
                .map(|(n, amount)| event(&PurchaseOrderPlaced {
                    purchase_order_id: format!("PO-{n}"),
                    amount_minor: *amount,
                    ..Default::default()
                }))
                .collect();
            let costs = costs("USD", None, &events);
            let exact = amounts.iter().try_fold(0i64, |sum, a| sum.checked_add(*a));
            match exact {
                Some(sum) => {
                    prop_assert_eq!(costs.actual_minor, sum);
                    prop_assert!(!costs.overflowed);
                }
                None => prop_assert!(costs.overflowed),
            }
        }
    }
}
