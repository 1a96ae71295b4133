//! The `orders-commands` consumer: saga commands addressed to orders.
//!
//! `ConfirmOrder` records the promised delivery date and answers with
//! `OrderConfirmed`, through the outbox in the batch transaction. The saga
//! re-sends a command when its reply is late, and the reply may have been
//! the thing that got lost, so a repeat does not fail or change anything: it
//! re-announces the confirmation with the date stored the first time.

use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing, outbox};
use gendan_proto::v1::{ConfirmOrder, OrderConfirmed};
use gendan_proto::{TypeName, date_to_string};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::SERVICE;
use crate::store::{self, Confirmation};
use crate::timeline;

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
            ConfirmOrder::TYPE_NAME => confirm_order(conn, message).await,
            other => Err(HandlerError::Rejected(format!(
                "orders does not handle command {other}"
            ))),
        }
    }
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()), err(level = "debug"))]
async fn confirm_order(conn: &mut PgConnection, message: &Incoming) -> Result<(), HandlerError> {
    let command: ConfirmOrder = message.payload()?;
    let order_id = Uuid::parse_str(&command.order_id).map_err(|_| {
        HandlerError::Rejected(format!(
            "ConfirmOrder for malformed order id {:?}",
            command.order_id
        ))
    })?;
    let promised =
        gendan_proto::date_from_str(&command.promised_delivery_date).ok_or_else(|| {
            HandlerError::Rejected(format!(
                "ConfirmOrder with malformed promised_delivery_date {:?}",
                command.promised_delivery_date
            ))
        })?;

    let promised = match store::confirm(conn, order_id, promised).await? {
        Confirmation::Confirmed(date) => date,
        Confirmation::AlreadyConfirmed(date) => {
            tracing::debug!(promised = %date, "already confirmed, re-announcing");
            date
        }
        Confirmation::UnknownOrder => {
            return Err(HandlerError::Rejected(format!(
                "ConfirmOrder for unknown order {order_id}"
            )));
        }
    };

    let order_id_text = order_id.to_string();
    let event = Outgoing::event(
        SERVICE,
        &order_id_text,
        &OrderConfirmed {
            order_id: order_id_text.clone(),
            promised_delivery_date: date_to_string(promised),
        },
        &Cause::from_incoming(message),
    );
    outbox::write(conn, std::slice::from_ref(&event)).await?;
    timeline::append_own(conn, order_id, &event).await?;
    Ok(())
}
