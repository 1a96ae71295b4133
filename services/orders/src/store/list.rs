//! The SQL behind `ListOrders`: one statement per page, filtered on phase,
//! customer, risk and open exceptions, newest first or most days late
//! first, with a keyset cursor ([`Cursor`], encoded by `crate::paging`).

use chrono::{DateTime, Utc};
use gendan_proto::v1::Order;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{OrderRow, with_lines};

/// What ListOrders filters on; `None` / `false` match everything.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub phase: Option<i32>,
    /// A customer id or a customer's name (exactly as the order carries it).
    pub customer: Option<String>,
    pub at_risk_only: bool,
    /// Only orders with an open exception.
    pub exception_open_only: bool,
}

/// Position after the last order of a page: newest first, or with `slip`
/// most days late first, then newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The last order's slip, when the list is sorted by slip.
    pub slip: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub order_id: Uuid,
}

/// An order's slip in days, as [`Order::slip_days`] computes it: the
/// projection against the promise, or the request before there is one.
macro_rules! slip_sql {
    () => {
        "coalesce(projected_delivery_date \
           - coalesce(promised_delivery_date, requested_delivery_date), 0)"
    };
}

/// ListOrders' filter on `$1`..`$4`.
macro_rules! list_filter_sql {
    () => {
        "($1::int IS NULL OR phase = $1) \
         AND ($2::text IS NULL OR customer = $2 OR customer_id = $2) \
         AND (NOT $3 OR at_risk) \
         AND (NOT $4 OR EXISTS (SELECT 1 FROM order_exceptions e \
                                WHERE e.order_id = orders.order_id AND NOT e.closed))"
    };
}

/// Up to `limit` orders matching `filter` after `cursor`: newest first, or
/// most days late first when `by_slip`.
pub async fn list_orders(
    conn: &mut PgConnection,
    filter: &ListFilter,
    by_slip: bool,
    cursor: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Order>> {
    const NEWEST: &str = concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE ",
        list_filter_sql!(),
        " AND ($6::timestamptz IS NULL OR (created_at, order_id) < ($6, $7::uuid)) \
         ORDER BY created_at DESC, order_id DESC \
         LIMIT $8"
    );
    const BY_SLIP: &str = concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE ",
        list_filter_sql!(),
        " AND ($6::timestamptz IS NULL \
              OR (",
        slip_sql!(),
        ", created_at, order_id) < ($5::int, $6, $7::uuid)) \
         ORDER BY ",
        slip_sql!(),
        " DESC, created_at DESC, order_id DESC \
         LIMIT $8"
    );
    let rows: Vec<OrderRow> = sqlx::query_as(if by_slip { BY_SLIP } else { NEWEST })
        .bind(filter.phase)
        .bind(filter.customer.as_deref())
        .bind(filter.at_risk_only)
        .bind(filter.exception_open_only)
        .bind(cursor.and_then(|c| c.slip))
        .bind(cursor.map(|c| c.created_at))
        .bind(cursor.map(|c| c.order_id))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    with_lines(conn, rows).await
}
