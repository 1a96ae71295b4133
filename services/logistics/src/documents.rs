//! The shipping document set, without a database: built from the order, the
//! product master and the stored packing list, then cross-checked.
//!
//! Export orders get a commercial invoice, a packing list, a customs
//! declaration, a certificate of origin and an inspection certificate;
//! domestic orders the invoice and packing list only. [`build`] never
//! refuses: missing data (no HS code, no packing list) is left visibly empty
//! in the document, and [`cross_check`] is the one place that judges the
//! set. It checks what customs and the customer's bank check: every product
//! has an HS code, a net weight and an origin; quantities, values, HS codes
//! and the consignee agree between documents; totals add up. Each problem
//! names the documents it concerns, so every document carries its own status.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::packing::{Carton, kg};

pub const COMMERCIAL_INVOICE: &str = "commercial_invoice";
pub const PACKING_LIST: &str = "packing_list";
pub const CUSTOMS_DECLARATION: &str = "customs_declaration";
pub const CERTIFICATE_OF_ORIGIN: &str = "certificate_of_origin";
pub const INSPECTION_CERTIFICATE: &str = "inspection_certificate";

/// Weights closer than a gram are equal.
const WEIGHT_TOLERANCE_KG: f64 = 0.0005;

/// What the documents need from the order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderData {
    pub order_id: String,
    pub customer: String,
    /// The customer master's id; "" for orders made before it.
    pub customer_id: String,
    pub currency: String,
    pub incoterm: String,
    pub payment_terms: String,
    pub export: bool,
    pub lines: Vec<OrderLineData>,
    /// The order's total as the order service computed it; 0 when not sent.
    pub total_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLineData {
    pub product: String,
    pub spec: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

/// A product's master data, as far as it is known.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductData {
    pub description: String,
    pub hs_code: String,
    pub unit_net_weight_kg: f64,
    pub country_of_origin: String,
}

/// The stored packing list the documents copy.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPacking {
    pub customer: String,
    pub cartons: Vec<Carton>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub product: String,
    pub description: String,
    pub hs_code: String,
    pub quantity: u64,
    pub unit_price_minor: i64,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommercialInvoice {
    pub invoice_number: String,
    pub order_id: String,
    pub consignee: String,
    pub currency: String,
    pub incoterm: String,
    pub payment_terms: String,
    pub lines: Vec<InvoiceLine>,
    pub total_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackingListLine {
    pub product: String,
    pub quantity: u64,
    pub cartons: u32,
    /// "1-4": the carton numbers of this product.
    pub carton_numbers: String,
    pub net_weight_kg: f64,
    pub gross_weight_kg: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackingListDocument {
    pub order_id: String,
    pub consignee: String,
    /// False when no packing list had been prepared for the order.
    pub prepared: bool,
    pub total_cartons: u32,
    pub lines: Vec<PackingListLine>,
    pub total_net_weight_kg: f64,
    pub total_gross_weight_kg: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomsItem {
    pub product: String,
    pub description: String,
    pub hs_code: String,
    pub quantity: u64,
    pub value_minor: i64,
    /// None when the product has no unit net weight.
    pub net_weight_kg: Option<f64>,
    pub gross_weight_kg: f64,
    pub country_of_origin: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomsDeclaration {
    pub order_id: String,
    pub consignee: String,
    pub currency: String,
    pub incoterm: String,
    pub items: Vec<CustomsItem>,
    pub total_value_minor: i64,
    pub total_net_weight_kg: f64,
    pub total_gross_weight_kg: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginItem {
    pub product: String,
    pub description: String,
    pub hs_code: String,
    pub quantity: u64,
    pub country_of_origin: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateOfOrigin {
    pub certificate_number: String,
    pub order_id: String,
    pub consignee: String,
    pub items: Vec<OriginItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectedItem {
    pub product: String,
    pub description: String,
    pub quantity: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionCertificate {
    pub certificate_number: String,
    pub order_id: String,
    pub consignee: String,
    /// The passed final inspection, when the saga named it.
    pub inspection_id: Option<String>,
    pub result: String,
    pub statement: String,
    pub items: Vec<InspectedItem>,
}

/// The documents of one order.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentSet {
    pub invoice: CommercialInvoice,
    pub packing_list: PackingListDocument,
    /// The three below exist for export orders only.
    pub customs: Option<CustomsDeclaration>,
    pub origin: Option<CertificateOfOrigin>,
    pub inspection: Option<InspectionCertificate>,
}

impl DocumentSet {
    /// Document names in the order they are filed.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = vec![COMMERCIAL_INVOICE, PACKING_LIST];
        if self.customs.is_some() {
            names.push(CUSTOMS_DECLARATION);
        }
        if self.origin.is_some() {
            names.push(CERTIFICATE_OF_ORIGIN);
        }
        if self.inspection.is_some() {
            names.push(INSPECTION_CERTIFICATE);
        }
        names
    }

    /// Each document as JSON, in filing order.
    pub fn to_json(&self) -> Vec<(&'static str, String)> {
        fn json<T: Serialize>(value: &T) -> String {
            // Plain structs of strings and numbers always serialise.
            serde_json::to_string(value).unwrap_or_default()
        }
        let mut out = vec![
            (COMMERCIAL_INVOICE, json(&self.invoice)),
            (PACKING_LIST, json(&self.packing_list)),
        ];
        if let Some(customs) = &self.customs {
            out.push((CUSTOMS_DECLARATION, json(customs)));
        }
        if let Some(origin) = &self.origin {
            out.push((CERTIFICATE_OF_ORIGIN, json(origin)));
        }
        if let Some(inspection) = &self.inspection {
            out.push((INSPECTION_CERTIFICATE, json(inspection)));
        }
        out
    }
}

/// One problem found by the cross-check and the documents it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub documents: Vec<&'static str>,
    pub text: String,
}

impl Problem {
    fn new(documents: &[&'static str], text: impl Into<String>) -> Self {
        Problem {
            documents: documents.to_vec(),
            text: text.into(),
        }
    }
}

/// A short, stable document number from the order id.
fn number(prefix: &str, order_id: &str) -> String {
    let compact: String = order_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect::<String>()
        .to_ascii_uppercase();
    format!("{prefix}-{compact}")
}

/// Order lines summed per product, in first-seen order.
fn per_product(lines: &[OrderLineData]) -> Vec<(String, u64, i64, String)> {
    // (product, quantity, value, first spec)
    let mut out: Vec<(String, u64, i64, String)> = Vec::new();
    for line in lines {
        let amount = i64::from(line.quantity).saturating_mul(line.unit_price_minor);
        match out.iter_mut().find(|(p, ..)| *p == line.product) {
            Some((_, quantity, value, _)) => {
                *quantity += u64::from(line.quantity);
                *value = value.saturating_add(amount);
            }
            None => out.push((
                line.product.clone(),
                u64::from(line.quantity),
                amount,
                line.spec.clone(),
            )),
        }
    }
    out
}

/// Builds the document set. Amounts that overflow `i64` are saturated here
/// and reported by [`cross_check`], which recomputes them checked.
pub fn build(
    order: &OrderData,
    products: &BTreeMap<String, ProductData>,
    packing: Option<&StoredPacking>,
    inspection_id: Option<&str>,
) -> DocumentSet {
    let describe = |product: &str, spec: &str| -> String {
        match products.get(product) {
            Some(data) if !data.description.trim().is_empty() => data.description.clone(),
            _ if !spec.trim().is_empty() => format!("{product} ({})", spec.trim()),
            _ => product.to_owned(),
        }
    };
    let hs_code = |product: &str| {
        products
            .get(product)
            .map(|d| d.hs_code.clone())
            .unwrap_or_default()
    };

    let lines: Vec<InvoiceLine> = order
        .lines
        .iter()
        .map(|line| InvoiceLine {
            product: line.product.clone(),
            description: describe(&line.product, &line.spec),
            hs_code: hs_code(&line.product),
            quantity: u64::from(line.quantity),
            unit_price_minor: line.unit_price_minor,
            amount_minor: i64::from(line.quantity).saturating_mul(line.unit_price_minor),
        })
        .collect();
    let total_minor = lines
        .iter()
        .fold(0i64, |sum, line| sum.saturating_add(line.amount_minor));
    let invoice = CommercialInvoice {
        invoice_number: number("CI", &order.order_id),
        order_id: order.order_id.clone(),
        consignee: order.customer.clone(),
        currency: order.currency.clone(),
        incoterm: order.incoterm.clone(),
        payment_terms: order.payment_terms.clone(),
        lines,
        total_minor,
    };

    let packing_list = packing_document(order, packing);

    if !order.export {
        return DocumentSet {
            invoice,
            packing_list,
            customs: None,
            origin: None,
            inspection: None,
        };
    }

    let grouped = per_product(&order.lines);
    let packed_gross = |product: &str| {
        packing_list
            .lines
            .iter()
            .find(|l| l.product == product)
            .map_or(0.0, |l| l.gross_weight_kg)
    };
    let items: Vec<CustomsItem> = grouped
        .iter()
        .map(|(product, quantity, value, spec)| {
            let data = products.get(product);
            CustomsItem {
                product: product.clone(),
                description: describe(product, spec),
                hs_code: hs_code(product),
                quantity: *quantity,
                value_minor: *value,
                net_weight_kg: data
                    .filter(|d| d.unit_net_weight_kg > 0.0)
                    .map(|d| kg(*quantity as f64 * d.unit_net_weight_kg)),
                gross_weight_kg: packed_gross(product),
                country_of_origin: data
                    .map(|d| d.country_of_origin.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let customs = CustomsDeclaration {
        order_id: order.order_id.clone(),
        consignee: order.customer.clone(),
        currency: order.currency.clone(),
        incoterm: order.incoterm.clone(),
        total_value_minor: items
            .iter()
            .fold(0i64, |s, i| s.saturating_add(i.value_minor)),
        total_net_weight_kg: kg(items.iter().filter_map(|i| i.net_weight_kg).sum()),
        total_gross_weight_kg: kg(items.iter().map(|i| i.gross_weight_kg).sum()),
        items,
    };
    let origin = CertificateOfOrigin {
        certificate_number: number("CO", &order.order_id),
        order_id: order.order_id.clone(),
        consignee: order.customer.clone(),
        items: customs
            .items
            .iter()
            .map(|item| OriginItem {
                product: item.product.clone(),
                description: item.description.clone(),
                hs_code: item.hs_code.clone(),
                quantity: item.quantity,
                country_of_origin: item.country_of_origin.clone(),
            })
            .collect(),
    };
    let inspection_id = inspection_id.map(str::trim).filter(|id| !id.is_empty());
    let statement = match inspection_id {
        Some(id) => format!(
            "This is to certify that the goods of order {} listed below passed final inspection {id} before shipment.",
            order.order_id
        ),
        None => format!(
            "This is to certify that the goods of order {} listed below passed final inspection before shipment.",
            order.order_id
        ),
    };
    let inspection = InspectionCertificate {
        certificate_number: number("IC", &order.order_id),
        order_id: order.order_id.clone(),
        consignee: order.customer.clone(),
        inspection_id: inspection_id.map(str::to_owned),
        result: "passed".to_owned(),
        statement,
        items: customs
            .items
            .iter()
            .map(|item| InspectedItem {
                product: item.product.clone(),
                description: item.description.clone(),
                quantity: item.quantity,
            })
            .collect(),
    };
    DocumentSet {
        invoice,
        packing_list,
        customs: Some(customs),
        origin: Some(origin),
        inspection: Some(inspection),
    }
}

fn packing_document(order: &OrderData, packing: Option<&StoredPacking>) -> PackingListDocument {
    let Some(packing) = packing else {
        return PackingListDocument {
            order_id: order.order_id.clone(),
            consignee: order.customer.clone(),
            prepared: false,
            total_cartons: 0,
            lines: Vec::new(),
            total_net_weight_kg: 0.0,
            total_gross_weight_kg: 0.0,
        };
    };
    let mut lines: Vec<PackingListLine> = Vec::new();
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for carton in &packing.cartons {
        match lines.iter().position(|l| l.product == carton.product) {
            Some(i) => {
                let line = &mut lines[i];
                line.quantity += u64::from(carton.quantity);
                line.cartons += 1;
                line.net_weight_kg = kg(line.net_weight_kg + carton.net_weight_kg);
                line.gross_weight_kg = kg(line.gross_weight_kg + carton.gross_weight_kg);
                ranges[i].0 = ranges[i].0.min(carton.carton_number);
                ranges[i].1 = ranges[i].1.max(carton.carton_number);
            }
            None => {
                lines.push(PackingListLine {
                    product: carton.product.clone(),
                    quantity: u64::from(carton.quantity),
                    cartons: 1,
                    carton_numbers: String::new(),
                    net_weight_kg: carton.net_weight_kg,
                    gross_weight_kg: carton.gross_weight_kg,
                });
                ranges.push((carton.carton_number, carton.carton_number));
            }
        }
    }
    for (line, (first, last)) in lines.iter_mut().zip(ranges) {
        line.carton_numbers = if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        };
    }
    PackingListDocument {
        order_id: order.order_id.clone(),
        consignee: packing.customer.clone(),
        prepared: true,
        total_cartons: u32::try_from(packing.cartons.len()).unwrap_or(u32::MAX),
        total_net_weight_kg: kg(lines.iter().map(|l| l.net_weight_kg).sum()),
        total_gross_weight_kg: kg(lines.iter().map(|l| l.gross_weight_kg).sum()),
        lines,
    }
}

/// Every problem of the set; empty when it is ready to file.
pub fn cross_check(set: &DocumentSet) -> Vec<Problem> {
    let mut problems = Vec::new();
    let invoice = &set.invoice;

    // The invoice adds up (recomputed with checked arithmetic).
    let mut total: Option<i64> = Some(0);
    for line in &invoice.lines {
        let amount = i64::try_from(line.quantity)
            .ok()
            .and_then(|q| q.checked_mul(line.unit_price_minor));
        match amount {
            Some(amount) if amount == line.amount_minor => {}
            Some(amount) => problems.push(Problem::new(
                &[COMMERCIAL_INVOICE],
                format!(
                    "product {}: amount {} is not {} x {} = {amount}",
                    line.product, line.amount_minor, line.quantity, line.unit_price_minor
                ),
            )),
            None => problems.push(Problem::new(
                &[COMMERCIAL_INVOICE],
                format!(
                    "product {}: the amount does not fit in minor units",
                    line.product
                ),
            )),
        }
        total = total.and_then(|t| amount.and_then(|a| t.checked_add(a)));
    }
    match total {
        Some(total) if total == invoice.total_minor => {}
        Some(total) => problems.push(Problem::new(
            &[COMMERCIAL_INVOICE],
            format!(
                "total {} is not the sum of the lines {total}",
                invoice.total_minor
            ),
        )),
        None => problems.push(Problem::new(
            &[COMMERCIAL_INVOICE],
            "the invoice total does not fit in minor units",
        )),
    }

    // Quantities per product, from each document.
    let mut invoice_qty: BTreeMap<&str, u64> = BTreeMap::new();
    let mut invoice_value: BTreeMap<&str, i64> = BTreeMap::new();
    let mut invoice_hs: BTreeMap<&str, &str> = BTreeMap::new();
    for line in &invoice.lines {
        *invoice_qty.entry(&line.product).or_default() += line.quantity;
        let value = invoice_value.entry(&line.product).or_default();
        *value = value.saturating_add(line.amount_minor);
        invoice_hs.entry(&line.product).or_insert(&line.hs_code);
    }

    let packing = &set.packing_list;
    if !packing.prepared {
        problems.push(Problem::new(
            &[PACKING_LIST],
            "no packing list has been prepared for the order",
        ));
    } else {
        let packed: BTreeMap<&str, u64> = packing
            .lines
            .iter()
            .map(|l| (l.product.as_str(), l.quantity))
            .collect();
        compare_quantities(
            &mut problems,
            (COMMERCIAL_INVOICE, &invoice_qty),
            (PACKING_LIST, &packed),
        );
        let cartons: u32 = packing.lines.iter().map(|l| l.cartons).sum();
        if cartons != packing.total_cartons {
            problems.push(Problem::new(
                &[PACKING_LIST],
                format!(
                    "{} cartons in total but the lines count {cartons}",
                    packing.total_cartons
                ),
            ));
        }
    }

    let mut consignees = vec![(COMMERCIAL_INVOICE, invoice.consignee.as_str())];
    if packing.prepared {
        consignees.push((PACKING_LIST, packing.consignee.as_str()));
    }

    if let Some(customs) = &set.customs {
        consignees.push((CUSTOMS_DECLARATION, customs.consignee.as_str()));
        let qty: BTreeMap<&str, u64> = customs
            .items
            .iter()
            .map(|i| (i.product.as_str(), i.quantity))
            .collect();
        compare_quantities(
            &mut problems,
            (COMMERCIAL_INVOICE, &invoice_qty),
            (CUSTOMS_DECLARATION, &qty),
        );
        let mut total_value: i64 = 0;
        for item in &customs.items {
            total_value = total_value.saturating_add(item.value_minor);
            let name = &item.product;
            if item.hs_code.is_empty() {
                problems.push(Problem::new(
                    &[CUSTOMS_DECLARATION, CERTIFICATE_OF_ORIGIN],
                    format!("product {name} has no HS code"),
                ));
            } else if invoice_hs
                .get(name.as_str())
                .is_some_and(|hs| *hs != item.hs_code)
            {
                problems.push(Problem::new(
                    &[COMMERCIAL_INVOICE, CUSTOMS_DECLARATION],
                    format!(
                        "product {name}: HS code {} on the customs declaration, {} on the commercial invoice",
                        item.hs_code, invoice_hs[name.as_str()]
                    ),
                ));
            }
            match item.net_weight_kg {
                None => problems.push(Problem::new(
                    &[CUSTOMS_DECLARATION],
                    format!("product {name} has no net weight"),
                )),
                Some(net) => {
                    if let Some(line) = packing.lines.iter().find(|l| &l.product == name)
                        && (line.net_weight_kg - net).abs() > WEIGHT_TOLERANCE_KG
                    {
                        problems.push(Problem::new(
                            &[CUSTOMS_DECLARATION, PACKING_LIST],
                            format!(
                                "product {name}: net weight {net} kg on the customs declaration, {} kg on the packing list",
                                line.net_weight_kg
                            ),
                        ));
                    }
                    if item.gross_weight_kg + WEIGHT_TOLERANCE_KG < net {
                        problems.push(Problem::new(
                            &[CUSTOMS_DECLARATION],
                            format!(
                                "product {name}: gross weight {} kg is less than the net weight {net} kg",
                                item.gross_weight_kg
                            ),
                        ));
                    }
                }
            }
            if item.country_of_origin.is_empty() {
                problems.push(Problem::new(
                    &[CUSTOMS_DECLARATION, CERTIFICATE_OF_ORIGIN],
                    format!("product {name} has no country of origin"),
                ));
            }
            let invoiced = invoice_value.get(name.as_str()).copied().unwrap_or(0);
            if invoiced != item.value_minor {
                problems.push(Problem::new(
                    &[COMMERCIAL_INVOICE, CUSTOMS_DECLARATION],
                    format!(
                        "product {name}: value {} on the customs declaration, {invoiced} on the commercial invoice",
                        item.value_minor
                    ),
                ));
            }
        }
        if total_value != customs.total_value_minor {
            problems.push(Problem::new(
                &[CUSTOMS_DECLARATION],
                format!(
                    "declared total {} is not the sum of the items {total_value}",
                    customs.total_value_minor
                ),
            ));
        }
        if customs.total_value_minor != invoice.total_minor {
            problems.push(Problem::new(
                &[COMMERCIAL_INVOICE, CUSTOMS_DECLARATION],
                format!(
                    "declared value {} {} differs from the invoice total {}",
                    customs.total_value_minor, customs.currency, invoice.total_minor
                ),
            ));
        }
        if customs.currency != invoice.currency {
            problems.push(Problem::new(
                &[COMMERCIAL_INVOICE, CUSTOMS_DECLARATION],
                format!(
                    "currency {} on the customs declaration, {} on the commercial invoice",
                    customs.currency, invoice.currency
                ),
            ));
        }

        if let Some(origin) = &set.origin {
            consignees.push((CERTIFICATE_OF_ORIGIN, origin.consignee.as_str()));
            let qty: BTreeMap<&str, u64> = origin
                .items
                .iter()
                .map(|i| (i.product.as_str(), i.quantity))
                .collect();
            compare_quantities(
                &mut problems,
                (COMMERCIAL_INVOICE, &invoice_qty),
                (CERTIFICATE_OF_ORIGIN, &qty),
            );
            for item in &origin.items {
                let declared = customs.items.iter().find(|c| c.product == item.product);
                if let Some(declared) = declared
                    && (declared.hs_code != item.hs_code
                        || declared.country_of_origin != item.country_of_origin)
                {
                    problems.push(Problem::new(
                        &[CUSTOMS_DECLARATION, CERTIFICATE_OF_ORIGIN],
                        format!(
                            "product {}: HS code / origin {} / {} on the certificate of origin, {} / {} on the customs declaration",
                            item.product, item.hs_code, item.country_of_origin, declared.hs_code, declared.country_of_origin
                        ),
                    ));
                }
            }
        } else {
            problems.push(Problem::new(
                &[CERTIFICATE_OF_ORIGIN],
                "missing for an export order",
            ));
        }
    } else if set.origin.is_some() || set.inspection.is_some() {
        problems.push(Problem::new(
            &[CUSTOMS_DECLARATION],
            "missing for an export order",
        ));
    }

    if let Some(inspection) = &set.inspection {
        consignees.push((INSPECTION_CERTIFICATE, inspection.consignee.as_str()));
        let qty: BTreeMap<&str, u64> = inspection
            .items
            .iter()
            .map(|i| (i.product.as_str(), i.quantity))
            .collect();
        compare_quantities(
            &mut problems,
            (COMMERCIAL_INVOICE, &invoice_qty),
            (INSPECTION_CERTIFICATE, &qty),
        );
        if inspection.order_id != invoice.order_id {
            problems.push(Problem::new(
                &[INSPECTION_CERTIFICATE],
                format!(
                    "refers to order {}, not {}",
                    inspection.order_id, invoice.order_id
                ),
            ));
        }
    } else if set.customs.is_some() {
        problems.push(Problem::new(
            &[INSPECTION_CERTIFICATE],
            "missing for an export order",
        ));
    }

    let (_, expected) = consignees[0];
    for (document, consignee) in &consignees[1..] {
        if consignee.trim() != expected.trim() {
            problems.push(Problem::new(
                &[COMMERCIAL_INVOICE, document],
                format!(
                    "consignee {consignee:?} on the {}, {expected:?} on the commercial invoice",
                    document.replace('_', " ")
                ),
            ));
        }
    }
    problems
}

/// Per product, `other` must list what the invoice lists, nothing more.
fn compare_quantities(
    problems: &mut Vec<Problem>,
    (base_name, base): (&'static str, &BTreeMap<&str, u64>),
    (other_name, other): (&'static str, &BTreeMap<&str, u64>),
) {
    for (product, want) in base {
        let got = other.get(product).copied().unwrap_or(0);
        if got != *want {
            problems.push(Problem::new(
                &[base_name, other_name],
                format!(
                    "product {product}: quantity {got} on the {}, {want} on the {}",
                    other_name.replace('_', " "),
                    base_name.replace('_', " ")
                ),
            ));
        }
    }
    for (product, got) in other {
        if !base.contains_key(product) {
            problems.push(Problem::new(
                &[base_name, other_name],
                format!(
                    "product {product}: quantity {got} on the {}, not on the {}",
                    other_name.replace('_', " "),
                    base_name.replace('_', " ")
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(export: bool) -> OrderData {
        OrderData {
            order_id: "0193a5e2-7c4f-7d10-9a3e-5b2f8c1d4e6a".into(),
            customer: "Nordwind GmbH".into(),
            customer_id: "NORDWIND".into(),
            currency: "USD".into(),
            incoterm: "FOB".into(),
            payment_terms: "30% T/T deposit, 70% against B/L copy".into(),
            export,
            lines: vec![
                OrderLineData {
                    product: "shirt".into(),
                    spec: "oxford".into(),
                    quantity: 30,
                    unit_price_minor: 1250,
                },
                OrderLineData {
                    product: "cap".into(),
                    spec: String::new(),
                    quantity: 10,
                    unit_price_minor: 300,
                },
            ],
            total_minor: 30 * 1250 + 10 * 300,
        }
    }

    fn products() -> BTreeMap<String, ProductData> {
        let data = |description: &str, hs: &str, weight| ProductData {
            description: description.into(),
            hs_code: hs.into(),
            unit_net_weight_kg: weight,
            country_of_origin: "CN".into(),
        };
        BTreeMap::from([
            (
                "shirt".to_owned(),
                data("Men's cotton shirt", "620520", 0.25),
            ),
            ("cap".to_owned(), data("Cotton cap", "650500", 0.1)),
        ])
    }

    fn carton(n: u32, product: &str, quantity: u32, unit: f64) -> Carton {
        let net = kg(f64::from(quantity) * unit);
        Carton {
            carton_number: n,
            product: product.into(),
            quantity,
            marks: String::new(),
            net_weight_kg: net,
            gross_weight_kg: kg(net + 0.5),
        }
    }

    fn packing() -> StoredPacking {
        StoredPacking {
            customer: "Nordwind GmbH".into(),
            cartons: vec![
                carton(1, "shirt", 24, 0.25),
                carton(2, "shirt", 6, 0.25),
                carton(3, "cap", 10, 0.1),
            ],
        }
    }

    fn texts(problems: &[Problem]) -> Vec<String> {
        problems.iter().map(|p| p.text.clone()).collect()
    }

    #[test]
    fn a_complete_export_set_passes() {
        let set = build(&order(true), &products(), Some(&packing()), Some("insp-7"));
        assert_eq!(texts(&cross_check(&set)), Vec::<String>::new());
        assert_eq!(set.names().len(), 5);
        assert_eq!(set.invoice.total_minor, 40_500);
        let customs = set.customs.as_ref().unwrap();
        assert_eq!(customs.items[0].net_weight_kg, Some(7.5));
        assert_eq!(customs.items[0].gross_weight_kg, 8.5);
        assert_eq!(set.packing_list.lines[0].carton_numbers, "1-2");
        let inspection = set.inspection.as_ref().unwrap();
        assert!(
            inspection.statement.contains("insp-7"),
            "{}",
            inspection.statement
        );
        assert!(
            set.to_json()[0]
                .1
                .contains("\"invoice_number\":\"CI-0193A5E27C4F\"")
        );
    }

    #[test]
    fn a_domestic_set_is_invoice_and_packing_list() {
        let set = build(&order(false), &BTreeMap::new(), Some(&packing()), None);
        assert_eq!(set.names(), vec![COMMERCIAL_INVOICE, PACKING_LIST]);
        // No HS codes needed at home.
        assert!(cross_check(&set).is_empty());
    }

    #[test]
    fn missing_master_data_is_reported_per_document() {
        let mut products = products();
        products.get_mut("cap").unwrap().hs_code = String::new();
        products.get_mut("cap").unwrap().unit_net_weight_kg = 0.0;
        let set = build(&order(true), &products, Some(&packing()), None);
        let problems = cross_check(&set);
        assert_eq!(
            texts(&problems),
            vec![
                "product cap has no HS code",
                "product cap has no net weight"
            ]
        );
        assert_eq!(
            problems[0].documents,
            vec![CUSTOMS_DECLARATION, CERTIFICATE_OF_ORIGIN]
        );
    }

    #[test]
    fn a_packing_list_for_other_quantities_or_consignee_is_caught() {
        // The order was amended to 40 shirts after packing.
        let mut amended = order(true);
        amended.lines[0].quantity = 40;
        let mut stale = packing();
        stale.customer = "Nordwind Trading".into();
        let set = build(&amended, &products(), Some(&stale), None);
        let problems = texts(&cross_check(&set));
        assert!(
            problems.contains(
                &"product shirt: quantity 30 on the packing list, 40 on the commercial invoice"
                    .to_owned()
            ),
            "{problems:?}"
        );
        assert!(problems.contains(&"product shirt: net weight 10 kg on the customs declaration, 7.5 kg on the packing list".to_owned()), "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("consignee \"Nordwind Trading\" on the packing list")),
            "{problems:?}"
        );
    }

    #[test]
    fn tampered_documents_disagree() {
        let mut set = build(&order(true), &products(), Some(&packing()), None);
        let customs = set.customs.as_mut().unwrap();
        customs.items[0].hs_code = "620530".into();
        customs.items[1].value_minor += 100;
        set.origin.as_mut().unwrap().items[1].quantity = 9;
        set.inspection.as_mut().unwrap().consignee = "Someone else".into();
        let problems = texts(&cross_check(&set));
        assert_eq!(
            problems,
            vec![
                "product shirt: HS code 620530 on the customs declaration, 620520 on the commercial invoice",
                "product cap: value 3100 on the customs declaration, 3000 on the commercial invoice",
                "declared total 40500 is not the sum of the items 40600",
                "product cap: quantity 9 on the certificate of origin, 10 on the commercial invoice",
                "product shirt: HS code / origin 620520 / CN on the certificate of origin, 620530 / CN on the customs declaration",
                "consignee \"Someone else\" on the inspection certificate, \"Nordwind GmbH\" on the commercial invoice",
            ]
        );
    }

    #[test]
    fn no_packing_list_is_a_problem() {
        let set = build(&order(true), &products(), None, None);
        let problems = cross_check(&set);
        assert!(
            texts(&problems)
                .contains(&"no packing list has been prepared for the order".to_owned())
        );
    }

    #[test]
    fn overflowing_amounts_are_caught() {
        let mut big = order(false);
        big.lines[0].unit_price_minor = i64::MAX;
        let set = build(&big, &BTreeMap::new(), Some(&packing()), None);
        let problems = texts(&cross_check(&set));
        assert!(
            problems.iter().any(|p| p.contains("does not fit")),
            "{problems:?}"
        );
    }
}
