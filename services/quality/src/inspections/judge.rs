//! The verdict of an inspection's findings against its sampling plan, per
//! defect class (accept and reject numbers) and as a whole, and the check
//! that findings fit the inspection they are recorded on. Pure: no
//! database, tested beside it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gendan_grpc::FieldError;
use gendan_proto::v1::DefectClass;

use super::{ClassRow, Inspection, class_code, class_from_code, to_u32};
use crate::Result;
use crate::validate::{Finding, Findings};

/// The outcome of one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassOutcome {
    pub class: DefectClass,
    pub defects: u32,
    pub passed: bool,
}

/// The outcome of an inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub classes: Vec<ClassOutcome>,
    pub passed: bool,
    /// One line for people: per class the count against the plan; on a
    /// failure only the failing classes, with what was found.
    pub summary: String,
}

/// Judges the findings against the class plans. Counts of one class on
/// several lines (one per kind of defect) are added up.
pub fn judge(classes: &[ClassRow], findings: &[Finding]) -> Verdict {
    let mut found: BTreeMap<&str, (u32, Vec<String>)> = BTreeMap::new();
    for finding in findings {
        let entry = found.entry(class_code(finding.class)).or_default();
        entry.0 = entry.0.saturating_add(finding.count);
        if !finding.description.is_empty() {
            entry
                .1
                .push(format!("{} ×{}", finding.description, finding.count));
        }
    }
    let mut outcomes = Vec::with_capacity(classes.len());
    let mut failing = Vec::new();
    let mut tally = Vec::new();
    for row in classes {
        let (defects, descriptions) = found
            .get(row.defect_class.as_str())
            .cloned()
            .unwrap_or_default();
        let passed = i64::from(defects) < row.reject;
        let rule = if row.aql == "0" {
            "zero tolerance".to_owned()
        } else {
            format!("AQL {}: Ac {} Re {}", row.aql, row.accept, row.reject)
        };
        let mut line = format!(
            "{} {defects} in {} ({rule})",
            row.defect_class, row.sample_size
        );
        if !descriptions.is_empty() {
            let _ = write!(line, ": {}", descriptions.join(", "));
        }
        if !passed {
            failing.push(line.clone());
        }
        tally.push(line);
        outcomes.push(ClassOutcome {
            class: class_from_code(&row.defect_class),
            defects,
            passed,
        });
    }
    let passed = failing.is_empty();
    let summary = if passed {
        format!("passed: {}", tally.join("; "))
    } else {
        format!("failed: {}", failing.join("; "))
    };
    Verdict {
        classes: outcomes,
        passed,
        summary,
    }
}

/// Checks the findings against the stored inspection (the checks that need
/// it), so nothing is written on invalid input.
pub fn check_findings(inspection: &Inspection, findings: &Findings) -> Result<()> {
    let lot_size = to_u32(inspection.lot_size);
    let required = to_u32(inspection.sample_size);
    if findings.sample_inspected < required {
        return Err(FieldError::new(
            "sample_inspected",
            format!(
                "{} units is less than the sample of {required} the plan requires",
                findings.sample_inspected
            ),
        )
        .into());
    }
    if findings.sample_inspected > lot_size {
        return Err(FieldError::new(
            "sample_inspected",
            format!(
                "{} units is more than the lot of {lot_size}",
                findings.sample_inspected
            ),
        )
        .into());
    }
    let mut per_class: BTreeMap<&str, u32> = BTreeMap::new();
    for finding in &findings.defects {
        let field = format!("defects[{}]", finding.index);
        if inspection.class(finding.class).is_none() {
            return Err(FieldError::new(
                format!("{field}.defect_class"),
                format!(
                    "{} defects are not part of this {} inspection's plan",
                    class_code(finding.class),
                    inspection.kind
                ),
            )
            .into());
        }
        let total = per_class.entry(class_code(finding.class)).or_default();
        *total = total.saturating_add(finding.count);
        // Percent-nonconforming plans count defective units, so a class
        // cannot have more than the units inspected.
        if *total > findings.sample_inspected {
            return Err(FieldError::new(
                format!("{field}.count"),
                format!(
                    "{} {} defectives is more than the {} units inspected",
                    total,
                    class_code(finding.class),
                    findings.sample_inspected
                ),
            )
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(class: &str, aql: &str, n: i64, ac: i64, re: i64) -> ClassRow {
        ClassRow {
            defect_class: class.to_owned(),
            aql: aql.to_owned(),
            plan_code_letter: "H".to_owned(),
            sample_size: n,
            accept: ac,
            reject: re,
            defects: None,
            passed: None,
        }
    }

    fn finding(class: DefectClass, count: u32, description: &str) -> Finding {
        Finding {
            index: 0,
            class,
            count,
            description: description.to_owned(),
        }
    }

    /// Lot 500 (H, n 50) at the default plan: critical 0, major 2.5 (Ac 3
    /// Re 4), minor 4.0 (Ac 5 Re 6).
    fn lot_500() -> Vec<ClassRow> {
        vec![
            row("critical", "0", 50, 0, 1),
            row("major", "2.5", 50, 3, 4),
            row("minor", "4.0", 50, 5, 6),
        ]
    }

    #[test]
    fn a_clean_sample_passes() {
        let verdict = judge(&lot_500(), &[]);
        assert!(verdict.passed);
        assert!(verdict.classes.iter().all(|c| c.passed && c.defects == 0));
        assert!(verdict.summary.starts_with("passed"), "{}", verdict.summary);
    }

    #[test]
    fn defects_below_re_pass_and_at_re_fail() {
        let verdict = judge(
            &lot_500(),
            &[
                finding(DefectClass::Major, 3, "stain"),
                finding(DefectClass::Minor, 5, "loose thread"),
            ],
        );
        assert!(verdict.passed, "{verdict:?}");

        let verdict = judge(
            &lot_500(),
            &[
                finding(DefectClass::Major, 2, "stain"),
                finding(DefectClass::Major, 2, "open seam"),
            ],
        );
        assert!(!verdict.passed);
        assert_eq!(verdict.classes[1].defects, 4);
        assert!(
            verdict
                .summary
                .contains("major 4 in 50 (AQL 2.5: Ac 3 Re 4): stain ×2, open seam ×2"),
            "{}",
            verdict.summary
        );
        assert!(!verdict.summary.contains("minor"), "{}", verdict.summary);
    }

    #[test]
    fn any_critical_defect_fails_with_zero_tolerance() {
        let verdict = judge(
            &lot_500(),
            &[finding(DefectClass::Critical, 1, "sharp edge")],
        );
        assert!(!verdict.passed);
        assert!(!verdict.classes[0].passed);
        assert!(verdict.classes[1].passed);
        assert!(
            verdict.summary.contains("zero tolerance"),
            "{}",
            verdict.summary
        );
    }
}
