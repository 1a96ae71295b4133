//! Forward finite-capacity scheduling, as pure functions over in-memory data.
//!
//! A [`Calendar`] says how many hours a work centre offers on each date; a
//! [`Load`] holds the hours already booked per work centre and date. For each
//! requested [`Item`] (a product, a quantity and its routing) [`schedule`]
//! walks the routing stages in order and lets each stage consume the free
//! hours of its work centre day by day, starting no earlier than the day the
//! previous stage of the same product ends and no earlier than the requested
//! start. Items are scheduled one after the other and book into the same
//! `Load`, so a later item (or a later order) only gets what is left;
//! [`book`] is the same step for a single stage, for re-plans that move
//! part of a routing (a downtime, see [`reschedule`](crate::reschedule)). The
//! database layer fills these structures and stores the result; nothing here
//! touches I/O, which keeps the arithmetic testable.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, Days, NaiveDate};

use crate::{Error, Result};

/// How far ahead a stage may be pushed before we call the plan impossible:
/// beyond this a factory re-plans by hand anyway, and it bounds every loop.
pub const HORIZON_DAYS: u64 = 3 * 366;

/// Hours below this are rounding noise, not capacity.
const EPSILON: f64 = 1e-9;

/// Working time of one work centre.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Calendar {
    /// Hours available per working day, all machines and shifts together.
    pub hours_per_day: f64,
    /// ISO weekdays (1 = Monday .. 7 = Sunday) that are worked; empty means
    /// Monday to Friday.
    pub working_weekdays: Vec<u32>,
    /// Holidays and maintenance days.
    pub closed_dates: BTreeSet<NaiveDate>,
}

impl Calendar {
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        let weekday = date.weekday().number_from_monday();
        let works_that_weekday = if self.working_weekdays.is_empty() {
            weekday <= 5
        } else {
            self.working_weekdays.contains(&weekday)
        };
        works_that_weekday && !self.closed_dates.contains(&date)
    }

    /// Why this calendar can never supply an hour, if it cannot.
    pub fn capacity_problem(&self) -> Option<&'static str> {
        if !self.hours_per_day.is_finite() || self.hours_per_day <= EPSILON {
            return Some("0 hours per day");
        }
        let any_weekday = self.working_weekdays.is_empty()
            || self
                .working_weekdays
                .iter()
                .any(|day| (1..=7).contains(day));
        if !any_weekday {
            return Some("no working weekdays");
        }
        None
    }

    /// The day `hours` of work started on `from` would end if it had the whole
    /// daily capacity to itself; `None` if that is beyond the horizon or the
    /// calendar has no capacity. Used for rough projections, not for booking.
    pub fn finish_date(&self, from: NaiveDate, hours: f64) -> Option<NaiveDate> {
        if hours <= EPSILON {
            return Some(from);
        }
        if self.capacity_problem().is_some() {
            return None;
        }
        let mut remaining = hours;
        let mut day = from;
        for _ in 0..HORIZON_DAYS {
            if self.is_working_day(day) {
                remaining -= self.hours_per_day;
                if remaining <= EPSILON {
                    return Some(day);
                }
            }
            day = day.checked_add_days(Days::new(1))?;
        }
        None
    }
}

/// One stage of a routing.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpec {
    pub stage: String,
    pub work_centre: String,
    pub hours_per_unit: f64,
    pub setup_hours: f64,
}

impl StageSpec {
    /// Hours the stage needs for `quantity` units: run time plus one set-up.
    pub fn hours_for(&self, quantity: u32) -> f64 {
        f64::from(quantity) * self.hours_per_unit + self.setup_hours
    }
}

/// A product to make: quantity and its routing, stages in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub product: String,
    pub quantity: u32,
    pub stages: Vec<StageSpec>,
}

/// Hours already booked, per work centre and date.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Load {
    booked: HashMap<String, BTreeMap<NaiveDate, f64>>,
}

impl Load {
    pub fn book(&mut self, work_centre: &str, date: NaiveDate, hours: f64) {
        *self
            .booked
            .entry(work_centre.to_owned())
            .or_default()
            .entry(date)
            .or_default() += hours;
    }

    /// Gives back hours booked earlier (a re-plan moving a stage).
    pub fn release(&mut self, work_centre: &str, date: NaiveDate, hours: f64) {
        if let Some(booked) = self
            .booked
            .get_mut(work_centre)
            .and_then(|days| days.get_mut(&date))
        {
            *booked = (*booked - hours).max(0.0);
        }
    }

    pub fn booked(&self, work_centre: &str, date: NaiveDate) -> f64 {
        self.booked
            .get(work_centre)
            .and_then(|days| days.get(&date))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Where one stage of one product landed.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledStage {
    pub product: String,
    pub stage: String,
    pub work_centre: String,
    pub quantity: u32,
    pub hours_per_unit: f64,
    pub setup_hours: f64,
    /// Total hours needed.
    pub hours: f64,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Hours taken from the work centre, per date, in date order.
    pub bookings: Vec<(NaiveDate, f64)>,
}

/// The result of scheduling one order.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Stages by product (request order), then routing order.
    pub stages: Vec<ScheduledStage>,
    /// First day any work is planned (the requested start when nothing is).
    pub start: NaiveDate,
    /// Last planned end: the earliest the whole order can be complete.
    pub earliest_completion: NaiveDate,
}

/// Schedules `items` forward from `earliest_start`, booking into `load`.
///
/// On error `load` may hold part of the bookings; callers that keep using it
/// should clone it first (the database callers never persist a failed plan).
pub fn schedule(
    items: &[Item],
    calendars: &HashMap<String, Calendar>,
    load: &mut Load,
    earliest_start: NaiveDate,
) -> Result<Schedule> {
    let horizon_end = earliest_start
        .checked_add_days(Days::new(HORIZON_DAYS))
        .unwrap_or(NaiveDate::MAX);
    let mut stages = Vec::new();
    for item in items {
        // The first stage may start on the requested day; each later one on
        // the day its predecessor ends (hand-over within a day is normal).
        let mut ready = earliest_start;
        for spec in &item.stages {
            let hours = spec.hours_for(item.quantity);
            let (start, end, bookings) =
                book_within(spec, hours, calendars, load, ready, horizon_end)?;
            stages.push(ScheduledStage {
                product: item.product.clone(),
                stage: spec.stage.clone(),
                work_centre: spec.work_centre.clone(),
                quantity: item.quantity,
                hours_per_unit: spec.hours_per_unit,
                setup_hours: spec.setup_hours,
                hours,
                start,
                end,
                bookings,
            });
            ready = end;
        }
    }
    let start = stages
        .iter()
        .filter(|stage| !stage.bookings.is_empty())
        .map(|stage| stage.start)
        .min()
        .unwrap_or(earliest_start);
    let earliest_completion = stages
        .iter()
        .map(|stage| stage.end)
        .max()
        .unwrap_or(earliest_start);
    Ok(Schedule {
        stages,
        start,
        earliest_completion,
    })
}

/// First day, last day and hours per day of a booked stage.
pub type Booked = (NaiveDate, NaiveDate, Vec<(NaiveDate, f64)>);

/// Books `hours` of one stage from `ready` on: the scheduler's step for a
/// single stage, for callers that re-plan part of a routing (stages moved
/// by a downtime) instead of whole items.
pub fn book(
    spec: &StageSpec,
    hours: f64,
    calendars: &HashMap<String, Calendar>,
    load: &mut Load,
    ready: NaiveDate,
) -> Result<Booked> {
    let horizon_end = ready
        .checked_add_days(Days::new(HORIZON_DAYS))
        .unwrap_or(NaiveDate::MAX);
    book_within(spec, hours, calendars, load, ready, horizon_end)
}

/// [`book`] ending no later than `horizon_end`. Nothing to book starts and
/// ends on `ready`, even on a centre without capacity.
fn book_within(
    spec: &StageSpec,
    hours: f64,
    calendars: &HashMap<String, Calendar>,
    load: &mut Load,
    ready: NaiveDate,
    horizon_end: NaiveDate,
) -> Result<Booked> {
    let calendar = calendars
        .get(&spec.work_centre)
        .ok_or_else(|| Error::UnknownWorkCentre(spec.work_centre.clone()))?;
    if hours <= EPSILON {
        return Ok((ready, ready, Vec::new()));
    }
    if let Some(reason) = calendar.capacity_problem() {
        return Err(Error::NoCapacity {
            work_centre: spec.work_centre.clone(),
            reason: reason.to_owned(),
        });
    }
    book_stage(spec, hours, calendar, load, ready, horizon_end)
}

/// Consumes free hours of the stage's work centre from `ready` on.
fn book_stage(
    spec: &StageSpec,
    hours: f64,
    calendar: &Calendar,
    load: &mut Load,
    ready: NaiveDate,
    horizon_end: NaiveDate,
) -> Result<Booked> {
    let mut remaining = hours;
    let mut bookings = Vec::new();
    let mut day = ready;
    while day <= horizon_end {
        if calendar.is_working_day(day) {
            let free = calendar.hours_per_day - load.booked(&spec.work_centre, day);
            if free > EPSILON {
                let taken = free.min(remaining);
                load.book(&spec.work_centre, day, taken);
                bookings.push((day, taken));
                remaining -= taken;
                if remaining <= EPSILON {
                    let start = bookings.first().map_or(day, |(first, _)| *first);
                    return Ok((start, day, bookings));
                }
            }
        }
        let Some(next) = day.checked_add_days(Days::new(1)) else {
            break;
        };
        day = next;
    }
    Err(Error::BeyondHorizon {
        work_centre: spec.work_centre.clone(),
        stage: spec.stage.clone(),
        days: HORIZON_DAYS,
    })
}

#[cfg(test)]
mod tests {
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
        assert!(
            matches!(err, Error::BeyondHorizon { ref work_centre, .. } if work_centre == "CUT")
        );
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
}
