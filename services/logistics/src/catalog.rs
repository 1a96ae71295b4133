//! Master data logistics works from: packing specs per customer, product
//! data for documents, carrier lanes. Stored as validated by [`validate`];
//! read back into the domain types of [`packing`] and [`booking`].
//!
//! [`validate`]: crate::validate
//! [`packing`]: crate::packing
//! [`booking`]: crate::booking

use std::collections::BTreeMap;

use sqlx::PgConnection;

use crate::booking::{CostBasis, Lane, Mode};
use crate::packing::{Barcode, Spec};
use crate::{Error, Result};

/// A product's logistics data, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRecord {
    pub product: String,
    pub description: String,
    pub hs_code: String,
    pub unit_net_weight_kg: f64,
    pub country_of_origin: String,
}

/// Replaces the customer's spec and its product rules.
pub async fn upsert_spec(conn: &mut PgConnection, spec: &Spec) -> Result<()> {
    sqlx::query(
        "INSERT INTO packing_specs (customer, default_units_per_carton, marks_template, \
           barcode_type, max_gross_weight_kg, carton_tare_kg) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (customer) DO UPDATE SET \
           default_units_per_carton = EXCLUDED.default_units_per_carton, \
           marks_template = EXCLUDED.marks_template, barcode_type = EXCLUDED.barcode_type, \
           max_gross_weight_kg = EXCLUDED.max_gross_weight_kg, \
           carton_tare_kg = EXCLUDED.carton_tare_kg, updated_at = now()",
    )
    .bind(&spec.customer)
    .bind(i32::try_from(spec.default_units_per_carton).unwrap_or(i32::MAX))
    .bind(&spec.marks_template)
    .bind(spec.barcode.name())
    .bind(spec.max_gross_weight_kg)
    .bind(spec.carton_tare_kg)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM packing_spec_products WHERE customer = $1")
        .bind(&spec.customer)
        .execute(&mut *conn)
        .await?;
    for (product, units) in &spec.units_per_carton {
        sqlx::query(
            "INSERT INTO packing_spec_products (customer, product, units_per_carton) \
             VALUES ($1, $2, $3)",
        )
        .bind(&spec.customer)
        .bind(product)
        .bind(i32::try_from(*units).unwrap_or(i32::MAX))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

type SpecRow = (String, i32, String, String, f64, f64);

pub async fn spec(conn: &mut PgConnection, customer: &str) -> Result<Option<Spec>> {
    let row: Option<SpecRow> = sqlx::query_as(
        "SELECT customer, default_units_per_carton, marks_template, barcode_type, \
           max_gross_weight_kg, carton_tare_kg \
         FROM packing_specs WHERE customer = $1",
    )
    .bind(customer)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((customer, default_units, marks_template, barcode, max, tare)) = row else {
        return Ok(None);
    };
    let rules: Vec<(String, i32)> = sqlx::query_as(
        "SELECT product, units_per_carton FROM packing_spec_products \
         WHERE customer = $1 ORDER BY product",
    )
    .bind(&customer)
    .fetch_all(&mut *conn)
    .await?;
    let barcode = Barcode::parse(&barcode)
        .ok_or_else(|| Error::Corrupt(format!("barcode type {barcode:?} of {customer:?}")))?;
    Ok(Some(Spec {
        default_units_per_carton: u32::try_from(default_units).unwrap_or(1),
        units_per_carton: rules
            .into_iter()
            .map(|(product, units)| (product, u32::try_from(units).unwrap_or(1)))
            .collect(),
        customer,
        marks_template,
        barcode,
        max_gross_weight_kg: max,
        carton_tare_kg: tare,
    }))
}

/// The packing spec of an order's customer. Specs are keyed by the
/// customer master's id; orders made before the master (`customer_id`
/// empty) and specs entered by name are found by the name.
pub async fn spec_of_customer(
    conn: &mut PgConnection,
    customer_id: &str,
    customer: &str,
) -> Result<Option<Spec>> {
    if !customer_id.is_empty()
        && let Some(by_id) = spec(conn, customer_id).await?
    {
        return Ok(Some(by_id));
    }
    spec(conn, customer).await
}

pub async fn upsert_product(conn: &mut PgConnection, product: &ProductRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO products (product, description, hs_code, unit_net_weight_kg, country_of_origin) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (product) DO UPDATE SET description = EXCLUDED.description, \
           hs_code = EXCLUDED.hs_code, unit_net_weight_kg = EXCLUDED.unit_net_weight_kg, \
           country_of_origin = EXCLUDED.country_of_origin, updated_at = now()",
    )
    .bind(&product.product)
    .bind(&product.description)
    .bind(&product.hs_code)
    .bind(product.unit_net_weight_kg)
    .bind(&product.country_of_origin)
    .execute(conn)
    .await?;
    Ok(())
}

type ProductRow = (String, String, String, f64, String);

fn product_record((product, description, hs_code, weight, origin): ProductRow) -> ProductRecord {
    ProductRecord {
        product,
        description,
        hs_code,
        unit_net_weight_kg: weight,
        country_of_origin: origin,
    }
}

/// The known products among `products`, by product code.
pub async fn products(
    conn: &mut PgConnection,
    products: &[String],
) -> Result<BTreeMap<String, ProductRecord>> {
    let rows: Vec<ProductRow> = sqlx::query_as(
        "SELECT product, description, hs_code, unit_net_weight_kg, country_of_origin \
         FROM products WHERE product = ANY($1)",
    )
    .bind(products)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.0.clone(), product_record(row)))
        .collect())
}

pub async fn product(conn: &mut PgConnection, product: &str) -> Result<Option<ProductRecord>> {
    let mut found = products(conn, &[product.to_owned()]).await?;
    Ok(found.remove(product))
}

pub async fn upsert_lane(conn: &mut PgConnection, lane: &Lane) -> Result<()> {
    sqlx::query(
        "INSERT INTO carrier_lanes (code, carrier, mode, departure_weekday, transit_days, \
           cutoff_days, cost_basis, rate_minor, currency) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (code) DO UPDATE SET carrier = EXCLUDED.carrier, mode = EXCLUDED.mode, \
           departure_weekday = EXCLUDED.departure_weekday, transit_days = EXCLUDED.transit_days, \
           cutoff_days = EXCLUDED.cutoff_days, cost_basis = EXCLUDED.cost_basis, \
           rate_minor = EXCLUDED.rate_minor, currency = EXCLUDED.currency, updated_at = now()",
    )
    .bind(&lane.code)
    .bind(&lane.carrier)
    .bind(lane.mode.name())
    .bind(lane.departure_weekday as i32)
    .bind(lane.transit_days as i32)
    .bind(lane.cutoff_days as i32)
    .bind(lane.cost_basis.name())
    .bind(lane.rate_minor)
    .bind(&lane.currency)
    .execute(conn)
    .await?;
    Ok(())
}

type LaneRow = (String, String, String, i32, i32, i32, String, i64, String);

/// Every lane, by code.
pub async fn lanes(conn: &mut PgConnection) -> Result<Vec<Lane>> {
    let rows: Vec<LaneRow> = sqlx::query_as(
        "SELECT code, carrier, mode, departure_weekday, transit_days, cutoff_days, cost_basis, \
           rate_minor, currency FROM carrier_lanes ORDER BY code",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(
            |(code, carrier, mode, weekday, transit, cutoff, basis, rate_minor, currency)| {
                let corrupt = || Error::Corrupt(format!("carrier lane {code:?}"));
                Ok(Lane {
                    mode: Mode::parse(&mode).ok_or_else(corrupt)?,
                    cost_basis: CostBasis::parse(&basis).ok_or_else(corrupt)?,
                    departure_weekday: u32::try_from(weekday).map_err(|_| corrupt())?,
                    transit_days: u32::try_from(transit).map_err(|_| corrupt())?,
                    cutoff_days: u32::try_from(cutoff).map_err(|_| corrupt())?,
                    code,
                    carrier,
                    rate_minor,
                    currency,
                })
            },
        )
        .collect()
}
