//! Tests of the scheduler: calendars, set-ups, sequencing, shared capacity,
//! errors, and properties over random routings, calendars and prior load;
//! plus per-stage quantities ([`schedule_staged`]), where a stage with
//! nothing to make books nothing; the routing hours per work centre.

use super::*;

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn centre(hours_per_day: f64) -> Calendar {
    Calendar {
        hours_per_day,
        ..Calendar::default()
    }
}

fn stage(name: &str, work_centre: &str, hours_per_unit: f64, setup_hours: f64) -> StageSpec {
    StageSpec {
        stage: name.to_owned(),
        work_centre: work_centre.to_owned(),
        hours_per_unit,
        setup_hours,
    }
}

fn item(product: &str, quantity: u32, stages: Vec<StageSpec>) -> Item {
    Item {
        product: product.to_owned(),
        quantity,
        stages,
    }
}

fn calendars(entries: &[(&str, Calendar)]) -> HashMap<String, Calendar> {
    entries
        .iter()
        .map(|(code, calendar)| ((*code).to_owned(), calendar.clone()))
        .collect()
}

// 2026-03-02 is a Monday.
const MONDAY: &str = "2026-03-02";

#[test]
fn a_stage_spreads_over_working_days() {
    let cals = calendars(&[("CUT", centre(8.0))]);
    let items = [item("shirt", 20, vec![stage("cutting", "CUT", 1.0, 0.0)])];
    let plan = schedule(&items, &cals, &mut Load::default(), date(MONDAY)).unwrap();
    let cut = &plan.stages[0];
    assert_eq!(cut.start, date("2026-03-02"));
    assert_eq!(cut.end, date("2026-03-04"));
    assert_eq!(
        cut.bookings,
        vec![
            (date("2026-03-02"), 8.0),
            (date("2026-03-03"), 8.0),
            (date("2026-03-04"), 4.0)
        ]
    );
    assert_eq!(plan.earliest_completion, date("2026-03-04"));
}

#[test]
fn setup_hours_are_added_once_per_stage() {
    let cals = calendars(&[("CUT", centre(8.0))]);
    let items = [item("shirt", 10, vec![stage("cutting", "CUT", 0.5, 4.0)])];
    let plan = schedule(&items, &cals, &mut Load::default(), date(MONDAY)).unwrap();
    assert_eq!(plan.stages[0].hours, 9.0);
    assert_eq!(plan.stages[0].end, date("2026-03-03"));
}

#[test]
fn routing_hours_are_summed_per_work_centre_with_one_setup_per_stage() {
    let items = [
        item(
            "shirt",
            10,
            vec![
                stage("cutting", "CUT", 0.5, 4.0),
                stage("sewing", "SEW", 1.0, 2.0),
            ],
        ),
        item("dress", 4, vec![stage("cutting", "CUT", 1.0, 1.0)]),
    ];
    let hours = hours_by_work_centre(&items);
    // CUT: 10 x 0.5 + 4 and 4 x 1 + 1; SEW: 10 x 1 + 2.
    assert_eq!(hours.len(), 2);
    assert_eq!(hours["CUT"], 14.0);
    assert_eq!(hours["SEW"], 12.0);

    // The same hours the scheduler books for those stages.
    let cals = calendars(&[("CUT", centre(8.0)), ("SEW", centre(8.0))]);
    let plan = schedule(&items, &cals, &mut Load::default(), date(MONDAY)).unwrap();
    let cut: f64 = plan
        .stages
        .iter()
        .filter(|stage| stage.work_centre == "CUT")
        .map(|stage| stage.hours)
        .sum();
    assert_eq!(cut, hours["CUT"]);
}

#[test]
fn weekends_and_closed_dates_are_skipped() {
    let mut cut = centre(8.0);
    cut.closed_dates.insert(date("2026-03-09")); // the next Monday
    let cals = calendars(&[("CUT", cut)]);
    // Friday start, 16 hours: Friday, (weekend), (closed Monday), Tuesday.
    let items = [item("shirt", 16, vec![stage("cutting", "CUT", 1.0, 0.0)])];
    let plan = schedule(&items, &cals, &mut Load::default(), date("2026-03-06")).unwrap();
    let days: Vec<_> = plan.stages[0].bookings.iter().map(|(d, _)| *d).collect();
    assert_eq!(days, vec![date("2026-03-06"), date("2026-03-10")]);
}

#[test]
fn a_start_on_a_non_working_day_moves_to_the_next_working_day() {
    let cals = calendars(&[("CUT", centre(8.0))]);
    let items = [item("shirt", 4, vec![stage("cutting", "CUT", 1.0, 0.0)])];
    let plan = schedule(&items, &cals, &mut Load::default(), date("2026-03-07")).unwrap();
    assert_eq!(plan.stages[0].start, date("2026-03-09"));
    assert_eq!(plan.start, date("2026-03-09"));
}

#[test]
fn custom_weekdays_are_honoured() {
    let weekend_shift = Calendar {
        hours_per_day: 8.0,
        working_weekdays: vec![6, 7],
        closed_dates: BTreeSet::new(),
    };
    let cals = calendars(&[("PACK", weekend_shift)]);
    let items = [item("shirt", 12, vec![stage("packing", "PACK", 1.0, 0.0)])];
    let plan = schedule(&items, &cals, &mut Load::default(), date(MONDAY)).unwrap();
    assert_eq!(plan.stages[0].start, date("2026-03-07"));
    assert_eq!(plan.stages[0].end, date("2026-03-08"));
}

#[test]
fn stages_follow_each_other_and_may_share_a_day() {
    let cals = calendars(&[("CUT", centre(8.0)), ("SEW", centre(8.0))]);
    let items = [item(
        "shirt",
        12,
        vec![
            stage("cutting", "CUT", 1.0, 0.0),
            stage("sewing", "SEW", 1.0, 0.0),
        ],
    )];
    let plan = schedule(&items, &cals, &mut Load::default(), date(MONDAY)).unwrap();
    let (cut, sew) = (&plan.stages[0], &plan.stages[1]);
    assert_eq!(cut.end, date("2026-03-03"));
    // Sewing starts the day cutting ends, not earlier even though SEW is idle.
    assert_eq!(sew.start, date("2026-03-03"));
    assert_eq!(sew.end, date("2026-03-04"));
    assert_eq!(plan.earliest_completion, date("2026-03-04"));
}

#[test]
fn products_of_one_order_share_capacity_in_request_order() {
    let cals = calendars(&[("SEW", centre(8.0))]);
    let items = [
        item("shirt", 8, vec![stage("sewing", "SEW", 1.0, 0.0)]),
        item("skirt", 4, vec![stage("sewing", "SEW", 1.0, 0.0)]),
    ];
    let plan = schedule(&items, &cals, &mut Load::default(), date(MONDAY)).unwrap();
    assert_eq!(plan.stages[0].end, date("2026-03-02"));
    assert_eq!(plan.stages[1].start, date("2026-03-03"));
}

#[test]
fn capacity_booked_by_one_order_delays_the_next() {
    let cals = calendars(&[("SEW", centre(8.0))]);
    let mut load = Load::default();
    let first = [item("shirt", 12, vec![stage("sewing", "SEW", 1.0, 0.0)])];
    let second = [item("skirt", 8, vec![stage("sewing", "SEW", 1.0, 0.0)])];
    schedule(&first, &cals, &mut load, date(MONDAY)).unwrap();
    let plan = schedule(&second, &cals, &mut load, date(MONDAY)).unwrap();
    // Tuesday has 4 free hours left by the first order.
    assert_eq!(
        plan.stages[0].bookings,
        vec![(date("2026-03-03"), 4.0), (date("2026-03-04"), 4.0)]
    );
    assert_eq!(load.booked("SEW", date("2026-03-03")), 8.0);
}

#[test]
fn zero_capacity_is_an_error_naming_the_work_centre() {
    let cals = calendars(&[("PAINT", centre(0.0))]);
    let items = [item("shirt", 1, vec![stage("painting", "PAINT", 1.0, 0.0)])];
    let err = schedule(&items, &cals, &mut Load::default(), date(MONDAY)).unwrap_err();
    assert!(err.to_string().contains("PAINT"), "{err}");

    let never = Calendar {
        hours_per_day: 8.0,
        working_weekdays: vec![9],
        closed_dates: BTreeSet::new(),
    };
    let cals = calendars(&[("PAINT", never)]);
    let err = schedule(&items, &cals, &mut Load::default(), date(MONDAY)).unwrap_err();
    assert!(matches!(err, Error::NoCapacity { ref work_centre, .. } if work_centre == "PAINT"));
}

#[test]
fn work_that_does_not_fit_the_horizon_is_an_error() {
    let cals = calendars(&[("CUT", centre(1.0))]);
    let items = [item(
        "shirt",
        10_000,
        vec![stage("cutting", "CUT", 1.0, 0.0)],
    )];
    let err = schedule(&items, &cals, &mut Load::default(), date(MONDAY)).unwrap_err();
    assert!(matches!(err, Error::BeyondHorizon { ref work_centre, .. } if work_centre == "CUT"));
}

#[test]
fn unknown_work_centre_is_an_error() {
    let items = [item("shirt", 1, vec![stage("cutting", "CUT", 1.0, 0.0)])];
    let err = schedule(&items, &HashMap::new(), &mut Load::default(), date(MONDAY));
    assert!(matches!(err, Err(Error::UnknownWorkCentre(code)) if code == "CUT"));
}

#[test]
fn a_stage_without_hours_takes_no_capacity() {
    let cals = calendars(&[("QC", centre(0.0))]);
    let items = [item("shirt", 5, vec![stage("check", "QC", 0.0, 0.0)])];
    let plan = schedule(&items, &cals, &mut Load::default(), date(MONDAY)).unwrap();
    assert!(plan.stages[0].bookings.is_empty());
    assert_eq!(plan.earliest_completion, date(MONDAY));
}

#[test]
fn finish_date_projects_with_full_capacity() {
    let cut = centre(8.0);
    assert_eq!(
        cut.finish_date(date("2026-03-06"), 10.0),
        Some(date("2026-03-09"))
    );
    assert_eq!(
        cut.finish_date(date("2026-03-06"), 0.0),
        Some(date("2026-03-06"))
    );
    assert_eq!(centre(0.0).finish_date(date(MONDAY), 1.0), None);
}

/// A small deterministic generator: no extra dependency for a property test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// Over random routings, calendars and prior load: no day is overbooked,
/// every stage gets exactly its hours on working days, and stages of a
/// product never start before their predecessor ends.
#[test]
fn property_plans_respect_capacity_calendars_and_sequence() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let centres = ["A", "B", "C"];
    for _case in 0..300 {
        let cals: HashMap<String, Calendar> = centres
            .iter()
            .map(|code| {
                let weekdays = (1..=7).filter(|_| rng.next(3) > 0).collect();
                let mut closed = BTreeSet::new();
                for _ in 0..rng.next(5) {
                    closed.insert(date(MONDAY) + Days::new(rng.next(30)));
                }
                let calendar = Calendar {
                    hours_per_day: 1.0 + rng.next(16) as f64,
                    working_weekdays: weekdays,
                    closed_dates: closed,
                };
                ((*code).to_owned(), calendar)
            })
            .collect();
        let mut load = Load::default();
        for _ in 0..rng.next(20) {
            let code = centres[rng.next(3) as usize];
            let day = date(MONDAY) + Days::new(rng.next(20));
            let room = cals[code].hours_per_day - load.booked(code, day);
            load.book(code, day, room.min(rng.next(10) as f64).max(0.0));
        }
        let items: Vec<Item> = (0..1 + rng.next(3))
            .map(|p| {
                let stages = (0..1 + rng.next(4))
                    .map(|s| {
                        let code = centres[rng.next(3) as usize];
                        stage(
                            &format!("s{s}"),
                            code,
                            rng.next(4) as f64 * 0.5,
                            rng.next(3) as f64,
                        )
                    })
                    .collect();
                item(&format!("p{p}"), 1 + rng.next(30) as u32, stages)
            })
            .collect();
        let before = load.clone();
        let start = date(MONDAY) + Days::new(rng.next(7));
        let plan = schedule(&items, &cals, &mut load, start).unwrap();

        for (code, calendar) in &cals {
            for offset in 0..HORIZON_DAYS {
                let day = date(MONDAY) + Days::new(offset);
                assert!(load.booked(code, day) <= calendar.hours_per_day + 1e-6);
            }
        }
        let mut previous_end: HashMap<&str, NaiveDate> = HashMap::new();
        for stage in &plan.stages {
            let booked: f64 = stage.bookings.iter().map(|(_, h)| h).sum();
            assert!((booked - stage.hours).abs() < 1e-6);
            for (day, hours) in &stage.bookings {
                assert!(cals[&stage.work_centre].is_working_day(*day));
                assert!(*day >= start && *hours > 0.0);
                assert!(*day >= stage.start && *day <= stage.end);
            }
            if let Some(end) = previous_end.get(stage.product.as_str()) {
                assert!(stage.start >= *end);
            }
            previous_end.insert(&stage.product, stage.end);
            assert!(stage.end <= plan.earliest_completion);
            // Only this plan's hours were added.
            for (day, hours) in &stage.bookings {
                assert!(
                    load.booked(&stage.work_centre, *day)
                        >= before.booked(&stage.work_centre, *day) + hours - 1e-6
                );
            }
        }
    }
}

fn staged(product: &str, stages: Vec<(StageSpec, u32)>) -> StagedItem {
    StagedItem {
        product: product.to_owned(),
        stages,
    }
}

#[test]
fn a_stage_with_nothing_to_make_books_nothing_and_the_next_starts_at_once() {
    let cals = calendars(&[("CUT", centre(8.0)), ("SEW", centre(8.0))]);
    // Every shirt was cut already; 12 are still to sew.
    let items = [staged(
        "shirt",
        vec![
            (stage("cutting", "CUT", 0.5, 2.0), 0),
            (stage("sewing", "SEW", 1.0, 0.0), 12),
        ],
    )];
    let plan = schedule_staged(&items, &cals, &mut Load::default(), date(MONDAY)).unwrap();
    let (cut, sew) = (&plan.stages[0], &plan.stages[1]);
    assert_eq!((cut.quantity, cut.hours), (0, 0.0));
    assert!(cut.bookings.is_empty());
    assert_eq!((cut.start, cut.end), (date(MONDAY), date(MONDAY)));
    assert_eq!((sew.start, sew.end), (date(MONDAY), date("2026-03-03")));
    assert_eq!(plan.start, date(MONDAY));
    assert_eq!(plan.earliest_completion, date("2026-03-03"));

    // Nothing at all to make needs no capacity, even on a centre without any.
    let cals = calendars(&[("CUT", centre(0.0))]);
    let nothing = [staged(
        "shirt",
        vec![(stage("cutting", "CUT", 0.5, 2.0), 0)],
    )];
    let plan = schedule_staged(&nothing, &cals, &mut Load::default(), date(MONDAY)).unwrap();
    assert_eq!(
        (plan.start, plan.earliest_completion),
        (date(MONDAY), date(MONDAY))
    );
    assert!(plan.stages.iter().all(|s| s.bookings.is_empty()));
}

#[test]
fn the_same_quantity_at_every_stage_plans_like_the_item() {
    let cals = calendars(&[("CUT", centre(8.0)), ("SEW", centre(8.0))]);
    let shirt = item(
        "shirt",
        12,
        vec![
            stage("cutting", "CUT", 0.5, 2.0),
            stage("sewing", "SEW", 1.0, 0.0),
        ],
    );
    let plain = schedule(
        std::slice::from_ref(&shirt),
        &cals,
        &mut Load::default(),
        date(MONDAY),
    )
    .unwrap();
    let per_stage = schedule_staged(
        &[StagedItem::from(&shirt)],
        &cals,
        &mut Load::default(),
        date(MONDAY),
    )
    .unwrap();
    assert_eq!(plain, per_stage);
}

/// Over random per-stage quantities, many of them 0: each stage books
/// exactly the hours of its quantity (none for 0, set-up included), never
/// before the stage before it ends, a stage with nothing to make ends the
/// day it may start, and no day is overbooked.
#[test]
fn property_staged_plans_book_only_the_stages_with_work() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let centres = ["A", "B"];
    let cals = calendars(&[("A", centre(8.0)), ("B", centre(6.0))]);
    for _case in 0..200 {
        let mut load = Load::default();
        let items: Vec<StagedItem> = (0..1 + rng.next(3))
            .map(|p| {
                let stages = (0..1 + rng.next(4))
                    .map(|s| {
                        let code = centres[rng.next(2) as usize];
                        let spec = stage(
                            &format!("s{s}"),
                            code,
                            0.5 + rng.next(3) as f64 * 0.5,
                            rng.next(3) as f64,
                        );
                        let quantity = rng.next(3) as u32 * rng.next(20) as u32;
                        (spec, quantity)
                    })
                    .collect();
                staged(&format!("p{p}"), stages)
            })
            .collect();
        let plan = schedule_staged(&items, &cals, &mut load, date(MONDAY)).unwrap();

        let asked = items.iter().flat_map(|item| &item.stages);
        let mut previous_end: HashMap<&str, NaiveDate> = HashMap::new();
        assert_eq!(
            plan.stages.len(),
            items.iter().map(|item| item.stages.len()).sum::<usize>()
        );
        for (planned, (spec, quantity)) in plan.stages.iter().zip(asked) {
            assert_eq!(planned.quantity, *quantity);
            let booked: f64 = planned.bookings.iter().map(|(_, h)| h).sum();
            assert!((booked - spec.hours_for(*quantity)).abs() < 1e-6);
            let ready = previous_end
                .get(planned.product.as_str())
                .copied()
                .unwrap_or(date(MONDAY));
            assert!(planned.start >= ready);
            if *quantity == 0 {
                assert!(planned.bookings.is_empty());
                assert_eq!((planned.start, planned.end), (ready, ready));
            }
            previous_end.insert(&planned.product, planned.end);
        }
        for code in centres {
            for offset in 0..400 {
                let day = date(MONDAY) + Days::new(offset);
                assert!(load.booked(code, day) <= cals[code].hours_per_day + 1e-6);
            }
        }
    }
}
