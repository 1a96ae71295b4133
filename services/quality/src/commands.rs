//! Saga commands to quality (`gendan.cmd.quality.*`).
//!
//! `RequestFinalInspection` opens the final inspection of an order's
//! finished goods: the lot is the sum of the quantities, each defect class
//! gets its sampling plan from the strictest plan of the order's products,
//! and the answer is `FinalInspectionOpened` (lot size, code letter, units
//! to draw). It is idempotent by order id:
//!
//! | newest final inspection of the order | what a request does |
//! | --- | --- |
//! | none, or failed (re-inspection after rework) | opens a new one, answers `FinalInspectionOpened` |
//! | open | answers `FinalInspectionOpened` again for it |
//! | passed | answers `FinalInspectionPassed` again: the lot passed, the answer may have been lost |
//!
//! Requests for one order are serialised by a transaction-scoped advisory
//! lock, so two replicas cannot open two inspections for it.

use gendan_messaging::outbox;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{DefectClass, RequestFinalInspection};
use sqlx::PgConnection;

use crate::inspections::{self, KIND_FINAL, NewInspection, STATUS_OPEN, STATUS_PASSED};
use crate::plans::{self, Tolerances};
use crate::{Error, SERVICE, validate};

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
        Err(HandlerError::Rejected(format!(
            "unknown command type {:?} for {SERVICE}",
            message.type_name()
        )))
    }
}

#[tracing::instrument(skip_all, fields(order_id = %message.order_id()))]
async fn request_final_inspection(
    conn: &mut PgConnection,
    message: &Incoming,
    command: RequestFinalInspection,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let (items, lot_size) =
        validate::items(&command.items, "items").map_err(|e| HandlerError::from(Error::from(e)))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('quality-final:' || $1, 0))")
        .bind(&order_id)
        .execute(&mut *conn)
        .await?;

    let cause = Cause::from_incoming(message);
    let latest = inspections::latest_final(conn, &order_id).await?;
    let event = match latest {
        Some(open) if open.status == STATUS_OPEN => {
            tracing::info!(inspection_id = %open.inspection_id, "final inspection already open, answering again");
            Outgoing::event(
                SERVICE,
                &order_id,
                &inspections::final_opened_event(&open),
                &cause,
            )
        }
        Some(passed) if passed.status == STATUS_PASSED => {
            tracing::info!(inspection_id = %passed.inspection_id, "final inspection already passed, answering again");
            Outgoing::event(
                SERVICE,
                &order_id,
                &inspections::final_passed_event(&passed),
                &cause,
            )
        }
        previous => {
            if let Some(failed) = &previous {
                tracing::info!(previous = %failed.inspection_id, "re-inspection after a failed final inspection");
            }
            let mut tolerances: Option<Tolerances> = None;
            for (product, _) in &items {
                let of_product = plans::tolerances_for(conn, product).await?;
                tolerances = Some(tolerances.map_or(of_product, |t| t.strictest(of_product)));
            }
            let tolerances = tolerances.unwrap_or_else(plans::default_tolerances);
            let classes = inspections::class_plans(
                lot_size,
                &[
                    (DefectClass::Critical, tolerances.critical),
                    (DefectClass::Major, tolerances.major),
                    (DefectClass::Minor, tolerances.minor),
                ],
            );
            let opened = inspections::insert(
                conn,
                &NewInspection {
                    kind: KIND_FINAL,
                    order_id: order_id.clone(),
                    items,
                    purchase_order_id: String::new(),
                    material: String::new(),
                    lot: String::new(),
                    product: String::new(),
                    stage: String::new(),
                    supplier: String::new(),
                    lot_size,
                    classes,
                    cause_event_id: message.envelope.event_id.clone(),
                    traceparent: gendan_telemetry::current_traceparent()
                        .or_else(|| message.traceparent.clone()),
                },
            )
            .await?;
            tracing::info!(
                inspection_id = %opened.inspection_id,
                lot_size,
                code_letter = %opened.code_letter,
                sample_size = opened.sample_size,
                "final inspection opened"
            );
            Outgoing::event(
                SERVICE,
                &order_id,
                &inspections::final_opened_event(&opened),
                &cause,
            )
        }
    };
    outbox::write(conn, &[event]).await?;
    Ok(())
}
