//! `/`: every order with its customer, phase, next milestone, promised and
//! projected dates, slip, risk, open exceptions and open decisions, from
//! `OrderService.ListOrders` (filtered and sorted by the orders service)
//! and `SagaService.ListDecisions` (counted per order here). The filters
//! are a GET form, so a filtered list is a link; "Next page" keeps them.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gendan_proto::v1;
use tonic::{Code, Request};

use crate::forms::{OrdersFilter, OrdersQuery};
use crate::routes::{AppState, html, wants_fragment};
use crate::view::{self, Choice, Section};
use crate::{Error, Result};

/// Orders per page.
pub const PAGE_SIZE: u32 = 50;
/// Open decisions read to count them per order.
const DECISIONS_LIMIT: u32 = 1000;

/// One order's line.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub order_id: String,
    pub href: String,
    pub customer: String,
    pub phase: String,
    pub workflow: String,
    pub next_milestone: String,
    pub next_milestone_date: String,
    pub promised: String,
    pub projected: String,
    pub slip: String,
    pub slipped: bool,
    pub at_risk: bool,
    pub exceptions: Vec<String>,
    /// Open decisions: "" for none, "?" when the saga could not say.
    pub decisions: String,
}

/// The live region: the table and the paging links.
#[derive(Debug, Clone)]
pub struct OrdersView {
    pub events_url: String,
    pub orders: Section<Vec<OrderRow>>,
    /// Why the decisions column is unknown ("" when it is known).
    pub decisions_note: String,
    pub next_href: String,
    pub first_href: String,
}

/// The filter form as the request set it.
#[derive(Debug, Clone)]
pub struct FiltersView {
    pub phases: Vec<Choice>,
    pub customer: String,
    pub at_risk: bool,
    pub exception_open: bool,
    pub sorts: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    title: &'static str,
    section: &'static str,
    filters: FiltersView,
    live: OrdersView,
}

#[derive(Template)]
#[template(path = "orders_live.html")]
struct OrdersLive<'a> {
    live: &'a OrdersView,
}

#[tracing::instrument(skip_all, err)]
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<OrdersQuery>,
) -> Result<Response> {
    let filter = query.validate()?;
    let live = live_view(&state, &filter).await?;
    if wants_fragment(&headers) {
        return html(&OrdersLive { live: &live });
    }
    html(&OrdersPage {
        title: "Orders",
        section: "orders",
        filters: filters_view(&filter),
        live,
    })
}

async fn live_view(state: &AppState, filter: &OrdersFilter) -> Result<OrdersView> {
    let mut orders = state.clients.orders.clone();
    let mut saga = state.clients.saga.clone();
    let listing = v1::ListOrdersRequest {
        phase: filter.phase as i32,
        customer: filter.customer.clone(),
        at_risk_only: filter.at_risk,
        page_size: PAGE_SIZE,
        page_token: filter.page_token.clone(),
        exception_open_only: filter.exception_open,
        sort: filter.sort as i32,
    };
    let open_decisions = v1::ListDecisionsRequest {
        order_id: String::new(),
        open_only: true,
        limit: DECISIONS_LIMIT,
    };
    let (listed, decisions) = tokio::join!(
        Box::pin(orders.list_orders(Request::new(listing))),
        Box::pin(saga.list_decisions(Request::new(open_decisions))),
    );
    let (per_order, decisions_note) = match decisions {
        Ok(answer) => (
            Some(count_per_order(&answer.into_inner().decisions)),
            String::new(),
        ),
        Err(status) => (None, view::unavailable("saga", &status)),
    };
    let first_href = if filter.page_token.is_empty() {
        String::new()
    } else {
        link(filter, "")
    };
    let listed = match listed {
        Ok(answer) => answer.into_inner(),
        // A filter the service refuses (a stale page token) is the
        // request's fault: say so instead of an empty list.
        Err(status) if status.code() == Code::InvalidArgument => {
            return Err(Error::upstream("orders", status));
        }
        Err(status) => {
            return Ok(OrdersView {
                events_url: "/events".to_owned(),
                orders: Section::unavailable("orders", &status),
                decisions_note,
                next_href: String::new(),
                first_href,
            });
        }
    };
    let rows = listed
        .orders
        .iter()
        .map(|order| {
            let decisions = per_order
                .as_ref()
                .map(|counts| counts.get(order.order_id.as_str()).copied().unwrap_or(0));
            row(order, decisions)
        })
        .collect();
    let next_href = if listed.next_page_token.is_empty() {
        String::new()
    } else {
        link(filter, &listed.next_page_token)
    };
    Ok(OrdersView {
        events_url: "/events".to_owned(),
        orders: Section::ready(rows),
        decisions_note,
        next_href,
        first_href,
    })
}

fn count_per_order(decisions: &[v1::Decision]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for decision in decisions {
        *counts.entry(decision.order_id.clone()).or_insert(0) += 1;
    }
    counts
}

/// The list with `filter` at `page_token`.
fn link(filter: &OrdersFilter, page_token: &str) -> String {
    let query = filter.query(page_token);
    if query.is_empty() {
        "/".to_owned()
    } else {
        format!("/?{query}")
    }
}

fn row(order: &v1::Order, decisions: Option<usize>) -> OrderRow {
    let known_projection = !order.projected_delivery_date.is_empty();
    OrderRow {
        order_id: order.order_id.clone(),
        href: view::order_href(&order.order_id),
        customer: order.customer.clone(),
        phase: view::phase(order.phase),
        workflow: order.workflow_status.clone(),
        next_milestone: order.next_milestone.clone(),
        next_milestone_date: order.next_milestone_date.clone(),
        promised: view::date(&order.promised_delivery_date),
        projected: view::date(&order.projected_delivery_date),
        slip: if known_projection {
            view::days(order.slip_days)
        } else {
            view::date("")
        },
        slipped: order.slip_days > 0,
        at_risk: order.at_risk,
        exceptions: order
            .open_exceptions
            .iter()
            .map(|kind| view::words(kind.as_str()))
            .collect(),
        decisions: match decisions {
            None => "?".to_owned(),
            Some(0) => String::new(),
            Some(open) => open.to_string(),
        },
    }
}

fn filters_view(filter: &OrdersFilter) -> FiltersView {
    let phases = view::phases()
        .map(|phase| Choice {
            value: phase.short_name().to_owned(),
            label: view::phase(phase as i32),
            selected: phase == filter.phase,
        })
        .collect();
    let slip_first = filter.sort == v1::OrderSort::Slip;
    FiltersView {
        phases,
        customer: filter.customer.clone(),
        at_risk: filter.at_risk,
        exception_open: filter.exception_open,
        sorts: vec![
            Choice {
                value: "newest".to_owned(),
                label: "Newest first".to_owned(),
                selected: !slip_first,
            },
            Choice {
                value: "slip".to_owned(),
                label: "Most days late first".to_owned(),
                selected: slip_first,
            },
        ],
    }
}
