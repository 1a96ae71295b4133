//! Saga commands to logistics (`gendan.cmd.logistics.*`). Each is idempotent
//! by order id: the order is locked, and a repeat answers from what is
//! stored instead of doing the work again.
//!
//! | command | first time | repeated |
//! | --- | --- | --- |
//! | `PreparePacking` | builds and stores the packing list: `PackingListReady`; no spec for the customer or a carton over the weight limit: `PackingListFailed` (nothing stored) | `PackingListReady` from the stored list; after a failure it tries again |
//! | `PrepareDocuments` | builds, cross-checks and stores the documents: `DocumentsReady` or `DocumentsRejected` with every problem | a ready set answers `DocumentsReady` again; a rejected set is rebuilt (master data may have been fixed) |
//! | `BookShipment` (revision 0 or 1) | picks a lane and stores the booking: `ShipmentBooked`; nothing bookable: `ShipmentBookingFailed` | the same revision: `ShipmentBooked` from the stored booking (same reference, ETD, ETA); a cancelled shipment answers `ShipmentBookingFailed` |
//! | `BookShipment` (a later revision: a re-booking after a missed ETD) | cancels the earlier booking if it has not shipped (kept on record) and books again from the ready date or today, whichever is later: `ShipmentBooked` with the revision | as the first row; the rules per revision are in [`shipment`] |
//! | `CancelShipment` | cancels a booking not yet shipped: `ShipmentCancelled` (also when nothing was booked) | `ShipmentCancelled` again; once shipped the command is rejected (dead letter with the reason) |
//!
//! A command that can never be handled (no order, an order without lines, a
//! ready date that is not a date) is rejected to the dead-letter subject with
//! the field named. Every answer is written to the outbox on the consumer's
//! connection, so it commits with the effect and the inbox record.
//!
//! An answer repeated from the record carries the same facts but a new
//! envelope (a new event id): consumers tell repeats apart by content and
//! revision, not by event id.

mod shipment;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gendan_grpc::FieldError;
use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{
    BookShipment, CancelShipment, DocumentsReady, DocumentsRejected, PackingListFailed,
    PackingListReady, PrepareDocuments, PreparePacking,
};
use prost::Message;
use sqlx::PgConnection;

use crate::clock::Clock;
use crate::documents::{self, ProductData, StoredPacking};
use crate::packing;
use crate::store::{self, PackingList};
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

/// Writes one answer that states a stored fact, named by `key`: announced
/// again (a re-sent command), it keeps its event id, so no consumer counts
/// it twice.
pub(crate) async fn answer_fact<M: Message + gendan_proto::TypeName>(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    event: &M,
    key: &str,
) -> Result<(), HandlerError> {
    let cause = Cause::from_incoming(message);
    let outgoing = Outgoing::fact(SERVICE, order_id, event, &cause, key);
    outbox::write(conn, &[outgoing]).await?;
    Ok(())
}

fn invalid(field: FieldError) -> HandlerError {
    Error::from(field).into()
}

/// Handles `gendan.cmd.logistics.*`.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    /// What "today" is for a re-booking.
    clock: Arc<dyn Clock>,
}

impl CommandHandler {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        CommandHandler { clock }
    }
}

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
            let command = message.payload()?;
            return shipment::book_shipment(conn, message, command, self.clock.as_ref()).await;
        }
        if message.is::<CancelShipment>() {
            return shipment::cancel_shipment(conn, message, message.payload()?).await;
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
        return answer_fact(
            conn,
            message,
            &order_id,
            &ready_event(&existing),
            "packing_list",
        )
        .await;
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
    answer_fact(
        conn,
        message,
        &order_id,
        &ready_event(&list),
        "packing_list",
    )
    .await
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
        return answer_fact(conn, message, &order_id, &event, "documents").await;
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
        answer_fact(conn, message, &order_id, &event, "documents").await
    } else {
        tracing::warn!(problems = ?stored.problems, "documents rejected");
        let event = DocumentsRejected {
            order_id: order_id.clone(),
            problems: stored.problems,
        };
        answer(conn, message, &order_id, &event).await
    }
}
