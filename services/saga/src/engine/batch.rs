//! Many events or timers, many orders, one load and one save.
//!
//! A consumer batch carries events of many orders, and the timer worker
//! finds many due timers at once. Handling them one at a time would lock,
//! load and save each order's saga once per event (some ten statements an
//! event). Here the whole run shares that work:
//! 1. every saga the run touches is locked and loaded at once, locks taken
//!    in order id order (`store::load_all`), so two runs that share orders
//!    wait for each other instead of deadlocking;
//! 2. each event (or timer) changes its saga in memory, in batch order, so
//!    an order's events are applied in stream order on the state the
//!    previous one left;
//! 3. every changed saga is saved in one statement per table
//!    (`store::save_all`), in the run's transaction.
//!
//! The invariants of one event at a time hold: one order's changes are
//! serialised by its row lock, and the effects commit with the inbox claims
//! of the run or not at all. A failing event fails the run at its position
//! (the consumer runs the batch again without it); a failing load or save
//! belongs to no event in particular ([`BatchFailure::Shared`]).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use gendan_messaging::{Batch, BatchFailure, HandlerError, Incoming};
use gendan_proto::v1;
use sqlx::PgConnection;

use super::{Engine, change_dated};
use crate::state::SagaState;
use crate::store;

/// A due timer: its order, its key (see [`Engine::on_timers`]) and the
/// order's trace.
pub struct DueTimer {
    pub order_id: String,
    pub timer: String,
    pub traceparent: Option<String>,
}

impl Engine {
    /// Handles one run of a consumer batch (see the module doc).
    pub async fn on_events(
        &self,
        conn: &mut PgConnection,
        batch: &Batch<'_>,
    ) -> Result<(), BatchFailure> {
        let messages = batch.messages();
        let order_ids = sorted_unique(
            messages
                .iter()
                .filter(|message| self.concerns_a_saga(message))
                .map(|message| message.order_id()),
        );
        let mut sagas = store::load_all(conn, &order_ids, true)
            .await
            .map_err(|err| BatchFailure::Shared(err.into()))?;
        let now = self.now();
        let mut changed = BTreeSet::new();
        for (position, message) in messages.iter().enumerate() {
            let folded = batch
                .span(message)
                .in_scope(|| self.fold(&mut sagas, message, now));
            match folded {
                Ok(Some(order_id)) => {
                    changed.insert(order_id);
                }
                Ok(None) => {}
                Err(err) => return Err(BatchFailure::Message(position, err)),
            }
        }
        save_changed(conn, &mut sagas, &changed)
            .await
            .map_err(|err| BatchFailure::Shared(err.into()))
    }

    /// Whether `message` may change (or start) a saga.
    fn concerns_a_saga(&self, message: &Incoming) -> bool {
        !message.order_id().is_empty() && self.reacts_to(message.type_name())
    }

    /// Applies one event to the sagas in hand; the order id of the saga it
    /// started or changed.
    fn fold(
        &self,
        sagas: &mut HashMap<String, SagaState>,
        incoming: &Incoming,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, HandlerError> {
        if incoming.is::<v1::OrderCreated>() {
            let created: v1::OrderCreated = incoming.payload()?;
            let order = created
                .order
                .ok_or_else(|| HandlerError::Rejected("OrderCreated without an order".into()))?;
            if sagas.contains_key(&order.order_id) {
                return Ok(None);
            }
            let saga = self.begin(order, incoming, now)?;
            let order_id = saga.order_id.clone();
            sagas.insert(order_id.clone(), saga);
            return Ok(Some(order_id));
        }
        if !self.concerns_a_saga(incoming) {
            return Ok(None);
        }
        let Some(saga) = sagas.get_mut(incoming.order_id()) else {
            // An amendment overtook the order's creation (redelivered, or
            // relayed first): orders has applied it, so it must not be
            // lost; it is tried again until the saga exists (and
            // dead-lettered with the reason if it never does). Any other
            // event for an order this coordinator never started (another
            // deployment's, a hand-made test event) has nothing to drive.
            if incoming.is::<v1::OrderAmended>() {
                return Err(HandlerError::Retry(format!(
                    "OrderAmended for order {} before its saga exists",
                    incoming.order_id()
                )));
            }
            return Ok(None);
        };
        change_dated(saga, incoming.traceparent.as_deref(), now, |saga| {
            self.react(saga, incoming, now)
        })?;
        Ok(Some(saga.order_id.clone()))
    }

    /// Fires due timers: a step's (`step`), a compensation's
    /// (`compensate:step`) or a decision's (`decide:step`), each in its
    /// order's trace; every saga they touch is loaded and saved once.
    pub async fn on_timers(&self, conn: &mut PgConnection, due: &[DueTimer]) -> crate::Result<()> {
        let order_ids = sorted_unique(due.iter().map(|timer| timer.order_id.as_str()));
        let mut sagas = store::load_all(conn, &order_ids, true).await?;
        let now = self.now();
        let mut changed = BTreeSet::new();
        for timer in due {
            let Some(saga) = sagas.get_mut(&timer.order_id) else {
                continue;
            };
            let span =
                tracing::info_span!("saga.timer", order_id = %timer.order_id, step = %timer.timer);
            if let Some(traceparent) = &timer.traceparent {
                gendan_telemetry::set_parent_from_traceparent(&span, traceparent);
            }
            span.in_scope(|| {
                change_dated(saga, None, now, |saga| {
                    self.timer_fired(saga, &timer.timer, now)
                })
            });
            changed.insert(timer.order_id.clone());
        }
        save_changed(conn, &mut sagas, &changed).await?;
        Ok(())
    }
}

fn sorted_unique<'a>(order_ids: impl Iterator<Item = &'a str>) -> Vec<String> {
    let unique: BTreeSet<&str> = order_ids.collect();
    unique.into_iter().map(str::to_owned).collect()
}

/// Saves the sagas whose order ids are in `changed`, in order id order.
async fn save_changed(
    conn: &mut PgConnection,
    sagas: &mut HashMap<String, SagaState>,
    changed: &BTreeSet<String>,
) -> sqlx::Result<()> {
    let mut to_save: Vec<&mut SagaState> = sagas
        .iter_mut()
        .filter(|(order_id, _)| changed.contains(*order_id))
        .map(|(_, saga)| saga)
        .collect();
    to_save.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    store::save_all(conn, &mut to_save).await
}
