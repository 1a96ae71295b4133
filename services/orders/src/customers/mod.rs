//! The customer master: who an order is for, the defaults an order takes,
//! and the rules the departments apply to the customer's orders.
//!
//! The contract:
//! - [`upsert`] (UpsertCustomer) checks every field ([`validate`]) and
//!   creates the customer or replaces all of its fields in one statement,
//!   keeping `created_at` ([`store`] holds the SQL). A name another
//!   customer has, compared regardless of case, is refused as an invalid
//!   `name`; nothing is written on any refusal. Nothing is announced: the
//!   master is read by CreateOrder, and the departments see a customer's
//!   rules only through the copy on each order.
//! - [`get`] (GetCustomer) returns one customer, `NotFound` for an unknown
//!   id; [`list`] (ListCustomers) pages through them in id order, with a
//!   keyset token ([`crate::paging`]), optionally only names containing a
//!   text.
//! - [`resolve`] is CreateOrder's look-up, inside its transaction: the
//!   `customer_id` it names, else its `customer` text as an id, then as a
//!   name regardless of case. A miss is an invalid `customer_id` or
//!   `customer` pointing the caller at ListCustomers, so the order is not
//!   stored. [`rules`] is the copy of the customer's rules the order keeps
//!   (`Order.customer_rules`): a later upsert changes the master, never an
//!   order already made.
//! - The notice webhook ([`crate::webhook`]) posts a customer's notices to
//!   its `notice_webhook_url` when it has one.

pub mod store;
pub mod validate;

use chrono::{SubsecRound, Utc};
use gendan_grpc::FieldError;
use gendan_proto::v1::{Customer, CustomerRules, ListCustomersRequest, ListCustomersResponse};
use sqlx::{PgConnection, PgPool};

use crate::api::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::validate::CustomerRef;
use crate::{Error, Result, paging};

/// Creates or replaces the customer `request` describes and returns it as
/// stored.
pub async fn upsert(pool: &PgPool, request: &Customer) -> Result<Customer> {
    let customer = validate::customer(request)?;
    // PostgreSQL keeps microseconds; what we return must equal what
    // GetCustomer reads back.
    let now = Utc::now().trunc_subsecs(6);
    let mut conn = pool.acquire().await?;
    match store::upsert(&mut conn, &customer, now).await {
        Ok(stored) => {
            tracing::debug!(customer_id = %stored.customer_id, "customer upserted");
            Ok(stored)
        }
        Err(err) if store::is_duplicate_name(&err) => {
            let problem = format!(
                "{:?} is the name of another customer (names are compared regardless of case; \
                 see ListCustomers)",
                customer.name
            );
            Err(FieldError::new("name", problem).into())
        }
        Err(err) => Err(err.into()),
    }
}

/// The customer with this id.
pub async fn get(pool: &PgPool, customer_id: &str) -> Result<Customer> {
    let customer_id = validate::customer_id("customer_id", customer_id)?;
    let stored = store::get(pool, &customer_id).await?;
    stored.ok_or(Error::CustomerNotFound(customer_id))
}

/// A page of customers in id order.
pub async fn list(pool: &PgPool, request: &ListCustomersRequest) -> Result<ListCustomersResponse> {
    let name_contains = validate::name_filter(&request.name_contains)?;
    let after = paging::decode_customer(&request.page_token)?;
    let page_size = match request.page_size {
        0 => DEFAULT_PAGE_SIZE,
        size => size.min(MAX_PAGE_SIZE),
    };
    // One extra row tells whether another page follows.
    let mut customers = store::list(
        pool,
        name_contains.as_deref(),
        after.as_deref(),
        i64::from(page_size) + 1,
    )
    .await?;
    let more = customers.len() > page_size as usize;
    customers.truncate(page_size as usize);
    let next_page_token = match customers.last() {
        Some(last) if more => paging::encode_customer(&last.customer_id),
        _ => String::new(),
    };
    Ok(ListCustomersResponse {
        customers,
        next_page_token,
    })
}

/// The customer a CreateOrder request names (see the module documentation);
/// runs on the create transaction. The read takes no lock: an upsert that
/// commits meanwhile is simply later than this order, which keeps the rules
/// it was created with.
pub async fn resolve(conn: &mut PgConnection, reference: &CustomerRef) -> Result<Customer> {
    let unknown = |field: &str, what: &str| -> Error {
        FieldError::new(field, format!("no customer {what:?} (see ListCustomers)")).into()
    };
    match reference {
        CustomerRef::Id(customer_id) => {
            let found = store::get(&mut *conn, customer_id).await?;
            found.ok_or_else(|| unknown("customer_id", customer_id.as_str()))
        }
        CustomerRef::IdOrName(text) => {
            if let Some(customer) = store::get(&mut *conn, text).await? {
                return Ok(customer);
            }
            let found = store::by_name(&mut *conn, text).await?;
            found.ok_or_else(|| unknown("customer", text.as_str()))
        }
    }
}

/// The customer's rules as an order keeps them.
pub fn rules(customer: &Customer) -> CustomerRules {
    CustomerRules {
        inspection_level: customer.inspection_level,
        major_aql: customer.major_aql,
        final_inspection_failures: customer.final_inspection_failures,
        dunning_reminder_days: customer.dunning_reminder_days.clone(),
        credit_limit_minor: customer.credit_limit_minor,
        min_margin_bp: customer.min_margin_bp,
    }
}
