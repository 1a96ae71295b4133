//! `EstimateInspection`: how many units the order's final inspection will
//! sample, for the inspection line of the review's cost estimate (finance
//! multiplies it by its rate per sampled unit), and which stages the
//! products' plans inspect in process, for the order's calendar.
//!
//! The answer is the sample of one final inspection of the order as
//! `RequestFinalInspection` would open it now: one lot of all the lines
//! together, each defect class at the strictest plan of the order's
//! products (the customer's major AQL replacing theirs), at the customer's
//! inspection level and at the strictest switching state of the products
//! ([`final_inspection::draw`]); one sample, the largest class plan's,
//! serves every class ([`inspections::sample_size`]). Nothing is stored,
//! opened or locked: a re-sent command answers again from the products'
//! plans and histories as they are then. A malformed command is rejected
//! with the field named, as a malformed `RequestFinalInspection` is.

use gendan_messaging::outbox;
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{EstimateInspection, InspectedStage, InspectionEstimated};
use sqlx::PgConnection;

use crate::final_inspection::{self, Request};
use crate::{Error, SERVICE, inspections, plans, validate};

#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), revision = command.revision))]
pub async fn estimate_inspection(
    conn: &mut PgConnection,
    message: &Incoming,
    command: EstimateInspection,
) -> Result<(), HandlerError> {
    let order_id = message.order_id_or(&command.order_id)?;
    let request = checked(order_id, &command)?;
    let drawn = final_inspection::draw(conn, &request).await?;
    let products: Vec<String> = request
        .items
        .iter()
        .map(|(product, _)| product.clone())
        .collect();
    let in_process = plans::in_process_stages_of(conn, &products)
        .await?
        .into_iter()
        .map(|(product, stage)| InspectedStage { product, stage })
        .collect();
    let estimated = InspectionEstimated {
        order_id: request.order_id.clone(),
        revision: command.revision,
        sample_units: inspections::sample_size(&drawn.classes, request.lot_size),
        in_process,
    };
    tracing::info!(
        lot_size = request.lot_size,
        severity = %drawn.severity,
        sample_units = estimated.sample_units,
        "final inspection estimated"
    );
    let event = Outgoing::event(
        SERVICE,
        &request.order_id,
        &estimated,
        &Cause::from_incoming(message),
    );
    outbox::write(conn, &[event]).await?;
    Ok(())
}

/// The command as the final inspection it estimates, or why it can never
/// be answered. The revision is the review's, only echoed, so any value
/// will do; the inspection is drawn as the first.
fn checked(order_id: String, command: &EstimateInspection) -> Result<Request, Error> {
    let (items, lot_size) = validate::items(&command.items, "items")?;
    let level = validate::inspection_level(command.inspection_level, "inspection_level")?;
    let major_aql = validate::major_aql(command.major_aql, "major_aql")?;
    Ok(Request {
        order_id,
        revision: 1,
        items,
        lot_size,
        level,
        major_aql,
    })
}

#[cfg(test)]
mod tests {
    use gendan_proto::v1::{InspectionLevel, ProductQuantity};

    use super::*;
    use crate::final_inspection::lot_plans;
    use crate::plans::{Tolerances, default_tolerances};
    use crate::sampling::{Aql, Level, Severity, Tolerance};

    /// What the estimate answers for a lot of products in these states.
    fn sample_units(
        lot_size: u32,
        level: Level,
        major_aql: Option<Aql>,
        products: &[(Tolerances, Severity)],
    ) -> u32 {
        let (_, classes) = lot_plans(lot_size, level, major_aql, products);
        inspections::sample_size(&classes, lot_size)
    }

    fn normal() -> (Tolerances, Severity) {
        (default_tolerances(), Severity::Normal)
    }

    fn command(items: &[(&str, u32)]) -> EstimateInspection {
        EstimateInspection {
            order_id: "o-1".to_owned(),
            items: items
                .iter()
                .map(|(product, quantity)| ProductQuantity {
                    product: (*product).to_owned(),
                    quantity: *quantity,
                })
                .collect(),
            revision: 4,
            ..Default::default()
        }
    }

    #[test]
    fn a_500_unit_lot_at_level_ii_samples_code_letter_h() {
        // Lot 500 is H (n = 50) for critical 0, major 2.5 and minor 4.0
        // alike (the sampling tables' published plans).
        assert_eq!(sample_units(500, Level::II, None, &[normal()]), 50);
        // Level III reads J (n = 80) off Table I for the same lot.
        assert_eq!(sample_units(500, Level::III, None, &[normal()]), 80);
    }

    #[test]
    fn the_lines_are_one_lot() {
        // 300 + 200 units: one lot of 500 (n = 50), not lots of 300 (H,
        // n = 50) and 200 (G, n = 32) inspected apart.
        let request = checked("o-1".to_owned(), &command(&[("mug", 300), ("cup", 200)])).unwrap();
        assert_eq!(request.lot_size, 500);
        let products = [normal(), normal()];
        assert_eq!(
            sample_units(request.lot_size, request.level, None, &products),
            50
        );
    }

    #[test]
    fn the_strictest_plan_and_the_customer_aql_decide_the_sample() {
        // Major 0.65 points down to J (n = 80) for a lot of 500.
        let strict = Tolerances {
            major: Tolerance::Aql(Aql::from_percent(0.65).unwrap()),
            ..default_tolerances()
        };
        assert_eq!(
            sample_units(
                500,
                Level::II,
                None,
                &[normal(), (strict, Severity::Normal)]
            ),
            80
        );
        // The customer's AQL replaces the products' for major defects.
        assert_eq!(
            sample_units(500, Level::II, Aql::from_percent(0.65), &[normal()]),
            80
        );
        assert_eq!(
            sample_units(
                500,
                Level::II,
                Aql::from_percent(2.5),
                &[(strict, Severity::Normal)]
            ),
            50
        );
    }

    #[test]
    fn one_tightened_product_tightens_the_lot() {
        let (severity, classes) = lot_plans(
            500,
            Level::II,
            None,
            &[normal(), (default_tolerances(), Severity::Tightened)],
        );
        assert_eq!(severity, Severity::Tightened);
        let tightened = crate::sampling::plan_for(
            Level::II,
            500,
            default_tolerances().major,
            Severity::Tightened,
        )
        .unwrap();
        assert!(classes.iter().any(|class| class.plan == tightened));
    }

    #[test]
    fn a_malformed_command_names_its_field() {
        let err = checked("o-1".to_owned(), &command(&[])).unwrap_err();
        assert!(err.to_string().contains("invalid items"), "{err}");
        let mut unknown_level = command(&[("mug", 10)]);
        unknown_level.inspection_level = 9;
        let err = checked("o-1".to_owned(), &unknown_level).unwrap_err();
        assert!(
            err.to_string().contains("invalid inspection_level"),
            "{err}"
        );
        let mut level_iii = command(&[("mug", 10)]);
        level_iii.inspection_level = InspectionLevel::GeneralIii as i32;
        level_iii.major_aql = Some(3.3);
        let err = checked("o-1".to_owned(), &level_iii).unwrap_err();
        assert!(err.to_string().contains("invalid major_aql"), "{err}");
    }
}
