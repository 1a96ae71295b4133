//! What `gendan orders show` tells about an order besides its own record:
//! its customer's defaults and rules from the customer master (GetCustomer
//! by the order's `customer_id`) and its cost plan, the review's estimate
//! (finance's GetCostEstimate): plan per category, cost, margin against the
//! customer's floor.
//!
//! Neither is needed to follow the order, so neither fails the command: an
//! order made before the customer master, a customer removed since, an
//! order not reviewed yet ("no estimate yet") or finance out of reach each
//! become a note where the figures would be.

use gendan_proto::v1;
use serde_json::{Value, json};
use tonic::Code;

use crate::claims_cli::OrdersClient;
use crate::cli::{channel, money, print_table, write_line};
use crate::costs_cli::{
    FinanceClient, estimate_json, floor_text, margin_text, plan_rows, print_lines,
};
use crate::customers_cli::{customer_json, defaults_lines};
use crate::retry::rpc;
use crate::stack::Addrs;

/// A record (boxed: a customer is large beside a note), or a note saying
/// why there is none.
#[derive(Debug)]
enum Found<T> {
    Record(Box<T>),
    Note(String),
}

/// The order's customer and cost plan, as far as they could be read.
#[derive(Debug)]
pub struct Details {
    customer_id: String,
    customer: Found<v1::Customer>,
    estimate: Found<v1::CostEstimate>,
}

/// Reads the customer of `order` and its estimate.
pub async fn fetch(orders: &OrdersClient, addrs: &Addrs, order: &v1::Order) -> Details {
    let customer = if order.customer_id.is_empty() {
        Found::Note("not in the customer master (the order is older than it)".to_owned())
    } else {
        let request = v1::GetCustomerRequest {
            customer_id: order.customer_id.clone(),
        };
        match rpc!(orders, get_customer, request) {
            Ok(customer) => Found::Record(Box::new(customer)),
            Err(status) if status.code() == Code::NotFound => Found::Note(format!(
                "{} is not in the customer master",
                order.customer_id
            )),
            Err(status) => Found::Note(format!("cannot be read: {}", status.message())),
        }
    };
    let estimate = match channel(addrs, "finance").await {
        Err(err) => Found::Note(format!("cannot be read: {err:#}")),
        Ok(channel) => {
            let finance = FinanceClient::new(channel);
            let request = v1::GetCostEstimateRequest {
                order_id: order.order_id.clone(),
            };
            match rpc!(finance, get_cost_estimate, request) {
                Ok(estimate) => Found::Record(Box::new(estimate)),
                // The review has not estimated the order (or it predates
                // estimates): nothing is wrong.
                Err(status) if status.code() == Code::NotFound => {
                    Found::Note("no estimate yet".to_owned())
                }
                Err(status) => Found::Note(format!("cannot be read: {}", status.message())),
            }
        }
    };
    Details {
        customer_id: order.customer_id.clone(),
        customer,
        estimate,
    }
}

impl Details {
    /// The customer record (the shape `gendan customers show` prints), or
    /// `{"note": …}`.
    pub fn customer_json(&self) -> Value {
        match &self.customer {
            Found::Record(customer) => customer_json(customer),
            Found::Note(note) => json!({ "customer_id": self.customer_id, "note": note }),
        }
    }

    /// The estimate (the shape `gendan finance estimate` prints), or
    /// `{"note": …}`.
    pub fn cost_plan_json(&self) -> Value {
        match &self.estimate {
            Found::Record(estimate) => estimate_json(estimate),
            Found::Note(note) => json!({ "note": note }),
        }
    }

    /// Both, as a person reads them.
    pub fn print(&self) {
        write_line(format_args!(""));
        match &self.customer {
            Found::Record(customer) => {
                write_line(format_args!(
                    "customer {} ({}), the defaults and rules of its orders:",
                    customer.customer_id, customer.name
                ));
                print_lines(&defaults_lines(customer));
            }
            Found::Note(note) => write_line(format_args!("customer: {note}")),
        }
        write_line(format_args!(""));
        match &self.estimate {
            Found::Record(estimate) => {
                write_line(format_args!(
                    "cost plan (the review's estimate, revision {}, made on {}):",
                    estimate.revision, estimate.estimated_on
                ));
                print_table(&["category", "plan", "share"], plan_rows(estimate));
                let mut lines = vec![
                    ("revenue", money(estimate.revenue_minor, &estimate.currency)),
                    ("cost", money(estimate.cost_minor, &estimate.currency)),
                    ("margin", margin_text(estimate)),
                    ("margin floor", floor_text(estimate.min_margin_bp)),
                ];
                if !estimate.below_margin.is_empty() {
                    lines.push(("below margin", estimate.below_margin.clone()));
                }
                print_lines(&lines);
            }
            Found::Note(note) => write_line(format_args!("cost plan: {note}")),
        }
    }
}
