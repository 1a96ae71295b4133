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

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{
    MesEquipmentDown, MesEquipmentUp, MesQuantityReported, MesStageCompleted, MesStageStarted,
    ReworkCompleted, WorkOrderCompleted, WorkOrderProgressed,
};
use gendan_proto::{date_to_string, timestamp_to};
use prost_types::Timestamp;
use sqlx::PgConnection;

use crate::schedule::Calendar;
use crate::work_orders::{
    self, STAGE_COMPLETED, STATUS_COMPLETED, STATUS_IN_PROGRESS, WorkOrder, store,
};
use crate::{SERVICE, catalog, equipment};

/// Handles `gendan.ext.mes.*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MesHandler;

impl Handler for MesHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<MesStageStarted>() {
            let event: MesStageStarted = message.payload()?;
            let at = when(event.at.as_ref(), message);
            let target = StageRef::of(message, &event.order_id, &event.product, &event.stage)?;
            return stage_started(conn, &target, at).await;
        }
        if message.is::<MesQuantityReported>() {
            let event: MesQuantityReported = message.payload()?;
            let at = when(event.at.as_ref(), message);
            let target = StageRef::of(message, &event.order_id, &event.product, &event.stage)?;
            return quantity_reported(conn, message, &target, event.good, event.scrap, at).await;
        }
        if message.is::<MesStageCompleted>() {
            let event: MesStageCompleted = message.payload()?;
            let at = when(event.at.as_ref(), message);
            let target = StageRef::of(message, &event.order_id, &event.product, &event.stage)?;
            return stage_completed(conn, message, &target, at).await;
        }
        if message.is::<MesEquipmentDown>() {
            let event: MesEquipmentDown = message.payload()?;
            let at = when(event.at.as_ref(), message);
            return equipment::down(conn, message, &event, at).await;
        }
        if message.is::<MesEquipmentUp>() {
            let event: MesEquipmentUp = message.payload()?;
            let at = when(event.at.as_ref(), message);
            return equipment::up(conn, message, &event.work_centre, at).await;
        }
        Err(HandlerError::Rejected(format!(
            "unknown MES event type {:?}",
            message.type_name()
        )))
    }
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
    /// work orders, checked to have this stage and not to be cancelled.
    async fn lock(&self, conn: &mut PgConnection) -> Result<WorkOrder, HandlerError> {
        let all = store::all_of(conn, &self.order_id, true).await?;
        if all.is_empty() {
            return Err(HandlerError::Rejected(format!(
                "unknown order {:?}: it has no work order",
                self.order_id
            )));
        }
        let Some(work_order) = work_orders::for_stage(&all, &self.product, &self.stage) else {
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
        Ok(work_order.clone())
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

/// Marks the stage and the work order as started (first report only).
async fn mark_started(
    conn: &mut PgConnection,
    work_order: &WorkOrder,
    target: &StageRef,
    at: DateTime<Utc>,
) -> Result<(), HandlerError> {
    sqlx::query(
        "UPDATE work_order_stages SET actual_start = COALESCE(actual_start, $4), \
           status = CASE WHEN status = 'planned' THEN 'running' ELSE status END \
         WHERE work_order_id = $1 AND product = $2 AND stage = $3",
    )
    .bind(work_order.work_order_id)
    .bind(&target.product)
    .bind(&target.stage)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE work_orders SET status = $2 WHERE work_order_id = $1 AND status = 'planned'",
    )
    .bind(work_order.work_order_id)
    .bind(STATUS_IN_PROGRESS)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(order_id = %target.order_id, product = %target.product, stage = %target.stage))]
async fn stage_started(
    conn: &mut PgConnection,
    target: &StageRef,
    at: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let work_order = target.lock(conn).await?;
    mark_started(conn, &work_order, target, at).await
}

#[tracing::instrument(skip_all, fields(order_id = %target.order_id, product = %target.product, stage = %target.stage, good = good, scrap = scrap))]
async fn quantity_reported(
    conn: &mut PgConnection,
    message: &Incoming,
    target: &StageRef,
    good: u32,
    scrap: u32,
    at: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let work_order = target.lock(conn).await?;
    // A count implies the stage is running even if its start was not reported.
    mark_started(conn, &work_order, target, at).await?;
    sqlx::query(
        "UPDATE work_order_stages SET good_quantity = good_quantity + $4, \
           scrap_quantity = scrap_quantity + $5 \
         WHERE work_order_id = $1 AND product = $2 AND stage = $3",
    )
    .bind(work_order.work_order_id)
    .bind(&target.product)
    .bind(&target.stage)
    .bind(i64::from(good))
    .bind(i64::from(scrap))
    .execute(&mut *conn)
    .await?;
    let work_order = reload(conn, &work_order).await?;
    let calendars = catalog::calendars(conn).await?;
    let progressed = progressed_event(&work_order, target, &calendars, at);
    let span = order_span(message, &work_order);
    let events = span.in_scope(|| {
        vec![Outgoing::event(
            SERVICE,
            &target.order_id,
            &progressed,
            &Cause::from_incoming(message),
        )]
    });
    outbox::write(conn, &events).await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(order_id = %target.order_id, product = %target.product, stage = %target.stage))]
async fn stage_completed(
    conn: &mut PgConnection,
    message: &Incoming,
    target: &StageRef,
    at: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let work_order = target.lock(conn).await?;
    let already_done = work_order
        .stage(&target.product, &target.stage)
        .is_some_and(|stage| stage.status == STAGE_COMPLETED);
    if already_done {
        tracing::info!("stage already completed, nothing to do");
        return Ok(());
    }
    mark_started(conn, &work_order, target, at).await?;
    sqlx::query(
        "UPDATE work_order_stages SET actual_end = $4, status = $5 \
         WHERE work_order_id = $1 AND product = $2 AND stage = $3",
    )
    .bind(work_order.work_order_id)
    .bind(&target.product)
    .bind(&target.stage)
    .bind(at)
    .bind(STAGE_COMPLETED)
    .execute(&mut *conn)
    .await?;

    let mut work_order = reload(conn, &work_order).await?;
    let finished = work_order.all_stages_completed() && work_order.status != STATUS_COMPLETED;
    let completed_on = at.date_naive();
    // The good finished units and the scrap of every stage: what the
    // completion announces, and stores, so announced again it says the same.
    let figures = work_orders::totals(&work_order);
    if finished {
        // Capacity booked after the finish will not be used: it goes back to
        // the orders planned next.
        store::complete(conn, work_order.work_order_id, completed_on, figures).await?;
        work_order.status = STATUS_COMPLETED.to_owned();
        work_order.completed_on = Some(completed_on);
    }

    let calendars = catalog::calendars(conn).await?;
    let progressed = progressed_event(&work_order, target, &calendars, at);
    let span = order_span(message, &work_order);
    let events = span.in_scope(|| {
        let cause = Cause::from_incoming(message);
        let mut events = vec![Outgoing::event(
            SERVICE,
            &target.order_id,
            &progressed,
            &cause,
        )];
        if finished {
            events.push(completion(&work_order, completed_on, figures, &cause));
        }
        events
    });
    if finished {
        tracing::info!(kind = %work_order.kind, revision = work_order.revision, "work order completed");
    }
    outbox::write(conn, &events).await?;
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

async fn reload(
    conn: &mut PgConnection,
    work_order: &WorkOrder,
) -> Result<WorkOrder, HandlerError> {
    store::find_by_id(conn, work_order.work_order_id)
        .await?
        .ok_or_else(|| {
            HandlerError::Retry(format!(
                "work order {} of order {} vanished",
                work_order.work_order_id, work_order.order_id
            ))
        })
}

fn progressed_event(
    work_order: &WorkOrder,
    target: &StageRef,
    calendars: &HashMap<String, Calendar>,
    at: DateTime<Utc>,
) -> WorkOrderProgressed {
    let stage = work_order.stage(&target.product, &target.stage);
    let projected_end = if work_order.status == STATUS_COMPLETED {
        work_order.completed_on.unwrap_or_else(|| at.date_naive())
    } else {
        work_orders::projected_end(work_order, calendars, at.date_naive())
    };
    WorkOrderProgressed {
        order_id: work_order.order_id.clone(),
        work_order_id: work_order.work_order_id.to_string(),
        product: target.product.clone(),
        stage: target.stage.clone(),
        good_quantity: stage.map_or(0, |s| u32::try_from(s.good_quantity).unwrap_or(u32::MAX)),
        scrap_quantity: stage.map_or(0, |s| u32::try_from(s.scrap_quantity).unwrap_or(u32::MAX)),
        progress: work_orders::progress(work_order),
        projected_end: date_to_string(projected_end),
    }
}
