//! The saga's `CloseCostLedger` (dispatched by [`crate::commands`]):
//! announces the ledger's final figures ([`ledger::closed`]; zeros with the
//! order id when nothing was ever booked) as `CostLedgerClosed`, once per
//! order. The figures are stored (`cost_ledger_closings`) and a re-sent
//! command announces them again under the same event id. It first waits (a
//! retried delivery) until the costs consumer has handled the events stream
//! as far as the saga had seen it, so no cost of the order is still on its
//! way ([`costs_caught_up`]). A cost booked after the closing reaches the
//! ledger (`GetCostLedger`) but not the closing figures, nor the order's
//! summary made from them.

use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing, outbox};
use gendan_proto::v1::{CloseCostLedger, CostLedgerClosed};
use prost::Message as _;
use sqlx::PgConnection;

use crate::{SERVICE, ledger, receivables};

/// `CloseCostLedger` (see the module doc).
#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
pub async fn close_cost_ledger(
    conn: &mut PgConnection,
    message: &Incoming,
    command: CloseCostLedger,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let cause = Cause::from_incoming(message);
    // Figures read while no cost or amendment of the order is half-applied.
    receivables::lock_order(conn, &order_id).await?;
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT closing FROM cost_ledger_closings WHERE order_id = $1")
            .bind(&order_id)
            .fetch_optional(&mut *conn)
            .await?;
    let closed = match stored {
        Some(bytes) => CostLedgerClosed::decode(bytes.as_slice()).map_err(|err| {
            HandlerError::Rejected(format!(
                "stored closing of order {order_id} does not decode: {err}"
            ))
        })?,
        None => {
            let caught_up = costs_caught_up(conn, command.events_through).await?;
            if !caught_up && message.delivered < CATCH_UP_DELIVERIES {
                return Err(HandlerError::Retry(format!(
                    "the cost ledger of order {order_id} has not seen every cost yet"
                )));
            }
            let closed = match ledger::ledger(conn, &order_id).await? {
                Some(current) => ledger::closed(&current),
                None => CostLedgerClosed {
                    order_id: order_id.clone(),
                    ..Default::default()
                },
            };
            sqlx::query("INSERT INTO cost_ledger_closings (order_id, closing) VALUES ($1, $2)")
                .bind(&order_id)
                .bind(closed.encode_to_vec())
                .execute(&mut *conn)
                .await?;
            tracing::info!(
                budget_minor = closed.budget_minor,
                actual_minor = closed.actual_minor,
                unconverted = closed.unconverted.len(),
                "cost ledger closed"
            );
            closed
        }
    };
    outbox::write(
        conn,
        &[Outgoing::fact(
            SERVICE,
            &order_id,
            &closed,
            &cause,
            "ledger_closed",
        )],
    )
    .await?;
    Ok(())
}

/// The delivery of `CloseCostLedger` on which the ledger is closed even
/// though the costs consumer has not shown it caught up: the consumer's
/// backoff gives it about half a minute, and a closing must never be
/// dead-lettered for want of it.
const CATCH_UP_DELIVERIES: u64 = 5;

/// Whether the costs consumer (`finance-costs`) has handled the events
/// stream up to `events_through`, the last event the saga had seen of the
/// order: its costs came before, so they are booked. The two consumers run
/// side by side, and under load the costs one can lag behind the commands
/// one.
async fn costs_caught_up(conn: &mut PgConnection, events_through: u64) -> sqlx::Result<bool> {
    if events_through == 0 {
        return Ok(true);
    }
    let handled = gendan_messaging::consumer::progress(conn, crate::COSTS_CONSUMER).await?;
    Ok(handled >= events_through)
}
