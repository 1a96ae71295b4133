//! The exception register: every exception of an order — a clarification,
//! a stalled step, a failed inspection, a delivery risk, a cost overrun, a
//! margin below the customer's floor, a cost without an exchange rate — is
//! a record from opened to closed: kind, cause, owner department, deadline,
//! the projected-date impact in days, the decision taken and by whom.
//!
//! The engine opens and closes records on the saga in memory (saved with
//! it); each opening and closing is also an event (`ExceptionOpened`,
//! `ExceptionClosed`), so the order's timeline and its closing summary show
//! them. [`list`] and [`get`] read the register for the API.

use chrono::{DateTime, Utc};
use gendan_grpc::FieldError;
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::{self, Department, ExceptionKind};
use gendan_proto::{TypeName, timestamp_from};
use sqlx::PgConnection;

use crate::SERVICE;
use crate::state::{ExceptionRecord, SagaState};
use crate::store::{EXCEPTION_COLUMNS, ListedException};

/// Opens an exception on `saga` and announces it. Returns its id.
pub fn open(
    saga: &mut SagaState,
    kind: ExceptionKind,
    owner: Department,
    step: &str,
    cause_text: String,
    now: DateTime<Utc>,
    cause: &Cause,
) -> uuid::Uuid {
    let record = ExceptionRecord {
        exception_id: uuid::Uuid::now_v7(),
        kind,
        cause: cause_text,
        owner,
        step: step.to_owned(),
        opened_at: now,
        deadline: None,
        projected_at_open: saga.projected,
        impact_days: 0,
        decision_id: None,
        decision: None,
        decided_by: None,
        closed_at: None,
        resolution: None,
        dirty: true,
    };
    let id = record.exception_id;
    let opened = v1::ExceptionOpened {
        exception: Some(to_proto(&saga.order_id, &record)),
    };
    saga.outgoing
        .push(Outgoing::event(SERVICE, &saga.order_id, &opened, cause));
    crate::engine::log_exception(saga, now, &record, "exception opened");
    saga.exceptions.push(record);
    id
}

/// Closes the open exception `id` with how it ended.
pub fn close(
    saga: &mut SagaState,
    id: uuid::Uuid,
    decision: Option<(&str, &str)>,
    resolution: &str,
    now: DateTime<Utc>,
) {
    let order_id = saga.order_id.clone();
    let Some(record) = saga.exception_mut(id).filter(|record| record.is_open()) else {
        return;
    };
    if let Some((answer, by)) = decision {
        record.decision = Some(answer.to_owned());
        record.decided_by = Some(by.to_owned());
    }
    record.closed_at = Some(now);
    record.resolution = Some(resolution.to_owned());
    let closed = v1::ExceptionClosed {
        exception: Some(to_proto(&order_id, record)),
    };
    let record = record.clone();
    let cause = Cause::root(saga.correlation_id.clone());
    saga.outgoing
        .push(Outgoing::event(SERVICE, &order_id, &closed, &cause));
    crate::engine::log_exception(saga, now, &record, "exception closed");
}

/// Records on the open exception `id` the answer that left it open (a
/// re-quote: the cause stands until the amended order is estimated again).
pub fn note_decision(saga: &mut SagaState, id: uuid::Uuid, answer: &str, by: &str) {
    if let Some(record) = saga.exception_mut(id).filter(|record| record.is_open()) {
        record.decision = Some(answer.to_owned());
        record.decided_by = Some(by.to_owned());
    }
}

fn open_ids(saga: &SagaState, matches: impl Fn(&ExceptionRecord) -> bool) -> Vec<uuid::Uuid> {
    saga.exceptions
        .iter()
        .filter(|record| record.is_open() && matches(record))
        .map(|record| record.exception_id)
        .collect()
}

/// Closes what is open about `step` (its failure, its stall) once it is
/// done or fails again.
pub fn close_for_step(saga: &mut SagaState, step: &str, resolution: &str, now: DateTime<Utc>) {
    for id in settled_of_step(saga, step) {
        close(saga, id, None, resolution, now);
    }
}

/// Closes what is open about `step` with an operator's or a person's act
/// (retry, skip, a late reply).
pub fn decide_for_step(
    saga: &mut SagaState,
    step: &str,
    action: &str,
    by: &str,
    now: DateTime<Utc>,
) {
    let resolution = format!("{action} by {by}");
    for id in settled_of_step(saga, step) {
        close(saga, id, Some((action, by)), &resolution, now);
    }
}

/// The open exceptions of `step` that no open question waits on: an
/// exception a decision answers stays open until that answer.
fn settled_of_step(saga: &SagaState, step: &str) -> Vec<uuid::Uuid> {
    let asking: Vec<uuid::Uuid> = saga
        .decisions
        .iter()
        .filter(|d| d.is_open())
        .map(|d| d.decision_id)
        .collect();
    open_ids(saga, |record| {
        record.step == step && !record.decision_id.is_some_and(|id| asking.contains(&id))
    })
}

pub fn close_kind(saga: &mut SagaState, kind: ExceptionKind, resolution: &str, now: DateTime<Utc>) {
    for id in open_ids(saga, |record| record.kind == kind) {
        close(saga, id, None, resolution, now);
    }
}

/// At the end of the order (closed, or cancelled) nothing stays open.
pub fn close_all(saga: &mut SagaState, resolution: &str, now: DateTime<Utc>) {
    for id in open_ids(saga, |_| true) {
        close(saga, id, None, resolution, now);
    }
}

/// Events that are exceptions by themselves, without failing a step: a
/// cost overrun (per category), a cost without an exchange rate (closed
/// when a rate values it), a payment reminder, materials delayed (closed
/// when they are in), a machine down (and back up).
pub fn note_event(
    saga: &mut SagaState,
    incoming: &Incoming,
    cause: &Cause,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    match incoming.type_name() {
        v1::CostOverrun::TYPE_NAME => {
            // One record per category over its plan (and one for the whole
            // order over its budget), each brought up to date as the costs
            // grow.
            let overrun: v1::CostOverrun = incoming.payload()?;
            let currency = if overrun.currency.is_empty() {
                saga.order.currency.clone()
            } else {
                overrun.currency.clone()
            };
            let actual = gendan_proto::money(overrun.actual_minor, &currency);
            let plan = gendan_proto::money(overrun.budget_minor, &currency);
            let (step, mut text) = match overrun.category.as_str() {
                "" => (
                    "cost:total".to_owned(),
                    format!("costs {actual} passed the budget {plan}"),
                ),
                category => (
                    format!("cost:{category}"),
                    format!("{category} costs {actual} passed their plan of {plan}"),
                ),
            };
            if !overrun.cause.is_empty() {
                text.push_str(&format!(": {}", overrun.cause));
            }
            let kind = ExceptionKind::CostOverrun;
            open_once(saga, kind, Department::Finance, &step, text, now, cause);
        }
        v1::ExchangeRateMissing::TYPE_NAME => {
            // A cost kept in its own currency until a rate values it: one
            // record per pair, naming the latest entry waiting.
            let missing: v1::ExchangeRateMissing = incoming.payload()?;
            let pair = format!("{}/{}", missing.from_currency, missing.to_currency);
            let text = format!(
                "no exchange rate {}→{} on or before {} for {}: set an exchange rate {}→{}",
                missing.from_currency,
                missing.to_currency,
                missing.on,
                missing.what,
                missing.from_currency,
                missing.to_currency
            );
            let kind = ExceptionKind::ExchangeRateMissing;
            let step = format!("fx:{pair}");
            open_once(saga, kind, Department::Finance, &step, text, now, cause);
        }
        v1::CostsConverted::TYPE_NAME => {
            let converted: v1::CostsConverted = incoming.payload()?;
            let step = format!("fx:{}/{}", converted.from_currency, converted.to_currency);
            let is_this = |record: &ExceptionRecord| {
                record.kind == ExceptionKind::ExchangeRateMissing && record.step == step
            };
            let resolution = format!(
                "valued at rate {} ({} entries)",
                converted.rate, converted.entries
            );
            for id in open_ids(saga, is_this) {
                close(saga, id, None, &resolution, now);
            }
        }
        v1::PaymentReminder::TYPE_NAME => {
            let reminder: v1::PaymentReminder = incoming.payload()?;
            let step = match reminder.invoice_kind() {
                v1::InvoiceKind::Deposit => "deposit_received",
                _ => "paid_in_full",
            };
            let text = format!(
                "invoice {} ({}) unpaid {} days after its due date {}; reminder {} sent",
                reminder.invoice_id,
                gendan_proto::money(reminder.outstanding_minor, &reminder.currency),
                reminder.days_overdue,
                reminder.due_date,
                reminder.reminder
            );
            let kind = ExceptionKind::PaymentOverdue;
            open_once(saga, kind, Department::Finance, step, text, now, cause);
        }
        v1::MaterialsDelayed::TYPE_NAME => {
            // A supplier confirmed a later date (or a rejected lot is
            // re-ordered): the materials come later than planned. Earlier
            // news is good news and opens nothing.
            let delayed: v1::MaterialsDelayed = incoming.payload()?;
            let Some(ready) = gendan_proto::date_from_str(&delayed.expected_ready_date) else {
                return Ok(());
            };
            let Some(before) = saga.facts.material_date.filter(|before| ready > *before) else {
                return Ok(());
            };
            let text = format!(
                "materials now expected {} instead of {} ({} days later): {} (purchase order {})",
                delayed.expected_ready_date,
                gendan_proto::date_to_string(before),
                (ready - before).num_days(),
                delayed.reason,
                delayed.purchase_order_id
            );
            let kind = ExceptionKind::SupplierLate;
            let owner = Department::Procurement;
            open_once(saga, kind, owner, "materials_ready", text, now, cause);
        }
        v1::WorkOrderRescheduled::TYPE_NAME => {
            let moved: v1::WorkOrderRescheduled = incoming.payload()?;
            let is_this = |record: &ExceptionRecord| {
                record.kind == ExceptionKind::EquipmentDown
                    && record.step == format!("work_centre:{}", moved.work_centre)
            };
            if moved.resolved {
                let resolution = format!("work centre {} back up", moved.work_centre);
                for id in open_ids(saga, is_this) {
                    close(saga, id, None, &resolution, now);
                }
            } else {
                let step = format!("work_centre:{}", moved.work_centre);
                let kind = ExceptionKind::EquipmentDown;
                let owner = Department::Production;
                open_once(saga, kind, owner, &step, moved.cause, now, cause);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Opens an exception of `kind` about `step` unless one is open already, in
/// which case its cause is brought up to date.
fn open_once(
    saga: &mut SagaState,
    kind: ExceptionKind,
    owner: Department,
    step: &str,
    cause_text: String,
    now: DateTime<Utc>,
    cause: &Cause,
) {
    let already = open_ids(saga, |record| record.kind == kind && record.step == step);
    if let Some(id) = already.first() {
        if let Some(record) = saga.exception_mut(*id) {
            record.cause = cause_text;
        }
        return;
    }
    open(saga, kind, owner, step, cause_text, now, cause);
}

/// A step failed again while its question is open: the open exception's
/// cause says so.
pub fn note_on_open(saga: &mut SagaState, step: &str, reason: &str) {
    // A repeat of the same news (a redelivery) changes nothing.
    let ids = open_ids(saga, |record| {
        record.step == step && !record.cause.contains(reason)
    });
    for id in ids {
        if let Some(record) = saga.exception_mut(id) {
            record.cause = format!("{}; then: {reason}", record.cause);
        }
    }
}

/// Keeps each open exception's impact: how far the projected delivery date
/// moved since it opened.
pub fn track_projection(saga: &mut SagaState) {
    let Some(projected) = saga.projected else {
        return;
    };
    for record in saga.exceptions.iter_mut().filter(|r| r.is_open()) {
        let Some(at_open) = record.projected_at_open else {
            record.projected_at_open = Some(projected);
            record.dirty = true;
            continue;
        };
        let impact = (projected - at_open).num_days() as i32;
        if impact != record.impact_days {
            record.impact_days = impact;
            record.dirty = true;
        }
    }
}

/// Why the dates moved, in a customer's words: the open exceptions that
/// moved the projection, most recent first (", because ...").
pub fn why_dates_moved(saga: &SagaState) -> String {
    let causes: Vec<String> = saga
        .exceptions
        .iter()
        .rev()
        .filter(|record| record.is_open())
        .filter_map(customer_words)
        .collect();
    if causes.is_empty() {
        String::new()
    } else {
        format!(", because {}", causes.join("; "))
    }
}

/// What a customer is told about an exception that moves dates; `None`
/// for what is not the customer's business (costs) or not a cause of
/// delay (their own payment, the risk itself).
fn customer_words(record: &ExceptionRecord) -> Option<String> {
    let words = match record.kind {
        ExceptionKind::FinalInspectionFailed => {
            "the goods failed final inspection and are being reworked".to_owned()
        }
        ExceptionKind::DeliveryDateClarification => {
            "the factory's earliest date is later than requested".to_owned()
        }
        ExceptionKind::SupplierLate => "a supplier is late with materials".to_owned(),
        ExceptionKind::EquipmentDown => record.cause.clone(),
        ExceptionKind::ShipmentLate => {
            "the shipment missed its departure and is re-booked".to_owned()
        }
        ExceptionKind::CargoClaim => "the carrier lost or damaged goods in transit".to_owned(),
        ExceptionKind::Amendment => format!("of your {}", record.cause),
        ExceptionKind::StalledStep | ExceptionKind::StepFailed => {
            format!("{} is held up", record.step.replace('_', " "))
        }
        _ => return None,
    };
    Some(words)
}

pub fn to_proto(order_id: &str, record: &ExceptionRecord) -> v1::OrderException {
    v1::OrderException {
        exception_id: record.exception_id.to_string(),
        order_id: order_id.to_owned(),
        kind: record.kind as i32,
        cause: record.cause.clone(),
        owner: record.owner as i32,
        step: record.step.clone(),
        opened_at: Some(timestamp_from(record.opened_at)),
        deadline: record.deadline.map(timestamp_from),
        impact_days: record.impact_days,
        decision: record.decision.clone().unwrap_or_default(),
        decided_by: record.decided_by.clone().unwrap_or_default(),
        closed_at: record.closed_at.map(timestamp_from),
        resolution: record.resolution.clone().unwrap_or_default(),
        decision_id: record
            .decision_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}

/// What the register is asked for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub order_id: Option<String>,
    pub kind: Option<ExceptionKind>,
    pub open: Option<bool>,
    pub owner: Option<Department>,
    pub limit: i64,
}

impl Filter {
    /// The filter a request asks for, every field checked.
    pub fn from_request(request: &v1::ListExceptionsRequest) -> crate::Result<Self> {
        let order_id = match request.order_id.trim() {
            "" => None,
            id => {
                crate::validate_order_id(id)?;
                Some(id.to_owned())
            }
        };
        let kind = match ExceptionKind::try_from(request.kind) {
            Ok(ExceptionKind::Unspecified) => None,
            Ok(kind) => Some(kind),
            Err(_) => {
                return Err(FieldError::new(
                    "kind",
                    format!("{} is not an exception kind", request.kind),
                )
                .into());
            }
        };
        let open = match v1::ExceptionState::try_from(request.state) {
            Ok(v1::ExceptionState::Any) => None,
            Ok(v1::ExceptionState::Open) => Some(true),
            Ok(v1::ExceptionState::Closed) => Some(false),
            Err(_) => {
                return Err(FieldError::new(
                    "state",
                    format!("{} is not ANY, OPEN or CLOSED", request.state),
                )
                .into());
            }
        };
        let owner = match Department::try_from(request.owner) {
            Ok(Department::Unspecified) => None,
            Ok(owner) => Some(owner),
            Err(_) => {
                return Err(FieldError::new(
                    "owner",
                    format!("{} is not a department", request.owner),
                )
                .into());
            }
        };
        if request.limit > 1000 {
            return Err(FieldError::new(
                "limit",
                format!("{} is over the maximum of 1000", request.limit),
            )
            .into());
        }
        let limit = match request.limit {
            0 => 100,
            n => i64::from(n),
        };
        Ok(Filter {
            order_id,
            kind,
            open,
            owner,
            limit,
        })
    }
}

/// Exceptions matching `filter`, newest first.
pub async fn list(
    conn: &mut PgConnection,
    filter: &Filter,
) -> sqlx::Result<Vec<v1::OrderException>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {EXCEPTION_COLUMNS} FROM saga_exceptions \
         WHERE ($1::text IS NULL OR order_id = $1) \
           AND ($2::text IS NULL OR kind = $2) \
           AND ($3::bool IS NULL OR (closed_at IS NULL) = $3) \
           AND ($4::text IS NULL OR owner = $4) \
         ORDER BY opened_at DESC, exception_id DESC LIMIT $5"
    ));
    let rows: Vec<ListedException> = sqlx::query_as(sql)
        .bind(&filter.order_id)
        .bind(filter.kind.map(|kind| kind.as_str_name()))
        .bind(filter.open)
        .bind(filter.owner.map(|owner| owner.as_str_name()))
        .bind(filter.limit)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (order_id, record) = row.into_parts();
            to_proto(&order_id, &record)
        })
        .collect())
}

pub async fn get(
    conn: &mut PgConnection,
    exception_id: uuid::Uuid,
) -> sqlx::Result<Option<v1::OrderException>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {EXCEPTION_COLUMNS} FROM saga_exceptions WHERE exception_id = $1"
    ));
    let row: Option<ListedException> = sqlx::query_as(sql)
        .bind(exception_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|row| {
        let (order_id, record) = row.into_parts();
        to_proto(&order_id, &record)
    }))
}
