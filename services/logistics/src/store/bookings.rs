//! Every booking an order had, by BookShipment revision (`bookings`).
//!
//! The first booking, each re-booking after a missed ETD and each
//! redelivery of claimed goods add a row; a re-booking or the saga's
//! CancelShipment cancels the earlier row instead of overwriting it, and a
//! redelivery leaves the earlier row as it is (its goods travelled). The
//! order's current booking is also its `shipments` row (same reference and
//! revision); what happened to a booking's goods ([`Outcome`]: shipped,
//! delivered) is written on both, so it stays on the booking once a
//! redelivery takes the shipment row over. A booking's own status is only
//! ever open or cancelled. The chasing worker reads both tables through
//! [`overdue`] and records what it reported with [`mark_late`].

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use super::{SHIPMENT_CANCELLED, Shipment};
use crate::Result;

pub const BOOKING_OPEN: &str = "booked";
pub const BOOKING_CANCELLED: &str = "cancelled";

/// One booking of an order.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Booking {
    pub order_id: String,
    pub revision: i32,
    pub booking_reference: String,
    pub lane_code: String,
    pub carrier: String,
    pub mode: String,
    pub ready_date: NaiveDate,
    pub etd: NaiveDate,
    pub eta: NaiveDate,
    pub freight_cost_minor: i64,
    pub currency: String,
    pub meets_requested_date: bool,
    /// [`BOOKING_OPEN`] or [`BOOKING_CANCELLED`].
    pub status: String,
    pub cancel_reason: Option<String>,
}

impl Booking {
    /// The booking a shipment row holds.
    pub fn of(shipment: &Shipment) -> Self {
        let cancelled = shipment.status == SHIPMENT_CANCELLED;
        Booking {
            order_id: shipment.order_id.clone(),
            revision: shipment.revision,
            booking_reference: shipment.booking_reference.clone(),
            lane_code: shipment.lane_code.clone(),
            carrier: shipment.carrier.clone(),
            mode: shipment.mode.clone(),
            ready_date: shipment.ready_date,
            etd: shipment.etd,
            eta: shipment.eta,
            freight_cost_minor: shipment.freight_cost_minor,
            currency: shipment.currency.clone(),
            meets_requested_date: shipment.meets_requested_date,
            status: if cancelled {
                BOOKING_CANCELLED
            } else {
                BOOKING_OPEN
            }
            .to_owned(),
            cancel_reason: shipment.cancel_reason.clone(),
        }
    }
}

const COLUMNS: &str = "order_id, revision, booking_reference, lane_code, carrier, mode, \
    ready_date, etd, eta, freight_cost_minor, currency, meets_requested_date, status, \
    cancel_reason";

pub async fn insert(conn: &mut PgConnection, booking: &Booking) -> Result<()> {
    sqlx::query(
        "INSERT INTO bookings (order_id, revision, booking_reference, lane_code, carrier, mode, \
           ready_date, etd, eta, freight_cost_minor, currency, meets_requested_date, status, \
           cancel_reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&booking.order_id)
    .bind(booking.revision)
    .bind(&booking.booking_reference)
    .bind(&booking.lane_code)
    .bind(&booking.carrier)
    .bind(&booking.mode)
    .bind(booking.ready_date)
    .bind(booking.etd)
    .bind(booking.eta)
    .bind(booking.freight_cost_minor)
    .bind(&booking.currency)
    .bind(booking.meets_requested_date)
    .bind(&booking.status)
    .bind(&booking.cancel_reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// The order's booking of `revision`, open or cancelled.
pub async fn by_revision(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
) -> Result<Option<Booking>> {
    let sql = format!("SELECT {COLUMNS} FROM bookings WHERE order_id = $1 AND revision = $2");
    Ok(sqlx::query_as::<_, Booking>(sqlx::AssertSqlSafe(sql))
        .bind(order_id)
        .bind(revision)
        .fetch_optional(conn)
        .await?)
}

/// The order's booking with `reference`, open or cancelled.
pub async fn by_reference(
    conn: &mut PgConnection,
    order_id: &str,
    reference: &str,
) -> Result<Option<Booking>> {
    let sql =
        format!("SELECT {COLUMNS} FROM bookings WHERE order_id = $1 AND booking_reference = $2");
    Ok(sqlx::query_as::<_, Booking>(sqlx::AssertSqlSafe(sql))
        .bind(order_id)
        .bind(reference)
        .fetch_optional(conn)
        .await?)
}

/// What happened to the goods that travelled under one booking; all `None`
/// while they have not left.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct Outcome {
    pub bill_of_lading: Option<String>,
    pub shipped_on: Option<NaiveDate>,
    /// The packing list revision the goods were packed to (current when
    /// they left).
    pub shipped_list_revision: Option<i32>,
    pub delivered_on: Option<NaiveDate>,
    pub proof_of_delivery: Option<String>,
}

/// What happened to the goods of the order's booking `revision` (nothing
/// when there is no such booking).
pub async fn outcome(conn: &mut PgConnection, order_id: &str, revision: i32) -> Result<Outcome> {
    let outcome = sqlx::query_as::<_, Outcome>(
        "SELECT bill_of_lading, shipped_on, shipped_list_revision, delivered_on, \
           proof_of_delivery FROM bookings WHERE order_id = $1 AND revision = $2",
    )
    .bind(order_id)
    .bind(revision)
    .fetch_optional(conn)
    .await?;
    Ok(outcome.unwrap_or_default())
}

/// Records that the goods of booking `revision` left under
/// `bill_of_lading`, packed to the order's current packing list.
pub async fn record_shipped(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
    bill_of_lading: &str,
    shipped_on: NaiveDate,
) -> Result<()> {
    sqlx::query(
        "UPDATE bookings SET bill_of_lading = $3, shipped_on = $4, \
           shipped_list_revision = (SELECT max(l.revision) FROM packing_lists l \
                                    WHERE l.order_id = $1) \
         WHERE order_id = $1 AND revision = $2",
    )
    .bind(order_id)
    .bind(revision)
    .bind(bill_of_lading)
    .bind(shipped_on)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the goods of booking `revision` were delivered.
pub async fn record_delivered(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
    proof_of_delivery: &str,
    delivered_on: NaiveDate,
) -> Result<()> {
    sqlx::query(
        "UPDATE bookings SET proof_of_delivery = $3, delivered_on = $4 \
         WHERE order_id = $1 AND revision = $2",
    )
    .bind(order_id)
    .bind(revision)
    .bind(proof_of_delivery)
    .bind(delivered_on)
    .execute(conn)
    .await?;
    Ok(())
}

/// The latest of the order's bookings whose goods left under
/// `bill_of_lading`, if any.
pub async fn shipped_under(
    conn: &mut PgConnection,
    order_id: &str,
    bill_of_lading: &str,
) -> Result<Option<i32>> {
    let revision: Option<i32> = sqlx::query_scalar(
        "SELECT revision FROM bookings WHERE order_id = $1 AND bill_of_lading = $2 \
         ORDER BY revision DESC LIMIT 1",
    )
    .bind(order_id)
    .bind(bill_of_lading)
    .fetch_optional(conn)
    .await?;
    Ok(revision)
}

/// Every booking of the order, first revision first.
pub async fn of_order(conn: &mut PgConnection, order_id: &str) -> Result<Vec<Booking>> {
    let sql = format!("SELECT {COLUMNS} FROM bookings WHERE order_id = $1 ORDER BY revision");
    Ok(sqlx::query_as::<_, Booking>(sqlx::AssertSqlSafe(sql))
        .bind(order_id)
        .fetch_all(conn)
        .await?)
}

/// Cancels the open booking of `revision`; a cancelled one keeps its first
/// reason.
pub async fn cancel(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE bookings SET status = $3, cancel_reason = $4 \
         WHERE order_id = $1 AND revision = $2 AND status = $5",
    )
    .bind(order_id)
    .bind(revision)
    .bind(BOOKING_CANCELLED)
    .bind(reason)
    .bind(BOOKING_OPEN)
    .execute(conn)
    .await?;
    Ok(())
}

/// A booking as the chasing worker sees it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Watched {
    pub order_id: String,
    pub revision: i32,
    pub booking_reference: String,
    pub etd: NaiveDate,
    /// The booking's own status ([`BOOKING_OPEN`] or [`BOOKING_CANCELLED`]).
    pub status: String,
    /// The order's shipment status (`booked`, `shipped`, ...).
    pub shipment_status: String,
    /// Whether the shipment is this booking (not an earlier revision's).
    pub is_current: bool,
    pub reported: bool,
}

/// Open, unreported current bookings whose ETD is before `today` and whose
/// shipment is still only booked: what [`crate::chasing::days_late`] would
/// chase, in SQL so a batch holds only work. The booking and shipment rows
/// are locked with SKIP LOCKED: replicas share the work, and a shipped
/// report being written right now (the shipment row locked) is not chased.
pub async fn overdue(
    conn: &mut PgConnection,
    today: NaiveDate,
    limit: i64,
) -> Result<Vec<Watched>> {
    Ok(sqlx::query_as::<_, Watched>(
        "SELECT b.order_id, b.revision, b.booking_reference, b.etd, b.status, \
           s.status AS shipment_status, s.booking_reference = b.booking_reference AS is_current, \
           b.late_reported_at IS NOT NULL AS reported \
         FROM bookings b JOIN shipments s ON s.order_id = b.order_id \
         WHERE b.status = 'booked' AND b.late_reported_at IS NULL AND b.etd < $1 \
           AND s.status = 'booked' AND s.booking_reference = b.booking_reference \
         ORDER BY b.etd, b.order_id, b.revision LIMIT $2 \
         FOR UPDATE OF b, s SKIP LOCKED",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Records that the booking's missed ETD was reported, so it never is again.
pub async fn mark_late(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
    days_late: u32,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE bookings SET late_reported_at = $3, days_late = $4 \
         WHERE order_id = $1 AND revision = $2",
    )
    .bind(order_id)
    .bind(revision)
    .bind(at)
    .bind(i32::try_from(days_late).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(())
}
