//! Carrier events (`gendan.ext.carrier.*`).
//!
//! | subject | message | effect | emitted |
//! | --- | --- | --- | --- |
//! | `.tracking` | `CarrierTracking` | the update joins the shipment's tracking history | `TrackingUpdated` |
//! | `.delivered` | `CarrierDelivered` | the shipment becomes `delivered` with its proof of delivery | `Delivered` |
//! | `.cargo_exception` | `CarrierCargoException` | a claim against the carrier for lost or damaged cargo ([`crate::claims`]); the same kind on the same booking again adds nothing | `CargoClaimOpened` (first report only) |
//!
//! Events must name a booked shipment (and, when they carry one, its booking
//! reference); anything else is rejected with the reason. Delivery before the
//! warehouse reported the goods shipped is retried: the two come from
//! different systems and the shipped report may simply be late. A repeated
//! delivery report answers `Delivered` again and changes nothing. Cargo
//! exceptions name their booking themselves and are checked by
//! [`crate::claims`].

use std::sync::Arc;

use gendan_messaging::{Handler, HandlerError, Incoming};
use gendan_proto::v1::{
    CarrierCargoException, CarrierDelivered, CarrierTracking, Delivered, TrackingUpdated,
};
use gendan_proto::{date_to_string, timestamp_from};
use sqlx::PgConnection;

use crate::claims;
use crate::clock::Clock;
use crate::commands::answer;
use crate::store::{self, Shipment, Tracking};
use crate::wms::when;

/// Handles `gendan.ext.carrier.*`.
#[derive(Debug, Clone)]
pub struct CarrierHandler {
    /// When a claim is opened.
    clock: Arc<dyn Clock>,
}

impl CarrierHandler {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        CarrierHandler { clock }
    }
}

impl Handler for CarrierHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<CarrierTracking>() {
            return tracking(conn, message, message.payload()?).await;
        }
        if message.is::<CarrierDelivered>() {
            return delivered(conn, message, message.payload()?).await;
        }
        if message.is::<CarrierCargoException>() {
            let event = message.payload()?;
            return claims::cargo_exception(conn, message, event, self.clock.as_ref()).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown carrier event type {:?}",
            message.type_name()
        )))
    }
}

/// The order's shipment, checked against the booking reference the carrier
/// quotes (when it quotes one).
async fn booked_shipment(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    booking_reference: &str,
) -> Result<Shipment, HandlerError> {
    store::lock_order(conn, order_id).await?;
    let shipment = store::shipment(conn, order_id).await?.ok_or_else(|| {
        HandlerError::Rejected(format!(
            "{} for order {order_id}, which has no shipment",
            message.type_name()
        ))
    })?;
    let reference = booking_reference.trim();
    if !reference.is_empty() && reference != shipment.booking_reference {
        return Err(HandlerError::Rejected(format!(
            "{} for order {order_id} quotes booking {reference}, but its booking is {}",
            message.type_name(),
            shipment.booking_reference
        )));
    }
    if shipment.status == store::SHIPMENT_CANCELLED {
        return Err(HandlerError::Rejected(format!(
            "{} for order {order_id}, whose shipment is cancelled",
            message.type_name()
        )));
    }
    Ok(shipment)
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn tracking(
    conn: &mut PgConnection,
    message: &Incoming,
    event: CarrierTracking,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&event.order_id)?;
    let status = event.status.trim();
    if status.is_empty() {
        return Err(HandlerError::Rejected(format!(
            "tracking update for order {order_id} without a status"
        )));
    }
    booked_shipment(conn, message, &order_id, &event.booking_reference).await?;
    let update = Tracking {
        status: status.to_owned(),
        location: event.location.trim().to_owned(),
        at: when(event.at.as_ref(), message),
    };
    store::add_tracking(conn, &order_id, &update).await?;
    tracing::info!(status = %update.status, location = %update.location, "tracking updated");
    let updated = TrackingUpdated {
        order_id: order_id.clone(),
        status: update.status,
        location: update.location,
        at: Some(timestamp_from(update.at)),
    };
    answer(conn, message, &order_id, &updated).await
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn delivered(
    conn: &mut PgConnection,
    message: &Incoming,
    event: CarrierDelivered,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&event.order_id)?;
    let proof = event.proof_of_delivery.trim();
    if proof.is_empty() {
        return Err(HandlerError::Rejected(format!(
            "delivery of order {order_id} reported without a proof of delivery"
        )));
    }
    let shipment = booked_shipment(conn, message, &order_id, &event.booking_reference).await?;
    let answer_event = match shipment.status.as_str() {
        store::SHIPMENT_BOOKED => {
            return Err(HandlerError::Retry(format!(
                "order {order_id} delivered before the warehouse reported it shipped"
            )));
        }
        store::SHIPMENT_SHIPPED => {
            let delivered_on = when(event.at.as_ref(), message).date_naive();
            store::mark_delivered(conn, &order_id, proof, delivered_on).await?;
            tracing::info!(%delivered_on, "delivered");
            Delivered {
                order_id: order_id.clone(),
                delivered_on: date_to_string(delivered_on),
                proof_of_delivery: proof.to_owned(),
            }
        }
        _ => {
            tracing::info!("already delivered, answering again");
            Delivered {
                order_id: order_id.clone(),
                delivered_on: shipment
                    .delivered_on
                    .map(date_to_string)
                    .unwrap_or_default(),
                proof_of_delivery: shipment.proof_of_delivery.unwrap_or_default(),
            }
        }
    };
    answer(conn, message, &order_id, &answer_event).await
}
