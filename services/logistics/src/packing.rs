//! Packing, without a database: the customer's packing spec turned into a
//! packing list, shipping marks rendered from their template, carton label
//! barcodes validated, and what the WMS reports packed compared with the
//! packing list.
//!
//! One product per carton: cartons of a product = ceil(quantity / units per
//! carton), the last one holding the remainder; cartons are numbered 1..N
//! across the order in order-line order. Weights are kilograms rounded to
//! grams, as printed on documents.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Most cartons one order may need; more is a units-per-carton typo.
pub const MAX_CARTONS: u64 = 100_000;

/// Grams: two weights closer than this are the same weight.
const WEIGHT_TOLERANCE_KG: f64 = 0.0005;

/// Rounds kilograms to grams, the precision of documents and scales.
pub fn kg(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The carton label symbologies a customer may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Barcode {
    /// GS1-128, normally the carton's SSCC: `(00)` + 18 digits.
    Gs1_128,
    /// The product's GTIN-13.
    Ean13,
    /// The trade unit's GTIN-14.
    Itf14,
    /// Free Code 128 text.
    Code128,
}

impl Barcode {
    pub const NAMES: [&'static str; 4] = ["GS1-128", "EAN-13", "ITF-14", "CODE-128"];

    /// Parses a name, ignoring case and the hyphen (`ean13`, `EAN-13`).
    pub fn parse(name: &str) -> Option<Self> {
        let key: String = name
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .collect::<String>()
            .to_ascii_uppercase();
        match key.as_str() {
            "GS1128" => Some(Barcode::Gs1_128),
            "EAN13" => Some(Barcode::Ean13),
            "ITF14" => Some(Barcode::Itf14),
            "CODE128" => Some(Barcode::Code128),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Barcode::Gs1_128 => "GS1-128",
            Barcode::Ean13 => "EAN-13",
            Barcode::Itf14 => "ITF-14",
            Barcode::Code128 => "CODE-128",
        }
    }

    /// Whether `value` is a readable barcode of this type: the right length
    /// and characters and, for GS1 numbers, the right check digit.
    pub fn check(self, value: &str) -> Result<(), String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("no label barcode".to_owned());
        }
        match self {
            Barcode::Ean13 => gs1_number(value, 13),
            Barcode::Itf14 => gs1_number(value, 14),
            Barcode::Gs1_128 => {
                let sscc = value
                    .strip_prefix("(00)")
                    .or_else(|| value.strip_prefix("00").filter(|rest| rest.len() == 18));
                match sscc {
                    Some(digits) => gs1_number(digits, 18),
                    None if value.starts_with('(')
                        || value.starts_with(|c: char| c.is_ascii_digit()) =>
                    {
                        code128_text(value)
                    }
                    None => Err("does not start with a GS1 application identifier".to_owned()),
                }
            }
            Barcode::Code128 => code128_text(value),
        }
    }
}

impl fmt::Display for Barcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn code128_text(value: &str) -> Result<(), String> {
    if value.chars().count() > 80 {
        return Err("longer than 80 characters".to_owned());
    }
    if !value.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err("has characters Code 128 cannot encode".to_owned());
    }
    Ok(())
}

/// The GS1 mod-10 check digit of `data` (the digits before the check digit).
pub fn gs1_check_digit(data: &str) -> Option<u32> {
    let mut sum = 0;
    for (i, c) in data.chars().rev().enumerate() {
        let digit = c.to_digit(10)?;
        sum += if i % 2 == 0 { digit * 3 } else { digit };
    }
    Some((10 - sum % 10) % 10)
}

fn gs1_number(value: &str, digits: usize) -> Result<(), String> {
    if value.len() != digits || !value.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("must be {digits} digits"));
    }
    let (data, check) = value.split_at(digits - 1);
    let expected = gs1_check_digit(data).ok_or_else(|| format!("must be {digits} digits"))?;
    if check.parse::<u32>().ok() != Some(expected) {
        return Err(format!("check digit should be {expected}"));
    }
    Ok(())
}

/// Placeholders a marks template may use.
pub const PLACEHOLDERS: [&str; 6] = [
    "customer", "order", "carton", "total", "product", "quantity",
];

/// One piece of a parsed marks template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(String),
}

/// Splits a template into text and placeholders; unknown placeholders and
/// unbalanced braces are errors (a typo would print on every carton).
fn parse_template(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => return Err("has a '{' without its '}'".to_owned()),
                        Some(c) => name.push(c),
                    }
                }
                if !PLACEHOLDERS.contains(&name.as_str()) {
                    return Err(format!(
                        "unknown placeholder {{{name}}} (known: {})",
                        PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
                    ));
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Field(name));
            }
            '}' => return Err("has a '}' without its '{'".to_owned()),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Checks a marks template without rendering it.
pub fn check_template(template: &str) -> Result<(), String> {
    parse_template(template).map(|_| ())
}

/// What the placeholders of one carton's marks stand for.
#[derive(Debug, Clone)]
pub struct MarkValues<'a> {
    pub customer: &'a str,
    pub order: &'a str,
    pub carton: u32,
    pub total: u32,
    pub product: &'a str,
    pub quantity: u32,
}

/// Renders a template (checked on upsert; an invalid one renders as is).
pub fn render_marks(template: &str, values: &MarkValues<'_>) -> String {
    let Ok(pieces) = parse_template(template) else {
        return template.to_owned();
    };
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Field(name) => match name.as_str() {
                "customer" => out.push_str(values.customer),
                "order" => out.push_str(values.order),
                "carton" => out.push_str(&values.carton.to_string()),
                "total" => out.push_str(&values.total.to_string()),
                "product" => out.push_str(values.product),
                _ => out.push_str(&values.quantity.to_string()),
            },
        }
    }
    out
}

/// Marks as a scanner or an eye compares them: label printers upper-case
/// and re-wrap lines, so case and runs of whitespace do not count.
pub fn same_marks(a: &str, b: &str) -> bool {
    let normal = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase()
    };
    normal(a) == normal(b)
}

/// A customer's packing spec, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub customer: String,
    pub default_units_per_carton: u32,
    /// Product to units per carton, for products packed differently.
    pub units_per_carton: BTreeMap<String, u32>,
    pub marks_template: String,
    pub barcode: Barcode,
    pub max_gross_weight_kg: f64,
    pub carton_tare_kg: f64,
}

impl Spec {
    pub fn units_for(&self, product: &str) -> u32 {
        self.units_per_carton
            .get(product)
            .copied()
            .unwrap_or(self.default_units_per_carton)
    }
}

/// One carton of a packing list.
#[derive(Debug, Clone, PartialEq)]
pub struct Carton {
    pub carton_number: u32,
    pub product: String,
    pub quantity: u32,
    pub marks: String,
    pub net_weight_kg: f64,
    /// 0 when the product's unit weight is not known.
    pub gross_weight_kg: f64,
}

/// Order lines by product, in first-seen order, quantities summed.
pub fn merge_lines<'a>(
    lines: impl IntoIterator<Item = (&'a str, u32)>,
) -> Result<Vec<(String, u32)>, String> {
    let mut merged: Vec<(String, u32)> = Vec::new();
    for (product, quantity) in lines {
        let product = product.trim();
        if product.is_empty() {
            return Err("an order line has no product".to_owned());
        }
        if quantity == 0 {
            return Err(format!("the order line of {product:?} has quantity 0"));
        }
        match merged.iter_mut().find(|(known, _)| known == product) {
            Some((_, total)) => {
                *total = total
                    .checked_add(quantity)
                    .ok_or_else(|| format!("the total quantity of {product:?} is too large"))?;
            }
            None => merged.push((product.to_owned(), quantity)),
        }
    }
    if merged.is_empty() {
        return Err("the order has no lines".to_owned());
    }
    Ok(merged)
}

/// Builds the cartons of an order. `unit_net_kg` holds the products whose
/// weight is known. Fails when a full carton would be heavier than the
/// customer accepts: better to correct the spec now than to repack later.
pub fn build(
    order_id: &str,
    spec: &Spec,
    items: &[(String, u32)],
    unit_net_kg: &HashMap<String, f64>,
) -> Result<Vec<Carton>, String> {
    let mut plan: Vec<(String, u32, u32)> = Vec::with_capacity(items.len());
    let mut total: u64 = 0;
    for (product, quantity) in items {
        let per_carton = spec.units_for(product);
        if per_carton == 0 {
            return Err(format!("product {product:?} has 0 units per carton"));
        }
        if let Some(unit) = unit_net_kg.get(product) {
            let full = kg(f64::from(per_carton.min(*quantity)) * unit + spec.carton_tare_kg);
            if full > spec.max_gross_weight_kg + WEIGHT_TOLERANCE_KG {
                return Err(format!(
                    "product {product:?}: a carton of {} units weighs {full} kg, over the \
                     customer's maximum of {} kg; lower its units per carton",
                    per_carton.min(*quantity),
                    spec.max_gross_weight_kg
                ));
            }
        }
        total += u64::from(quantity.div_ceil(per_carton));
        plan.push((product.clone(), *quantity, per_carton));
    }
    if total > MAX_CARTONS {
        return Err(format!(
            "{total} cartons is more than the {MAX_CARTONS} one order may have"
        ));
    }
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    let mut cartons = Vec::with_capacity(total as usize);
    let mut number = 0;
    for (product, quantity, per_carton) in plan {
        let mut left = quantity;
        while left > 0 {
            let in_carton = left.min(per_carton);
            left -= in_carton;
            number += 1;
            let (net, gross) = match unit_net_kg.get(&product) {
                Some(unit) => {
                    let net = kg(f64::from(in_carton) * unit);
                    (net, kg(net + spec.carton_tare_kg))
                }
                None => (0.0, 0.0),
            };
            let marks = render_marks(
                &spec.marks_template,
                &MarkValues {
                    customer: &spec.customer,
                    order: order_id,
                    carton: number,
                    total,
                    product: &product,
                    quantity: in_carton,
                },
            );
            cartons.push(Carton {
                carton_number: number,
                product: product.clone(),
                quantity: in_carton,
                marks,
                net_weight_kg: net,
                gross_weight_kg: gross,
            });
        }
    }
    debug_assert_eq!(cartons.len(), total as usize);
    Ok(cartons)
}

/// What the packing list requires of every carton besides its contents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Requirements {
    pub barcode: Barcode,
    pub max_gross_weight_kg: f64,
}

/// One carton as the WMS reports it packed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PackedCarton {
    pub carton_number: u32,
    pub product: String,
    pub quantity: u32,
    pub marks: String,
    pub label_barcode: String,
    pub gross_weight_kg: f64,
}

/// Every difference between the packing list and what was packed, one
/// sentence each; empty when they match.
pub fn compare(
    expected: &[Carton],
    required: Requirements,
    packed: &[PackedCarton],
) -> Vec<String> {
    let mut mismatches = Vec::new();
    if packed.len() != expected.len() {
        mismatches.push(format!(
            "carton count: packed {}, packing list {}",
            packed.len(),
            expected.len()
        ));
    }

    let mut expected_totals: BTreeMap<&str, u64> = BTreeMap::new();
    for carton in expected {
        *expected_totals.entry(&carton.product).or_default() += u64::from(carton.quantity);
    }
    let mut packed_totals: BTreeMap<&str, u64> = BTreeMap::new();
    for carton in packed {
        *packed_totals.entry(carton.product.trim()).or_default() += u64::from(carton.quantity);
    }
    for (product, want) in &expected_totals {
        let got = packed_totals.get(product).copied().unwrap_or(0);
        if got != *want {
            mismatches.push(format!(
                "product {product}: packed {got} units, packing list {want}"
            ));
        }
    }
    for (product, got) in &packed_totals {
        if !expected_totals.contains_key(product) {
            mismatches.push(format!(
                "product {product}: packed {got} units, not on the packing list"
            ));
        }
    }

    let mut by_number: BTreeMap<u32, Vec<&PackedCarton>> = BTreeMap::new();
    for carton in packed {
        by_number
            .entry(carton.carton_number)
            .or_default()
            .push(carton);
    }
    let mut sscc_seen: HashMap<&str, u32> = HashMap::new();
    for want in expected {
        let Some(reported) = by_number.get(&want.carton_number) else {
            mismatches.push(format!("carton {}: missing", want.carton_number));
            continue;
        };
        let n = want.carton_number;
        if reported.len() > 1 {
            mismatches.push(format!("carton {n}: reported {} times", reported.len()));
        }
        let got = reported[0];
        if got.product.trim() != want.product {
            mismatches.push(format!(
                "carton {n}: product {}, packing list {}",
                got.product.trim(),
                want.product
            ));
        }
        if got.quantity != want.quantity {
            mismatches.push(format!(
                "carton {n}: {} units, packing list {}",
                got.quantity, want.quantity
            ));
        }
        if !same_marks(&got.marks, &want.marks) {
            mismatches.push(format!(
                "carton {n}: marks {:?}, packing list {:?}",
                got.marks.trim(),
                want.marks
            ));
        }
        match required.barcode.check(&got.label_barcode) {
            Err(problem) if got.label_barcode.trim().is_empty() => {
                mismatches.push(format!("carton {n}: {problem}"));
            }
            Err(problem) => mismatches.push(format!(
                "carton {n}: label barcode {:?} is not a valid {}: {problem}",
                got.label_barcode.trim(),
                required.barcode
            )),
            Ok(()) => {
                // An SSCC names one carton: two cartons with one SSCC
                // cannot both be traced.
                if required.barcode == Barcode::Gs1_128
                    && let Some(first) = sscc_seen.insert(got.label_barcode.trim(), n)
                {
                    mismatches.push(format!(
                        "carton {n}: label barcode {:?} is also on carton {first}",
                        got.label_barcode.trim()
                    ));
                }
            }
        }
        if !got.gross_weight_kg.is_finite() || got.gross_weight_kg <= 0.0 {
            mismatches.push(format!("carton {n}: no gross weight reported"));
        } else if got.gross_weight_kg > required.max_gross_weight_kg + WEIGHT_TOLERANCE_KG {
            mismatches.push(format!(
                "carton {n}: gross weight {} kg over the maximum of {} kg",
                kg(got.gross_weight_kg),
                required.max_gross_weight_kg
            ));
        }
    }
    for number in by_number.keys() {
        if !expected.iter().any(|c| c.carton_number == *number) {
            mismatches.push(format!(
                "carton {number}: not on the packing list ({} cartons)",
                expected.len()
            ));
        }
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn spec() -> Spec {
        Spec {
            customer: "Nordwind GmbH".into(),
            default_units_per_carton: 24,
            units_per_carton: BTreeMap::from([("jacket".to_owned(), 10)]),
            marks_template:
                "{customer} / PO {order} / C/NO {carton} OF {total} / {product} x{quantity}".into(),
            barcode: Barcode::Ean13,
            max_gross_weight_kg: 20.0,
            carton_tare_kg: 0.8,
        }
    }

    #[test]
    fn cartons_are_numbered_across_products_with_the_remainder_last() {
        let items = vec![("shirt".to_owned(), 50), ("jacket".to_owned(), 20)];
        let weights = HashMap::from([("shirt".to_owned(), 0.25)]);
        let cartons = build("ord-1", &spec(), &items, &weights).unwrap();
        // shirts: 24 + 24 + 2, jackets: 10 + 10.
        assert_eq!(cartons.len(), 5);
        assert_eq!(
            cartons
                .iter()
                .map(|c| (c.carton_number, c.quantity))
                .collect::<Vec<_>>(),
            vec![(1, 24), (2, 24), (3, 2), (4, 10), (5, 10)]
        );
        assert_eq!(
            cartons[2].marks,
            "Nordwind GmbH / PO ord-1 / C/NO 3 OF 5 / shirt x2"
        );
        assert_eq!(cartons[0].net_weight_kg, 6.0);
        assert_eq!(cartons[0].gross_weight_kg, 6.8);
        // No weight known for jackets yet.
        assert_eq!(cartons[3].gross_weight_kg, 0.0);
    }

    #[test]
    fn a_carton_over_the_weight_limit_is_refused() {
        let items = vec![("shirt".to_owned(), 50)];
        let weights = HashMap::from([("shirt".to_owned(), 1.0)]);
        let err = build("o", &spec(), &items, &weights).unwrap_err();
        assert!(err.contains("24.8 kg"), "{err}");
    }

    #[test]
    fn templates_are_checked() {
        assert!(check_template("{customer} C/NO {carton}/{total}").is_ok());
        assert!(check_template("{cust}").unwrap_err().contains("{cust}"));
        assert!(check_template("{carton").is_err());
        assert!(check_template("carton}").is_err());
    }

    #[test]
    fn barcodes_are_checked_by_type() {
        assert!(Barcode::Ean13.check("4006381333931").is_ok());
        assert!(
            Barcode::Ean13
                .check("4006381333932")
                .unwrap_err()
                .contains("check digit")
        );
        assert!(Barcode::Ean13.check("400638133393").is_err());
        assert!(Barcode::Itf14.check("14006381333938").is_ok());
        assert!(Barcode::Gs1_128.check("(00)106141411234567897").is_ok());
        assert!(Barcode::Gs1_128.check("(00)106141411234567890").is_err());
        assert!(Barcode::Gs1_128.check("(01)04006381333931").is_ok());
        assert!(Barcode::Gs1_128.check("ABC").is_err());
        assert!(Barcode::Code128.check("CTN-0001").is_ok());
        assert!(Barcode::Code128.check("").is_err());
        assert_eq!(Barcode::parse("ean13"), Some(Barcode::Ean13));
        assert_eq!(Barcode::parse("gs1-128"), Some(Barcode::Gs1_128));
        assert_eq!(Barcode::parse("qr"), None);
    }

    fn packed_as_listed(cartons: &[Carton]) -> Vec<PackedCarton> {
        cartons
            .iter()
            .map(|c| PackedCarton {
                carton_number: c.carton_number,
                product: c.product.clone(),
                quantity: c.quantity,
                marks: c.marks.to_uppercase(),
                label_barcode: "4006381333931".into(),
                gross_weight_kg: 7.0,
            })
            .collect()
    }

    const REQUIRED: Requirements = Requirements {
        barcode: Barcode::Ean13,
        max_gross_weight_kg: 20.0,
    };

    #[test]
    fn packed_as_listed_matches() {
        let items = vec![("shirt".to_owned(), 50)];
        let cartons = build("o", &spec(), &items, &HashMap::new()).unwrap();
        assert_eq!(
            compare(&cartons, REQUIRED, &packed_as_listed(&cartons)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_difference_is_described() {
        let items = vec![("shirt".to_owned(), 50)];
        let cartons = build("o", &spec(), &items, &HashMap::new()).unwrap();
        let mut packed = packed_as_listed(&cartons);
        packed[1].quantity = 20;
        packed[0].label_barcode = String::new();
        packed[2].gross_weight_kg = 21.5;
        packed[2].marks = "WRONG".into();
        let mismatches = compare(&cartons, REQUIRED, &packed);
        assert_eq!(
            mismatches,
            vec![
                "product shirt: packed 46 units, packing list 50".to_owned(),
                "carton 1: no label barcode".to_owned(),
                "carton 2: 20 units, packing list 24".to_owned(),
                format!(
                    "carton 3: marks \"WRONG\", packing list {:?}",
                    cartons[2].marks
                ),
                "carton 3: gross weight 21.5 kg over the maximum of 20 kg".to_owned(),
            ]
        );

        let missing = compare(&cartons, REQUIRED, &packed_as_listed(&cartons)[..2]);
        assert!(missing.contains(&"carton count: packed 2, packing list 3".to_owned()));
        assert!(missing.contains(&"carton 3: missing".to_owned()));
    }

    #[test]
    fn a_repeated_sscc_is_a_mismatch() {
        let items = vec![("shirt".to_owned(), 30)];
        let cartons = build("o", &spec(), &items, &HashMap::new()).unwrap();
        let mut packed = packed_as_listed(&cartons);
        for carton in &mut packed {
            carton.label_barcode = "(00)106141411234567897".into();
        }
        let required = Requirements {
            barcode: Barcode::Gs1_128,
            ..REQUIRED
        };
        assert_eq!(
            compare(&cartons, required, &packed),
            vec!["carton 2: label barcode \"(00)106141411234567897\" is also on carton 1"]
        );
    }

    proptest! {
        #[test]
        fn cartons_hold_exactly_the_order(quantities in proptest::collection::vec(1u32..5_000, 1..5), per_carton in 1u32..200) {
            let items: Vec<(String, u32)> = quantities.iter().enumerate().map(|(i, q)| (format!("p{i}"), *q)).collect();
            let spec = Spec { default_units_per_carton: per_carton, units_per_carton: BTreeMap::new(), ..spec() };
            let cartons = build("o", &spec, &items, &HashMap::new()).unwrap();
            let expected: u32 = quantities.iter().map(|q| q.div_ceil(per_carton)).sum();
            prop_assert_eq!(cartons.len() as u32, expected);
            for (i, carton) in cartons.iter().enumerate() {
                prop_assert_eq!(carton.carton_number as usize, i + 1);
                prop_assert!(carton.quantity >= 1 && carton.quantity <= per_carton);
            }
            for (product, quantity) in &items {
                let packed: u32 = cartons.iter().filter(|c| &c.product == product).map(|c| c.quantity).sum();
                prop_assert_eq!(packed, *quantity);
            }
        }
    }
}
