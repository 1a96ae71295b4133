//! Saga commands to logistics (`gendan.cmd.logistics.*`). Each is idempotent
//! by order id: the order is locked, and a repeat answers from what is
//! stored instead of doing the work again. `QuoteFreight` stores nothing, so
//! a repeat simply answers again.
//!
//! | command | first time | repeated |
//! | --- | --- | --- |
//! | `PreparePacking` (revision 0 or 1) | builds and stores the packing list: `PackingListReady` with its revision; no spec for the customer or a carton over the weight limit: `PackingListFailed` (nothing stored) | `PackingListReady` from the stored list; after a failure it tries again |
//! | `PreparePacking` (a later revision: an amended order) | builds the list again from the amended order, the earlier list kept as superseded: `PackingListReady` of the new revision | as the first row; an earlier revision answers the current list; the rules per revision are in [`packing_list`] |
//! | `PrepareDocuments` (revision 0 or 1) | builds, cross-checks and stores the documents from the order and the current packing list: `DocumentsReady` with its revision, or `DocumentsRejected` with every problem | a ready set answers `DocumentsReady` again; a rejected set is rebuilt (master data may have been fixed) |
//! | `PrepareDocuments` (a later revision: an amended order) | prepares the documents again from the amended order and the current packing list, the earlier set kept as superseded: `DocumentsReady` of the new revision or `DocumentsRejected` | as the first row; an earlier revision answers the current set; the rules per revision are in [`document_set`] |
//! | `BookShipment` (revision 0 or 1) | picks a lane for the current packing list's cartons and weight and stores the booking: `ShipmentBooked`; nothing bookable: `ShipmentBookingFailed` | the same revision: `ShipmentBooked` from the stored booking (same reference, ETD, ETA); a cancelled shipment answers `ShipmentBookingFailed` |
//! | `BookShipment` (a later revision: a re-booking after a missed ETD) | cancels the earlier booking if it has not shipped (kept on record) and books again from the ready date or today, whichever is later: `ShipmentBooked` with the revision | as the first row; the rules per revision are in [`shipment`] |
//! | `BookShipment` (a later revision with `redelivery`: a replacement or reworked goods for a customer's claim) | books the claimed goods (the current packing list, the redelivery's) as the order's new current shipment whatever became of the earlier one, which stays on record: `ShipmentBooked` of the revision with a new booking reference; warehouse and carrier reports then apply to it | the same revision: `ShipmentBooked` from the stored booking; the rules per revision are in [`shipment`] |
//! | `QuoteFreight` (the review) | stores nothing: packs the order's goods on paper by the customer's packing spec and the products' weights, prices the lane a booking would choose from the ready date to `deliver_by` (or the order's requested delivery date) and answers `FreightQuoted` with the lane and its freight; no spec, no weight, no lane that can be priced: `FreightQuoted` with 0 in the order's currency and the `problem` (never a dead letter: the estimate goes on without freight); the rules are in [`quote`] | quotes again from the master data as it is then |
//! | `CancelShipment` | cancels a booking not yet shipped: `ShipmentCancelled` (also when nothing was booked) | `ShipmentCancelled` again; once shipped the command is rejected (dead letter with the reason) |
//! | `RestateFact` (a waiting step's deadline passed) | stores nothing: the awaited `Shipped`, `Delivered` or `PackingChecked` again under its first event id when logistics holds it, else `StatusReported` saying where things stand; the rules are in [`crate::restate`] | the same, from the record |
//!
//! A command that can never be handled (no order, an order without lines, a
//! ready date that is not a date, a revision that is not one) is rejected to
//! the dead-letter subject with the field named. Every answer is written to
//! the outbox on the consumer's connection, so it commits with the effect
//! and the inbox record.
//!
//! An answer that states a stored fact (a packing list, a document set or
//! a booking of one revision, goods shipped under a booking, a
//! cancellation) is written with
//! [`answer_fact`]: repeated from the record it keeps its event id, so no
//! consumer counts it twice. Only answers that store nothing
//! (`PackingListFailed`, `ShipmentBookingFailed`, `FreightQuoted`, a
//! `StatusReported`) get a new event id each time.

mod document_set;
mod packing_list;
mod quote;
mod shipment;

use std::sync::Arc;

use gendan_grpc::FieldError;
use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{
    BookShipment, CancelShipment, PrepareDocuments, PreparePacking, QuoteFreight, RestateFact,
};
use prost::Message;
use sqlx::PgConnection;

use crate::clock::Clock;
use crate::{Error, SERVICE};

/// Writes one answer event about `order_id`, caused by `message`.
pub(crate) async fn answer<M: Message + gendan_proto::TypeName>(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    event: &M,
) -> Result<(), HandlerError> {
    let outgoing = Outgoing::event(SERVICE, order_id, event, &Cause::from_incoming(message));
    outbox::write(conn, &[outgoing]).await?;
    Ok(())
}

/// Writes one answer that states a stored fact, named by `key`: announced
/// again (a re-sent command), it keeps its event id, so no consumer counts
/// it twice.
pub(crate) async fn answer_fact<M: Message + gendan_proto::TypeName>(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    event: &M,
    key: &str,
) -> Result<(), HandlerError> {
    let cause = Cause::from_incoming(message);
    let outgoing = Outgoing::fact(SERVICE, order_id, event, &cause, key);
    outbox::write(conn, &[outgoing]).await?;
    Ok(())
}

pub(crate) fn invalid(field: FieldError) -> HandlerError {
    Error::from(field).into()
}

/// Handles `gendan.cmd.logistics.*`.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    /// What "today" is for a re-booking and a freight quote.
    clock: Arc<dyn Clock>,
}

impl CommandHandler {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        CommandHandler { clock }
    }
}

impl Handler for CommandHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<PreparePacking>() {
            let command = message.payload()?;
            return packing_list::prepare_packing(conn, message, command).await;
        }
        if message.is::<PrepareDocuments>() {
            let command = message.payload()?;
            return document_set::prepare_documents(conn, message, command).await;
        }
        if message.is::<BookShipment>() {
            let command = message.payload()?;
            return shipment::book_shipment(conn, message, command, self.clock.as_ref()).await;
        }
        if message.is::<QuoteFreight>() {
            let command = message.payload()?;
            return quote::quote_freight(conn, message, command, self.clock.as_ref()).await;
        }
        if message.is::<CancelShipment>() {
            return shipment::cancel_shipment(conn, message, message.payload()?).await;
        }
        if message.is::<RestateFact>() {
            return crate::restate::restate_fact(conn, message, message.payload()?).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown command type {:?} for {SERVICE}",
            message.type_name()
        )))
    }
}
