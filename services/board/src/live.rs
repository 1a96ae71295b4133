//! Live updates: every event on `gendan.evt.>` (a core NATS subscription;
//! the board keeps no consumer state) becomes an [`Update`] on a broadcast
//! channel, and `/events` streams the updates to each browser as
//! server-sent events (`event: order`, JSON data), all of them or one
//! order's (`?order=<id>`).
//!
//! An update only says that something happened to an order; the page asks
//! for its live region again and renders what the services say now, so a
//! missed update costs nothing but a moment: a browser that falls behind
//! the channel gets one `lagged` update instead of what it missed, and
//! refreshes.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use gendan_proto::v1;
use prost::Message as _;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::forms::EventsQuery;
use crate::routes::AppState;
use crate::{Error, Result, view};

/// Updates held for browsers that are behind before they lag.
const CAPACITY: usize = 1024;
/// How often an idle event stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The type of the update sent to a browser that fell behind.
pub const LAGGED: &str = "lagged";

/// What a browser is told about one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Update {
    pub order_id: String,
    /// The envelope's type (`gendan.v1.Shipped`).
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339.
    pub occurred_at: String,
    pub source: String,
}

impl Update {
    /// The update of an envelope's bytes; `None` when they are not one.
    pub fn of(payload: &[u8]) -> Option<Self> {
        let envelope = v1::Envelope::decode(payload).ok()?;
        Some(Update {
            order_id: envelope.order_id,
            kind: envelope.r#type,
            occurred_at: view::rfc3339(envelope.occurred_at.as_ref()),
            source: envelope.source,
        })
    }

    fn lagged() -> Self {
        Update {
            order_id: String::new(),
            kind: LAGGED.to_owned(),
            occurred_at: String::new(),
            source: String::new(),
        }
    }

    /// Whether a browser following `order` (or every order) wants it.
    fn concerns(&self, order: Option<&str>) -> bool {
        self.kind == LAGGED || order.is_none_or(|order| order == self.order_id)
    }
}

/// The broadcast side: cheap to clone, one per process.
#[derive(Clone)]
pub struct Feed {
    sender: broadcast::Sender<Update>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        Feed { sender }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.sender.subscribe()
    }

    /// Sends `update` to every browser listening (none is fine).
    pub fn publish(&self, update: Update) {
        let _listeners = self.sender.send(update);
    }
}

/// Forwards every event of `events` to `feed` until `stop` fires or the
/// subscription ends (the connection closed for good), which stops the
/// board too.
pub async fn follow(
    mut events: async_nats::Subscriber,
    feed: Feed,
    stop: CancellationToken,
) -> Result<()> {
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            message = events.next() => message,
        };
        let Some(message) = message else {
            stop.cancel();
            return Err(Error::Feed("the NATS subscription ended".to_owned()));
        };
        match Update::of(&message.payload) {
            Some(update) => feed.publish(update),
            None => tracing::debug!(subject = %message.subject, "not an envelope; not forwarded"),
        }
    }
}

/// `GET /events`: the updates as server-sent events until the browser
/// leaves or the board stops.
pub async fn events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, axum::Error>> + Send + 'static>> {
    let order = query.validate()?;
    let stream = updates(state.feed.subscribe(), order, state.shutdown.clone());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn updates(
    receiver: broadcast::Receiver<Update>,
    order: Option<String>,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Event, axum::Error>> + Send + 'static {
    futures::stream::unfold(receiver, move |mut receiver| {
        let order = order.clone();
        async move {
            loop {
                let update = match receiver.recv().await {
                    Ok(update) => update,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "an event stream fell behind");
                        Update::lagged()
                    }
                    Err(RecvError::Closed) => return None,
                };
                if update.concerns(order.as_deref()) {
                    let event = Event::default().event("order").json_data(&update);
                    return Some((event, receiver));
                }
            }
        }
    })
    .take_until(shutdown.cancelled_owned())
}
