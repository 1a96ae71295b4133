//! `PrepareDocuments`: the order's document set, by revision.
//!
//! A PrepareDocuments names its revision (0 or 1 = the first set; an order
//! amended before it ships is documented again with 2, 3, …) and carries
//! the order as it stands. The documents are built from that order, the
//! product master and the order's current packing list, then cross-checked
//! ([`documents`]). Against the order's current document set:
//!
//! | command revision | document set | answer |
//! | --- | --- | --- |
//! | any | none | builds, cross-checks and stores the set: `DocumentsReady` of the revision, or `DocumentsRejected` with every problem |
//! | a later one | any | prepares the documents again from the amended order and the current packing list; the earlier set is kept as `superseded`: `DocumentsReady` of the new revision, or `DocumentsRejected` |
//! | the current one | ready | `DocumentsReady` from the stored set |
//! | the current one | rejected | built and cross-checked again (master data may have been fixed), replacing the rejected set of that revision |
//! | an earlier one | any | the current set's answer, `DocumentsReady` or its `DocumentsRejected`: the saga has moved on |
//!
//! Both answers are facts: `DocumentsReady` of one set revision
//! ([`revision::documents_key`]), `DocumentsRejected` of one revision and
//! its problems ([`revision::documents_rejected_key`]). `DocumentsRejected`
//! has no revision field; its envelope's causation names the command, and
//! its event id the revision and problems it states.
//!
//! [`documents`]: crate::documents

use std::collections::{BTreeMap, HashMap};

use gendan_messaging::{HandlerError, Incoming};
use gendan_proto::v1::{DocumentsReady, DocumentsRejected, PrepareDocuments};
use sqlx::PgConnection;

use super::{answer_fact, invalid};
use crate::documents::{self, ProductData, StoredPacking};
use crate::revision::{self, Action};
use crate::store::document_sets::{self, Document, DocumentSet};
use crate::store::{self, packing_lists};
use crate::{catalog, validate};

/// The answer a stored set gives: `DocumentsReady` when it is ready,
/// `DocumentsRejected` with its problems otherwise.
async fn answer_set(
    conn: &mut PgConnection,
    message: &Incoming,
    set: DocumentSet,
) -> Result<(), HandlerError> {
    let order_id = set.order_id.clone();
    if set.status == document_sets::SET_READY {
        let event = DocumentsReady {
            order_id: order_id.clone(),
            documents: set.documents.into_iter().map(|d| d.name).collect(),
            revision: set.revision,
        };
        let key = revision::documents_key(set.revision);
        return answer_fact(conn, message, &order_id, &event, &key).await;
    }
    let key = revision::documents_rejected_key(set.revision, &set.problems);
    let event = DocumentsRejected {
        order_id: order_id.clone(),
        problems: set.problems,
    };
    answer_fact(conn, message, &order_id, &event, &key).await
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), revision = command.revision))]
pub(super) async fn prepare_documents(
    conn: &mut PgConnection,
    message: &Incoming,
    command: PrepareDocuments,
) -> Result<(), HandlerError> {
    let order = validate::order(command.order.as_ref(), "order").map_err(invalid)?;
    let order_id = message.order_id_or(&order.order_id)?;
    let revision = revision::of_command(command.revision, "revision").map_err(invalid)?;
    store::lock_order(conn, &order_id).await?;

    if let Some(current) = document_sets::current(conn, &order_id).await? {
        match revision::action(revision, current.revision) {
            Action::Build => {
                tracing::info!(
                    superseded = current.revision,
                    "amended order, preparing the documents again"
                );
            }
            Action::Repeat if current.status == document_sets::SET_READY => {
                tracing::info!("documents ready, answering again");
                return answer_set(conn, message, current).await;
            }
            Action::Repeat => {
                tracing::info!("documents were rejected, preparing them again");
            }
            Action::AnswerCurrent => {
                tracing::info!(
                    current = current.revision,
                    status = %current.status,
                    "superseded revision, answering the current documents"
                );
                return answer_set(conn, message, current).await;
            }
        }
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
    let list = packing_lists::weighed_current(conn, &order_id, &weights).await?;
    let packing_list_revision = list.as_ref().map(|list| list.revision);
    let packing = list.map(|list| StoredPacking {
        customer: list.customer,
        cartons: list.cartons,
    });
    let inspection_id = Some(command.inspection_id.as_str()).filter(|id| !id.trim().is_empty());
    let set = documents::build(&order, &products, packing.as_ref(), inspection_id);
    let problems = documents::cross_check(&set);

    let stored = DocumentSet {
        order_id: order_id.clone(),
        revision,
        status: if problems.is_empty() {
            document_sets::SET_READY
        } else {
            document_sets::SET_REJECTED
        }
        .to_owned(),
        export: order.export,
        problems: problems.iter().map(|p| p.text.clone()).collect(),
        packing_list_revision,
        documents: set
            .to_json()
            .into_iter()
            .map(|(name, content_json)| Document {
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
    document_sets::save(conn, &stored).await?;
    if problems.is_empty() {
        tracing::info!(
            documents = stored.documents.len(),
            ?packing_list_revision,
            "documents ready"
        );
    } else {
        tracing::warn!(problems = ?stored.problems, "documents rejected");
    }
    answer_set(conn, message, stored).await
}
