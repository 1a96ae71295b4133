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
//! [`schedule_staged`] does the same for a [`StagedItem`], whose stages
//! each have their own quantity (an amended order's run makes at each stage
//! only what it still owes, see [`amendments`](crate::amendments)), and
//! [`book`] is the same step for a single stage, for re-plans that move
//! part of a routing (a downtime, see [`reschedule`](crate::reschedule)). The
//! database layer fills these structures and stores the result; nothing here
//! touches I/O, which keeps the arithmetic testable. [`hours_by_work_centre`]
//! sums the same stage hours per work centre without scheduling them.

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
    /// Nothing to make needs no set-up either.
    pub fn hours_for(&self, quantity: u32) -> f64 {
        if quantity == 0 {
            return 0.0;
        }
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

/// A product to make with a quantity of its own at each routing stage, 0
/// where the stage has nothing to make.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedItem {
    pub product: String,
    /// Its routing stages in order, each with the units it is to make.
    pub stages: Vec<(StageSpec, u32)>,
}

impl From<&Item> for StagedItem {
    /// The item's quantity at every stage of its routing.
    fn from(item: &Item) -> Self {
        StagedItem {
            product: item.product.clone(),
            stages: item
                .stages
                .iter()
                .map(|spec| (spec.clone(), item.quantity))
                .collect(),
        }
    }
}

/// Hours each work centre spends on `items`, set-up included, by the same
/// rule the scheduler books ([`StageSpec::hours_for`]): the routings'
/// labour of an order, for the review's cost estimate.
pub fn hours_by_work_centre(items: &[Item]) -> HashMap<String, f64> {
    let mut hours: HashMap<String, f64> = HashMap::new();
    for item in items {
        for spec in &item.stages {
            *hours.entry(spec.work_centre.clone()).or_default() += spec.hours_for(item.quantity);
        }
    }
    hours
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
    let staged: Vec<StagedItem> = items.iter().map(StagedItem::from).collect();
    schedule_staged(&staged, calendars, load, earliest_start)
}

/// [`schedule`] with a quantity per stage. A stage with nothing to make
/// books nothing and takes no time: it starts and ends on the day the
/// stage before it ends (the requested start for a first stage), and the
/// stage after it may start that day.
pub fn schedule_staged(
    items: &[StagedItem],
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
        for (spec, quantity) in &item.stages {
            let hours = spec.hours_for(*quantity);
            let (start, end, bookings) =
                book_within(spec, hours, calendars, load, ready, horizon_end)?;
            stages.push(ScheduledStage {
                product: item.product.clone(),
                stage: spec.stage.clone(),
                work_centre: spec.work_centre.clone(),
                quantity: *quantity,
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
mod tests;
