//! What one consumer run of MES events shares: each order's work orders,
//! locked and loaded once for the run instead of once per event, the work
//! centres' calendars read once, the stages reported on, stored in one
//! statement at the end of the run, and the events to announce, written to
//! the outbox in one statement after them.
//!
//! A burst of reports on one order (a count every few seconds from every
//! station) arrives as batches of the same order: the run applies each
//! report to the work order in hand
//! ([`apply_report`](crate::work_orders::store::apply_report)) and stores
//! each stage it touched once. A stage's progress is announced once a run,
//! as the run's last report on it left it: `WorkOrderProgressed` carries
//! the stage's running totals, so the reports before it say nothing the
//! last one does not. The announcements keep the order of their reports
//! (a stage reported again moves after the others), so the last one
//! carries the work order's latest progress and projected end.
//! Completions follow the progress they complete. An
//! equipment event re-plans work orders of any order, so the run stores
//! and announces what it holds before one and forgets the work orders it
//! loaded after it.

use std::collections::HashMap;

use gendan_messaging::{HandlerError, Outgoing, outbox};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::catalog;
use crate::schedule::Calendar;
use crate::work_orders::{WorkOrder, store};

#[derive(Default)]
pub(super) struct Run {
    pub(super) work_orders: LockedWorkOrders,
    pub(super) calendars: Calendars,
    /// The stages reported on, in the order first reported, each with its
    /// latest progress announcement (none for a start alone).
    touched: Vec<(StageKey, Option<Outgoing>)>,
    /// Other announcements (completions), in event order.
    pending: Vec<Outgoing>,
}

/// A stage of a locked work order: the order id it was loaded under, the
/// work order, the product and the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StageKey {
    pub(super) order_id: String,
    pub(super) work_order_id: Uuid,
    pub(super) product: String,
    pub(super) stage: String,
}

impl Run {
    /// Marks a stage as changed in hand, with its progress announcement
    /// when the report has one. A new announcement replaces the stage's
    /// earlier one and moves to the end: `WorkOrderProgressed` also carries
    /// the whole work order's progress and projected end, so the last one
    /// written must be the run's latest.
    pub(super) fn touch(&mut self, key: StageKey, progressed: Option<Outgoing>) {
        let earlier = self.touched.iter().position(|(touched, _)| *touched == key);
        match (earlier, progressed) {
            (Some(_), None) => {}
            (Some(index), Some(progressed)) => {
                self.touched.remove(index);
                self.touched.push((key, Some(progressed)));
            }
            (None, progressed) => self.touched.push((key, progressed)),
        }
    }

    pub(super) fn announce(&mut self, events: Vec<Outgoing>) {
        self.pending.extend(events);
    }

    /// Stores the stages the run touched, then writes its announcements
    /// to the outbox: each stage's progress, then the completions.
    pub(super) async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        let touched = std::mem::take(&mut self.touched);
        let stages: Vec<(&WorkOrder, &str, &str)> = touched
            .iter()
            .filter_map(|(key, _)| {
                let work_order = self.work_orders.get(&key.order_id, key.work_order_id)?;
                Some((work_order, key.product.as_str(), key.stage.as_str()))
            })
            .collect();
        debug_assert_eq!(stages.len(), touched.len(), "touched stages are in hand");
        store::save_reported(conn, &stages).await?;
        let mut events: Vec<Outgoing> = touched
            .into_iter()
            .filter_map(|(_, progressed)| progressed)
            .collect();
        events.append(&mut self.pending);
        outbox::write(conn, &events).await?;
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

    fn get(&self, order_id: &str, work_order_id: Uuid) -> Option<&WorkOrder> {
        self.by_order
            .get(order_id)?
            .iter()
            .find(|wo| wo.work_order_id == work_order_id)
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

#[cfg(test)]
mod tests {
    use gendan_messaging::Cause;
    use gendan_proto::v1::WorkOrderProgressed;
    use prost::Message as _;

    use super::*;

    fn key(stage: &str) -> StageKey {
        StageKey {
            order_id: "o-1".to_owned(),
            work_order_id: Uuid::nil(),
            product: "shirt".to_owned(),
            stage: stage.to_owned(),
        }
    }

    fn progressed(stage: &str, good_quantity: u32) -> Outgoing {
        let progressed = WorkOrderProgressed {
            order_id: "o-1".to_owned(),
            stage: stage.to_owned(),
            good_quantity,
            ..Default::default()
        };
        Outgoing::event("production", "o-1", &progressed, &Cause::root("o-1"))
    }

    fn announced(run: &Run) -> Vec<(String, u32)> {
        run.touched
            .iter()
            .filter_map(|(_, outgoing)| outgoing.as_ref())
            .map(|outgoing| {
                let p = WorkOrderProgressed::decode(outgoing.envelope.payload.as_slice()).unwrap();
                (p.stage, p.good_quantity)
            })
            .collect()
    }

    #[test]
    fn a_stage_reported_again_is_announced_once_and_last() {
        let mut run = Run::default();
        run.touch(key("cutting"), None);
        run.touch(key("cutting"), Some(progressed("cutting", 5)));
        run.touch(key("sewing"), Some(progressed("sewing", 2)));
        run.touch(key("cutting"), Some(progressed("cutting", 9)));
        // A start after a count changes nothing announced.
        run.touch(key("sewing"), None);
        assert_eq!(
            announced(&run),
            [("sewing".to_owned(), 2), ("cutting".to_owned(), 9)]
        );
        assert_eq!(run.touched.len(), 2);
    }
}
