//! Writing inspections: [`insert`] stores a new one with its items and
//! class plans, [`save_result`] a recorded result (status, class outcomes,
//! findings, the nonconformance of a failure), each in one statement per
//! table, the child rows bound as arrays and unnested. Both return the
//! inspection as a load would now read it back, built from what they wrote.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;
use crate::inspections::{
    ClassPlan, ClassRow, DefectRow, Inspection, NewInspection, STATUS_FAILED, STATUS_OPEN,
    STATUS_PASSED, Verdict, class_code, sample_size,
};
use crate::sampling;
use crate::validate::Findings;

/// The order a load reads the class plans in (its `array_position`), in
/// which a new inspection keeps them too.
const CLASS_ORDER: [&str; 3] = ["critical", "major", "minor"];

/// The stored rows of a new inspection's class plans, in the order a load
/// reads them.
fn class_rows(classes: &[ClassPlan]) -> Vec<ClassRow> {
    let mut rows: Vec<ClassRow> = classes
        .iter()
        .map(|class| ClassRow {
            defect_class: class_code(class.class).to_owned(),
            aql: class.tolerance.code().to_owned(),
            plan_code_letter: class.plan.plan_code_letter.to_string(),
            sample_size: i64::from(class.plan.sample_size),
            accept: i64::from(class.plan.accept),
            reject: i64::from(class.plan.reject),
            defects: None,
            passed: None,
        })
        .collect();
    rows.sort_by_key(|row| {
        CLASS_ORDER
            .iter()
            .position(|code| *code == row.defect_class)
            .unwrap_or(CLASS_ORDER.len())
    });
    rows
}

/// Stores a new open inspection with its items and class plans, one
/// statement per table, and returns it as stored (`opened_at` is the
/// database's clock).
pub async fn insert(conn: &mut PgConnection, new: &NewInspection) -> Result<Inspection> {
    let inspection_id = Uuid::now_v7();
    let sample_size = i64::from(sample_size(&new.classes, new.lot_size));
    // The lot's code letter at the inspection's level: every class plan of
    // one lot starts from the same letter.
    let code_letter = new
        .classes
        .first()
        .map_or_else(
            || sampling::CODE_LETTERS[sampling::code_letter_row(new.lot_size)],
            |class| class.plan.code_letter,
        )
        .to_string();
    let revision = i32::try_from(new.revision).unwrap_or(i32::MAX);
    let opened_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO inspections (inspection_id, kind, order_id, purchase_order_id, material, lot, \
           supplier, lot_size, code_letter, sample_size, status, cause_event_id, traceparent, \
           product, stage, revision, severity) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11, $12, $13, $14, $15, $16) \
         RETURNING opened_at",
    )
    .bind(inspection_id)
    .bind(new.kind)
    .bind(&new.order_id)
    .bind(&new.purchase_order_id)
    .bind(&new.material)
    .bind(&new.lot)
    .bind(&new.supplier)
    .bind(i64::from(new.lot_size))
    .bind(&code_letter)
    .bind(sample_size)
    .bind(&new.cause_event_id)
    .bind(new.traceparent.as_deref())
    .bind(&new.product)
    .bind(&new.stage)
    .bind(revision)
    .bind(new.severity.code())
    .fetch_one(&mut *conn)
    .await?;
    if !new.items.is_empty() {
        let seqs: Vec<i32> = (0..new.items.len())
            .map(|seq| i32::try_from(seq).unwrap_or(i32::MAX))
            .collect();
        let (products, quantities): (Vec<&str>, Vec<i64>) = new
            .items
            .iter()
            .map(|(product, quantity)| (product.as_str(), i64::from(*quantity)))
            .unzip();
        sqlx::query(
            "INSERT INTO inspection_items (inspection_id, seq, product, quantity) \
             SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::bigint[])",
        )
        .bind(inspection_id)
        .bind(&seqs)
        .bind(&products)
        .bind(&quantities)
        .execute(&mut *conn)
        .await?;
    }
    let classes = class_rows(&new.classes);
    if !classes.is_empty() {
        let defect_classes: Vec<&str> = classes
            .iter()
            .map(|row| row.defect_class.as_str())
            .collect();
        let aqls: Vec<&str> = classes.iter().map(|row| row.aql.as_str()).collect();
        let letters: Vec<&str> = classes
            .iter()
            .map(|row| row.plan_code_letter.as_str())
            .collect();
        let samples: Vec<i64> = classes.iter().map(|row| row.sample_size).collect();
        let accepts: Vec<i64> = classes.iter().map(|row| row.accept).collect();
        let rejects: Vec<i64> = classes.iter().map(|row| row.reject).collect();
        sqlx::query(
            "INSERT INTO inspection_classes (inspection_id, defect_class, aql, plan_code_letter, \
               sample_size, accept, reject) \
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bigint[], \
                                      $6::bigint[], $7::bigint[])",
        )
        .bind(inspection_id)
        .bind(&defect_classes)
        .bind(&aqls)
        .bind(&letters)
        .bind(&samples)
        .bind(&accepts)
        .bind(&rejects)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Inspection {
        inspection_id,
        kind: new.kind.to_owned(),
        order_id: new.order_id.clone(),
        purchase_order_id: new.purchase_order_id.clone(),
        material: new.material.clone(),
        lot: new.lot.clone(),
        supplier: new.supplier.clone(),
        product: new.product.clone(),
        stage: new.stage.clone(),
        lot_size: i64::from(new.lot_size),
        code_letter,
        sample_size,
        status: STATUS_OPEN.to_owned(),
        inspector: None,
        sample_inspected: None,
        cause_event_id: new.cause_event_id.clone(),
        traceparent: new.traceparent.clone(),
        opened_at,
        recorded_at: None,
        revision,
        severity: new.severity.code().to_owned(),
        nonconformance_id: None,
        nonconformance_summary: None,
        items: new.items.clone(),
        classes,
        defects: Vec::new(),
    })
}

/// Stores the result of an open, locked inspection judged `verdict`: its
/// status, each class's count and outcome, the findings and, on a failure,
/// a new nonconformance, one statement per table. Returns the inspection as
/// now stored ([`recorded`]).
pub(crate) async fn save_result(
    conn: &mut PgConnection,
    inspection: &Inspection,
    findings: &Findings,
    verdict: &Verdict,
) -> Result<Inspection> {
    let recorded_at: DateTime<Utc> = sqlx::query_scalar(
        "UPDATE inspections SET status = $2, inspector = $3, sample_inspected = $4, recorded_at = now() \
         WHERE inspection_id = $1 RETURNING recorded_at",
    )
    .bind(inspection.inspection_id)
    .bind(status(verdict))
    .bind(&findings.inspector)
    .bind(i64::from(findings.sample_inspected))
    .fetch_one(&mut *conn)
    .await?;
    if !verdict.classes.is_empty() {
        let len = verdict.classes.len();
        let (mut defect_classes, mut defects, mut passed) = (
            Vec::with_capacity(len),
            Vec::with_capacity(len),
            Vec::with_capacity(len),
        );
        for outcome in &verdict.classes {
            defect_classes.push(class_code(outcome.class));
            defects.push(i64::from(outcome.defects));
            passed.push(outcome.passed);
        }
        sqlx::query(
            "UPDATE inspection_classes c SET defects = u.defects, passed = u.passed \
             FROM UNNEST($2::text[], $3::bigint[], $4::bool[]) AS u(defect_class, defects, passed) \
             WHERE c.inspection_id = $1 AND c.defect_class = u.defect_class",
        )
        .bind(inspection.inspection_id)
        .bind(&defect_classes)
        .bind(&defects)
        .bind(&passed)
        .execute(&mut *conn)
        .await?;
    }
    if !findings.defects.is_empty() {
        let len = findings.defects.len();
        let (mut seqs, mut classes, mut counts, mut descriptions) = (
            Vec::with_capacity(len),
            Vec::with_capacity(len),
            Vec::with_capacity(len),
            Vec::with_capacity(len),
        );
        for (seq, finding) in findings.defects.iter().enumerate() {
            seqs.push(i32::try_from(seq).unwrap_or(i32::MAX));
            classes.push(class_code(finding.class));
            counts.push(i64::from(finding.count));
            descriptions.push(finding.description.as_str());
        }
        sqlx::query(
            "INSERT INTO inspection_defects (inspection_id, seq, defect_class, count, description) \
             SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::bigint[], $5::text[])",
        )
        .bind(inspection.inspection_id)
        .bind(&seqs)
        .bind(&classes)
        .bind(&counts)
        .bind(&descriptions)
        .execute(&mut *conn)
        .await?;
    }
    let nonconformance_id = if verdict.passed {
        None
    } else {
        let nonconformance_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO nonconformances (nonconformance_id, inspection_id, order_id, summary, status) \
             VALUES ($1, $2, $3, $4, 'open')",
        )
        .bind(nonconformance_id)
        .bind(inspection.inspection_id)
        .bind(&inspection.order_id)
        .bind(&verdict.summary)
        .execute(&mut *conn)
        .await?;
        Some(nonconformance_id)
    };
    Ok(recorded(
        inspection,
        findings,
        verdict,
        recorded_at,
        nonconformance_id,
    ))
}

/// The status a verdict leaves the inspection in.
fn status(verdict: &Verdict) -> &'static str {
    if verdict.passed {
        STATUS_PASSED
    } else {
        STATUS_FAILED
    }
}

/// The open `inspection` as [`save_result`] leaves its rows, so it reads as
/// a load would read it back: the status, inspector and sample, each
/// class's count and outcome, the findings in their order, and the
/// nonconformance opened on a failure (`nonconformance_id`, summed up by
/// the verdict's summary).
fn recorded(
    inspection: &Inspection,
    findings: &Findings,
    verdict: &Verdict,
    recorded_at: DateTime<Utc>,
    nonconformance_id: Option<Uuid>,
) -> Inspection {
    // Matched by class, as `save_result` updates them.
    let outcomes: HashMap<&str, (u32, bool)> = verdict
        .classes
        .iter()
        .map(|outcome| (class_code(outcome.class), (outcome.defects, outcome.passed)))
        .collect();
    let mut recorded = inspection.clone();
    recorded.status = status(verdict).to_owned();
    recorded.inspector = Some(findings.inspector.clone());
    recorded.sample_inspected = Some(i64::from(findings.sample_inspected));
    recorded.recorded_at = Some(recorded_at);
    for row in &mut recorded.classes {
        if let Some((defects, passed)) = outcomes.get(row.defect_class.as_str()) {
            row.defects = Some(i64::from(*defects));
            row.passed = Some(*passed);
        }
    }
    recorded.defects = findings
        .defects
        .iter()
        .map(|finding| DefectRow {
            defect_class: class_code(finding.class).to_owned(),
            count: i64::from(finding.count),
            description: finding.description.clone(),
        })
        .collect();
    if let Some(id) = nonconformance_id {
        recorded.nonconformance_id = Some(id);
        recorded.nonconformance_summary = Some(verdict.summary.clone());
    }
    recorded
}

#[cfg(test)]
mod tests {
    use gendan_proto::v1::DefectClass;

    use super::*;
    use crate::inspections::{KIND_FINAL, class_plans, judge};
    use crate::sampling::{Level, Severity, Tolerance};
    use crate::validate::Finding;

    /// An open final inspection of a lot of 500 at the default plan, as
    /// [`insert`] returns it.
    fn open_inspection() -> Inspection {
        let plans = class_plans(
            500,
            Severity::Normal,
            Level::II,
            &[
                (DefectClass::Critical, Tolerance::Zero),
                (DefectClass::Major, Tolerance::from_code("2.5").unwrap()),
                (DefectClass::Minor, Tolerance::from_code("4.0").unwrap()),
            ],
        );
        Inspection {
            inspection_id: Uuid::now_v7(),
            kind: KIND_FINAL.to_owned(),
            order_id: "o-1".to_owned(),
            purchase_order_id: String::new(),
            material: String::new(),
            lot: String::new(),
            supplier: String::new(),
            product: String::new(),
            stage: String::new(),
            lot_size: 500,
            code_letter: "H".to_owned(),
            sample_size: 50,
            status: STATUS_OPEN.to_owned(),
            inspector: None,
            sample_inspected: None,
            cause_event_id: "evt-1".to_owned(),
            traceparent: None,
            opened_at: Utc::now(),
            recorded_at: None,
            revision: 1,
            severity: Severity::Normal.code().to_owned(),
            nonconformance_id: None,
            nonconformance_summary: None,
            items: vec![("mug".to_owned(), 500)],
            classes: class_rows(&plans),
            defects: Vec::new(),
        }
    }

    fn result_of(inspection: &Inspection, defects: &[(DefectClass, u32, &str)]) -> Findings {
        Findings {
            inspection_id: inspection.inspection_id,
            inspector: "qa-1".to_owned(),
            sample_inspected: 50,
            defects: defects
                .iter()
                .enumerate()
                .map(|(index, (class, count, description))| Finding {
                    index,
                    class: *class,
                    count: *count,
                    description: (*description).to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn class_rows_are_in_the_order_a_load_reads_them() {
        let plans = class_plans(
            500,
            Severity::Normal,
            Level::II,
            &[
                (DefectClass::Minor, Tolerance::from_code("4.0").unwrap()),
                (DefectClass::Critical, Tolerance::Zero),
                (DefectClass::Major, Tolerance::from_code("2.5").unwrap()),
            ],
        );
        let rows = class_rows(&plans);
        let read: Vec<(&str, &str, &str, i64, i64, i64)> = rows
            .iter()
            .map(|row| {
                (
                    row.defect_class.as_str(),
                    row.aql.as_str(),
                    row.plan_code_letter.as_str(),
                    row.sample_size,
                    row.accept,
                    row.reject,
                )
            })
            .collect();
        assert_eq!(
            read,
            [
                ("critical", "0", "H", 50, 0, 1),
                ("major", "2.5", "H", 50, 3, 4),
                ("minor", "4.0", "H", 50, 5, 6),
            ]
        );
        assert!(
            rows.iter()
                .all(|row| row.defects.is_none() && row.passed.is_none())
        );
    }

    #[test]
    fn a_failed_result_reads_as_stored() {
        let open = open_inspection();
        let findings = result_of(
            &open,
            &[
                (DefectClass::Major, 2, "stain"),
                (DefectClass::Major, 2, "open seam"),
                (DefectClass::Minor, 1, ""),
            ],
        );
        let verdict = judge(&open.classes, &findings.defects);
        let at = Utc::now();
        let nonconformance_id = Uuid::now_v7();
        let recorded = recorded(&open, &findings, &verdict, at, Some(nonconformance_id));

        assert_eq!(recorded.status, STATUS_FAILED);
        assert_eq!(recorded.inspector.as_deref(), Some("qa-1"));
        assert_eq!(recorded.sample_inspected, Some(50));
        assert_eq!(recorded.recorded_at, Some(at));
        let outcomes: Vec<(&str, Option<i64>, Option<bool>)> = recorded
            .classes
            .iter()
            .map(|row| (row.defect_class.as_str(), row.defects, row.passed))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("critical", Some(0), Some(true)),
                ("major", Some(4), Some(false)),
                ("minor", Some(1), Some(true)),
            ]
        );
        let found: Vec<(&str, i64, &str)> = recorded
            .defects
            .iter()
            .map(|row| {
                (
                    row.defect_class.as_str(),
                    row.count,
                    row.description.as_str(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("major", 2, "stain"),
                ("major", 2, "open seam"),
                ("minor", 1, "")
            ]
        );
        assert_eq!(recorded.nonconformance_id, Some(nonconformance_id));
        assert_eq!(
            recorded.nonconformance_summary.as_deref(),
            Some(verdict.summary.as_str())
        );
        // What the result does not touch stays as it was opened.
        assert_eq!(
            (&recorded.items, recorded.opened_at, recorded.revision),
            (&open.items, open.opened_at, open.revision)
        );
    }

    #[test]
    fn a_passed_result_has_no_nonconformance() {
        let open = open_inspection();
        let findings = result_of(&open, &[]);
        let verdict = judge(&open.classes, &findings.defects);
        let recorded = recorded(&open, &findings, &verdict, Utc::now(), None);
        assert_eq!(recorded.status, STATUS_PASSED);
        assert!(recorded.defects.is_empty());
        assert_eq!(
            (recorded.nonconformance_id, recorded.nonconformance_summary),
            (None, None)
        );
        assert!(recorded.classes.iter().all(|row| row.passed == Some(true)));
    }
}
