//! Checks of the cost estimate's messages: the saga's `EstimateCosts` turned
//! into an [`estimate::Input`] (finance's own standard costs are added by
//! [`crate::estimates`] from the database), and `SetInspectionRate`'s
//! [`InspectionRate`]. Each refusal names its field
//! (`material_cost[2].currency`, `hours_by_work_centre["SEW"]`).
//!
//! The bounds keep one command's work and arithmetic small: a routing has
//! tens of work centres and a bill of materials tens of currencies at most,
//! so 500 of either is a broken sender, and 100,000 hours in one centre is
//! decades of one person's work. A credit limit is bounded as the
//! customer master bounds it (10^15 minor units).

use std::collections::HashMap;

use gendan_grpc::FieldError;
use gendan_proto::v1::{EstimateCosts, InspectionRate};

use super::{currency, optional_text, order_id, required_text};
use crate::amendments;
use crate::estimate;

/// Most material lines, uncosted materials or work centres one
/// `EstimateCosts` may carry.
pub const MAX_ESTIMATE_LINES: usize = 500;
/// Most hours one work centre may be asked for.
pub const MAX_HOURS: f64 = 100_000.0;
/// Most minor units one sampled unit may cost.
pub const MAX_INSPECTION_RATE_MINOR: i64 = 1_000_000_000;
/// The largest credit limit, in minor units: the customer master's bound.
pub const MAX_CREDIT_LIMIT_MINOR: i64 = 1_000_000_000_000_000;

/// A checked `EstimateCosts`: the order, its revision, its customer and
/// what to estimate (labour and inspection rates and the customer's open
/// balances still empty: they are finance's, read when the estimate is
/// made).
#[derive(Debug, Clone, PartialEq)]
pub struct CostsToEstimate {
    pub order_id: String,
    pub revision: i32,
    /// As receivables name it ("" when the sender names none).
    pub customer: String,
    pub input: estimate::Input,
}

fn at_most(len: usize, field: &str) -> Result<(), FieldError> {
    if len > MAX_ESTIMATE_LINES {
        return Err(FieldError::new(
            field,
            format!("must have at most {MAX_ESTIMATE_LINES} entries, got {len}"),
        ));
    }
    Ok(())
}

fn not_negative(value: i64, field: &str) -> Result<i64, FieldError> {
    if value < 0 {
        return Err(FieldError::new(
            field,
            format!("must not be negative, got {value}"),
        ));
    }
    Ok(value)
}

/// Checks an `EstimateCosts` about `order_id` (the message's order). A
/// revision of 0 (a sender from before revisions) counts as 1; a credit
/// limit without a currency is in the order's (the customer's default).
pub fn estimate_costs(
    order_id_sent: &str,
    command: &EstimateCosts,
) -> Result<CostsToEstimate, FieldError> {
    let order_id = order_id(order_id_sent)?;
    let revision = amendments::revision(command.revision)
        .map_err(|problem| FieldError::new("revision", problem))?;
    let currency = currency(&command.currency, "currency")?;
    let revenue_minor = not_negative(command.revenue_minor, "revenue_minor")?;

    at_most(command.material_cost.len(), "material_cost")?;
    let materials = command
        .material_cost
        .iter()
        .enumerate()
        .map(|(i, cost)| {
            let amount = not_negative(
                cost.amount_minor,
                &format!("material_cost[{i}].amount_minor"),
            )?;
            let currency =
                super::currency(&cost.currency, &format!("material_cost[{i}].currency"))?;
            Ok((amount, currency))
        })
        .collect::<Result<Vec<_>, FieldError>>()?;

    at_most(command.uncosted_materials.len(), "uncosted_materials")?;
    let mut uncosted_materials = Vec::with_capacity(command.uncosted_materials.len());
    for (i, material) in command.uncosted_materials.iter().enumerate() {
        let material = optional_text(material, &format!("uncosted_materials[{i}]"))?;
        if !material.is_empty() {
            uncosted_materials.push(material);
        }
    }

    at_most(command.hours_by_work_centre.len(), "hours_by_work_centre")?;
    let mut centres: Vec<(&String, &f64)> = command.hours_by_work_centre.iter().collect();
    // The first refusal must be the same on every delivery; map order is not.
    centres.sort_by(|a, b| a.0.cmp(b.0));
    let mut hours_by_work_centre: HashMap<String, f64> = HashMap::with_capacity(centres.len());
    for (name, &hours) in centres {
        let field = format!("hours_by_work_centre[{name:?}]");
        let work_centre = required_text(name, &field)?;
        if !hours.is_finite() || !(0.0..=MAX_HOURS).contains(&hours) {
            return Err(FieldError::new(
                field,
                format!("must be between 0 and {MAX_HOURS} hours, got {hours}"),
            ));
        }
        if hours_by_work_centre.insert(work_centre, hours).is_some() {
            return Err(FieldError::new(
                field,
                "names a work centre already listed (names are trimmed)",
            ));
        }
    }

    let freight = match &command.freight {
        // An unset amount and currency is no quote (a sender that fills the
        // message with its defaults).
        Some(quote) if quote.amount_minor == 0 && quote.currency.trim().is_empty() => None,
        None => None,
        Some(quote) => Some((
            not_negative(quote.amount_minor, "freight.amount_minor")?,
            super::currency(&quote.currency, "freight.currency")?,
        )),
    };
    let freight_problem = optional_text(&command.freight_problem, "freight_problem")?;

    if command.min_margin_bp > 10_000 {
        return Err(FieldError::new(
            "min_margin_bp",
            format!(
                "must be at most 10000 (100%), got {}",
                command.min_margin_bp
            ),
        ));
    }
    let credit_limit_minor = command.credit_limit_minor;
    if !(0..=MAX_CREDIT_LIMIT_MINOR).contains(&credit_limit_minor) {
        return Err(FieldError::new(
            "credit_limit_minor",
            format!("must be between 0 and {MAX_CREDIT_LIMIT_MINOR}, got {credit_limit_minor}"),
        ));
    }
    let credit_limit_currency = if command.credit_limit_currency.trim().is_empty() {
        currency.clone()
    } else {
        super::currency(&command.credit_limit_currency, "credit_limit_currency")?
    };
    let customer = optional_text(&command.customer, "customer")?;
    Ok(CostsToEstimate {
        order_id,
        revision,
        customer,
        input: estimate::Input {
            currency,
            revenue_minor,
            materials,
            uncosted_materials,
            hours_by_work_centre,
            labour_rates: Default::default(),
            freight,
            freight_problem,
            inspection_sample_units: command.inspection_sample_units,
            inspection_rate: None,
            min_margin_bp: command.min_margin_bp,
            credit_limit: (credit_limit_minor, credit_limit_currency),
            open_balances: Vec::new(),
        },
    })
}

/// Checks `SetInspectionRate`.
pub fn inspection_rate(request: &InspectionRate) -> Result<InspectionRate, FieldError> {
    let currency = currency(&request.currency, "currency")?;
    let rate = request.rate_minor_per_unit;
    if !(0..=MAX_INSPECTION_RATE_MINOR).contains(&rate) {
        return Err(FieldError::new(
            "rate_minor_per_unit",
            format!("must be between 0 and {MAX_INSPECTION_RATE_MINOR}, got {rate}"),
        ));
    }
    Ok(InspectionRate {
        currency,
        rate_minor_per_unit: rate,
    })
}

#[cfg(test)]
mod tests {
    use gendan_proto::v1::Money;

    use super::*;

    fn money(amount_minor: i64, currency: &str) -> Money {
        Money {
            amount_minor,
            currency: currency.into(),
        }
    }

    fn command() -> EstimateCosts {
        EstimateCosts {
            order_id: "o-1".into(),
            revision: 2,
            currency: "USD".into(),
            revenue_minor: 1_000_000,
            material_cost: vec![money(300_000, "USD"), money(1_000_000, "CNY")],
            uncosted_materials: vec!["FABRIC-X: no supplier offer".into(), " ".into()],
            hours_by_work_centre: [("SEW".to_owned(), 12.5), (" CUT ".to_owned(), 4.0)]
                .into_iter()
                .collect(),
            freight: Some(money(50_000, "USD")),
            freight_problem: String::new(),
            inspection_sample_units: 80,
            min_margin_bp: 1_500,
            credit_limit_minor: 5_000_000,
            credit_limit_currency: "EUR".into(),
            customer: " Nordwind GmbH ".into(),
        }
    }

    #[test]
    fn a_good_command_becomes_the_estimate_input() {
        let checked = estimate_costs("o-1", &command()).unwrap();
        assert_eq!(checked.revision, 2);
        let input = checked.input;
        assert_eq!(input.materials[1], (1_000_000, "CNY".to_owned()));
        assert_eq!(input.uncosted_materials.len(), 1, "blank lines are dropped");
        assert_eq!(input.hours_by_work_centre.get("CUT"), Some(&4.0));
        assert_eq!(input.freight, Some((50_000, "USD".to_owned())));
        assert_eq!(input.credit_limit, (5_000_000, "EUR".to_owned()));
        assert!(input.open_balances.is_empty(), "read when estimated");
        assert_eq!(
            estimate_costs("o-1", &command()).unwrap().customer,
            "Nordwind GmbH"
        );
        let mut limit_in_the_order_currency = command();
        limit_in_the_order_currency.credit_limit_currency = String::new();
        assert_eq!(
            estimate_costs("o-1", &limit_in_the_order_currency)
                .unwrap()
                .input
                .credit_limit,
            (5_000_000, "USD".to_owned())
        );

        let mut revision_zero = command();
        revision_zero.revision = 0;
        assert_eq!(estimate_costs("o-1", &revision_zero).unwrap().revision, 1);
        let mut unset_freight = command();
        unset_freight.freight = Some(Money::default());
        unset_freight.freight_problem = "no lane".into();
        let input = estimate_costs("o-1", &unset_freight).unwrap().input;
        assert_eq!(input.freight, None);
        assert_eq!(input.freight_problem, "no lane");
    }

    #[test]
    fn estimate_costs_errors_name_the_field() {
        type Change = fn(&mut EstimateCosts);
        let many = |n: usize| (0..n).map(|i| format!("M-{i}")).collect::<Vec<_>>();
        let cases: [(Change, &str); 21] = [
            (|c| c.revision = u32::MAX, "revision"),
            (|c| c.currency = "usd".into(), "currency"),
            (|c| c.revenue_minor = -1, "revenue_minor"),
            (
                |c| c.material_cost[1].amount_minor = -5,
                "material_cost[1].amount_minor",
            ),
            (
                |c| c.material_cost[0].currency = "US".into(),
                "material_cost[0].currency",
            ),
            (
                |c| c.material_cost = vec![money(1, "USD"); 501],
                "material_cost",
            ),
            (
                |c| c.uncosted_materials[0] = "x".repeat(201),
                "uncosted_materials[0]",
            ),
            (
                |c| {
                    c.hours_by_work_centre.insert("SEW".into(), -1.0);
                },
                "hours_by_work_centre[\"SEW\"]",
            ),
            (
                |c| {
                    c.hours_by_work_centre.insert("SEW".into(), f64::NAN);
                },
                "hours_by_work_centre[\"SEW\"]",
            ),
            (
                |c| {
                    c.hours_by_work_centre.insert("SEW".into(), 100_000.5);
                },
                "hours_by_work_centre[\"SEW\"]",
            ),
            (
                |c| {
                    c.hours_by_work_centre.insert(" ".into(), 1.0);
                },
                "hours_by_work_centre[\" \"]",
            ),
            (
                |c| {
                    c.hours_by_work_centre.insert("CUT".into(), 1.0);
                },
                "hours_by_work_centre[\"CUT\"]",
            ),
            (
                |c| {
                    c.hours_by_work_centre = (0..501).map(|i| (format!("WC{i}"), 1.0)).collect();
                },
                "hours_by_work_centre",
            ),
            (
                |c| c.freight = Some(money(-1, "USD")),
                "freight.amount_minor",
            ),
            (|c| c.freight = Some(money(1, "")), "freight.currency"),
            (|c| c.freight_problem = "p".repeat(201), "freight_problem"),
            (|c| c.min_margin_bp = 10_001, "min_margin_bp"),
            (|c| c.credit_limit_minor = -1, "credit_limit_minor"),
            (
                |c| c.credit_limit_minor = MAX_CREDIT_LIMIT_MINOR + 1,
                "credit_limit_minor",
            ),
            (
                |c| c.credit_limit_currency = "eur".into(),
                "credit_limit_currency",
            ),
            (|c| c.customer = "n".repeat(201), "customer"),
        ];
        for (change, field) in cases {
            let mut bad = command();
            change(&mut bad);
            assert_eq!(
                estimate_costs("o-1", &bad).unwrap_err().field,
                field,
                "{bad:?}"
            );
        }
        let mut too_many = command();
        too_many.uncosted_materials = many(501);
        assert_eq!(
            estimate_costs("o-1", &too_many).unwrap_err().field,
            "uncosted_materials"
        );
        assert_eq!(
            estimate_costs(" ", &command()).unwrap_err().field,
            "order_id"
        );
    }

    #[test]
    fn inspection_rate_errors_name_the_field() {
        let rate = |currency: &str, rate_minor_per_unit| InspectionRate {
            currency: currency.into(),
            rate_minor_per_unit,
        };
        assert_eq!(
            inspection_rate(&rate(" USD", 150)).unwrap(),
            rate("USD", 150)
        );
        assert!(inspection_rate(&rate("USD", 0)).is_ok());
        assert!(inspection_rate(&rate("USD", MAX_INSPECTION_RATE_MINOR)).is_ok());
        assert_eq!(
            inspection_rate(&rate("usd", 150)).unwrap_err().field,
            "currency"
        );
        assert_eq!(
            inspection_rate(&rate("USD", -1)).unwrap_err().field,
            "rate_minor_per_unit"
        );
        assert_eq!(
            inspection_rate(&rate("USD", MAX_INSPECTION_RATE_MINOR + 1))
                .unwrap_err()
                .field,
            "rate_minor_per_unit"
        );
    }
}
