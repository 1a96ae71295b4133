//! The calendar's rule, as properties over random plans and as the three
//! stories a merchandiser tells about it (a late supplier, a machine down,
//! a failed inspection).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate};
use proptest::prelude::*;

use super::*;

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn plus(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(Days::new(days)).unwrap()
}

fn estimate(on: NaiveDate, source: &str) -> Estimate {
    Estimate {
        on,
        source: source.to_owned(),
    }
}

/// Everything `key` depends on, directly or not.
fn ancestors(nodes: &[Node], key: &Key) -> BTreeSet<Key> {
    let by_key: BTreeMap<&Key, &Node> = nodes.iter().map(|node| (&node.key, node)).collect();
    let mut found = BTreeSet::new();
    let mut stack = vec![key.clone()];
    while let Some(next) = stack.pop() {
        if let Some(node) = by_key.get(&next) {
            for edge in node.after.iter() {
                if found.insert(edge.from.clone()) {
                    stack.push(edge.from.clone());
                }
            }
        }
    }
    found
}

/// An export order of shirts (cut, sew) and caps (sew), on a sea lane
/// leaving Fridays, 30 % deposit before production and the balance 30 days
/// after shipment. 2026-03-02 is a Monday.
fn shirts_and_caps() -> Inputs {
    let stage = |product: &str, stage: &str, start: &str, end: &str| StagePlan {
        product: product.to_owned(),
        stage: stage.to_owned(),
        start: date(start),
        end: date(end),
    };
    Inputs {
        export: true,
        stages: vec![
            stage("shirt", "cutting", "2026-03-09", "2026-03-10"),
            stage("shirt", "sewing", "2026-03-11", "2026-03-17"),
            stage("cap", "sewing", "2026-03-18", "2026-03-20"),
        ],
        in_process: vec![("shirt".to_owned(), "sewing".to_owned())],
        lane: Some(Lane {
            weekday: 5,
            cutoff_days: 2,
            transit_days: 21,
        }),
        payments: vec![
            Payment {
                label: "deposit".to_owned(),
                trigger: Trigger::Confirmed,
                due_days: 7,
                gates_production: true,
            },
            Payment {
                label: "balance".to_owned(),
                trigger: Trigger::Shipped,
                due_days: 30,
                gates_production: false,
            },
        ],
        durations: Durations::default(),
    }
}

fn planned_shirts_and_caps() -> (Calendar, WorkWeek) {
    let week = WorkWeek::default();
    let today = date("2026-03-02");
    let mut calendar = Calendar::new(shirts_and_caps(), &week, today);
    calendar.estimate(
        Key::of(Kind::MaterialsIn),
        estimate(date("2026-03-09"), "MaterialsOrdered"),
    );
    for stage in shirts_and_caps().stages {
        calendar.estimate(
            Key::stage(&stage.product, &stage.stage),
            estimate(stage.end, "WorkOrderPlanned"),
        );
    }
    calendar.record_actual(Key::of(Kind::Confirmed), today);
    calendar.reproject(&week, today);
    calendar.baseline();
    (calendar, week)
}

/// Materials in, the deposit paid and production started as planned.
fn start_as_planned(calendar: &mut Calendar) {
    calendar.record_actual(Key::of(Kind::MaterialsIn), date("2026-03-09"));
    calendar.record_actual(Key::payment("deposit"), date("2026-03-06"));
    calendar.record_actual(Key::of(Kind::ProductionStart), date("2026-03-09"));
}

#[test]
fn a_plan_dates_every_milestone_after_what_it_waits_for() {
    let (calendar, _) = planned_shirts_and_caps();
    let on = |key: Key| calendar.projected(&key).unwrap();
    assert_eq!(on(Key::payment("deposit")), date("2026-03-09"));
    assert_eq!(on(Key::of(Kind::ProductionStart)), date("2026-03-09"));
    assert_eq!(on(Key::stage("shirt", "sewing")), date("2026-03-17"));
    assert_eq!(on(Key::in_process("shirt", "sewing")), date("2026-03-17"));
    // After the caps, the last product: Friday 20th + 1 working day.
    assert_eq!(on(Key::of(Kind::FinalInspection)), date("2026-03-23"));
    assert_eq!(on(Key::of(Kind::PackingDone)), date("2026-03-24"));
    assert_eq!(on(Key::of(Kind::DocumentsReady)), date("2026-03-26"));
    // Ready Thursday 26th, cut-off 2 days: Saturday, so the next Friday.
    assert_eq!(on(Key::of(Kind::ExFactory)), date("2026-04-03"));
    assert_eq!(on(Key::of(Kind::Delivered)), date("2026-04-24"));
    assert_eq!(on(Key::of(Kind::Accepted)), date("2026-05-01"));
    assert_eq!(on(Key::payment("balance")), date("2026-05-03"));
    assert_eq!(calendar.projected_delivery(), Some(date("2026-04-24")));
    assert_eq!(calendar.ready_to_ship(), Some(date("2026-03-26")));
    for view in calendar.milestones(&WorkWeek::default()) {
        assert_eq!(view.planned, view.projected, "{}", view.key);
    }
}

#[test]
fn a_late_supplier_moves_materials_through_delivery_but_not_the_deposit() {
    let (mut calendar, week) = planned_shirts_and_caps();
    let before = calendar.clone();
    // Five working days late: Monday 9th to Monday 16th.
    calendar.estimate(
        Key::of(Kind::MaterialsIn),
        estimate(date("2026-03-16"), "MaterialsDelayed PO-7"),
    );
    let changes = calendar.reproject(&week, date("2026-03-03"));
    let moved: BTreeSet<Key> = changes.iter().map(|change| change.key.clone()).collect();
    assert!(moved.contains(&Key::of(Kind::MaterialsIn)));
    assert!(moved.contains(&Key::of(Kind::Delivered)));
    assert!(!moved.contains(&Key::payment("deposit")));
    assert!(!moved.contains(&Key::of(Kind::Confirmed)));
    assert_eq!(
        calendar.projected(&Key::stage("shirt", "cutting")),
        Some(date("2026-03-17"))
    );
    assert_eq!(
        calendar.projected(&Key::stage("cap", "sewing")),
        Some(date("2026-03-27"))
    );
    for change in changes.iter() {
        assert_eq!(change.source, "MaterialsDelayed PO-7", "{}", change.key);
    }
    assert!(calendar.projected_delivery() > before.projected_delivery());
    assert_eq!(calendar.version(), before.version() + 1);
    // The plan stays what was promised: the variance is the slip.
    assert_eq!(
        calendar.planned(&Key::of(Kind::Delivered)),
        before.planned(&Key::of(Kind::Delivered))
    );
}

#[test]
fn a_machine_down_moves_the_stages_it_hit_and_what_follows_not_cutting() {
    let (mut calendar, week) = planned_shirts_and_caps();
    start_as_planned(&mut calendar);
    calendar.record_actual(Key::stage("shirt", "cutting"), date("2026-03-10"));
    // Sewing down two days: production re-plans the sewing stages.
    calendar.estimate(
        Key::stage("shirt", "sewing"),
        estimate(date("2026-03-19"), "WorkOrderRescheduled SEW down"),
    );
    calendar.estimate(
        Key::stage("cap", "sewing"),
        estimate(date("2026-03-24"), "WorkOrderRescheduled SEW down"),
    );
    let changes = calendar.reproject(&week, date("2026-03-10"));
    let moved: BTreeSet<Key> = changes.iter().map(|change| change.key.clone()).collect();
    assert!(!moved.contains(&Key::stage("shirt", "cutting")));
    assert!(!moved.contains(&Key::of(Kind::ProductionStart)));
    for key in [
        Key::stage("shirt", "sewing"),
        Key::stage("cap", "sewing"),
        Key::in_process("shirt", "sewing"),
        Key::of(Kind::FinalInspection),
        Key::of(Kind::PackingDone),
        Key::of(Kind::DocumentsReady),
    ] {
        assert!(moved.contains(&key), "{key} should have moved");
    }
    assert_eq!(
        calendar.projected(&Key::of(Kind::FinalInspection)),
        Some(date("2026-03-25"))
    );
}

#[test]
fn a_rework_after_a_failed_inspection_moves_inspection_and_later() {
    let (mut calendar, week) = planned_shirts_and_caps();
    start_as_planned(&mut calendar);
    for stage in shirts_and_caps().stages {
        calendar.record_actual(Key::stage(&stage.product, &stage.stage), stage.end);
    }
    calendar.record_actual(Key::in_process("shirt", "sewing"), date("2026-03-17"));
    // A rework until Thursday the 26th: inspected Friday, packed Monday,
    // documented Wednesday; Friday's sailing still takes the goods.
    calendar.estimate(
        Key::of(Kind::FinalInspection),
        estimate(date("2026-03-27"), "ReworkPlanned RW-1"),
    );
    let changes = calendar.reproject(&week, date("2026-03-23"));
    let moved: BTreeSet<Key> = changes.iter().map(|change| change.key.clone()).collect();
    assert!(moved.contains(&Key::of(Kind::FinalInspection)));
    assert!(!moved.iter().any(|key| key.kind == Kind::StageDone));
    assert!(!moved.contains(&Key::of(Kind::ProductionStart)));
    assert_eq!(
        calendar.projected(&Key::of(Kind::PackingDone)),
        Some(date("2026-03-30"))
    );
    assert!(!moved.contains(&Key::of(Kind::ExFactory)));
    assert!(!moved.contains(&Key::of(Kind::Delivered)));
    // A second rework pushes the documents past the cut-off: a week later.
    calendar.estimate(
        Key::of(Kind::FinalInspection),
        estimate(date("2026-03-31"), "ReworkPlanned RW-2"),
    );
    let changes = calendar.reproject(&week, date("2026-03-27"));
    let delivered = changes
        .iter()
        .find(|change| change.key == Key::of(Kind::Delivered))
        .expect("delivery moves");
    assert_eq!(
        (delivered.before, delivered.after),
        (Some(date("2026-04-24")), Some(date("2026-05-01")))
    );
    assert_eq!(delivered.source, "ReworkPlanned RW-2");
}

#[test]
fn nothing_happens_before_what_it_waits_for_but_money_may_come_early() {
    let (mut calendar, week) = planned_shirts_and_caps();
    start_as_planned(&mut calendar);
    // A clock behind the factory's: the inspection is reported on the 12th,
    // before the caps' sewing ended on the 20th.
    for stage in shirts_and_caps().stages {
        calendar.record_actual(Key::stage(&stage.product, &stage.stage), stage.end);
    }
    calendar.record_actual(Key::in_process("shirt", "sewing"), date("2026-03-17"));
    calendar.record_actual(Key::of(Kind::FinalInspection), date("2026-03-12"));
    calendar.record_actual(Key::payment("balance"), date("2026-03-12"));
    calendar.reproject(&week, date("2026-03-23"));
    assert_eq!(
        calendar.projected(&Key::of(Kind::FinalInspection)),
        Some(date("2026-03-20"))
    );
    let views = calendar.milestones(&week);
    let inspection = views
        .iter()
        .find(|view| view.key == &Key::of(Kind::FinalInspection))
        .unwrap();
    assert_eq!(inspection.actual, Some(date("2026-03-20")));
    // A balance paid before shipment is paid when it was.
    assert_eq!(
        calendar.projected(&Key::payment("balance")),
        Some(date("2026-03-12"))
    );
}

#[test]
fn without_a_lane_the_goods_leave_when_ready_and_arrive_the_same_day() {
    let week = WorkWeek::default();
    let inputs = Inputs {
        lane: None,
        ..shirts_and_caps()
    };
    let calendar = Calendar::new(inputs, &week, date("2026-03-02"));
    assert_eq!(calendar.ready_to_ship(), calendar.projected_delivery());
}

#[test]
fn keys_read_back_as_they_are_written() {
    for key in [
        Key::of(Kind::ExFactory),
        Key::stage("shirt-oxford", "sewing"),
        Key::payment("2:balance"),
    ] {
        assert_eq!(key.to_string().parse::<Key>(), Ok(key));
    }
    assert!("shipped_soon".parse::<Key>().is_err());
}

// ---- properties ----

const BASE: &str = "2026-01-05";

prop_compose! {
    fn a_week()(mask in 1u8..=127, closed in prop::collection::btree_set(0u64..200, 0..6)) -> WorkWeek {
        WorkWeek {
            weekdays: (1..=7).filter(|day| mask & (1 << (day - 1)) != 0).collect(),
            closed: closed.into_iter().map(|offset| plus(date(BASE), offset)).collect(),
        }
    }
}

prop_compose! {
    fn some_stages()(products in prop::collection::vec(prop::collection::vec(0u64..6, 1..=5), 1..=3), queue in 0u64..10) -> Vec<StagePlan> {
        let mut stages = Vec::new();
        for (index, durations) in products.iter().enumerate() {
            let mut start = plus(date(BASE), 14 + queue * index as u64);
            for (position, days) in durations.iter().enumerate() {
                let end = plus(start, *days);
                stages.push(StagePlan {
                    product: format!("p{index}"),
                    stage: format!("s{position}"),
                    start,
                    end,
                });
                start = end;
            }
        }
        stages
    }
}

prop_compose! {
    fn some_inputs()(
        stages in some_stages(),
        inspect_every in 1usize..4,
        export in any::<bool>(),
        lane in prop::option::of((1u32..=7, 0u32..5, 0u32..40)),
        payments in prop::collection::vec((0u8..3, 0u32..90, any::<bool>()), 0..3),
        durations in (0u32..3, 0u32..3, 0u32..4, 0u32..10),
    ) -> Inputs {
        let in_process = stages
            .iter()
            .step_by(inspect_every)
            .map(|stage| (stage.product.clone(), stage.stage.clone()))
            .collect();
        Inputs {
            export,
            stages,
            in_process,
            lane: lane.map(|(weekday, cutoff_days, transit_days)| Lane { weekday, cutoff_days, transit_days }),
            payments: payments
                .into_iter()
                .enumerate()
                .map(|(index, (trigger, due_days, gates))| Payment {
                    label: format!("{index}:part"),
                    trigger: [Trigger::Confirmed, Trigger::Shipped, Trigger::Delivered][trigger as usize],
                    due_days,
                    gates_production: gates,
                })
                .collect(),
            durations: Durations {
                inspection: durations.0,
                packing: durations.1,
                documents: durations.2,
                acceptance_days: durations.3,
            },
        }
    }
}

/// Keys an owner gives dates for, picked by index among the graph's.
fn estimated_keys(
    inputs: &Inputs,
    week: &WorkWeek,
    picks: &[(usize, u64)],
) -> Vec<(Key, Estimate)> {
    let owned: Vec<Key> = graph(inputs, week)
        .into_iter()
        .map(|node| node.key)
        .filter(|key| {
            matches!(
                key.kind,
                Kind::MaterialsIn
                    | Kind::StageDone
                    | Kind::FinalInspection
                    | Kind::ExFactory
                    | Kind::Delivered
            )
        })
        .collect();
    picks
        .iter()
        .map(|(index, offset)| {
            let key = owned[index % owned.len()].clone();
            (key, estimate(plus(date(BASE), *offset), "owner"))
        })
        .collect()
}

fn calendar_of(
    inputs: Inputs,
    estimates: Vec<(Key, Estimate)>,
    week: &WorkWeek,
    today: NaiveDate,
) -> Calendar {
    let mut calendar = Calendar::new(inputs, week, today);
    for (key, estimate) in estimates {
        calendar.estimate(key, estimate);
    }
    calendar.reproject(week, today);
    calendar
}

proptest! {
    #[test]
    fn dependencies_hold_and_nothing_open_is_in_the_past(
        inputs in some_inputs(),
        week in a_week(),
        picks in prop::collection::vec((0usize..40, 0u64..120), 0..6),
        actual_picks in prop::collection::vec((0usize..40, 0u64..120), 0..3),
        today_offset in 0u64..60,
    ) {
        let today = plus(date(BASE), today_offset);
        let estimates = estimated_keys(&inputs, &week, &picks);
        let mut calendar = calendar_of(inputs.clone(), estimates, &week, today);
        for (key, estimate) in estimated_keys(&inputs, &week, &actual_picks) {
            calendar.record_actual(key, estimate.on);
        }
        calendar.reproject(&week, today);
        for node in graph(&inputs, &week) {
            let projected = calendar.projected(&node.key).unwrap();
            if let Some(actual) = calendar.actual(&node.key) {
                // Fixed on its actual, which is never before what it
                // waits for (payments apart).
                let floor = node
                    .after
                    .iter()
                    .map(|edge| calendar.projected(&edge.from).unwrap())
                    .filter(|_| node.key.kind != Kind::PaymentDue)
                    .fold(actual, NaiveDate::max);
                prop_assert_eq!(projected, floor, "{} is fixed on its actual", &node.key);
                continue;
            }
            prop_assert!(projected >= today, "{} is open and in the past", &node.key);
            for edge in node.after.iter() {
                let from = calendar.projected(&edge.from).unwrap();
                prop_assert!(projected >= edge.lag.after(from, &week), "{} before {} allows", &node.key, &edge.from);
            }
        }
    }

    #[test]
    fn a_later_estimate_never_brings_anything_earlier(
        inputs in some_inputs(),
        week in a_week(),
        picks in prop::collection::vec((0usize..40, 0u64..120), 1..6),
        delay in 1u64..30,
        today_offset in 0u64..60,
    ) {
        let today = plus(date(BASE), today_offset);
        let estimates = estimated_keys(&inputs, &week, &picks);
        let earlier = calendar_of(inputs.clone(), estimates.clone(), &week, today);
        let mut later_estimates = estimates;
        let (_, last) = later_estimates.last_mut().unwrap();
        last.on = plus(last.on, delay);
        let later = calendar_of(inputs.clone(), later_estimates, &week, today);
        for node in graph(&inputs, &week) {
            prop_assert!(later.projected(&node.key) >= earlier.projected(&node.key), "{} came earlier", &node.key);
        }
    }

    #[test]
    fn an_estimate_moves_only_its_milestone_and_what_follows(
        inputs in some_inputs(),
        week in a_week(),
        picks in prop::collection::vec((0usize..40, 0u64..120), 0..5),
        moved in (0usize..40, 0u64..150),
        today_offset in 0u64..60,
    ) {
        let today = plus(date(BASE), today_offset);
        let mut calendar = calendar_of(inputs.clone(), estimated_keys(&inputs, &week, &picks), &week, today);
        let (key, estimate) = estimated_keys(&inputs, &week, &[moved]).remove(0);
        calendar.estimate(key.clone(), estimate);
        let nodes = graph(&inputs, &week);
        for change in calendar.reproject(&week, today) {
            prop_assert!(
                change.key == key || ancestors(&nodes, &change.key).contains(&key),
                "{} moved, but it does not follow {}", &change.key, &key
            );
        }
    }

    #[test]
    fn reprojecting_with_nothing_new_changes_nothing(
        inputs in some_inputs(),
        week in a_week(),
        picks in prop::collection::vec((0usize..40, 0u64..120), 0..6),
        today_offset in 0u64..60,
    ) {
        let today = plus(date(BASE), today_offset);
        let mut calendar = calendar_of(inputs.clone(), estimated_keys(&inputs, &week, &picks), &week, today);
        let version = calendar.version();
        prop_assert!(calendar.reproject(&week, today).is_empty());
        prop_assert_eq!(calendar.version(), version);
        calendar.baseline();
        for view in calendar.milestones(&week) {
            prop_assert_eq!(view.planned, view.projected, "{} is off its own plan", view.key);
        }
    }

    #[test]
    fn a_plan_on_working_days_reproduces_itself(inputs in some_inputs()) {
        // The weekdays and no holidays: the plan's ends moved onto working
        // days, materials in at the plan's start, nothing gated.
        let week = WorkWeek::default();
        let mut inputs = inputs;
        inputs.payments.iter_mut().for_each(|payment| payment.gates_production = false);
        for stage in inputs.stages.iter_mut() {
            stage.start = week.add_working(stage.start, u32::from(!week.is_working(stage.start)));
            stage.end = week.add_working(stage.end, u32::from(!week.is_working(stage.end)));
        }
        let start = inputs.stages.iter().map(|stage| stage.start).min().unwrap();
        let calendar = calendar_of(
            inputs.clone(),
            vec![(Key::of(Kind::MaterialsIn), estimate(start, "plan"))],
            &week,
            start,
        );
        for stage in inputs.stages.iter() {
            prop_assert_eq!(calendar.projected(&Key::stage(&stage.product, &stage.stage)), Some(stage.end));
        }
    }

    #[test]
    fn moving_every_date_by_whole_weeks_moves_every_projection_by_as_much(
        inputs in some_inputs(),
        mask in 1u8..=127,
        picks in prop::collection::vec((0usize..40, 0u64..120), 0..6),
        today_offset in 0u64..60,
        weeks in 1u64..20,
    ) {
        let week = WorkWeek {
            weekdays: (1..=7).filter(|day| mask & (1 << (day - 1)) != 0).collect(),
            closed: BTreeSet::new(),
        };
        let shift = |on: NaiveDate| plus(on, 7 * weeks);
        let today = plus(date(BASE), today_offset);
        let estimates = estimated_keys(&inputs, &week, &picks);
        let before = calendar_of(inputs.clone(), estimates.clone(), &week, today);
        let mut shifted = inputs.clone();
        for stage in shifted.stages.iter_mut() {
            stage.start = shift(stage.start);
            stage.end = shift(stage.end);
        }
        let estimates = estimates
            .into_iter()
            .map(|(key, estimate)| (key, Estimate { on: shift(estimate.on), ..estimate }))
            .collect();
        let after = calendar_of(shifted, estimates, &week, shift(today));
        for node in graph(&inputs, &week) {
            prop_assert_eq!(after.projected(&node.key), before.projected(&node.key).map(shift), "{}", &node.key);
        }
    }

    #[test]
    fn working_days_count_back_what_they_add(week in a_week(), offset in 0u64..300, n in 0u32..40, later in 0u64..5) {
        let day = plus(date(BASE), offset);
        let added = week.add_working(day, n);
        if n > 0 {
            prop_assert!(week.is_working(added));
        }
        prop_assert_eq!(week.working_between(day, added), n);
        prop_assert!(week.add_working(plus(day, later), n) >= added);
    }

    #[test]
    fn a_departure_is_on_the_lane_weekday_within_a_week_of_the_cutoff(offset in 0u64..300, cutoff in 0u32..10, weekday in 1u32..=7) {
        let ready = plus(date(BASE), offset);
        let leaves = departure(ready, cutoff, weekday);
        prop_assert_eq!(leaves.weekday().number_from_monday(), weekday);
        let earliest = plus(ready, u64::from(cutoff));
        prop_assert!(leaves >= earliest && leaves <= plus(earliest, 6));
    }

    #[test]
    fn delivery_comes_after_everything_but_acceptance_and_payments(
        inputs in some_inputs(),
        week in a_week(),
        picks in prop::collection::vec((0usize..40, 0u64..120), 0..6),
        today_offset in 0u64..60,
    ) {
        let today = plus(date(BASE), today_offset);
        let calendar = calendar_of(inputs.clone(), estimated_keys(&inputs, &week, &picks), &week, today);
        let delivered = calendar.projected_delivery().unwrap();
        for node in graph(&inputs, &week) {
            if matches!(node.key.kind, Kind::Accepted | Kind::PaymentDue) {
                continue;
            }
            prop_assert!(calendar.projected(&node.key).unwrap() <= delivered, "{} after delivery", &node.key);
        }
    }

    #[test]
    fn a_calendar_reads_back_as_it_was_stored(
        inputs in some_inputs(),
        week in a_week(),
        picks in prop::collection::vec((0usize..40, 0u64..120), 0..6),
    ) {
        let mut calendar = calendar_of(inputs.clone(), estimated_keys(&inputs, &week, &picks), &week, date(BASE));
        calendar.baseline();
        calendar.record_actual(Key::of(Kind::Confirmed), date(BASE));
        let json = serde_json::to_string(&calendar).unwrap();
        let back: Calendar = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, calendar);
    }
}
