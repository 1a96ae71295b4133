//! Saga commands to logistics (`gendan.cmd.logistics.*`). Each is idempotent
//! by order id: the order is locked, and a repeat answers from what is
//! stored instead of doing the work again.
//!
//! | command | first time | repeated |
//! | --- | --- | --- |
//! | `PreparePacking` | builds and stores the packing list: `PackingListReady`; no spec for the customer or a carton over the weight limit: `PackingListFailed` (nothing stored) | `PackingListReady` from the stored list; after a failure it tries again |
//! | `PrepareDocuments` | builds, cross-checks and stores the documents: `DocumentsReady` or `DocumentsRejected` with every problem | a ready set answers `DocumentsReady` again; a rejected set is rebuilt (master data may have been fixed) |
//! | `BookShipment` | picks a lane and stores the booking: `ShipmentBooked`; nothing bookable: `ShipmentBookingFailed` | `ShipmentBooked` from the stored booking; a cancelled shipment answers `ShipmentBookingFailed` |
//! | `CancelShipment` | cancels a booking not yet shipped: `ShipmentCancelled` (also when nothing was booked) | `ShipmentCancelled` again; once shipped the command is rejected (dead letter with the reason) |
//!
//! A command that can never be handled (no order, an order without lines, a
//! ready date that is not a date) is rejected to the dead-letter subject with
//! the field named. Every answer is written to the outbox on the consumer's
//! connection, so it commits with the effect and the inbox record.

use std::collections::{BTreeMap, HashMap};

use gendan_grpc::FieldError;
use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{
    BookShipment, CancelShipment, DocumentsReady, DocumentsRejected, PackingListFailed,
    PackingListReady, PrepareDocuments, PreparePacking, ShipmentBooked, ShipmentBookingFailed,
    ShipmentCancelled,
};
use gendan_proto::{date_from_str, date_to_string};
use prost::Message;
use sqlx::PgConnection;

use crate::booking::{self, Load};
use crate::documents::{self, ProductData, StoredPacking};
use crate::packing;
use crate::store::{self, PackingList, Shipment};
use crate::{Error, SERVICE, catalog, validate};

/// Writes one answer event about `order_id`, caused by `message`.
pub(crate) async fn answer<M: Message + gendan_proto::TypeName>(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    event: &M,
) -> Result<(), HandlerError> {
    let outgoing = Outgoing::event(SERVICE, order_id, event, &Cause::from_incoming(message));
    outbox::write(conn, &[outgoing]).await?;
    Ok(())
}

fn invalid(field: FieldError) -> HandlerError {
    Error::from(field).into()
}

/// Handles `gendan.cmd.logistics.*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandHandler;

impl Handler for CommandHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<PreparePacking>() {
            return prepare_packing(conn, message, message.payload()?).await;
        }
        if message.is::<PrepareDocuments>() {
            return prepare_documents(conn, message, message.payload()?).await;
        }
        if message.is::<BookShipment>() {
            return book_shipment(conn, message, message.payload()?).await;
        }
        if message.is::<CancelShipment>() {
            return cancel_shipment(conn, message, message.payload()?).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown command type {:?} for {SERVICE}",
            message.type_name()
        )))
    }
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn prepare_packing(
    conn: &mut PgConnection,
    message: &Incoming,
    command: PreparePacking,
) -> Result<(), HandlerError> {
    let order = validate::order(command.order.as_ref(), "order").map_err(invalid)?;
    let order_id = message.order_id_or(&order.order_id)?;
    store::lock_order(conn, &order_id).await?;

    if let Some(existing) = store::packing_list(conn, &order_id).await? {
        tracing::info!(
            cartons = existing.cartons.len(),
            "packing list exists, answering it again"
        );
        return answer(conn, message, &order_id, &ready_event(&existing)).await;
    }
    let failed = |reason: String| PackingListFailed {
        order_id: order_id.clone(),
        reason,
    };
    let Some(spec) = catalog::spec(conn, &order.customer).await? else {
        tracing::warn!(customer = %order.customer, "no packing spec for the customer");
        let event = failed(format!(
            "no packing spec for customer {:?}; enter one with UpsertPackingSpec",
            order.customer
        ));
        return answer(conn, message, &order_id, &event).await;
    };
    let items =
        match packing::merge_lines(order.lines.iter().map(|l| (l.product.as_str(), l.quantity))) {
            Ok(items) => items,
            Err(reason) => return answer(conn, message, &order_id, &failed(reason)).await,
        };
    let products: Vec<String> = items.iter().map(|(p, _)| p.clone()).collect();
    let weights: HashMap<String, f64> = catalog::products(conn, &products)
        .await?
        .into_iter()
        .map(|(product, record)| (product, record.unit_net_weight_kg))
        .collect();
    let cartons = match packing::build(&order_id, &spec, &items, &weights) {
        Ok(cartons) => cartons,
        Err(reason) => {
            tracing::warn!(%reason, "packing list cannot be built");
            return answer(conn, message, &order_id, &failed(reason)).await;
        }
    };
    let list = PackingList {
        order_id: order_id.clone(),
        customer: spec.customer.clone(),
        requirements: packing::Requirements {
            barcode: spec.barcode,
            max_gross_weight_kg: spec.max_gross_weight_kg,
        },
        carton_tare_kg: spec.carton_tare_kg,
        status: store::LIST_PREPARED.to_owned(),
        cartons,
    };
    store::insert_packing_list(conn, &list).await?;
    tracing::info!(cartons = list.cartons.len(), "packing list prepared");
    answer(conn, message, &order_id, &ready_event(&list)).await
}

fn ready_event(list: &PackingList) -> PackingListReady {
    PackingListReady {
        order_id: list.order_id.clone(),
        cartons: u32::try_from(list.cartons.len()).unwrap_or(u32::MAX),
    }
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn prepare_documents(
    conn: &mut PgConnection,
    message: &Incoming,
    command: PrepareDocuments,
) -> Result<(), HandlerError> {
    let order = validate::order(command.order.as_ref(), "order").map_err(invalid)?;
    let order_id = message.order_id_or(&order.order_id)?;
    store::lock_order(conn, &order_id).await?;

    if let Some(existing) = store::document_set(conn, &order_id).await?
        && existing.status == store::SET_READY
    {
        tracing::info!("documents ready, answering again");
        let event = DocumentsReady {
            order_id: order_id.clone(),
            documents: existing.documents.into_iter().map(|d| d.name).collect(),
        };
        return answer(conn, message, &order_id, &event).await;
    }

    let mut order = order;
    order.order_id = order_id.clone();
    let products: Vec<String> = order.lines.iter().map(|l| l.product.clone()).collect();
    let records = catalog::products(conn, &products).await?;
    let weights: HashMap<String, f64> = records
        .iter()
        .map(|(product, record)| (product.clone(), record.unit_net_weight_kg))
        .collect();
    let products: BTreeMap<String, ProductData> = records
        .into_iter()
        .map(|(product, record)| {
            (
                product,
                ProductData {
                    description: record.description,
                    hs_code: record.hs_code,
                    unit_net_weight_kg: record.unit_net_weight_kg,
                    country_of_origin: record.country_of_origin,
                },
            )
        })
        .collect();
    let packing = store::weighed_packing_list(conn, &order_id, &weights)
        .await?
        .map(|list| StoredPacking {
            customer: list.customer,
            cartons: list.cartons,
        });
    let inspection_id = Some(command.inspection_id.as_str()).filter(|id| !id.trim().is_empty());
    let set = documents::build(&order, &products, packing.as_ref(), inspection_id);
    let problems = documents::cross_check(&set);

    let stored = store::DocumentSet {
        order_id: order_id.clone(),
        status: if problems.is_empty() {
            store::SET_READY
        } else {
            store::SET_REJECTED
        }
        .to_owned(),
        export: order.export,
        problems: problems.iter().map(|p| p.text.clone()).collect(),
        documents: set
            .to_json()
            .into_iter()
            .map(|(name, content_json)| store::Document {
                name: name.to_owned(),
                content_json,
                problems: problems
                    .iter()
                    .filter(|p| p.documents.contains(&name))
                    .map(|p| p.text.clone())
                    .collect(),
            })
            .collect(),
    };
    store::save_documents(conn, &stored).await?;
    if problems.is_empty() {
        tracing::info!(documents = stored.documents.len(), "documents ready");
        let event = DocumentsReady {
            order_id: order_id.clone(),
            documents: set.names().into_iter().map(str::to_owned).collect(),
        };
        answer(conn, message, &order_id, &event).await
    } else {
        tracing::warn!(problems = ?stored.problems, "documents rejected");
        let event = DocumentsRejected {
            order_id: order_id.clone(),
            problems: stored.problems,
        };
        answer(conn, message, &order_id, &event).await
    }
}

/// The wire form of a stored booking.
pub(crate) fn booked_event(shipment: &Shipment) -> ShipmentBooked {
    ShipmentBooked {
        order_id: shipment.order_id.clone(),
        carrier: shipment.carrier.clone(),
        mode: shipment.mode.clone(),
        etd: date_to_string(shipment.etd),
        eta: date_to_string(shipment.eta),
        booking_reference: shipment.booking_reference.clone(),
        freight_cost_minor: shipment.freight_cost_minor,
        currency: shipment.currency.clone(),
        lane_code: shipment.lane_code.clone(),
        meets_requested_date: shipment.meets_requested_date,
    }
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn book_shipment(
    conn: &mut PgConnection,
    message: &Incoming,
    command: BookShipment,
) -> Result<(), HandlerError> {
    let order = validate::order(command.order.as_ref(), "order").map_err(invalid)?;
    let order_id = message.order_id_or(&order.order_id)?;
    let ready = date_from_str(command.ready_date.trim()).ok_or_else(|| {
        invalid(FieldError::new(
            "ready_date",
            format!("{:?} is not a YYYY-MM-DD date", command.ready_date),
        ))
    })?;
    let (deliver_by_text, deliver_by_field) = if command.deliver_by.trim().is_empty() {
        (
            command
                .order
                .as_ref()
                .map(|o| o.requested_delivery_date.clone())
                .unwrap_or_default(),
            "order.requested_delivery_date",
        )
    } else {
        (command.deliver_by.clone(), "deliver_by")
    };
    let deliver_by = date_from_str(deliver_by_text.trim()).ok_or_else(|| {
        invalid(FieldError::new(
            deliver_by_field,
            format!("{deliver_by_text:?} is not a YYYY-MM-DD date"),
        ))
    })?;
    store::lock_order(conn, &order_id).await?;

    let failed = |reason: String| ShipmentBookingFailed {
        order_id: order_id.clone(),
        reason,
    };
    if let Some(existing) = store::shipment(conn, &order_id).await? {
        if existing.status == store::SHIPMENT_CANCELLED {
            let reason = format!(
                "the shipment of order {order_id} was cancelled ({}); it is not booked again",
                existing
                    .cancel_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            );
            return answer(conn, message, &order_id, &failed(reason)).await;
        }
        tracing::info!(booking_reference = %existing.booking_reference, "already booked, answering again");
        return answer(conn, message, &order_id, &booked_event(&existing)).await;
    }
    let products: Vec<String> = order.lines.iter().map(|l| l.product.clone()).collect();
    let weights: HashMap<String, f64> = catalog::products(conn, &products)
        .await?
        .into_iter()
        .map(|(product, record)| (product, record.unit_net_weight_kg))
        .collect();
    let Some(list) = store::weighed_packing_list(conn, &order_id, &weights).await? else {
        let reason =
            format!("order {order_id} has no packing list to book cartons and weight from");
        return answer(conn, message, &order_id, &failed(reason)).await;
    };
    let load = Load {
        cartons: u32::try_from(list.cartons.len()).unwrap_or(u32::MAX),
        gross_weight_kg: list.total_gross_kg(),
    };
    let lanes = catalog::lanes(conn).await?;
    let quote = match booking::choose(&lanes, load, ready, deliver_by, &order.currency) {
        Ok(quote) => quote,
        Err(no_lane) => {
            tracing::warn!(reason = %no_lane, "no lane can be booked");
            return answer(conn, message, &order_id, &failed(no_lane.0)).await;
        }
    };
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let booking_reference = format!(
        "{}-{}-{}",
        quote.lane.code.to_ascii_uppercase(),
        quote.etd.format("%Y%m%d"),
        suffix[suffix.len() - 8..].to_ascii_uppercase()
    );
    let shipment = Shipment {
        order_id: order_id.clone(),
        status: store::SHIPMENT_BOOKED.to_owned(),
        lane_code: quote.lane.code.clone(),
        carrier: quote.lane.carrier.clone(),
        mode: quote.lane.mode.name().to_owned(),
        ready_date: ready,
        etd: quote.etd,
        eta: quote.eta,
        booking_reference,
        freight_cost_minor: quote.cost_minor,
        currency: quote.lane.currency.clone(),
        meets_requested_date: quote.meets_deliver_by,
        bill_of_lading: None,
        shipped_on: None,
        delivered_on: None,
        proof_of_delivery: None,
        cancel_reason: None,
    };
    store::insert_shipment(conn, &shipment).await?;
    tracing::info!(
        lane = %shipment.lane_code,
        etd = %shipment.etd,
        eta = %shipment.eta,
        freight_cost_minor = shipment.freight_cost_minor,
        on_time = shipment.meets_requested_date,
        "shipment booked"
    );
    answer(conn, message, &order_id, &booked_event(&shipment)).await
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn cancel_shipment(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CancelShipment,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    store::lock_order(conn, &order_id).await?;
    let cancelled = ShipmentCancelled {
        order_id: order_id.clone(),
    };
    match store::shipment(conn, &order_id).await? {
        None => {
            tracing::info!("nothing booked, nothing to cancel");
        }
        Some(shipment) if shipment.status == store::SHIPMENT_BOOKED => {
            let reason = if command.reason.trim().is_empty() {
                "cancelled by the saga"
            } else {
                command.reason.trim()
            };
            store::cancel_shipment(conn, &order_id, reason).await?;
            tracing::info!(booking_reference = %shipment.booking_reference, "booking cancelled");
        }
        Some(shipment) if shipment.status == store::SHIPMENT_CANCELLED => {
            tracing::info!("already cancelled, answering again");
        }
        Some(shipment) => {
            return Err(Error::NotAllowed(format!(
                "the shipment of order {order_id} is {} (bill of lading {}); it cannot be cancelled",
                shipment.status,
                shipment.bill_of_lading.as_deref().unwrap_or("-")
            ))
            .into());
        }
    }
    answer(conn, message, &order_id, &cancelled).await
}
