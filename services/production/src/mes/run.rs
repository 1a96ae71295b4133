//! What one consumer run of MES events shares: each order's work orders,
//! locked and loaded once for the run instead of once per event, the work
//! centres' calendars read once, and the events to announce, written to the
//! outbox in one statement at the end of the run.
//!
//! A burst of reports on one order (a count every few seconds from every
//! station) arrives as batches of the same order: the run holds the
//! order's work orders from its first report to its last, and
//! [`report_stage`](crate::work_orders::store::report_stage) keeps the copy
//! in hand equal to the rows it updates. An equipment event re-plans work
//! orders of any order, so the run announces what it holds before one and
//! forgets the work orders it loaded after it.

use std::collections::HashMap;

use gendan_messaging::{HandlerError, Outgoing, outbox};
use sqlx::PgConnection;

use crate::catalog;
use crate::schedule::Calendar;
use crate::work_orders::{WorkOrder, store};

#[derive(Default)]
pub(super) struct Run {
    pub(super) work_orders: LockedWorkOrders,
    pub(super) calendars: Calendars,
    /// Announcements of the run's events so far, in event order.
    pending: Vec<Outgoing>,
}

impl Run {
    pub(super) fn announce(&mut self, events: Vec<Outgoing>) {
        self.pending.extend(events);
    }

    /// Writes what the run announced so far to the outbox.
    pub(super) async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        outbox::write(conn, &self.pending).await?;
        self.pending.clear();
        Ok(())
    }
}

/// Each order's work orders, row-locked for the rest of the transaction the
/// first time the run needs them.
#[derive(Default)]
pub(super) struct LockedWorkOrders {
    by_order: HashMap<String, Vec<WorkOrder>>,
}

impl LockedWorkOrders {
    pub(super) async fn of_order(
        &mut self,
        conn: &mut PgConnection,
        order_id: &str,
    ) -> Result<&mut Vec<WorkOrder>, HandlerError> {
        if !self.by_order.contains_key(order_id) {
            let all = store::all_of(conn, order_id, true).await?;
            self.by_order.insert(order_id.to_owned(), all);
        }
        Ok(self.by_order.get_mut(order_id).expect("loaded just above"))
    }

    /// Puts back the run's copy of `work_order` (loaded by
    /// [`of_order`](Self::of_order) for `order_id`) as a report left it.
    pub(super) fn put(&mut self, order_id: &str, work_order: WorkOrder) {
        let copy = self.by_order.get_mut(order_id).and_then(|all| {
            all.iter_mut()
                .find(|wo| wo.work_order_id == work_order.work_order_id)
        });
        debug_assert!(copy.is_some(), "a work order the run locked");
        if let Some(copy) = copy {
            *copy = work_order;
        }
    }

    /// Forgets every copy: the rows may have changed under another path
    /// (the locks stay with the transaction).
    pub(super) fn forget(&mut self) {
        self.by_order.clear();
    }
}

/// Work centre calendars read once a run: they change only through the
/// master-data API, never by an MES event.
#[derive(Default)]
pub(super) struct Calendars {
    by_code: HashMap<String, Calendar>,
}

impl Calendars {
    pub(super) async fn of(
        &mut self,
        conn: &mut PgConnection,
        codes: &[String],
    ) -> Result<HashMap<String, Calendar>, HandlerError> {
        let missing: Vec<String> = codes
            .iter()
            .filter(|code| !self.by_code.contains_key(*code))
            .cloned()
            .collect();
        if !missing.is_empty() {
            self.by_code
                .extend(catalog::calendars_of(conn, &missing).await?);
        }
        Ok(codes
            .iter()
            .filter_map(|code| Some((code.clone(), self.by_code.get(code)?.clone())))
            .collect())
    }
}
