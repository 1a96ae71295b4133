//! Master data: materials, suppliers, supplier offers and bills of
//! materials, plus the loaders that feed [`netting`](crate::netting).
//!
//! Everything takes a `PgConnection` so the caller chooses the transaction.

use std::collections::{HashMap, HashSet};

use gendan_proto::v1::{Material, Supplier, SupplierOffer};
use sqlx::PgConnection;

use crate::Result;
use crate::netting::{BomLine, Offer};
use crate::validate::OfferDef;

pub async fn upsert_material(conn: &mut PgConnection, material: &Material) -> Result<()> {
    sqlx::query(
        "INSERT INTO materials (code, name, unit) VALUES ($1, $2, $3) \
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, unit = EXCLUDED.unit, \
           updated_at = now()",
    )
    .bind(&material.code)
    .bind(&material.name)
    .bind(&material.unit)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn materials(conn: &mut PgConnection) -> Result<Vec<Material>> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT code, name, unit FROM materials ORDER BY code")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(code, name, unit)| Material { code, name, unit })
        .collect())
}

/// The unit of `material`, or `None` when it is unknown.
pub async fn unit_of(conn: &mut PgConnection, material: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT unit FROM materials WHERE code = $1")
            .bind(material)
            .fetch_optional(conn)
            .await?,
    )
}

/// Units of every material, by code.
pub async fn units(conn: &mut PgConnection) -> Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT code, unit FROM materials")
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Which of `codes` are known materials.
pub async fn existing_materials(
    conn: &mut PgConnection,
    codes: &[String],
) -> Result<HashSet<String>> {
    let rows: Vec<String> = sqlx::query_scalar("SELECT code FROM materials WHERE code = ANY($1)")
        .bind(codes)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

pub async fn upsert_supplier(conn: &mut PgConnection, supplier: &Supplier) -> Result<()> {
    sqlx::query(
        "INSERT INTO suppliers (code, name, currency) VALUES ($1, $2, $3) \
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, currency = EXCLUDED.currency, \
           updated_at = now()",
    )
    .bind(&supplier.code)
    .bind(&supplier.name)
    .bind(&supplier.currency)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn suppliers(conn: &mut PgConnection) -> Result<Vec<Supplier>> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT code, name, currency FROM suppliers ORDER BY code")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(code, name, currency)| Supplier {
            code,
            name,
            currency,
        })
        .collect())
}

/// The currency of `supplier`, or `None` when it is unknown.
pub async fn supplier_currency(conn: &mut PgConnection, supplier: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT currency FROM suppliers WHERE code = $1")
            .bind(supplier)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn upsert_offer(conn: &mut PgConnection, offer: &OfferDef) -> Result<()> {
    sqlx::query(
        "INSERT INTO supplier_offers \
           (supplier, material, lead_time_days, unit_price_minor, moq_milli) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (supplier, material) DO UPDATE SET \
           lead_time_days = EXCLUDED.lead_time_days, \
           unit_price_minor = EXCLUDED.unit_price_minor, \
           moq_milli = EXCLUDED.moq_milli, updated_at = now()",
    )
    .bind(&offer.supplier)
    .bind(&offer.material)
    .bind(i32::try_from(offer.lead_time_days).unwrap_or(i32::MAX))
    .bind(offer.unit_price_minor)
    .bind(offer.moq)
    .execute(conn)
    .await?;
    Ok(())
}

type OfferRow = (String, String, String, i32, i64, i64);

const OFFERS_SQL: &str = "SELECT o.supplier, o.material, s.currency, o.lead_time_days, \
       o.unit_price_minor, o.moq_milli \
     FROM supplier_offers o JOIN suppliers s ON s.code = o.supplier \
     WHERE $1::text[] IS NULL OR o.material = ANY($1) \
     ORDER BY o.material, o.supplier";

fn offer_of(row: &OfferRow) -> Offer {
    Offer {
        supplier: row.0.clone(),
        currency: row.2.clone(),
        lead_time_days: u32::try_from(row.3).unwrap_or(0),
        unit_price_minor: row.4,
        moq: row.5,
    }
}

/// Offers for `materials` (all when `None`), as wire messages.
pub async fn offers_proto(
    conn: &mut PgConnection,
    materials: Option<&[String]>,
) -> Result<Vec<SupplierOffer>> {
    let rows: Vec<OfferRow> = sqlx::query_as(OFFERS_SQL)
        .bind(materials)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .iter()
        .map(|row| SupplierOffer {
            supplier: row.0.clone(),
            material: row.1.clone(),
            lead_time_days: u32::try_from(row.3).unwrap_or(0),
            unit_price_minor: row.4,
            minimum_order_quantity: crate::milli_to_f64(row.5),
            currency: row.2.clone(),
        })
        .collect())
}

/// Offers for `materials`, by material.
pub async fn offers(
    conn: &mut PgConnection,
    materials: &[String],
) -> Result<HashMap<String, Vec<Offer>>> {
    let rows: Vec<OfferRow> = sqlx::query_as(OFFERS_SQL)
        .bind(materials)
        .fetch_all(conn)
        .await?;
    let mut by_material: HashMap<String, Vec<Offer>> = HashMap::new();
    for row in &rows {
        by_material
            .entry(row.1.clone())
            .or_default()
            .push(offer_of(row));
    }
    Ok(by_material)
}

/// Replaces the bill of materials of `product`.
pub async fn set_bom(conn: &mut PgConnection, product: &str, lines: &[BomLine]) -> Result<()> {
    sqlx::query(
        "INSERT INTO boms (product) VALUES ($1) \
         ON CONFLICT (product) DO UPDATE SET updated_at = now()",
    )
    .bind(product)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM bom_lines WHERE product = $1")
        .bind(product)
        .execute(&mut *conn)
        .await?;
    let seqs: Vec<i32> = (0..lines.len()).map(|i| i as i32).collect();
    let materials: Vec<&str> = lines.iter().map(|l| l.material.as_str()).collect();
    let per_unit: Vec<i64> = lines.iter().map(|l| l.per_unit).collect();
    let scrap: Vec<i64> = lines.iter().map(|l| l.scrap_bp).collect();
    sqlx::query(
        "INSERT INTO bom_lines (product, seq, material, per_unit_milli, scrap_bp) \
         SELECT $1, * FROM UNNEST($2::int4[], $3::text[], $4::int8[], $5::int8[])",
    )
    .bind(product)
    .bind(&seqs)
    .bind(&materials)
    .bind(&per_unit)
    .bind(&scrap)
    .execute(conn)
    .await?;
    Ok(())
}

/// Bills of materials of `products`, by product; products without one are
/// absent.
pub async fn boms(
    conn: &mut PgConnection,
    products: &[String],
) -> Result<HashMap<String, Vec<BomLine>>> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT product, material, per_unit_milli, scrap_bp FROM bom_lines \
         WHERE product = ANY($1) ORDER BY product, seq",
    )
    .bind(products)
    .fetch_all(conn)
    .await?;
    let mut by_product: HashMap<String, Vec<BomLine>> = HashMap::new();
    for (product, material, per_unit, scrap_bp) in rows {
        by_product.entry(product).or_default().push(BomLine {
            material,
            per_unit,
            scrap_bp,
        });
    }
    Ok(by_product)
}
