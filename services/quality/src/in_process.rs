//! Production's events (`gendan.evt.production.*`): in-process inspections
//! of the routing stages a product's plan names.
//!
//! Trigger: the first `WorkOrderProgressed` of an (order, product, stage)
//! whose good quantity is above zero, when the stage is one of the product's
//! `in_process_stages` (compared exactly, after trimming). That is the first
//! batch off the stage, inspected while the rest of the run can still be
//! corrected; the lot is the good quantity reported so far (production
//! reports the stage's running total). Sampling uses the product's final
//! inspection AQLs (critical, major, minor), as for final inspection, and
//! the answer is `InProcessInspectionOpened`.
//!
//! One inspection per order, product and stage: later reports of the stage
//! (more quantity, the stage completing) open nothing and announce nothing,
//! since they are new facts about production, not repeats of the trigger; a
//! redelivered report is dropped by the inbox. Stages outside the plan,
//! products without a plan and reports with no good units do no database
//! writes. Results are recorded over gRPC like any inspection and announced
//! as `InProcessInspectionPassed` / `InProcessInspectionFailed`. The saga does
//! not gate on any of these: they are for QA and the people following the
//! order.

use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{DefectClass, WorkOrderProgressed};
use sqlx::PgConnection;

use crate::inspections::{self, KIND_IN_PROCESS, NewInspection};
use crate::sampling::{Level, Severity};
use crate::{SERVICE, plans};

/// Handles `gendan.evt.production.*`; only `WorkOrderProgressed` matters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProductionHandler;

impl Handler for ProductionHandler {
    fn handles(&self, message: &Incoming) -> bool {
        message.is::<WorkOrderProgressed>()
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        if message.is::<WorkOrderProgressed>() {
            return work_order_progressed(conn, message, message.payload()?).await;
        }
        Ok(())
    }
}

/// A stage report that may open an in-process inspection, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageReport {
    pub order_id: String,
    pub product: String,
    pub stage: String,
    pub good_quantity: u32,
}

/// The report of a `WorkOrderProgressed`, or why it can never be used.
pub fn stage_report(event: &WorkOrderProgressed, order_id: String) -> Result<StageReport, String> {
    let product = event.product.trim();
    let stage = event.stage.trim();
    if product.is_empty() {
        return Err(format!(
            "WorkOrderProgressed of order {order_id} without a product"
        ));
    }
    if stage.is_empty() {
        return Err(format!(
            "WorkOrderProgressed of order {order_id}, product {product} without a stage"
        ));
    }
    Ok(StageReport {
        order_id,
        product: product.to_owned(),
        stage: stage.to_owned(),
        good_quantity: event.good_quantity,
    })
}

/// Whether the plan's stages call for an inspection of this report.
pub fn is_inspected(in_process_stages: &[String], report: &StageReport) -> bool {
    report.good_quantity > 0
        && in_process_stages
            .iter()
            .any(|stage| stage.trim() == report.stage)
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), product = %event.product, stage = %event.stage))]
async fn work_order_progressed(
    conn: &mut PgConnection,
    message: &Incoming,
    event: WorkOrderProgressed,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&event.order_id)?;
    let report = stage_report(&event, order_id).map_err(HandlerError::Rejected)?;
    if report.good_quantity == 0 {
        return Ok(());
    }
    let Some(plan) = plans::product_plan(conn, &report.product).await? else {
        return Ok(());
    };
    if !is_inspected(&plan.in_process_stages, &report) {
        return Ok(());
    }
    // The partial unique index makes a concurrent duplicate fail its insert;
    // the retry then finds this row.
    let existing =
        inspections::find_in_process(conn, &report.order_id, &report.product, &report.stage)
            .await?;
    if let Some(existing) = existing {
        tracing::debug!(inspection_id = %existing.inspection_id, status = %existing.status, "stage already has its in-process inspection");
        return Ok(());
    }
    let tolerances = plan.tolerances;
    let classes = inspections::class_plans(
        report.good_quantity,
        // The switching rules are applied to final inspections only.
        Severity::Normal,
        // A customer's level is for the lot it receives, not for checks
        // along the way.
        Level::II,
        &[
            (DefectClass::Critical, tolerances.critical),
            (DefectClass::Major, tolerances.major),
            (DefectClass::Minor, tolerances.minor),
        ],
    );
    let opened = inspections::insert(
        conn,
        &NewInspection {
            kind: KIND_IN_PROCESS,
            order_id: report.order_id.clone(),
            items: vec![(report.product.clone(), report.good_quantity)],
            purchase_order_id: String::new(),
            material: String::new(),
            lot: String::new(),
            supplier: String::new(),
            product: report.product.clone(),
            stage: report.stage.clone(),
            lot_size: report.good_quantity,
            revision: 0,
            severity: Severity::Normal,
            classes,
            cause_event_id: message.envelope.event_id.clone(),
            traceparent: gendan_telemetry::current_traceparent()
                .or_else(|| message.traceparent.clone()),
        },
    )
    .await?;
    tracing::info!(
        inspection_id = %opened.inspection_id,
        lot_size = report.good_quantity,
        code_letter = %opened.code_letter,
        sample_size = opened.sample_size,
        "in-process inspection opened"
    );
    let cause = Cause::from_incoming(message);
    let event = Outgoing::event(
        SERVICE,
        &report.order_id,
        &inspections::in_process_opened_event(&opened),
        &cause,
    );
    outbox::write(conn, &[event]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progressed(product: &str, stage: &str, good: u32) -> WorkOrderProgressed {
        WorkOrderProgressed {
            order_id: "SO-1".to_owned(),
            product: product.to_owned(),
            stage: stage.to_owned(),
            good_quantity: good,
            ..Default::default()
        }
    }

    #[test]
    fn reports_need_a_product_and_a_stage() {
        let report = stage_report(&progressed(" shirt ", " sewing ", 40), "SO-1".into()).unwrap();
        assert_eq!(report.product, "shirt");
        assert_eq!(report.stage, "sewing");
        assert_eq!(report.good_quantity, 40);
        assert!(stage_report(&progressed("", "sewing", 1), "SO-1".into()).is_err());
        assert!(stage_report(&progressed("shirt", " ", 1), "SO-1".into()).is_err());
    }

    #[test]
    fn only_planned_stages_with_good_units_are_inspected() {
        let stages = vec!["cutting".to_owned(), " sewing".to_owned()];
        let report = |stage: &str, good| {
            stage_report(&progressed("shirt", stage, good), "SO-1".into()).unwrap()
        };
        assert!(is_inspected(&stages, &report("sewing", 10)));
        assert!(is_inspected(&stages, &report("cutting", 1)));
        assert!(!is_inspected(&stages, &report("sewing", 0)));
        assert!(!is_inspected(&stages, &report("packing", 10)));
        assert!(!is_inspected(&stages, &report("Sewing", 10)));
        assert!(!is_inspected(&[], &report("sewing", 10)));
    }
}
