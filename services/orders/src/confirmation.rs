//! `ConfirmOrder`: the promised delivery date, one revision at a time.
//!
//! The saga confirms an order once it is reviewed (revision 1, which a 0
//! also means) and again, with the next revision and a new promised date, after each
//! amendment it reviewed ([`crate::amendments`]). The order keeps the
//! highest revision confirmed and its date ([`confirm`], under the row
//! lock its UPDATE takes, in whatever phase the order is: the saga walks an
//! amended order back to review and forward again while it reviews). The
//! answer is `OrderConfirmed` with the revision and date stored, announced
//! as a fact keyed by the order and that revision: a re-sent command of a
//! revision already confirmed, or of an older one, answers with the stored
//! revision's very event (same id, same payload), so every inbox drops the
//! repeat. A confirmation after an amendment tells the customer the new
//! date and why ([`crate::notices`]).

use chrono::NaiveDate;
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing, outbox};
use gendan_proto::date_to_string;
use gendan_proto::v1::{ConfirmOrder, OrderConfirmed};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{SERVICE, notices, timeline};

/// The revision and promised date an order holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmed {
    pub revision: u32,
    pub promised: NaiveDate,
}

/// What confirming found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// This revision was confirmed now with its promised date.
    Confirmed(Confirmed),
    /// The order holds this revision already, or a later one: the stored
    /// one, to be announced again unchanged.
    AlreadyConfirmed(Confirmed),
    UnknownOrder,
    /// A closed order that was never confirmed (it takes no writes).
    ClosedUnconfirmed,
}

/// The fact key of the confirmation of `revision`.
pub fn fact_key(order_id: Uuid, revision: u32) -> String {
    format!("confirmation:{order_id}:{revision}")
}

/// Handles `ConfirmOrder`: see the module documentation.
#[tracing::instrument(skip_all, fields(order_id = %message.order_id()), err(level = "debug"))]
pub async fn confirm_order(
    conn: &mut PgConnection,
    message: &Incoming,
) -> Result<(), HandlerError> {
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
    if i32::try_from(command.revision).is_err() {
        return Err(HandlerError::Rejected(format!(
            "ConfirmOrder for order {order_id}: invalid revision: {} is not a revision number",
            command.revision
        )));
    }
    let revision = command.revision.max(1);

    let stored = match confirm(conn, order_id, revision, promised).await? {
        Confirmation::Confirmed(stored) => stored,
        Confirmation::AlreadyConfirmed(stored) => {
            tracing::debug!(
                revision,
                stored = stored.revision,
                promised = %stored.promised,
                "already confirmed, re-announcing"
            );
            stored
        }
        Confirmation::UnknownOrder => {
            return Err(HandlerError::Rejected(format!(
                "ConfirmOrder for unknown order {order_id}"
            )));
        }
        Confirmation::ClosedUnconfirmed => {
            return Err(HandlerError::Rejected(format!(
                "ConfirmOrder for order {order_id}: closed without ever being confirmed"
            )));
        }
    };

    let order_id_text = order_id.to_string();
    let cause = Cause::from_incoming(message);
    let event = Outgoing::fact(
        SERVICE,
        &order_id_text,
        &OrderConfirmed {
            order_id: order_id_text.clone(),
            promised_delivery_date: date_to_string(stored.promised),
            revision: stored.revision,
        },
        &cause,
        &fact_key(order_id, stored.revision),
    );
    outbox::write(conn, std::slice::from_ref(&event)).await?;
    timeline::append_own(conn, order_id, &event).await?;
    // A first confirmation is told by the phase notice; one after an
    // amendment once per fact (the notice is keyed by the event id, which a
    // repeat shares).
    if stored.revision > 1 {
        notices::on_event(conn, order_id, &event.envelope, &cause).await?;
    }
    Ok(())
}

/// Records `revision` with its promised date when it is later than the one
/// the order holds; otherwise reports what is stored, so the caller can
/// re-announce it unchanged. A closed order takes no writes.
pub async fn confirm(
    conn: &mut PgConnection,
    order_id: Uuid,
    revision: u32,
    promised: NaiveDate,
) -> sqlx::Result<Confirmation> {
    let revision_number = i32::try_from(revision).unwrap_or(i32::MAX);
    let confirmed: Option<(Option<NaiveDate>, i32)> = sqlx::query_as(
        "UPDATE orders SET promised_delivery_date = $2, confirmed_revision = $3, \
             confirmed_at = COALESCE(confirmed_at, now()), updated_at = now() \
         WHERE order_id = $1 AND confirmed_revision < $3 AND closed_at IS NULL \
         RETURNING promised_delivery_date, confirmed_revision",
    )
    .bind(order_id)
    .bind(promised)
    .bind(revision_number)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((Some(date), stored_revision)) = confirmed {
        return Ok(Confirmation::Confirmed(Confirmed {
            revision: revision_of(stored_revision),
            promised: date,
        }));
    }
    let stored: Option<(Option<NaiveDate>, i32)> = sqlx::query_as(
        "SELECT promised_delivery_date, confirmed_revision FROM orders WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match stored {
        None => Confirmation::UnknownOrder,
        Some((Some(date), stored_revision)) if stored_revision > 0 => {
            Confirmation::AlreadyConfirmed(Confirmed {
                revision: revision_of(stored_revision),
                promised: date,
            })
        }
        Some(_) => Confirmation::ClosedUnconfirmed,
    })
}

fn revision_of(stored: i32) -> u32 {
    // Written from a u32 ≥ 1 and checked non-negative by the table.
    u32::try_from(stored).unwrap_or(1).max(1)
}
