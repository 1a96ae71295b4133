//! `RestateFact` to orders (`gendan.cmd.orders.restate_fact`): the saga's
//! `customer_acceptance` step asks again every few days, because the
//! `OrderAccepted` it waits for may have been announced and lost (the
//! customer owns the wait, so the saga sets no deadline of its own).
//!
//! Contract:
//! - `awaited` must be `gendan.v1.OrderAccepted`, the one fact orders is
//!   asked for; another type, a malformed or unknown order id is rejected to
//!   the dead-letter subject with the reason ([`HandlerError::Rejected`]).
//!   `revision` is not read: an order is accepted once.
//! - Accepted: `OrderAccepted` again as [`acceptance::record`] first
//!   announced it (the fact [`acceptance::ACCEPTED`], same event id, the
//!   stored acceptor and note), which every consumer that had it drops.
//! - Otherwise `StatusReported` (a new observation, a new event id, also on
//!   the order's timeline) says where acceptance stands: the goods not yet
//!   delivered, claims open, or waiting for the customer.
//!
//! Runs under the order's row lock, like `AcceptOrder`, so an acceptance
//! meanwhile is either wholly seen or not at all. Nothing is changed but
//! the timeline line of a status.

use gendan_messaging::{Cause, HandlerError, Incoming, outbox};
use gendan_proto::TypeName;
use gendan_proto::v1::{OrderAccepted, Phase, RestateFact};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{SERVICE, acceptance, claims, store, timeline};

/// Answers the `RestateFact` in `message` (see the module's contract).
#[tracing::instrument(skip_all, fields(order_id = %message.order_id()), err(level = "debug"))]
pub async fn restate_fact(conn: &mut PgConnection, message: &Incoming) -> Result<(), HandlerError> {
    let command: RestateFact = message.payload()?;
    if command.awaited.trim() != OrderAccepted::TYPE_NAME {
        return Err(HandlerError::Rejected(format!(
            "RestateFact for order {:?}: invalid awaited: orders announces {}, not {:?}",
            command.order_id,
            OrderAccepted::TYPE_NAME,
            command.awaited
        )));
    }
    let order_id = Uuid::parse_str(&command.order_id).map_err(|_| {
        HandlerError::Rejected(format!(
            "RestateFact for malformed order id {:?}",
            command.order_id
        ))
    })?;
    let state = store::lock_state(conn, order_id).await?.ok_or_else(|| {
        HandlerError::Rejected(format!("RestateFact for unknown order {order_id}"))
    })?;
    let cause = Cause::from_incoming(message);
    let order_id_text = order_id.to_string();
    if let Some((accepted_by, note)) = store::acceptance(&mut *conn, order_id).await? {
        tracing::info!("accepted, announcing the fact again");
        let accepted = acceptance::accepted_fact(
            &OrderAccepted {
                order_id: order_id_text,
                accepted_by,
                note,
            },
            &cause,
        );
        outbox::write(conn, std::slice::from_ref(&accepted)).await?;
        return Ok(());
    }
    let open_claims = claims::store::list(&mut *conn, order_id)
        .await?
        .iter()
        .filter(|claim| claim.resolution.is_none())
        .count();
    let status = status(state.phase(), state.is_closed(), open_claims);
    let reported = gendan_messaging::restate::status_reported(
        SERVICE,
        &order_id_text,
        &command,
        status,
        &cause,
    );
    outbox::write(conn, std::slice::from_ref(&reported)).await?;
    timeline::append_own(conn, order_id, &reported).await?;
    Ok(())
}

/// Where the customer's acceptance stands, in a merchandiser's words.
fn status(phase: Phase, closed: bool, open_claims: usize) -> String {
    if closed {
        return format!(
            "order closed in phase {} without an acceptance",
            phase.short_name()
        );
    }
    if (phase as i32) < (Phase::Acceptance as i32) {
        return format!(
            "phase {}: the goods are not delivered yet",
            phase.short_name()
        );
    }
    match open_claims {
        0 => "delivered; waiting for the customer to accept (AcceptOrder)".to_owned(),
        1 => "1 claim open: accepted once it is resolved".to_owned(),
        n => format!("{n} claims open: accepted once they are resolved"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_says_what_acceptance_waits_for() {
        assert_eq!(
            status(Phase::Shipping, false, 0),
            "phase shipping: the goods are not delivered yet"
        );
        assert_eq!(
            status(Phase::Acceptance, false, 0),
            "delivered; waiting for the customer to accept (AcceptOrder)"
        );
        assert_eq!(
            status(Phase::Acceptance, false, 2),
            "2 claims open: accepted once they are resolved"
        );
    }
}
