//! The time a service runs on. Deadlines, due dates and "late" are computed
//! from a [`Clock`]: production runs on [`SystemClock`], tests move a
//! [`ManualClock`] instead of sleeping or waiting days, and `gendan demo`
//! moves a [`ShiftedClock`] forward to show what happens days later (ADR
//! 0009).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};

pub trait Clock: std::fmt::Debug + Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// The calendar day (UTC) due dates are compared with: one zone for
    /// every replica keeps "late" the same answer everywhere.
    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The system clock plus an offset that only grows: a calendar that can be
/// moved forward (never back, so no deadline is met twice), shared by its
/// clones. `gendan demo` runs its services on one to show a dunning
/// reminder without waiting for the due date (ADR 0009).
#[derive(Debug, Clone, Default)]
pub struct ShiftedClock(Arc<Mutex<Duration>>);

impl ShiftedClock {
    pub fn new() -> Self {
        ShiftedClock::default()
    }

    /// How far ahead of the system clock this calendar runs.
    pub fn offset(&self) -> Duration {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves the calendar forward to the start of `day` (UTC); a day that
    /// has already begun changes nothing. Returns the days moved.
    pub fn advance_to(&self, day: NaiveDate) -> i64 {
        let mut offset = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Utc::now() + *offset;
        let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
        if start <= now {
            return 0;
        }
        let moved = (day - now.date_naive()).num_days();
        *offset += start - now;
        moved
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_follow() {
        let start = DateTime::parse_from_rfc3339("2026-03-02T23:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = ManualClock::new(start);
        let shared = clock.clone();
        assert_eq!(shared.today(), NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
        clock.advance(Duration::hours(1));
        assert_eq!(shared.today(), NaiveDate::from_ymd_opt(2026, 3, 3).unwrap());
    }

    #[test]
    fn a_shifted_clock_only_moves_forward_and_its_clones_follow() {
        let clock = ShiftedClock::new();
        let shared = clock.clone();
        let today = Utc::now().date_naive();
        assert_eq!(clock.advance_to(today), 0);
        assert_eq!(clock.offset(), Duration::zero());

        let later = today + Duration::days(30);
        let moved = clock.advance_to(later);
        assert!((29..=30).contains(&moved), "moved {moved} days");
        assert_eq!(shared.today(), later);
        // An earlier day, or the day it is already, leaves it where it is.
        let offset = shared.offset();
        assert_eq!(shared.advance_to(today), 0);
        assert_eq!(clock.advance_to(later), 0);
        assert_eq!(clock.offset(), offset);
    }
}
