//! Day arithmetic of the calendar: the working week the merchandiser plans
//! in, and how far each kind of dependency ([`Lag`]) puts a milestone after
//! the one it follows. Working days have the meaning of production's work
//! centre calendars (ISO weekdays, closed dates); a departure follows the
//! same rule as logistics' booking (the lane's weekday, on or after the
//! cut-off).

use std::collections::BTreeSet;

use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// Days are counted at most this far: a closed-date list that closes every
/// day of a year is a configuration error, not a reason to loop forever.
const MAX_DAYS_SEARCHED: u64 = 3 * 366;

/// The days the order's own milestones (inspection, packing, documents) are
/// worked on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkWeek {
    /// ISO weekdays (1 = Monday .. 7 = Sunday) that are worked; empty means
    /// Monday to Friday.
    pub weekdays: Vec<u32>,
    /// Holidays.
    pub closed: BTreeSet<NaiveDate>,
}

impl WorkWeek {
    pub fn is_working(&self, date: NaiveDate) -> bool {
        let weekday = date.weekday().number_from_monday();
        let works_that_weekday = if self.weekdays.iter().any(|day| (1..=7).contains(day)) {
            self.weekdays.contains(&weekday)
        } else {
            weekday <= 5
        };
        works_that_weekday && !self.closed.contains(&date)
    }

    /// The `n`th working day after `date`; `date` itself when `n` is 0. A
    /// week that works no day at all counts calendar days instead, so a
    /// broken setting shifts dates rather than stopping the calendar.
    pub fn add_working(&self, date: NaiveDate, n: u32) -> NaiveDate {
        let mut day = date;
        let mut left = n;
        let mut searched = 0;
        while left > 0 {
            day = next_day(day);
            searched += 1;
            if searched > MAX_DAYS_SEARCHED * u64::from(n.max(1)) {
                return add_calendar(date, n);
            }
            if self.is_working(day) {
                left -= 1;
            }
        }
        day
    }

    /// Working days after `from` up to and including `to`: the `n` with
    /// `add_working(from, n) == to` when `to` is a working day; 0 when `to`
    /// is not after `from`.
    pub fn working_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut count = 0;
        let mut day = from;
        while day < to {
            day = next_day(day);
            if self.is_working(day) {
                count += 1;
            }
        }
        count
    }
}

/// How far a milestone comes after one it depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lag {
    /// Working days of the [`WorkWeek`].
    Working(u32),
    /// Calendar days (transit, acceptance, payment terms).
    Calendar(u32),
    /// The lane's next departure on or after `cutoff_days` calendar days.
    Departure { weekday: u32, cutoff_days: u32 },
}

impl Lag {
    /// The earliest date a milestone with this lag after `date` can have.
    pub fn after(&self, date: NaiveDate, week: &WorkWeek) -> NaiveDate {
        match *self {
            Lag::Working(days) => week.add_working(date, days),
            Lag::Calendar(days) => add_calendar(date, days),
            Lag::Departure {
                weekday,
                cutoff_days,
            } => departure(date, cutoff_days, weekday),
        }
    }
}

/// The first departure on the lane's ISO `weekday` at least `cutoff_days`
/// after the goods are `ready` (logistics books by the same rule). A
/// weekday outside 1..=7 departs as soon as the cut-off allows.
pub fn departure(ready: NaiveDate, cutoff_days: u32, weekday: u32) -> NaiveDate {
    let earliest = add_calendar(ready, cutoff_days);
    if !(1..=7).contains(&weekday) {
        return earliest;
    }
    let earliest_weekday = earliest.weekday().number_from_monday();
    let wait = (weekday + 7 - earliest_weekday) % 7;
    add_calendar(earliest, wait)
}

pub(crate) fn add_calendar(date: NaiveDate, days: u32) -> NaiveDate {
    date.checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(NaiveDate::MAX)
}

fn next_day(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(NaiveDate::MAX)
}
