//! The SQL behind `WatchOrders` (see [`crate::watch`]): an order row
//! records the transaction that last changed it (`tracking_xid`, migration
//! 0108), and a watcher reads the rows changed since its cursor, only below
//! the oldest transaction still running.

use uuid::Uuid;

use super::{ListFilter, OrderRow, list_orders, with_lines};
use gendan_proto::v1::Order;
use sqlx::PgConnection;

/// Where a watcher of the orders list stands: after the order `order_id`
/// changed by transaction `xid` (`Uuid::nil()`: before every order that
/// transaction changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracking {
    pub xid: i64,
    pub order_id: Uuid,
}

/// The orders matching `filter`, newest first, at most `limit`, and where
/// a watcher that has seen them stands: at the oldest transaction still
/// running, which the snapshot they were read in may or may not show (a
/// change it did show is sent again; none is missed).
pub async fn watch_snapshot(
    conn: &mut PgConnection,
    filter: &ListFilter,
    limit: i64,
) -> sqlx::Result<(Vec<Order>, Tracking)> {
    let xmin = oldest_running(conn).await?;
    let orders = list_orders(conn, filter, false, None, limit).await?;
    Ok((
        orders,
        Tracking {
            xid: xmin,
            order_id: Uuid::nil(),
        },
    ))
}

/// The orders changed after `from` by transactions that have all ended, in
/// the order they changed, at most `limit`, and the position after them.
/// A transaction still running holds the position back until it ends, so
/// a change that commits late is still read.
pub async fn changed_since(
    conn: &mut PgConnection,
    from: Tracking,
    limit: i64,
) -> sqlx::Result<(Vec<Order>, Tracking)> {
    #[derive(sqlx::FromRow)]
    struct Changed {
        #[sqlx(flatten)]
        row: OrderRow,
        tracking: i64,
    }
    let xmin = oldest_running(conn).await?;
    let changed: Vec<Changed> = sqlx::query_as(concat!(
        "SELECT ",
        order_columns!(),
        ", tracking_xid::text::int8 AS tracking FROM orders \
         WHERE (tracking_xid, order_id) > ($1::text::xid8, $2) \
           AND tracking_xid < $3::text::xid8 \
         ORDER BY tracking_xid, order_id \
         LIMIT $4"
    ))
    .bind(from.xid.to_string())
    .bind(from.order_id)
    .bind(xmin.to_string())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let full = changed.len() as i64 >= limit;
    let next = match changed.last() {
        // More may follow in the same transaction: go on after the last.
        Some(last) if full => Tracking {
            xid: last.tracking,
            order_id: last.row.order_id,
        },
        // Everything below the oldest running transaction has been read.
        _ => Tracking {
            xid: xmin.max(from.xid),
            order_id: if xmin > from.xid {
                Uuid::nil()
            } else {
                from.order_id
            },
        },
    };
    let rows = changed.into_iter().map(|changed| changed.row).collect();
    Ok((with_lines(conn, rows).await?, next))
}

/// The id of the oldest transaction still running (the next one to start
/// when none is): every change below it has committed or never will.
async fn oldest_running(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8")
        .fetch_one(conn)
        .await
}
