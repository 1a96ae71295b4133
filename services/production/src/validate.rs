//! Request checks that need no database: each function turns a wire message
//! into the domain value the rest of the service trusts, or a
//! [`FieldError`] naming the offending field (`stages[1].hours_per_unit`).
//!
//! Checks that need stored data (does this work centre exist?) are done by
//! the callers, with the same field paths.

use std::collections::{BTreeSet, HashSet};

use chrono::NaiveDate;
use gendan_grpc::FieldError;
pub use gendan_grpc::validate::{MAX_TEXT, product_quantities as items, required_text};
use gendan_proto::date_from_str;
use gendan_proto::v1::{Routing, WorkCentre};

use crate::catalog::WorkCentreDef;
use crate::downtime::{DEFAULT_REPAIR_HOURS, MAX_REPAIR_HOURS};
use crate::schedule::{Calendar, StageSpec};

/// Most hours a figure may state: a work centre of a thousand machines on
/// round-the-clock shifts has 24 000 hours a day; more is a typing error
/// (or units in minutes) that would make every date look free.
const MAX_HOURS: f64 = 100_000.0;

fn hours(value: f64, field: &str) -> Result<f64, FieldError> {
    if !value.is_finite() || !(0.0..=MAX_HOURS).contains(&value) {
        return Err(FieldError::new(
            field,
            format!("must be a number from 0 to {MAX_HOURS}, got {value}"),
        ));
    }
    Ok(value)
}

/// A `YYYY-MM-DD` date, or `default` when empty.
pub fn date_or(text: &str, field: &str, default: NaiveDate) -> Result<NaiveDate, FieldError> {
    if text.trim().is_empty() {
        return Ok(default);
    }
    date_from_str(text.trim())
        .ok_or_else(|| FieldError::new(field, format!("{text:?} is not a YYYY-MM-DD date")))
}

/// A work order revision: 0 (the field left out) is the first, 1. Stored
/// as a Postgres INTEGER, so it must fit one.
pub fn revision(value: u32, field: &str) -> Result<i32, FieldError> {
    i32::try_from(value.max(1))
        .map_err(|_| FieldError::new(field, format!("{value} is not a revision number")))
}

/// A capacity check's revision: 0 (left out) checks without reserving
/// (`None`); 1, 2, ... reserve. Stored as a Postgres INTEGER.
pub fn check_revision(value: u32, field: &str) -> Result<Option<i32>, FieldError> {
    (value != 0).then(|| revision(value, field)).transpose()
}

/// The longest reason a command may give for undoing something.
pub const MAX_REASON: usize = 1000;

/// A reason, trimmed; may be empty, at most [`MAX_REASON`] characters.
pub fn reason<'a>(value: &'a str, field: &str) -> Result<&'a str, FieldError> {
    let value = value.trim();
    if value.chars().count() > MAX_REASON {
        return Err(FieldError::new(
            field,
            format!("longer than {MAX_REASON} characters"),
        ));
    }
    Ok(value)
}

/// The amendment a production run is planned for: 0 (left out) for none
/// (the first run or a remake after scrap). Stored as a Postgres INTEGER,
/// so it must fit one.
pub fn amendment(value: u32, field: &str) -> Result<i32, FieldError> {
    i32::try_from(value)
        .map_err(|_| FieldError::new(field, format!("{value} is not an amendment number")))
}

/// A typical repair time: 0 (left out) is [`DEFAULT_REPAIR_HOURS`].
fn repair_hours(value: f64, field: &str) -> Result<f64, FieldError> {
    if !value.is_finite() || !(0.0..=MAX_REPAIR_HOURS).contains(&value) {
        return Err(FieldError::new(
            field,
            format!(
                "must be between 0 and {MAX_REPAIR_HOURS} hours (0 = {DEFAULT_REPAIR_HOURS}), got {value}"
            ),
        ));
    }
    Ok(if value == 0.0 {
        DEFAULT_REPAIR_HOURS
    } else {
        value
    })
}

/// A work centre to store; its `down` state is the MES's to report, so it
/// is ignored here.
pub fn work_centre(request: &WorkCentre) -> Result<WorkCentreDef, FieldError> {
    let code = required_text(&request.code, "code")?;
    let name = if request.name.trim().is_empty() {
        code.clone()
    } else {
        required_text(&request.name, "name")?
    };
    let hours_per_day = hours(request.hours_per_day, "hours_per_day")?;
    let mut weekdays = BTreeSet::new();
    for (i, day) in request.working_weekdays.iter().enumerate() {
        if !(1..=7).contains(day) {
            return Err(FieldError::new(
                format!("working_weekdays[{i}]"),
                format!("{day} is not an ISO weekday (1 = Monday .. 7 = Sunday)"),
            ));
        }
        weekdays.insert(*day);
    }
    let mut closed_dates = BTreeSet::new();
    for (i, text) in request.closed_dates.iter().enumerate() {
        let date = date_from_str(text.trim()).ok_or_else(|| {
            FieldError::new(
                format!("closed_dates[{i}]"),
                format!("{text:?} is not a YYYY-MM-DD date"),
            )
        })?;
        closed_dates.insert(date);
    }
    let typical_repair_hours = repair_hours(request.typical_repair_hours, "typical_repair_hours")?;
    Ok(WorkCentreDef {
        code,
        name,
        calendar: Calendar {
            hours_per_day,
            working_weekdays: weekdays.into_iter().collect(),
            closed_dates,
        },
        typical_repair_hours,
        down: false,
    })
}

/// A routing: the product and its stages in order.
pub fn routing(request: &Routing) -> Result<(String, Vec<StageSpec>), FieldError> {
    let product = required_text(&request.product, "product")?;
    if request.stages.is_empty() {
        return Err(FieldError::new(
            "stages",
            "a routing needs at least one stage",
        ));
    }
    let mut seen = HashSet::new();
    let mut stages = Vec::with_capacity(request.stages.len());
    for (i, stage) in request.stages.iter().enumerate() {
        let name = required_text(&stage.stage, &format!("stages[{i}].stage"))?;
        if !seen.insert(name.clone()) {
            return Err(FieldError::new(
                format!("stages[{i}].stage"),
                format!("stage {name:?} appears twice in the routing"),
            ));
        }
        stages.push(StageSpec {
            stage: name,
            work_centre: required_text(&stage.work_centre, &format!("stages[{i}].work_centre"))?,
            hours_per_unit: hours(stage.hours_per_unit, &format!("stages[{i}].hours_per_unit"))?,
            setup_hours: hours(stage.setup_hours, &format!("stages[{i}].setup_hours"))?,
        });
    }
    Ok((product, stages))
}

#[cfg(test)]
mod tests {
    use gendan_proto::v1::RoutingStage;

    use super::*;

    fn stage(name: &str, work_centre: &str, hours_per_unit: f64) -> RoutingStage {
        RoutingStage {
            stage: name.to_owned(),
            work_centre: work_centre.to_owned(),
            hours_per_unit,
            setup_hours: 0.0,
        }
    }

    #[test]
    fn routing_errors_name_the_field() {
        let routing = Routing {
            product: "shirt".into(),
            stages: vec![stage("cut", "CUT", 1.0), stage("sew", "", 1.0)],
        };
        assert_eq!(
            super::routing(&routing).unwrap_err().field,
            "stages[1].work_centre"
        );

        let routing = Routing {
            product: "shirt".into(),
            stages: vec![stage("cut", "CUT", 1.0), stage("cut", "SEW", 1.0)],
        };
        assert_eq!(
            super::routing(&routing).unwrap_err().field,
            "stages[1].stage"
        );

        let routing = Routing {
            product: "shirt".into(),
            stages: vec![stage("cut", "CUT", -1.0)],
        };
        assert_eq!(
            super::routing(&routing).unwrap_err().field,
            "stages[0].hours_per_unit"
        );

        let routing = Routing {
            product: " ".into(),
            stages: vec![],
        };
        assert_eq!(super::routing(&routing).unwrap_err().field, "product");
    }

    #[test]
    fn work_centre_calendar_is_checked() {
        let mut centre = WorkCentre {
            code: "SEW".into(),
            hours_per_day: 16.0,
            working_weekdays: vec![6, 1, 1],
            closed_dates: vec!["2026-05-01".into()],
            ..WorkCentre::default()
        };
        let def = work_centre(&centre).unwrap();
        assert_eq!(def.name, "SEW");
        assert_eq!(def.calendar.working_weekdays, vec![1, 6]);

        centre.working_weekdays = vec![0];
        assert_eq!(
            work_centre(&centre).unwrap_err().field,
            "working_weekdays[0]"
        );
        centre.working_weekdays = vec![];
        centre.closed_dates = vec!["May 1".into()];
        assert_eq!(work_centre(&centre).unwrap_err().field, "closed_dates[0]");
        centre.closed_dates = vec![];
        centre.hours_per_day = f64::NAN;
        assert_eq!(work_centre(&centre).unwrap_err().field, "hours_per_day");
        centre.hours_per_day = 1e9;
        assert_eq!(work_centre(&centre).unwrap_err().field, "hours_per_day");
    }

    #[test]
    fn typical_repair_time_is_bounded_and_defaults_to_a_day() {
        let mut centre = WorkCentre {
            code: "SEW".into(),
            hours_per_day: 8.0,
            down: true,
            ..WorkCentre::default()
        };
        let def = work_centre(&centre).unwrap();
        assert_eq!(def.typical_repair_hours, DEFAULT_REPAIR_HOURS);
        assert!(!def.down, "the down state is not the client's to set");
        centre.typical_repair_hours = 720.0;
        assert_eq!(work_centre(&centre).unwrap().typical_repair_hours, 720.0);
        for bad in [1000.0, -1.0, f64::INFINITY] {
            centre.typical_repair_hours = bad;
            assert_eq!(
                work_centre(&centre).unwrap_err().field,
                "typical_repair_hours"
            );
        }
    }

    #[test]
    fn items_are_checked_and_merged() {
        let item = |product: &str, quantity| gendan_proto::v1::ProductQuantity {
            product: product.to_owned(),
            quantity,
        };
        assert_eq!(
            items(&[item("a", 2), item("b", 1), item("a", 3)], "items").unwrap(),
            vec![("a".to_owned(), 5), ("b".to_owned(), 1)]
        );
        assert_eq!(items(&[], "items").unwrap_err().field, "items");
        assert_eq!(
            items(&[item("a", 0)], "items").unwrap_err().field,
            "items[0].quantity"
        );
        assert_eq!(
            items(&[item("", 1)], "items").unwrap_err().field,
            "items[0].product"
        );
    }

    #[test]
    fn revision_zero_is_the_first() {
        assert_eq!(revision(0, "revision").unwrap(), 1);
        assert_eq!(revision(1, "revision").unwrap(), 1);
        assert_eq!(revision(3, "revision").unwrap(), 3);
        assert_eq!(
            revision(u32::MAX, "revision").unwrap_err().field,
            "revision"
        );
    }

    #[test]
    fn a_check_revision_of_zero_reserves_nothing() {
        assert_eq!(check_revision(0, "revision").unwrap(), None);
        assert_eq!(check_revision(2, "revision").unwrap(), Some(2));
        assert_eq!(
            check_revision(u32::MAX, "revision").unwrap_err().field,
            "revision"
        );
    }

    #[test]
    fn a_reason_is_trimmed_and_bounded() {
        assert_eq!(reason("  late  ", "reason").unwrap(), "late");
        assert_eq!(reason("", "reason").unwrap(), "");
        let long = "x".repeat(MAX_REASON + 1);
        assert_eq!(reason(&long, "reason").unwrap_err().field, "reason");
    }

    #[test]
    fn amendment_zero_is_none_and_must_fit_the_column() {
        assert_eq!(amendment(0, "amendment").unwrap(), 0);
        assert_eq!(amendment(2, "amendment").unwrap(), 2);
        assert_eq!(
            amendment(u32::MAX, "amendment").unwrap_err().field,
            "amendment"
        );
    }

    #[test]
    fn dates_default_when_empty() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        assert_eq!(date_or("", "earliest_start", today).unwrap(), today);
        assert_eq!(
            date_or("2026-04-01", "earliest_start", today).unwrap(),
            NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()
        );
        assert_eq!(
            date_or("tomorrow", "earliest_start", today)
                .unwrap_err()
                .field,
            "earliest_start"
        );
    }
}
