//! `RestateFact` to quality (`gendan.cmd.quality.restate_fact`): the saga's
//! wait for a final inspection to pass is past its deadline, and the result
//! may have been announced and lost on the bus. Quality answers from the
//! final inspection of `revision` (0: the order's latest):
//!
//! | that inspection | answer |
//! | --- | --- |
//! | passed | its `FinalInspectionPassed` again, the same payload under the fact key of its first announcement ([`final_inspection::result_key`]): the same event id, so whoever had it drops it |
//! | failed | its `FinalInspectionFailed` again, likewise (the wait ends on a failure too, and the failure may be what was lost), and `StatusReported`: "final inspection … (revision 2) failed on 2026-03-12 (3 defective units), rework under way" |
//! | open | `StatusReported`: "final inspection … (revision 2) opened on 2026-03-10, waiting for QA's result" |
//! | none | `StatusReported`: "no final inspection requested for revision 2" ("… requested yet" for the latest) |
//!
//! The facts are built by [`final_inspection::answer`], as when the result
//! was recorded. `StatusReported` is a new observation each time: a plain
//! event, a new event id. An `awaited` other than
//! `gendan.v1.FinalInspectionPassed` (quality announces no other fact a
//! saga waits for), an empty `order_id` or a revision beyond an integer can
//! never be answered: rejected (dead-lettered), naming the field.
//!
//! It takes the order's final inspection lock, as `RequestFinalInspection`
//! does ([`final_inspection::lock_order`]).

use gendan_grpc::FieldError;
use gendan_messaging::outbox;
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{FinalInspectionPassed, RestateFact};
use gendan_proto::{TypeName, date_to_string};
use sqlx::PgConnection;

use crate::final_inspection;
use crate::inspections::{Inspection, STATUS_FAILED, STATUS_PASSED};
use crate::{Error, SERVICE, validate};

/// What a `RestateFact` asks about, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Asked {
    order_id: String,
    /// `None`: the order's latest final inspection.
    revision: Option<u32>,
}

/// The command checked, or the field that makes it unanswerable.
fn checked(command: &RestateFact) -> Result<Asked, Error> {
    let order_id = validate::required_text(&command.order_id, "order_id")?;
    let awaited = command.awaited.trim();
    if awaited != FinalInspectionPassed::TYPE_NAME {
        let problem = format!(
            "{awaited:?} is not a fact quality announces for a waiting step (only {})",
            FinalInspectionPassed::TYPE_NAME
        );
        return Err(FieldError::new("awaited", problem).into());
    }
    // Stored as a Postgres integer.
    if i32::try_from(command.revision).is_err() {
        return Err(FieldError::new("revision", "is too large").into());
    }
    Ok(Asked {
        order_id,
        revision: (command.revision > 0).then_some(command.revision),
    })
}

/// Announces the inspection's result again, or says where it stands (see
/// the module doc).
#[tracing::instrument(skip_all, fields(order_id = %command.order_id, revision = command.revision))]
pub async fn restate_fact(
    conn: &mut PgConnection,
    message: &Incoming,
    command: RestateFact,
) -> Result<(), HandlerError> {
    let asked = checked(&command)?;
    final_inspection::lock_order(conn, &asked.order_id).await?;
    let inspection = match asked.revision {
        Some(revision) => final_inspection::find(conn, &asked.order_id, revision).await?,
        None => final_inspection::latest(conn, &asked.order_id).await?,
    };
    let cause = Cause::from_incoming(message);
    let events = match &inspection {
        Some(passed) if passed.status == STATUS_PASSED => {
            tracing::info!(inspection_id = %passed.inspection_id, "passed, announcing it again");
            vec![final_inspection::answer(conn, passed, &cause).await?]
        }
        Some(failed) if failed.status == STATUS_FAILED => {
            tracing::info!(inspection_id = %failed.inspection_id, "failed, announcing it again");
            vec![
                final_inspection::answer(conn, failed, &cause).await?,
                status_reported(&asked, &command, failed_status(failed), &cause),
            ]
        }
        Some(open) => vec![status_reported(&asked, &command, open_status(open), &cause)],
        None => vec![status_reported(
            &asked,
            &command,
            not_requested(asked.revision),
            &cause,
        )],
    };
    outbox::write(conn, &events).await?;
    Ok(())
}

/// `StatusReported` for the step that asked.
fn status_reported(
    asked: &Asked,
    command: &RestateFact,
    status: String,
    cause: &Cause,
) -> Outgoing {
    gendan_messaging::restate::status_reported(SERVICE, &asked.order_id, command, status, cause)
}

/// How a merchandiser names the inspection.
fn name(inspection: &Inspection) -> String {
    format!(
        "final inspection {} (revision {})",
        inspection.inspection_id, inspection.revision
    )
}

fn open_status(inspection: &Inspection) -> String {
    format!(
        "{} opened on {}, waiting for QA's result",
        name(inspection),
        date_to_string(inspection.opened_at.date_naive())
    )
}

fn failed_status(inspection: &Inspection) -> String {
    let on = inspection
        .recorded_at
        .map(|at| format!(" on {}", date_to_string(at.date_naive())))
        .unwrap_or_default();
    let defective = final_inspection::defective_units(&inspection.classes);
    format!(
        "{} failed{on} ({defective} defective units), rework under way",
        name(inspection)
    )
}

fn not_requested(revision: Option<u32>) -> String {
    match revision {
        Some(revision) => format!("no final inspection requested for revision {revision}"),
        None => "no final inspection requested yet".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(awaited: &str, revision: u32) -> RestateFact {
        RestateFact {
            order_id: "o-1".to_owned(),
            step: "final_inspection_passed".to_owned(),
            awaited: awaited.to_owned(),
            revision,
        }
    }

    #[test]
    fn only_the_pass_of_a_named_order_is_asked_about() {
        let asked = checked(&command(FinalInspectionPassed::TYPE_NAME, 0)).unwrap();
        assert_eq!(asked.revision, None);
        let asked = checked(&command(FinalInspectionPassed::TYPE_NAME, 2)).unwrap();
        assert_eq!(asked.revision, Some(2));

        let err = checked(&command("gendan.v1.Shipped", 1)).unwrap_err();
        assert!(err.to_string().starts_with("invalid awaited:"), "{err}");
        let mut nameless = command(FinalInspectionPassed::TYPE_NAME, 1);
        nameless.order_id = String::new();
        let err = checked(&nameless).unwrap_err();
        assert!(err.to_string().starts_with("invalid order_id:"), "{err}");
        let err = checked(&command(FinalInspectionPassed::TYPE_NAME, u32::MAX)).unwrap_err();
        assert_eq!(err.to_string(), "invalid revision: is too large");
    }

    #[test]
    fn no_inspection_says_which_revision_was_not_requested() {
        assert_eq!(
            not_requested(Some(2)),
            "no final inspection requested for revision 2"
        );
        assert_eq!(not_requested(None), "no final inspection requested yet");
    }
}
