//! `RestateFact` to procurement (`gendan.cmd.procurement.restate_fact`):
//! the saga's `materials_ready` step passed its deadline, and the
//! `MaterialsReady` it waits for may have been announced and lost.
//!
//! Contract:
//! - `awaited` must be `gendan.v1.MaterialsReady`, the one fact procurement
//!   is asked for; another type, or no order id, is rejected to the
//!   dead-letter subject with the field named ([`HandlerError::Rejected`]).
//! - The order's materials are `ready` at the applied revision and the
//!   command asks for that revision (`revision` 0: the latest):
//!   `MaterialsReady` is announced again as first announced, from the
//!   stored `ready_on` and revision by [`revisions::ready_fact`] (fact
//!   `materials_ready:<order>:<revision>`), so it keeps its event id and
//!   every consumer that had it drops it.
//! - Otherwise `StatusReported` (a new observation, a new event id) says
//!   where things stand, for a merchandiser: not procured yet, cancelled,
//!   another revision applied, or each purchase order the order still
//!   waits for (due and not confirmed, confirmed for a date, or received
//!   with a lot waiting for incoming inspection).
//!
//! Nothing is changed: the answer is the only write. It is read under the
//! locks of the materials the order holds ([`purchasing::lock_materials`]):
//! a PO's news changes its orders' readiness under its material's lock, so
//! readiness and the purchase orders behind it are one state, not two
//! moments. A material an amendment adds meanwhile is not waited for: the
//! amendment answers for itself.

use chrono::NaiveDate;
use gendan_grpc::FieldError;
use gendan_messaging::outbox;
use gendan_messaging::{Cause, HandlerError, Incoming};
use gendan_proto::TypeName;
use gendan_proto::date_to_string;
use gendan_proto::v1::{MaterialsReady, RestateFact};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::purchasing::{self, STATUS_CANCELLED, STATUS_READY};
use crate::{Error, Result, SERVICE, locks, revisions};

/// The order's procurement as stored.
#[derive(Debug, sqlx::FromRow)]
struct Procurement {
    status: String,
    revision: i32,
    ready_on: Option<NaiveDate>,
    expected_ready_date: NaiveDate,
    cancel_reason: Option<String>,
}

/// A purchase order the order still expects goods from, with its lots
/// received and not yet inspected.
#[derive(Debug, sqlx::FromRow)]
struct AwaitedPo {
    po_id: Uuid,
    material: String,
    supplier: String,
    expected_date: NaiveDate,
    confirmed_eta: Option<NaiveDate>,
    pending_lots: Vec<String>,
}

/// Answers `command` for the order it names (see the module's contract).
#[tracing::instrument(
    skip_all,
    fields(order_id = %message.order_id(), revision = command.revision)
)]
pub async fn restate_fact(
    conn: &mut PgConnection,
    message: &Incoming,
    command: RestateFact,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    if command.awaited.trim() != MaterialsReady::TYPE_NAME {
        let problem = format!(
            "procurement announces {}, not {:?}",
            MaterialsReady::TYPE_NAME,
            command.awaited
        );
        return Err(Error::from(FieldError::new("awaited", problem)).into());
    }
    let materials: Vec<String> = locks::held_materials(conn, &order_id)
        .await?
        .into_iter()
        .collect();
    purchasing::lock_materials(conn, &materials).await?;
    let procurement = load(conn, &order_id).await?;
    let cause = Cause::from_incoming(message);
    let held = procurement
        .as_ref()
        .and_then(|procurement| held_ready(&order_id, procurement, command.revision));
    let event = match held {
        Some(ready) => {
            tracing::info!("materials ready, announcing the fact again");
            revisions::ready_fact(&ready, &cause)
        }
        None => {
            let status = status(conn, &order_id, procurement.as_ref(), command.revision).await?;
            gendan_messaging::restate::status_reported(SERVICE, &order_id, &command, status, &cause)
        }
    };
    outbox::write(conn, &[event]).await?;
    Ok(())
}

/// The order's procurement, if it was procured (or cancelled before).
async fn load(conn: &mut PgConnection, order_id: &str) -> Result<Option<Procurement>> {
    Ok(sqlx::query_as(
        "SELECT status, revision, ready_on, expected_ready_date, cancel_reason \
         FROM procurements WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?)
}

/// `MaterialsReady` as first announced, when the order is ready at the
/// revision asked for (0: whichever is applied). Only the applied revision
/// can be ready: an amendment puts a ready order back to `ordered`.
fn held_ready(order_id: &str, procurement: &Procurement, requested: u32) -> Option<MaterialsReady> {
    let applied = revisions::from_db(procurement.revision);
    if procurement.status != STATUS_READY || (requested != 0 && requested != applied) {
        return None;
    }
    Some(MaterialsReady {
        order_id: order_id.to_owned(),
        ready_on: date_to_string(procurement.ready_on?),
        revision: applied,
    })
}

/// Where the order's materials stand, when the fact asked for is not held.
async fn status(
    conn: &mut PgConnection,
    order_id: &str,
    procurement: Option<&Procurement>,
    requested: u32,
) -> Result<String> {
    let Some(procurement) = procurement else {
        return Ok("materials not ordered yet: procurement has no record of the order".to_owned());
    };
    let applied = revisions::from_db(procurement.revision);
    let situation = if procurement.status == STATUS_CANCELLED {
        cancelled(procurement.cancel_reason.as_deref())
    } else if procurement.status == STATUS_READY {
        let ready_on = procurement.ready_on.map(date_to_string).unwrap_or_default();
        format!("materials of revision {applied} ready since {ready_on}")
    } else {
        let awaited = awaited_purchase_orders(conn, order_id).await?;
        waiting(&awaited, procurement.expected_ready_date)
    };
    Ok(match requested {
        0 => situation,
        asked if asked > applied => {
            format!("revision {asked} not received yet (revision {applied} applied); {situation}")
        }
        asked if asked < applied => {
            format!("revision {asked} superseded by revision {applied}; {situation}")
        }
        _ => situation,
    })
}

fn cancelled(reason: Option<&str>) -> String {
    match reason.map(str::trim).filter(|reason| !reason.is_empty()) {
        Some(reason) => format!("materials cancelled ({reason})"),
        None => "materials cancelled".to_owned(),
    }
}

/// The order's open purchase orders with an allocation not yet received
/// (those readiness waits for, as [`revisions::awaited_purchase_order_ids`]),
/// in placing order.
async fn awaited_purchase_orders(
    conn: &mut PgConnection,
    order_id: &str,
) -> Result<Vec<AwaitedPo>> {
    Ok(sqlx::query_as(
        "SELECT p.po_id, p.material, p.supplier, p.expected_date, p.confirmed_eta, \
           ARRAY(SELECT l.lot FROM lots l WHERE l.po_id = p.po_id AND l.status = 'pending' \
                 ORDER BY l.received_at, l.lot) AS pending_lots \
         FROM purchase_orders p \
         JOIN po_allocations a ON a.po_id = p.po_id AND a.order_id = $1 \
         WHERE p.status IN ('open', 'confirmed') AND a.received_milli < a.quantity_milli \
         ORDER BY p.created_at, p.po_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?)
}

/// What an order in `ordered` waits for: "waiting for 2 purchase orders:
/// …; …", or "materials received, …" once every awaited PO has goods at
/// the dock waiting for incoming inspection.
fn waiting(awaited: &[AwaitedPo], expected_ready_date: NaiveDate) -> String {
    if awaited.is_empty() {
        // Everything expected came in, yet a requirement is not covered
        // (a short delivery accepted, a requirement raised): a person looks.
        return format!(
            "materials not complete and no purchase order outstanding \
             (expected ready {expected_ready_date})"
        );
    }
    if awaited.iter().all(|po| !po.pending_lots.is_empty()) {
        let lots: Vec<String> = awaited
            .iter()
            .flat_map(|po| po.pending_lots.iter().cloned())
            .collect();
        return format!(
            "materials received, incoming inspection of {} pending",
            lots_text(&lots)
        );
    }
    let count = awaited.len();
    let noun = if count == 1 {
        "purchase order"
    } else {
        "purchase orders"
    };
    let each: Vec<String> = awaited.iter().map(purchase_order_text).collect();
    format!("waiting for {count} {noun}: {}", each.join("; "))
}

/// "PO <id> (fabric, FAST) due 2026-03-12 not confirmed", "… confirmed for
/// 2026-03-15", "… received, incoming inspection of lot L-1 pending".
fn purchase_order_text(po: &AwaitedPo) -> String {
    let name = format!("PO {} ({}, {})", po.po_id, po.material, po.supplier);
    if !po.pending_lots.is_empty() {
        return format!(
            "{name} received, incoming inspection of {} pending",
            lots_text(&po.pending_lots)
        );
    }
    match po.confirmed_eta {
        Some(eta) => format!("{name} confirmed for {}", date_to_string(eta)),
        None => format!(
            "{name} due {} not confirmed",
            date_to_string(po.expected_date)
        ),
    }
}

fn lots_text(lots: &[String]) -> String {
    match lots {
        [lot] => format!("lot {lot}"),
        lots => format!("lots {}", lots.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn po(confirmed_eta: Option<NaiveDate>, pending_lots: &[&str]) -> AwaitedPo {
        AwaitedPo {
            po_id: Uuid::nil(),
            material: "fabric".into(),
            supplier: "FAST".into(),
            expected_date: NaiveDate::from_ymd_opt(2026, 3, 12).unwrap(),
            confirmed_eta,
            pending_lots: pending_lots.iter().map(|lot| (*lot).to_owned()).collect(),
        }
    }

    #[test]
    fn the_status_names_each_purchase_order_awaited() {
        let expected = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
        let nil = Uuid::nil();
        assert_eq!(
            waiting(&[po(None, &[]), po(Some(expected), &[])], expected),
            format!(
                "waiting for 2 purchase orders: PO {nil} (fabric, FAST) due 2026-03-12 not \
                 confirmed; PO {nil} (fabric, FAST) confirmed for 2026-03-15"
            )
        );
        assert_eq!(
            waiting(&[po(None, &["L-1"])], expected),
            "materials received, incoming inspection of lot L-1 pending"
        );
        assert_eq!(
            waiting(&[po(None, &["L-1", "L-2"]), po(None, &[])], expected),
            format!(
                "waiting for 2 purchase orders: PO {nil} (fabric, FAST) received, incoming \
                 inspection of lots L-1, L-2 pending; PO {nil} (fabric, FAST) due 2026-03-12 \
                 not confirmed"
            )
        );
    }
}
