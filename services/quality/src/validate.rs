//! Request checks that need no database: each function turns a wire message
//! into the domain value the rest of the service trusts, or a
//! [`FieldError`] naming the offending field (`defects[1].count`).
//!
//! Checks against stored data (is the sample at least the plan's?) are done
//! by [`crate::inspections`] with the same field paths, before anything is
//! written.

use std::collections::HashSet;

use gendan_grpc::FieldError;
use gendan_proto::v1::{
    CloseNonconformanceRequest, DefectClass, GetSamplingPlanRequest, IncomingInspectionPlan,
    InspectionLevel, InspectionPlan, NonconformanceDisposition, ProductQuantity,
    RecordInspectionResultRequest,
};
use uuid::Uuid;

use crate::plans::{ProductPlan, Tolerances, default_incoming, default_tolerances};
use crate::sampling::{Aql, Level, Tolerance};

/// Longest code or name we accept; longer is a client bug, not a name.
const MAX_TEXT: usize = 200;
/// Longest free text (defect descriptions, disposition notes).
const MAX_NOTE: usize = 2_000;

pub fn required_text(value: &str, field: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    bounded(value, field, MAX_TEXT)
}

fn bounded(value: &str, field: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("longer than {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// An id we issued: a UUID.
pub fn id(value: &str, field: &str) -> Result<Uuid, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    Uuid::parse_str(value).map_err(|_| FieldError::new(field, format!("{value:?} is not a UUID")))
}

/// An AQL in percent: 0 (zero tolerance) or a column of Table II-A.
pub fn tolerance(value: f64, field: &str) -> Result<Tolerance, FieldError> {
    Tolerance::from_percent(value).ok_or_else(|| {
        FieldError::new(
            field,
            format!(
                "{value} is not a supported AQL: use {}",
                Tolerance::supported()
            ),
        )
    })
}

fn tolerance_or(
    value: Option<f64>,
    field: &str,
    default: Tolerance,
) -> Result<Tolerance, FieldError> {
    value.map_or(Ok(default), |value| tolerance(value, field))
}

pub fn product_plan(request: &InspectionPlan) -> Result<ProductPlan, FieldError> {
    let product = required_text(&request.product, "product")?;
    let defaults = default_tolerances();
    let tolerances = Tolerances {
        critical: tolerance_or(request.critical_aql, "critical_aql", defaults.critical)?,
        major: tolerance_or(request.major_aql, "major_aql", defaults.major)?,
        minor: tolerance_or(request.minor_aql, "minor_aql", defaults.minor)?,
    };
    let mut seen = HashSet::new();
    let mut in_process_stages = Vec::with_capacity(request.in_process_stages.len());
    for (i, stage) in request.in_process_stages.iter().enumerate() {
        let field = format!("in_process_stages[{i}]");
        let stage = required_text(stage, &field)?;
        if !seen.insert(stage.clone()) {
            return Err(FieldError::new(
                field,
                format!("stage {stage:?} appears twice"),
            ));
        }
        in_process_stages.push(stage);
    }
    Ok(ProductPlan {
        product,
        tolerances,
        in_process_stages,
    })
}

pub fn incoming_plan(request: &IncomingInspectionPlan) -> Result<(String, Tolerance), FieldError> {
    let material = required_text(&request.material, "material")?;
    let tolerance = tolerance_or(request.aql, "aql", default_incoming())?;
    Ok((material, tolerance))
}

pub fn sampling_request(request: &GetSamplingPlanRequest) -> Result<(u32, Tolerance), FieldError> {
    if request.lot_size == 0 {
        return Err(FieldError::new("lot_size", "must be greater than 0"));
    }
    Ok((request.lot_size, tolerance(request.aql, "aql")?))
}

/// The order's products and quantities, and the lot size (their sum).
pub fn items(
    items: &[ProductQuantity],
    field: &str,
) -> Result<(Vec<(String, u32)>, u32), FieldError> {
    if items.is_empty() {
        return Err(FieldError::new(field, "at least one product is required"));
    }
    let mut checked = Vec::with_capacity(items.len());
    let mut lot_size: u32 = 0;
    for (i, item) in items.iter().enumerate() {
        let product = required_text(&item.product, &format!("{field}[{i}].product"))?;
        if item.quantity == 0 {
            return Err(FieldError::new(
                format!("{field}[{i}].quantity"),
                "must be greater than 0",
            ));
        }
        lot_size = lot_size.checked_add(item.quantity).ok_or_else(|| {
            FieldError::new(
                format!("{field}[{i}].quantity"),
                "the lot size is too large",
            )
        })?;
        checked.push((product, item.quantity));
    }
    Ok((checked, lot_size))
}

/// The customer's inspection level (Table I) of a saga command; unset is
/// general level II, the standard's default.
pub fn inspection_level(value: i32, field: &str) -> Result<Level, FieldError> {
    match InspectionLevel::try_from(value) {
        Ok(InspectionLevel::Unspecified | InspectionLevel::GeneralIi) => Ok(Level::II),
        Ok(InspectionLevel::GeneralI) => Ok(Level::I),
        Ok(InspectionLevel::GeneralIii) => Ok(Level::III),
        Err(_) => Err(FieldError::new(
            field,
            format!("{value} is not an inspection level"),
        )),
    }
}

/// The customer's AQL for major defects of a saga command, when it names
/// one: a column of the tables (zero tolerance is not an AQL here).
pub fn major_aql(value: Option<f64>, field: &str) -> Result<Option<Aql>, FieldError> {
    value
        .map(|percent| {
            Aql::from_percent(percent).ok_or_else(|| {
                FieldError::new(
                    field,
                    format!("{percent} is not an AQL column of ISO 2859-1"),
                )
            })
        })
        .transpose()
}

/// One line of an inspector's findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Index in the request, for error paths.
    pub index: usize,
    pub class: DefectClass,
    pub count: u32,
    pub description: String,
}

/// A checked RecordInspectionResult request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    pub inspection_id: Uuid,
    pub inspector: String,
    pub sample_inspected: u32,
    pub defects: Vec<Finding>,
}

pub fn findings(request: &RecordInspectionResultRequest) -> Result<Findings, FieldError> {
    let inspection_id = id(&request.inspection_id, "inspection_id")?;
    let inspector = required_text(&request.inspector, "inspector")?;
    if request.sample_inspected == 0 {
        return Err(FieldError::new(
            "sample_inspected",
            "must be greater than 0",
        ));
    }
    let mut defects = Vec::with_capacity(request.defects.len());
    for (index, defect) in request.defects.iter().enumerate() {
        let class = match DefectClass::try_from(defect.defect_class) {
            Ok(DefectClass::Unspecified) | Err(_) => {
                return Err(FieldError::new(
                    format!("defects[{index}].defect_class"),
                    format!(
                        "{} is not a defect class (critical, major or minor)",
                        defect.defect_class
                    ),
                ));
            }
            Ok(class) => class,
        };
        if defect.count == 0 {
            return Err(FieldError::new(
                format!("defects[{index}].count"),
                "must be greater than 0 (leave a clean class out)",
            ));
        }
        let description = bounded(
            &defect.description,
            &format!("defects[{index}].description"),
            MAX_NOTE,
        )?;
        defects.push(Finding {
            index,
            class,
            count: defect.count,
            description,
        });
    }
    Ok(Findings {
        inspection_id,
        inspector,
        sample_inspected: request.sample_inspected,
        defects,
    })
}

/// How a nonconformance is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Rework,
    Concession,
    Scrap,
}

impl Disposition {
    pub fn code(self) -> &'static str {
        match self {
            Disposition::Rework => "rework",
            Disposition::Concession => "concession",
            Disposition::Scrap => "scrap",
        }
    }

    pub fn from_code(code: &str) -> Option<Disposition> {
        match code {
            "rework" => Some(Disposition::Rework),
            "concession" => Some(Disposition::Concession),
            "scrap" => Some(Disposition::Scrap),
            _ => None,
        }
    }

    pub fn to_proto(self) -> NonconformanceDisposition {
        match self {
            Disposition::Rework => NonconformanceDisposition::Rework,
            Disposition::Concession => NonconformanceDisposition::Concession,
            Disposition::Scrap => NonconformanceDisposition::Scrap,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub nonconformance_id: Uuid,
    pub disposition: Disposition,
    pub closed_by: String,
    pub note: String,
}

pub fn closing(request: &CloseNonconformanceRequest) -> Result<Closing, FieldError> {
    let nonconformance_id = id(&request.nonconformance_id, "nonconformance_id")?;
    let disposition = match NonconformanceDisposition::try_from(request.disposition) {
        Ok(NonconformanceDisposition::Rework) => Disposition::Rework,
        Ok(NonconformanceDisposition::Concession) => Disposition::Concession,
        Ok(NonconformanceDisposition::Scrap) => Disposition::Scrap,
        Ok(NonconformanceDisposition::Unspecified) | Err(_) => {
            return Err(FieldError::new(
                "disposition",
                "must be rework, concession or scrap",
            ));
        }
    };
    let closed_by = required_text(&request.closed_by, "closed_by")?;
    let note = bounded(&request.note, "note", MAX_NOTE)?;
    // Shipping nonconforming goods needs the customer's approval on record.
    if disposition == Disposition::Concession && note.is_empty() {
        return Err(FieldError::new(
            "note",
            "a concession needs a note saying who approved it",
        ));
    }
    Ok(Closing {
        nonconformance_id,
        disposition,
        closed_by,
        note,
    })
}

#[cfg(test)]
mod tests {
    use gendan_proto::v1::DefectCount;

    use super::*;

    fn record(defects: Vec<DefectCount>) -> RecordInspectionResultRequest {
        RecordInspectionResultRequest {
            inspection_id: Uuid::now_v7().to_string(),
            inspector: "Li Wei".into(),
            sample_inspected: 80,
            defects,
        }
    }

    fn defect(class: DefectClass, count: u32) -> DefectCount {
        DefectCount {
            defect_class: class as i32,
            count,
            description: "stain".into(),
        }
    }

    #[test]
    fn findings_errors_name_the_field() {
        let ok = findings(&record(vec![defect(DefectClass::Major, 2)])).unwrap();
        assert_eq!(ok.defects[0].count, 2);

        let mut request = record(vec![]);
        request.inspection_id = "42".into();
        assert_eq!(findings(&request).unwrap_err().field, "inspection_id");
        let mut request = record(vec![]);
        request.inspector = " ".into();
        assert_eq!(findings(&request).unwrap_err().field, "inspector");
        let mut request = record(vec![]);
        request.sample_inspected = 0;
        assert_eq!(findings(&request).unwrap_err().field, "sample_inspected");
        let request = record(vec![
            defect(DefectClass::Major, 1),
            defect(DefectClass::Unspecified, 1),
        ]);
        assert_eq!(
            findings(&request).unwrap_err().field,
            "defects[1].defect_class"
        );
        let mut bad = defect(DefectClass::Minor, 1);
        bad.defect_class = 9;
        assert_eq!(
            findings(&record(vec![bad])).unwrap_err().field,
            "defects[0].defect_class"
        );
        let request = record(vec![defect(DefectClass::Minor, 0)]);
        assert_eq!(findings(&request).unwrap_err().field, "defects[0].count");
    }

    #[test]
    fn plans_default_unset_classes_and_refuse_odd_aqls() {
        let plan = product_plan(&InspectionPlan {
            product: "shirt".into(),
            major_aql: Some(1.5),
            in_process_stages: vec!["sewing".into()],
            ..InspectionPlan::default()
        })
        .unwrap();
        assert_eq!(
            (
                plan.tolerances.critical.code(),
                plan.tolerances.major.code(),
                plan.tolerances.minor.code()
            ),
            ("0", "1.5", "4.0")
        );
        let bad = InspectionPlan {
            product: "shirt".into(),
            minor_aql: Some(3.0),
            ..InspectionPlan::default()
        };
        assert_eq!(product_plan(&bad).unwrap_err().field, "minor_aql");
        let twice = InspectionPlan {
            product: "shirt".into(),
            in_process_stages: vec!["sewing".into(), "sewing".into()],
            ..InspectionPlan::default()
        };
        assert_eq!(
            product_plan(&twice).unwrap_err().field,
            "in_process_stages[1]"
        );
    }

    #[test]
    fn items_sum_to_the_lot() {
        let item = |product: &str, quantity| ProductQuantity {
            product: product.into(),
            quantity,
        };
        assert_eq!(
            items(&[item("a", 600), item("b", 400)], "items").unwrap().1,
            1_000
        );
        assert_eq!(items(&[], "items").unwrap_err().field, "items");
        assert_eq!(
            items(&[item("a", 0)], "items").unwrap_err().field,
            "items[0].quantity"
        );
        assert_eq!(
            items(&[item("a", u32::MAX), item("b", 1)], "items")
                .unwrap_err()
                .field,
            "items[1].quantity"
        );
    }

    #[test]
    fn closing_checks_disposition_and_concession_note() {
        let mut request = CloseNonconformanceRequest {
            nonconformance_id: Uuid::now_v7().to_string(),
            disposition: NonconformanceDisposition::Concession as i32,
            closed_by: "QA manager".into(),
            note: String::new(),
        };
        assert_eq!(closing(&request).unwrap_err().field, "note");
        request.note = "customer approved by mail 2026-03-02".into();
        assert_eq!(
            closing(&request).unwrap().disposition,
            Disposition::Concession
        );
        request.disposition = 0;
        assert_eq!(closing(&request).unwrap_err().field, "disposition");
        request.disposition = NonconformanceDisposition::Rework as i32;
        request.closed_by = String::new();
        assert_eq!(closing(&request).unwrap_err().field, "closed_by");
    }
}
