//! `gendan customers`: the customer master of the orders service — who
//! orders are for, the currency, terms and incoterm an order takes when it
//! leaves them out, and the customer's rules (inspection level and AQL,
//! failed inspections before a person decides, dunning days, credit limit,
//! margin floor). `list` and `show` read it (ListCustomers, GetCustomer);
//! `upsert` creates or replaces one customer from a JSON file with the
//! fields of `Customer` (UpsertCustomer), as `gendan orders create` reads
//! an order file. Calls are retried on transient failures ([`rpc`]); the
//! output is a table, or JSON with `--output json`, whose `show` output can
//! be edited and loaded again with `upsert`. `gendan orders show` prints
//! an order's customer with [`defaults_lines`].

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use gendan_proto::v1::{self, InspectionLevel};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::{
    Output, channel, dash, money, print_json, print_pairs, print_table, status_error,
};
use crate::costs_cli::floor_text;
use crate::retry::rpc;
use crate::stack::Addrs;

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Every customer by id, with its defaults and rules.
    List {
        /// Only customers whose name contains this (regardless of case).
        #[arg(long)]
        name: Option<String>,
    },
    /// One customer with every field.
    Show { customer_id: String },
    /// Create or replace a customer from a JSON file (see docs/cli.md).
    Upsert { file: PathBuf },
}

/// A customer file: JSON with the fields of `Customer`. Rules left out are
/// "none" or "the default" as in the proto.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerFile {
    customer_id: String,
    name: String,
    country: String,
    currency: String,
    payment_terms: String,
    incoterm: String,
    #[serde(default)]
    notice_webhook_url: String,
    /// `general_i`, `general_ii` or `general_iii`; left out: general II.
    #[serde(default)]
    inspection_level: Option<String>,
    #[serde(default)]
    major_aql: Option<f64>,
    #[serde(default)]
    final_inspection_failures: u32,
    #[serde(default)]
    dunning_reminder_days: Vec<u32>,
    #[serde(default)]
    credit_limit_minor: i64,
    #[serde(default)]
    min_margin_bp: u32,
    // Output-only fields of `show --output json`: accepted and ignored, so
    // that output can be edited and loaded again.
    #[serde(default, rename = "created_at")]
    _created_at: Option<Value>,
    #[serde(default, rename = "updated_at")]
    _updated_at: Option<Value>,
}

impl CustomerFile {
    fn into_customer(self) -> anyhow::Result<v1::Customer> {
        let inspection_level = match self.inspection_level.as_deref() {
            None => 0,
            Some(name) => level_of(name)?,
        };
        Ok(v1::Customer {
            customer_id: self.customer_id,
            name: self.name,
            country: self.country,
            currency: self.currency,
            payment_terms: self.payment_terms,
            incoterm: self.incoterm,
            notice_webhook_url: self.notice_webhook_url,
            inspection_level,
            major_aql: self.major_aql,
            final_inspection_failures: self.final_inspection_failures,
            dunning_reminder_days: self.dunning_reminder_days,
            credit_limit_minor: self.credit_limit_minor,
            min_margin_bp: self.min_margin_bp,
            created_at: None,
            updated_at: None,
        })
    }
}

/// `general_iii` (or `INSPECTION_LEVEL_GENERAL_III`) → its number.
fn level_of(name: &str) -> anyhow::Result<i32> {
    InspectionLevel::from_short_name(name)
        .or_else(|| InspectionLevel::from_str_name(name.trim()))
        .map(|level| level as i32)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "unknown inspection level {name:?}; one of general_i, general_ii, general_iii"
            )
        })
}

/// `general_iii`; level 0 is general II by default.
fn level_name(level: i32) -> String {
    match InspectionLevel::try_from(level) {
        Ok(_) if level == 0 => "general_ii (default)".to_owned(),
        Ok(known) => known.short_name(),
        Err(_) => format!("level {level}"),
    }
}

fn when(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(gendan_proto::timestamp_to)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn aql_text(customer: &v1::Customer) -> String {
    customer
        .major_aql
        .map(|aql| aql.to_string())
        .unwrap_or_else(|| "product plan".to_owned())
}

fn failures_text(customer: &v1::Customer) -> String {
    match customer.final_inspection_failures {
        0 => "default".to_owned(),
        n => n.to_string(),
    }
}

fn credit_text(customer: &v1::Customer) -> String {
    match customer.credit_limit_minor {
        0 => "none".to_owned(),
        limit => money(limit, &customer.currency),
    }
}

fn days_text(customer: &v1::Customer) -> String {
    let days: Vec<String> = customer
        .dunning_reminder_days
        .iter()
        .map(u32::to_string)
        .collect();
    if days.is_empty() {
        "finance's schedule".to_owned()
    } else {
        days.join(", ")
    }
}

/// The defaults and rules an order takes from its customer, as a person
/// reads them, in the order the customer's file lists them.
pub(crate) fn defaults_lines(customer: &v1::Customer) -> Vec<(&'static str, String)> {
    vec![
        ("currency", customer.currency.clone()),
        ("payment terms", dash(&customer.payment_terms)),
        ("incoterm", customer.incoterm.clone()),
        ("inspection level", level_name(customer.inspection_level)),
        ("major AQL", aql_text(customer)),
        ("failures allowed", failures_text(customer)),
        ("dunning days", days_text(customer)),
        ("credit limit", credit_text(customer)),
        ("margin floor", floor_text(customer.min_margin_bp)),
    ]
}

/// Every field, as data: the shape `upsert` reads back.
pub(crate) fn customer_json(customer: &v1::Customer) -> Value {
    // Left out (null) for level 0, so a file read back keeps the default.
    let level = match customer.inspection_level {
        0 => Value::Null,
        level => Value::String(level_name(level)),
    };
    json!({
        "customer_id": customer.customer_id,
        "name": customer.name,
        "country": customer.country,
        "currency": customer.currency,
        "payment_terms": customer.payment_terms,
        "incoterm": customer.incoterm,
        "notice_webhook_url": customer.notice_webhook_url,
        "inspection_level": level,
        "major_aql": customer.major_aql,
        "final_inspection_failures": customer.final_inspection_failures,
        "dunning_reminder_days": customer.dunning_reminder_days,
        "credit_limit_minor": customer.credit_limit_minor,
        "min_margin_bp": customer.min_margin_bp,
        "created_at": when(customer.created_at.as_ref()),
        "updated_at": when(customer.updated_at.as_ref()),
    })
}

/// Every field, as a person reads it.
fn customer_pairs(customer: &v1::Customer) -> Value {
    let webhook = if customer.notice_webhook_url.is_empty() {
        "the deployment's".to_owned()
    } else {
        customer.notice_webhook_url.clone()
    };
    json!({
        "customer_id": customer.customer_id,
        "name": customer.name,
        "country": customer.country,
        "currency": customer.currency,
        "payment_terms": customer.payment_terms,
        "incoterm": customer.incoterm,
        "notice_webhook_url": webhook,
        "inspection_level": level_name(customer.inspection_level),
        "major_aql": aql_text(customer),
        "final_inspection_failures": failures_text(customer),
        "dunning_reminder_days": days_text(customer),
        "credit_limit": credit_text(customer),
        "min_margin": floor_text(customer.min_margin_bp),
        "created_at": when(customer.created_at.as_ref()),
        "updated_at": when(customer.updated_at.as_ref()),
    })
}

pub async fn customers(command: CustomersCommand, output: Output) -> anyhow::Result<()> {
    let addrs = Addrs::from_env();
    let orders =
        v1::order_service_client::OrderServiceClient::new(channel(&addrs, "orders").await?);
    match command {
        CustomersCommand::List { name } => {
            let mut listed = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = rpc!(
                    orders,
                    list_customers,
                    v1::ListCustomersRequest {
                        name_contains: name.clone().unwrap_or_default(),
                        page_size: 500,
                        page_token: page_token.clone(),
                    }
                )
                .map_err(status_error)?;
                listed.extend(page.customers);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            match output {
                Output::Json => {
                    print_json(&Value::Array(listed.iter().map(customer_json).collect()))
                }
                Output::Table => print_table(
                    &[
                        "customer",
                        "name",
                        "country",
                        "currency",
                        "terms",
                        "incoterm",
                        "inspection",
                        "AQL",
                        "failures",
                        "credit limit",
                        "margin floor",
                    ],
                    listed
                        .iter()
                        .map(|c| {
                            vec![
                                c.customer_id.clone(),
                                c.name.clone(),
                                c.country.clone(),
                                c.currency.clone(),
                                dash(&c.payment_terms),
                                c.incoterm.clone(),
                                level_name(c.inspection_level),
                                aql_text(c),
                                failures_text(c),
                                credit_text(c),
                                floor_text(c.min_margin_bp),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        CustomersCommand::Show { customer_id } => {
            let customer = rpc!(orders, get_customer, v1::GetCustomerRequest { customer_id })
                .map_err(status_error)?;
            match output {
                Output::Json => print_json(&customer_json(&customer)),
                Output::Table => print_pairs(&customer_pairs(&customer)),
            }
        }
        CustomersCommand::Upsert { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let parsed: CustomerFile = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid customer file", file.display()))?;
            let request = parsed.into_customer()?;
            let stored = rpc!(orders, upsert_customer, request).map_err(status_error)?;
            match output {
                Output::Json => print_json(&customer_json(&stored)),
                Output::Table => crate::cli::write_line(format_args!(
                    "customer {} ({}) saved",
                    stored.customer_id, stored.name
                )),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_file_becomes_the_request_and_show_output_reads_back() {
        let file: CustomerFile = serde_json::from_str(
            r#"{"customer_id": "NORDWIND", "name": "Nordwind GmbH", "country": "DE",
                "currency": "USD", "payment_terms": "NET30", "incoterm": "FOB",
                "inspection_level": "general_iii", "major_aql": 1.5,
                "dunning_reminder_days": [3, 10]}"#,
        )
        .unwrap();
        let customer = file.into_customer().unwrap();
        assert_eq!(customer.inspection_level, 3);
        assert_eq!(customer.major_aql, Some(1.5));
        assert_eq!(customer.credit_limit_minor, 0);

        let shown = customer_json(&customer);
        let again: CustomerFile = serde_json::from_value(shown).unwrap();
        let again = again.into_customer().unwrap();
        assert_eq!(again, customer);

        assert!(level_of("general_iv").is_err());
        assert_eq!(level_of("INSPECTION_LEVEL_GENERAL_I").unwrap(), 1);
        assert_eq!(level_name(0), "general_ii (default)");
        assert!(
            serde_json::from_str::<CustomerFile>(r#"{"customer_id": "X", "nmae": "typo"}"#)
                .is_err()
        );
    }
}
