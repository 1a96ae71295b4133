//! Field checks every service's gRPC and command validation shares, each
//! failing with a [`FieldError`] that names the field.

use gendan_proto::v1::ProductQuantity;

use crate::FieldError;

/// Longest free-text field (names, codes, references) the services accept.
pub const MAX_TEXT: usize = 200;

/// A non-empty text of at most [`MAX_TEXT`] characters, trimmed.
pub fn required_text(value: &str, field: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(FieldError::new(
            field,
            format!("longer than {MAX_TEXT} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// The most units one line (and one product of a plan) may ask for: far
/// beyond any real order, well below what overflows a plan's hours, and
/// low enough that a client's sign bug (`u32::MAX` for -1) is refused
/// instead of being planned.
pub const MAX_QUANTITY: u32 = 10_000_000;

/// A quantity above 0 and at most [`MAX_QUANTITY`].
pub fn quantity(value: u32, field: &str) -> Result<u32, FieldError> {
    if value == 0 {
        return Err(FieldError::new(field, "must be greater than 0"));
    }
    if value > MAX_QUANTITY {
        return Err(FieldError::new(
            field,
            format!("{value} is more than {MAX_QUANTITY} units"),
        ));
    }
    Ok(value)
}

/// Requested products and quantities, at least one, each quantity above 0
/// and at most [`MAX_QUANTITY`]. A product listed twice (two order lines of
/// one article) is summed, up to the same bound: one plan per product is
/// what production and procurement work with.
pub fn product_quantities(
    items: &[ProductQuantity],
    field: &str,
) -> Result<Vec<(String, u32)>, FieldError> {
    if items.is_empty() {
        return Err(FieldError::new(field, "at least one product is required"));
    }
    let mut merged: Vec<(String, u32)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let product = required_text(&item.product, &format!("{field}[{i}].product"))?;
        let field_of_item = format!("{field}[{i}].quantity");
        quantity(item.quantity, &field_of_item)?;
        match merged.iter_mut().find(|(known, _)| *known == product) {
            Some((_, total)) => {
                *total = total
                    .checked_add(item.quantity)
                    .filter(|total| *total <= MAX_QUANTITY)
                    .ok_or_else(|| {
                        FieldError::new(
                            field_of_item,
                            format!("the product's total is more than {MAX_QUANTITY} units"),
                        )
                    })?;
            }
            None => merged.push((product, item.quantity)),
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(product: &str, quantity: u32) -> ProductQuantity {
        ProductQuantity {
            product: product.into(),
            quantity,
        }
    }

    #[test]
    fn products_listed_twice_are_summed_and_bad_fields_are_named() {
        let merged =
            product_quantities(&[item("a", 2), item(" b ", 1), item("a", 3)], "items").unwrap();
        assert_eq!(merged, vec![("a".to_owned(), 5), ("b".to_owned(), 1)]);
        assert_eq!(product_quantities(&[], "items").unwrap_err().field, "items");
        assert_eq!(
            product_quantities(&[item("a", 1), item("", 1)], "items")
                .unwrap_err()
                .field,
            "items[1].product"
        );
        assert_eq!(
            product_quantities(&[item("a", 0)], "items")
                .unwrap_err()
                .field,
            "items[0].quantity"
        );
        assert_eq!(
            product_quantities(&[item("a", MAX_QUANTITY), item("a", 1)], "items")
                .unwrap_err()
                .field,
            "items[1].quantity"
        );
        // A client's -1 as u32 is refused, not planned.
        let sign_bug = product_quantities(&[item("a", u32::MAX)], "items").unwrap_err();
        assert_eq!(sign_bug.field, "items[0].quantity");
        assert!(sign_bug.problem.contains("10000000"), "{sign_bug:?}");
        assert_eq!(quantity(MAX_QUANTITY, "q").unwrap(), MAX_QUANTITY);
        assert!(required_text(&"x".repeat(MAX_TEXT + 1), "name").is_err());
        assert_eq!(required_text("  y ", "name").unwrap(), "y");
    }
}
