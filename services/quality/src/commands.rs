//! Saga commands to quality (`gendan.cmd.quality.*`).
//!
//! `RequestFinalInspection` opens the final inspection of an order's
//! finished goods: the lot is the sum of the quantities, each defect class
//! gets its sampling plan from the strictest plan of the order's products,
//! drawn at the strictest switching state of those products (normal or
//! tightened, ISO 2859-1 clause 9; see [`crate::switching`]), at the
//! customer's `inspection_level` (Table I; unset: general level II) and,
//! for major defects, at the customer's `major_aql` when it names one (an
//! unknown level or an AQL that is not a column of the tables is rejected
//! to the dead-letter subject, the field named). The command's
//! `revision` numbers the order's final inspections (1 the first, 2 after
//! the first rework, ...; 0 is read as 1), and the key is order + revision:
//!
//! | stored final inspection of this order and revision | what a request does |
//! | --- | --- |
//! | none | opens it (even if an earlier revision failed, or is still open), answers `FinalInspectionOpened` with the revision and severity |
//! | open | answers the same `FinalInspectionOpened` again |
//! | passed | answers `FinalInspectionPassed` again: the answer may have been lost |
//! | failed | answers the same `FinalInspectionFailed` again (nonconformance, failures up to this revision, defective units) |
//!
//! So a re-sent command never opens a second inspection (its items are not
//! compared: the stored inspection is the answer), and a re-inspection after
//! rework needs a new revision. An earlier revision still open when a
//! later one arrives stays open, and its result is still announced with its
//! own revision. The result of an inspection opened here is announced when
//! QA records it ([`crate::inspections::record`]), from the same stored row
//! these answers are read from.
//!
//! Requests for one order are serialised by a transaction-scoped advisory
//! lock ([`final_inspection::lock_order`]), so two replicas cannot open two
//! inspections for it; a unique index on (order, revision) backs this up.
//!
//! `EstimateInspection` (the review's cost estimate) answers
//! `InspectionEstimated` with the units that final inspection would sample
//! for the order's items as they stand: the same lot, plans, level, AQL
//! and switching state as `RequestFinalInspection` now, but nothing is
//! stored or opened and no lock is taken, so a re-sent command simply
//! answers again (under a new event id, from the products' state then). A
//! malformed one (no items, an unknown level, an AQL not in the tables) is
//! rejected the same way, the field named. See [`crate::estimate`].
//!
//! `RestateFact` (the saga's wait for `FinalInspectionPassed` is overdue)
//! announces the result of that revision again as the same fact, or reports
//! where the inspection stands: see [`crate::restate`].

use gendan_grpc::FieldError;
use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming};
use gendan_proto::v1::{EstimateInspection, RequestFinalInspection, RestateFact};
use sqlx::PgConnection;

use crate::final_inspection::{self, Request};
use crate::{Error, SERVICE, estimate, restate, validate};

/// Handles `gendan.cmd.quality.*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandHandler;

impl Handler for CommandHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<RequestFinalInspection>() {
            return request_final_inspection(conn, message, message.payload()?).await;
        }
        if message.is::<EstimateInspection>() {
            return estimate::estimate_inspection(conn, message, message.payload()?).await;
        }
        if message.is::<RestateFact>() {
            return restate::restate_fact(conn, message, message.payload()?).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown command type {:?} for {SERVICE}",
            message.type_name()
        )))
    }
}

/// The command checked, or why it can never be carried out.
fn checked(order_id: String, command: &RequestFinalInspection) -> Result<Request, Error> {
    let (items, lot_size) = validate::items(&command.items, "items")?;
    // Stored as a Postgres integer.
    if i32::try_from(command.revision).is_err() {
        return Err(FieldError::new("revision", "is too large").into());
    }
    let level = validate::inspection_level(command.inspection_level, "inspection_level")?;
    let major_aql = validate::major_aql(command.major_aql, "major_aql")?;
    Ok(Request {
        order_id,
        revision: command.revision.max(1),
        items,
        lot_size,
        level,
        major_aql,
    })
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), revision = command.revision))]
async fn request_final_inspection(
    conn: &mut PgConnection,
    message: &Incoming,
    command: RequestFinalInspection,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let request = checked(order_id, &command)?;
    final_inspection::lock_order(conn, &request.order_id).await?;

    let cause = Cause::from_incoming(message);
    let event = match final_inspection::find(conn, &request.order_id, request.revision).await? {
        Some(stored) => {
            tracing::info!(
                inspection_id = %stored.inspection_id,
                status = %stored.status,
                "final inspection of this revision already stored, answering from it"
            );
            final_inspection::answer(conn, &stored, &cause).await?
        }
        None => {
            let opened = final_inspection::open(conn, &request, message).await?;
            tracing::info!(
                inspection_id = %opened.inspection_id,
                lot_size = request.lot_size,
                code_letter = %opened.code_letter,
                sample_size = opened.sample_size,
                severity = %opened.severity,
                "final inspection opened"
            );
            final_inspection::opened_fact(&opened, &cause)
        }
    };
    outbox::write(conn, &[event]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use gendan_proto::v1::{InspectionLevel, ProductQuantity};

    use super::*;
    use crate::sampling::{Aql, Level};

    fn command(revision: u32) -> RequestFinalInspection {
        RequestFinalInspection {
            order_id: "o-1".to_owned(),
            items: vec![
                ProductQuantity {
                    product: "mug".to_owned(),
                    quantity: 300,
                },
                ProductQuantity {
                    product: "cup".to_owned(),
                    quantity: 200,
                },
            ],
            revision,
            ..Default::default()
        }
    }

    #[test]
    fn the_customer_level_and_aql_are_read_and_checked() {
        let mut asked = command(1);
        asked.inspection_level = InspectionLevel::GeneralIii as i32;
        asked.major_aql = Some(1.0);
        let request = checked("o-1".to_owned(), &asked).unwrap();
        assert_eq!(request.level, Level::III);
        assert_eq!(request.major_aql, Aql::from_percent(1.0));
        assert_eq!(
            checked("o-1".to_owned(), &command(1)).unwrap().level,
            Level::II
        );
        asked.major_aql = Some(3.3);
        let err = checked("o-1".to_owned(), &asked).unwrap_err();
        assert!(err.to_string().contains("invalid major_aql"), "{err}");
        asked.major_aql = None;
        asked.inspection_level = 9;
        let err = checked("o-1".to_owned(), &asked).unwrap_err();
        assert!(
            err.to_string().contains("invalid inspection_level"),
            "{err}"
        );
    }

    #[test]
    fn revision_zero_is_the_first() {
        let first = checked("o-1".to_owned(), &command(0)).unwrap();
        assert_eq!((first.revision, first.lot_size), (1, 500));
        assert_eq!(checked("o-1".to_owned(), &command(3)).unwrap().revision, 3);
    }

    #[test]
    fn a_revision_beyond_the_store_is_refused() {
        let err = checked("o-1".to_owned(), &command(u32::MAX)).unwrap_err();
        assert_eq!(err.to_string(), "invalid revision: is too large");
    }
}
