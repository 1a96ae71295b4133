//! What happens to a late purchase order (see [`chasing`](crate::chasing)):
//! the saga either re-sources it from another supplier
//! (`ResourceMaterials`) or accepts the supplier's new date
//! (`AcceptSupplierDelay`). Both, and the gRPC `ConfirmPurchaseOrder`,
//! announce `MaterialsDelayed` through [`announce_moved_dates`] to the
//! orders whose material date moved.
//!
//! Re-sourcing orders the late PO's open quantity (ordered and neither
//! accepted nor rejected) from the best offer of any other supplier, by the
//! rule purchasing uses ([`netting::best_offer_except`]), at least that
//! supplier's MOQ; moves what each order still expects from the late PO
//! onto the new one (the orders served by the late PO are served by the
//! new one, in the same allocation order); and cancels the late PO,
//! recording the new one in `resourced_by`, the command's idempotency key.
//! It is refused with a `problem` (nothing changed) when the PO is no longer
//! open, a lot of it still waits for incoming inspection (its result decides
//! what is missing), or nobody else offers the material.
//!
//! Accepting a delay moves the PO's expected date (and its confirmed ETA
//! when it has one). The chase of the new date is armed by the date itself:
//! chases are keyed by the date missed.

use chrono::NaiveDate;
use gendan_grpc::FieldError;
use gendan_messaging::outbox;
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing};
use gendan_proto::date_to_string;
use gendan_proto::v1::{
    AcceptSupplierDelay, MaterialsDelayed, MaterialsResourced, ResourceMaterials,
    SupplierDelayAccepted,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::clock::Calendar;
use crate::netting::{self, Milli, Purchase};
use crate::purchasing::{self, PoRow};
use crate::{Error, Result, SERVICE, catalog, locks, milli_to_f64, validate};

/// Orders still waiting on purchase order `po_id` (placed for `own_order`):
/// its own order and every order with an allocation on it not yet received,
/// in allocation order, among those whose materials are still `ordered`.
/// The candidates come from the PO's allocations, each order then looked
/// up by id: no pass over every order in `ordered`.
pub(crate) async fn waiting_orders(
    conn: &mut PgConnection,
    po_id: Uuid,
    own_order: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT r.order_id FROM procurements r \
         WHERE r.status = 'ordered' AND r.order_id IN ( \
           SELECT $2::text \
           UNION ALL SELECT a.order_id FROM po_allocations a \
           WHERE a.po_id = $1 AND a.received_milli < a.quantity_milli) \
         ORDER BY r.order_id <> $2, \
           (SELECT min(a.seq) FROM po_allocations a \
            WHERE a.po_id = $1 AND a.order_id = r.order_id), r.order_id",
    )
    .bind(po_id)
    .bind(own_order)
    .fetch_all(conn)
    .await?)
}

/// Recomputes the expected ready date of each of `orders` and returns a
/// `MaterialsDelayed` (naming `po_id` and `reason`) for each whose date
/// moved; an order whose date stays put hears nothing.
///
/// An order's date is of all its POs, and news of a PO of another material
/// may be recomputing it at the same time under that material's lock: the
/// orders' rows are locked first, so the later of the two reads the
/// earlier one's PO as committed and writes the date last.
pub(crate) async fn announce_moved_dates(
    conn: &mut PgConnection,
    orders: &[String],
    po_id: Uuid,
    reason: &str,
    today: NaiveDate,
    cause: impl Fn(&str) -> Cause,
) -> Result<Vec<Outgoing>> {
    locks::lock_orders(conn, orders).await?;
    let mut events = Vec::new();
    for order_id in orders {
        let before: Option<NaiveDate> =
            sqlx::query_scalar("SELECT expected_ready_date FROM procurements WHERE order_id = $1")
                .bind(order_id)
                .fetch_optional(&mut *conn)
                .await?;
        let expected = purchasing::expected_ready_date(conn, order_id, today).await?;
        if before == Some(expected) {
            continue;
        }
        purchasing::set_expected_ready_date(conn, order_id, expected).await?;
        tracing::info!(%order_id, expected_ready_date = %expected, "material date moved");
        let delayed = MaterialsDelayed {
            order_id: order_id.clone(),
            purchase_order_id: po_id.to_string(),
            expected_ready_date: date_to_string(expected),
            reason: reason.to_owned(),
        };
        events.push(Outgoing::event(
            SERVICE,
            order_id,
            &delayed,
            &cause(order_id.as_str()),
        ));
    }
    Ok(events)
}

/// Events of a command join the workflow of each order they tell.
fn cause_for(message: &Incoming, order_id: &str) -> Cause {
    Cause {
        causation_id: message.envelope.event_id.clone(),
        correlation_id: order_id.to_owned(),
    }
}

/// The PO a command names, locked, and the PO that replaced it if it was
/// re-sourced. The command's order must be one the PO supplies (or, once
/// re-sourced, its replacement supplies: the late PO's allocations moved).
async fn commanded_po(
    conn: &mut PgConnection,
    po_id: Uuid,
    order_id: &str,
) -> Result<(PoRow, Option<Uuid>)> {
    let po = purchasing::find_po(conn, po_id, true)
        .await?
        .ok_or_else(|| {
            FieldError::new(
                "purchase_order_id",
                format!("unknown purchase order {po_id}"),
            )
        })?;
    let replacement: Option<Uuid> =
        sqlx::query_scalar("SELECT resourced_by FROM purchase_orders WHERE po_id = $1")
            .bind(po_id)
            .fetch_one(&mut *conn)
            .await?;
    let mut supplied = purchasing::orders_supplied_by(conn, &po).await?;
    if let Some(replacement) = replacement
        && let Some(new_po) = purchasing::find_po(conn, replacement, false).await?
    {
        supplied.extend(purchasing::orders_supplied_by(conn, &new_po).await?);
    }
    if !supplied
        .iter()
        .any(|supplied_order| supplied_order == order_id)
    {
        return Err(FieldError::new(
            "purchase_order_id",
            format!("purchase order {po_id} does not supply order {order_id}"),
        )
        .into());
    }
    Ok((po, replacement))
}

/// `MaterialsResourced` for a re-sourced PO, from what is stored.
async fn resourced_answer(
    conn: &mut PgConnection,
    order_id: &str,
    late: Uuid,
    replacement: Uuid,
) -> Result<MaterialsResourced> {
    let new_po = purchasing::find_po(conn, replacement, false)
        .await?
        .ok_or_else(|| Error::UnknownPurchaseOrder(replacement.to_string()))?;
    Ok(MaterialsResourced {
        order_id: order_id.to_owned(),
        cancelled_purchase_order_id: late.to_string(),
        new_purchase_order_id: new_po.po_id.to_string(),
        supplier: new_po.supplier.clone(),
        expected_date: date_to_string(new_po.expected()),
        problem: String::new(),
    })
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), purchase_order_id = %command.purchase_order_id))]
pub(crate) async fn resource_materials(
    conn: &mut PgConnection,
    message: &Incoming,
    command: ResourceMaterials,
    calendar: &Calendar,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let po_id =
        validate::uuid(&command.purchase_order_id, "purchase_order_id").map_err(Error::from)?;
    // Taken before the idempotency check so two replicas handling a
    // re-sent command at once cannot both buy. The replacement, the
    // allocations moved and the orders' dates are all of the late PO's
    // material.
    locks::lock_po_material(conn, po_id).await?;
    let (po, replacement) = commanded_po(conn, po_id, &order_id).await?;
    let cause = Cause::from_incoming(message);
    if let Some(replacement) = replacement {
        tracing::info!(%replacement, "already re-sourced, answering again");
        let answer = resourced_answer(conn, &order_id, po_id, replacement).await?;
        let key = format!("resourced:{po_id}");
        outbox::write(
            conn,
            &[Outgoing::fact(SERVICE, &order_id, &answer, &cause, &key)],
        )
        .await?;
        return Ok(());
    }
    let events = match resource(
        conn,
        message,
        &order_id,
        &po,
        command.reason.trim(),
        calendar,
    )
    .await
    {
        Ok(events) => events,
        // Only raised by the checks made before the first write.
        Err(Error::NotAllowed(problem)) => {
            tracing::warn!(%problem, "cannot re-source");
            let answer = MaterialsResourced {
                order_id: order_id.clone(),
                cancelled_purchase_order_id: String::new(),
                new_purchase_order_id: String::new(),
                supplier: String::new(),
                expected_date: String::new(),
                problem,
            };
            vec![Outgoing::event(SERVICE, &order_id, &answer, &cause)]
        }
        Err(err) => return Err(err.into()),
    };
    outbox::write(conn, &events).await?;
    Ok(())
}

/// Places the replacement, moves the allocations, cancels `po`; returns
/// the events to announce. `NotAllowed` before anything is written when it
/// cannot be done.
async fn resource(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    po: &PoRow,
    reason: &str,
    calendar: &Calendar,
) -> Result<Vec<Outgoing>> {
    if !po.is_open() {
        return Err(Error::NotAllowed(format!(
            "purchase order {} is {}; only an open purchase order can be re-sourced",
            po.po_id, po.status
        )));
    }
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM lots WHERE po_id = $1 AND status = 'pending'")
            .bind(po.po_id)
            .fetch_one(&mut *conn)
            .await?;
    if pending > 0 {
        return Err(Error::NotAllowed(format!(
            "{pending} lot(s) of purchase order {} wait for incoming inspection; \
             re-source once their result says what is missing",
            po.po_id
        )));
    }
    let open: Milli = po.quantity_milli - po.accepted_milli - po.rejected_milli;
    if open <= 0 {
        return Err(Error::NotAllowed(format!(
            "purchase order {} has nothing left to receive",
            po.po_id
        )));
    }
    let offers = catalog::offers(conn, std::slice::from_ref(&po.material)).await?;
    let Some(offer) = offers
        .get(&po.material)
        .and_then(|offers| netting::best_offer_except(offers, &po.supplier))
        .cloned()
    else {
        return Err(Error::NotAllowed(format!(
            "no supplier other than {} offers {:?}",
            po.supplier, po.material
        )));
    };

    let today = calendar.today();
    let purchase = Purchase {
        quantity: netting::order_quantity(open, offer.moq),
        expected: netting::after_days(today, offer.lead_time_days),
        offer,
    };
    let waiting = waiting_orders(conn, po.po_id, &po.order_id).await?;
    // The new PO is bought for the late PO's order while that order still
    // wants it; a cancelled order's PO kept open for others is bought
    // again for the order asking.
    let placed_for = if waiting.contains(&po.order_id) {
        po.order_id.clone()
    } else {
        order_id.to_owned()
    };
    // The first write: raises NotAllowed before inserting when the value
    // does not fit.
    let (new_po, placed) = purchasing::place_purchase_order(
        conn,
        &placed_for,
        &po.material,
        &purchase,
        Some(po.po_id),
        calendar.confirm_by(today),
    )
    .await?;
    let moved = move_outstanding(conn, po.po_id, new_po).await?;
    debug_assert!(moved.iter().map(|(_, quantity)| quantity).sum::<Milli>() <= open);
    sqlx::query(
        "UPDATE purchase_orders SET status = 'cancelled', resourced_by = $2, cancel_reason = $3 \
         WHERE po_id = $1",
    )
    .bind(po.po_id)
    .bind(new_po)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    tracing::info!(
        replacement = %new_po,
        supplier = %placed.supplier,
        quantity = placed.quantity,
        orders_moved = moved.len(),
        "late purchase order re-sourced"
    );

    let mut events = vec![Outgoing::event(
        SERVICE,
        &placed_for,
        &placed,
        &cause_for(message, &placed_for),
    )];
    let answer = resourced_answer(conn, order_id, po.po_id, new_po).await?;
    // The same fact as the answer to a repeat (above): one event id.
    let key = format!("resourced:{}", po.po_id);
    let cause = Cause::from_incoming(message);
    events.push(Outgoing::fact(SERVICE, order_id, &answer, &cause, &key));
    let why = format!(
        "purchase order {} from {} ({} {}) was late and is cancelled{}; re-ordered from {} \
         as purchase order {new_po}, expected {}",
        po.po_id,
        po.supplier,
        milli_to_f64(open),
        po.material,
        if reason.is_empty() {
            String::new()
        } else {
            format!(" ({reason})")
        },
        placed.supplier,
        placed.expected_date,
    );
    events.extend(
        announce_moved_dates(conn, &waiting, new_po, &why, today, |order| {
            cause_for(message, order)
        })
        .await?,
    );
    Ok(events)
}

/// Moves what each order still expects from PO `from` onto PO `to`, in
/// allocation order; what was received stays allocated on `from`. Returns
/// the quantities moved per order.
async fn move_outstanding(
    conn: &mut PgConnection,
    from: Uuid,
    to: Uuid,
) -> Result<Vec<(String, Milli)>> {
    let waiting: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT order_id, quantity_milli, received_milli FROM po_allocations \
         WHERE po_id = $1 AND received_milli < quantity_milli ORDER BY seq",
    )
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    let mut moved = Vec::with_capacity(waiting.len());
    for (order_id, quantity, received) in waiting {
        if received == 0 {
            sqlx::query("DELETE FROM po_allocations WHERE po_id = $1 AND order_id = $2")
                .bind(from)
                .bind(&order_id)
                .execute(&mut *conn)
                .await?;
        } else {
            sqlx::query(
                "UPDATE po_allocations SET quantity_milli = received_milli \
                 WHERE po_id = $1 AND order_id = $2",
            )
            .bind(from)
            .bind(&order_id)
            .execute(&mut *conn)
            .await?;
        }
        let outstanding = quantity - received;
        purchasing::allocate(conn, to, &order_id, outstanding).await?;
        moved.push((order_id, outstanding));
    }
    Ok(moved)
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), purchase_order_id = %command.purchase_order_id))]
pub(crate) async fn accept_supplier_delay(
    conn: &mut PgConnection,
    message: &Incoming,
    command: AcceptSupplierDelay,
    calendar: &Calendar,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let po_id =
        validate::uuid(&command.purchase_order_id, "purchase_order_id").map_err(Error::from)?;
    let new_date =
        validate::date(&command.new_expected_date, "new_expected_date").map_err(Error::from)?;
    locks::lock_po_material(conn, po_id).await?;
    let (po, _) = commanded_po(conn, po_id, &order_id).await?;
    let answer = SupplierDelayAccepted {
        order_id: order_id.clone(),
        purchase_order_id: po_id.to_string(),
        new_expected_date: date_to_string(new_date),
    };
    let cause = Cause::from_incoming(message);
    // Before the date check: a re-sent command may arrive after its date.
    if po.expected() == new_date {
        tracing::info!("delay already accepted, answering again");
        let key = format!("delay:{}:{new_date}", po.po_id);
        outbox::write(
            conn,
            &[Outgoing::fact(SERVICE, &order_id, &answer, &cause, &key)],
        )
        .await?;
        return Ok(());
    }
    let today = calendar.today();
    if new_date < today {
        return Err(Error::from(FieldError::new(
            "new_expected_date",
            format!("{new_date} is in the past (today is {today})"),
        ))
        .into());
    }
    if !po.is_open() {
        return Err(Error::NotAllowed(format!(
            "purchase order {po_id} is {}; only an open purchase order's date can move",
            po.status
        ))
        .into());
    }
    let previous = po.expected();
    // The confirmed ETA is what the PO is expected by when there is one.
    sqlx::query(
        "UPDATE purchase_orders SET expected_date = $2, \
           confirmed_eta = CASE WHEN confirmed_eta IS NULL THEN NULL ELSE $2 END \
         WHERE po_id = $1",
    )
    .bind(po_id)
    .bind(new_date)
    .execute(&mut *conn)
    .await?;
    tracing::info!(%previous, expected = %new_date, "supplier delay accepted");
    let why = format!(
        "delay of supplier {} on purchase order {} ({}) accepted: expected {new_date}, was {previous}",
        po.supplier, po.po_id, po.material
    );
    let orders = waiting_orders(conn, po.po_id, &po.order_id).await?;
    let key = format!("delay:{}:{new_date}", po.po_id);
    let mut events = vec![Outgoing::fact(SERVICE, &order_id, &answer, &cause, &key)];
    events.extend(
        announce_moved_dates(conn, &orders, po.po_id, &why, today, |order| {
            cause_for(message, order)
        })
        .await?,
    );
    outbox::write(conn, &events).await?;
    Ok(())
}
