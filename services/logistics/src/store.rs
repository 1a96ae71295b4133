//! What logistics produced per order: packing lists and their checks,
//! document sets, shipments and their tracking. Handlers and the API read
//! and write these rows only through here.
//!
//! Handlers take [`lock_order`] first: two replicas handling a re-sent
//! command of one order at once then apply it one after the other, and the
//! second sees the first's result (idempotency by order id).
//!
//! [`packing_lists`] keeps the order's packing lists and [`document_sets`]
//! its documents, each by revision: an amended order gets new ones and the
//! earlier ones stay on record, superseded; everything reads the current
//! revision. A shipment is the order's current booking and what happened
//! to it; [`bookings`] keeps every booking by revision (what the chasing
//! worker watches) with what happened to its goods, written beside the
//! shipment's, so that a redelivery (a new shipment of claimed goods) can
//! take the shipment row over while the earlier shipment stays on record.
//! Tracking updates are kept per booking revision. [`claims`] keeps the
//! carrier claims for lost or damaged cargo.

pub mod bookings;
pub mod claims;
pub mod document_sets;
pub mod packing_lists;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use crate::Result;

pub const SHIPMENT_BOOKED: &str = "booked";
pub const SHIPMENT_SHIPPED: &str = "shipped";
pub const SHIPMENT_DELIVERED: &str = "delivered";
pub const SHIPMENT_CANCELLED: &str = "cancelled";

/// A count or revision as its INTEGER column holds it; commands and lists
/// are checked to fit before they get here.
fn to_db(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A count or revision read back from its INTEGER column (never negative:
/// the columns are checked).
fn from_db(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

/// Serialises everything this service does about one order, until the
/// transaction ends.
pub async fn lock_order(conn: &mut PgConnection, order_id: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('logistics-order:' || $1))")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A booking and what happened to it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Shipment {
    pub order_id: String,
    pub status: String,
    pub lane_code: String,
    pub carrier: String,
    pub mode: String,
    pub ready_date: NaiveDate,
    pub etd: NaiveDate,
    pub eta: NaiveDate,
    pub booking_reference: String,
    pub freight_cost_minor: i64,
    pub currency: String,
    pub meets_requested_date: bool,
    pub bill_of_lading: Option<String>,
    pub shipped_on: Option<NaiveDate>,
    pub delivered_on: Option<NaiveDate>,
    pub proof_of_delivery: Option<String>,
    pub cancel_reason: Option<String>,
    /// The BookShipment revision of the current booking (1 = the first).
    pub revision: i32,
    /// The latest BookShipment revision answered with this booking: its
    /// `revision`, or a later one a re-booking answered with it because the
    /// goods had already left.
    pub announced_revision: i32,
}

impl Shipment {
    /// The booking revision `Shipped` and `Delivered` carry: the one the
    /// saga was last told this booking answers.
    pub fn announced(&self) -> u32 {
        from_db(self.announced_revision.max(self.revision))
    }
}

pub async fn insert_shipment(conn: &mut PgConnection, shipment: &Shipment) -> Result<()> {
    sqlx::query(
        "INSERT INTO shipments (order_id, status, lane_code, carrier, mode, ready_date, etd, eta, \
           booking_reference, freight_cost_minor, currency, meets_requested_date, revision, \
           announced_revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(&shipment.order_id)
    .bind(&shipment.status)
    .bind(&shipment.lane_code)
    .bind(&shipment.carrier)
    .bind(&shipment.mode)
    .bind(shipment.ready_date)
    .bind(shipment.etd)
    .bind(shipment.eta)
    .bind(&shipment.booking_reference)
    .bind(shipment.freight_cost_minor)
    .bind(&shipment.currency)
    .bind(shipment.meets_requested_date)
    .bind(shipment.revision)
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes `shipment` (a new booking, not yet shipped) the order's current
/// one: a re-booking of goods still waiting, or a redelivery after the
/// earlier goods left. The earlier booking, with what happened to its
/// goods, stays in [`bookings`]; the row starts afresh.
pub async fn rebook_shipment(conn: &mut PgConnection, shipment: &Shipment) -> Result<()> {
    debug_assert_eq!(shipment.status, SHIPMENT_BOOKED);
    sqlx::query(
        "UPDATE shipments SET status = $2, lane_code = $3, carrier = $4, mode = $5, \
           ready_date = $6, etd = $7, eta = $8, booking_reference = $9, \
           freight_cost_minor = $10, currency = $11, meets_requested_date = $12, \
           revision = $13, announced_revision = $13, cancel_reason = NULL, \
           bill_of_lading = NULL, shipped_on = NULL, delivered_on = NULL, \
           proof_of_delivery = NULL, booked_at = now() \
         WHERE order_id = $1",
    )
    .bind(&shipment.order_id)
    .bind(&shipment.status)
    .bind(&shipment.lane_code)
    .bind(&shipment.carrier)
    .bind(&shipment.mode)
    .bind(shipment.ready_date)
    .bind(shipment.etd)
    .bind(shipment.eta)
    .bind(&shipment.booking_reference)
    .bind(shipment.freight_cost_minor)
    .bind(&shipment.currency)
    .bind(shipment.meets_requested_date)
    .bind(shipment.revision)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn shipment(conn: &mut PgConnection, order_id: &str) -> Result<Option<Shipment>> {
    Ok(sqlx::query_as::<_, Shipment>(
        "SELECT order_id, status, lane_code, carrier, mode, ready_date, etd, eta, \
           booking_reference, freight_cost_minor, currency, meets_requested_date, \
           bill_of_lading, shipped_on, delivered_on, proof_of_delivery, cancel_reason, revision, \
           announced_revision \
         FROM shipments WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?)
}

/// Cancels the order's shipment and its current booking.
pub async fn cancel_shipment(conn: &mut PgConnection, order_id: &str, reason: &str) -> Result<()> {
    let revision: Option<i32> = sqlx::query_scalar(
        "UPDATE shipments SET status = $2, cancel_reason = $3 WHERE order_id = $1 \
         RETURNING revision",
    )
    .bind(order_id)
    .bind(SHIPMENT_CANCELLED)
    .bind(reason)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(revision) = revision {
        bookings::cancel(conn, order_id, revision, reason).await?;
    }
    Ok(())
}

/// Marks the order's shipment shipped, and records it on its current
/// booking (with the packing list revision the goods were packed to).
pub async fn mark_shipped(
    conn: &mut PgConnection,
    order_id: &str,
    bill_of_lading: &str,
    shipped_on: NaiveDate,
) -> Result<()> {
    let revision: Option<i32> = sqlx::query_scalar(
        "UPDATE shipments SET status = $2, bill_of_lading = $3, shipped_on = $4 \
         WHERE order_id = $1 RETURNING revision",
    )
    .bind(order_id)
    .bind(SHIPMENT_SHIPPED)
    .bind(bill_of_lading)
    .bind(shipped_on)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(revision) = revision {
        bookings::record_shipped(conn, order_id, revision, bill_of_lading, shipped_on).await?;
    }
    Ok(())
}

/// Marks the order's shipment delivered, and records it on its current
/// booking.
pub async fn mark_delivered(
    conn: &mut PgConnection,
    order_id: &str,
    proof_of_delivery: &str,
    delivered_on: NaiveDate,
) -> Result<()> {
    let revision: Option<i32> = sqlx::query_scalar(
        "UPDATE shipments SET status = $2, proof_of_delivery = $3, delivered_on = $4 \
         WHERE order_id = $1 RETURNING revision",
    )
    .bind(order_id)
    .bind(SHIPMENT_DELIVERED)
    .bind(proof_of_delivery)
    .bind(delivered_on)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(revision) = revision {
        bookings::record_delivered(conn, order_id, revision, proof_of_delivery, delivered_on)
            .await?;
    }
    Ok(())
}

/// Records that the order's current booking answered BookShipment
/// `revision` too (a re-booking that found the goods gone); never lowers it.
pub async fn announce(conn: &mut PgConnection, order_id: &str, revision: i32) -> Result<()> {
    sqlx::query(
        "UPDATE shipments SET announced_revision = GREATEST(announced_revision, $2) \
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(revision)
    .execute(conn)
    .await?;
    Ok(())
}

/// One carrier tracking update.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    pub status: String,
    pub location: String,
    pub at: DateTime<Utc>,
}

/// Adds one update to the tracking of the order's booking `revision`.
pub async fn add_tracking(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
    tracking: &Tracking,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tracking_events (order_id, revision, status, location, at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(order_id)
    .bind(revision)
    .bind(&tracking.status)
    .bind(&tracking.location)
    .bind(tracking.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The tracking history of the order's booking `revision`, in the order
/// things happened.
pub async fn tracking(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
) -> Result<Vec<Tracking>> {
    let rows: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT status, location, at FROM tracking_events WHERE order_id = $1 AND revision = $2 \
         ORDER BY at, id",
    )
    .bind(order_id)
    .bind(revision)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(status, location, at)| Tracking {
            status,
            location,
            at,
        })
        .collect())
}
