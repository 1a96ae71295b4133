//! What a deployment sets about its calendars: the week the order's own
//! milestones are worked in, its holidays, and how long inspection,
//! packing, documents and the customer's acceptance take. Read once at
//! start; each order's calendar keeps the durations it was planned with.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::NaiveDate;

use super::{Durations, WorkWeek};

/// The calendar settings of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CalendarSettings {
    pub week: WorkWeek,
    pub durations: Durations,
}

impl CalendarSettings {
    /// The defaults (Monday to Friday, no holidays; inspection 1, packing 1
    /// and documents 2 working days; acceptance 7 days), with
    /// `GENDAN_SAGA__CALENDAR__WORKING_WEEKDAYS` (ISO weekdays, 1 = Monday,
    /// separated by commas: `1,2,3,4,5,6`),
    /// `GENDAN_SAGA__CALENDAR__HOLIDAYS` (dates, `2026-10-01,2026-10-02`;
    /// at most 400), `GENDAN_SAGA__CALENDAR__INSPECTION_DAYS`,
    /// `…__PACKING_DAYS`, `…__DOCUMENTS_DAYS` (0..=30 working days) and
    /// `…__ACCEPTANCE_DAYS` (0..=90 days) when set.
    pub fn from_env() -> Result<Self, gendan_settings::Error> {
        let defaults = Durations::default();
        let days = |name: &str, default: u32, max: u32| {
            gendan_settings::bounded::<u32>(name, default, 0, max)
        };
        let weekdays: Weekdays = gendan_settings::parsed(
            "GENDAN_SAGA__CALENDAR__WORKING_WEEKDAYS",
            Weekdays(vec![1, 2, 3, 4, 5]),
        )?;
        let holidays: Holidays =
            gendan_settings::parsed("GENDAN_SAGA__CALENDAR__HOLIDAYS", Holidays::default())?;
        Ok(CalendarSettings {
            week: WorkWeek {
                weekdays: weekdays.0,
                closed: holidays.0,
            },
            durations: Durations {
                inspection: days(
                    "GENDAN_SAGA__CALENDAR__INSPECTION_DAYS",
                    defaults.inspection,
                    30,
                )?,
                packing: days("GENDAN_SAGA__CALENDAR__PACKING_DAYS", defaults.packing, 30)?,
                documents: days(
                    "GENDAN_SAGA__CALENDAR__DOCUMENTS_DAYS",
                    defaults.documents,
                    30,
                )?,
                acceptance_days: days(
                    "GENDAN_SAGA__CALENDAR__ACCEPTANCE_DAYS",
                    defaults.acceptance_days,
                    90,
                )?,
            },
        })
    }
}

/// ISO weekdays worked, as a setting gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Weekdays(Vec<u32>);

impl FromStr for Weekdays {
    type Err = String;

    fn from_str(text: &str) -> Result<Weekdays, String> {
        let mut days: Vec<u32> = Vec::new();
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            match part.parse::<u32>() {
                Ok(day @ 1..=7) if !days.contains(&day) => days.push(day),
                Ok(1..=7) => return Err(format!("weekday {part} is listed twice")),
                _ => {
                    return Err(format!(
                        "{part:?} is not an ISO weekday (1 = Monday .. 7 = Sunday)"
                    ));
                }
            }
        }
        if days.is_empty() {
            return Err("at least one working weekday is needed".to_owned());
        }
        days.sort_unstable();
        Ok(Weekdays(days))
    }
}

/// Holidays, as a setting gives them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Holidays(BTreeSet<NaiveDate>);

/// More holidays than a year has days is a mistake, not a calendar.
const MAX_HOLIDAYS: usize = 400;

impl FromStr for Holidays {
    type Err = String;

    fn from_str(text: &str) -> Result<Holidays, String> {
        let mut days = BTreeSet::new();
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let day = part
                .parse::<NaiveDate>()
                .map_err(|_| format!("{part:?} is not a YYYY-MM-DD date"))?;
            days.insert(day);
        }
        if days.len() > MAX_HOLIDAYS {
            return Err(format!("at most {MAX_HOLIDAYS} holidays"));
        }
        Ok(Holidays(days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_and_holidays_are_read_or_refused_with_the_reason() {
        assert_eq!("1, 2,3,4,5,6".parse(), Ok(Weekdays(vec![1, 2, 3, 4, 5, 6])));
        assert_eq!("7,1".parse(), Ok(Weekdays(vec![1, 7])));
        assert!("".parse::<Weekdays>().unwrap_err().contains("at least one"));
        assert!("0,1".parse::<Weekdays>().unwrap_err().contains("\"0\""));
        assert!("1,1".parse::<Weekdays>().unwrap_err().contains("twice"));
        let holidays: Holidays = "2026-10-01, 2026-10-02".parse().unwrap();
        assert_eq!(holidays.0.len(), 2);
        assert!(
            "2026-13-01"
                .parse::<Holidays>()
                .unwrap_err()
                .contains("2026-13-01")
        );
        assert_eq!("".parse::<Holidays>(), Ok(Holidays::default()));
    }
}
