//! Carton label barcodes as a warehouse prints them: valid GS1 numbers
//! (with their mod-10 check digit) for the symbologies logistics checks.

use crate::sim::rng::fnv1a;

/// GS1 company prefix of the demo factory (690–699 is GS1 China).
const COMPANY_PREFIX: &str = "6901234";

/// The GS1 mod-10 check digit of `data` (the digits before the check digit).
pub fn gs1_check_digit(data: &str) -> u32 {
    let sum: u32 = data
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let digit = c.to_digit(10).unwrap_or(0);
            if i % 2 == 0 { digit * 3 } else { digit }
        })
        .sum();
    (10 - sum % 10) % 10
}

fn with_check_digit(data: String) -> String {
    let check = gs1_check_digit(&data);
    format!("{data}{check}")
}

/// The item reference of a product (five digits with the company prefix).
fn item_reference(product: &str) -> u64 {
    match product {
        "shirt-oxford" => 101,
        "jacket-denim" => 102,
        "tote-canvas" => 103,
        other => 200 + fnv1a(other) % 800,
    }
}

/// The product's GTIN-13: company prefix, item reference, check digit.
pub fn gtin13(product: &str) -> String {
    with_check_digit(format!("{COMPANY_PREFIX}{:05}", item_reference(product)))
}

/// The trade unit's GTIN-14: packaging indicator 1, then the GTIN-13's
/// data digits, with a new check digit.
pub fn gtin14(product: &str) -> String {
    let gtin13 = gtin13(product);
    with_check_digit(format!("1{}", &gtin13[..12]))
}

/// The carton's SSCC in GS1-128 form, `(00)` + 18 digits: extension digit,
/// company prefix, a serial from the order and carton number, check digit.
/// Unique per carton within an order.
pub fn sscc(order_id: &str, carton_number: u32) -> String {
    let serial = (fnv1a(order_id) % 10_000) * 100_000 + u64::from(carton_number) % 100_000;
    format!(
        "(00){}",
        with_check_digit(format!("0{COMPANY_PREFIX}{serial:09}"))
    )
}

/// A label barcode of `barcode_type` (as the packing list names it) for
/// one carton.
pub fn label(barcode_type: &str, order_id: &str, carton_number: u32, product: &str) -> String {
    let key: String = barcode_type
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .collect::<String>()
        .to_ascii_uppercase();
    match key.as_str() {
        "GS1128" => sscc(order_id, carton_number),
        "EAN13" => gtin13(product),
        "ITF14" => gtin14(product),
        _ => format!(
            "CTN-{}-{carton_number:05}",
            order_id
                .chars()
                .take(8)
                .collect::<String>()
                .to_ascii_uppercase()
        ),
    }
}

#[cfg(test)]
mod tests {
    use gendan_logistics::packing::Barcode;

    use super::*;

    #[test]
    fn check_digits_match_known_numbers() {
        assert_eq!(gs1_check_digit("400638133393"), 1);
        assert_eq!(gs1_check_digit("1400638133393"), 8);
        assert_eq!(gs1_check_digit("10614141123456789"), 7);
    }

    #[test]
    fn labels_pass_the_logistics_checks() {
        let order = "0193a5e2-7c4f-7d10-9a3e-5b2f8c1d4e6a";
        for product in ["shirt-oxford", "jacket-denim", "tote-canvas", "cap"] {
            for (name, barcode) in [
                ("GS1-128", Barcode::Gs1_128),
                ("EAN-13", Barcode::Ean13),
                ("ITF-14", Barcode::Itf14),
                ("CODE-128", Barcode::Code128),
            ] {
                for carton in [1, 7, 99_999] {
                    let value = label(name, order, carton, product);
                    assert_eq!(barcode.check(&value), Ok(()), "{name} {value}");
                }
            }
        }
        assert_eq!(gtin13("shirt-oxford").len(), 13);
        assert_eq!(gtin14("shirt-oxford").len(), 14);
        assert_eq!(sscc(order, 1).len(), 22);
    }

    #[test]
    fn ssccs_differ_per_carton() {
        let order = "0193a5e2-7c4f-7d10-9a3e-5b2f8c1d4e6a";
        let labels: std::collections::HashSet<_> = (1..500).map(|n| sscc(order, n)).collect();
        assert_eq!(labels.len(), 499);
    }
}
