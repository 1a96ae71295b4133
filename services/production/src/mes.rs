//! Factory MES events (`gendan.ext.mes.*`) applied to work orders.
//!
//! | MES event | effect | events emitted |
//! | --- | --- | --- |
//! | stage started | first actual start, stage running | — |
//! | quantity reported | good and scrap added to the stage | `WorkOrderProgressed` |
//! | stage completed | actual end, stage completed; the work order completes with its last stage | `WorkOrderProgressed`, then `WorkOrderCompleted` (a production run) or `ReworkCompleted` (a rework) |
//! | equipment down | a downtime for the expected hours (else the centre's typical repair time); the centre shows as down; open work orders with unfinished stages on it during the downtime are re-planned past it ([`equipment`]) | `EquipmentStatusChanged`, `WorkOrderRescheduled` per work order whose end moved |
//! | equipment up | the downtime ends; the work orders it moved are re-planned against the real downtime | `EquipmentStatusChanged`, `WorkOrderRescheduled` (`resolved`) per work order it moved |
//!
//! A consumer run's events share their work ([`run`]): each order's work
//! orders are locked and loaded once a run, the calendars read once, the
//! stages reported on stored in one statement at the end of the run, and
//! each stage's progress announced once a run, as the run's last report on
//! it left it (`WorkOrderProgressed` carries running totals).
//!
//! MES events name an order, a product and a stage, not a work order. An
//! order may have several work orders (remakes, reworks, runs adjusted to an
//! amended order; see [`commands`](crate::commands)), so an event applies to
//! the newest open one that has the stage ([`work_orders::for_stage`]); a
//! rework's stages are all called `rework`. A run planned for an amendment
//! cancels the run it supersedes, so reports of a stage the new run has
//! land on the new run (on a stage it had nothing left to make as well);
//! a product the amendment removed is only on the cancelled run, and its
//! reports are refused like any report on a cancelled work order. The
//! order's work order rows are locked for the whole handling, so two events
//! of one order apply one after the other. An event about an order,
//! product, stage or work centre we do not know, or about a cancelled work
//! order, is rejected (dead-lettered with the reason): retrying cannot make
//! it known. A work order completes once: its completion is a fact keyed by
//! the work order ([`work_orders::fact_key`]). Equipment events name a work
//! centre, not an order; a repeated down or up changes nothing (see
//! [`equipment`]). MES systems do not trace, so events are emitted under
//! the trace of the command that planned the work order.

use chrono::{DateTime, NaiveDate, Utc};
use gendan_messaging::{Batch, BatchFailure, Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{
    MesEquipmentDown, MesEquipmentUp, MesQuantityReported, MesStageCompleted, MesStageStarted,
    ReworkCompleted, WorkOrderCompleted, WorkOrderProgressed,
};
use gendan_proto::{date_to_string, timestamp_to};
use prost_types::Timestamp;
use sqlx::PgConnection;
use tracing::Instrument;

use crate::work_orders::store::{self, StageReport};
use crate::work_orders::{
    self, STAGE_COMPLETED, STAGE_PLANNED, STATUS_COMPLETED, STATUS_PLANNED, WorkOrder,
};
use crate::{SERVICE, equipment};

mod run;

use run::{Calendars, LockedWorkOrders, Run};

/// Handles `gendan.ext.mes.*`, a consumer run at a time ([`run`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct MesHandler;

impl Handler for MesHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        let mut run = Run::default();
        apply(conn, &mut run, message).await?;
        run.flush(conn).await
    }

    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        batch: &Batch<'_>,
    ) -> Result<(), BatchFailure> {
        let mut run = Run::default();
        for (position, message) in batch.messages().iter().enumerate() {
            apply(&mut *conn, &mut run, message)
                .instrument(batch.span(message))
                .await
                .map_err(|err| BatchFailure::Message(position, err))?;
        }
        run.flush(conn).await.map_err(BatchFailure::Shared)
    }
}

/// Applies one MES event within `run`.
async fn apply(
    conn: &mut PgConnection,
    run: &mut Run,
    message: &Incoming,
) -> Result<(), HandlerError> {
    if message.is::<MesStageStarted>() {
        let event: MesStageStarted = message.payload()?;
        let at = when(event.at.as_ref(), message);
        let target = StageRef::of(message, &event.order_id, &event.product, &event.stage)?;
        return stage_started(conn, run, &target, at).await;
    }
    if message.is::<MesQuantityReported>() {
        let event: MesQuantityReported = message.payload()?;
        let at = when(event.at.as_ref(), message);
        let target = StageRef::of(message, &event.order_id, &event.product, &event.stage)?;
        return quantity_reported(conn, run, message, &target, event.good, event.scrap, at).await;
    }
    if message.is::<MesStageCompleted>() {
        let event: MesStageCompleted = message.payload()?;
        let at = when(event.at.as_ref(), message);
        let target = StageRef::of(message, &event.order_id, &event.product, &event.stage)?;
        return stage_completed(conn, run, message, &target, at).await;
    }
    if message.is::<MesEquipmentDown>() {
        let event: MesEquipmentDown = message.payload()?;
        let at = when(event.at.as_ref(), message);
        // What the run announced comes before the re-plans, and the
        // re-plans may move the work orders in hand.
        run.flush(conn).await?;
        run.work_orders.forget();
        return equipment::down(conn, message, &event, at).await;
    }
    if message.is::<MesEquipmentUp>() {
        let event: MesEquipmentUp = message.payload()?;
        let at = when(event.at.as_ref(), message);
        run.flush(conn).await?;
        run.work_orders.forget();
        return equipment::up(conn, message, &event.work_centre, at).await;
    }
    Err(HandlerError::Rejected(format!(
        "unknown MES event type {:?}",
        message.type_name()
    )))
}

/// When it happened on the shop floor: the MES timestamp, else the envelope's.
fn when(at: Option<&Timestamp>, message: &Incoming) -> DateTime<Utc> {
    at.and_then(timestamp_to)
        .unwrap_or_else(|| message.occurred_at())
}

/// Which stage of which order an MES event is about.
struct StageRef {
    order_id: String,
    product: String,
    stage: String,
}

impl StageRef {
    fn of(
        message: &Incoming,
        order_id: &str,
        product: &str,
        stage: &str,
    ) -> Result<Self, HandlerError> {
        let order_id = message.order_id_or(order_id)?;
        let (product, stage) = (product.trim(), stage.trim());
        if product.is_empty() || stage.is_empty() {
            return Err(HandlerError::Rejected(format!(
                "{} for order {order_id} without product or stage",
                message.type_name()
            )));
        }
        Ok(StageRef {
            order_id,
            product: product.to_owned(),
            stage: stage.to_owned(),
        })
    }

    /// The work order the event applies to, locked with the order's other
    /// work orders (once a run), checked to have this stage and not to be
    /// cancelled. The run's copy: changes to it stay for the run's next
    /// events.
    async fn lock<'r>(
        &self,
        conn: &mut PgConnection,
        locked: &'r mut LockedWorkOrders,
    ) -> Result<&'r mut WorkOrder, HandlerError> {
        let all = locked.of_order(conn, &self.order_id).await?;
        if all.is_empty() {
            return Err(HandlerError::Rejected(format!(
                "unknown order {:?}: it has no work order",
                self.order_id
            )));
        }
        let Some(work_order) = work_orders::for_stage(all, &self.product, &self.stage) else {
            if !all.iter().any(|wo| wo.has_product(&self.product)) {
                return Err(HandlerError::Rejected(format!(
                    "unknown product {:?} in the work orders of order {:?}",
                    self.product, self.order_id
                )));
            }
            return Err(HandlerError::Rejected(format!(
                "unknown stage {:?} of product {:?} in the work orders of order {:?}",
                self.stage, self.product, self.order_id
            )));
        };
        if work_order.status == work_orders::STATUS_CANCELLED {
            return Err(HandlerError::Rejected(format!(
                "the work order of order {:?} with stage {:?} is cancelled",
                self.order_id, self.stage
            )));
        }
        let id = work_order.work_order_id;
        Ok(all
            .iter_mut()
            .find(|wo| wo.work_order_id == id)
            .expect("found just above"))
    }

    /// This stage of `work_order`, as the run keeps track of it.
    fn key(&self, work_order: &WorkOrder) -> run::StageKey {
        run::StageKey {
            order_id: self.order_id.clone(),
            work_order_id: work_order.work_order_id,
            product: self.product.clone(),
            stage: self.stage.clone(),
        }
    }

    /// A report on this stage at `at` that counts nothing and completes
    /// nothing: a start.
    fn report(&self, at: DateTime<Utc>) -> StageReport<'_> {
        StageReport {
            product: &self.product,
            stage: &self.stage,
            at,
            good: 0,
            scrap: 0,
            completes: false,
        }
    }
}

/// A span under the order's trace: the message's own when it has one, else
/// the one stored with the work order when it was planned.
pub(crate) fn order_span(message: &Incoming, work_order: &WorkOrder) -> tracing::Span {
    let span = tracing::info_span!("mes.apply", order_id = %work_order.order_id);
    if message.traceparent.is_none()
        && let Some(traceparent) = &work_order.traceparent
    {
        gendan_telemetry::set_parent_from_traceparent(&span, traceparent);
    }
    span
}

/// Whether a start of `target` would change nothing: the stage has its
/// actual start and is no longer planned, and the work order is under way
/// (or done). The store's update would leave every column as it is.
fn already_started(work_order: &WorkOrder, target: &StageRef) -> bool {
    let stage_started = work_order
        .stage(&target.product, &target.stage)
        .is_some_and(|stage| stage.actual_start.is_some() && stage.status != STAGE_PLANNED);
    stage_started && work_order.status != STATUS_PLANNED
}

#[tracing::instrument(skip_all, fields(order_id = %target.order_id, product = %target.product, stage = %target.stage))]
async fn stage_started(
    conn: &mut PgConnection,
    run: &mut Run,
    target: &StageRef,
    at: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let work_order = target.lock(conn, &mut run.work_orders).await?;
    if already_started(work_order, target) {
        tracing::debug!("stage already started, nothing to do");
        return Ok(());
    }
    store::apply_report(work_order, &target.report(at));
    let key = target.key(work_order);
    run.touch(key, None);
    Ok(())
}

#[tracing::instrument(skip_all, fields(order_id = %target.order_id, product = %target.product, stage = %target.stage, good = good, scrap = scrap))]
async fn quantity_reported(
    conn: &mut PgConnection,
    run: &mut Run,
    message: &Incoming,
    target: &StageRef,
    good: u32,
    scrap: u32,
    at: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let work_order = target.lock(conn, &mut run.work_orders).await?;
    // A count implies the stage is running even if its start was not
    // reported: the same statement starts it.
    let counted = StageReport {
        good: i64::from(good),
        scrap: i64::from(scrap),
        ..target.report(at)
    };
    store::apply_report(work_order, &counted);
    let progressed = progressed_event(conn, &mut run.calendars, work_order, target, at).await?;
    let span = order_span(message, work_order);
    let progressed = span.in_scope(|| {
        Outgoing::event(
            SERVICE,
            &target.order_id,
            &progressed,
            &Cause::from_incoming(message),
        )
    });
    let key = target.key(work_order);
    run.touch(key, Some(progressed));
    Ok(())
}

#[tracing::instrument(skip_all, fields(order_id = %target.order_id, product = %target.product, stage = %target.stage))]
async fn stage_completed(
    conn: &mut PgConnection,
    run: &mut Run,
    message: &Incoming,
    target: &StageRef,
    at: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let work_order = target.lock(conn, &mut run.work_orders).await?;
    let already_done = work_order
        .stage(&target.product, &target.stage)
        .is_some_and(|stage| stage.status == STAGE_COMPLETED);
    if already_done {
        tracing::info!("stage already completed, nothing to do");
        return Ok(());
    }
    let completes = StageReport {
        completes: true,
        ..target.report(at)
    };
    store::apply_report(work_order, &completes);

    let finished = work_order.all_stages_completed() && work_order.status != STATUS_COMPLETED;
    let completed_on = at.date_naive();
    // The good finished units and the scrap of every stage: what the
    // completion announces, and stores, so announced again it says the same.
    let figures = work_orders::totals(work_order);
    if finished {
        // Capacity booked after the finish will not be used: it goes back to
        // the orders planned next.
        store::complete(conn, work_order.work_order_id, completed_on, figures).await?;
        work_order.status = STATUS_COMPLETED.to_owned();
        work_order.completed_on = Some(completed_on);
    }

    let progressed = progressed_event(conn, &mut run.calendars, work_order, target, at).await?;
    let span = order_span(message, work_order);
    let (progressed, completed) = span.in_scope(|| {
        let cause = Cause::from_incoming(message);
        let progressed = Outgoing::event(SERVICE, &target.order_id, &progressed, &cause);
        let completed = finished.then(|| completion(work_order, completed_on, figures, &cause));
        (progressed, completed)
    });
    if finished {
        tracing::info!(kind = %work_order.kind, revision = work_order.revision, "work order completed");
    }
    let key = target.key(work_order);
    run.touch(key, Some(progressed));
    run.announce(completed.into_iter().collect());
    Ok(())
}

/// The completion announcement of `work_order` with its good and scrap
/// units: a rework's goods go back to inspection (`ReworkCompleted`), a
/// production run's on to it (`WorkOrderCompleted`). Both carry the hours
/// for the order's cost ledger. A work order completes once, so this is the
/// fact keyed by it: announced again, it keeps its event id. Used when the
/// MES finishes the last stage (the figures are [`work_orders::totals`]),
/// for an amended run with nothing left to make, completed as it is planned
/// ([`amendments`](crate::amendments)), and to announce a completion again
/// with the figures stored the first time ([`restate`](crate::restate)).
pub(crate) fn completion(
    work_order: &WorkOrder,
    completed_on: NaiveDate,
    (good_quantity, scrap_quantity): (u32, u32),
    cause: &Cause,
) -> Outgoing {
    let key = work_orders::fact_key(work_order);
    let order_id = work_order.order_id.as_str();
    let work_order_id = work_order.work_order_id.to_string();
    let completed_on = date_to_string(completed_on);
    let hours_by_work_centre = work_orders::hours_by_work_centre(work_order);
    if work_order.is_rework() {
        let completed = ReworkCompleted {
            order_id: order_id.to_owned(),
            revision: work_order.revision_number(),
            work_order_id,
            good_quantity,
            scrap_quantity,
            completed_on,
            hours_by_work_centre,
        };
        return Outgoing::fact(SERVICE, order_id, &completed, cause, &key);
    }
    let completed = WorkOrderCompleted {
        order_id: order_id.to_owned(),
        work_order_id,
        good_quantity,
        scrap_quantity,
        completed_on,
        hours_by_work_centre,
        revision: work_order.revision_number(),
    };
    Outgoing::fact(SERVICE, order_id, &completed, cause, &key)
}

/// Where `work_order` stands after a report on `target` at `at`. The
/// projection reads the calendars of the centres still to work, and none
/// once the work order is done.
async fn progressed_event(
    conn: &mut PgConnection,
    calendars: &mut Calendars,
    work_order: &WorkOrder,
    target: &StageRef,
    at: DateTime<Utc>,
) -> Result<WorkOrderProgressed, HandlerError> {
    let stage = work_order.stage(&target.product, &target.stage);
    let (projected_end, stage_ends) = if work_order.status == STATUS_COMPLETED {
        let done = work_order.completed_on.unwrap_or_else(|| at.date_naive());
        // Every stage is completed: each ended when it did.
        let ends = work_orders::projected_stage_ends(work_order, &Default::default(), done);
        (done, ends)
    } else {
        let calendars = calendars.of(conn, &work_order.unfinished_centres()).await?;
        let ends = work_orders::projected_stage_ends(work_order, &calendars, at.date_naive());
        (work_orders::end_of(work_order, &ends), ends)
    };
    Ok(WorkOrderProgressed {
        order_id: work_order.order_id.clone(),
        work_order_id: work_order.work_order_id.to_string(),
        product: target.product.clone(),
        stage: target.stage.clone(),
        good_quantity: stage.map_or(0, |s| u32::try_from(s.good_quantity).unwrap_or(u32::MAX)),
        scrap_quantity: stage.map_or(0, |s| u32::try_from(s.scrap_quantity).unwrap_or(u32::MAX)),
        progress: work_orders::progress(work_order),
        projected_end: date_to_string(projected_end),
        stages: work_orders::projected_stages(work_order, &stage_ends),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;
    use crate::work_orders::{KIND_PRODUCTION, STAGE_RUNNING, STATUS_IN_PROGRESS, Stage};

    fn sewing(status: &str, actual_start: Option<DateTime<Utc>>) -> WorkOrder {
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let stage = Stage {
            product: "shirt".to_owned(),
            stage: "sewing".to_owned(),
            product_seq: 0,
            stage_seq: 0,
            work_centre: "SEW".to_owned(),
            quantity: 10,
            hours_per_unit: 1.0,
            setup_hours: 0.0,
            hours: 10.0,
            planned_start: day,
            planned_end: day,
            actual_start,
            actual_end: None,
            good_quantity: 0,
            scrap_quantity: 0,
            status: status.to_owned(),
        };
        WorkOrder {
            work_order_id: Uuid::nil(),
            order_id: "o-1".to_owned(),
            kind: KIND_PRODUCTION.to_owned(),
            revision: 1,
            amendment: 0,
            status: STATUS_IN_PROGRESS.to_owned(),
            planned_start: day,
            planned_end: day,
            completed_on: None,
            traceparent: None,
            stages: vec![stage],
        }
    }

    #[test]
    fn a_report_applied_in_hand_starts_counts_and_completes_its_stage() {
        let target = StageRef {
            order_id: "o-1".to_owned(),
            product: "shirt".to_owned(),
            stage: "sewing".to_owned(),
        };
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2026, 3, 3, 17, 0, 0).unwrap();
        let mut work_order = sewing(STAGE_PLANNED, None);
        work_order.status = STATUS_PLANNED.to_owned();

        let counted = StageReport {
            good: 3,
            scrap: 1,
            ..target.report(start)
        };
        store::apply_report(&mut work_order, &counted);
        let stage = &work_order.stages[0];
        assert_eq!(work_order.status, work_orders::STATUS_IN_PROGRESS);
        assert_eq!(
            (stage.actual_start, stage.actual_end, stage.status.as_str()),
            (Some(start), None, STAGE_RUNNING)
        );
        assert_eq!((stage.good_quantity, stage.scrap_quantity), (3, 1));

        let completes = StageReport {
            good: 2,
            completes: true,
            ..target.report(end)
        };
        store::apply_report(&mut work_order, &completes);
        let stage = &work_order.stages[0];
        assert_eq!(
            (stage.actual_start, stage.actual_end, stage.status.as_str()),
            (Some(start), Some(end), STAGE_COMPLETED)
        );
        assert_eq!((stage.good_quantity, stage.scrap_quantity), (5, 1));
    }

    #[test]
    fn a_start_is_written_only_when_it_changes_something() {
        let target = StageRef {
            order_id: "o-1".to_owned(),
            product: "shirt".to_owned(),
            stage: "sewing".to_owned(),
        };
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
        assert!(already_started(&sewing(STAGE_RUNNING, Some(at)), &target));
        assert!(already_started(&sewing(STAGE_COMPLETED, Some(at)), &target));
        // The first start of the stage.
        assert!(!already_started(&sewing(STAGE_PLANNED, None), &target));
        // A stage an amended run had nothing to make: done, never started.
        assert!(!already_started(&sewing(STAGE_COMPLETED, None), &target));
        // The work order's first report.
        let mut planned = sewing(STAGE_RUNNING, Some(at));
        planned.status = STATUS_PLANNED.to_owned();
        assert!(!already_started(&planned, &target));
    }
}
