//! The service's notion of "today": a [`Clock`] (the system's, or a
//! [`ManualClock`] a test moves) and the [`Calendar`] built on it, which
//! every handler and the chase worker read dates from, so a test can make a
//! purchase order late without waiting days.
//!
//! The clock is the shared one of `gendan_runtime`.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::netting;

/// Days a supplier has to confirm a purchase order, unless configured.
pub const DEFAULT_CONFIRM_WITHIN_DAYS: u32 = 2;

pub use gendan_runtime::clock::{Clock, ManualClock, SystemClock};

/// Today and the dates derived from it.
#[derive(Clone)]
pub struct Calendar {
    clock: Arc<dyn Clock>,
    confirm_within_days: u32,
}

impl Calendar {
    pub fn new(clock: Arc<dyn Clock>, confirm_within_days: u32) -> Self {
        Calendar {
            clock,
            confirm_within_days,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Today in UTC: purchase order dates are calendar days, and one zone
    /// for every replica keeps "late" the same answer everywhere.
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    /// The date a purchase order placed on `placed` must be confirmed by.
    pub fn confirm_by(&self, placed: NaiveDate) -> NaiveDate {
        netting::after_days(placed, self.confirm_within_days)
    }
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar::new(Arc::new(SystemClock), DEFAULT_CONFIRM_WITHIN_DAYS)
    }
}

impl fmt::Debug for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar")
            .field("now", &self.now())
            .field("confirm_within_days", &self.confirm_within_days)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_manual_clock_moves_the_calendar() {
        let start = DateTime::parse_from_rfc3339("2026-03-02T23:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = ManualClock::new(start);
        let calendar = Calendar::new(Arc::new(clock.clone()), 2);
        let monday = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        assert_eq!(calendar.today(), monday);
        assert_eq!(
            calendar.confirm_by(monday),
            NaiveDate::from_ymd_opt(2026, 3, 4).unwrap()
        );
        clock.advance(Duration::hours(1));
        assert_eq!(
            calendar.today(),
            NaiveDate::from_ymd_opt(2026, 3, 3).unwrap()
        );
    }
}
