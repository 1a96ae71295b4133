//! The work order reads and writes of a downtime's re-plan
//! ([`equipment`](crate::equipment)): [`open_on_centre`] and [`by_ids`]
//! lock and load the work orders it moves, [`stage_bookings`] reads what
//! their stages booked, and [`save_replans`] stores every moved work
//! order's [`Replan`] at once, a statement per table rather than per work
//! order: a breakdown of a busy centre moves many.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{StageBooking, insert_stage_bookings, load};
use crate::Result;
use crate::reschedule::{self, MovedStage, Replan, StageBookings};
use crate::work_orders::WorkOrder;

/// Open work orders with an unfinished stage on `work_centre` planned to
/// run on any day of `first..=last`, with their stages, the oldest plan
/// first (it keeps first claim on the capacity that is left), locked until
/// the transaction ends. Reservations stay where they are: they are
/// re-scheduled when the order's production is planned, and a downtime's
/// moves announce nothing about an order still in review.
pub async fn open_on_centre(
    conn: &mut PgConnection,
    work_centre: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<WorkOrder>> {
    // The locks first, then the load (see `load`).
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT work_order_id FROM work_orders w \
         WHERE status IN ('planned', 'in_progress') AND kind <> 'reservation' AND EXISTS ( \
           SELECT 1 FROM work_order_stages s \
           WHERE s.work_order_id = w.work_order_id AND s.work_centre = $1 \
             AND s.status <> 'completed' AND s.planned_end >= $2 AND s.planned_start <= $3) \
         ORDER BY created_at, work_order_id FOR NO KEY UPDATE",
    )
    .bind(work_centre)
    .bind(first)
    .bind(last)
    .fetch_all(&mut *conn)
    .await?;
    load(conn, &ids).await
}

/// The work orders with these ids, with their stages, locked until the
/// transaction ends; in no particular order.
pub async fn by_ids(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<WorkOrder>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let locked: Vec<Uuid> = sqlx::query_scalar(
        "SELECT work_order_id FROM work_orders \
         WHERE work_order_id = ANY($1) ORDER BY work_order_id FOR NO KEY UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    load(conn, &locked).await
}

/// The per-stage bookings of these work orders, by work order.
pub async fn stage_bookings(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, StageBookings>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, String, String, NaiveDate, f64)> = sqlx::query_as(
        "SELECT work_order_id, product, stage, day, hours FROM stage_bookings \
         WHERE work_order_id = ANY($1) ORDER BY work_order_id, product, stage, day",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    let mut by_work_order: HashMap<Uuid, StageBookings> = HashMap::new();
    for (work_order_id, product, stage, day, hours) in rows {
        by_work_order
            .entry(work_order_id)
            .or_default()
            .entry((product, stage))
            .or_default()
            .push((day, hours));
    }
    Ok(by_work_order)
}

/// Stores the `replans` (by work order id; each work order once) made from
/// `from` on: the moved stages' dates and bookings, each work order's
/// capacity bookings from that day ([`reschedule::rebooked`]) and its
/// planned dates. At most six statements, however many work orders moved.
pub async fn save_replans(
    conn: &mut PgConnection,
    replans: &[(Uuid, Replan)],
    from: NaiveDate,
) -> Result<()> {
    if replans.is_empty() {
        return Ok(());
    }
    debug_assert!(
        {
            let mut ids: Vec<Uuid> = replans.iter().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            ids.windows(2).all(|pair| pair[0] != pair[1])
        },
        "one re-plan per work order"
    );
    let moved: Vec<(Uuid, &MovedStage)> = replans
        .iter()
        .flat_map(|(id, replan)| replan.moved.iter().map(move |stage| (*id, stage)))
        .collect();
    let stage_ids: Vec<Uuid> = moved.iter().map(|(id, _)| *id).collect();
    let products: Vec<&str> = moved.iter().map(|(_, m)| m.product.as_str()).collect();
    let stages: Vec<&str> = moved.iter().map(|(_, m)| m.stage.as_str()).collect();
    let starts: Vec<NaiveDate> = moved.iter().map(|(_, m)| m.planned_start).collect();
    let ends: Vec<NaiveDate> = moved.iter().map(|(_, m)| m.planned_end).collect();
    sqlx::query(
        "UPDATE work_order_stages s SET planned_start = m.new_start, planned_end = m.new_end \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::date[], $5::date[]) \
           AS m(work_order_id, product, stage, new_start, new_end) \
         WHERE s.work_order_id = m.work_order_id AND s.product = m.product \
           AND s.stage = m.stage",
    )
    .bind(&stage_ids)
    .bind(&products)
    .bind(&stages)
    .bind(&starts)
    .bind(&ends)
    .execute(&mut *conn)
    .await?;

    sqlx::query(
        "DELETE FROM stage_bookings b \
         USING UNNEST($2::uuid[], $3::text[], $4::text[]) AS m(work_order_id, product, stage) \
         WHERE b.work_order_id = m.work_order_id AND b.day >= $1 \
           AND b.product = m.product AND b.stage = m.stage",
    )
    .bind(from)
    .bind(&stage_ids)
    .bind(&products)
    .bind(&stages)
    .execute(&mut *conn)
    .await?;
    let per_stage: Vec<StageBooking> = moved
        .iter()
        .flat_map(|(id, stage)| {
            stage.booked.iter().map(move |(day, hours)| StageBooking {
                work_order_id: *id,
                product: &stage.product,
                stage: &stage.stage,
                day: *day,
                hours: *hours,
            })
        })
        .collect();
    insert_stage_bookings(conn, &per_stage).await?;

    // What the work orders booked from `from` on comes back from the
    // delete that gives it up: read and removed in one statement.
    let ids: Vec<Uuid> = replans.iter().map(|(id, _)| *id).collect();
    let deleted: Vec<(Uuid, String, NaiveDate, f64)> = sqlx::query_as(
        "DELETE FROM capacity_bookings WHERE work_order_id = ANY($1) AND day >= $2 \
         RETURNING work_order_id, work_centre, day, hours",
    )
    .bind(&ids)
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    let mut current: HashMap<Uuid, Vec<(String, NaiveDate, f64)>> = HashMap::new();
    for (id, work_centre, day, hours) in deleted {
        current
            .entry(id)
            .or_default()
            .push((work_centre, day, hours));
    }
    let mut booked_ids: Vec<Uuid> = Vec::new();
    let mut centres: Vec<String> = Vec::new();
    let mut days: Vec<NaiveDate> = Vec::new();
    let mut hours: Vec<f64> = Vec::new();
    for (id, replan) in replans {
        let before = current.get(id).map(Vec::as_slice).unwrap_or_default();
        for ((work_centre, day), booked) in reschedule::rebooked(before, replan) {
            booked_ids.push(*id);
            centres.push(work_centre);
            days.push(day);
            hours.push(booked);
        }
    }
    sqlx::query(
        "INSERT INTO capacity_bookings (work_centre, day, work_order_id, hours) \
         SELECT * FROM UNNEST($1::text[], $2::date[], $3::uuid[], $4::float8[])",
    )
    .bind(&centres)
    .bind(&days)
    .bind(&booked_ids)
    .bind(&hours)
    .execute(&mut *conn)
    .await?;

    let planned_starts: Vec<NaiveDate> = replans.iter().map(|(_, r)| r.planned_start).collect();
    let planned_ends: Vec<NaiveDate> = replans.iter().map(|(_, r)| r.planned_end).collect();
    sqlx::query(
        "UPDATE work_orders w SET planned_start = r.new_start, planned_end = r.new_end \
         FROM UNNEST($1::uuid[], $2::date[], $3::date[]) AS r(work_order_id, new_start, new_end) \
         WHERE w.work_order_id = r.work_order_id",
    )
    .bind(&ids)
    .bind(&planned_starts)
    .bind(&planned_ends)
    .execute(conn)
    .await?;
    Ok(())
}
