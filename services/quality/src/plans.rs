//! Inspection plans: per product the tolerance of each defect class at
//! final inspection and the routing stages with an in-process inspection;
//! per material the AQL of incoming inspection.
//!
//! A product or material without a stored plan gets the common trade
//! practice: critical 0 (any critical defect fails the lot), major 2.5,
//! minor 4.0 for finished goods; 2.5 on major defects for incoming lots.
//! These are the values buyers' inspection agencies apply to consumer goods
//! when a contract says nothing else.

use std::collections::HashMap;

use gendan_proto::v1::{DefectClass, IncomingInspectionPlan, InspectionPlan};
use sqlx::PgConnection;

use crate::Result;
use crate::sampling::{Aql, Tolerance};

/// The tolerance of each defect class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tolerances {
    pub critical: Tolerance,
    pub major: Tolerance,
    pub minor: Tolerance,
}

fn aql(code: &str) -> Tolerance {
    Tolerance::Aql(Aql::from_code(code).unwrap_or_else(|| unreachable!("{code} is a column")))
}

/// Critical 0 / major 2.5 / minor 4.0 (common practice, see the module doc).
pub fn default_tolerances() -> Tolerances {
    Tolerances {
        critical: Tolerance::Zero,
        major: aql("2.5"),
        minor: aql("4.0"),
    }
}

/// Major defects of an incoming lot, when the material has no plan.
pub fn default_incoming() -> Tolerance {
    aql("2.5")
}

impl Tolerances {
    pub fn of(&self, class: DefectClass) -> Option<Tolerance> {
        match class {
            DefectClass::Critical => Some(self.critical),
            DefectClass::Major => Some(self.major),
            DefectClass::Minor => Some(self.minor),
            DefectClass::Unspecified => None,
        }
    }

    /// The stricter tolerance of each class: a lot of several products is
    /// inspected once, so it must satisfy the most demanding plan.
    pub fn strictest(self, other: Tolerances) -> Tolerances {
        Tolerances {
            critical: stricter(self.critical, other.critical),
            major: stricter(self.major, other.major),
            minor: stricter(self.minor, other.minor),
        }
    }
}

/// Zero tolerance is the strictest; otherwise the lower AQL.
pub fn stricter(a: Tolerance, b: Tolerance) -> Tolerance {
    match (a, b) {
        (Tolerance::Zero, _) | (_, Tolerance::Zero) => Tolerance::Zero,
        (Tolerance::Aql(x), Tolerance::Aql(y)) => Tolerance::Aql(x.min(y)),
    }
}

/// A product's stored plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductPlan {
    pub product: String,
    pub tolerances: Tolerances,
    pub in_process_stages: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct PlanRow {
    product: String,
    critical_aql: String,
    major_aql: String,
    minor_aql: String,
    in_process_stages: Vec<String>,
}

/// A stored code that no longer parses would be a migration bug; the
/// default keeps inspections going and the log says which row.
fn stored(code: &str, fallback: Tolerance, what: &str) -> Tolerance {
    Tolerance::from_code(code).unwrap_or_else(|| {
        tracing::error!(
            code,
            what,
            "stored AQL is not a table column, using the default"
        );
        fallback
    })
}

impl PlanRow {
    fn into_plan(self) -> ProductPlan {
        let defaults = default_tolerances();
        ProductPlan {
            tolerances: Tolerances {
                critical: stored(&self.critical_aql, defaults.critical, &self.product),
                major: stored(&self.major_aql, defaults.major, &self.product),
                minor: stored(&self.minor_aql, defaults.minor, &self.product),
            },
            product: self.product,
            in_process_stages: self.in_process_stages,
        }
    }
}

pub async fn product_plan(conn: &mut PgConnection, product: &str) -> Result<Option<ProductPlan>> {
    let row: Option<PlanRow> = sqlx::query_as(
        "SELECT product, critical_aql, major_aql, minor_aql, in_process_stages \
         FROM inspection_plans WHERE product = $1",
    )
    .bind(product)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(PlanRow::into_plan))
}

/// The stages `products`' plans inspect in process, as (product, stage),
/// in the products' order and each plan's: one statement for all of them.
pub async fn in_process_stages_of(
    conn: &mut PgConnection,
    products: &[String],
) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT product, in_process_stages FROM inspection_plans WHERE product = ANY($1)",
    )
    .bind(products)
    .fetch_all(conn)
    .await?;
    let planned: HashMap<String, Vec<String>> = rows.into_iter().collect();
    let mut seen = std::collections::HashSet::new();
    Ok(products
        .iter()
        .filter(|product| seen.insert(product.as_str()))
        .flat_map(|product| {
            planned
                .get(product)
                .into_iter()
                .flatten()
                .map(move |stage| (product.clone(), stage.trim().to_owned()))
        })
        .collect())
}

/// The tolerances of each of `products`, in their order: its plan's, else
/// the defaults. One statement for all of them, however many lines an
/// order has.
pub async fn tolerances_of(
    conn: &mut PgConnection,
    products: &[String],
) -> Result<Vec<Tolerances>> {
    let rows: Vec<PlanRow> = sqlx::query_as(
        "SELECT product, critical_aql, major_aql, minor_aql, in_process_stages \
         FROM inspection_plans WHERE product = ANY($1)",
    )
    .bind(products)
    .fetch_all(conn)
    .await?;
    let planned: HashMap<String, Tolerances> = rows
        .into_iter()
        .map(|row| {
            let plan = row.into_plan();
            (plan.product, plan.tolerances)
        })
        .collect();
    Ok(products
        .iter()
        .map(|product| {
            planned
                .get(product)
                .copied()
                .unwrap_or_else(default_tolerances)
        })
        .collect())
}

pub async fn set_product_plan(conn: &mut PgConnection, plan: &ProductPlan) -> Result<()> {
    sqlx::query(
        "INSERT INTO inspection_plans (product, critical_aql, major_aql, minor_aql, in_process_stages) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (product) DO UPDATE SET critical_aql = EXCLUDED.critical_aql, \
           major_aql = EXCLUDED.major_aql, minor_aql = EXCLUDED.minor_aql, \
           in_process_stages = EXCLUDED.in_process_stages, updated_at = now()",
    )
    .bind(&plan.product)
    .bind(plan.tolerances.critical.code())
    .bind(plan.tolerances.major.code())
    .bind(plan.tolerances.minor.code())
    .bind(&plan.in_process_stages)
    .execute(conn)
    .await?;
    Ok(())
}

/// The incoming AQL of a material, and whether it is the default.
pub async fn incoming_tolerance(
    conn: &mut PgConnection,
    material: &str,
) -> Result<(Tolerance, bool)> {
    let code: Option<String> =
        sqlx::query_scalar("SELECT aql FROM incoming_plans WHERE material = $1")
            .bind(material)
            .fetch_optional(conn)
            .await?;
    Ok(match code {
        Some(code) => (stored(&code, default_incoming(), material), false),
        None => (default_incoming(), true),
    })
}

pub async fn set_incoming_tolerance(
    conn: &mut PgConnection,
    material: &str,
    tolerance: Tolerance,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO incoming_plans (material, aql) VALUES ($1, $2) \
         ON CONFLICT (material) DO UPDATE SET aql = EXCLUDED.aql, updated_at = now()",
    )
    .bind(material)
    .bind(tolerance.code())
    .execute(conn)
    .await?;
    Ok(())
}

pub fn plan_proto(plan: &ProductPlan, is_default: bool) -> InspectionPlan {
    InspectionPlan {
        product: plan.product.clone(),
        critical_aql: Some(plan.tolerances.critical.percent()),
        major_aql: Some(plan.tolerances.major.percent()),
        minor_aql: Some(plan.tolerances.minor.percent()),
        in_process_stages: plan.in_process_stages.clone(),
        is_default,
    }
}

pub fn incoming_proto(
    material: &str,
    tolerance: Tolerance,
    is_default: bool,
) -> IncomingInspectionPlan {
    IncomingInspectionPlan {
        material: material.to_owned(),
        aql: Some(tolerance.percent()),
        is_default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictest_takes_zero_then_the_lower_aql() {
        let loose = Tolerances {
            critical: aql("0.065"),
            major: aql("4.0"),
            minor: aql("6.5"),
        };
        let strict = default_tolerances().strictest(loose);
        assert_eq!(strict.critical, Tolerance::Zero);
        assert_eq!(strict.major, aql("2.5"));
        assert_eq!(strict.minor, aql("4.0"));
        assert_eq!(stricter(aql("1.0"), aql("0.65")), aql("0.65"));
    }

    #[test]
    fn defaults_are_common_practice() {
        let defaults = default_tolerances();
        assert_eq!(
            (
                defaults.critical.code(),
                defaults.major.code(),
                defaults.minor.code()
            ),
            ("0", "2.5", "4.0")
        );
        assert_eq!(default_incoming().code(), "2.5");
    }
}
