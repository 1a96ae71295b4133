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

/// Requested products and quantities, at least one, each quantity above 0.
/// A product listed twice (two order lines of one article) is summed: one
/// plan per product is what production and procurement work with.
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
        if item.quantity == 0 {
            return Err(FieldError::new(
                format!("{field}[{i}].quantity"),
                "must be greater than 0",
            ));
        }
        match merged.iter_mut().find(|(known, _)| *known == product) {
            Some((_, quantity)) => {
                *quantity = quantity.checked_add(item.quantity).ok_or_else(|| {
                    FieldError::new(
                        format!("{field}[{i}].quantity"),
                        "total quantity is too large",
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
            product_quantities(&[item("a", u32::MAX), item("a", 1)], "items")
                .unwrap_err()
                .field,
            "items[1].quantity"
        );
        assert!(required_text(&"x".repeat(MAX_TEXT + 1), "name").is_err());
        assert_eq!(required_text("  y ", "name").unwrap(), "y");
    }
}
