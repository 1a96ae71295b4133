//! Final inspections of an order's finished goods: numbered per order by
//! revision (1 the first, 2 after the first rework, ...), drawn at the
//! severity the ISO 2859-1 switching rules give the order's products, and
//! answered to the saga as `FinalInspectionOpened`, `FinalInspectionPassed`
//! or `FinalInspectionFailed`.
//!
//! [`lock_order`] serialises the commands about one order's final
//! inspections; [`draw`] draws the plans of one from the products' plans
//! and histories ([`lot_plans`] is the pure rule); [`open`] stores a new
//! inspection with them;
//! [`find`] reads the inspection of a revision, [`latest`] the order's
//! newest; [`answer`] is the event that says where one stands, the same
//! whether it is announced when the result is recorded, again for a
//! repeated request or for a restatement ([`crate::restate`]); [`history`]
//! reads a product's lots for [`crate::switching`].
//!
//! Each product's switching state is kept on its item row
//! (`inspection_items.severity`). The lot is inspected at the strictest of
//! them, but a product's history stays its own: a mixed lot inspected
//! tightened because of one product does not tighten the others.

use std::collections::HashMap;

use gendan_messaging::{Cause, Incoming, Outgoing};
use gendan_proto::v1::{
    DefectClass, FinalInspectionFailed, FinalInspectionOpened, FinalInspectionPassed,
    InspectionSeverity,
};
use sqlx::PgConnection;

use crate::inspections::{
    self, ClassPlan, ClassRow, Inspection, KIND_FINAL, NewInspection, STATUS_FAILED, STATUS_PASSED,
    to_u32,
};
use crate::plans::Tolerances;
use crate::sampling::{Aql, Level, Severity, Tolerance};
use crate::switching::{self, Lot};
use crate::{Result, SERVICE, plans};

/// A checked `RequestFinalInspection`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub order_id: String,
    /// 1 or more: a sender that leaves it 0 means the first.
    pub revision: u32,
    pub items: Vec<(String, u32)>,
    /// The sum of the quantities.
    pub lot_size: u32,
    /// The customer's inspection level.
    pub level: Level,
    /// The customer's AQL for major defects, replacing the products'.
    pub major_aql: Option<Aql>,
}

pub fn severity_proto(severity: Severity) -> InspectionSeverity {
    match severity {
        Severity::Normal => InspectionSeverity::Normal,
        Severity::Tightened => InspectionSeverity::Tightened,
    }
}

/// The stored revision as the wire carries it.
fn revision(inspection: &Inspection) -> u32 {
    u32::try_from(inspection.revision).unwrap_or(0)
}

/// Holds the order's final inspection lock until the transaction ends, so
/// two replicas handling commands about one order (a request and its
/// re-send, a restatement) apply one after the other.
pub async fn lock_order(conn: &mut PgConnection, order_id: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('quality-final:' || $1, 0))")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The inspection of one revision of the order's final inspection.
pub async fn find(
    conn: &mut PgConnection,
    order_id: &str,
    revision: u32,
) -> Result<Option<Inspection>> {
    inspections::find_final(conn, order_id, revision).await
}

/// The order's final inspection of the highest revision, if any.
pub async fn latest(conn: &mut PgConnection, order_id: &str) -> Result<Option<Inspection>> {
    inspections::latest_final(conn, order_id).await
}

/// The product's latest lots with a result, oldest first, as many as the
/// switching rules look at. Only each lot's original inspection (revision
/// 1) counts: a re-inspection after rework is a resubmitted lot.
pub async fn history(conn: &mut PgConnection, product: &str) -> Result<Vec<Lot>> {
    // One row per inspection even if the order lists the product twice.
    let rows: Vec<(bool, bool)> = sqlx::query_as(
        // The latest lots first (newest first through
        // `inspections_final_recent`, stopping at the window), then their
        // items: the cost stays that of the window, not of the history.
        "SELECT bool_or(it.severity = 'tightened') AS tightened, last.status = 'passed' AS accepted \
         FROM (SELECT i.inspection_id, i.status, i.recorded_at FROM inspections i \
               WHERE i.kind = 'final' AND i.revision = 1 AND i.status <> 'open' \
                 AND EXISTS (SELECT 1 FROM inspection_items p \
                             WHERE p.inspection_id = i.inspection_id AND p.product = $1) \
               ORDER BY i.recorded_at DESC, i.inspection_id DESC LIMIT $2) last \
         JOIN inspection_items it ON it.inspection_id = last.inspection_id AND it.product = $1 \
         GROUP BY last.inspection_id, last.status, last.recorded_at \
         ORDER BY last.recorded_at DESC, last.inspection_id DESC",
    )
    .bind(product)
    .bind(i64::try_from(switching::WINDOW).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .rev()
        .map(|(tightened, accepted)| Lot {
            severity: if tightened {
                Severity::Tightened
            } else {
                Severity::Normal
            },
            accepted,
        })
        .collect())
}

/// The plans a final inspection of `request` is drawn with, and each
/// product's switching state (in the order of the items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drawn {
    pub states: Vec<(String, Severity)>,
    pub severity: Severity,
    pub classes: Vec<ClassPlan>,
}

/// Draws the plans of a final inspection of `request` from the products'
/// stored plans and lot histories ([`lot_plans`]), writing nothing:
/// [`open`] stores them, the review's estimate
/// ([`crate::estimate`]) only counts their sample.
pub async fn draw(conn: &mut PgConnection, request: &Request) -> Result<Drawn> {
    let names: Vec<String> = request
        .items
        .iter()
        .map(|(product, _)| product.clone())
        .collect();
    let tolerances = plans::tolerances_of(conn, &names).await?;
    let mut products: Vec<(Tolerances, Severity)> = Vec::with_capacity(names.len());
    let mut states: Vec<(String, Severity)> = Vec::with_capacity(names.len());
    // A product on several lines of the order is one history: read once.
    let mut known: HashMap<&str, Severity> = HashMap::new();
    for (product, tolerances) in names.iter().zip(tolerances) {
        let state = match known.get(product.as_str()).copied() {
            Some(state) => state,
            None => {
                let state = switching::next_severity(&history(conn, product).await?);
                if state == Severity::Tightened {
                    tracing::info!(
                        product = %product,
                        "product is under tightened inspection (switching rules)"
                    );
                }
                known.insert(product.as_str(), state);
                state
            }
        };
        products.push((tolerances, state));
        states.push((product.clone(), state));
    }
    let (severity, classes) = lot_plans(
        request.lot_size,
        request.level,
        request.major_aql,
        &products,
    );
    Ok(Drawn {
        states,
        severity,
        classes,
    })
}

/// The plans of one final inspection of a lot of `lot_size` made of
/// products with these tolerances and switching states: per defect class
/// the strictest tolerance of the products (the customer's `major_aql`
/// replacing theirs for major defects), drawn at `level` and at the
/// strictest of their states. Returns that severity and the plans.
pub fn lot_plans(
    lot_size: u32,
    level: Level,
    major_aql: Option<Aql>,
    products: &[(Tolerances, Severity)],
) -> (Severity, Vec<ClassPlan>) {
    let mut tolerances = products
        .iter()
        .map(|(tolerances, _)| *tolerances)
        .reduce(Tolerances::strictest)
        .unwrap_or_else(plans::default_tolerances);
    // The customer's AQL is the contract for major defects.
    if let Some(aql) = major_aql {
        tolerances.major = Tolerance::Aql(aql);
    }
    let severity = products
        .iter()
        .map(|(_, state)| *state)
        .fold(Severity::Normal, Severity::stricter);
    let classes = inspections::class_plans(
        lot_size,
        severity,
        level,
        &[
            (DefectClass::Critical, tolerances.critical),
            (DefectClass::Major, tolerances.major),
            (DefectClass::Minor, tolerances.minor),
        ],
    );
    (severity, classes)
}

/// Opens the requested revision: per defect class the strictest tolerance
/// of the order's products, drawn at the strictest of their switching
/// states ([`draw`]). The caller holds the order's lock and knows the
/// revision is new.
pub async fn open(
    conn: &mut PgConnection,
    request: &Request,
    opened_by: &Incoming,
) -> Result<Inspection> {
    let Drawn {
        states,
        severity,
        classes,
    } = draw(conn, request).await?;
    let opened = inspections::insert(
        conn,
        &NewInspection {
            kind: KIND_FINAL,
            order_id: request.order_id.clone(),
            items: request.items.clone(),
            purchase_order_id: String::new(),
            material: String::new(),
            lot: String::new(),
            supplier: String::new(),
            product: String::new(),
            stage: String::new(),
            lot_size: request.lot_size,
            revision: request.revision,
            severity,
            classes,
            cause_event_id: opened_by.envelope.event_id.clone(),
            traceparent: gendan_telemetry::current_traceparent()
                .or_else(|| opened_by.traceparent.clone()),
        },
    )
    .await?;
    // Normal is the column's default: only the other states are written,
    // all in one statement. A product on two lines has one state (see
    // `draw`), so it does not matter which of its pairs sets its rows.
    let (products, severities): (Vec<&str>, Vec<&str>) = states
        .iter()
        .filter(|(_, state)| *state != Severity::Normal)
        .map(|(product, state)| (product.as_str(), state.code()))
        .unzip();
    if !products.is_empty() {
        sqlx::query(
            "UPDATE inspection_items it SET severity = u.severity \
             FROM UNNEST($2::text[], $3::text[]) AS u(product, severity) \
             WHERE it.inspection_id = $1 AND it.product = u.product",
        )
        .bind(opened.inspection_id)
        .bind(&products)
        .bind(&severities)
        .execute(&mut *conn)
        .await?;
    }
    Ok(opened)
}

/// Where a final inspection stands, as the saga hears it:
/// `FinalInspectionOpened` while open, then its result.
pub async fn answer(
    conn: &mut PgConnection,
    inspection: &Inspection,
    cause: &Cause,
) -> Result<Outgoing> {
    debug_assert_eq!(inspection.kind, KIND_FINAL);
    let order_id = inspection.order_id.as_str();
    // The opening and the result are one fact each: said again (a re-sent
    // command, a repeated recording, a restatement), they keep their event
    // ids.
    let result = result_key(inspection);
    Ok(match inspection.status.as_str() {
        STATUS_PASSED => {
            let passed = passed_event(inspection);
            Outgoing::fact(SERVICE, order_id, &passed, cause, &result)
        }
        STATUS_FAILED => {
            let failed = failed_event(conn, inspection).await?;
            Outgoing::fact(SERVICE, order_id, &failed, cause, &result)
        }
        _ => opened_fact(inspection, cause),
    })
}

/// What names the result of an inspection (`FinalInspectionPassed` or
/// `FinalInspectionFailed`): the same key every time it is announced.
pub fn result_key(inspection: &Inspection) -> String {
    format!("inspection:{}:result", inspection.inspection_id)
}

/// `FinalInspectionOpened` as the fact of that inspection's opening.
pub fn opened_fact(inspection: &Inspection, cause: &Cause) -> Outgoing {
    let key = format!("inspection:{}:opened", inspection.inspection_id);
    let opened = opened_event(inspection);
    Outgoing::fact(SERVICE, &inspection.order_id, &opened, cause, &key)
}

pub fn opened_event(inspection: &Inspection) -> FinalInspectionOpened {
    FinalInspectionOpened {
        order_id: inspection.order_id.clone(),
        inspection_id: inspection.inspection_id.to_string(),
        lot_size: to_u32(inspection.lot_size),
        sample_size: to_u32(inspection.sample_size),
        code_letter: inspection.code_letter.clone(),
        revision: revision(inspection),
        severity: severity_proto(inspection.severity()) as i32,
    }
}

pub fn passed_event(inspection: &Inspection) -> FinalInspectionPassed {
    FinalInspectionPassed {
        order_id: inspection.order_id.clone(),
        inspection_id: inspection.inspection_id.to_string(),
        revision: revision(inspection),
        sample_size: units_inspected(inspection),
        defective_units: defective_units(&inspection.classes),
    }
}

/// The units the inspector looked at: as recorded, else the plan's sample.
fn units_inspected(inspection: &Inspection) -> u32 {
    to_u32(
        inspection
            .sample_inspected
            .unwrap_or(inspection.sample_size),
    )
}

async fn failed_event(
    conn: &mut PgConnection,
    inspection: &Inspection,
) -> Result<FinalInspectionFailed> {
    // Counted up to this revision, so an earlier failure answered again
    // after later ones reads as it did the first time.
    let failures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inspections \
         WHERE kind = 'final' AND order_id = $1 AND status = 'failed' AND revision <= $2",
    )
    .bind(&inspection.order_id)
    .bind(inspection.revision)
    .fetch_one(&mut *conn)
    .await?;
    Ok(FinalInspectionFailed {
        order_id: inspection.order_id.clone(),
        inspection_id: inspection.inspection_id.to_string(),
        nonconformance_id: inspection
            .nonconformance_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        failures: to_u32(failures),
        summary: inspection
            .nonconformance_summary
            .clone()
            .unwrap_or_default(),
        revision: revision(inspection),
        defective_units: defective_units(&inspection.classes),
        sample_size: units_inspected(inspection),
    })
}

/// Nonconforming units found in the sample, summed over the defect classes
/// (the rework quantity the contract asks for). Classes are counted apart,
/// so a unit with a major and a minor defect counts twice.
pub fn defective_units(classes: &[ClassRow]) -> u32 {
    classes
        .iter()
        .filter_map(|row| row.defects)
        .map(to_u32)
        .fold(0, u32::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(defect_class: &str, defects: Option<i64>) -> ClassRow {
        ClassRow {
            defect_class: defect_class.to_owned(),
            aql: "2.5".to_owned(),
            plan_code_letter: "H".to_owned(),
            sample_size: 50,
            accept: 3,
            reject: 4,
            defects,
            passed: defects.map(|found| found < 4),
        }
    }

    #[test]
    fn defective_units_add_up_the_classes() {
        let recorded = [
            class("critical", Some(1)),
            class("major", Some(4)),
            class("minor", Some(0)),
        ];
        assert_eq!(defective_units(&recorded), 5);
        let open = [class("critical", None), class("major", None)];
        assert_eq!(defective_units(&open), 0);
    }

    #[test]
    fn severities_map_to_the_wire() {
        assert_eq!(severity_proto(Severity::Normal), InspectionSeverity::Normal);
        assert_eq!(
            severity_proto(Severity::Tightened),
            InspectionSeverity::Tightened
        );
    }
}
