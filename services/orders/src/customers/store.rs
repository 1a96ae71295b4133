//! SQL for the customer master: rows in, `gendan.v1.Customer` messages out.
//!
//! Like [`crate::store`], every function takes the executor it runs on, so
//! CreateOrder reads the customer in the transaction that stores the order.
//! Statements are static with binds. The name is unique regardless of case
//! through the index `customers_name_unique` on `lower(name)`, which also
//! serves the look-up by name; [`is_duplicate_name`] recognises its
//! violation so the caller can name the field.

use chrono::{DateTime, Utc};
use gendan_proto::timestamp_from;
use gendan_proto::v1::Customer;
use sqlx::{PgConnection, PgExecutor};

use super::validate::NewCustomer;

/// The unique index on `lower(name)` (migration 0106).
const NAME_INDEX: &str = "customers_name_unique";

/// The `customers` columns a [`CustomerRow`] reads; a macro so queries stay
/// `&'static str`.
macro_rules! customer_columns {
    () => {
        "customer_id, name, country, currency, payment_terms, incoterm, notice_webhook_url, \
         inspection_level, major_aql, final_inspection_failures, dunning_reminder_days, \
         credit_limit_minor, min_margin_bp, created_at, updated_at"
    };
}

#[derive(Debug, sqlx::FromRow)]
struct CustomerRow {
    customer_id: String,
    name: String,
    country: String,
    currency: String,
    payment_terms: String,
    incoterm: String,
    notice_webhook_url: String,
    inspection_level: i32,
    major_aql: Option<f64>,
    final_inspection_failures: i32,
    dunning_reminder_days: Vec<i32>,
    credit_limit_minor: i64,
    min_margin_bp: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl CustomerRow {
    fn into_customer(self) -> Customer {
        // The unsigned fields were written from u32 values the service
        // checked and the table's checks keep non-negative.
        let unsigned = |value: i32| u32::try_from(value).unwrap_or(0);
        Customer {
            customer_id: self.customer_id,
            name: self.name,
            country: self.country,
            currency: self.currency,
            payment_terms: self.payment_terms,
            incoterm: self.incoterm,
            notice_webhook_url: self.notice_webhook_url,
            inspection_level: self.inspection_level,
            major_aql: self.major_aql,
            final_inspection_failures: unsigned(self.final_inspection_failures),
            dunning_reminder_days: self
                .dunning_reminder_days
                .into_iter()
                .map(unsigned)
                .collect(),
            credit_limit_minor: self.credit_limit_minor,
            min_margin_bp: unsigned(self.min_margin_bp),
            created_at: Some(timestamp_from(self.created_at)),
            updated_at: Some(timestamp_from(self.updated_at)),
        }
    }
}

/// Creates the customer or replaces every field of the one with its id in
/// one statement, keeping `created_at`; returns it as stored. Fails with a
/// unique violation ([`is_duplicate_name`]) when another customer has the
/// name.
pub async fn upsert(
    conn: &mut PgConnection,
    customer: &NewCustomer,
    now: DateTime<Utc>,
) -> sqlx::Result<Customer> {
    // Bounded by validation (at most 10 000, 365, 10), so these fit.
    let signed = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
    let days: Vec<i32> = customer
        .dunning_reminder_days
        .iter()
        .copied()
        .map(signed)
        .collect();
    let row: CustomerRow = sqlx::query_as(concat!(
        "INSERT INTO customers (customer_id, name, country, currency, payment_terms, incoterm, \
             notice_webhook_url, inspection_level, major_aql, final_inspection_failures, \
             dunning_reminder_days, credit_limit_minor, min_margin_bp, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) \
         ON CONFLICT (customer_id) DO UPDATE SET \
             name = EXCLUDED.name, country = EXCLUDED.country, currency = EXCLUDED.currency, \
             payment_terms = EXCLUDED.payment_terms, incoterm = EXCLUDED.incoterm, \
             notice_webhook_url = EXCLUDED.notice_webhook_url, \
             inspection_level = EXCLUDED.inspection_level, major_aql = EXCLUDED.major_aql, \
             final_inspection_failures = EXCLUDED.final_inspection_failures, \
             dunning_reminder_days = EXCLUDED.dunning_reminder_days, \
             credit_limit_minor = EXCLUDED.credit_limit_minor, \
             min_margin_bp = EXCLUDED.min_margin_bp, updated_at = EXCLUDED.updated_at \
         RETURNING ",
        customer_columns!()
    ))
    .bind(&customer.customer_id)
    .bind(&customer.name)
    .bind(&customer.country)
    .bind(&customer.currency)
    .bind(&customer.payment_terms)
    .bind(&customer.incoterm)
    .bind(&customer.notice_webhook_url)
    .bind(customer.inspection_level)
    .bind(customer.major_aql)
    .bind(signed(customer.final_inspection_failures))
    .bind(&days)
    .bind(customer.credit_limit_minor)
    .bind(signed(customer.min_margin_bp))
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(row.into_customer())
}

/// Whether `err` is the violation of the one-name-per-customer index.
pub fn is_duplicate_name(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation() && db.constraint() == Some(NAME_INDEX))
}

/// The customer with this id.
pub async fn get(
    executor: impl PgExecutor<'_>,
    customer_id: &str,
) -> sqlx::Result<Option<Customer>> {
    let row: Option<CustomerRow> = sqlx::query_as(concat!(
        "SELECT ",
        customer_columns!(),
        " FROM customers WHERE customer_id = $1"
    ))
    .bind(customer_id)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(CustomerRow::into_customer))
}

/// The customer with this name, regardless of case (at most one: the
/// index makes names unique that way).
pub async fn by_name(executor: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Option<Customer>> {
    let row: Option<CustomerRow> = sqlx::query_as(concat!(
        "SELECT ",
        customer_columns!(),
        " FROM customers WHERE lower(name) = lower($1)"
    ))
    .bind(name)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(CustomerRow::into_customer))
}

/// Up to `limit` customers in id order after `after`, of those whose name
/// contains `name_contains` regardless of case (`None`: all).
pub async fn list(
    executor: impl PgExecutor<'_>,
    name_contains: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<Customer>> {
    // strpos rather than LIKE: the caller's text needs no escaping of % and _.
    let rows: Vec<CustomerRow> = sqlx::query_as(concat!(
        "SELECT ",
        customer_columns!(),
        " FROM customers \
         WHERE ($1::text IS NULL OR strpos(lower(name), lower($1)) > 0) \
           AND ($2::text IS NULL OR customer_id > $2) \
         ORDER BY customer_id \
         LIMIT $3"
    ))
    .bind(name_contains)
    .bind(after)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(CustomerRow::into_customer).collect())
}
