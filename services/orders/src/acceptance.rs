//! AcceptOrder: the customer accepts the delivered goods.
//!
//! Acceptance is only possible while the order is in the acceptance phase
//! (the saga moves it there after delivery), once, and never on a closed
//! order. The decision is taken under the order's row lock, and the
//! acceptance, its `OrderAccepted` outbox row (the saga completes its
//! acceptance step from it) and the timeline entry are one transaction.

use chrono::{SubsecRound, Utc};
use gendan_messaging::{Cause, Outgoing, outbox};
use gendan_proto::v1::{AcceptOrderRequest, Order, OrderAccepted, Phase};
use sqlx::PgPool;

use crate::{Error, Result, SERVICE, store, timeline, validate};

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

    let now = Utc::now().trunc_subsecs(6);
    if !store::record_acceptance(
        &mut tx,
        order_id,
        &acceptance.accepted_by,
        &acceptance.note,
        now,
    )
    .await?
    {
        return Err(Error::Inconsistent(format!(
            "order {order_id} changed under its row lock"
        )));
    }
    let order_id_text = order_id.to_string();
    let accepted = Outgoing::event(
        SERVICE,
        &order_id_text,
        &OrderAccepted {
            order_id: order_id_text.clone(),
            accepted_by: acceptance.accepted_by.clone(),
            note: acceptance.note.clone(),
        },
        &Cause::root(&order_id_text),
    );
    outbox::write(&mut tx, std::slice::from_ref(&accepted)).await?;
    timeline::append_own(&mut tx, order_id, &accepted).await?;
    let order = store::get_order(&mut tx, order_id)
        .await?
        .ok_or_else(|| Error::Inconsistent(format!("order {order_id} vanished")))?;
    tx.commit().await?;
    tracing::debug!(%order_id, accepted_by = %acceptance.accepted_by, "order accepted");
    Ok(order)
}
