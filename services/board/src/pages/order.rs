//! `/orders/{id}`: one order, everything the merchandiser follows on one
//! page, each part from the service that owns it, all asked at once:
//!
//! - the header (`OrderService.GetOrder`): customer, phase, dates, slip,
//!   risk, workflow status; an unknown order is a 404 naming the id;
//! - the time-and-action calendar (`GetMilestones`) as a chart
//!   ([`crate::chart`]) with the same data as a table beneath it;
//! - the timeline (`GetTimeline`), newest first, each trace id linking to
//!   the trace UI when a link template is set;
//! - the exceptions (`SagaService.ListExceptions`) and open decisions
//!   (`ListDecisions`) with their answer forms;
//! - the cost ledger against budget (`FinanceService.GetCostLedger`);
//! - the packing list and documents (`LogisticsService`);
//! - the notices sent to the customer (`ListNotices`).
//!
//! A part whose service is down says so; the others still render.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use gendan_proto::v1;
use tonic::{Code, Request};

use super::decisions::{DecisionView, decision_view};
use super::ledger::{LedgerView, ledger_view};
use super::logistics::{DocumentsView, PackingView, documents_view, packing_view};
use crate::chart::{self, Chart};
use crate::forms::{self, encode};
use crate::routes::{AppState, html, wants_fragment};
use crate::view::{self, Section};
use crate::{Error, Result};

/// Exceptions and decisions of one order listed at most.
const LIMIT: u32 = 100;

#[derive(Debug, Clone)]
pub struct Header {
    pub customer: String,
    pub phase: String,
    pub workflow: String,
    pub requested: String,
    pub promised: String,
    pub projected: String,
    pub slip: String,
    pub slipped: bool,
    pub at_risk: bool,
    pub total: String,
    pub incoterm: String,
    pub payment_terms: String,
    pub next_milestone: String,
    pub next_milestone_date: String,
    pub open_exceptions: Vec<String>,
    pub created: String,
}

#[derive(Debug, Clone)]
pub struct CalendarView {
    pub chart: Chart,
    pub rows: Vec<MilestoneRow>,
    pub promised: String,
    pub projected: String,
    pub incomplete: Vec<String>,
    pub version: u64,
}

/// One milestone in the table beneath the chart.
#[derive(Debug, Clone)]
pub struct MilestoneRow {
    pub label: String,
    pub planned: String,
    pub projected: String,
    pub actual: String,
    pub variance: String,
    pub status: String,
    pub moved_by: String,
    pub late: bool,
}

#[derive(Debug, Clone)]
pub struct TimelineRow {
    pub at: String,
    pub at_iso: String,
    pub kind: String,
    pub source: String,
    pub summary: String,
    pub trace_id: String,
    /// "" without a trace UI.
    pub trace_href: String,
}

#[derive(Debug, Clone)]
pub struct ExceptionRow {
    pub kind: String,
    pub cause: String,
    pub owner: String,
    pub step: String,
    pub opened: String,
    pub deadline: String,
    pub impact: String,
    pub open: bool,
    pub decision: String,
    pub decided_by: String,
    pub closed: String,
    pub resolution: String,
}

#[derive(Debug, Clone)]
pub struct NoticeRow {
    pub created: String,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub delivery: String,
    pub attempts: u32,
}

/// The live region: the whole order.
#[derive(Debug, Clone)]
pub struct OrderView {
    pub order_id: String,
    pub events_url: String,
    pub header: Section<Header>,
    pub calendar: Section<CalendarView>,
    pub timeline: Section<Vec<TimelineRow>>,
    pub exceptions: Section<Vec<ExceptionRow>>,
    pub decisions: Section<Vec<DecisionView>>,
    pub ledger: Section<LedgerView>,
    pub packing: Section<PackingView>,
    pub documents: Section<DocumentsView>,
    pub notices: Section<Vec<NoticeRow>>,
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    title: String,
    section: &'static str,
    live: OrderView,
}

#[derive(Template)]
#[template(path = "order_live.html")]
struct OrderLive<'a> {
    live: &'a OrderView,
}

#[tracing::instrument(skip_all, err)]
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let order_id = forms::id("order id", Some(id.as_str()))?;
    let live = live_view(&state, &order_id).await?;
    if wants_fragment(&headers) {
        return html(&OrderLive { live: &live });
    }
    html(&OrderPage {
        title: format!("Order {order_id}"),
        section: "orders",
        live,
    })
}

async fn live_view(state: &AppState, order_id: &str) -> Result<OrderView> {
    let clients = &state.clients;
    let (mut for_order, mut for_calendar, mut for_timeline, mut for_notices) = (
        clients.orders.clone(),
        clients.orders.clone(),
        clients.orders.clone(),
        clients.orders.clone(),
    );
    let (mut for_exceptions, mut for_decisions) = (clients.saga.clone(), clients.saga.clone());
    let mut for_ledger = clients.finance.clone();
    let (mut for_packing, mut for_documents) =
        (clients.logistics.clone(), clients.logistics.clone());
    let id = || order_id.to_owned();
    let (order, calendar, timeline, notices, exceptions, decisions, ledger, packing, documents) = tokio::join!(
        Box::pin(for_order.get_order(Request::new(v1::GetOrderRequest { order_id: id() }))),
        Box::pin(
            for_calendar.get_milestones(Request::new(v1::GetMilestonesRequest { order_id: id() }))
        ),
        Box::pin(
            for_timeline.get_timeline(Request::new(v1::GetTimelineRequest { order_id: id() }))
        ),
        Box::pin(for_notices.list_notices(Request::new(v1::ListNoticesRequest { order_id: id() }))),
        Box::pin(
            for_exceptions.list_exceptions(Request::new(v1::ListExceptionsRequest {
                order_id: id(),
                kind: v1::ExceptionKind::Unspecified as i32,
                state: v1::ExceptionState::Any as i32,
                owner: v1::Department::Unspecified as i32,
                limit: LIMIT,
            }))
        ),
        Box::pin(
            for_decisions.list_decisions(Request::new(v1::ListDecisionsRequest {
                order_id: id(),
                open_only: true,
                limit: LIMIT,
            }))
        ),
        Box::pin(
            for_ledger.get_cost_ledger(Request::new(v1::GetCostLedgerRequest { order_id: id() }))
        ),
        Box::pin(
            for_packing
                .get_packing_list(Request::new(v1::GetPackingListRequest { order_id: id() }))
        ),
        Box::pin(
            for_documents.get_documents(Request::new(v1::GetDocumentsRequest { order_id: id() }))
        ),
    );
    // An id that is not an order id names no order either.
    if let Err(status) = &order
        && matches!(status.code(), Code::NotFound | Code::InvalidArgument)
    {
        return Err(Error::OrderNotFound(order_id.to_owned()));
    }
    let now = Utc::now();
    let return_to = view::order_href(order_id);
    let trace_url = state.trace_url.as_deref();
    Ok(OrderView {
        order_id: order_id.to_owned(),
        events_url: format!("/events?order={}", encode(order_id)),
        header: Section::from_call(
            "orders",
            order.map(tonic::Response::into_inner),
            None,
            |order| header(&order),
        ),
        calendar: Section::from_call(
            "orders",
            calendar.map(tonic::Response::into_inner),
            Some("no calendar yet"),
            |calendar| calendar_view(&calendar, now.date_naive()),
        ),
        timeline: Section::from_call(
            "orders",
            timeline.map(tonic::Response::into_inner),
            Some("no events yet"),
            |timeline| {
                timeline
                    .entries
                    .iter()
                    .rev()
                    .map(|entry| timeline_row(entry, trace_url))
                    .collect()
            },
        ),
        exceptions: Section::from_call(
            "saga",
            exceptions.map(tonic::Response::into_inner),
            None,
            |listed| listed.exceptions.iter().map(exception_row).collect(),
        ),
        decisions: Section::from_call(
            "saga",
            decisions.map(tonic::Response::into_inner),
            None,
            |listed| {
                listed
                    .decisions
                    .iter()
                    .map(|decision| decision_view(decision, &return_to, now))
                    .collect()
            },
        ),
        ledger: Section::from_call(
            "finance",
            ledger.map(tonic::Response::into_inner),
            Some("no ledger yet"),
            |ledger| ledger_view(&ledger),
        ),
        packing: Section::from_call(
            "logistics",
            packing.map(tonic::Response::into_inner),
            Some("no packing list yet"),
            |list| packing_view(&list),
        ),
        documents: Section::from_call(
            "logistics",
            documents.map(tonic::Response::into_inner),
            Some("no documents yet"),
            |set| documents_view(&set),
        ),
        notices: Section::from_call(
            "orders",
            notices.map(tonic::Response::into_inner),
            Some("no notices yet"),
            |listed| listed.notices.iter().map(notice_row).collect(),
        ),
    })
}

fn header(order: &v1::Order) -> Header {
    Header {
        customer: order.customer.clone(),
        phase: view::phase(order.phase),
        workflow: order.workflow_status.clone(),
        requested: view::date(&order.requested_delivery_date),
        promised: view::date(&order.promised_delivery_date),
        projected: view::date(&order.projected_delivery_date),
        slip: if order.projected_delivery_date.is_empty() {
            view::date("")
        } else {
            view::days(order.slip_days)
        },
        slipped: order.slip_days > 0,
        at_risk: order.at_risk,
        total: view::money(order.total_minor, &order.currency),
        incoterm: order.incoterm.clone(),
        payment_terms: order.payment_terms.clone(),
        next_milestone: order.next_milestone.clone(),
        next_milestone_date: order.next_milestone_date.clone(),
        open_exceptions: order
            .open_exceptions
            .iter()
            .map(|kind| view::words(kind.as_str()))
            .collect(),
        created: view::timestamp(order.created_at.as_ref()),
    }
}

fn calendar_view(calendar: &v1::GetMilestonesResponse, today: chrono::NaiveDate) -> CalendarView {
    let chart = chart::chart(&calendar.milestones, today);
    let rows = calendar
        .milestones
        .iter()
        .zip(&chart.rows)
        .map(|(milestone, drawn)| MilestoneRow {
            label: milestone.label.clone(),
            planned: view::date(&milestone.planned),
            projected: view::date(&milestone.projected),
            actual: view::date(&milestone.actual),
            variance: variance(milestone),
            status: status(milestone.status()),
            moved_by: milestone.moved_by.clone(),
            late: drawn.late(),
        })
        .collect();
    CalendarView {
        chart,
        rows,
        promised: view::date(&calendar.promised_delivery_date),
        projected: view::date(&calendar.projected_delivery_date),
        incomplete: calendar.incomplete.clone(),
        version: calendar.version,
    }
}

/// "+3 d" late, "−1 d" early; blank with nothing to compare.
fn variance(milestone: &v1::Milestone) -> String {
    let nothing_to_compare = milestone.planned.is_empty()
        || (milestone.actual.is_empty() && milestone.projected.is_empty());
    if nothing_to_compare {
        return String::new();
    }
    view::days(milestone.variance_days)
}

/// `MILESTONE_STATUS_DONE_LATE` → "done late".
fn status(status: v1::MilestoneStatus) -> String {
    match status {
        v1::MilestoneStatus::Unspecified => String::new(),
        status => status
            .as_str_name()
            .trim_start_matches("MILESTONE_STATUS_")
            .to_lowercase()
            .replace('_', " "),
    }
}

fn timeline_row(entry: &v1::TimelineEntry, trace_url: Option<&str>) -> TimelineRow {
    TimelineRow {
        at: view::timestamp(entry.occurred_at.as_ref()),
        at_iso: view::rfc3339(entry.occurred_at.as_ref()),
        kind: view::short_type(&entry.r#type),
        source: entry.source.clone(),
        summary: entry.summary.clone(),
        trace_id: entry.trace_id.clone(),
        trace_href: view::trace_href(trace_url, &entry.trace_id),
    }
}

fn exception_row(exception: &v1::OrderException) -> ExceptionRow {
    ExceptionRow {
        kind: view::words(&exception.kind().short_name()),
        cause: exception.cause.clone(),
        owner: view::words(&exception.owner().short_name()),
        step: exception.step.clone(),
        opened: view::timestamp(exception.opened_at.as_ref()),
        deadline: view::timestamp(exception.deadline.as_ref()),
        impact: if exception.impact_days == 0 {
            String::new()
        } else {
            view::days(exception.impact_days)
        },
        open: exception.closed_at.is_none(),
        decision: exception.decision.clone(),
        decided_by: exception.decided_by.clone(),
        closed: view::timestamp(exception.closed_at.as_ref()),
        resolution: exception.resolution.clone(),
    }
}

fn notice_row(notice: &v1::CustomerNotice) -> NoticeRow {
    NoticeRow {
        created: view::timestamp(notice.created_at.as_ref()),
        kind: view::words(&notice.kind),
        subject: notice.subject.clone(),
        body: notice.body.clone(),
        delivery: view::words(&notice.delivery_status),
        attempts: notice.delivery_attempts,
    }
}
