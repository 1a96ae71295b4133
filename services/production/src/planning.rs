//! Scheduling against the stored catalogue: loads the routings of the
//! requested products (for a rework, only their last stages, see
//! [`rework`](crate::rework)), the work centre calendars, the hours already
//! booked and the downtimes ([`capacity_from`]), then runs
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

use crate::schedule::{self, Calendar, Item, Load, Schedule};
use crate::{Error, Result, catalog, downtime, rework};

/// Serialises capacity bookings across every replica until the transaction
/// ends. Checks without booking do not take it: they read a consistent
/// snapshot and a slightly stale answer is fine for a feasibility check.
pub async fn lock_capacity(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('gendan.production.capacity'))")
        .execute(conn)
        .await?;
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
    let mut routed = Vec::with_capacity(items.len());
    for (product, quantity) in items {
        let stages = catalog::routing(conn, product)
            .await?
            .ok_or_else(|| Error::NoRouting(product.clone()))?;
        routed.push(Item {
            product: product.clone(),
            quantity: *quantity,
            stages,
        });
    }
    Ok(routed)
}

/// What work can be scheduled against from `from` on: the calendars, and
/// the hours booked per centre and day with the downtimes' hours taken out
/// as if booked ([`downtime::reserve`]).
pub async fn capacity_from(
    conn: &mut PgConnection,
    from: NaiveDate,
) -> Result<(HashMap<String, Calendar>, Load)> {
    let calendars = catalog::calendars(conn).await?;
    let mut load = catalog::load_from(conn, from).await?;
    let downtimes = catalog::downtimes_from(conn, from).await?;
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
    let (calendars, mut load) = capacity_from(conn, earliest_start).await?;
    schedule::schedule(items, &calendars, &mut load, earliest_start)
}
