//! Stored master data: work centres with their calendars, routings per
//! product, and the hours already booked per work centre and day.
//!
//! Everything here takes a `PgConnection` so callers choose the transaction;
//! values come back as the [`schedule`](crate::schedule) types the scheduler
//! works on.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sqlx::PgConnection;

use crate::Result;
use crate::schedule::{Calendar, Load, StageSpec};

/// A validated work centre.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkCentreDef {
    pub code: String,
    pub name: String,
    pub calendar: Calendar,
}

type WorkCentreRow = (String, String, f64, Vec<i32>, Vec<NaiveDate>);

fn from_row((code, name, hours_per_day, weekdays, closed): WorkCentreRow) -> WorkCentreDef {
    WorkCentreDef {
        code,
        name,
        calendar: Calendar {
            hours_per_day,
            working_weekdays: weekdays
                .into_iter()
                .filter_map(|day| u32::try_from(day).ok())
                .collect(),
            closed_dates: closed.into_iter().collect(),
        },
    }
}

pub async fn upsert_work_centre(conn: &mut PgConnection, centre: &WorkCentreDef) -> Result<()> {
    let weekdays: Vec<i32> = centre
        .calendar
        .working_weekdays
        .iter()
        .map(|day| *day as i32)
        .collect();
    let closed: Vec<NaiveDate> = centre.calendar.closed_dates.iter().copied().collect();
    sqlx::query(
        "INSERT INTO work_centres (code, name, hours_per_day, working_weekdays, closed_dates) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, \
           hours_per_day = EXCLUDED.hours_per_day, \
           working_weekdays = EXCLUDED.working_weekdays, \
           closed_dates = EXCLUDED.closed_dates, updated_at = now()",
    )
    .bind(&centre.code)
    .bind(&centre.name)
    .bind(centre.calendar.hours_per_day)
    .bind(&weekdays)
    .bind(&closed)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn work_centres(conn: &mut PgConnection) -> Result<Vec<WorkCentreDef>> {
    let rows: Vec<WorkCentreRow> = sqlx::query_as(
        "SELECT code, name, hours_per_day, working_weekdays, closed_dates \
         FROM work_centres ORDER BY code",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Calendars of every work centre, by code.
pub async fn calendars(conn: &mut PgConnection) -> Result<HashMap<String, Calendar>> {
    Ok(work_centres(conn)
        .await?
        .into_iter()
        .map(|centre| (centre.code, centre.calendar))
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
    let rows: Vec<(String, String, f64, f64)> = sqlx::query_as(
        "SELECT stage, work_centre, hours_per_unit, setup_hours \
         FROM routing_stages WHERE product = $1 ORDER BY seq",
    )
    .bind(product)
    .fetch_all(conn)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .map(
                |(stage, work_centre, hours_per_unit, setup_hours)| StageSpec {
                    stage,
                    work_centre,
                    hours_per_unit,
                    setup_hours,
                },
            )
            .collect(),
    ))
}

/// Hours booked by planned work orders from `from` on.
pub async fn load_from(conn: &mut PgConnection, from: NaiveDate) -> Result<Load> {
    let rows: Vec<(String, NaiveDate, f64)> = sqlx::query_as(
        "SELECT work_centre, day, sum(hours)::float8 FROM capacity_bookings \
         WHERE day >= $1 GROUP BY work_centre, day",
    )
    .bind(from)
    .fetch_all(conn)
    .await?;
    let mut load = Load::default();
    for (work_centre, day, hours) in rows {
        load.book(&work_centre, day, hours);
    }
    Ok(load)
}
