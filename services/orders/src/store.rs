//! SQL for the order record: rows in, `gendan.v1.Order` messages out.
//!
//! Every function takes the executor it runs on, so callers decide the
//! transaction: CreateOrder writes through one, the consumers through the
//! batch transaction the consumer loop hands them. Statements are static
//! with binds; optional filters are `($n IS NULL OR ...)`.

use chrono::{DateTime, NaiveDate, Utc};
use gendan_proto::v1::{CustomerRules, Order, OrderLine, Phase};
use gendan_proto::{date_to_string, timestamp_from};
use prost::Message as _;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::phases::{PhaseMove, phase_move};
use crate::validate::{NewLine, NewOrder};

/// Workflow status values shown on `Order.workflow_status`.
pub mod status {
    pub const RUNNING: &str = "running";
    pub const STALLED: &str = "stalled";
    pub const COMPLETED: &str = "completed";
    pub const CANCELLED: &str = "cancelled";
}

/// The `orders` columns an [`OrderRow`] reads; a macro so queries stay
/// `&'static str` (no dynamic SQL).
macro_rules! order_columns {
    () => {
        "order_id, customer, currency, requested_delivery_date, incoterm, payment_terms, \
         export, total_minor, phase, workflow_status, projected_delivery_date, at_risk, \
         created_at, updated_at, customer_id, customer_rules, promised_delivery_date, \
         next_milestone, next_milestone_date, \
         ARRAY(SELECT DISTINCT e.kind FROM order_exceptions e \
               WHERE e.order_id = orders.order_id AND NOT e.closed ORDER BY e.kind) \
           AS open_exceptions"
    };
}

mod list;
mod watch;

pub use list::{Cursor, ListFilter, list_orders};
pub use watch::{Tracking, changed_since, watch_snapshot};

#[derive(Debug, sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    customer: String,
    currency: String,
    requested_delivery_date: NaiveDate,
    incoterm: String,
    payment_terms: String,
    export: bool,
    total_minor: i64,
    phase: i32,
    workflow_status: String,
    projected_delivery_date: Option<NaiveDate>,
    at_risk: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// `None` for orders created before the customer master.
    customer_id: Option<String>,
    /// The encoded `CustomerRules`; `None` for those older orders.
    customer_rules: Option<Vec<u8>>,
    open_exceptions: Vec<String>,
    promised_delivery_date: Option<NaiveDate>,
    next_milestone: String,
    next_milestone_date: Option<NaiveDate>,
}

#[derive(Debug, sqlx::FromRow)]
struct LineRow {
    order_id: Uuid,
    product: String,
    spec: String,
    quantity: i64,
    unit_price_minor: i64,
}

impl OrderRow {
    fn into_order(self, lines: Vec<OrderLine>) -> sqlx::Result<Order> {
        let customer_rules = self
            .customer_rules
            .map(|bytes| CustomerRules::decode(bytes.as_slice()))
            .transpose()
            .map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
        // Late is positive: the projection against the promise, or the
        // request before there is one.
        let committed = self
            .promised_delivery_date
            .unwrap_or(self.requested_delivery_date);
        let slip_days = self
            .projected_delivery_date
            .map_or(0, |projected| (projected - committed).num_days())
            .clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        Ok(Order {
            order_id: self.order_id.to_string(),
            customer: self.customer,
            lines,
            currency: self.currency,
            requested_delivery_date: date_to_string(self.requested_delivery_date),
            incoterm: self.incoterm,
            payment_terms: self.payment_terms,
            export: self.export,
            phase: self.phase,
            projected_delivery_date: self
                .projected_delivery_date
                .map(date_to_string)
                .unwrap_or_default(),
            at_risk: self.at_risk,
            total_minor: self.total_minor,
            created_at: Some(timestamp_from(self.created_at)),
            updated_at: Some(timestamp_from(self.updated_at)),
            workflow_status: self.workflow_status,
            open_exceptions: self.open_exceptions,
            customer_id: self.customer_id.unwrap_or_default(),
            customer_rules,
            promised_delivery_date: self
                .promised_delivery_date
                .map(date_to_string)
                .unwrap_or_default(),
            next_milestone: self.next_milestone,
            next_milestone_date: self
                .next_milestone_date
                .map(date_to_string)
                .unwrap_or_default(),
            slip_days,
        })
    }
}

impl LineRow {
    fn into_line(self) -> OrderLine {
        OrderLine {
            product: self.product,
            spec: self.spec,
            // Written from a u32 and checked positive by the table.
            quantity: u32::try_from(self.quantity).unwrap_or(u32::MAX),
            unit_price_minor: self.unit_price_minor,
        }
    }
}

/// Claims `client_request_id` for `order_id`; `false` when another request
/// already holds it. Waits for a concurrent holder to commit or roll back.
pub async fn claim_request_id(
    conn: &mut PgConnection,
    client_request_id: &str,
    order_id: Uuid,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO create_requests (client_request_id, order_id) VALUES ($1, $2) \
         ON CONFLICT (client_request_id) DO NOTHING",
    )
    .bind(client_request_id)
    .bind(order_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The order a create request produced, if that request id was seen.
pub async fn order_for_request(
    executor: impl PgExecutor<'_>,
    client_request_id: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT order_id FROM create_requests WHERE client_request_id = $1")
        .bind(client_request_id)
        .fetch_optional(executor)
        .await
}

/// Inserts the order row (with its customer's id and rules) and its lines,
/// in the received phase.
pub async fn insert_order(
    conn: &mut PgConnection,
    order_id: Uuid,
    order: &NewOrder,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO orders (order_id, customer, currency, requested_delivery_date, incoterm, \
         payment_terms, export, total_minor, phase, furthest_phase, workflow_status, created_at, \
         updated_at, customer_id, customer_rules) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $11, $12, $13)",
    )
    .bind(order_id)
    .bind(&order.customer)
    .bind(&order.currency)
    .bind(order.requested_delivery_date)
    .bind(&order.incoterm)
    .bind(&order.payment_terms)
    .bind(order.export)
    .bind(order.total_minor)
    .bind(Phase::Received as i32)
    .bind(status::RUNNING)
    .bind(now)
    .bind(&order.customer_id)
    .bind(order.customer_rules.encode_to_vec())
    .execute(&mut *conn)
    .await?;

    insert_lines(conn, order_id, &order.lines).await
}

/// Inserts the order's lines, numbered 1, 2, … in the given order (the
/// caller removed any earlier ones).
pub async fn insert_lines(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[NewLine],
) -> sqlx::Result<()> {
    // One statement for all lines: arrays unnested in line order.
    let line_numbers: Vec<i32> = (1..).take(lines.len()).collect();
    let products: Vec<&str> = lines.iter().map(|l| l.product.as_str()).collect();
    let specs: Vec<&str> = lines.iter().map(|l| l.spec.as_str()).collect();
    let quantities: Vec<i64> = lines.iter().map(|l| i64::from(l.quantity)).collect();
    let prices: Vec<i64> = lines.iter().map(|l| l.unit_price_minor).collect();
    sqlx::query(
        "INSERT INTO order_lines (order_id, line_no, product, spec, quantity, unit_price_minor) \
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])",
    )
    .bind(order_id)
    .bind(&line_numbers)
    .bind(&products)
    .bind(&specs)
    .bind(&quantities)
    .bind(&prices)
    .execute(conn)
    .await?;
    Ok(())
}

/// One order with its lines.
pub async fn get_order(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Option<Order>> {
    let row: Option<OrderRow> = sqlx::query_as(concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut orders = with_lines(conn, vec![row]).await?;
    Ok(orders.pop())
}

/// Attaches lines to rows with one query for the whole page.
async fn with_lines(conn: &mut PgConnection, rows: Vec<OrderRow>) -> sqlx::Result<Vec<Order>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|row| row.order_id).collect();
    let lines: Vec<LineRow> = sqlx::query_as(
        "SELECT order_id, product, spec, quantity, unit_price_minor FROM order_lines \
         WHERE order_id = ANY($1) ORDER BY order_id, line_no",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_order: std::collections::HashMap<Uuid, Vec<OrderLine>> =
        std::collections::HashMap::with_capacity(rows.len());
    for line in lines {
        by_order
            .entry(line.order_id)
            .or_default()
            .push(line.into_line());
    }
    rows.into_iter()
        .map(|row| {
            let lines = by_order.remove(&row.order_id).unwrap_or_default();
            row.into_order(lines)
        })
        .collect()
}

/// Applies a move of the order to `to` ([`phase_move`] decides; `from` is
/// the phase the saga says it leaves, `None` for "forward only"). A closed
/// order never moves (it is read-only).
pub async fn move_phase(
    conn: &mut PgConnection,
    order_id: Uuid,
    from: Option<Phase>,
    to: Phase,
    projected: Option<NaiveDate>,
) -> sqlx::Result<PhaseMove> {
    let row: Option<(i32, i32)> = sqlx::query_as(
        "SELECT phase, furthest_phase FROM orders \
         WHERE order_id = $1 AND closed_at IS NULL FOR NO KEY UPDATE",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((phase, furthest)) = row else {
        return Ok(PhaseMove::Stayed);
    };
    let current = Phase::try_from(phase).unwrap_or(Phase::Unspecified);
    let furthest = Phase::try_from(furthest).unwrap_or(current);
    let verdict = phase_move(current, furthest, from, to);
    if !verdict.moved() {
        return Ok(verdict);
    }
    sqlx::query(
        "UPDATE orders SET phase = $2, furthest_phase = GREATEST(furthest_phase, $2), \
             projected_delivery_date = COALESCE($3, projected_delivery_date), \
             workflow_status = CASE WHEN $2 = $4 THEN $5 ELSE workflow_status END, \
             updated_at = now() \
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(to as i32)
    .bind(projected)
    .bind(Phase::Cancelled as i32)
    .bind(status::CANCELLED)
    .execute(conn)
    .await?;
    Ok(verdict)
}

/// Moves the order forward to `to` if that is later in the workflow than
/// where it is; `true` when it moved.
pub async fn advance_phase(
    conn: &mut PgConnection,
    order_id: Uuid,
    to: Phase,
    projected: Option<NaiveDate>,
) -> sqlx::Result<bool> {
    Ok(move_phase(conn, order_id, None, to, projected)
        .await?
        .moved())
}

/// Records the saga's latest delivery risk verdict (not on a closed order).
pub async fn set_delivery_risk(
    conn: &mut PgConnection,
    order_id: Uuid,
    at_risk: bool,
    projected: Option<NaiveDate>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET at_risk = $2, \
             projected_delivery_date = COALESCE($3, projected_delivery_date), updated_at = now() \
         WHERE order_id = $1 AND closed_at IS NULL",
    )
    .bind(order_id)
    .bind(at_risk)
    .bind(projected)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the workflow status, unless the workflow already ended (completed
/// or cancelled) or the order is closed: a late stall notice must not reopen
/// a finished order.
pub async fn set_workflow_status(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET workflow_status = $2, updated_at = now() \
         WHERE order_id = $1 AND workflow_status NOT IN ($3, $4) AND closed_at IS NULL",
    )
    .bind(order_id)
    .bind(status)
    .bind(status::COMPLETED)
    .bind(status::CANCELLED)
    .execute(conn)
    .await?;
    Ok(())
}

/// What acceptance, closing and notices need to know about an order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderState {
    pub order_id: Uuid,
    pub customer: String,
    pub currency: String,
    pub requested_delivery_date: NaiveDate,
    pub promised_delivery_date: Option<NaiveDate>,
    pub projected_delivery_date: Option<NaiveDate>,
    pub phase: i32,
    pub total_minor: i64,
    pub created_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The encoded `OrderSummary`, once closed.
    pub summary: Option<Vec<u8>>,
    /// The furthest phase the order ever reached (the phase walks back
    /// while an amendment or a claim's redelivery runs).
    pub furthest_phase: i32,
}

impl OrderState {
    pub fn phase(&self) -> Phase {
        Phase::try_from(self.phase).unwrap_or(Phase::Unspecified)
    }

    pub fn is_closed(&self) -> bool {
        self.closed_at.is_some()
    }
}

macro_rules! state_columns {
    () => {
        "order_id, customer, currency, requested_delivery_date, promised_delivery_date, \
         projected_delivery_date, phase, total_minor, created_at, accepted_at, accepted_by, \
         closed_at, summary, furthest_phase"
    };
}

/// The order's state, without a lock (reads that decide nothing to write
/// back to the order row).
pub async fn state(
    executor: impl PgExecutor<'_>,
    order_id: Uuid,
) -> sqlx::Result<Option<OrderState>> {
    sqlx::query_as(concat!(
        "SELECT ",
        state_columns!(),
        " FROM orders WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(executor)
    .await
}

/// The order's state, locked until the transaction ends: acceptance and
/// closing decide on it and write it back, and two replicas (or a gRPC call
/// and a command) must not both decide on the same old state. `NO KEY
/// UPDATE`, because the order's key never changes: the lock then leaves
/// alone the key-share locks that every insert into the timeline and the
/// notices takes on the order (their foreign keys), which a plain `FOR
/// UPDATE` waited for under load.
pub async fn lock_state(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Option<OrderState>> {
    sqlx::query_as(concat!(
        "SELECT ",
        state_columns!(),
        " FROM orders WHERE order_id = $1 FOR NO KEY UPDATE"
    ))
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// Who accepted the order and their note, once it is accepted.
pub async fn acceptance(
    executor: impl sqlx::PgExecutor<'_>,
    order_id: Uuid,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as(
        "SELECT COALESCE(accepted_by, ''), COALESCE(acceptance_note, '') FROM orders \
         WHERE order_id = $1 AND accepted_at IS NOT NULL",
    )
    .bind(order_id)
    .fetch_optional(executor)
    .await
}

/// Records the customer's acceptance once; `false` when it was recorded
/// before or the order is closed (the caller holds the row lock and has
/// checked both, so `false` is a bug there).
pub async fn record_acceptance(
    conn: &mut PgConnection,
    order_id: Uuid,
    accepted_by: &str,
    note: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE orders SET accepted_at = $2, accepted_by = $3, acceptance_note = $4, \
             updated_at = $2 \
         WHERE order_id = $1 AND accepted_at IS NULL AND closed_at IS NULL",
    )
    .bind(order_id)
    .bind(at)
    .bind(accepted_by)
    .bind(note)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Closes the order with its encoded summary: phase closed (a cancelled
/// order keeps its phase: it was closed as cancelled), `closed_at` set, and
/// the workflow marked finished (closing is its last step, and the row
/// takes no later status update). A closed order waits on no milestone,
/// whatever calendar version came last. After this the row is read-only.
/// `false` when it was closed before.
pub async fn close(
    conn: &mut PgConnection,
    order_id: Uuid,
    summary: &[u8],
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE orders SET phase = CASE WHEN phase = $4 THEN phase ELSE $3 END, \
             workflow_status = CASE WHEN phase = $4 THEN workflow_status ELSE $6 END, \
             closed_at = $2, summary = $5, updated_at = $2, \
             next_milestone = '', next_milestone_date = NULL \
         WHERE order_id = $1 AND closed_at IS NULL",
    )
    .bind(order_id)
    .bind(at)
    .bind(Phase::Closed as i32)
    .bind(Phase::Cancelled as i32)
    .bind(summary)
    .bind(status::COMPLETED)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Keeps the order's open exceptions from the saga's register: `kind` opened
/// (`Some`) or closed (`None`). Repeats change nothing, and a closing wins
/// over an opening whatever order they arrive in.
pub async fn track_exception(
    conn: &mut PgConnection,
    order_id: Uuid,
    exception_id: &str,
    opened_kind: Option<&str>,
) -> sqlx::Result<()> {
    match opened_kind {
        Some(kind) => {
            sqlx::query(
                "INSERT INTO order_exceptions (order_id, exception_id, kind) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(order_id)
            .bind(exception_id)
            .bind(kind)
            .execute(conn)
            .await?;
        }
        None => {
            sqlx::query(
                "INSERT INTO order_exceptions (order_id, exception_id, kind, closed) \
                 VALUES ($1, $2, '', true) \
                 ON CONFLICT (order_id, exception_id) DO UPDATE SET closed = true",
            )
            .bind(order_id)
            .bind(exception_id)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}
