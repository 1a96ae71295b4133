//! `PreparePacking`: the order's packing list, by revision.
//!
//! A PreparePacking names its revision (0 or 1 = the first list; an order
//! amended before it ships is packed again with 2, 3, …) and carries the
//! order as it stands. Against the order's current packing list:
//!
//! | command revision | packing list | answer |
//! | --- | --- | --- |
//! | any | none | builds the list from the customer's packing spec: `PackingListReady` of the revision; no spec, or a carton over the weight limit: `PackingListFailed` (nothing stored, a re-sent command tries again) |
//! | a later one | any | builds the list again from the amended order, with the same rules as the first time; the earlier list is kept as `superseded` and never checked, weighed or counted again: `PackingListReady` of the new revision; a failure keeps the current list |
//! | the current one | any | `PackingListReady` from the stored list |
//! | an earlier one | any | `PackingListReady` of the current list: the saga has moved on |
//!
//! `PackingListReady` is the fact of one list revision
//! ([`revision::packing_list_key`]): answered again it keeps its event id.

use std::collections::HashMap;

use gendan_messaging::{HandlerError, Incoming};
use gendan_proto::v1::{PackingListFailed, PackingListReady, PreparePacking};
use sqlx::PgConnection;

use super::{answer, answer_fact, invalid};
use crate::documents::OrderData;
use crate::revision::{self, Action};
use crate::store::packing_lists::{self, PackingList};
use crate::{catalog, packing, store, validate};

/// Why an order cannot be packed (nor its freight quoted) without a spec.
pub(super) fn no_spec(order: &OrderData) -> String {
    format!(
        "no packing spec for customer {:?} ({:?}); enter one with UpsertPackingSpec",
        order.customer_id, order.customer
    )
}

/// The wire form of a stored list.
fn ready_event(list: &PackingList) -> PackingListReady {
    PackingListReady {
        order_id: list.order_id.clone(),
        cartons: u32::try_from(list.cartons.len()).unwrap_or(u32::MAX),
        revision: list.revision,
    }
}

/// `PackingListReady` for a stored list, as the fact of its revision.
async fn answer_ready(
    conn: &mut PgConnection,
    message: &Incoming,
    list: &PackingList,
) -> Result<(), HandlerError> {
    let key = revision::packing_list_key(list.revision);
    answer_fact(conn, message, &list.order_id, &ready_event(list), &key).await
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), revision = command.revision))]
pub(super) async fn prepare_packing(
    conn: &mut PgConnection,
    message: &Incoming,
    command: PreparePacking,
) -> Result<(), HandlerError> {
    let order = validate::order(command.order.as_ref(), "order").map_err(invalid)?;
    let order_id = message.order_id_or(&order.order_id)?;
    let revision = revision::of_command(command.revision, "revision").map_err(invalid)?;
    store::lock_order(conn, &order_id).await?;

    if let Some(current) = packing_lists::current(conn, &order_id).await? {
        match revision::action(revision, current.revision) {
            Action::Build => {
                tracing::info!(
                    superseded = current.revision,
                    "amended order, packing it again"
                );
            }
            Action::Repeat => {
                tracing::info!(
                    cartons = current.cartons.len(),
                    "packing list exists, answering it again"
                );
                return answer_ready(conn, message, &current).await;
            }
            Action::AnswerCurrent => {
                tracing::info!(
                    current = current.revision,
                    "superseded revision, answering the current packing list"
                );
                return answer_ready(conn, message, &current).await;
            }
        }
    }

    let failed = |reason: String| PackingListFailed {
        order_id: order_id.clone(),
        reason,
    };
    let spec = catalog::spec_of_customer(conn, &order.customer_id, &order.customer).await?;
    let Some(mut spec) = spec else {
        tracing::warn!(customer = %order.customer, "no packing spec for the customer");
        let event = failed(no_spec(&order));
        return answer(conn, message, &order_id, &event).await;
    };
    // The marks name the customer as the customer reads it, not its code.
    spec.customer = order.customer.clone();
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
        revision,
        customer: spec.customer.clone(),
        requirements: packing::Requirements {
            barcode: spec.barcode,
            max_gross_weight_kg: spec.max_gross_weight_kg,
        },
        carton_tare_kg: spec.carton_tare_kg,
        status: packing_lists::LIST_PREPARED.to_owned(),
        cartons,
    };
    packing_lists::insert(conn, &list).await?;
    tracing::info!(cartons = list.cartons.len(), "packing list prepared");
    answer_ready(conn, message, &list).await
}
