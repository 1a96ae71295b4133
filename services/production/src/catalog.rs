//! Stored master data: work centres with their calendars, routings per
//! product, the hours already booked per work centre and day, and the
//! downtimes that take capacity away ([`downtimes_from`]).
//!
//! Everything here takes a `PgConnection` so callers choose the transaction;
//! values come back as the [`schedule`](crate::schedule) and
//! [`downtime`](crate::downtime) types the scheduler works on. Readers for
//! planning and MES reports take the work centres or products a call needs
//! and read them all in one statement ([`calendars_of`], [`routings`],
//! [`load_from`], [`downtimes_from`]): a handler reads each once, and only
//! what it uses.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sqlx::PgConnection;

use crate::Result;
use crate::downtime::Window;
use crate::schedule::{Calendar, Load, StageSpec};

/// A validated work centre.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkCentreDef {
    pub code: String,
    pub name: String,
    pub calendar: Calendar,
    /// Hours a breakdown usually takes to repair (> 0).
    pub typical_repair_hours: f64,
    /// Whether the MES reports it down: state, not definition, so storing a
    /// work centre ignores it.
    pub down: bool,
}

type WorkCentreRow = (String, String, f64, Vec<i32>, Vec<NaiveDate>, f64, bool);

fn from_row(
    (code, name, hours_per_day, weekdays, closed, typical_repair_hours, down): WorkCentreRow,
) -> WorkCentreDef {
    WorkCentreDef {
        code,
        name,
        calendar: calendar(hours_per_day, weekdays, closed),
        typical_repair_hours,
        down,
    }
}

fn calendar(hours_per_day: f64, weekdays: Vec<i32>, closed: Vec<NaiveDate>) -> Calendar {
    Calendar {
        hours_per_day,
        working_weekdays: weekdays
            .into_iter()
            .filter_map(|day| u32::try_from(day).ok())
            .collect(),
        closed_dates: closed.into_iter().collect(),
    }
}

/// Work centres with their state; `$1` is a code, or NULL for all.
const SELECT_WORK_CENTRES: &str = "SELECT code, name, hours_per_day, working_weekdays, \
       closed_dates, typical_repair_hours, \
       EXISTS (SELECT 1 FROM downtimes d WHERE d.work_centre = c.code AND d.ended_at IS NULL) \
     FROM work_centres c WHERE $1::text IS NULL OR code = $1 ORDER BY code";

pub async fn upsert_work_centre(conn: &mut PgConnection, centre: &WorkCentreDef) -> Result<()> {
    let weekdays: Vec<i32> = centre
        .calendar
        .working_weekdays
        .iter()
        .map(|day| *day as i32)
        .collect();
    let closed: Vec<NaiveDate> = centre.calendar.closed_dates.iter().copied().collect();
    sqlx::query(
        "INSERT INTO work_centres \
           (code, name, hours_per_day, working_weekdays, closed_dates, typical_repair_hours) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, \
           hours_per_day = EXCLUDED.hours_per_day, \
           working_weekdays = EXCLUDED.working_weekdays, \
           closed_dates = EXCLUDED.closed_dates, \
           typical_repair_hours = EXCLUDED.typical_repair_hours, updated_at = now()",
    )
    .bind(&centre.code)
    .bind(&centre.name)
    .bind(centre.calendar.hours_per_day)
    .bind(&weekdays)
    .bind(&closed)
    .bind(centre.typical_repair_hours)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn work_centres(conn: &mut PgConnection) -> Result<Vec<WorkCentreDef>> {
    let rows: Vec<WorkCentreRow> = sqlx::query_as(SELECT_WORK_CENTRES)
        .bind(None::<&str>)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// One work centre with its state, if it exists.
pub async fn work_centre(conn: &mut PgConnection, code: &str) -> Result<Option<WorkCentreDef>> {
    let row: Option<WorkCentreRow> = sqlx::query_as(SELECT_WORK_CENTRES)
        .bind(Some(code))
        .fetch_optional(conn)
        .await?;
    Ok(row.map(from_row))
}

/// The calendars of the work centres `codes` that exist, by code; none
/// asked, none read.
pub async fn calendars_of(
    conn: &mut PgConnection,
    codes: &[String],
) -> Result<HashMap<String, Calendar>> {
    if codes.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, f64, Vec<i32>, Vec<NaiveDate>)> = sqlx::query_as(
        "SELECT code, hours_per_day, working_weekdays, closed_dates FROM work_centres \
         WHERE code = ANY($1)",
    )
    .bind(codes)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(code, hours_per_day, weekdays, closed)| {
            (code, calendar(hours_per_day, weekdays, closed))
        })
        .collect())
}

/// Which of `codes` are known work centres.
pub async fn existing_work_centres(
    conn: &mut PgConnection,
    codes: &[String],
) -> Result<HashSet<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT code FROM work_centres WHERE code = ANY($1)")
        .bind(codes)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|(code,)| code).collect())
}

/// Replaces the routing of `product` with `stages` (in order).
pub async fn set_routing(
    conn: &mut PgConnection,
    product: &str,
    stages: &[StageSpec],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO routings (product) VALUES ($1) \
         ON CONFLICT (product) DO UPDATE SET updated_at = now()",
    )
    .bind(product)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM routing_stages WHERE product = $1")
        .bind(product)
        .execute(&mut *conn)
        .await?;
    let seqs: Vec<i32> = (0..stages.len() as i32).collect();
    let names: Vec<&str> = stages.iter().map(|s| s.stage.as_str()).collect();
    let centres: Vec<&str> = stages.iter().map(|s| s.work_centre.as_str()).collect();
    let per_unit: Vec<f64> = stages.iter().map(|s| s.hours_per_unit).collect();
    let setup: Vec<f64> = stages.iter().map(|s| s.setup_hours).collect();
    sqlx::query(
        "INSERT INTO routing_stages \
           (product, seq, stage, work_centre, hours_per_unit, setup_hours) \
         SELECT $1, * FROM UNNEST($2::int4[], $3::text[], $4::text[], $5::float8[], $6::float8[])",
    )
    .bind(product)
    .bind(&seqs)
    .bind(&names)
    .bind(&centres)
    .bind(&per_unit)
    .bind(&setup)
    .execute(conn)
    .await?;
    Ok(())
}

/// The stages of `product`'s routing in order; `None` when it has none.
pub async fn routing(conn: &mut PgConnection, product: &str) -> Result<Option<Vec<StageSpec>>> {
    let mut found = routings(conn, &[product.to_owned()]).await?;
    Ok(found.remove(product))
}

/// The routings of `products`, each with its stages in order, by product;
/// a product without one is missing.
pub async fn routings(
    conn: &mut PgConnection,
    products: &[String],
) -> Result<HashMap<String, Vec<StageSpec>>> {
    if products.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String, String, f64, f64)> = sqlx::query_as(
        "SELECT product, stage, work_centre, hours_per_unit, setup_hours \
         FROM routing_stages WHERE product = ANY($1) ORDER BY product, seq",
    )
    .bind(products)
    .fetch_all(conn)
    .await?;
    let mut routings: HashMap<String, Vec<StageSpec>> = HashMap::new();
    for (product, stage, work_centre, hours_per_unit, setup_hours) in rows {
        routings.entry(product).or_default().push(StageSpec {
            stage,
            work_centre,
            hours_per_unit,
            setup_hours,
        });
    }
    Ok(routings)
}

/// Hours booked by planned work orders on the work centres `codes` from
/// `from` on.
pub async fn load_from(conn: &mut PgConnection, from: NaiveDate, codes: &[String]) -> Result<Load> {
    if codes.is_empty() {
        return Ok(Load::default());
    }
    let rows: Vec<(String, NaiveDate, f64)> = sqlx::query_as(
        "SELECT work_centre, day, sum(hours)::float8 FROM capacity_bookings \
         WHERE work_centre = ANY($2) AND day >= $1 GROUP BY work_centre, day",
    )
    .bind(from)
    .bind(codes)
    .fetch_all(conn)
    .await?;
    let mut load = Load::default();
    for (work_centre, day, hours) in rows {
        load.book(&work_centre, day, hours);
    }
    Ok(load)
}

/// A work centre's day booked beyond what its calendar offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Overbooked {
    pub work_centre: String,
    pub day: NaiveDate,
    pub booked: f64,
    pub available: f64,
}

/// Every work centre day from `from` on whose bookings (plans, reworks and
/// reservations together) exceed its calendar's hours: empty in a factory
/// that never promised the same hours twice. Tests and the chaos check
/// assert it; a calendar shortened after booking shows here too.
pub async fn overbooked(conn: &mut PgConnection, from: NaiveDate) -> Result<Vec<Overbooked>> {
    let booked: Vec<(String, NaiveDate, f64)> = sqlx::query_as(
        "SELECT work_centre, day, sum(hours)::float8 FROM capacity_bookings \
         WHERE day >= $1 GROUP BY work_centre, day ORDER BY work_centre, day",
    )
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    let mut codes: Vec<String> = booked.iter().map(|(code, ..)| code.clone()).collect();
    codes.dedup();
    let calendars = calendars_of(conn, &codes).await?;
    // Hours are summed from per-day shares: allow for the rounding.
    const TOLERANCE: f64 = 1e-6;
    Ok(booked
        .into_iter()
        .filter_map(|(work_centre, day, booked)| {
            let available = calendars
                .get(&work_centre)
                .filter(|calendar| calendar.is_working_day(day))
                .map_or(0.0, |calendar| calendar.hours_per_day);
            (booked > available + TOLERANCE).then_some(Overbooked {
                work_centre,
                day,
                booked,
                available,
            })
        })
        .collect())
}

/// work centre, started at, expected hours, ended at.
type DowntimeRow = (String, DateTime<Utc>, f64, Option<DateTime<Utc>>);

/// Downtimes of the work centres `codes` that take capacity on `from` or
/// later: ended ones until they ended, open ones for the hours they were
/// expected to last.
pub async fn downtimes_from(
    conn: &mut PgConnection,
    from: NaiveDate,
    codes: &[String],
) -> Result<Vec<Window>> {
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    let from = from.and_time(NaiveTime::MIN).and_utc();
    let rows: Vec<DowntimeRow> = sqlx::query_as(
        "SELECT work_centre, started_at, expected_hours, ended_at FROM downtimes \
         WHERE work_centre = ANY($2) \
           AND coalesce(ended_at, started_at + expected_hours * interval '1 hour') > $1 \
         ORDER BY work_centre, started_at",
    )
    .bind(from)
    .bind(codes)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(work_centre, started_at, expected_hours, ended_at)| {
            let expected = Window::lasting(&work_centre, started_at, expected_hours);
            match ended_at {
                Some(end) => Window { end, ..expected },
                None => expected,
            }
        })
        .collect())
}
