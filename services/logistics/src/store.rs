//! What logistics produced per order: packing lists and their checks,
//! document sets, shipments and their tracking. Handlers and the API read
//! and write these rows only through here.
//!
//! Handlers take [`lock_order`] first: two replicas handling a re-sent
//! command of one order at once then apply it one after the other, and the
//! second sees the first's result (idempotency by order id).
//!
//! A shipment is the order's current booking and what happened to it;
//! [`bookings`] keeps every booking by revision (what the chasing worker
//! watches) and [`claims`] the carrier claims for lost or damaged cargo.

pub mod bookings;
pub mod claims;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use crate::packing::{Barcode, Carton, Requirements};
use crate::{Error, Result};

pub const LIST_PREPARED: &str = "prepared";
pub const LIST_CHECKED: &str = "checked";
pub const LIST_MISMATCH: &str = "mismatch";

pub const SET_READY: &str = "ready";
pub const SET_REJECTED: &str = "rejected";

pub const SHIPMENT_BOOKED: &str = "booked";
pub const SHIPMENT_SHIPPED: &str = "shipped";
pub const SHIPMENT_DELIVERED: &str = "delivered";
pub const SHIPMENT_CANCELLED: &str = "cancelled";

/// Serialises everything this service does about one order, until the
/// transaction ends.
pub async fn lock_order(conn: &mut PgConnection, order_id: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('logistics-order:' || $1))")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A stored packing list.
#[derive(Debug, Clone, PartialEq)]
pub struct PackingList {
    pub order_id: String,
    pub customer: String,
    pub requirements: Requirements,
    /// Empty carton weight, to weigh cartons whose product had no weight
    /// when the list was built.
    pub carton_tare_kg: f64,
    pub status: String,
    pub cartons: Vec<Carton>,
}

impl PackingList {
    pub fn total_net_kg(&self) -> f64 {
        crate::packing::kg(self.cartons.iter().map(|c| c.net_weight_kg).sum())
    }

    /// 0 when a carton's weight is unknown: a partial sum would underprice
    /// freight billed by weight.
    pub fn total_gross_kg(&self) -> f64 {
        if self.cartons.iter().any(|c| c.gross_weight_kg <= 0.0) {
            return 0.0;
        }
        crate::packing::kg(self.cartons.iter().map(|c| c.gross_weight_kg).sum())
    }
}

pub async fn insert_packing_list(conn: &mut PgConnection, list: &PackingList) -> Result<()> {
    sqlx::query(
        "INSERT INTO packing_lists (order_id, customer, barcode_type, max_gross_weight_kg, \
           carton_tare_kg, status) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&list.order_id)
    .bind(&list.customer)
    .bind(list.requirements.barcode.name())
    .bind(list.requirements.max_gross_weight_kg)
    .bind(list.carton_tare_kg)
    .bind(&list.status)
    .execute(&mut *conn)
    .await?;
    for carton in &list.cartons {
        sqlx::query(
            "INSERT INTO packing_list_cartons (order_id, carton_number, product, quantity, marks, \
               net_weight_kg, gross_weight_kg) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&list.order_id)
        .bind(i32::try_from(carton.carton_number).unwrap_or(i32::MAX))
        .bind(&carton.product)
        .bind(i32::try_from(carton.quantity).unwrap_or(i32::MAX))
        .bind(&carton.marks)
        .bind(carton.net_weight_kg)
        .bind(carton.gross_weight_kg)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn packing_list(conn: &mut PgConnection, order_id: &str) -> Result<Option<PackingList>> {
    let row: Option<(String, String, String, f64, f64, String)> = sqlx::query_as(
        "SELECT order_id, customer, barcode_type, max_gross_weight_kg, carton_tare_kg, status \
         FROM packing_lists WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((order_id, customer, barcode, max_gross_weight_kg, carton_tare_kg, status)) = row
    else {
        return Ok(None);
    };
    let barcode = Barcode::parse(&barcode).ok_or_else(|| {
        Error::Corrupt(format!(
            "barcode type {barcode:?} of packing list {order_id}"
        ))
    })?;
    let rows: Vec<(i32, String, i32, String, f64, f64)> = sqlx::query_as(
        "SELECT carton_number, product, quantity, marks, net_weight_kg, gross_weight_kg \
         FROM packing_list_cartons WHERE order_id = $1 ORDER BY carton_number",
    )
    .bind(&order_id)
    .fetch_all(&mut *conn)
    .await?;
    let cartons = rows
        .into_iter()
        .map(|(number, product, quantity, marks, net, gross)| Carton {
            carton_number: u32::try_from(number).unwrap_or(0),
            product,
            quantity: u32::try_from(quantity).unwrap_or(0),
            marks,
            net_weight_kg: net,
            gross_weight_kg: gross,
        })
        .collect();
    Ok(Some(PackingList {
        order_id,
        customer,
        requirements: Requirements {
            barcode,
            max_gross_weight_kg,
        },
        carton_tare_kg,
        status,
        cartons,
    }))
}

/// The packing list with the weights of cartons whose product had no
/// weight when it was built filled in from `unit_net_kg`, stored too. The
/// cartons themselves do not change; documents and freight by weight need
/// the weights, and without this a late product entry would block the
/// order for good.
pub async fn weighed_packing_list(
    conn: &mut PgConnection,
    order_id: &str,
    unit_net_kg: &std::collections::HashMap<String, f64>,
) -> Result<Option<PackingList>> {
    let Some(mut list) = packing_list(conn, order_id).await? else {
        return Ok(None);
    };
    for carton in &mut list.cartons {
        if carton.net_weight_kg > 0.0 {
            continue;
        }
        let Some(unit) = unit_net_kg.get(&carton.product) else {
            continue;
        };
        carton.net_weight_kg = crate::packing::kg(f64::from(carton.quantity) * unit);
        carton.gross_weight_kg = crate::packing::kg(carton.net_weight_kg + list.carton_tare_kg);
        sqlx::query(
            "UPDATE packing_list_cartons SET net_weight_kg = $3, gross_weight_kg = $4 \
             WHERE order_id = $1 AND carton_number = $2",
        )
        .bind(order_id)
        .bind(i32::try_from(carton.carton_number).unwrap_or(i32::MAX))
        .bind(carton.net_weight_kg)
        .bind(carton.gross_weight_kg)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(list))
}

/// One check of a WMS packed report.
#[derive(Debug, Clone, PartialEq)]
pub struct PackingCheck {
    pub matches: bool,
    pub mismatches: Vec<String>,
    pub checked_at: DateTime<Utc>,
}

/// Records a check and moves the list to `checked` or `mismatch`.
pub async fn record_check(
    conn: &mut PgConnection,
    order_id: &str,
    check: &PackingCheck,
    packed_json: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO packing_checks (order_id, matches, mismatches, packed, checked_at) \
         VALUES ($1, $2, $3, $4::jsonb, $5)",
    )
    .bind(order_id)
    .bind(check.matches)
    .bind(&check.mismatches)
    .bind(packed_json)
    .bind(check.checked_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE packing_lists SET status = $2 WHERE order_id = $1")
        .bind(order_id)
        .bind(if check.matches {
            LIST_CHECKED
        } else {
            LIST_MISMATCH
        })
        .execute(conn)
        .await?;
    Ok(())
}

/// Every check of the order's packing list, oldest first.
pub async fn checks(conn: &mut PgConnection, order_id: &str) -> Result<Vec<PackingCheck>> {
    let rows: Vec<(bool, Vec<String>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT matches, mismatches, checked_at FROM packing_checks \
         WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(matches, mismatches, checked_at)| PackingCheck {
            matches,
            mismatches,
            checked_at,
        })
        .collect())
}

/// One stored document with its check result.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub name: String,
    pub content_json: String,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DocumentSet {
    pub order_id: String,
    pub status: String,
    pub export: bool,
    pub problems: Vec<String>,
    pub documents: Vec<Document>,
}

/// Replaces the order's document set.
pub async fn save_documents(conn: &mut PgConnection, set: &DocumentSet) -> Result<()> {
    sqlx::query(
        "INSERT INTO document_sets (order_id, status, export, problems) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, \
           export = EXCLUDED.export, problems = EXCLUDED.problems, updated_at = now()",
    )
    .bind(&set.order_id)
    .bind(&set.status)
    .bind(set.export)
    .bind(&set.problems)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM documents WHERE order_id = $1")
        .bind(&set.order_id)
        .execute(&mut *conn)
        .await?;
    for (seq, document) in set.documents.iter().enumerate() {
        sqlx::query(
            "INSERT INTO documents (order_id, seq, name, content, status, problems) \
             VALUES ($1, $2, $3, $4::json, $5, $6)",
        )
        .bind(&set.order_id)
        .bind(i32::try_from(seq).unwrap_or(i32::MAX))
        .bind(&document.name)
        .bind(&document.content_json)
        .bind(if document.problems.is_empty() {
            "ok"
        } else {
            "problems"
        })
        .bind(&document.problems)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn document_set(conn: &mut PgConnection, order_id: &str) -> Result<Option<DocumentSet>> {
    let row: Option<(String, bool, Vec<String>)> =
        sqlx::query_as("SELECT status, export, problems FROM document_sets WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((status, export, problems)) = row else {
        return Ok(None);
    };
    let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT name, content::text, problems FROM documents WHERE order_id = $1 ORDER BY seq",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    Ok(Some(DocumentSet {
        order_id: order_id.to_owned(),
        status,
        export,
        problems,
        documents: rows
            .into_iter()
            .map(|(name, content_json, problems)| Document {
                name,
                content_json,
                problems,
            })
            .collect(),
    }))
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
}

pub async fn insert_shipment(conn: &mut PgConnection, shipment: &Shipment) -> Result<()> {
    sqlx::query(
        "INSERT INTO shipments (order_id, status, lane_code, carrier, mode, ready_date, etd, eta, \
           booking_reference, freight_cost_minor, currency, meets_requested_date, revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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

/// Makes `shipment` (a new booking of a shipment still `booked`) the
/// order's current one. The earlier booking stays in [`bookings`].
pub async fn rebook_shipment(conn: &mut PgConnection, shipment: &Shipment) -> Result<()> {
    debug_assert_eq!(shipment.status, SHIPMENT_BOOKED);
    sqlx::query(
        "UPDATE shipments SET status = $2, lane_code = $3, carrier = $4, mode = $5, \
           ready_date = $6, etd = $7, eta = $8, booking_reference = $9, \
           freight_cost_minor = $10, currency = $11, meets_requested_date = $12, \
           revision = $13, cancel_reason = NULL, booked_at = now() \
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
           bill_of_lading, shipped_on, delivered_on, proof_of_delivery, cancel_reason, revision \
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

pub async fn mark_shipped(
    conn: &mut PgConnection,
    order_id: &str,
    bill_of_lading: &str,
    shipped_on: NaiveDate,
) -> Result<()> {
    sqlx::query(
        "UPDATE shipments SET status = $2, bill_of_lading = $3, shipped_on = $4 WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(SHIPMENT_SHIPPED)
    .bind(bill_of_lading)
    .bind(shipped_on)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_delivered(
    conn: &mut PgConnection,
    order_id: &str,
    proof_of_delivery: &str,
    delivered_on: NaiveDate,
) -> Result<()> {
    sqlx::query(
        "UPDATE shipments SET status = $2, proof_of_delivery = $3, delivered_on = $4 \
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(SHIPMENT_DELIVERED)
    .bind(proof_of_delivery)
    .bind(delivered_on)
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

pub async fn add_tracking(
    conn: &mut PgConnection,
    order_id: &str,
    tracking: &Tracking,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tracking_events (order_id, status, location, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(order_id)
    .bind(&tracking.status)
    .bind(&tracking.location)
    .bind(tracking.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The order's tracking history, in the order things happened.
pub async fn tracking(conn: &mut PgConnection, order_id: &str) -> Result<Vec<Tracking>> {
    let rows: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT status, location, at FROM tracking_events WHERE order_id = $1 ORDER BY at, id",
    )
    .bind(order_id)
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
