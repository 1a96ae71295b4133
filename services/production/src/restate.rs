//! `RestateFact` to production (`gendan.cmd.production.restate_fact`): a
//! saga step waiting for a work order to finish is past its deadline, and
//! the completion may have been announced and lost on the bus. Production
//! answers from what it stored:
//!
//! | `awaited` | work order asked about | it is | answer |
//! | --- | --- | --- | --- |
//! | `gendan.v1.WorkOrderCompleted` | the production run of `revision` (0: the latest) | completed | its `WorkOrderCompleted` again: the figures its completion announced, under the same fact key ([`work_orders::fact_key`]), so the event id is the first announcement's and whoever had it drops it |
//! | `gendan.v1.ReworkCompleted` | the rework of `revision` (0: the latest) | completed | its `ReworkCompleted` again, likewise |
//! | either | the same | planned, in progress or cancelled | `StatusReported`: where it stands, e.g. "work order … revision 2: stage sewing in progress, 300 of 500 good; planned end 2026-03-20" (and when it is now expected, if later) |
//! | either | the same | not planned | `StatusReported`: "no production run planned for revision 2" ("no rework …") |
//!
//! `StatusReported` is a new observation each time: a plain event, a new
//! event id. An `awaited` type production does not announce for a waiting
//! step, an empty `order_id` or a revision beyond an integer can never be
//! answered: rejected (dead-lettered), naming the field.
//!
//! Like the commands that plan or cancel work orders it takes the capacity
//! lock, then the order's work order rows: a completion the MES is writing at that moment is
//! waited for and announced again, rather than a status already stale.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, Utc};
use gendan_grpc::FieldError;
use gendan_messaging::outbox;
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{RestateFact, ReworkCompleted, WorkOrderCompleted};
use gendan_proto::{TypeName, date_to_string};
use sqlx::PgConnection;

use crate::schedule::Calendar;
use crate::work_orders::{
    self, KIND_PRODUCTION, KIND_REWORK, STAGE_COMPLETED, STAGE_RUNNING, STATUS_CANCELLED,
    STATUS_COMPLETED, Stage, WorkOrder, store,
};
use crate::{Error, SERVICE, catalog, mes, validate};

/// What a `RestateFact` asks about, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Asked {
    order_id: String,
    /// [`KIND_PRODUCTION`] or [`KIND_REWORK`].
    kind: &'static str,
    /// `None`: the latest of that kind.
    revision: Option<i32>,
}

/// The command checked, or the field that makes it unanswerable.
fn checked(command: &RestateFact) -> Result<Asked, FieldError> {
    let order_id = validate::required_text(&command.order_id, "order_id")?;
    let kind = match command.awaited.trim() {
        WorkOrderCompleted::TYPE_NAME => KIND_PRODUCTION,
        ReworkCompleted::TYPE_NAME => KIND_REWORK,
        other => {
            return Err(FieldError::new(
                "awaited",
                format!(
                    "{other:?} is not a fact production announces for a waiting step \
                     ({} or {})",
                    WorkOrderCompleted::TYPE_NAME,
                    ReworkCompleted::TYPE_NAME
                ),
            ));
        }
    };
    let revision = match command.revision {
        0 => None,
        asked => Some(validate::revision(asked, "revision")?),
    };
    Ok(Asked {
        order_id,
        kind,
        revision,
    })
}

/// Announces the awaited completion again, or says where the work order
/// stands (see the module doc).
#[tracing::instrument(skip_all, fields(order_id = %command.order_id, awaited = %command.awaited, revision = command.revision))]
pub async fn restate_fact(
    conn: &mut PgConnection,
    message: &Incoming,
    command: RestateFact,
) -> Result<(), HandlerError> {
    let asked = checked(&command).map_err(Error::from)?;
    // A read: the work order rows' lock (as MES reports take it) keeps a
    // completion from landing halfway; the capacity lock, which planning
    // holds for long, is not needed and not waited for.
    let all = store::all_of(conn, &asked.order_id, true).await?;
    let work_order = match asked.revision {
        None => work_orders::current(&all, asked.kind),
        Some(revision) => work_orders::revision(&all, asked.kind, revision),
    };
    let cause = Cause::from_incoming(message);
    let event = match work_order {
        Some(work_order) => match completed_on(work_order) {
            Some(day) => restated(conn, work_order, day, &cause).await?,
            None => {
                let centres = work_order.unfinished_centres();
                let calendars = catalog::calendars_of(conn, &centres).await?;
                let today = Utc::now().date_naive();
                let status = work_order_status(work_order, &calendars, today);
                status_reported(&asked, &command, status, &cause)
            }
        },
        None => {
            let status = not_planned(asked.kind, asked.revision);
            status_reported(&asked, &command, status, &cause)
        }
    };
    outbox::write(conn, &[event]).await?;
    Ok(())
}

/// The day a completed work order finished; `None` while it is not.
fn completed_on(work_order: &WorkOrder) -> Option<NaiveDate> {
    work_order
        .completed_on
        .filter(|_| work_order.status == STATUS_COMPLETED)
}

/// The completion of `work_order` on `completed_on` announced again, built
/// as the first time ([`mes::completion`]) from the figures stored with it.
async fn restated(
    conn: &mut PgConnection,
    work_order: &WorkOrder,
    completed_on: NaiveDate,
    cause: &Cause,
) -> Result<Outgoing, HandlerError> {
    // Completed before the figures were kept: its stages hold them.
    let figures = store::completion_figures(conn, work_order.work_order_id)
        .await?
        .unwrap_or_else(|| work_orders::totals(work_order));
    tracing::info!(
        work_order_id = %work_order.work_order_id,
        kind = %work_order.kind,
        "work order completed, announcing its completion again"
    );
    Ok(mes::completion(work_order, completed_on, figures, cause))
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

/// No work order of `kind` (and `revision`) for the order.
fn not_planned(kind: &str, revision: Option<i32>) -> String {
    let what = if kind == KIND_REWORK {
        "rework"
    } else {
        "production run"
    };
    match revision {
        Some(revision) => format!("no {what} planned for revision {revision}"),
        None => format!("no {what} planned yet"),
    }
}

/// Where an unfinished work order stands, in a merchandiser's words: the
/// first unfinished stage of each product, the planned end and, when the
/// shop floor is behind, the end now expected ([`work_orders::projected_end`]
/// from `today`).
fn work_order_status(
    work_order: &WorkOrder,
    calendars: &HashMap<String, Calendar>,
    today: NaiveDate,
) -> String {
    let noun = if work_order.is_rework() {
        "rework"
    } else {
        "work order"
    };
    let name = format!(
        "{noun} {} revision {}",
        work_order.work_order_id, work_order.revision
    );
    if work_order.status == STATUS_CANCELLED {
        return format!("{name} was cancelled");
    }
    let mut stages = stage_phrases(work_order);
    if stages.is_empty() {
        stages.push("all stages done".to_owned());
    }
    let mut status = format!(
        "{name}: {}; planned end {}",
        stages.join("; "),
        date_to_string(work_order.planned_end)
    );
    let expected = work_orders::projected_end(work_order, calendars, today);
    if expected > work_order.planned_end {
        status.push_str(&format!(", now expected {}", date_to_string(expected)));
    }
    status
}

/// The first unfinished stage of each product, as a phrase. The product is
/// named only when the work order makes more than one.
fn stage_phrases(work_order: &WorkOrder) -> Vec<String> {
    // Stages come by product, then in routing order: the first unfinished
    // one is where the product's goods are.
    let mut first: BTreeMap<i32, &Stage> = BTreeMap::new();
    for stage in work_order
        .stages
        .iter()
        .filter(|stage| stage.status != STAGE_COMPLETED)
    {
        first.entry(stage.product_seq).or_insert(stage);
    }
    let name_product = work_order.last_stages().count() > 1;
    first
        .into_values()
        .map(|stage| stage_phrase(stage, name_product))
        .collect()
}

fn stage_phrase(stage: &Stage, name_product: bool) -> String {
    let of = if name_product {
        format!(" of {}", stage.product)
    } else {
        String::new()
    };
    let started = stage.status == STAGE_RUNNING || stage.actual_start.is_some();
    if !started {
        return format!(
            "stage {}{of} not started, planned to start {}",
            stage.stage,
            date_to_string(stage.planned_start)
        );
    }
    let mut phrase = format!(
        "stage {}{of} in progress, {} of {} good",
        stage.stage, stage.good_quantity, stage.quantity
    );
    if stage.scrap_quantity > 0 {
        phrase.push_str(&format!(", {} scrapped", stage.scrap_quantity));
    }
    phrase
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::work_orders::{STAGE_PLANNED, STATUS_IN_PROGRESS};

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn stage(product_seq: i32, name: &str, status: &str, good: i64) -> Stage {
        Stage {
            product: format!("p{product_seq}"),
            stage: name.to_owned(),
            product_seq,
            stage_seq: 0,
            work_centre: "SEW".to_owned(),
            quantity: 500,
            hours_per_unit: 0.0,
            setup_hours: 0.0,
            hours: 0.0,
            planned_start: date("2026-03-10"),
            planned_end: date("2026-03-20"),
            actual_start: None,
            actual_end: None,
            good_quantity: good,
            scrap_quantity: 0,
            status: status.to_owned(),
        }
    }

    fn work_order(stages: Vec<Stage>) -> WorkOrder {
        WorkOrder {
            work_order_id: Uuid::nil(),
            order_id: "o-1".to_owned(),
            kind: KIND_PRODUCTION.to_owned(),
            revision: 2,
            amendment: 0,
            status: STATUS_IN_PROGRESS.to_owned(),
            planned_start: date("2026-03-10"),
            planned_end: date("2026-03-20"),
            completed_on: None,
            traceparent: None,
            stages,
        }
    }

    fn command(awaited: &str, revision: u32) -> RestateFact {
        RestateFact {
            order_id: "o-1".to_owned(),
            step: "production_completed".to_owned(),
            awaited: awaited.to_owned(),
            revision,
        }
    }

    #[test]
    fn only_completions_of_a_named_order_are_asked_about() {
        let asked = checked(&command(WorkOrderCompleted::TYPE_NAME, 0)).unwrap();
        assert_eq!((asked.kind, asked.revision), (KIND_PRODUCTION, None));
        let asked = checked(&command(ReworkCompleted::TYPE_NAME, 2)).unwrap();
        assert_eq!((asked.kind, asked.revision), (KIND_REWORK, Some(2)));
        let err = checked(&command("gendan.v1.Shipped", 1)).unwrap_err();
        assert_eq!(err.field, "awaited");
        let mut nameless = command(WorkOrderCompleted::TYPE_NAME, 1);
        nameless.order_id = " ".to_owned();
        assert_eq!(checked(&nameless).unwrap_err().field, "order_id");
        let err = checked(&command(WorkOrderCompleted::TYPE_NAME, u32::MAX)).unwrap_err();
        assert_eq!(err.field, "revision");
    }

    #[test]
    fn the_status_names_the_stage_its_goods_are_at() {
        let mut cutting = stage(0, "cutting", STAGE_COMPLETED, 500);
        cutting.stage_seq = 0;
        let mut sewing = stage(0, "sewing", STAGE_RUNNING, 300);
        sewing.stage_seq = 1;
        let wo = work_order(vec![cutting, sewing]);
        // No calendars: nothing projects beyond the plan.
        let status = work_order_status(&wo, &HashMap::new(), date("2026-03-12"));
        assert_eq!(
            status,
            format!(
                "work order {} revision 2: stage sewing in progress, 300 of 500 good; \
                 planned end 2026-03-20",
                Uuid::nil()
            )
        );

        // Two products: each is named, a stage not begun says when it will.
        let mut two = work_order(vec![
            stage(0, "sewing", STAGE_RUNNING, 10),
            stage(1, "cutting", STAGE_PLANNED, 0),
        ]);
        two.stages[0].scrap_quantity = 2;
        let status = work_order_status(&two, &HashMap::new(), date("2026-03-12"));
        assert!(
            status.contains(
                "stage sewing of p0 in progress, 10 of 500 good, 2 scrapped; \
                 stage cutting of p1 not started, planned to start 2026-03-10"
            ),
            "{status}"
        );

        two.status = STATUS_CANCELLED.to_owned();
        let status = work_order_status(&two, &HashMap::new(), date("2026-03-12"));
        assert!(status.ends_with("revision 2 was cancelled"), "{status}");
        assert_eq!(
            not_planned(KIND_PRODUCTION, Some(3)),
            "no production run planned for revision 3"
        );
        assert_eq!(not_planned(KIND_REWORK, None), "no rework planned yet");
    }
}
