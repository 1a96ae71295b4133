//! Request and command checks that need no database: each function turns a
//! wire message into the domain value the rest of the service trusts, or a
//! [`FieldError`] naming the offending field (`product_rules[1].units_per_carton`).
//!
//! Commands are checked with the same rules; their field paths start at the
//! command (`order.lines[0].quantity`), so a dead letter says what to fix.

use std::collections::BTreeMap;

use gendan_grpc::FieldError;
use gendan_grpc::validate::required_text;
use gendan_proto::v1::{CarrierLane, Order, PackingSpec, ProductMaster};

use crate::booking::{CostBasis, Lane, Mode};
use crate::catalog::ProductRecord;
use crate::documents::{OrderData, OrderLineData};
use crate::packing::{self, Barcode, Spec};

/// Longest code or name we accept; longer is a client bug, not a name.
const MAX_TEMPLATE: usize = 2000;
/// Heaviest carton anyone can lift or a carrier takes as a parcel piece;
/// above it is a unit mistake (grams for kilograms).
const MAX_CARTON_KG: f64 = 1000.0;
const MAX_UNITS_PER_CARTON: u32 = 100_000;

/// A key for a get request (customer, product).
pub fn key(value: &str, field: &str) -> Result<String, FieldError> {
    required_text(value, field)
}

/// An order id: a UUID, as the order service issues them.
pub fn order_id(value: &str, field: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    uuid::Uuid::parse_str(value)
        .map_err(|_| FieldError::new(field, format!("{value:?} is not a UUID")))?;
    Ok(value.to_owned())
}

fn units_per_carton(value: u32, field: &str) -> Result<u32, FieldError> {
    if value == 0 || value > MAX_UNITS_PER_CARTON {
        return Err(FieldError::new(
            field,
            format!("must be between 1 and {MAX_UNITS_PER_CARTON}, got {value}"),
        ));
    }
    Ok(value)
}

fn currency(value: &str, field: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.len() != 3 || !value.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(FieldError::new(
            field,
            format!("{value:?} is not an ISO 4217 code (three upper-case letters)"),
        ));
    }
    Ok(value.to_owned())
}

pub fn packing_spec(request: &PackingSpec) -> Result<Spec, FieldError> {
    let customer = required_text(&request.customer, "customer")?;
    let default_units_per_carton =
        units_per_carton(request.default_units_per_carton, "default_units_per_carton")?;
    let mut rules = BTreeMap::new();
    for (i, rule) in request.product_rules.iter().enumerate() {
        let product = required_text(&rule.product, &format!("product_rules[{i}].product"))?;
        let units = units_per_carton(
            rule.units_per_carton,
            &format!("product_rules[{i}].units_per_carton"),
        )?;
        if rules.insert(product.clone(), units).is_some() {
            return Err(FieldError::new(
                format!("product_rules[{i}].product"),
                format!("product {product:?} is listed twice"),
            ));
        }
    }
    let template = request.marks_template.trim();
    if template.is_empty() {
        return Err(FieldError::new("marks_template", "must not be empty"));
    }
    if template.chars().count() > MAX_TEMPLATE {
        return Err(FieldError::new(
            "marks_template",
            format!("longer than {MAX_TEMPLATE} characters"),
        ));
    }
    packing::check_template(template)
        .map_err(|problem| FieldError::new("marks_template", problem))?;
    let barcode = Barcode::parse(&request.barcode_type).ok_or_else(|| {
        FieldError::new(
            "barcode_type",
            format!(
                "{:?} is not one of {}",
                request.barcode_type,
                Barcode::NAMES.join(", ")
            ),
        )
    })?;
    let max = request.max_gross_weight_kg;
    if !max.is_finite() || max <= 0.0 || max > MAX_CARTON_KG {
        return Err(FieldError::new(
            "max_gross_weight_kg",
            format!("must be a weight > 0 and <= {MAX_CARTON_KG} kg, got {max}"),
        ));
    }
    let tare = request.carton_tare_kg;
    if !tare.is_finite() || tare < 0.0 || tare >= max {
        return Err(FieldError::new(
            "carton_tare_kg",
            format!("must be >= 0 and below the maximum gross weight {max} kg, got {tare}"),
        ));
    }
    Ok(Spec {
        customer,
        default_units_per_carton,
        units_per_carton: rules,
        marks_template: template.to_owned(),
        barcode,
        max_gross_weight_kg: max,
        carton_tare_kg: tare,
    })
}

/// An HS code: 6 to 10 digits; the dots and spaces of printed tariffs
/// ("6205.20.00") are dropped.
pub fn hs_code(value: &str, field: &str) -> Result<String, FieldError> {
    let digits: String = value.chars().filter(|c| *c != '.' && *c != ' ').collect();
    if !(6..=10).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(FieldError::new(
            field,
            format!("{value:?} is not an HS code of 6 to 10 digits"),
        ));
    }
    Ok(digits)
}

pub fn product_master(request: &ProductMaster) -> Result<ProductRecord, FieldError> {
    let product = required_text(&request.product, "product")?;
    let description = request.description.trim();
    if description.is_empty() {
        return Err(FieldError::new("description", "must not be empty"));
    }
    if description.chars().count() > 500 {
        return Err(FieldError::new("description", "longer than 500 characters"));
    }
    let hs_code = hs_code(&request.hs_code, "hs_code")?;
    let weight = request.unit_net_weight_kg;
    if !weight.is_finite() || weight <= 0.0 || weight > MAX_CARTON_KG {
        return Err(FieldError::new(
            "unit_net_weight_kg",
            format!("must be a weight > 0 and <= {MAX_CARTON_KG} kg, got {weight}"),
        ));
    }
    let origin = request.country_of_origin.trim().to_ascii_uppercase();
    if origin.len() != 2 || !origin.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(FieldError::new(
            "country_of_origin",
            format!(
                "{:?} is not an ISO 3166-1 alpha-2 country code",
                request.country_of_origin
            ),
        ));
    }
    Ok(ProductRecord {
        product,
        description: description.to_owned(),
        hs_code,
        unit_net_weight_kg: weight,
        country_of_origin: origin,
    })
}

pub fn carrier_lane(request: &CarrierLane) -> Result<Lane, FieldError> {
    let code = required_text(&request.code, "code")?;
    if !code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(FieldError::new(
            "code",
            "may only hold letters, digits, '-', '_' and '.'",
        ));
    }
    let carrier = required_text(&request.carrier, "carrier")?;
    let mode = Mode::parse(&request.mode).ok_or_else(|| {
        FieldError::new(
            "mode",
            format!("{:?} is not sea, air or road", request.mode),
        )
    })?;
    if !(1..=7).contains(&request.departure_weekday) {
        return Err(FieldError::new(
            "departure_weekday",
            format!(
                "{} is not an ISO weekday (1 = Monday .. 7 = Sunday)",
                request.departure_weekday
            ),
        ));
    }
    if request.transit_days > 365 {
        return Err(FieldError::new("transit_days", "must be at most 365"));
    }
    if request.cutoff_days > 90 {
        return Err(FieldError::new("cutoff_days", "must be at most 90"));
    }
    let cost_basis = CostBasis::parse(&request.cost_basis).ok_or_else(|| {
        FieldError::new(
            "cost_basis",
            format!("{:?} is not per_carton or per_kg", request.cost_basis),
        )
    })?;
    if request.rate_minor <= 0 {
        return Err(FieldError::new(
            "rate_minor",
            format!("must be > 0 minor units, got {}", request.rate_minor),
        ));
    }
    Ok(Lane {
        code,
        carrier,
        mode,
        departure_weekday: request.departure_weekday,
        transit_days: request.transit_days,
        cutoff_days: request.cutoff_days,
        cost_basis,
        rate_minor: request.rate_minor,
        currency: currency(&request.currency, "currency")?,
    })
}

/// The order a command carries, checked as far as logistics relies on it.
pub fn order(order: Option<&Order>, field: &str) -> Result<OrderData, FieldError> {
    let order = order.ok_or_else(|| FieldError::new(field, "is missing"))?;
    let customer = required_text(&order.customer, &format!("{field}.customer"))?;
    if order.lines.is_empty() {
        return Err(FieldError::new(
            format!("{field}.lines"),
            "the order has no lines",
        ));
    }
    let mut lines = Vec::with_capacity(order.lines.len());
    for (i, line) in order.lines.iter().enumerate() {
        let product = required_text(&line.product, &format!("{field}.lines[{i}].product"))?;
        if line.quantity == 0 {
            return Err(FieldError::new(
                format!("{field}.lines[{i}].quantity"),
                "must be greater than 0",
            ));
        }
        if line.unit_price_minor < 0 {
            return Err(FieldError::new(
                format!("{field}.lines[{i}].unit_price_minor"),
                "must be >= 0",
            ));
        }
        lines.push(OrderLineData {
            product,
            spec: line.spec.trim().to_owned(),
            quantity: line.quantity,
            unit_price_minor: line.unit_price_minor,
        });
    }
    Ok(OrderData {
        order_id: order.order_id.trim().to_owned(),
        customer,
        customer_id: order.customer_id.trim().to_owned(),
        currency: currency(&order.currency, &format!("{field}.currency"))?,
        incoterm: order.incoterm.trim().to_ascii_uppercase(),
        payment_terms: order.payment_terms.trim().to_owned(),
        export: order.export,
        lines,
        total_minor: order.total_minor,
    })
}

#[cfg(test)]
mod tests {
    use gendan_proto::v1::ProductPackingRule;

    use super::*;

    fn spec() -> PackingSpec {
        PackingSpec {
            customer: "Nordwind GmbH".into(),
            default_units_per_carton: 24,
            product_rules: vec![ProductPackingRule {
                product: "jacket".into(),
                units_per_carton: 10,
            }],
            marks_template: "{customer} C/NO {carton}/{total}".into(),
            barcode_type: "ean-13".into(),
            max_gross_weight_kg: 20.0,
            carton_tare_kg: 0.8,
        }
    }

    #[test]
    fn packing_spec_errors_name_the_field() {
        let parsed = packing_spec(&spec()).unwrap();
        assert_eq!(parsed.barcode, Barcode::Ean13);
        assert_eq!(parsed.units_for("jacket"), 10);
        assert_eq!(parsed.units_for("shirt"), 24);

        let field = |change: fn(&mut PackingSpec)| {
            let mut request = spec();
            change(&mut request);
            packing_spec(&request).unwrap_err().field
        };
        assert_eq!(field(|s| s.customer = " ".into()), "customer");
        assert_eq!(
            field(|s| s.default_units_per_carton = 0),
            "default_units_per_carton"
        );
        assert_eq!(
            field(|s| s.product_rules[0].units_per_carton = 0),
            "product_rules[0].units_per_carton"
        );
        assert_eq!(
            field(|s| s.product_rules.push(s.product_rules[0].clone())),
            "product_rules[1].product"
        );
        assert_eq!(
            field(|s| s.marks_template = "{po}".into()),
            "marks_template"
        );
        assert_eq!(field(|s| s.barcode_type = "QR".into()), "barcode_type");
        assert_eq!(
            field(|s| s.max_gross_weight_kg = f64::NAN),
            "max_gross_weight_kg"
        );
        assert_eq!(field(|s| s.carton_tare_kg = 25.0), "carton_tare_kg");
    }

    #[test]
    fn hs_codes_are_6_to_10_digits() {
        assert_eq!(hs_code("6205.20", "hs_code").unwrap(), "620520");
        assert_eq!(hs_code("6205 20 00 10", "hs_code").unwrap(), "6205200010");
        assert!(hs_code("62052", "hs_code").is_err());
        assert!(hs_code("62052000101", "hs_code").is_err());
        assert!(hs_code("6205AB", "hs_code").is_err());
    }

    #[test]
    fn product_master_is_checked() {
        let mut request = ProductMaster {
            product: "shirt".into(),
            description: "Men's cotton shirt".into(),
            hs_code: "6205.20".into(),
            unit_net_weight_kg: 0.25,
            country_of_origin: "cn".into(),
        };
        assert_eq!(product_master(&request).unwrap().country_of_origin, "CN");
        request.unit_net_weight_kg = 0.0;
        assert_eq!(
            product_master(&request).unwrap_err().field,
            "unit_net_weight_kg"
        );
        request.unit_net_weight_kg = 0.25;
        request.country_of_origin = "China".into();
        assert_eq!(
            product_master(&request).unwrap_err().field,
            "country_of_origin"
        );
    }

    #[test]
    fn carrier_lane_is_checked() {
        let mut request = CarrierLane {
            code: "COSCO-SEA".into(),
            carrier: "COSCO".into(),
            mode: "Sea".into(),
            departure_weekday: 5,
            transit_days: 30,
            cutoff_days: 3,
            cost_basis: "per_carton".into(),
            rate_minor: 800,
            currency: "USD".into(),
        };
        assert_eq!(carrier_lane(&request).unwrap().mode, Mode::Sea);
        request.departure_weekday = 8;
        assert_eq!(
            carrier_lane(&request).unwrap_err().field,
            "departure_weekday"
        );
        request.departure_weekday = 5;
        request.mode = "rail".into();
        assert_eq!(carrier_lane(&request).unwrap_err().field, "mode");
        request.mode = "air".into();
        request.rate_minor = 0;
        assert_eq!(carrier_lane(&request).unwrap_err().field, "rate_minor");
    }

    #[test]
    fn order_ids_are_uuids() {
        assert!(order_id("0193a5e2-7c4f-7d10-9a3e-5b2f8c1d4e6a", "order_id").is_ok());
        assert_eq!(order_id("42", "order_id").unwrap_err().field, "order_id");
        assert_eq!(order_id("", "order_id").unwrap_err().field, "order_id");
    }
}
