//! The pure parts of a work order: progress, totals, hours and the
//! per-stage projection.

use super::*;

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn stage(product_seq: i32, stage_seq: i32, quantity: i64, good: i64, end: &str) -> Stage {
    Stage {
        product: format!("p{product_seq}"),
        stage: format!("s{stage_seq}"),
        product_seq,
        stage_seq,
        work_centre: "SEW".into(),
        quantity,
        hours_per_unit: 1.0,
        setup_hours: 0.0,
        hours: quantity as f64,
        planned_start: date("2026-03-02"),
        planned_end: date(end),
        actual_start: None,
        actual_end: None,
        good_quantity: good,
        scrap_quantity: 0,
        status: STAGE_PLANNED.into(),
    }
}

fn work_order(stages: Vec<Stage>) -> WorkOrder {
    WorkOrder {
        work_order_id: Uuid::nil(),
        order_id: "o-1".into(),
        kind: KIND_PRODUCTION.into(),
        revision: 1,
        amendment: 0,
        status: STATUS_PLANNED.into(),
        planned_start: date("2026-03-02"),
        planned_end: stages.iter().map(|s| s.planned_end).max().unwrap(),
        completed_on: None,
        traceparent: None,
        stages,
    }
}

#[test]
fn progress_counts_good_units_of_last_stages_averaged_over_products() {
    let wo = work_order(vec![
        stage(0, 0, 100, 100, "2026-03-03"),
        stage(0, 1, 100, 50, "2026-03-04"),
        stage(1, 0, 10, 20, "2026-03-04"), // over-delivery counts as done
    ]);
    assert!((progress(&wo) - 0.75).abs() < 1e-9);
    assert_eq!(totals(&wo), (70, 0));
}

#[test]
fn projection_keeps_the_plan_when_on_time_and_extends_when_behind() {
    let calendars = HashMap::from([(
        "SEW".to_owned(),
        Calendar {
            hours_per_day: 8.0,
            ..Calendar::default()
        },
    )]);
    let wo = work_order(vec![stage(0, 0, 16, 8, "2026-03-10")]);
    // 8 hours left on Monday the 2nd: done the same day, plan unchanged.
    assert_eq!(
        projected_end(&wo, &calendars, date("2026-03-02")),
        date("2026-03-10")
    );
    // The same 8 hours left on the planned end day's Friday after: late.
    assert_eq!(
        projected_end(&wo, &calendars, date("2026-03-13")),
        date("2026-03-13")
    );
    // Two stages: the second starts after the first's projected end.
    let wo = work_order(vec![
        stage(0, 0, 16, 0, "2026-03-03"),
        stage(0, 1, 16, 0, "2026-03-05"),
    ]);
    assert_eq!(
        projected_end(&wo, &calendars, date("2026-03-05")),
        date("2026-03-09")
    );
}

#[test]
fn each_stage_is_projected_on_its_own_and_the_latest_is_the_work_order_end() {
    let calendars = HashMap::from([(
        "SEW".to_owned(),
        Calendar {
            hours_per_day: 8.0,
            ..Calendar::default()
        },
    )]);
    // Product 0: cutting done on the 3rd, sewing 16 h behind; product
    // 1 on plan. Seen on Thursday the 5th.
    let mut cut = stage(0, 0, 16, 16, "2026-03-03");
    cut.status = STAGE_COMPLETED.into();
    cut.actual_end = Some(date("2026-03-03").and_hms_opt(15, 0, 0).unwrap().and_utc());
    let wo = work_order(vec![
        cut,
        stage(0, 1, 16, 0, "2026-03-05"),
        stage(1, 0, 8, 0, "2026-03-20"),
    ]);
    let today = date("2026-03-05");
    let ends = projected_stage_ends(&wo, &calendars, today);
    assert_eq!(
        ends,
        [date("2026-03-03"), date("2026-03-06"), date("2026-03-20")]
    );
    assert_eq!(projected_end(&wo, &calendars, today), date("2026-03-20"));
    let stages = projected_stages(&wo, &ends);
    assert_eq!(stages[1].projected_end, "2026-03-06");
    assert_eq!(stages[1].planned_end, "2026-03-05");
    // The work order's end is its unfinished stages' latest projection.
    for day in 2..=27 {
        let today = date(&format!("2026-03-{day:02}"));
        let ends = projected_stage_ends(&wo, &calendars, today);
        let latest_unfinished = ends[1..].iter().copied().max().unwrap();
        assert_eq!(
            projected_end(&wo, &calendars, today),
            latest_unfinished.max(wo.planned_end)
        );
    }
}

#[test]
fn stages_with_nothing_to_make_count_as_done_and_cost_nothing() {
    // An amended run: the cutting was all done by the run before it.
    let mut cut = stage(0, 0, 0, 0, "2026-03-02");
    cut.work_centre = "CUT".into();
    cut.status = STAGE_COMPLETED.into();
    let wo = work_order(vec![cut, stage(0, 1, 10, 5, "2026-03-04")]);
    assert_eq!(
        hours_by_work_centre(&wo),
        HashMap::from([("SEW".to_owned(), 10.0)])
    );
    assert!((progress(&wo) - 0.5).abs() < 1e-9);
    assert_eq!(fact_key(&wo), format!("work_order:{}", Uuid::nil()));
    // Only the sewing is left to project: only its calendar is read.
    assert_eq!(wo.unfinished_centres(), ["SEW"]);

    // Nothing at all to make: done, and no hours anywhere.
    let mut only_cut = stage(0, 0, 0, 0, "2026-03-02");
    only_cut.status = STAGE_COMPLETED.into();
    let wo = work_order(vec![only_cut]);
    assert!(wo.all_stages_completed());
    assert!(wo.unfinished_centres().is_empty());
    assert!(hours_by_work_centre(&wo).is_empty());
    assert_eq!(progress(&wo), 1.0);
}

#[test]
fn after_an_amendment_reports_go_to_the_new_run() {
    // Revision 1 made shirts (p0) and totes (p1); amendment 1 dropped
    // the totes and superseded it with revision 2.
    let mut old = work_order(vec![
        stage(0, 0, 10, 6, "2026-03-03"),
        stage(1, 0, 5, 0, "2026-03-03"),
    ]);
    old.status = STATUS_CANCELLED.into();
    let mut new = work_order(vec![stage(0, 0, 4, 0, "2026-03-05")]);
    new.work_order_id = Uuid::from_u128(2);
    new.revision = 2;
    new.amendment = 1;
    let all = vec![new, old];
    assert_eq!(for_stage(&all, "p0", "s0").map(|wo| wo.revision), Some(2));
    // The dropped product is only on the cancelled run: refused by name.
    assert_eq!(
        for_stage(&all, "p1", "s0").map(|wo| wo.status.as_str()),
        Some(STATUS_CANCELLED)
    );
}

/// An order's work orders newest first, as the store returns them: the
/// first run (completed), its rework (open) and a remake (cancelled).
fn history() -> Vec<WorkOrder> {
    let mut first = work_order(vec![
        stage(0, 0, 10, 10, "2026-03-03"),
        stage(0, 1, 10, 10, "2026-03-04"),
    ]);
    first.status = STATUS_COMPLETED.into();
    let mut rework = work_order(vec![Stage {
        stage: "rework".into(),
        ..stage(0, 0, 2, 0, "2026-03-10")
    }]);
    rework.kind = KIND_REWORK.into();
    rework.work_order_id = Uuid::from_u128(2);
    let mut remake = work_order(vec![stage(0, 0, 10, 0, "2026-03-12")]);
    remake.revision = 2;
    remake.status = STATUS_CANCELLED.into();
    remake.work_order_id = Uuid::from_u128(3);
    vec![remake, rework, first]
}

#[test]
fn revisions_are_found_by_kind_and_the_current_run_is_the_latest() {
    let all = history();
    assert_eq!(
        revision(&all, KIND_REWORK, 1).map(|wo| wo.work_order_id),
        Some(Uuid::from_u128(2))
    );
    assert!(revision(&all, KIND_REWORK, 2).is_none());
    assert_eq!(
        current(&all, KIND_PRODUCTION).map(|wo| wo.revision),
        Some(2)
    );
    assert!(current(&[], KIND_PRODUCTION).is_none());
}

#[test]
fn mes_reports_go_to_the_open_work_order_with_the_stage() {
    let all = history();
    // Only the rework has a "rework" stage, and it is open.
    assert_eq!(
        for_stage(&all, "p0", "rework").map(|wo| wo.work_order_id),
        Some(Uuid::from_u128(2))
    );
    // "s0": nobody open has it; the newest with it is the cancelled
    // remake, which the MES handler refuses by name.
    assert_eq!(
        for_stage(&all, "p0", "s0").map(|wo| wo.status.as_str()),
        Some(STATUS_CANCELLED)
    );
    // "s1" exists only in the completed first run.
    assert_eq!(
        for_stage(&all, "p0", "s1").map(|wo| wo.status.as_str()),
        Some(STATUS_COMPLETED)
    );
    assert!(for_stage(&all, "p0", "packing").is_none());
    assert!(for_stage(&all, "p9", "s0").is_none());

    // A remake that is open wins over the older run with the same stage.
    let mut all = history();
    all[0].status = STATUS_PLANNED.into();
    assert_eq!(for_stage(&all, "p0", "s0").map(|wo| wo.revision), Some(2));
}
