//! Re-planning the work a downtime hits, as pure functions beside the
//! scheduler.
//!
//! [`stages_to_move`] picks, per product of a work order, the first
//! unfinished stage on the stopped work centre whose plan touches the
//! downtime's days, and every unfinished stage after it in routing order
//! (they wait for it). [`releasable`] is what those stages booked from the
//! downtime's first day on; the caller gives it back to the [`Load`] for
//! every work order the downtime hits before re-booking any, so the oldest
//! plan gets first claim on all the capacity there is, not only on what the
//! others left. [`replan`] then books the same hours again with
//! [`schedule::book`], stage after stage, never before the stage's floor
//! (where it started before the downtime: a breakdown never pulls work
//! forward). The caller has taken the downtime out of the load
//! ([`downtime::reserve`](crate::downtime::reserve)), so the moved work
//! lands around it. What a stage booked before that first day stays: it
//! was worked, or planned, before the breakdown. [`rebooked`] turns the
//! result into the work order's new bookings per work centre and day.
//!
//! Bookings per stage are what make the release exact: two stages of one
//! work order on the same centre and day share one capacity booking row,
//! so the work order store keeps them per stage as well
//! ([`store::stage_bookings`](crate::work_orders::store::stage_bookings)).
//! [`equipment`](crate::equipment) loads the data, re-plans every hit work
//! order in one transaction and stores the results.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use crate::Result;
use crate::schedule::{self, Calendar, Load, StageSpec};
use crate::work_orders::{STAGE_COMPLETED, Stage, WorkOrder};

/// Hours booked on one day.
type DayHours = (NaiveDate, f64);

/// Hours below this are rounding noise, not capacity.
const EPSILON: f64 = 1e-9;

/// A stage of a work order: product and stage name.
pub type StageKey = (String, String);

/// Hours each stage of one work order booked, per day in date order.
pub type StageBookings = HashMap<StageKey, Vec<(NaiveDate, f64)>>;

fn key(stage: &Stage) -> StageKey {
    (stage.product.clone(), stage.stage.clone())
}

/// A stage's new plan.
#[derive(Debug, Clone, PartialEq)]
pub struct MovedStage {
    pub product: String,
    pub stage: String,
    pub work_centre: String,
    pub planned_start: NaiveDate,
    pub planned_end: NaiveDate,
    /// Its bookings given back: everything from the re-plan's first day on.
    pub released: Vec<(NaiveDate, f64)>,
    /// Its new bookings, all from the re-plan's first day on.
    pub booked: Vec<(NaiveDate, f64)>,
}

/// A work order's new plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Replan {
    pub moved: Vec<MovedStage>,
    pub planned_start: NaiveDate,
    /// The work order's end before the re-plan.
    pub previous_end: NaiveDate,
    pub planned_end: NaiveDate,
}

impl Replan {
    pub fn end_moved(&self) -> bool {
        self.planned_end != self.previous_end
    }
}

/// The stages a stoppage of `work_centre` on the days `first..=last` moves:
/// per product, the first unfinished stage on that centre planned to run on
/// any of those days, then every unfinished stage after it. In the work
/// order's stage order; empty when the stoppage misses the work order.
pub fn stages_to_move(
    work_order: &WorkOrder,
    work_centre: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> Vec<StageKey> {
    let mut moving: Vec<i32> = Vec::new();
    let mut keys = Vec::new();
    for stage in &work_order.stages {
        if stage.status == STAGE_COMPLETED {
            continue;
        }
        let hit = stage.work_centre == work_centre
            && stage.planned_end >= first
            && stage.planned_start <= last;
        if hit && !moving.contains(&stage.product_seq) {
            moving.push(stage.product_seq);
        }
        if moving.contains(&stage.product_seq) {
            keys.push(key(stage));
        }
    }
    keys
}

/// What the `moved` stages of `work_order` booked from `from` on, per work
/// centre and day: the hours to give back to the load before [`replan`].
/// Completed stages never move, so they give nothing back.
pub fn releasable(
    work_order: &WorkOrder,
    moved: &[StageKey],
    bookings: &StageBookings,
    from: NaiveDate,
) -> Vec<(String, NaiveDate, f64)> {
    let mut released = Vec::new();
    for stage in work_order.stages.iter().filter(|stage| moves(stage, moved)) {
        for (day, hours) in own(bookings, stage).iter().filter(|(day, _)| *day >= from) {
            released.push((stage.work_centre.clone(), *day, *hours));
        }
    }
    released
}

fn moves(stage: &Stage, moved: &[StageKey]) -> bool {
    stage.status != STAGE_COMPLETED && moved.contains(&key(stage))
}

fn own<'a>(bookings: &'a StageBookings, stage: &Stage) -> &'a [(NaiveDate, f64)] {
    bookings
        .get(&key(stage))
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Re-plans the `moved` stages of `work_order` from `from` (the downtime's
/// first day), booking into `load`, which must hold the downtimes and no
/// longer the moved stages' bookings from `from` on ([`releasable`]).
/// `floors` holds the earliest start of each moved stage (its start before
/// the downtime); a stage without one keeps its current start as its
/// floor. Completed stages never move.
///
/// On error `load` may hold part of the re-plan; callers that go on using
/// it should clone it first.
pub fn replan(
    work_order: &WorkOrder,
    moved: &[StageKey],
    floors: &HashMap<StageKey, NaiveDate>,
    bookings: &StageBookings,
    from: NaiveDate,
    calendars: &HashMap<String, Calendar>,
    load: &mut Load,
) -> Result<Replan> {
    // Stages come by product, then routing order: each starts no earlier
    // than the one before it ends, moved or not.
    let mut previous_end: HashMap<i32, NaiveDate> = HashMap::new();
    let mut new_stages = Vec::new();
    for stage in &work_order.stages {
        if !moves(stage, moved) {
            let end = match (stage.status.as_str(), stage.actual_end) {
                (STAGE_COMPLETED, Some(actual_end)) => actual_end.date_naive(),
                _ => stage.planned_end,
            };
            previous_end.insert(stage.product_seq, end);
            continue;
        }
        let (kept, released): (Vec<DayHours>, Vec<DayHours>) = own(bookings, stage)
            .iter()
            .partition(|(day, _)| *day < from);
        let kept_hours: f64 = kept.iter().map(|(_, hours)| hours).sum();
        let floor = floors
            .get(&key(stage))
            .copied()
            .unwrap_or(stage.planned_start);
        let ready = [
            Some(from),
            Some(floor),
            previous_end.get(&stage.product_seq).copied(),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(from);
        let spec = StageSpec {
            stage: stage.stage.clone(),
            work_centre: stage.work_centre.clone(),
            hours_per_unit: stage.hours_per_unit,
            setup_hours: stage.setup_hours,
        };
        let to_book = (stage.hours - kept_hours).max(0.0);
        let (start, end, booked) = schedule::book(&spec, to_book, calendars, load, ready)?;
        // Hours worked before the downtime keep the stage's start; a stage
        // with nothing left to book ends where its kept hours end.
        let kept_last = kept.last().map(|(day, _)| *day);
        let planned_start = if kept_hours > EPSILON {
            stage.planned_start
        } else {
            start
        };
        let planned_end = match kept_last {
            Some(last) if booked.is_empty() => last,
            _ => end,
        };
        previous_end.insert(stage.product_seq, planned_end);
        new_stages.push(MovedStage {
            product: stage.product.clone(),
            stage: stage.stage.clone(),
            work_centre: stage.work_centre.clone(),
            planned_start,
            planned_end,
            released,
            booked,
        });
    }

    let dates = |stage: &Stage| {
        new_stages
            .iter()
            .find(|new| new.product == stage.product && new.stage == stage.stage)
            .map_or((stage.planned_start, stage.planned_end), |new| {
                (new.planned_start, new.planned_end)
            })
    };
    let planned_start = work_order
        .stages
        .iter()
        .map(|stage| dates(stage).0)
        .min()
        .unwrap_or(work_order.planned_start);
    let planned_end = work_order
        .stages
        .iter()
        .map(|stage| dates(stage).1)
        .max()
        .unwrap_or(work_order.planned_end);
    Ok(Replan {
        moved: new_stages,
        planned_start,
        previous_end: work_order.planned_end,
        planned_end,
    })
}

/// The work order's capacity bookings per work centre and day from the
/// re-plan's first day on, given `current` (what it has booked from that
/// day): less what its moved stages gave back, plus what they booked.
/// Days left with nothing are dropped.
pub fn rebooked(
    current: &[(String, NaiveDate, f64)],
    replan: &Replan,
) -> BTreeMap<(String, NaiveDate), f64> {
    let mut booked: BTreeMap<(String, NaiveDate), f64> = BTreeMap::new();
    for (work_centre, day, hours) in current {
        *booked.entry((work_centre.clone(), *day)).or_default() += hours;
    }
    for stage in &replan.moved {
        for (day, hours) in &stage.released {
            *booked.entry((stage.work_centre.clone(), *day)).or_default() -= hours;
        }
        for (day, hours) in &stage.booked {
            *booked.entry((stage.work_centre.clone(), *day)).or_default() += hours;
        }
    }
    booked.retain(|_, hours| *hours > EPSILON);
    booked
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::downtime::{Window, reserve};
    use crate::work_orders::{KIND_PRODUCTION, STAGE_PLANNED, STATUS_IN_PROGRESS};

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
    }

    fn stage(
        (product_seq, stage_seq): (i32, i32),
        work_centre: &str,
        hours: f64,
        (start, end): (&str, &str),
    ) -> Stage {
        Stage {
            product: format!("p{product_seq}"),
            stage: format!("s{stage_seq}"),
            product_seq,
            stage_seq,
            work_centre: work_centre.to_owned(),
            quantity: 1,
            hours_per_unit: hours,
            setup_hours: 0.0,
            hours,
            planned_start: date(start),
            planned_end: date(end),
            actual_start: None,
            actual_end: None,
            good_quantity: 0,
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
            status: STATUS_IN_PROGRESS.into(),
            planned_start: stages.iter().map(|s| s.planned_start).min().unwrap(),
            planned_end: stages.iter().map(|s| s.planned_end).max().unwrap(),
            completed_on: None,
            traceparent: None,
            stages,
        }
    }

    fn calendars(codes: &[&str]) -> HashMap<String, Calendar> {
        codes
            .iter()
            .map(|code| {
                let calendar = Calendar {
                    hours_per_day: 8.0,
                    ..Calendar::default()
                };
                ((*code).to_owned(), calendar)
            })
            .collect()
    }

    /// The load as a re-plan starts from: every stage's bookings as the
    /// database gives them, the downtime taken out, and the moved stages'
    /// hours from its first day given back.
    fn load_of(
        wo: &WorkOrder,
        moved: &[StageKey],
        bookings: &StageBookings,
        window: &Window,
        cals: &HashMap<String, Calendar>,
    ) -> Load {
        let mut load = Load::default();
        for stage in &wo.stages {
            for (day, hours) in bookings.get(&key(stage)).into_iter().flatten() {
                load.book(&stage.work_centre, *day, *hours);
            }
        }
        reserve(&mut load, cals, std::slice::from_ref(window));
        for (work_centre, day, hours) in releasable(wo, moved, bookings, window.first_day()) {
            load.release(&work_centre, day, hours);
        }
        load
    }

    fn keys(names: &[(&str, &str)]) -> Vec<StageKey> {
        names
            .iter()
            .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
            .collect()
    }

    // 2026-03-02 is a Monday. Cutting on CUT Monday, sewing on SEW 8 h
    // Monday and 4 h Tuesday, packing on PACK Tuesday; SEW breaks down on
    // Tuesday at 09:00 for 48 hours.
    fn shirt_run() -> (WorkOrder, StageBookings) {
        let wo = work_order(vec![
            stage((0, 0), "CUT", 8.0, ("2026-03-02", "2026-03-02")),
            stage((0, 1), "SEW", 12.0, ("2026-03-02", "2026-03-03")),
            stage((0, 2), "PACK", 2.0, ("2026-03-03", "2026-03-03")),
        ]);
        let bookings = StageBookings::from([
            (key(&wo.stages[0]), vec![(date("2026-03-02"), 8.0)]),
            (
                key(&wo.stages[1]),
                vec![(date("2026-03-02"), 8.0), (date("2026-03-03"), 4.0)],
            ),
            (key(&wo.stages[2]), vec![(date("2026-03-03"), 2.0)]),
        ]);
        (wo, bookings)
    }

    #[test]
    fn the_hit_stage_and_the_ones_after_it_move_past_the_downtime() {
        let (wo, bookings) = shirt_run();
        let window = Window::lasting("SEW", at("2026-03-03 09:00"), 48.0);
        let (first, last) = (window.first_day(), window.last_day());
        let moved = stages_to_move(&wo, "SEW", first, last);
        assert_eq!(moved, keys(&[("p0", "s1"), ("p0", "s2")]));

        let cals = calendars(&["CUT", "SEW", "PACK"]);
        let mut load = load_of(&wo, &moved, &bookings, &window, &cals);
        let plan = replan(
            &wo,
            &moved,
            &HashMap::new(),
            &bookings,
            first,
            &cals,
            &mut load,
        )
        .unwrap();
        // Monday's 8 h stay; the 4 h left take Tuesday's 3 h before the
        // breakdown and 1 h on Thursday after it; packing follows.
        let sewing = &plan.moved[0];
        assert_eq!(sewing.released, vec![(date("2026-03-03"), 4.0)]);
        assert_eq!(
            sewing.booked,
            vec![(date("2026-03-03"), 3.0), (date("2026-03-05"), 1.0)]
        );
        assert_eq!(
            (sewing.planned_start, sewing.planned_end),
            (date("2026-03-02"), date("2026-03-05"))
        );
        let packing = &plan.moved[1];
        assert_eq!(packing.booked, vec![(date("2026-03-05"), 2.0)]);
        assert_eq!(plan.previous_end, date("2026-03-03"));
        assert_eq!(plan.planned_end, date("2026-03-05"));
        assert!(plan.end_moved());
        assert_eq!(load.booked("SEW", date("2026-03-03")), 5.0 + 3.0);

        // The bookings of the work order from Tuesday on.
        let current = vec![
            ("SEW".to_owned(), date("2026-03-03"), 4.0),
            ("PACK".to_owned(), date("2026-03-03"), 2.0),
        ];
        assert_eq!(
            rebooked(&current, &plan).into_iter().collect::<Vec<_>>(),
            vec![
                (("PACK".to_owned(), date("2026-03-05")), 2.0),
                (("SEW".to_owned(), date("2026-03-03")), 3.0),
                (("SEW".to_owned(), date("2026-03-05")), 1.0),
            ]
        );
    }

    #[test]
    fn a_stoppage_that_misses_the_plan_or_finished_stages_moves_nothing() {
        let (mut wo, _) = shirt_run();
        assert!(stages_to_move(&wo, "SEW", date("2026-03-04"), date("2026-03-06")).is_empty());
        assert!(stages_to_move(&wo, "WELD", date("2026-03-02"), date("2026-03-06")).is_empty());
        wo.stages[1].status = STAGE_COMPLETED.into();
        assert!(stages_to_move(&wo, "SEW", date("2026-03-02"), date("2026-03-06")).is_empty());
        // A product hit on its first stage moves all of it; other products stay.
        let wo = work_order(vec![
            stage((0, 0), "SEW", 4.0, ("2026-03-03", "2026-03-03")),
            stage((0, 1), "PACK", 1.0, ("2026-03-03", "2026-03-03")),
            stage((1, 0), "CUT", 4.0, ("2026-03-03", "2026-03-03")),
        ]);
        assert_eq!(
            stages_to_move(&wo, "SEW", date("2026-03-03"), date("2026-03-03")),
            keys(&[("p0", "s0"), ("p0", "s1")])
        );
    }

    #[test]
    fn moved_stages_never_start_before_their_floor() {
        // Sewing was planned for Thursday; a stoppage from Tuesday until
        // Thursday night pushes it to Friday.
        let wo = work_order(vec![stage(
            (0, 0),
            "SEW",
            4.0,
            ("2026-03-05", "2026-03-05"),
        )]);
        let bookings = StageBookings::from([(key(&wo.stages[0]), vec![(date("2026-03-05"), 4.0)])]);
        let window = Window::lasting("SEW", at("2026-03-03 00:00"), 72.0);
        let cals = calendars(&["SEW"]);
        let moved = stages_to_move(&wo, "SEW", window.first_day(), window.last_day());
        assert_eq!(moved.len(), 1);
        let mut load = load_of(&wo, &moved, &bookings, &window, &cals);
        let plan = replan(
            &wo,
            &moved,
            &HashMap::new(),
            &bookings,
            window.first_day(),
            &cals,
            &mut load,
        )
        .unwrap();
        assert_eq!(plan.moved[0].booked, vec![(date("2026-03-06"), 4.0)]);
        assert_eq!(plan.planned_end, date("2026-03-06"));

        // Back up early (Tuesday only): the floor it had before the
        // downtime brings it back to Thursday, not earlier.
        let moved_bookings =
            StageBookings::from([(key(&wo.stages[0]), plan.moved[0].booked.clone())]);
        let mut moved_wo = wo.clone();
        moved_wo.stages[0].planned_start = date("2026-03-06");
        moved_wo.stages[0].planned_end = date("2026-03-06");
        moved_wo.planned_end = date("2026-03-06");
        let real = Window::lasting("SEW", at("2026-03-03 00:00"), 24.0);
        let mut load = load_of(&moved_wo, &moved, &moved_bookings, &real, &cals);
        let floors = HashMap::from([(key(&wo.stages[0]), date("2026-03-05"))]);
        let back = replan(
            &moved_wo,
            &moved,
            &floors,
            &moved_bookings,
            real.first_day(),
            &cals,
            &mut load,
        )
        .unwrap();
        assert_eq!(back.moved[0].booked, vec![(date("2026-03-05"), 4.0)]);
        assert_eq!(
            (back.previous_end, back.planned_end),
            (date("2026-03-06"), date("2026-03-05"))
        );
    }

    #[test]
    fn the_oldest_plan_gets_first_claim_when_every_hit_work_order_lets_go_first() {
        // SEW is down Tuesday and Wednesday. The older plan sewed on
        // Tuesday; the younger on Wednesday and Thursday.
        let older = work_order(vec![stage(
            (0, 0),
            "SEW",
            8.0,
            ("2026-03-03", "2026-03-03"),
        )]);
        let mut younger = work_order(vec![stage(
            (0, 0),
            "SEW",
            16.0,
            ("2026-03-04", "2026-03-05"),
        )]);
        younger.work_order_id = Uuid::from_u128(2);
        let older_bookings =
            StageBookings::from([(key(&older.stages[0]), vec![(date("2026-03-03"), 8.0)])]);
        let younger_bookings = StageBookings::from([(
            key(&younger.stages[0]),
            vec![(date("2026-03-04"), 8.0), (date("2026-03-05"), 8.0)],
        )]);
        let window = Window::lasting("SEW", at("2026-03-03 00:00"), 48.0);
        let (first, last) = (window.first_day(), window.last_day());
        let cals = calendars(&["SEW"]);
        let hit = [(&older, &older_bookings), (&younger, &younger_bookings)];
        let mut load = Load::default();
        for (wo, bookings) in hit {
            for (day, hours) in &bookings[&key(&wo.stages[0])] {
                load.book("SEW", *day, *hours);
            }
        }
        reserve(&mut load, &cals, std::slice::from_ref(&window));
        for (wo, bookings) in hit {
            let moved = stages_to_move(wo, "SEW", first, last);
            for (work_centre, day, hours) in releasable(wo, &moved, bookings, first) {
                load.release(&work_centre, day, hours);
            }
        }
        let ends: Vec<NaiveDate> = hit
            .iter()
            .map(|(wo, bookings)| {
                let moved = stages_to_move(wo, "SEW", first, last);
                let plan = replan(
                    wo,
                    &moved,
                    &HashMap::new(),
                    bookings,
                    first,
                    &cals,
                    &mut load,
                );
                plan.unwrap().planned_end
            })
            .collect();
        // The older plan takes Thursday, which the younger had booked; the
        // younger goes on Friday and Monday.
        assert_eq!(ends, [date("2026-03-05"), date("2026-03-09")]);
    }

    #[test]
    fn two_products_on_one_centre_give_back_exactly_their_own_hours() {
        // Both products sew on Tuesday and share the day's 8 hours.
        let wo = work_order(vec![
            stage((0, 0), "SEW", 6.0, ("2026-03-03", "2026-03-03")),
            stage((1, 0), "SEW", 10.0, ("2026-03-03", "2026-03-04")),
        ]);
        let bookings = StageBookings::from([
            (key(&wo.stages[0]), vec![(date("2026-03-03"), 6.0)]),
            (
                key(&wo.stages[1]),
                vec![(date("2026-03-03"), 2.0), (date("2026-03-04"), 8.0)],
            ),
        ]);
        let window = Window::lasting("SEW", at("2026-03-03 00:00"), 24.0);
        let cals = calendars(&["SEW"]);
        let moved = stages_to_move(&wo, "SEW", window.first_day(), window.last_day());
        let mut load = load_of(&wo, &moved, &bookings, &window, &cals);
        let plan = replan(
            &wo,
            &moved,
            &HashMap::new(),
            &bookings,
            window.first_day(),
            &cals,
            &mut load,
        )
        .unwrap();
        // Tuesday is lost: the first product takes Wednesday's first 6 h, the
        // second the 2 h left and 8 h on Thursday.
        assert_eq!(plan.moved[0].booked, vec![(date("2026-03-04"), 6.0)]);
        assert_eq!(
            plan.moved[1].booked,
            vec![(date("2026-03-04"), 2.0), (date("2026-03-05"), 8.0)]
        );
        for day in ["2026-03-04", "2026-03-05"] {
            assert!(load.booked("SEW", date(day)) <= 8.0 + 1e-9);
        }
        let current = vec![
            ("SEW".to_owned(), date("2026-03-03"), 8.0),
            ("SEW".to_owned(), date("2026-03-04"), 8.0),
        ];
        let total: f64 = rebooked(&current, &plan).values().sum();
        assert!((total - 16.0).abs() < 1e-9);
    }
}
