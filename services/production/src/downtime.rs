//! Downtime arithmetic, as pure functions: how much of a work centre's
//! capacity a stoppage takes, day by day, and how a customer reads about it.
//!
//! A [`Window`] is one stoppage of one work centre: from the MES's "down"
//! until its "up", or, while the centre is still down, for the hours the MES
//! expected (else the centre's typical repair time, [`repair_hours`]). A
//! calendar says how many hours a centre offers per day but not when in the
//! day, so a window takes each working day's hours in proportion to the part
//! of the day it covers ([`lost_hours`]); days are UTC dates, as wherever
//! the service turns an MES time into a date. [`reserve`] books those hours
//! into a [`Load`] as if they were work, so the scheduler in
//! [`schedule`](crate::schedule) plans around a downtime without knowing
//! about it: capacity checks, new work orders and the re-plan of the work a
//! downtime hits ([`reschedule`](crate::reschedule)) all see the same hours.
//! [`equipment`](crate::equipment) stores the windows and does the I/O.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};

use crate::schedule::{Calendar, HORIZON_DAYS, Load};

/// Repair time assumed for a centre whose typical repair time is not set.
pub const DEFAULT_REPAIR_HOURS: f64 = 24.0;
/// Longest typical repair time a work centre may declare (30 days): beyond
/// that a factory re-plans by hand rather than waiting on an estimate.
pub const MAX_REPAIR_HOURS: f64 = 720.0;
/// Longest stoppage the MES may announce: the scheduler's horizon.
pub const MAX_EXPECTED_HOURS: f64 = (HORIZON_DAYS * 24) as f64;

/// Hours below this are rounding noise, not capacity.
const EPSILON: f64 = 1e-9;

/// One stoppage of one work centre, `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub work_centre: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// From `start` for `hours` (negative counts as none, more than the
    /// scheduling horizon as the horizon).
    pub fn lasting(work_centre: &str, start: DateTime<Utc>, hours: f64) -> Self {
        let hours = if hours.is_finite() {
            hours.clamp(0.0, MAX_EXPECTED_HOURS)
        } else {
            0.0
        };
        let length = TimeDelta::try_milliseconds((hours * 3_600_000.0).round() as i64)
            .unwrap_or(TimeDelta::zero());
        Window {
            work_centre: work_centre.to_owned(),
            start,
            end: start.checked_add_signed(length).unwrap_or(start),
        }
    }

    /// Its length in hours.
    pub fn hours(&self) -> f64 {
        (self.end - self.start).num_milliseconds().max(0) as f64 / 3_600_000.0
    }

    /// The day it starts: work planned from that day on is what it moves.
    pub fn first_day(&self) -> NaiveDate {
        self.start.date_naive()
    }

    /// The last day it covers any part of (an end at midnight does not
    /// reach into the next day).
    pub fn last_day(&self) -> NaiveDate {
        if self.end <= self.start {
            return self.first_day();
        }
        (self.end - TimeDelta::nanoseconds(1)).date_naive()
    }
}

/// The hours to plan a stoppage for: what the MES expects, else the
/// centre's typical repair time, else [`DEFAULT_REPAIR_HOURS`].
pub fn repair_hours(expected_hours: f64, typical_repair_hours: f64) -> f64 {
    if expected_hours > EPSILON {
        expected_hours
    } else if typical_repair_hours > EPSILON {
        typical_repair_hours
    } else {
        DEFAULT_REPAIR_HOURS
    }
}

/// Hours of `calendar`'s capacity `window` takes on each working day it
/// touches, in date order: the day's hours in the proportion of the day's
/// 24 hours the window covers. Days off lose nothing (there was nothing to
/// lose).
pub fn lost_hours(calendar: &Calendar, window: &Window) -> Vec<(NaiveDate, f64)> {
    let mut lost = Vec::new();
    if window.end <= window.start {
        return lost;
    }
    let last = window.last_day();
    let mut day = window.first_day();
    // Bounded twice: by the window's last day and by the horizon.
    for _ in 0..=HORIZON_DAYS {
        if day > last {
            break;
        }
        let Some(next) = day.succ_opt() else {
            break;
        };
        if calendar.is_working_day(day) {
            let day_start = day.and_time(NaiveTime::MIN).and_utc();
            let day_end = next.and_time(NaiveTime::MIN).and_utc();
            let covered = window.end.min(day_end) - window.start.max(day_start);
            let share = covered.num_milliseconds() as f64 / 86_400_000.0;
            let hours = calendar.hours_per_day.max(0.0) * share.clamp(0.0, 1.0);
            if hours > EPSILON {
                lost.push((day, hours));
            }
        }
        day = next;
    }
    lost
}

/// Takes every window's lost hours out of `load`, so whatever is scheduled
/// against it books around the downtimes. Windows of centres without a
/// calendar take nothing (nothing is scheduled there either).
pub fn reserve(load: &mut Load, calendars: &HashMap<String, Calendar>, windows: &[Window]) {
    for window in windows {
        let Some(calendar) = calendars.get(&window.work_centre) else {
            continue;
        };
        for (day, hours) in lost_hours(calendar, window) {
            load.book(&window.work_centre, day, hours);
        }
    }
}

/// Whole calendar days a projected end moved by (never negative: a customer
/// is told about delays, not about gains).
pub fn delay_days(previous_end: NaiveDate, projected_end: NaiveDate) -> i64 {
    (projected_end - previous_end).num_days().max(0)
}

/// "about 2 days' delay", "about 1 day's delay", "less than a day's delay".
pub fn delay_words(days: i64) -> String {
    match days {
        ..=0 => "less than a day's delay".to_owned(),
        1 => "about 1 day's delay".to_owned(),
        days => format!("about {days} days' delay"),
    }
}

fn minute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

fn because(reason: &str) -> String {
    match reason.trim() {
        "" => String::new(),
        reason => format!(" ({reason})"),
    }
}

/// Why a work order moved while the centre is down, for the customer:
/// "line SEW down since 2026-03-04 09:00 (motor failure), about 2 days'
/// delay".
pub fn down_cause(window: &Window, reason: &str, delay_days: i64) -> String {
    format!(
        "line {} down since {}{}, {}",
        window.work_centre,
        minute(window.start),
        because(reason),
        delay_words(delay_days)
    )
}

/// The last word on a stoppage: "line SEW back up at 2026-03-05 11:00 after
/// 26 hours down (motor failure), about 1 day's delay"; the delay is the
/// whole stoppage's.
pub fn up_cause(window: &Window, reason: &str, delay_days: i64) -> String {
    let hours = window.hours();
    let length = if hours < 1.0 {
        "less than an hour".to_owned()
    } else if hours.round() == 1.0 {
        "1 hour".to_owned()
    } else {
        format!("{hours:.0} hours")
    };
    format!(
        "line {} back up at {} after {length} down{}, {}",
        window.work_centre,
        minute(window.end),
        because(reason),
        delay_words(delay_days)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::schedule::{Item, StageSpec, schedule};

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
    }

    fn eight_hours() -> Calendar {
        Calendar {
            hours_per_day: 8.0,
            ..Calendar::default()
        }
    }

    // 2026-03-03 is a Tuesday.
    #[test]
    fn a_window_takes_each_day_in_proportion_to_the_part_it_covers() {
        let window = Window::lasting("SEW", at("2026-03-03 09:00"), 48.0);
        assert_eq!(window.end, at("2026-03-05 09:00"));
        assert_eq!(window.hours(), 48.0);
        assert_eq!(
            (window.first_day(), window.last_day()),
            (date("2026-03-03"), date("2026-03-05"))
        );
        // 15 of Tuesday's 24 hours, all of Wednesday, 9 of Thursday's.
        assert_eq!(
            lost_hours(&eight_hours(), &window),
            vec![
                (date("2026-03-03"), 5.0),
                (date("2026-03-04"), 8.0),
                (date("2026-03-05"), 3.0)
            ]
        );
    }

    #[test]
    fn days_off_lose_nothing_and_a_midnight_end_stays_in_its_day() {
        let mut calendar = eight_hours();
        calendar.closed_dates = BTreeSet::from([date("2026-03-09")]);
        // Friday noon to Tuesday midnight: Friday half, the weekend and the
        // closed Monday nothing.
        let window = Window::lasting("SEW", at("2026-03-06 12:00"), 84.0);
        assert_eq!(window.end, at("2026-03-10 00:00"));
        assert_eq!(window.last_day(), date("2026-03-09"));
        assert_eq!(
            lost_hours(&calendar, &window),
            vec![(date("2026-03-06"), 4.0)]
        );
        assert!(
            lost_hours(
                &calendar,
                &Window::lasting("SEW", at("2026-03-06 12:00"), 0.0)
            )
            .is_empty()
        );
    }

    #[test]
    fn windows_are_bounded_by_the_horizon() {
        let window = Window::lasting("SEW", at("2026-03-03 00:00"), f64::MAX);
        assert_eq!(window.hours(), MAX_EXPECTED_HOURS);
        assert_eq!(
            Window::lasting("SEW", at("2026-03-03 00:00"), -5.0).hours(),
            0.0
        );
        assert_eq!(
            Window::lasting("SEW", at("2026-03-03 00:00"), f64::NAN).hours(),
            0.0
        );
    }

    #[test]
    fn repair_time_falls_back_to_the_centre_then_a_day() {
        assert_eq!(repair_hours(48.0, 8.0), 48.0);
        assert_eq!(repair_hours(0.0, 8.0), 8.0);
        assert_eq!(repair_hours(0.0, 0.0), DEFAULT_REPAIR_HOURS);
    }

    #[test]
    fn reserved_downtime_leaves_the_rest_of_the_day_to_the_scheduler() {
        let calendars = HashMap::from([("SEW".to_owned(), eight_hours())]);
        let mut load = Load::default();
        load.book("SEW", date("2026-03-05"), 1.0);
        let window = Window::lasting("SEW", at("2026-03-03 09:00"), 48.0);
        let elsewhere = Window::lasting("WELD", at("2026-03-03 09:00"), 48.0);
        reserve(&mut load, &calendars, &[window, elsewhere]);
        // Hours available per day: capacity less bookings less downtime.
        let available = |day: &str| 8.0 - load.booked("SEW", date(day));
        assert_eq!(available("2026-03-03"), 3.0);
        assert_eq!(available("2026-03-04"), 0.0);
        assert_eq!(available("2026-03-05"), 4.0);
        assert_eq!(available("2026-03-06"), 8.0);

        let sewing = Item {
            product: "tote".to_owned(),
            quantity: 4,
            stages: vec![StageSpec {
                stage: "sewing".to_owned(),
                work_centre: "SEW".to_owned(),
                hours_per_unit: 1.0,
                setup_hours: 0.0,
            }],
        };
        let plan = schedule(&[sewing], &calendars, &mut load, date("2026-03-04")).unwrap();
        assert_eq!(plan.stages[0].bookings, vec![(date("2026-03-05"), 4.0)]);
    }

    #[test]
    fn causes_name_the_line_the_time_the_reason_and_the_delay() {
        let window = Window::lasting("SEW", at("2026-03-04 09:00"), 48.0);
        assert_eq!(
            down_cause(&window, "motor failure", 2),
            "line SEW down since 2026-03-04 09:00 (motor failure), about 2 days' delay"
        );
        assert_eq!(
            down_cause(&window, " ", 0),
            "line SEW down since 2026-03-04 09:00, less than a day's delay"
        );
        let repaired = Window {
            end: at("2026-03-05 11:00"),
            ..window
        };
        assert_eq!(
            up_cause(&repaired, "motor failure", 1),
            "line SEW back up at 2026-03-05 11:00 after 26 hours down (motor failure), about 1 day's delay"
        );
        assert_eq!(delay_days(date("2026-03-05"), date("2026-03-03")), 0);
        assert_eq!(delay_days(date("2026-03-03"), date("2026-03-09")), 6);
    }
}
