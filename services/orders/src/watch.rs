//! `WatchOrders`: the orders list as it changes, for department programs
//! and the board that want live data without polling `ListOrders`.
//!
//! A watch first sends the orders matching its filter as they are (newest
//! first, at most [`SNAPSHOT_LIMIT`], each `initial`), then one change
//! marked `caught_up`, then every change to an order that matches, as it
//! commits. An order that matched and no longer does (it left the phase,
//! it is no longer at risk) is sent once more with `left_filter`. Every
//! change carries a `resume_token`: a watch started again with it sends no
//! snapshot and goes on with the changes after it, so a client that lost
//! its connection misses nothing.
//!
//! Each watch follows the table itself ([`store::changed_since`]) every
//! poll interval, from its own cursor: the transaction ids of the changes,
//! read only below the oldest transaction still running, so a change that
//! commits late is never skipped and every replica sees every change,
//! whichever replica's consumer made it. A watch that no client reads any
//! more ends at its next poll; a replica serves at most `max_watchers` at
//! once and refuses more with `ResourceExhausted`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use gendan_grpc::FieldError;
use gendan_proto::v1::{Order, OrderChange, Phase, WatchOrdersRequest};
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use uuid::Uuid;

use crate::store::{self, ListFilter, Tracking};
use crate::{Error, Result};

/// Orders a watch's first snapshot sends at most (the newest).
pub const SNAPSHOT_LIMIT: i64 = 500;
/// Changes read per poll at most; more are read at the next poll at once.
const CHANGES_PER_READ: i64 = 1000;
/// Changes buffered for a slow client before the watch waits for it.
const BUFFERED: usize = 256;
/// The longest a customer filter may be (a name or an id).
const MAX_CUSTOMER_LEN: usize = 200;

/// How watches poll and how many a replica serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSettings {
    pub poll: Duration,
    pub max_watchers: usize,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            poll: Duration::from_millis(250),
            max_watchers: 64,
        }
    }
}

impl WatchSettings {
    /// The defaults with `GENDAN_ORDERS__WATCH_POLL_MS` (10..=60000) and
    /// `GENDAN_ORDERS__MAX_WATCHERS` (1..=10000) when set.
    pub fn from_env() -> std::result::Result<Self, gendan_settings::Error> {
        let defaults = WatchSettings::default();
        Ok(WatchSettings {
            poll: Duration::from_millis(gendan_settings::bounded(
                "GENDAN_ORDERS__WATCH_POLL_MS",
                defaults.poll.as_millis() as u64,
                10,
                60_000,
            )?),
            max_watchers: gendan_settings::bounded(
                "GENDAN_ORDERS__MAX_WATCHERS",
                defaults.max_watchers,
                1,
                10_000,
            )?,
        })
    }
}

/// The watches of one replica.
#[derive(Debug, Clone)]
pub struct Watches {
    pool: PgPool,
    poll: Duration,
    slots: Arc<Semaphore>,
}

impl Watches {
    pub fn new(pool: PgPool, settings: WatchSettings) -> Self {
        Watches {
            pool,
            poll: settings.poll,
            slots: Arc::new(Semaphore::new(settings.max_watchers)),
        }
    }

    /// Starts a watch of `request`: its changes, as a stream.
    pub fn start(
        &self,
        request: &WatchOrdersRequest,
    ) -> Result<ReceiverStream<std::result::Result<OrderChange, Status>>> {
        let filter = filter_of(request)?;
        let resume = match request.resume_token.trim() {
            "" => None,
            token => Some(decode(token).ok_or_else(|| {
                FieldError::new(
                    "resume_token",
                    "is not a token a watch gave (send it back as it came)",
                )
            })?),
        };
        let slot = self.slots.clone().try_acquire_owned().map_err(|_| {
            Error::Overloaded("as many order watches as this replica serves are open".into())
        })?;
        let (sender, receiver) = mpsc::channel(BUFFERED);
        let watch = Watch {
            pool: self.pool.clone(),
            poll: self.poll,
            filter,
            sent: HashSet::new(),
            sender,
        };
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(err) = watch.run(resume).await {
                tracing::warn!(error = %err, "order watch ended");
            }
        });
        Ok(ReceiverStream::new(receiver))
    }
}

struct Watch {
    pool: PgPool,
    poll: Duration,
    filter: ListFilter,
    /// The orders this watch has sent as matching: told when they leave.
    sent: HashSet<String>,
    sender: mpsc::Sender<std::result::Result<OrderChange, Status>>,
}

/// Why a watch stopped: its client went away, or the database failed it
/// (the client is told and may resume).
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("the client went away")]
    ClientGone,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Watch {
    async fn run(mut self, resume: Option<Tracking>) -> std::result::Result<(), Stop> {
        let result = self.follow(resume).await;
        if let Err(Stop::Database(err)) = &result {
            // The client can resume from the last token it got.
            let status = Status::unavailable(format!("the order watch stopped: {err}"));
            let _ = self.sender.send(Err(status)).await;
        }
        match result {
            Err(Stop::ClientGone) => Ok(()),
            other => other,
        }
    }

    async fn follow(&mut self, resume: Option<Tracking>) -> std::result::Result<(), Stop> {
        let mut cursor = match resume {
            Some(cursor) => cursor,
            None => {
                let mut conn = self.pool.acquire().await?;
                let (orders, cursor) =
                    store::watch_snapshot(&mut conn, &self.filter, SNAPSHOT_LIMIT).await?;
                drop(conn);
                let token = encode(cursor);
                for order in orders {
                    self.sent.insert(order.order_id.clone());
                    self.send(change(Some(order), &token, true, false, false))
                        .await?;
                }
                cursor
            }
        };
        self.send(change(None, &encode(cursor), false, true, false))
            .await?;
        loop {
            tokio::select! {
                _ = self.sender.closed() => return Err(Stop::ClientGone),
                _ = tokio::time::sleep(self.poll) => {}
            }
            loop {
                let mut conn = self.pool.acquire().await?;
                let (orders, next) =
                    store::changed_since(&mut conn, cursor, CHANGES_PER_READ).await?;
                drop(conn);
                let read = orders.len() as i64;
                let token = encode(next);
                for order in orders {
                    self.forward(order, &token).await?;
                }
                cursor = next;
                if read < CHANGES_PER_READ {
                    break;
                }
            }
        }
    }

    /// Sends `order` if it matches, or once more as leaving if it matched.
    async fn forward(&mut self, order: Order, token: &str) -> std::result::Result<(), Stop> {
        if matches(&self.filter, &order) {
            self.sent.insert(order.order_id.clone());
            return self
                .send(change(Some(order), token, false, false, false))
                .await;
        }
        if self.sent.remove(&order.order_id) {
            return self
                .send(change(Some(order), token, false, false, true))
                .await;
        }
        Ok(())
    }

    async fn send(&self, change: OrderChange) -> std::result::Result<(), Stop> {
        self.sender
            .send(Ok(change))
            .await
            .map_err(|_| Stop::ClientGone)
    }
}

fn change(
    order: Option<Order>,
    token: &str,
    initial: bool,
    caught_up: bool,
    left_filter: bool,
) -> OrderChange {
    OrderChange {
        order,
        resume_token: token.to_owned(),
        initial,
        caught_up,
        left_filter,
    }
}

/// The request's filter, as ListOrders reads it.
fn filter_of(request: &WatchOrdersRequest) -> Result<ListFilter> {
    list_filter(request.phase, &request.customer, request.at_risk_only)
}

/// ListOrders' and WatchOrders' filter: a known phase or none, a customer
/// (id or name) of at most [`MAX_CUSTOMER_LEN`] characters or none.
pub(crate) fn list_filter(phase: i32, customer: &str, at_risk_only: bool) -> Result<ListFilter> {
    let phase = match Phase::try_from(phase) {
        Ok(Phase::Unspecified) => None,
        Ok(phase) => Some(phase as i32),
        Err(_) => {
            return Err(FieldError::new("phase", format!("{phase} is not a known phase")).into());
        }
    };
    let customer = customer.trim();
    if customer.chars().count() > MAX_CUSTOMER_LEN {
        return Err(FieldError::new(
            "customer",
            format!("must be at most {MAX_CUSTOMER_LEN} characters"),
        )
        .into());
    }
    Ok(ListFilter {
        phase,
        customer: Some(customer)
            .filter(|customer| !customer.is_empty())
            .map(str::to_owned),
        at_risk_only,
        exception_open_only: false,
    })
}

/// Whether `order` belongs in a list filtered by `filter` (ListOrders'
/// rule, in memory).
fn matches(filter: &ListFilter, order: &Order) -> bool {
    filter.phase.is_none_or(|phase| order.phase == phase)
        && filter
            .customer
            .as_deref()
            .is_none_or(|customer| order.customer == customer || order.customer_id == customer)
        && (!filter.at_risk_only || order.at_risk)
        && (!filter.exception_open_only || !order.open_exceptions.is_empty())
}

fn encode(tracking: Tracking) -> String {
    format!("{}.{}", tracking.xid, tracking.order_id.simple())
}

fn decode(token: &str) -> Option<Tracking> {
    let (xid, order_id) = token.split_once('.')?;
    let xid: i64 = xid.parse().ok().filter(|xid| *xid >= 0)?;
    let order_id = Uuid::try_parse(order_id).ok()?;
    Some(Tracking { xid, order_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_and_anything_else_is_refused() {
        let tracking = Tracking {
            xid: 4_294_967_301,
            order_id: Uuid::now_v7(),
        };
        assert_eq!(decode(&encode(tracking)), Some(tracking));
        for bad in [
            "",
            "12",
            "x.y",
            "-1.00000000000000000000000000000000",
            "1.zz",
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_filter_matches_as_list_orders_does() {
        let order = Order {
            order_id: "o".into(),
            customer: "Acme".into(),
            customer_id: "CUST-1".into(),
            phase: Phase::Production as i32,
            at_risk: false,
            ..Default::default()
        };
        let filter = |phase: Option<Phase>, customer: Option<&str>, at_risk_only| ListFilter {
            phase: phase.map(|p| p as i32),
            customer: customer.map(str::to_owned),
            at_risk_only,
            exception_open_only: false,
        };
        assert!(matches(&filter(None, None, false), &order));
        assert!(matches(
            &filter(Some(Phase::Production), Some("CUST-1"), false),
            &order
        ));
        assert!(matches(&filter(None, Some("Acme"), false), &order));
        assert!(!matches(&filter(Some(Phase::Review), None, false), &order));
        assert!(!matches(&filter(None, Some("acme"), false), &order));
        assert!(!matches(&filter(None, None, true), &order));
    }
}
