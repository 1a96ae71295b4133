//! The order's packing lists by revision (`packing_lists`, their cartons in
//! `packing_list_cartons`) and every check of what the warehouse packed
//! (`packing_checks`).
//!
//! An amended order gets a new list revision; [`insert`] marks the earlier
//! list [`LIST_SUPERSEDED`] and keeps it with its cartons and checks. The
//! order's packing list is its current revision, the highest: everything
//! that checks, weighs, books, documents or claims against the order reads
//! it through [`current`] or [`weighed_current`], never an earlier one.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{from_db, to_db};
use crate::booking::Load;
use crate::packing::{Barcode, Carton, Requirements, kg};
use crate::{Error, Result};

pub const LIST_PREPARED: &str = "prepared";
pub const LIST_CHECKED: &str = "checked";
pub const LIST_MISMATCH: &str = "mismatch";
/// An earlier revision, replaced by the list of the amended order.
pub const LIST_SUPERSEDED: &str = "superseded";

/// A stored packing list.
#[derive(Debug, Clone, PartialEq)]
pub struct PackingList {
    pub order_id: String,
    /// The PreparePacking revision it was built for (1 = the first).
    pub revision: u32,
    pub customer: String,
    pub requirements: Requirements,
    /// Empty carton weight, to weigh cartons whose product had no weight
    /// when the list was built.
    pub carton_tare_kg: f64,
    pub status: String,
    pub cartons: Vec<Carton>,
}

impl PackingList {
    pub fn total_net_kg(&self) -> f64 {
        kg(self.cartons.iter().map(|c| c.net_weight_kg).sum())
    }

    /// 0 when a carton's weight is unknown: a partial sum would underprice
    /// freight billed by weight (the rule of [`Load::of`]).
    pub fn total_gross_kg(&self) -> f64 {
        Load::of(&self.cartons).gross_weight_kg
    }
}

/// Stores `list` as the order's current packing list. Earlier revisions
/// become [`LIST_SUPERSEDED`], kept on record.
pub async fn insert(conn: &mut PgConnection, list: &PackingList) -> Result<()> {
    debug_assert!(list.revision >= 1, "list revisions start at 1");
    let revision = to_db(list.revision);
    sqlx::query(
        "UPDATE packing_lists SET status = $3 \
         WHERE order_id = $1 AND revision < $2 AND status <> $3",
    )
    .bind(&list.order_id)
    .bind(revision)
    .bind(LIST_SUPERSEDED)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO packing_lists (order_id, revision, customer, barcode_type, \
           max_gross_weight_kg, carton_tare_kg, status) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&list.order_id)
    .bind(revision)
    .bind(&list.customer)
    .bind(list.requirements.barcode.name())
    .bind(list.requirements.max_gross_weight_kg)
    .bind(list.carton_tare_kg)
    .bind(&list.status)
    .execute(&mut *conn)
    .await?;
    // Every carton in one statement: a list runs to dozens of cartons.
    let cartons = &list.cartons;
    sqlx::query(
        "INSERT INTO packing_list_cartons (order_id, revision, carton_number, product, \
           quantity, marks, net_weight_kg, gross_weight_kg) \
         SELECT $1, $2, * FROM UNNEST($3::int[], $4::text[], $5::int[], $6::text[], \
                                      $7::float8[], $8::float8[])",
    )
    .bind(&list.order_id)
    .bind(revision)
    .bind(
        cartons
            .iter()
            .map(|c| to_db(c.carton_number))
            .collect::<Vec<_>>(),
    )
    .bind(
        cartons
            .iter()
            .map(|c| c.product.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        cartons
            .iter()
            .map(|c| to_db(c.quantity))
            .collect::<Vec<_>>(),
    )
    .bind(cartons.iter().map(|c| c.marks.as_str()).collect::<Vec<_>>())
    .bind(cartons.iter().map(|c| c.net_weight_kg).collect::<Vec<_>>())
    .bind(
        cartons
            .iter()
            .map(|c| c.gross_weight_kg)
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

type ListRow = (i32, String, String, f64, f64, String);

/// The order's current packing list (its highest revision).
pub async fn current(conn: &mut PgConnection, order_id: &str) -> Result<Option<PackingList>> {
    latest_below(conn, order_id, i32::MAX).await
}

/// The order's packing list of `revision`, current or superseded.
pub async fn by_revision(
    conn: &mut PgConnection,
    order_id: &str,
    revision: u32,
) -> Result<Option<PackingList>> {
    let list = latest_below(conn, order_id, to_db(revision).saturating_add(1)).await?;
    Ok(list.filter(|list| list.revision == revision))
}

/// The list the current one (`revision`) superseded, if any.
pub async fn superseded_by(
    conn: &mut PgConnection,
    order_id: &str,
    revision: u32,
) -> Result<Option<PackingList>> {
    latest_below(conn, order_id, to_db(revision)).await
}

/// The order's highest packing list revision below `below`.
async fn latest_below(
    conn: &mut PgConnection,
    order_id: &str,
    below: i32,
) -> Result<Option<PackingList>> {
    let row: Option<ListRow> = sqlx::query_as(
        "SELECT revision, customer, barcode_type, max_gross_weight_kg, carton_tare_kg, status \
         FROM packing_lists WHERE order_id = $1 AND revision < $2 ORDER BY revision DESC LIMIT 1",
    )
    .bind(order_id)
    .bind(below)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((revision, customer, barcode, max_gross_weight_kg, carton_tare_kg, status)) = row
    else {
        return Ok(None);
    };
    let barcode = Barcode::parse(&barcode).ok_or_else(|| {
        Error::Corrupt(format!(
            "barcode type {barcode:?} of packing list {order_id} revision {revision}"
        ))
    })?;
    let rows: Vec<(i32, String, i32, String, f64, f64)> = sqlx::query_as(
        "SELECT carton_number, product, quantity, marks, net_weight_kg, gross_weight_kg \
         FROM packing_list_cartons WHERE order_id = $1 AND revision = $2 \
         ORDER BY carton_number",
    )
    .bind(order_id)
    .bind(revision)
    .fetch_all(&mut *conn)
    .await?;
    let cartons = rows
        .into_iter()
        .map(|(number, product, quantity, marks, net, gross)| Carton {
            carton_number: from_db(number),
            product,
            quantity: from_db(quantity),
            marks,
            net_weight_kg: net,
            gross_weight_kg: gross,
        })
        .collect();
    Ok(Some(PackingList {
        order_id: order_id.to_owned(),
        revision: from_db(revision),
        customer,
        requirements: Requirements {
            barcode,
            max_gross_weight_kg,
        },
        carton_tare_kg,
        status,
        cartons,
    }))
}

/// The current packing list with the weights of cartons whose product had
/// no weight when it was built filled in from `unit_net_kg`, stored too.
/// The cartons themselves do not change; documents and freight by weight
/// need the weights, and without this a late product entry would block
/// the order for good.
pub async fn weighed_current(
    conn: &mut PgConnection,
    order_id: &str,
    unit_net_kg: &HashMap<String, f64>,
) -> Result<Option<PackingList>> {
    let Some(mut list) = current(conn, order_id).await? else {
        return Ok(None);
    };
    let mut weighed = Vec::new();
    for carton in &mut list.cartons {
        if carton.net_weight_kg > 0.0 {
            continue;
        }
        let Some(unit) = unit_net_kg.get(&carton.product) else {
            continue;
        };
        carton.net_weight_kg = kg(f64::from(carton.quantity) * unit);
        carton.gross_weight_kg = kg(carton.net_weight_kg + list.carton_tare_kg);
        weighed.push((
            to_db(carton.carton_number),
            carton.net_weight_kg,
            carton.gross_weight_kg,
        ));
    }
    if !weighed.is_empty() {
        sqlx::query(
            "UPDATE packing_list_cartons c SET net_weight_kg = w.net, gross_weight_kg = w.gross \
             FROM UNNEST($3::int[], $4::float8[], $5::float8[]) AS w(carton_number, net, gross) \
             WHERE c.order_id = $1 AND c.revision = $2 AND c.carton_number = w.carton_number",
        )
        .bind(order_id)
        .bind(to_db(list.revision))
        .bind(weighed.iter().map(|w| w.0).collect::<Vec<_>>())
        .bind(weighed.iter().map(|w| w.1).collect::<Vec<_>>())
        .bind(weighed.iter().map(|w| w.2).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(list))
}

/// One check of a WMS packed report.
#[derive(Debug, Clone, PartialEq)]
pub struct PackingCheck {
    pub matches: bool,
    pub mismatches: Vec<String>,
    pub checked_at: DateTime<Utc>,
}

/// The latest check of a list revision.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestCheck {
    /// 1 for the list's first check, 2, …
    pub number: u32,
    pub check: PackingCheck,
    /// Whether it checked the same cartons as the report asked about.
    pub same_report: bool,
}

/// Records a check of list `revision` and moves that list to `checked` or
/// `mismatch`. Returns the check's number among the list's checks.
pub async fn record_check(
    conn: &mut PgConnection,
    order_id: &str,
    revision: u32,
    check: &PackingCheck,
    packed_json: &str,
) -> Result<u32> {
    sqlx::query(
        "INSERT INTO packing_checks (order_id, revision, matches, mismatches, packed, checked_at) \
         VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
    )
    .bind(order_id)
    .bind(to_db(revision))
    .bind(check.matches)
    .bind(&check.mismatches)
    .bind(packed_json)
    .bind(check.checked_at)
    .execute(&mut *conn)
    .await?;
    // A superseded list keeps its status: what was packed to it is on
    // record, and the list stays out of the way of the current one.
    sqlx::query(
        "UPDATE packing_lists SET status = $3 \
         WHERE order_id = $1 AND revision = $2 AND status <> $4",
    )
    .bind(order_id)
    .bind(to_db(revision))
    .bind(if check.matches {
        LIST_CHECKED
    } else {
        LIST_MISMATCH
    })
    .bind(LIST_SUPERSEDED)
    .execute(&mut *conn)
    .await?;
    let number: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM packing_checks WHERE order_id = $1 AND revision = $2",
    )
    .bind(order_id)
    .bind(to_db(revision))
    .fetch_one(conn)
    .await?;
    Ok(u32::try_from(number).unwrap_or(u32::MAX))
}

/// The latest check's row: matches, mismatches, when, whether it saw the
/// same packing, and how many checks the list has had.
type CheckRow = (bool, Vec<String>, DateTime<Utc>, bool, i64);

/// The latest check of list `revision`, and whether it checked the report
/// `packed_json` (compared as JSON, the way it is stored).
pub async fn latest_check(
    conn: &mut PgConnection,
    order_id: &str,
    revision: u32,
    packed_json: &str,
) -> Result<Option<LatestCheck>> {
    let row: Option<CheckRow> = sqlx::query_as(
        "SELECT c.matches, c.mismatches, c.checked_at, c.packed = $3::jsonb, \
           (SELECT count(*) FROM packing_checks n WHERE n.order_id = $1 AND n.revision = $2) \
         FROM packing_checks c WHERE c.order_id = $1 AND c.revision = $2 \
         ORDER BY c.id DESC LIMIT 1",
    )
    .bind(order_id)
    .bind(to_db(revision))
    .bind(packed_json)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(
        |(matches, mismatches, checked_at, same_report, number)| LatestCheck {
            number: u32::try_from(number).unwrap_or(u32::MAX),
            check: PackingCheck {
                matches,
                mismatches,
                checked_at,
            },
            same_report,
        },
    ))
}

/// Every check of list `revision`, oldest first.
pub async fn checks(
    conn: &mut PgConnection,
    order_id: &str,
    revision: u32,
) -> Result<Vec<PackingCheck>> {
    let rows: Vec<(bool, Vec<String>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT matches, mismatches, checked_at FROM packing_checks \
         WHERE order_id = $1 AND revision = $2 ORDER BY id",
    )
    .bind(order_id)
    .bind(to_db(revision))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(matches, mismatches, checked_at)| PackingCheck {
            matches,
            mismatches,
            checked_at,
        })
        .collect())
}
