//! Capacity reserved at review: the hours a capacity check promised an
//! order are booked for it, so no other order is promised them.
//!
//! A versioned `CheckOrderCapacity` (revision ≥ 1) stores the schedule it
//! answers with as a work order of kind
//! [`KIND_RESERVATION`](crate::work_orders::KIND_RESERVATION), with its
//! stages and capacity bookings like any plan ([`reserve`]). Every later
//! check, plan, rework and cancellation counts those bookings, and every
//! booking path holds [`planning::lock_capacity`](crate::planning::lock_capacity),
//! so two orders are never promised the same hours.
//!
//! A reservation lives until one of these happens, each under that lock:
//! - **The order's next check** (an amended order reviewed again) releases
//!   it ([`release`]) before scheduling, in the same transaction, so the
//!   order keeps its place.
//! - **`PlanWorkOrder`** releases it and schedules the run at once. With the
//!   reserved hours free again, the run is scheduled at least as early as
//!   the reservation unless the materials now come later. A plan that fails
//!   keeps the reservation (`commands.rs`).
//! - **`ReleaseCapacity`** (the saga's compensation when an order is
//!   cancelled) releases it.
//! - **Its hold lapses**: [`HOLD_DAYS`] after the check, the next booking
//!   of any kind sweeps it ([`sweep_lapsed`], under the capacity lock). This
//!   covers an abandoned review or a lost compensation.
//!
//! Each versioned check's answer is kept ([`record`], [`answered`]): a
//! re-sent check of the same revision answers the same fact
//! ([`fact_key`]) and books nothing.

use chrono::{Days, NaiveDate};
use gendan_proto::v1::CapacityChecked;
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;
use crate::schedule::Schedule;
use crate::work_orders::store::{self, NewWorkOrder};
use crate::work_orders::{KIND_RESERVATION, WorkOrder};

/// How long a check's hours are held for the order. It outlasts a review
/// that waits on the customer (a clarification with its reminders); a
/// review that takes longer plans against what is free when it ends.
pub const HOLD_DAYS: u64 = 14;

/// The last day a reservation made on `today` is held.
pub fn hold_until(today: NaiveDate) -> NaiveDate {
    today
        .checked_add_days(Days::new(HOLD_DAYS))
        .unwrap_or(NaiveDate::MAX)
}

/// The key of the answer to check `revision`: one fact per revision.
pub fn fact_key(revision: i32) -> String {
    format!("capacity-check:{revision}")
}

/// The answer a check of `revision` of `order_id` gave, if it was made.
pub async fn answered(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
) -> Result<Option<CapacityChecked>> {
    let answer: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT answer FROM capacity_checks WHERE order_id = $1 AND revision = $2",
    )
    .bind(order_id)
    .bind(revision)
    .fetch_optional(conn)
    .await?;
    // Written by `record` from the same message type: a row that does not
    // decode is an error to see, not an answer to default.
    answer
        .map(|bytes| CapacityChecked::decode(bytes.as_slice()))
        .transpose()
        .map_err(|err| sqlx::Error::Decode(Box::new(err)).into())
}

/// Keeps the answer to check `revision`, with the reservation it booked.
pub async fn record(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
    reservation: Option<Uuid>,
    answer: &CapacityChecked,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO capacity_checks (order_id, revision, work_order_id, answer) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(order_id)
    .bind(revision)
    .bind(reservation)
    .bind(answer.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

/// Books `schedule` for `order_id` as the reservation of check `revision`,
/// held until `hold_until`.
pub async fn reserve(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
    schedule: &Schedule,
    hold_until: NaiveDate,
    traceparent: Option<&str>,
) -> Result<WorkOrder> {
    let new = NewWorkOrder {
        order_id,
        kind: KIND_RESERVATION,
        revision,
        amendment: 0,
        nonconformance_id: None,
        rework_reason: None,
        traceparent,
        hold_until: Some(hold_until),
    };
    store::insert(conn, &new, schedule).await
}

/// The order's live reservations.
async fn live_of(conn: &mut PgConnection, order_id: &str) -> Result<Vec<Uuid>> {
    let ids = sqlx::query_scalar(
        "SELECT work_order_id FROM work_orders \
         WHERE order_id = $1 AND kind = 'reservation' AND status = 'planned'",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    Ok(ids)
}

/// Gives back the hours of the order's live reservations from `today` on;
/// returns them. The caller holds the capacity lock.
pub async fn release(
    conn: &mut PgConnection,
    order_id: &str,
    today: NaiveDate,
    reason: &str,
) -> Result<f64> {
    let ids = live_of(conn, order_id).await?;
    store::cancel(conn, &ids, today, reason).await
}

/// Releases every reservation whose hold ended before `today`; returns how
/// many. The caller holds the capacity lock.
pub async fn sweep_lapsed(conn: &mut PgConnection, today: NaiveDate) -> Result<usize> {
    let lapsed: Vec<Uuid> = sqlx::query_scalar(
        "SELECT work_order_id FROM work_orders \
         WHERE kind = 'reservation' AND status = 'planned' AND hold_until < $1",
    )
    .bind(today)
    .fetch_all(&mut *conn)
    .await?;
    if lapsed.is_empty() {
        return Ok(0);
    }
    let released = store::cancel(conn, &lapsed, today, "reservation lapsed").await?;
    tracing::info!(
        reservations = lapsed.len(),
        released_hours = released,
        "lapsed reservations released"
    );
    Ok(lapsed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_runs_two_weeks_and_never_overflows() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert_eq!(
            hold_until(today),
            NaiveDate::from_ymd_opt(2026, 12, 19).unwrap()
        );
        assert_eq!(hold_until(NaiveDate::MAX), NaiveDate::MAX);
    }

    #[test]
    fn each_revision_is_its_own_fact() {
        assert_eq!(fact_key(1), "capacity-check:1");
        assert_ne!(fact_key(1), fact_key(2));
    }
}
