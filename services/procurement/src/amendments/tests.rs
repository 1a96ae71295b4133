//! Unit and property tests of the amendment rule: a shortfall nets only
//! the difference, a surplus is given back latest PO first and then from the
//! reservation, received goods stay, and without holdings the plan is a
//! first procurement's.

use proptest::prelude::*;

use super::*;
use crate::netting::{OnOrder, after_days};

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn today() -> NaiveDate {
    day("2026-03-02")
}

fn fast() -> Offer {
    Offer {
        supplier: "FAST".to_owned(),
        currency: "USD".to_owned(),
        lead_time_days: 7,
        unit_price_minor: 500,
        moq: 100_000,
    }
}

/// A PO placed for the order, nothing delivered, nobody else on it.
fn own_po(id: &str, quantity: Milli, allocated: Milli, expected_in: u32) -> HeldPo {
    HeldPo {
        purchase_order_id: id.to_owned(),
        own: true,
        expected: after_days(today(), expected_in),
        quantity,
        decided: 0,
        delivered: 0,
        allocated,
        received: 0,
        others_outstanding: 0,
        moq: 0,
    }
}

#[test]
fn a_shortfall_nets_only_the_difference() {
    // Held: 50 m reserved and 103 m on PO-1; the need grows to 229.5 m.
    let holding = Holding {
        reserved: 50_000,
        received: 0,
        on_order: vec![own_po("PO-1", 103_000, 103_000, 7)],
    };
    let change = amend_material(
        "fabric",
        229_500,
        &holding,
        &Supply::default(),
        &[fast()],
        today(),
    );
    assert_eq!(change.held(), 153_000);
    assert_eq!(change.netted.required, 76_500);
    assert_eq!(change.netted.shortage, 76_500);
    let purchase = change.netted.purchase.as_ref().unwrap();
    assert_eq!(purchase.quantity, 100_000);
    assert!(change.cuts.is_empty());
    assert_eq!((change.released, change.excess), (0, 0));
    assert_eq!(change.held_after(), 229_500);
    assert_eq!(change.earliest_date, day("2026-03-09"));
}

#[test]
fn a_shortfall_takes_free_stock_and_unclaimed_po_quantities_first() {
    let holding = Holding {
        reserved: 10_000,
        received: 0,
        on_order: Vec::new(),
    };
    let supply = Supply {
        free_stock: 5_000,
        on_order: vec![OnOrder {
            purchase_order_id: "PO-9".to_owned(),
            available: 20_000,
            expected: day("2026-03-05"),
        }],
    };
    let change = amend_material("fabric", 30_000, &holding, &supply, &[], today());
    assert_eq!(change.netted.from_stock, 5_000);
    assert_eq!(change.netted.from_orders, [("PO-9".to_owned(), 15_000)]);
    assert_eq!(change.netted.shortage, 0);
    assert_eq!(change.held_after(), 30_000);
    assert_eq!(change.earliest_date, day("2026-03-05"));
}

#[test]
fn a_surplus_shrinks_the_latest_po_first_and_cancels_one_nobody_needs() {
    // 50 m reserved, PO-1 103 m (MOQ 100), PO-2 100 m of which 76.5 m
    // for the order; the need falls to 91.8 m: 137.7 m to give back.
    let mut first = own_po("PO-1", 103_000, 103_000, 7);
    first.moq = 100_000;
    let mut second = own_po("PO-2", 100_000, 76_500, 9);
    second.moq = 100_000;
    let holding = Holding {
        reserved: 50_000,
        received: 0,
        on_order: vec![first, second],
    };
    let change = amend_material(
        "fabric",
        91_800,
        &holding,
        &Supply::default(),
        &[fast()],
        today(),
    );
    assert_eq!(change.cuts.len(), 2);
    let latest = &change.cuts[0];
    assert_eq!(latest.purchase_order_id, "PO-2");
    assert_eq!((latest.cut, latest.allocated_after), (76_500, 0));
    assert!(latest.cancelled);
    let earlier = &change.cuts[1];
    assert_eq!(earlier.purchase_order_id, "PO-1");
    assert_eq!((earlier.cut, earlier.allocated_after), (61_200, 41_800));
    assert!(!earlier.cancelled);
    // Never below the supplier's minimum: 58.2 m stay on it unallocated.
    assert_eq!(
        (earlier.quantity_before, earlier.quantity_after),
        (103_000, 100_000)
    );
    assert_eq!((change.released, change.excess), (0, 0));
    assert_eq!(change.held_after(), 91_800);
    assert_eq!(change.earliest_date, day("2026-03-09"));
    assert_eq!(change.netted.required, 0);
}

#[test]
fn without_a_minimum_the_po_shrinks_by_the_cut() {
    let holding = Holding {
        reserved: 0,
        received: 0,
        on_order: vec![own_po("PO-1", 40_000, 40_000, 7)],
    };
    let change = amend_material("fabric", 25_000, &holding, &Supply::default(), &[], today());
    assert_eq!(change.cuts[0].quantity_after, 25_000);
    assert_eq!(change.cuts[0].allocated_after, 25_000);
    assert_eq!(change.held_after(), 25_000);
}

#[test]
fn reservations_are_released_after_purchase_orders_and_received_goods_stay() {
    // 30 m reserved, 12 m of it received from PO-1 (received in full
    // and closed, so no longer on order), 20 m still on PO-2.
    let holding = Holding {
        reserved: 30_000,
        received: 12_000,
        on_order: vec![own_po("PO-2", 20_000, 20_000, 7)],
    };
    let change = amend_material("fabric", 5_000, &holding, &Supply::default(), &[], today());
    assert_eq!(change.cuts.len(), 1);
    assert!(change.cuts[0].cancelled);
    // 45 m to give back: 20 m on PO-2, then the 18 m of the reservation
    // taken from stock; of the 12 m received, 5 m are the need and 7 m
    // stay with the order as excess.
    assert_eq!(change.released, 18_000);
    assert_eq!(change.excess, 7_000);
    assert_eq!(change.held_after(), 12_000);
    assert_eq!(change.earliest_date, today());
}

#[test]
fn goods_at_the_dock_are_not_given_back() {
    // PO-1: 100 m, 60 m delivered and waiting for inspection.
    let mut po = own_po("PO-1", 100_000, 100_000, 7);
    po.delivered = 60_000;
    let holding = Holding {
        reserved: 0,
        received: 0,
        on_order: vec![po],
    };
    let change = amend_material("fabric", 10_000, &holding, &Supply::default(), &[], today());
    let cut = &change.cuts[0];
    assert_eq!(cut.cut, 40_000);
    assert!(!cut.cancelled);
    assert_eq!(cut.quantity_after, 60_000);
    assert_eq!(change.excess, 50_000);
    // The order still expects the 60 m at the dock.
    assert_eq!(change.earliest_date, day("2026-03-09"));
}

#[test]
fn a_claim_on_another_orders_po_is_released_not_shrunk() {
    let mut po = own_po("PO-B", 100_000, 30_000, 7);
    po.own = false;
    po.others_outstanding = 50_000;
    let holding = Holding {
        reserved: 0,
        received: 0,
        on_order: vec![po],
    };
    let change = amend_material("fabric", 0, &holding, &Supply::default(), &[], today());
    let cut = &change.cuts[0];
    assert_eq!((cut.cut, cut.allocated_after), (30_000, 0));
    assert_eq!(cut.quantity_after, 100_000);
    assert!(!cut.cancelled);
    assert_eq!(change.held_after(), 0);
}

#[test]
fn a_po_other_orders_wait_on_is_kept_for_them() {
    let mut po = own_po("PO-1", 100_000, 40_000, 7);
    po.others_outstanding = 60_000;
    let holding = Holding {
        reserved: 0,
        received: 0,
        on_order: vec![po],
    };
    let change = amend_material("fabric", 0, &holding, &Supply::default(), &[], today());
    let cut = &change.cuts[0];
    assert!(!cut.cancelled);
    assert_eq!(cut.quantity_after, 60_000);
}

#[test]
fn the_plan_covers_removed_materials_and_reports_missing_offers() {
    let boms = HashMap::from([(
        "shirt".to_owned(),
        vec![BomLine {
            material: "fabric".to_owned(),
            per_unit: 1_000,
            scrap_bp: 0,
        }],
    )]);
    // Buttons are held but no longer needed; fabric is short without
    // an offer.
    let holdings = HashMap::from([(
        "button".to_owned(),
        Holding {
            reserved: 800_000,
            received: 0,
            on_order: Vec::new(),
        },
    )]);
    let plan = plan(
        &[("shirt".to_owned(), 10)],
        &boms,
        &holdings,
        &HashMap::new(),
        &HashMap::new(),
        today(),
    );
    let materials: Vec<&str> = plan.materials.iter().map(|c| c.material.as_str()).collect();
    assert_eq!(materials, ["button", "fabric"]);
    assert_eq!(plan.materials[0].released, 800_000);
    assert_eq!(
        plan.problems,
        ["material \"fabric\" is short and no supplier offers it"]
    );
    assert_eq!(plan.shortages().count(), 1);
}

fn arb_po(index: usize) -> impl Strategy<Value = HeldPo> {
    let sizes = (
        1i64..200_000,
        0i64..=100,
        0i64..=100,
        0i64..=100,
        0i64..50_000,
    );
    let terms = (any::<bool>(), 0u32..30, 0i64..150_000);
    (sizes, terms).prop_map(move |(sizes, terms)| {
        let (quantity, allocated_pct, received_pct, delivered_pct, others) = sizes;
        let (own, eta, moq) = terms;
        // A consistent PO: the order's allocation within it, its
        // received part delivered and decided, others' claims within
        // the rest.
        let allocated = (quantity * allocated_pct / 100).max(1);
        let received = allocated * received_pct / 100;
        let delivered = (quantity * delivered_pct / 100).max(received);
        HeldPo {
            purchase_order_id: format!("PO-{index}"),
            own,
            expected: after_days(day("2026-03-02"), eta),
            quantity,
            decided: received,
            delivered,
            allocated,
            received,
            others_outstanding: others.min(quantity - allocated),
            moq,
        }
    })
}

fn arb_holding() -> impl Strategy<Value = Holding> {
    let pos = (0usize..4).prop_flat_map(|count| (0..count).map(arb_po).collect::<Vec<_>>());
    (0i64..100_000, 0i64..=100, pos).prop_map(|(from_stock, closed_pct, on_order)| {
        // The reservation: stock taken, plus everything received on the
        // open POs, plus some received on POs since closed.
        let on_open = on_order.iter().map(|po| po.received).sum::<Milli>();
        let closed = from_stock * closed_pct / 100;
        Holding {
            reserved: from_stock + on_open + closed,
            received: on_open + closed,
            on_order,
        }
    })
}

proptest! {
    #[test]
    fn holdings_after_the_change_equal_the_new_need_unless_received(
        holding in arb_holding(),
        need in 0i64..600_000,
        free_stock in 0i64..100_000,
    ) {
        let supply = Supply { free_stock, on_order: Vec::new() };
        let change = amend_material("m", need, &holding, &supply, &[fast()], today());
        let held = holding.held();

        // What is held afterwards is the need plus what could not be
        // given back, and what could not be given back is received or
        // at the dock.
        prop_assert_eq!(change.held_after(), need + change.excess);
        let cuttable: Milli = holding.on_order.iter().map(HeldPo::cuttable).sum();
        if held > need {
            prop_assert_eq!(change.acquired(), 0);
            prop_assert_eq!(change.given_back() + change.excess, held - need);
            let stuck = held - need - cuttable - holding.releasable();
            prop_assert_eq!(change.excess, stuck.max(0));
        } else {
            prop_assert_eq!(change.given_back(), 0);
            prop_assert_eq!(change.excess, 0);
            prop_assert_eq!(change.netted.required, need - held);
        }
        prop_assert!(change.released <= holding.releasable());

        // Latest PO first: a PO is cut only once every later one gave
        // all it could.
        let cut_of = |id: &str| {
            change
                .cuts
                .iter()
                .find(|cut| cut.purchase_order_id == id)
                .map_or(0, |cut| cut.cut)
        };
        let mut later_exhausted = true;
        for po in holding.on_order.iter().rev() {
            let cut = cut_of(po.purchase_order_id.as_str());
            if cut > 0 {
                prop_assert!(later_exhausted);
            }
            later_exhausted = later_exhausted && cut == po.cuttable();
        }
        if change.released > 0 {
            prop_assert!(later_exhausted);
        }

        for cut in &change.cuts {
            let po = holding
                .on_order
                .iter()
                .find(|po| po.purchase_order_id == cut.purchase_order_id)
                .unwrap();
            prop_assert!(cut.cut > 0 && cut.cut <= po.cuttable());
            prop_assert!(cut.allocated_after >= po.received);
            prop_assert!(cut.quantity_after <= cut.quantity_before);
            // Never below what was delivered or what others expect.
            prop_assert!(cut.quantity_after >= po.delivered);
            let still_expected = po.others_outstanding + cut.allocated_after - po.received;
            prop_assert!(cut.quantity_after - po.decided >= still_expected);
            if !po.own {
                prop_assert_eq!(cut.quantity_after, cut.quantity_before);
                prop_assert!(!cut.cancelled);
            }
            if cut.cancelled {
                prop_assert!(po.delivered == 0 && po.others_outstanding == 0);
                prop_assert_eq!(cut.allocated_after, 0);
            }
        }
        prop_assert!(change.earliest_date >= today());
    }

    #[test]
    fn without_holdings_the_plan_is_a_first_procurement(
        quantity in 1u32..500,
        free_stock in 0i64..1_000_000,
        available in 0i64..500_000,
    ) {
        let boms = HashMap::from([(
            "shirt".to_owned(),
            vec![BomLine { material: "fabric".to_owned(), per_unit: 1_530, scrap_bp: 200 }],
        )]);
        let supplies = HashMap::from([(
            "fabric".to_owned(),
            Supply {
                free_stock,
                on_order: vec![OnOrder {
                    purchase_order_id: "PO-9".to_owned(),
                    available,
                    expected: day("2026-03-06"),
                }],
            },
        )]);
        let offers = HashMap::from([("fabric".to_owned(), vec![fast()])]);
        let items = [("shirt".to_owned(), quantity)];
        let first = netting::plan(&items, &boms, &supplies, &offers, today());
        let amended = plan(&items, &boms, &HashMap::new(), &supplies, &offers, today());
        prop_assert_eq!(amended.materials.len(), first.materials.len());
        for (change, line) in amended.materials.iter().zip(&first.materials) {
            prop_assert_eq!(&change.netted, line);
            prop_assert!(change.cuts.is_empty());
            prop_assert_eq!(change.held_after(), line.required);
        }
        prop_assert_eq!(amended.earliest_material_date, first.earliest_material_date);
        prop_assert_eq!(amended.problems, first.problems);
    }
}
