//! The `orders-commands` consumer: saga commands addressed to orders.
//!
//! `ConfirmOrder` records the promised delivery date of its revision and
//! answers with `OrderConfirmed`, through the outbox in the batch
//! transaction ([`confirmation`]). The saga re-sends a command when its
//! reply is late, and the reply may have been the thing that got lost, so a
//! repeat does not fail or change anything: it re-announces the stored
//! confirmation as the same fact.
//!
//! `CloseOrder` computes the closing summary ([`closing`]) from the order
//! row and its timeline, stores it, moves the order to phase closed (it is
//! read-only from then on), tells the customer, and answers `OrderClosed`.
//! A repeat re-announces the stored summary unchanged. The summary's cost
//! figures are finance's `CostLedgerClosed`, which the saga passes in the
//! command (`ledger`).
//!
//! `ResolveClaim` records how a claim was resolved and answers
//! `ClaimResolved`; once no claim is open the order is accepted
//! ([`crate::claims::resolve`]).
//!
//! `RestateFact` asks for `OrderAccepted` again: the stored acceptance as
//! the same fact, or where acceptance stands ([`crate::restate`]).

use chrono::{SubsecRound, Utc};
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing, outbox};
use gendan_proto::TypeName;
use gendan_proto::v1::{
    CloseOrder, ConfirmOrder, OrderClosed, OrderSummary, ResolveClaim, RestateFact,
};
use prost::Message as _;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::SERVICE;
use crate::closing::{self, Facts};
use crate::store;
use crate::{claims, confirmation, notices, timeline};

/// Handler of the `orders-commands` consumer.
#[derive(Debug, Clone, Default)]
pub struct CommandHandler;

impl Handler for CommandHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        match message.type_name() {
            ConfirmOrder::TYPE_NAME => confirmation::confirm_order(conn, message).await,
            CloseOrder::TYPE_NAME => close_order(conn, message).await,
            ResolveClaim::TYPE_NAME => claims::resolve(conn, message).await,
            RestateFact::TYPE_NAME => crate::restate::restate_fact(conn, message).await,
            other => Err(HandlerError::Rejected(format!(
                "orders does not handle command {other}"
            ))),
        }
    }
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()), err(level = "debug"))]
async fn close_order(conn: &mut PgConnection, message: &Incoming) -> Result<(), HandlerError> {
    let command: CloseOrder = message.payload()?;
    let order_id = Uuid::parse_str(&command.order_id).map_err(|_| {
        HandlerError::Rejected(format!(
            "CloseOrder for malformed order id {:?}",
            command.order_id
        ))
    })?;
    let state = store::lock_state(conn, order_id).await?.ok_or_else(|| {
        HandlerError::Rejected(format!("CloseOrder for unknown order {order_id}"))
    })?;

    let (summary, closed_now) = match &state.summary {
        Some(stored) => {
            tracing::debug!("already closed, re-announcing the stored summary");
            let summary = OrderSummary::decode(stored.as_slice()).map_err(|err| {
                HandlerError::Rejected(format!(
                    "stored summary of order {order_id} does not decode: {err}"
                ))
            })?;
            (summary, false)
        }
        None => {
            let events = timeline::events(&mut *conn, order_id).await?;
            let facts = Facts {
                order_id: order_id.to_string(),
                currency: state.currency.clone(),
                received_on: state.created_at.date_naive(),
                requested_delivery_date: state.requested_delivery_date,
                promised_delivery_date: state.promised_delivery_date,
                ledger: command.ledger.clone(),
            };
            let closed_at = Utc::now().trunc_subsecs(6);
            let summary = closing::summarize(&facts, &events, closed_at);
            store::close(conn, order_id, &summary.encode_to_vec(), closed_at).await?;
            (summary, true)
        }
    };

    let order_id_text = order_id.to_string();
    let cause = Cause::from_incoming(message);
    // Closed once: a re-sent CloseOrder announces the same fact, which
    // every inbox (the timeline's included) drops.
    let event = Outgoing::fact(
        SERVICE,
        &order_id_text,
        &OrderClosed {
            summary: Some(summary),
        },
        &cause,
        "closing",
    );
    outbox::write(conn, std::slice::from_ref(&event)).await?;
    timeline::append_own(conn, order_id, &event).await?;
    // The customer hears of the closing once, not on every re-announcement.
    if closed_now {
        notices::on_event(conn, order_id, &event.envelope, &cause).await?;
    }
    Ok(())
}
