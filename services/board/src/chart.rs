//! The time-and-action calendar as a chart: pure geometry from an order's
//! milestones and today's date, which the order page draws as inline SVG.
//!
//! The horizontal axis runs from a day before the earliest date (planned,
//! projected, actual or today) to a day after the latest one; positions
//! are percentages of the width. Each milestone gets a row with its
//! planned bar, its projected bar (both from the latest date of the
//! milestones it waits for, so a bar shows how long the step takes), a
//! marker on its actual date, and whether it slipped (happened or is
//! projected after its plan) or is overdue (open, its planned day passed).
//! A calendar without any date has no axis and no today line.

use std::collections::HashMap;

use chrono::NaiveDate;
use gendan_proto::v1;

/// Narrowest bar or marker drawn, in percent of the width, so a
/// milestone of a single day stays visible.
pub const MIN_WIDTH: f64 = 0.8;

/// A stretch of the axis, in percent of the chart's width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub start: f64,
    pub width: f64,
}

impl Span {
    /// From position `from` to `to`, at least [`MIN_WIDTH`] wide (a
    /// narrow one is centred on its end) and inside the chart.
    fn between(from: f64, to: f64) -> Self {
        let (from, to) = if from <= to { (from, to) } else { (to, to) };
        let width = to - from;
        if width >= MIN_WIDTH {
            return Span { start: from, width };
        }
        let start = (to - MIN_WIDTH / 2.0).clamp(0.0, 100.0 - MIN_WIDTH);
        Span {
            start,
            width: MIN_WIDTH,
        }
    }

    /// For an SVG `x` attribute.
    pub fn x(&self) -> String {
        format!("{:.2}", self.start)
    }

    /// For an SVG `width` attribute.
    pub fn w(&self) -> String {
        format!("{:.2}", self.width)
    }
}

/// A point on the axis (today's line), in percent of the width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark(pub f64);

impl Mark {
    pub fn x(&self) -> String {
        format!("{:.2}", self.0)
    }
}

/// One milestone's row.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRow {
    pub key: String,
    pub label: String,
    pub planned: Option<Span>,
    pub projected: Option<Span>,
    pub actual: Option<Span>,
    /// Happened, or is projected, after its planned date.
    pub slipped: bool,
    /// Not happened and its planned date is before today.
    pub overdue: bool,
}

impl ChartRow {
    /// Highlighted on the chart and in the table.
    pub fn late(&self) -> bool {
        self.slipped || self.overdue
    }
}

/// The whole chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub rows: Vec<ChartRow>,
    /// Where today's line goes; `None` without any date.
    pub today: Option<Mark>,
    /// The first and last day of the axis ("" without any date).
    pub first_day: String,
    pub last_day: String,
    pub today_label: String,
}

impl Chart {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One milestone's dates, parsed.
struct Dates {
    planned: Option<NaiveDate>,
    projected: Option<NaiveDate>,
    actual: Option<NaiveDate>,
}

impl Dates {
    fn of(milestone: &v1::Milestone) -> Self {
        Dates {
            planned: gendan_proto::date_from_str(&milestone.planned),
            projected: gendan_proto::date_from_str(&milestone.projected),
            actual: gendan_proto::date_from_str(&milestone.actual),
        }
    }

    /// When it happened, else when it is expected.
    fn effective(&self) -> Option<NaiveDate> {
        self.actual.or(self.projected)
    }
}

/// The axis: the first and last day and how to place a date on it.
struct Axis {
    first: NaiveDate,
    last: NaiveDate,
}

impl Axis {
    fn position(&self, date: NaiveDate) -> f64 {
        let total = (self.last - self.first).num_days().max(1) as f64;
        let offset = (date - self.first).num_days() as f64;
        (offset / total * 100.0).clamp(0.0, 100.0)
    }
}

/// Lays out `milestones` (in dependency order, as `GetMilestones` gives
/// them) as seen on `today`.
pub fn chart(milestones: &[v1::Milestone], today: NaiveDate) -> Chart {
    let dates: Vec<Dates> = milestones.iter().map(Dates::of).collect();
    let known: Vec<NaiveDate> = dates
        .iter()
        .flat_map(|d| [d.planned, d.projected, d.actual])
        .flatten()
        .collect();
    let (Some(earliest), Some(latest)) = (known.iter().min(), known.iter().max()) else {
        return Chart {
            rows: milestones
                .iter()
                .map(|m| ChartRow {
                    key: m.key.clone(),
                    label: m.label.clone(),
                    planned: None,
                    projected: None,
                    actual: None,
                    slipped: false,
                    overdue: false,
                })
                .collect(),
            today: None,
            first_day: String::new(),
            last_day: String::new(),
            today_label: gendan_proto::date_to_string(today),
        };
    };
    let axis = Axis {
        first: (*earliest).min(today).pred_opt().unwrap_or(NaiveDate::MIN),
        last: (*latest).max(today).succ_opt().unwrap_or(NaiveDate::MAX),
    };
    let by_key: HashMap<&str, &Dates> = milestones
        .iter()
        .zip(&dates)
        .map(|(m, d)| (m.key.as_str(), d))
        .collect();
    let rows = milestones
        .iter()
        .zip(&dates)
        .map(|(milestone, own)| {
            // A bar starts where the latest milestone it waits for ends.
            let waits_for = |date_of: fn(&Dates) -> Option<NaiveDate>| {
                milestone
                    .depends_on
                    .iter()
                    .filter_map(|key| by_key.get(key.as_str()).copied())
                    .filter_map(date_of)
                    .max()
            };
            let bar = |end: Option<NaiveDate>, start: Option<NaiveDate>| {
                end.map(|end| {
                    let start = start.filter(|start| *start <= end).unwrap_or(end);
                    Span::between(axis.position(start), axis.position(end))
                })
            };
            ChartRow {
                key: milestone.key.clone(),
                label: milestone.label.clone(),
                planned: bar(own.planned, waits_for(|d| d.planned)),
                projected: bar(own.projected, waits_for(Dates::effective)),
                actual: own
                    .actual
                    .map(|actual| Span::between(axis.position(actual), axis.position(actual))),
                slipped: matches!((own.effective(), own.planned), (Some(when), Some(plan)) if when > plan),
                overdue: own.actual.is_none() && own.planned.is_some_and(|plan| plan < today),
            }
        })
        .collect();
    Chart {
        rows,
        today: Some(Mark(axis.position(today))),
        first_day: gendan_proto::date_to_string(axis.first),
        last_day: gendan_proto::date_to_string(axis.last),
        today_label: gendan_proto::date_to_string(today),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        gendan_proto::date_from_str(text).unwrap()
    }

    fn milestone(key: &str, planned: &str, projected: &str, actual: &str) -> v1::Milestone {
        v1::Milestone {
            key: key.to_owned(),
            label: key.replace('_', " "),
            planned: planned.to_owned(),
            projected: projected.to_owned(),
            actual: actual.to_owned(),
            ..Default::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_today_line_sits_at_todays_share_of_the_axis() {
        let milestones = [
            milestone("confirmed", "2026-03-01", "", "2026-03-01"),
            milestone("delivered", "2026-03-11", "2026-03-11", ""),
        ];
        let chart = chart(&milestones, day("2026-03-06"));
        // The axis runs 2026-02-28 ..= 2026-03-12: twelve days, today is
        // the sixth.
        assert_eq!(chart.first_day, "2026-02-28");
        assert_eq!(chart.last_day, "2026-03-12");
        assert!(close(chart.today.unwrap().0, 50.0));
        assert_eq!(chart.today.unwrap().x(), "50.00");
    }

    #[test]
    fn today_stretches_the_axis_when_it_is_outside_the_dates() {
        let milestones = [milestone("confirmed", "2026-03-01", "", "")];
        let chart = chart(&milestones, day("2026-03-09"));
        assert_eq!(chart.first_day, "2026-02-28");
        assert_eq!(chart.last_day, "2026-03-10");
        // Ten days, today the ninth.
        assert!(close(chart.today.unwrap().0, 90.0));
    }

    #[test]
    fn slipped_and_overdue_milestones_are_told_apart_from_those_on_plan() {
        let milestones = [
            milestone("on_plan", "2026-03-05", "2026-03-05", ""),
            milestone("early", "2026-03-05", "2026-03-03", ""),
            milestone("projected_late", "2026-03-05", "2026-03-08", ""),
            milestone("done_late", "2026-03-01", "", "2026-03-02"),
            milestone("done_early", "2026-03-02", "2026-03-09", "2026-03-01"),
            milestone("overdue", "2026-03-02", "", ""),
            milestone("no_plan", "", "2026-03-20", ""),
        ];
        let chart = chart(&milestones, day("2026-03-04"));
        let late: Vec<(&str, bool, bool)> = chart
            .rows
            .iter()
            .map(|row| (row.key.as_str(), row.slipped, row.overdue))
            .collect();
        assert_eq!(
            late,
            [
                ("on_plan", false, false),
                ("early", false, false),
                ("projected_late", true, false),
                ("done_late", true, false),
                // The actual date counts, not a stale projection.
                ("done_early", false, false),
                ("overdue", false, true),
                ("no_plan", false, false),
            ]
        );
        assert!(chart.rows[2].late() && chart.rows[5].late() && !chart.rows[0].late());
    }

    #[test]
    fn bars_start_where_the_milestones_they_wait_for_end() {
        let mut sewing = milestone("sewing", "2026-03-11", "2026-03-13", "");
        sewing.depends_on = vec!["materials_in".to_owned(), "unknown".to_owned()];
        let milestones = [
            milestone("materials_in", "2026-03-01", "", "2026-03-03"),
            sewing,
        ];
        let chart = chart(&milestones, day("2026-03-01"));
        // Axis 2026-02-28 ..= 2026-03-14: fourteen days.
        let planned = chart.rows[1].planned.unwrap();
        assert!(close(planned.start, 1.0 / 14.0 * 100.0));
        assert!(close(planned.width, 10.0 / 14.0 * 100.0));
        // The projection starts from the actual arrival of the materials.
        let projected = chart.rows[1].projected.unwrap();
        assert!(close(projected.start, 3.0 / 14.0 * 100.0));
        assert!(close(projected.width, 10.0 / 14.0 * 100.0));
        // A milestone waiting for nothing is a narrow marker on its day.
        let first = chart.rows[0].planned.unwrap();
        assert!(close(first.width, MIN_WIDTH));
        let actual = chart.rows[0].actual.unwrap();
        assert!(close(actual.start + actual.width / 2.0, 3.0 / 14.0 * 100.0));
        assert!(chart.rows[1].actual.is_none());
    }

    #[test]
    fn an_empty_calendar_has_no_rows_and_no_today_line() {
        let chart = chart(&[], day("2026-03-04"));
        assert!(chart.is_empty());
        assert_eq!(chart.today, None);
        assert_eq!(chart.first_day, "");
    }

    #[test]
    fn milestones_without_dates_have_rows_but_no_bars() {
        let milestones = [milestone("delivered", "", "", "")];
        let chart = chart(&milestones, day("2026-03-04"));
        assert_eq!(chart.rows.len(), 1);
        assert_eq!(chart.today, None);
        let row = &chart.rows[0];
        assert!(row.planned.is_none() && row.projected.is_none() && row.actual.is_none());
        assert!(!row.late());
    }

    #[test]
    fn narrow_markers_stay_inside_the_chart() {
        let span = Span::between(0.0, 0.0);
        assert!(close(span.start, 0.0) && close(span.width, MIN_WIDTH));
        let span = Span::between(100.0, 100.0);
        assert!(close(span.start + span.width, 100.0));
        assert_eq!(
            Span {
                start: 12.346,
                width: 1.0
            }
            .x(),
            "12.35"
        );
    }
}
