//! Request checks that need no database: each function turns a wire message
//! into the value the rest of the service trusts, or a [`FieldError`] naming
//! the offending field (`lines[1].scrap_percent`).
//!
//! Checks that need stored data (does this material exist?) are made by the
//! callers with the same field paths, before anything is written.

use std::collections::HashSet;

use chrono::NaiveDate;
use gendan_grpc::FieldError;
pub use gendan_grpc::validate::{MAX_TEXT, product_quantities as items, required_text};
use gendan_proto::date_from_str;
use gendan_proto::v1::{BillOfMaterials, Material, Supplier, SupplierOffer};
use uuid::Uuid;

use crate::netting::{BomLine, FULL_PERCENT_BP, Milli};

/// Longest code or name we accept; longer is a client bug, not a name.
/// Largest quantity of one material we accept (a trillion units): its
/// thousandths times any price still fit in 128-bit arithmetic with room.
const MAX_QUANTITY: f64 = 1e12;
/// Most lines in one bill of materials.
const MAX_BOM_LINES: usize = 1000;

fn name_or_code(name: &str, code: &str, field: &str) -> Result<String, FieldError> {
    if name.trim().is_empty() {
        Ok(code.to_owned())
    } else {
        required_text(name, field)
    }
}

/// An ISO 4217-shaped currency code: three upper-case letters.
pub fn currency(value: &str, field: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(FieldError::new(
            field,
            format!("{value:?} is not an ISO 4217 currency code (three upper-case letters)"),
        ));
    }
    Ok(value.to_owned())
}

/// A quantity in a material's unit, kept to thousandths (rounded half up).
pub fn quantity(value: f64, field: &str) -> Result<Milli, FieldError> {
    if !value.is_finite() || !(0.0..=MAX_QUANTITY).contains(&value) {
        return Err(FieldError::new(
            field,
            format!("must be a number between 0 and {MAX_QUANTITY}, got {value}"),
        ));
    }
    // In range, so the cast cannot saturate.
    Ok((value * 1000.0).round() as Milli)
}

/// A quantity that must be more than zero after rounding to thousandths.
pub fn positive_quantity(value: f64, field: &str) -> Result<Milli, FieldError> {
    let milli = quantity(value, field)?;
    if milli == 0 {
        return Err(FieldError::new(
            field,
            format!("must be at least 0.001, got {value}"),
        ));
    }
    Ok(milli)
}

/// A scrap allowance in percent (0..=100), kept in basis points.
pub fn scrap_percent(value: f64, field: &str) -> Result<i64, FieldError> {
    if !value.is_finite() || !(0.0..=100.0).contains(&value) {
        return Err(FieldError::new(
            field,
            format!("must be a percentage between 0 and 100, got {value}"),
        ));
    }
    Ok((value * 100.0).round() as i64)
}

pub fn date(text: &str, field: &str) -> Result<NaiveDate, FieldError> {
    date_from_str(text.trim())
        .ok_or_else(|| FieldError::new(field, format!("{text:?} is not a YYYY-MM-DD date")))
}

/// A `YYYY-MM-DD` date, or `None` when empty.
pub fn optional_date(text: &str, field: &str) -> Result<Option<NaiveDate>, FieldError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    date(text, field).map(Some)
}

pub fn uuid(text: &str, field: &str) -> Result<Uuid, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    Uuid::parse_str(text).map_err(|_| FieldError::new(field, format!("{text:?} is not a UUID")))
}

pub fn material(request: &Material) -> Result<Material, FieldError> {
    let code = required_text(&request.code, "code")?;
    Ok(Material {
        name: name_or_code(&request.name, &code, "name")?,
        unit: required_text(&request.unit, "unit")?,
        code,
    })
}

pub fn supplier(request: &Supplier) -> Result<Supplier, FieldError> {
    let code = required_text(&request.code, "code")?;
    Ok(Supplier {
        name: name_or_code(&request.name, &code, "name")?,
        currency: currency(&request.currency, "currency")?,
        code,
    })
}

/// A checked offer: codes, lead time, price and MOQ in thousandths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferDef {
    pub supplier: String,
    pub material: String,
    pub lead_time_days: u32,
    pub unit_price_minor: i64,
    pub moq: Milli,
}

/// Lead times beyond ten years are typing errors, not suppliers.
const MAX_LEAD_TIME_DAYS: u32 = 3650;

pub fn offer(request: &SupplierOffer) -> Result<OfferDef, FieldError> {
    let supplier = required_text(&request.supplier, "supplier")?;
    let material = required_text(&request.material, "material")?;
    if request.lead_time_days > MAX_LEAD_TIME_DAYS {
        return Err(FieldError::new(
            "lead_time_days",
            format!("must be at most {MAX_LEAD_TIME_DAYS} days"),
        ));
    }
    if request.unit_price_minor < 0 {
        return Err(FieldError::new(
            "unit_price_minor",
            format!("must be >= 0, got {}", request.unit_price_minor),
        ));
    }
    Ok(OfferDef {
        supplier,
        material,
        lead_time_days: request.lead_time_days,
        unit_price_minor: request.unit_price_minor,
        moq: quantity(request.minimum_order_quantity, "minimum_order_quantity")?,
    })
}

/// A bill of materials: the product and its lines, one per material.
pub fn bill_of_materials(request: &BillOfMaterials) -> Result<(String, Vec<BomLine>), FieldError> {
    let product = required_text(&request.product, "product")?;
    if request.lines.is_empty() {
        return Err(FieldError::new(
            "lines",
            "a bill of materials needs at least one line",
        ));
    }
    if request.lines.len() > MAX_BOM_LINES {
        return Err(FieldError::new(
            "lines",
            format!("at most {MAX_BOM_LINES} lines"),
        ));
    }
    let mut seen = HashSet::new();
    let mut lines = Vec::with_capacity(request.lines.len());
    for (i, line) in request.lines.iter().enumerate() {
        let material = required_text(&line.material, &format!("lines[{i}].material"))?;
        if !seen.insert(material.clone()) {
            return Err(FieldError::new(
                format!("lines[{i}].material"),
                format!("material {material:?} appears twice; put its whole quantity on one line"),
            ));
        }
        let per_unit = positive_quantity(
            line.quantity_per_unit,
            &format!("lines[{i}].quantity_per_unit"),
        )?;
        let scrap_bp = scrap_percent(line.scrap_percent, &format!("lines[{i}].scrap_percent"))?;
        debug_assert!(scrap_bp <= FULL_PERCENT_BP);
        lines.push(BomLine {
            material,
            per_unit,
            scrap_bp,
        });
    }
    Ok((product, lines))
}

#[cfg(test)]
mod tests {
    use gendan_proto::v1::BomLine as WireLine;

    use super::*;

    #[test]
    fn quantities_are_kept_to_thousandths() {
        assert_eq!(quantity(1.5, "q").unwrap(), 1_500);
        assert_eq!(quantity(0.0004, "q").unwrap(), 0);
        assert_eq!(quantity(0.0005, "q").unwrap(), 1);
        assert_eq!(quantity(-1.0, "q").unwrap_err().field, "q");
        assert_eq!(quantity(f64::NAN, "q").unwrap_err().field, "q");
        assert_eq!(quantity(1e13, "q").unwrap_err().field, "q");
        assert_eq!(positive_quantity(0.0001, "q").unwrap_err().field, "q");
    }

    #[test]
    fn bom_errors_name_the_line() {
        let wire = |material: &str, per_unit: f64, scrap: f64| WireLine {
            material: material.to_owned(),
            quantity_per_unit: per_unit,
            scrap_percent: scrap,
        };
        let bom = |lines| BillOfMaterials {
            product: "shirt".into(),
            lines,
        };
        let (product, lines) = bill_of_materials(&bom(vec![
            wire("fabric", 1.5, 3.0),
            wire("button", 8.0, 0.0),
        ]))
        .unwrap();
        assert_eq!(product, "shirt");
        assert_eq!(lines[0].per_unit, 1_500);
        assert_eq!(lines[0].scrap_bp, 300);

        let field = |lines| bill_of_materials(&bom(lines)).unwrap_err().field;
        assert_eq!(field(vec![]), "lines");
        assert_eq!(
            field(vec![wire("fabric", 1.0, 0.0), wire("fabric", 1.0, 0.0)]),
            "lines[1].material"
        );
        assert_eq!(
            field(vec![wire("fabric", 0.0, 0.0)]),
            "lines[0].quantity_per_unit"
        );
        assert_eq!(
            field(vec![wire("fabric", 1.0, 101.0)]),
            "lines[0].scrap_percent"
        );
        assert_eq!(field(vec![wire(" ", 1.0, 0.0)]), "lines[0].material");
    }

    #[test]
    fn offers_and_suppliers_are_checked() {
        let good = SupplierOffer {
            supplier: "S1".into(),
            material: "fabric".into(),
            lead_time_days: 14,
            unit_price_minor: 250,
            minimum_order_quantity: 100.0,
            currency: String::new(),
        };
        assert_eq!(offer(&good).unwrap().moq, 100_000);
        let bad = SupplierOffer {
            unit_price_minor: -1,
            ..good.clone()
        };
        assert_eq!(offer(&bad).unwrap_err().field, "unit_price_minor");
        let bad = SupplierOffer {
            minimum_order_quantity: -1.0,
            ..good.clone()
        };
        assert_eq!(offer(&bad).unwrap_err().field, "minimum_order_quantity");
        let bad = SupplierOffer {
            lead_time_days: 10_000,
            ..good
        };
        assert_eq!(offer(&bad).unwrap_err().field, "lead_time_days");

        let supplier = |currency: &str| Supplier {
            code: "S1".into(),
            name: String::new(),
            currency: currency.into(),
        };
        assert_eq!(super::supplier(&supplier("EUR")).unwrap().name, "S1");
        assert_eq!(
            super::supplier(&supplier("eur")).unwrap_err().field,
            "currency"
        );
    }

    #[test]
    fn items_are_merged() {
        let item = |product: &str, quantity| gendan_proto::v1::ProductQuantity {
            product: product.to_owned(),
            quantity,
        };
        assert_eq!(
            items(&[item("a", 2), item("a", 3)], "items").unwrap(),
            vec![("a".to_owned(), 5)]
        );
        assert_eq!(
            items(&[item("a", 0)], "items").unwrap_err().field,
            "items[0].quantity"
        );
    }
}
