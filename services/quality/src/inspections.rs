//! Inspections and nonconformances: storing them, judging a result against
//! the plan, and the events a result announces.
//!
//! An inspection is opened with one sampling plan per defect class
//! ([`class_plans`]); the units to draw are the largest of those samples.
//! [`judge`] decides pass or fail from the inspector's counts, never from a
//! verdict typed in: a class fails when its defects reach the rejection
//! number (Re), so with zero tolerance (Re 1) any defect fails it, and the
//! lot fails when any class fails. [`record`] stores the result, opens a
//! nonconformance for a failure and writes the answer event to the outbox,
//! all on the caller's transaction.
//!
//! The submodule `store` reads and writes the inspection rows (one
//! statement per read, two with the lock; one per table written), `judge`
//! holds the verdict and the check of findings (pure), `nonconformances`
//! reads, lists and closes the nonconformance records; their functions are
//! re-exported here.
//!
//! What only final inspections have (revisions, the switching rules, their
//! events) is in [`crate::final_inspection`].

mod judge;
mod nonconformances;
mod store;

use chrono::{DateTime, Utc};
use gendan_messaging::{Cause, Outgoing, outbox};
use gendan_proto::timestamp_from;
use gendan_proto::v1::{
    self, DefectClass, InProcessInspectionFailed, InProcessInspectionOpened,
    InProcessInspectionPassed, IncomingInspectionFailed, IncomingInspectionOpened,
    IncomingInspectionPassed, InspectionKind, InspectionStatus,
};
use sqlx::PgConnection;
use uuid::Uuid;

pub use self::judge::{ClassOutcome, Verdict, check_findings, judge};
pub use self::nonconformances::{
    Nonconformance, close_nonconformance, find_nonconformance, list_nonconformances,
    nonconformance_proto,
};
pub use self::store::{find, find_in_process, find_incoming, insert, list};
pub(crate) use self::store::{find_final, latest_final};
use crate::sampling::{self, Level, SamplingPlan, Severity, Tolerance};
use crate::validate::Findings;
use crate::{Result, SERVICE, final_inspection};

pub const KIND_FINAL: &str = "final";
pub const KIND_INCOMING: &str = "incoming";
pub const KIND_IN_PROCESS: &str = "in_process";
pub const STATUS_OPEN: &str = "open";
pub const STATUS_PASSED: &str = "passed";
pub const STATUS_FAILED: &str = "failed";

/// The most rows a list call returns.
pub const LIST_LIMIT: i64 = 500;

pub fn class_code(class: DefectClass) -> &'static str {
    match class {
        DefectClass::Critical => "critical",
        DefectClass::Major => "major",
        DefectClass::Minor => "minor",
        DefectClass::Unspecified => "unspecified",
    }
}

pub fn kind_proto(kind: &str) -> InspectionKind {
    match kind {
        KIND_FINAL => InspectionKind::Final,
        KIND_INCOMING => InspectionKind::Incoming,
        KIND_IN_PROCESS => InspectionKind::InProcess,
        _ => InspectionKind::Unspecified,
    }
}

fn class_from_code(code: &str) -> DefectClass {
    match code {
        "critical" => DefectClass::Critical,
        "major" => DefectClass::Major,
        "minor" => DefectClass::Minor,
        _ => DefectClass::Unspecified,
    }
}

/// The sampling plan of one defect class of a lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassPlan {
    pub class: DefectClass,
    pub tolerance: Tolerance,
    pub plan: SamplingPlan,
}

/// One plan per class for a lot (`lot_size` > 0) at `severity` and
/// inspection `level`.
pub fn class_plans(
    lot_size: u32,
    severity: Severity,
    level: Level,
    classes: &[(DefectClass, Tolerance)],
) -> Vec<ClassPlan> {
    classes
        .iter()
        .filter_map(|(class, tolerance)| {
            sampling::plan_for(level, lot_size, *tolerance, severity).map(|plan| ClassPlan {
                class: *class,
                tolerance: *tolerance,
                plan,
            })
        })
        .collect()
}

/// Units an inspection of a lot with these class plans samples: one
/// sample, the largest plan's, serves every class (the whole lot when
/// there is no plan).
pub fn sample_size(classes: &[ClassPlan], lot_size: u32) -> u32 {
    classes
        .iter()
        .map(|class| class.plan.sample_size)
        .max()
        .unwrap_or(lot_size)
}

/// What a new inspection is about.
#[derive(Debug, Clone)]
pub struct NewInspection {
    pub kind: &'static str,
    pub order_id: String,
    pub items: Vec<(String, u32)>,
    pub purchase_order_id: String,
    pub material: String,
    pub lot: String,
    pub supplier: String,
    /// In-process inspections: the product and routing stage.
    pub product: String,
    pub stage: String,
    pub lot_size: u32,
    /// Final inspections: which of the order's final inspections (1, 2 after
    /// the first rework, ...); 0 for the other kinds.
    pub revision: u32,
    /// The severity `classes` were drawn at.
    pub severity: Severity,
    pub classes: Vec<ClassPlan>,
    /// The message that opened it and its trace.
    pub cause_event_id: String,
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Inspection {
    pub inspection_id: Uuid,
    pub kind: String,
    pub order_id: String,
    pub purchase_order_id: String,
    pub material: String,
    pub lot: String,
    pub supplier: String,
    pub product: String,
    pub stage: String,
    pub lot_size: i64,
    pub code_letter: String,
    pub sample_size: i64,
    pub status: String,
    pub inspector: Option<String>,
    pub sample_inspected: Option<i64>,
    pub cause_event_id: String,
    pub traceparent: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub revision: i32,
    pub severity: String,
    pub nonconformance_id: Option<Uuid>,
    pub nonconformance_summary: Option<String>,
    // The child rows: read in the same statement as JSON arrays
    // (`store::load_sql!`), not columns of the row.
    #[sqlx(skip)]
    pub items: Vec<(String, u32)>,
    #[sqlx(skip)]
    pub classes: Vec<ClassRow>,
    #[sqlx(skip)]
    pub defects: Vec<DefectRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ClassRow {
    pub defect_class: String,
    pub aql: String,
    pub plan_code_letter: String,
    pub sample_size: i64,
    pub accept: i64,
    pub reject: i64,
    pub defects: Option<i64>,
    pub passed: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct DefectRow {
    pub defect_class: String,
    pub count: i64,
    pub description: String,
}

pub(crate) fn to_u32(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

impl Inspection {
    pub fn is_open(&self) -> bool {
        self.status == STATUS_OPEN
    }

    pub fn class(&self, class: DefectClass) -> Option<&ClassRow> {
        self.classes
            .iter()
            .find(|row| row.defect_class == class_code(class))
    }

    /// The severity its plans were drawn at; rows written before the
    /// switching rules are normal.
    pub fn severity(&self) -> Severity {
        Severity::from_code(&self.severity).unwrap_or_default()
    }

    /// Causation: the message that opened it; correlation: the order.
    pub(crate) fn cause(&self) -> Cause {
        Cause {
            causation_id: self.cause_event_id.clone(),
            correlation_id: if self.order_id.is_empty() {
                self.inspection_id.to_string()
            } else {
                self.order_id.clone()
            },
        }
    }
}

/// Stores the result of an open, locked inspection, opens a nonconformance
/// on a failure and writes the answer event. The caller commits.
pub async fn record(
    conn: &mut PgConnection,
    inspection: &Inspection,
    findings: &Findings,
) -> Result<Inspection> {
    debug_assert!(inspection.is_open());
    let verdict = judge(&inspection.classes, &findings.defects);
    // Announced from the inspection as just stored (the store builds it
    // from what it wrote), so a final inspection's result reads the same as
    // when a repeated request answers it again from a read.
    let recorded = store::save_result(conn, inspection, findings, &verdict).await?;
    let event = result_event(conn, &recorded, &verdict).await?;
    outbox::write(conn, &[event]).await?;
    tracing::info!(
        inspection_id = %inspection.inspection_id,
        passed = verdict.passed,
        summary = %verdict.summary,
        "inspection result recorded"
    );
    Ok(recorded)
}

/// The answer event of a recorded inspection, in the causal chain of the
/// message that opened it.
async fn result_event(
    conn: &mut PgConnection,
    inspection: &Inspection,
    verdict: &Verdict,
) -> Result<Outgoing> {
    let cause = inspection.cause();
    if inspection.kind == KIND_FINAL {
        return final_inspection::answer(conn, inspection, &cause).await;
    }
    let order_id = inspection.order_id.as_str();
    let inspection_id = inspection.inspection_id.to_string();
    let nonconformance_id = inspection
        .nonconformance_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    let event = match (inspection.kind.as_str(), verdict.passed) {
        (KIND_IN_PROCESS, true) => Outgoing::event(
            SERVICE,
            order_id,
            &InProcessInspectionPassed {
                order_id: order_id.to_owned(),
                inspection_id,
                product: inspection.product.clone(),
                stage: inspection.stage.clone(),
            },
            &cause,
        ),
        (KIND_IN_PROCESS, false) => Outgoing::event(
            SERVICE,
            order_id,
            &InProcessInspectionFailed {
                order_id: order_id.to_owned(),
                inspection_id,
                product: inspection.product.clone(),
                stage: inspection.stage.clone(),
                nonconformance_id,
                summary: verdict.summary.clone(),
            },
            &cause,
        ),
        (_, true) => Outgoing::event(
            SERVICE,
            order_id,
            &IncomingInspectionPassed {
                order_id: order_id.to_owned(),
                purchase_order_id: inspection.purchase_order_id.clone(),
                lot: inspection.lot.clone(),
                inspection_id,
            },
            &cause,
        ),
        (_, false) => Outgoing::event(
            SERVICE,
            order_id,
            &IncomingInspectionFailed {
                order_id: order_id.to_owned(),
                purchase_order_id: inspection.purchase_order_id.clone(),
                lot: inspection.lot.clone(),
                inspection_id,
                nonconformance_id,
            },
            &cause,
        ),
    };
    Ok(event)
}

pub fn incoming_opened_event(inspection: &Inspection) -> IncomingInspectionOpened {
    IncomingInspectionOpened {
        order_id: inspection.order_id.clone(),
        purchase_order_id: inspection.purchase_order_id.clone(),
        lot: inspection.lot.clone(),
        inspection_id: inspection.inspection_id.to_string(),
        material: inspection.material.clone(),
        lot_size: to_u32(inspection.lot_size),
        sample_size: to_u32(inspection.sample_size),
        code_letter: inspection.code_letter.clone(),
    }
}

pub fn in_process_opened_event(inspection: &Inspection) -> InProcessInspectionOpened {
    InProcessInspectionOpened {
        order_id: inspection.order_id.clone(),
        inspection_id: inspection.inspection_id.to_string(),
        product: inspection.product.clone(),
        stage: inspection.stage.clone(),
        lot_size: to_u32(inspection.lot_size),
        sample_size: to_u32(inspection.sample_size),
        code_letter: inspection.code_letter.clone(),
    }
}

pub fn to_proto(inspection: &Inspection) -> v1::Inspection {
    let kind = kind_proto(&inspection.kind);
    let status = match inspection.status.as_str() {
        STATUS_OPEN => InspectionStatus::Open,
        STATUS_PASSED => InspectionStatus::Passed,
        STATUS_FAILED => InspectionStatus::Failed,
        _ => InspectionStatus::Unspecified,
    };
    v1::Inspection {
        inspection_id: inspection.inspection_id.to_string(),
        kind: kind as i32,
        order_id: inspection.order_id.clone(),
        items: inspection
            .items
            .iter()
            .map(|(product, quantity)| v1::ProductQuantity {
                product: product.clone(),
                quantity: *quantity,
            })
            .collect(),
        purchase_order_id: inspection.purchase_order_id.clone(),
        material: inspection.material.clone(),
        lot: inspection.lot.clone(),
        supplier: inspection.supplier.clone(),
        lot_size: to_u32(inspection.lot_size),
        code_letter: inspection.code_letter.clone(),
        sample_size: to_u32(inspection.sample_size),
        classes: inspection
            .classes
            .iter()
            .map(|row| v1::DefectClassPlan {
                defect_class: class_from_code(&row.defect_class) as i32,
                aql: Tolerance::from_code(&row.aql).map_or(0.0, Tolerance::percent),
                plan_code_letter: row.plan_code_letter.clone(),
                sample_size: to_u32(row.sample_size),
                accept: to_u32(row.accept),
                reject: to_u32(row.reject),
                defects: row.defects.map_or(0, to_u32),
                passed: row.passed.unwrap_or(false),
            })
            .collect(),
        status: status as i32,
        inspector: inspection.inspector.clone().unwrap_or_default(),
        sample_inspected: inspection.sample_inspected.map_or(0, to_u32),
        defects: inspection
            .defects
            .iter()
            .map(|row| v1::DefectCount {
                defect_class: class_from_code(&row.defect_class) as i32,
                count: to_u32(row.count),
                description: row.description.clone(),
            })
            .collect(),
        nonconformance_id: inspection
            .nonconformance_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        opened_at: Some(timestamp_from(inspection.opened_at)),
        recorded_at: inspection.recorded_at.map(timestamp_from),
        stage: inspection.stage.clone(),
        revision: u32::try_from(inspection.revision).unwrap_or(0),
        severity: final_inspection::severity_proto(inspection.severity()) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_per_class_follow_the_table() {
        let plans = class_plans(
            150,
            Severity::Normal,
            Level::II,
            &[
                (DefectClass::Critical, Tolerance::Zero),
                (DefectClass::Major, Tolerance::from_percent(0.65).unwrap()),
                (DefectClass::Minor, Tolerance::from_percent(1.5).unwrap()),
            ],
        );
        let summary: Vec<(char, u32, u32, u32)> = plans
            .iter()
            .map(|c| {
                (
                    c.plan.plan_code_letter,
                    c.plan.sample_size,
                    c.plan.accept,
                    c.plan.reject,
                )
            })
            .collect();
        // F (n 20); 0.65 at F is 0/1; 1.5 at F points down to G (n 32, 1/2).
        assert_eq!(summary, [('F', 20, 0, 1), ('F', 20, 0, 1), ('G', 32, 1, 2)]);
    }
}
