//! Scheduling against the stored catalogue: loads the routings of the
//! requested products (for a rework, only their last stages, see
//! [`rework`](crate::rework)), then the calendars, the hours already booked
//! and the downtimes of the work centres those routings use
//! ([`capacity_from`]), each in one statement, and runs
//! [`schedule::schedule`](crate::schedule::schedule). A centre the MES
//! reports down offers nothing for its downtime, so every capacity check
//! and plan is honest while a machine is down.
//!
//! An amended order's run schedules per-stage quantities from the same
//! routings and capacity ([`with_routings`], [`capacity_from`]); see
//! [`amendments`](crate::amendments).
//!
//! Planning that books capacity must hold [`lock_capacity`] for its whole
//! transaction: two orders planned at once would otherwise both see the same
//! free hours and overbook a work centre.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::PgConnection;

use crate::schedule::{self, Calendar, Item, Load, Schedule, StageSpec};
use crate::{Error, Result, catalog, downtime, reservations, rework};

/// Serialises capacity bookings across every replica until the transaction
/// ends. Checks without booking do not take it: they read a consistent
/// snapshot and a slightly stale answer is fine for a feasibility check.
///
/// Holding it, every booking path first gives back the reservations whose
/// hold has lapsed ([`reservations::sweep_lapsed`]), so none is booked around
/// hours nobody is promised any more.
pub async fn lock_capacity(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('gendan.production.capacity'))")
        .execute(&mut *conn)
        .await?;
    reservations::sweep_lapsed(conn, chrono::Utc::now().date_naive()).await?;
    Ok(())
}

/// Plans `items` (product, quantity; request order) from `earliest_start`
/// given the capacity already booked. Books nothing.
pub async fn schedule_items(
    conn: &mut PgConnection,
    items: &[(String, u32)],
    earliest_start: NaiveDate,
) -> Result<Schedule> {
    let routed = with_routings(conn, items).await?;
    schedule_routed(conn, &routed, earliest_start).await
}

/// Plans the rework of `items` ([`rework::item`]: each product's last
/// routing stage once more) from `earliest_start` given the capacity
/// already booked. Books nothing.
pub async fn schedule_rework(
    conn: &mut PgConnection,
    items: &[(String, u32)],
    earliest_start: NaiveDate,
) -> Result<Schedule> {
    let reworks = with_routings(conn, items)
        .await?
        .into_iter()
        .map(|routed| {
            let product = routed.product.clone();
            rework::item(routed).ok_or(Error::NoRouting(product))
        })
        .collect::<Result<Vec<Item>>>()?;
    schedule_routed(conn, &reworks, earliest_start).await
}

/// `items` with their stored routings; a product without one is an error.
/// Amended runs ([`amendments`](crate::amendments)) start from these to
/// work out what each stage still has to make.
pub async fn with_routings(conn: &mut PgConnection, items: &[(String, u32)]) -> Result<Vec<Item>> {
    let products: Vec<String> = items.iter().map(|(product, _)| product.clone()).collect();
    let routings = catalog::routings(conn, &products).await?;
    // The first product without a routing, in request order, is the error.
    items
        .iter()
        .map(|(product, quantity)| -> Result<Item> {
            let stages = routings
                .get(product)
                .cloned()
                .ok_or_else(|| Error::NoRouting(product.clone()))?;
            Ok(Item {
                product: product.clone(),
                quantity: *quantity,
                stages,
            })
        })
        .collect()
}

/// The work centres of `stages`, each once: what [`capacity_from`] is to
/// read for them.
pub fn work_centres<'a>(stages: impl IntoIterator<Item = &'a StageSpec>) -> Vec<String> {
    let mut centres: Vec<String> = stages
        .into_iter()
        .map(|spec| spec.work_centre.clone())
        .collect();
    centres.sort_unstable();
    centres.dedup();
    centres
}

/// What work can be scheduled on the work centres `centres` from `from`
/// on: their calendars, and the hours booked per centre and day with the
/// downtimes' hours taken out as if booked ([`downtime::reserve`]). Work
/// on other centres is neither read nor needed: the scheduler looks up
/// only the centres of the stages it books.
pub async fn capacity_from(
    conn: &mut PgConnection,
    from: NaiveDate,
    centres: &[String],
) -> Result<(HashMap<String, Calendar>, Load)> {
    let calendars = catalog::calendars_of(conn, centres).await?;
    let mut load = catalog::load_from(conn, from, centres).await?;
    let downtimes = catalog::downtimes_from(conn, from, centres).await?;
    downtime::reserve(&mut load, &calendars, &downtimes);
    Ok((calendars, load))
}

/// Plans `items` already joined with their routings ([`with_routings`])
/// from `earliest_start` given the capacity already booked. Books nothing.
pub async fn schedule_routed(
    conn: &mut PgConnection,
    items: &[Item],
    earliest_start: NaiveDate,
) -> Result<Schedule> {
    let centres = work_centres(items.iter().flat_map(|item| &item.stages));
    let (calendars, mut load) = capacity_from(conn, earliest_start, &centres).await?;
    schedule::schedule(items, &calendars, &mut load, earliest_start)
}
