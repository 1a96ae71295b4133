//! The order's time-and-action calendar as the orders service shows it: the
//! saga plans and re-projects the milestones, orders keeps the latest
//! snapshot and answers GetMilestones.
//!
//! How data flows:
//! - The `orders-timeline` consumer ([`crate::timeline`]) hands each
//!   `MilestonesChanged` to [`save_snapshot`]. The event is checked first
//!   ([`Snapshot::from_event`]: a malformed date or key is rejected, naming
//!   the field); then, only when its version is newer than the one held and
//!   the order is open, it replaces the order's calendar ([`store`] holds
//!   the SQL). The event carries the whole calendar, so keeping the highest
//!   version is all the ordering there is: a late, reordered or redelivered
//!   event changes nothing.
//! - [`read`] (GetMilestones) reads the order row and its milestones from
//!   one snapshot and gives each milestone its [`status`] and variance as of
//!   the day it is read: both move with the calendar day alone (an open
//!   milestone becomes overdue overnight), so they are computed, not stored.

use std::collections::HashSet;

use chrono::NaiveDate;
use gendan_grpc::FieldError;
use gendan_messaging::HandlerError;
use gendan_proto::v1::{self, GetMilestonesResponse, MilestoneStatus, MilestonesChanged};
use gendan_proto::{date_from_str, date_to_string};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{Error, Result};

pub mod store;

/// A `MilestonesChanged`, checked and shaped as the read model stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub version: i64,
    /// In the event's order: dependency order, confirmation first.
    pub milestones: Vec<Entry>,
    /// What the calendar could not date yet, in words.
    pub incomplete: Vec<String>,
}

/// One milestone as stored: dates parsed, no status (that depends on the day
/// it is read).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    pub key: String,
    /// The `gendan.v1.MilestoneKind` number, kept as sent: a kind newer
    /// than this build still shows.
    pub kind: i32,
    pub subject: String,
    pub label: String,
    pub planned: Option<NaiveDate>,
    pub projected: Option<NaiveDate>,
    pub actual: Option<NaiveDate>,
    pub depends_on: Vec<String>,
    pub moved_by: String,
}

impl Snapshot {
    /// The next open milestone: of those not done, the earliest projected
    /// (the first in dependency order among equals).
    pub fn next_milestone(&self) -> Option<&Entry> {
        self.milestones
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.actual.is_none() && entry.projected.is_some())
            .min_by_key(|(position, entry)| (entry.projected, *position))
            .map(|(_, entry)| entry)
    }

    /// Checks `event`: the version fits the store, every milestone has a key
    /// no other has, every date is "" (none) or YYYY-MM-DD. The error names
    /// the field (`milestones[2].planned`).
    pub fn from_event(event: &MilestonesChanged) -> Result<Snapshot, FieldError> {
        let version = i64::try_from(event.version).map_err(|_| {
            FieldError::new("version", format!("{} is out of range", event.version))
        })?;
        let mut keys = HashSet::with_capacity(event.milestones.len());
        let mut milestones = Vec::with_capacity(event.milestones.len());
        for (index, milestone) in event.milestones.iter().enumerate() {
            let field = |name: &str| format!("milestones[{index}].{name}");
            if milestone.key.is_empty() {
                return Err(FieldError::new(field("key"), "must not be empty"));
            }
            // Two rows for one key would make the upsert fail on every
            // delivery: refuse the event instead.
            if !keys.insert(milestone.key.as_str()) {
                return Err(FieldError::new(
                    field("key"),
                    format!("{:?} appears twice", milestone.key),
                ));
            }
            milestones.push(Entry {
                key: milestone.key.clone(),
                kind: milestone.kind,
                subject: milestone.subject.clone(),
                label: milestone.label.clone(),
                planned: optional_date(field("planned"), &milestone.planned)?,
                projected: optional_date(field("projected"), &milestone.projected)?,
                actual: optional_date(field("actual"), &milestone.actual)?,
                depends_on: milestone.depends_on.clone(),
                moved_by: milestone.moved_by.clone(),
            });
        }
        Ok(Snapshot {
            version,
            milestones,
            incomplete: event.incomplete.clone(),
        })
    }
}

impl Entry {
    /// The milestone as GetMilestones shows it on `today`.
    fn into_milestone(self, today: NaiveDate) -> v1::Milestone {
        let (status, variance_days) = status(self.planned, self.projected, self.actual, today);
        v1::Milestone {
            key: self.key,
            kind: self.kind,
            subject: self.subject,
            label: self.label,
            planned: date_text(self.planned),
            projected: date_text(self.projected),
            actual: date_text(self.actual),
            variance_days,
            status: status as i32,
            depends_on: self.depends_on,
            moved_by: self.moved_by,
        }
    }
}

/// Keeps `event` as the order's calendar when its version is newer than the
/// one held; `false` when it changed nothing (an older or repeated version,
/// a closed order). A malformed event is rejected: it will never store.
#[tracing::instrument(
    skip_all,
    fields(order_id = %order_id, version = event.version),
    err(level = "debug")
)]
pub async fn save_snapshot(
    conn: &mut PgConnection,
    order_id: Uuid,
    event: &MilestonesChanged,
) -> Result<bool, HandlerError> {
    let snapshot = Snapshot::from_event(event).map_err(|err| {
        HandlerError::Rejected(format!("MilestonesChanged for order {order_id}: {err}"))
    })?;
    let saved = store::save(conn, order_id, &snapshot).await?;
    if !saved {
        tracing::debug!("calendar not newer than the one held, or order closed: unchanged");
    }
    Ok(saved)
}

/// GetMilestones: the order's calendar with each milestone's status and
/// variance on `today`. An order the saga has not planned yet has version 0
/// and no milestones.
pub async fn read(
    pool: &PgPool,
    order_id: &str,
    today: NaiveDate,
) -> Result<GetMilestonesResponse> {
    let id = crate::validate::order_id(order_id)?;
    let mut tx = pool.begin().await?;
    // The version and the milestones from one snapshot: a reader never sees
    // one version's header with another version's milestones.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let calendar = store::calendar(&mut tx, id)
        .await?
        .ok_or_else(|| Error::OrderNotFound(order_id.to_owned()))?;
    let entries = store::milestones(&mut tx, id).await?;
    tx.commit().await?;
    Ok(GetMilestonesResponse {
        order_id: id.to_string(),
        // Stored from a u64 and checked non-negative by the table.
        version: u64::try_from(calendar.calendar_version).unwrap_or_default(),
        milestones: entries
            .into_iter()
            .map(|entry| entry.into_milestone(today))
            .collect(),
        promised_delivery_date: date_text(calendar.promised_delivery_date),
        projected_delivery_date: date_text(calendar.projected_delivery_date),
        incomplete: calendar.calendar_incomplete,
    })
}

/// Where a milestone stands on `today`, and its variance: the actual (else
/// projected) date minus the planned one, in calendar days, 0 without a
/// plan.
///
/// Done is judged by the actual date against the plan (no plan: done);
/// an open milestone whose planned date has passed is overdue, whatever its
/// projection says; one projected after its plan is slipping; any other is
/// on plan.
pub fn status(
    planned: Option<NaiveDate>,
    projected: Option<NaiveDate>,
    actual: Option<NaiveDate>,
    today: NaiveDate,
) -> (MilestoneStatus, i32) {
    let variance = match (planned, actual.or(projected)) {
        (Some(planned), Some(date)) => days_between(planned, date),
        _ => 0,
    };
    let status = match (actual, planned) {
        (Some(actual), Some(planned)) if actual > planned => MilestoneStatus::DoneLate,
        (Some(_), _) => MilestoneStatus::Done,
        (None, Some(planned)) if planned < today => MilestoneStatus::Overdue,
        (None, Some(planned)) if projected.is_some_and(|date| date > planned) => {
            MilestoneStatus::Slipping
        }
        (None, _) => MilestoneStatus::OnPlan,
    };
    (status, variance)
}

/// `to − from` in days; any two dates chrono can hold are within `i32`.
fn days_between(from: NaiveDate, to: NaiveDate) -> i32 {
    let days = to.signed_duration_since(from).num_days();
    i32::try_from(days).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX })
}

/// A date of the event: "" is none; anything else must be YYYY-MM-DD.
fn optional_date(field: String, text: &str) -> Result<Option<NaiveDate>, FieldError> {
    if text.is_empty() {
        return Ok(None);
    }
    date_from_str(text)
        .map(Some)
        .ok_or_else(|| FieldError::new(field, format!("{text:?} is not a date (YYYY-MM-DD)")))
}

fn date_text(date: Option<NaiveDate>) -> String {
    date.map(date_to_string).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;

    fn date(text: &str) -> NaiveDate {
        date_from_str(text).expect("date")
    }

    fn day(text: &str) -> Option<NaiveDate> {
        Some(date(text))
    }

    const TODAY: &str = "2027-03-12";

    fn status_on_today(
        planned: Option<NaiveDate>,
        projected: Option<NaiveDate>,
        actual: Option<NaiveDate>,
    ) -> (MilestoneStatus, i32) {
        status(planned, projected, actual, date(TODAY))
    }

    #[test]
    fn done_on_or_before_the_plan_is_done_with_its_variance() {
        let early = status_on_today(day("2027-03-10"), day("2027-03-09"), day("2027-03-09"));
        assert_eq!(early, (MilestoneStatus::Done, -1));
        let on_the_day = status_on_today(day("2027-03-10"), day("2027-03-10"), day("2027-03-10"));
        assert_eq!(on_the_day, (MilestoneStatus::Done, 0));
    }

    #[test]
    fn done_without_a_plan_is_done_without_variance() {
        assert_eq!(
            status_on_today(None, day("2027-03-01"), day("2027-03-01")),
            (MilestoneStatus::Done, 0)
        );
    }

    #[test]
    fn done_after_the_plan_is_late_by_the_days_it_missed() {
        // The actual date counts, not the last projection.
        assert_eq!(
            status_on_today(day("2027-03-10"), day("2027-03-11"), day("2027-03-13")),
            (MilestoneStatus::DoneLate, 3)
        );
    }

    #[test]
    fn open_past_its_plan_is_overdue_whatever_the_projection() {
        assert_eq!(
            status_on_today(day("2027-03-10"), day("2027-03-15"), None),
            (MilestoneStatus::Overdue, 5)
        );
        assert_eq!(
            status_on_today(day("2027-03-11"), day("2027-03-11"), None),
            (MilestoneStatus::Overdue, 0)
        );
    }

    #[test]
    fn open_and_projected_after_its_plan_is_slipping() {
        assert_eq!(
            status_on_today(day("2027-03-20"), day("2027-03-23"), None),
            (MilestoneStatus::Slipping, 3)
        );
    }

    #[test]
    fn open_and_projected_on_or_before_its_plan_is_on_plan() {
        assert_eq!(
            status_on_today(day("2027-03-20"), day("2027-03-18"), None),
            (MilestoneStatus::OnPlan, -2)
        );
        // Planned for today is not overdue yet.
        assert_eq!(
            status_on_today(day(TODAY), day(TODAY), None),
            (MilestoneStatus::OnPlan, 0)
        );
        assert_eq!(
            status_on_today(None, day("2027-04-01"), None),
            (MilestoneStatus::OnPlan, 0)
        );
        assert_eq!(
            status_on_today(day("2027-03-20"), None, None),
            (MilestoneStatus::OnPlan, 0)
        );
    }

    fn event(milestones: Vec<v1::Milestone>) -> MilestonesChanged {
        MilestonesChanged {
            order_id: "o".to_owned(),
            version: 4,
            milestones,
            incomplete: vec!["no lane quoted".to_owned()],
            ..Default::default()
        }
    }

    fn milestone(key: &str, planned: &str) -> v1::Milestone {
        v1::Milestone {
            key: key.to_owned(),
            kind: v1::MilestoneKind::MaterialsIn as i32,
            label: "materials in".to_owned(),
            planned: planned.to_owned(),
            depends_on: vec!["confirmed".to_owned()],
            moved_by: "today".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn a_snapshot_keeps_the_order_and_reads_empty_dates_as_none() {
        let snapshot = Snapshot::from_event(&event(vec![
            milestone("confirmed", "2027-03-01"),
            milestone("materials_in", ""),
        ]))
        .expect("valid");
        assert_eq!(snapshot.version, 4);
        assert_eq!(snapshot.incomplete, ["no lane quoted"]);
        let keys: Vec<&str> = snapshot.milestones.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["confirmed", "materials_in"]);
        assert_eq!(snapshot.milestones[0].planned, day("2027-03-01"));
        assert_eq!(snapshot.milestones[1].planned, None);
        assert_eq!(snapshot.milestones[1].depends_on, ["confirmed"]);
    }

    #[test]
    fn a_malformed_date_or_key_is_refused_naming_the_field() {
        let bad_date = Snapshot::from_event(&event(vec![
            milestone("confirmed", "2027-03-01"),
            milestone("materials_in", "2027-02-30"),
        ]))
        .expect_err("no such day");
        assert_eq!(bad_date.field, "milestones[1].planned");

        let twice = Snapshot::from_event(&event(vec![
            milestone("confirmed", ""),
            milestone("confirmed", ""),
        ]))
        .expect_err("a key twice");
        assert_eq!(twice.field, "milestones[1].key");

        let unnamed = Snapshot::from_event(&event(vec![milestone("", "")])).expect_err("no key");
        assert_eq!(unnamed.field, "milestones[0].key");

        let huge = Snapshot::from_event(&MilestonesChanged {
            version: u64::MAX,
            ..event(Vec::new())
        })
        .expect_err("version out of range");
        assert_eq!(huge.field, "version");
    }

    fn around_today() -> impl Strategy<Value = Option<NaiveDate>> {
        proptest::option::of(-400i64..400)
            .prop_map(|offset| offset.map(|days| date(TODAY) + Duration::days(days)))
    }

    proptest! {
        /// A milestone is done (on time or late) exactly when it happened.
        #[test]
        fn done_exactly_when_it_has_an_actual_date(
            planned in around_today(),
            projected in around_today(),
            actual in around_today(),
        ) {
            let (status, _) = status_on_today(planned, projected, actual);
            let done = matches!(status, MilestoneStatus::Done | MilestoneStatus::DoneLate);
            prop_assert_eq!(done, actual.is_some());
        }

        /// The variance is the actual (else projected) date minus the plan,
        /// 0 without either; late and slipping milestones are behind their
        /// plan, and a milestone done on time is not.
        #[test]
        fn the_variance_agrees_with_the_status(
            planned in around_today(),
            projected in around_today(),
            actual in around_today(),
        ) {
            let (status, variance) = status_on_today(planned, projected, actual);
            let expected = match (planned, actual.or(projected)) {
                (Some(planned), Some(date)) => (date - planned).num_days(),
                _ => 0,
            };
            prop_assert_eq!(i64::from(variance), expected);
            match status {
                MilestoneStatus::DoneLate | MilestoneStatus::Slipping => {
                    prop_assert!(variance > 0)
                }
                MilestoneStatus::Done => prop_assert!(variance <= 0),
                MilestoneStatus::Overdue => {
                    prop_assert!(planned.is_some_and(|planned| planned < date(TODAY)))
                }
                MilestoneStatus::OnPlan | MilestoneStatus::Unspecified => {}
            }
        }
    }
}
