//! AcceptOrder: the customer accepts the delivered goods.
//!
//! Acceptance is only possible while the order is in the acceptance phase
//! (the saga moves it there after delivery), once, never on a closed order,
//! and not while a claim on the goods is open ([`crate::claims`]: the order
//! is accepted by itself once its claims are resolved). The decision is
//! taken under the order's row lock, and the acceptance, its `OrderAccepted`
//! outbox row (the saga completes its acceptance step from it) and the
//! timeline entry are one transaction. [`record`] is that write, shared with
//! the acceptance that follows the last resolved claim, so both accept an
//! order the same way.

use chrono::{SubsecRound, Utc};
use gendan_messaging::{Cause, Outgoing, outbox};
use gendan_proto::v1::{AcceptOrderRequest, Order, OrderAccepted, Phase};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{Error, Result, SERVICE, claims, store, timeline, validate};

/// Records the acceptance `request` asks for and returns the order.
pub async fn accept(pool: &PgPool, request: &AcceptOrderRequest) -> Result<Order> {
    let acceptance = validate::acceptance(request)?;
    let order_id = acceptance.order_id;
    let mut tx = pool.begin().await?;
    let state = store::lock_state(&mut tx, order_id)
        .await?
        .ok_or_else(|| Error::OrderNotFound(order_id.to_string()))?;
    if let Some(closed_at) = state.closed_at {
        return Err(Error::FailedPrecondition(format!(
            "order {order_id} was closed on {} and is read-only",
            closed_at.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    if let Some(accepted_at) = state.accepted_at {
        return Err(Error::FailedPrecondition(format!(
            "order {order_id} was already accepted on {} by {}",
            accepted_at.format("%Y-%m-%d %H:%M UTC"),
            state.accepted_by.as_deref().unwrap_or("an unknown person")
        )));
    }
    if state.phase() != Phase::Acceptance {
        return Err(Error::FailedPrecondition(format!(
            "order {order_id} is in phase {}; goods can be accepted only in phase acceptance \
             (after delivery)",
            state.phase().short_name()
        )));
    }
    let open_claims = claims::store::open_count(&mut tx, order_id).await?;
    if open_claims > 0 {
        let open = if open_claims == 1 {
            "1 open claim".to_owned()
        } else {
            format!("{open_claims} open claims")
        };
        return Err(Error::FailedPrecondition(format!(
            "order {order_id} has {open}; it is accepted once they are resolved"
        )));
    }

    let order_id_text = order_id.to_string();
    record(
        &mut tx,
        order_id,
        &acceptance.accepted_by,
        &acceptance.note,
        &Cause::root(&order_id_text),
    )
    .await?;
    let order = store::get_order(&mut tx, order_id)
        .await?
        .ok_or_else(|| Error::Inconsistent(format!("order {order_id} vanished")))?;
    tx.commit().await?;
    tracing::debug!(%order_id, accepted_by = %acceptance.accepted_by, "order accepted");
    Ok(order)
}

/// The fact key of an order's `OrderAccepted`: an order is accepted once.
pub const ACCEPTED: &str = "accepted";

/// `OrderAccepted` under its fact id, the same however often it is
/// announced ([`crate::restate`] announces it again).
pub fn accepted_fact(accepted: &OrderAccepted, cause: &Cause) -> Outgoing {
    Outgoing::fact(SERVICE, &accepted.order_id, accepted, cause, ACCEPTED)
}

/// Records the acceptance and writes `OrderAccepted` to the outbox and the
/// timeline, on the caller's transaction. The caller holds the order's row
/// lock and has checked that the order may be accepted, so an order that
/// was accepted or closed meanwhile is a bug ([`Error::Inconsistent`]).
pub async fn record(
    conn: &mut PgConnection,
    order_id: Uuid,
    accepted_by: &str,
    note: &str,
    cause: &Cause,
) -> Result<()> {
    let now = Utc::now().trunc_subsecs(6);
    if !store::record_acceptance(conn, order_id, accepted_by, note, now).await? {
        return Err(Error::Inconsistent(format!(
            "order {order_id} changed under its row lock"
        )));
    }
    let order_id_text = order_id.to_string();
    let accepted = accepted_fact(
        &OrderAccepted {
            order_id: order_id_text.clone(),
            accepted_by: accepted_by.to_owned(),
            note: note.to_owned(),
        },
        cause,
    );
    outbox::write(conn, std::slice::from_ref(&accepted)).await?;
    timeline::append_own(conn, order_id, &accepted).await?;
    Ok(())
}
