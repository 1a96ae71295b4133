//! The order's packing list and export documents as the order page shows
//! them (`LogisticsService.GetPackingList`, `GetDocuments`): the cartons
//! with their marks and weights, every check of what the warehouse packed,
//! and each document with its cross-check status, problems and content.

use gendan_proto::v1;

use crate::view;

#[derive(Debug, Clone)]
pub struct PackingView {
    /// "prepared", "checked" or "mismatch".
    pub status: String,
    pub mismatch: bool,
    pub total_cartons: u32,
    pub net_kg: String,
    pub gross_kg: String,
    pub max_gross_kg: String,
    pub barcode_type: String,
    pub cartons: Vec<CartonRow>,
    pub checks: Vec<CheckRow>,
}

#[derive(Debug, Clone)]
pub struct CartonRow {
    pub number: u32,
    pub product: String,
    pub quantity: u32,
    pub marks: String,
    pub net_kg: String,
    pub gross_kg: String,
}

/// One comparison of a warehouse packed report with the list.
#[derive(Debug, Clone)]
pub struct CheckRow {
    pub checked_at: String,
    pub matches: bool,
    pub mismatches: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DocumentsView {
    /// "ready" or "rejected".
    pub status: String,
    pub rejected: bool,
    pub export: bool,
    pub problems: Vec<String>,
    pub documents: Vec<DocumentRow>,
}

#[derive(Debug, Clone)]
pub struct DocumentRow {
    pub name: String,
    pub status: String,
    pub ok: bool,
    pub problems: Vec<String>,
    /// The structured content, indented for reading.
    pub content: String,
}

pub fn packing_view(list: &v1::PackingList) -> PackingView {
    PackingView {
        status: list.status.clone(),
        mismatch: list.status == "mismatch",
        total_cartons: list.total_cartons,
        net_kg: kg(list.total_net_weight_kg),
        gross_kg: kg(list.total_gross_weight_kg),
        max_gross_kg: kg(list.max_gross_weight_kg),
        barcode_type: list.barcode_type.clone(),
        cartons: list
            .cartons
            .iter()
            .map(|carton| CartonRow {
                number: carton.carton_number,
                product: carton.product.clone(),
                quantity: carton.quantity,
                marks: carton.marks.clone(),
                net_kg: kg(carton.net_weight_kg),
                gross_kg: kg(carton.gross_weight_kg),
            })
            .collect(),
        checks: list
            .checks
            .iter()
            .map(|check| CheckRow {
                checked_at: view::timestamp(check.checked_at.as_ref()),
                matches: check.matches,
                mismatches: check.mismatches.clone(),
            })
            .collect(),
    }
}

pub fn documents_view(set: &v1::DocumentSet) -> DocumentsView {
    DocumentsView {
        status: set.status.clone(),
        rejected: set.status == "rejected",
        export: set.export,
        problems: set.problems.clone(),
        documents: set
            .documents
            .iter()
            .map(|document| DocumentRow {
                name: view::words(&document.name),
                status: document.status.clone(),
                ok: document.status == "ok",
                problems: document.problems.clone(),
                content: indented(&document.content_json),
            })
            .collect(),
    }
}

fn kg(weight: f64) -> String {
    format!("{weight:.2} kg")
}

/// JSON indented for a `<pre>`; the text as it came when it is not JSON.
fn indented(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| json.to_owned())
}
