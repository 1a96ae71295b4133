//! Amendments of an order (DESIGN §2, "Amend"): the customer changes the
//! lines (quantity, spec, price, products added or removed) or the
//! requested delivery date, from intake until the goods ship; the saga
//! reviews the change again and every department adjusts its work.
//!
//! How data flows:
//! - [`amend`] (AmendOrder) checks the ids ([`validate::ids`]), takes the
//!   order's row lock, returns the first amendment again for a request id
//!   seen before on the order (an id used on another order is refused),
//!   checks the rest of the request ([`validate::request`]), refuses orders
//!   that shipped, were closed or cancelled, and refuses an amendment that
//!   changes nothing ([`changes`] puts what changes into words). Then, in
//!   one transaction: the amendment is stored with the order before and
//!   after it ([`store`] holds the SQL), the order gets its new lines,
//!   total and requested date, and `OrderAmended` (the order as amended and
//!   the amendment) is written to the outbox as a fact keyed by the order
//!   and the amendment's number, with its timeline entry and the customer's
//!   notice ([`notice`]).
//! - [`list`] (ListAmendments) reads them back, oldest first.
//! - The saga answers with `ConfirmOrder` of the next revision once it has
//!   reviewed the amendment ([`crate::confirmation`]); the customer is told
//!   the new date and why ([`notice`]), and the closing summary lists each
//!   amendment ([`closing`]).

pub mod changes;
pub mod closing;
pub mod notice;
pub mod store;
pub mod validate;

use chrono::{NaiveDate, SubsecRound, Utc};
use gendan_grpc::FieldError;
use gendan_messaging::{Cause, Outgoing, outbox};
use gendan_proto::v1::{AmendOrderRequest, Amendment, OrderAmended, OrderLine, Phase};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use self::store::{StoredAmendment, StoredLine};
use crate::store::OrderState;
use crate::{Error, Result, SERVICE, notices, timeline};

/// Makes the amendment `request` asks for and returns it; a request id seen
/// before on the order returns the amendment it made and writes nothing.
/// `today` is the earliest acceptable new requested date.
pub async fn amend(
    pool: &PgPool,
    request: &AmendOrderRequest,
    today: NaiveDate,
) -> Result<Amendment> {
    let (order_id, client_request_id) = validate::ids(request)?;
    let mut tx = pool.begin().await?;
    let state = crate::store::lock_state(&mut tx, order_id)
        .await?
        .ok_or_else(|| Error::OrderNotFound(order_id.to_string()))?;
    // Before the other checks: a retry finds its amendment even after the
    // order moved on or the date it asked for passed.
    if let Some(first) = store::by_request(&mut tx, order_id, &client_request_id).await? {
        tracing::debug!(number = first.number, "amendment request seen before");
        return Ok(first.to_amendment());
    }
    if let Some(other) =
        store::other_order_of_request(&mut tx, &client_request_id, order_id).await?
    {
        return Err(FieldError::new(
            "client_request_id",
            format!(
                "{client_request_id:?} was used for an amendment of order {other}; each \
                 amendment needs its own request id"
            ),
        )
        .into());
    }
    let new = validate::request(request, today)?;
    amendable(&state)?;

    let before = crate::store::get_order(&mut tx, order_id)
        .await?
        .ok_or_else(|| Error::Inconsistent(format!("order {order_id} vanished")))?;
    let lines_after = validate::order_lines_of(&new.lines);
    let furthest = state.furthest_phase;
    if furthest >= Phase::Shipping as i32 {
        // The phase walked back for a claim's redelivery: the order's goods
        // left all the same.
        return Err(Error::FailedPrecondition(format!(
            "order {order_id} was shipped (it is in phase {} for a claim's redelivery): \
             amendments are accepted until the goods ship",
            state.phase().short_name()
        )));
    }
    specs_still_open(furthest, &before.lines, &lines_after)?;
    let date_before = state.requested_delivery_date;
    let date_after = new.requested_delivery_date.unwrap_or(date_before);
    let changes = validate::changes(
        &before.lines,
        &lines_after,
        date_before,
        date_after,
        &state.currency,
    )?;

    let number = store::next_number(&mut tx, order_id).await?;
    let amended_at = Utc::now().trunc_subsecs(6);
    let stored = StoredAmendment {
        amendment_id: Uuid::now_v7(),
        order_id,
        number,
        client_request_id,
        reason: new.reason.clone(),
        requested_by: new.requested_by.clone(),
        phase: state.phase,
        lines_before: Json(before.lines.iter().map(StoredLine::of).collect()),
        lines_after: Json(lines_after.iter().map(StoredLine::of).collect()),
        requested_date_before: date_before,
        requested_date_after: date_after,
        total_before_minor: state.total_minor,
        total_after_minor: new.total_minor,
        changes,
        amended_at,
    };
    store::insert(&mut tx, &stored).await?;
    let applied = store::apply(
        &mut tx,
        order_id,
        &new.lines,
        new.total_minor,
        date_after,
        amended_at,
    )
    .await?;
    if !applied {
        return Err(Error::Inconsistent(format!(
            "order {order_id} changed under its row lock"
        )));
    }
    let order = crate::store::get_order(&mut tx, order_id)
        .await?
        .ok_or_else(|| Error::Inconsistent(format!("order {order_id} vanished")))?;

    let amendment = stored.to_amendment();
    let order_id_text = order_id.to_string();
    let cause = Cause::root(&order_id_text);
    let announced = Outgoing::fact(
        SERVICE,
        &order_id_text,
        &OrderAmended {
            order: Some(order),
            amendment: Some(amendment.clone()),
        },
        &cause,
        &fact_key(order_id, amendment.number),
    );
    outbox::write(&mut tx, std::slice::from_ref(&announced)).await?;
    timeline::append_own(&mut tx, order_id, &announced).await?;
    notices::on_event(&mut tx, order_id, &announced.envelope, &cause).await?;
    tx.commit().await?;
    tracing::debug!(%order_id, number = amendment.number, "order amended");
    Ok(amendment)
}

/// The fact key of the order's amendment `number`.
pub fn fact_key(order_id: Uuid, number: u32) -> String {
    format!("amendment:{order_id}:{number}")
}

/// An order can be amended from intake until its goods ship: phases
/// received to documents, not closed.
fn amendable(state: &OrderState) -> Result<()> {
    let order_id = state.order_id;
    if let Some(closed_at) = state.closed_at {
        return Err(Error::FailedPrecondition(format!(
            "order {order_id} was closed on {} and is read-only: amendments are accepted until \
             the goods ship",
            closed_at.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    let phase = state.phase();
    let open = matches!(
        phase,
        Phase::Received
            | Phase::Review
            | Phase::Confirmed
            | Phase::Materials
            | Phase::Production
            | Phase::FinalInspection
            | Phase::Packing
            | Phase::Documents
    );
    if !open {
        return Err(Error::FailedPrecondition(format!(
            "order {order_id} is in phase {}: amendments are accepted until the goods ship",
            phase.short_name()
        )));
    }
    Ok(())
}

/// Once production has begun, the goods are being made to the specs they
/// have: a spec of a line kept cannot change (the made units would be
/// counted as the new spec). A new line, a removed one or a quantity can.
fn specs_still_open(furthest_phase: i32, before: &[OrderLine], after: &[OrderLine]) -> Result<()> {
    if furthest_phase < Phase::Production as i32 {
        return Ok(());
    }
    for (index, line) in after.iter().enumerate() {
        let changed = before
            .iter()
            .any(|old| old.product == line.product && old.spec != line.spec);
        if changed {
            return Err(Error::FailedPrecondition(format!(
                "lines[{index}].spec: production of {} has begun to the spec it has; a spec \
                 cannot change once the goods are being made (remove the line and add a new \
                 product, or cancel the order)",
                line.product
            )));
        }
    }
    Ok(())
}

/// The order's amendments, oldest first.
pub async fn list(pool: &PgPool, order_id: &str) -> Result<Vec<Amendment>> {
    let id = crate::validate::order_id(order_id)?;
    if crate::store::state(pool, id).await?.is_none() {
        return Err(Error::OrderNotFound(order_id.to_owned()));
    }
    let amendments = store::list(pool, id).await?;
    Ok(amendments
        .iter()
        .map(StoredAmendment::to_amendment)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(phase: Phase) -> OrderState {
        OrderState {
            order_id: Uuid::nil(),
            customer: "Acme".to_owned(),
            currency: "USD".to_owned(),
            requested_delivery_date: NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
            promised_delivery_date: None,
            projected_delivery_date: None,
            phase: phase as i32,
            total_minor: 100_000,
            created_at: Utc::now(),
            accepted_at: None,
            accepted_by: None,
            closed_at: None,
            summary: None,
            furthest_phase: 0,
        }
    }

    #[test]
    fn amendments_are_accepted_until_the_goods_ship() {
        for phase in [
            Phase::Received,
            Phase::Review,
            Phase::Confirmed,
            Phase::Materials,
            Phase::Production,
            Phase::FinalInspection,
            Phase::Packing,
            Phase::Documents,
        ] {
            assert!(amendable(&state(phase)).is_ok(), "{phase:?}");
        }
        for phase in [
            Phase::Shipping,
            Phase::Acceptance,
            Phase::Settlement,
            Phase::Closed,
            Phase::Cancelled,
        ] {
            let err = amendable(&state(phase)).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("is in phase {}", phase.short_name())),
                "{err}"
            );
        }
        let mut closed = state(Phase::Production);
        closed.closed_at = Some(Utc::now());
        assert!(matches!(
            amendable(&closed),
            Err(Error::FailedPrecondition(_))
        ));
    }

    #[test]
    fn a_spec_is_frozen_once_production_has_begun() {
        let line = |spec: &str| OrderLine {
            product: "SHIRT".to_owned(),
            spec: spec.to_owned(),
            quantity: 10,
            unit_price_minor: 100,
        };
        let before = [line("blue")];
        let navy = [line("navy")];
        assert!(specs_still_open(Phase::Materials as i32, &before, &navy).is_ok());
        let err = specs_still_open(Phase::Production as i32, &before, &navy).unwrap_err();
        assert!(err.to_string().contains("lines[0].spec"), "{err}");
        // A quantity may still change, and a new product may come.
        let more = [OrderLine {
            quantity: 20,
            ..line("blue")
        }];
        assert!(specs_still_open(Phase::Packing as i32, &before, &more).is_ok());
    }
}
