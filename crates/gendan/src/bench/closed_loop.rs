//! The closed loop: `concurrency` orders open at a time. The loop sends
//! `CreateOrder` until that many are open, then waits; each `SagaCompleted`
//! read closes its order and makes room for the next, until every order
//! was created; then it waits for the rest, or for the deadline.
//!
//! An order counts as open from the moment its `CreateOrder` is sent, so
//! the bound holds while the call is on its way; its completion time runs
//! from that moment to the moment the bench reads its `SagaCompleted`. A
//! `CreateOrder` that fails transiently is sent again with the same request
//! id (the orders service answers with the order it already has).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::consumer::pull::{self, MessagesErrorKind};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use gendan_proto::v1::{CreateOrderRequest, Envelope};
use prost::Message as _;

use crate::retry;
use crate::sim::{Clients, OrdersClient};

/// How a closed-loop run went.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// When the first `CreateOrder` was sent.
    pub(super) first_create: Option<Instant>,
    /// When the last `SagaCompleted` was read.
    pub(super) last_completion: Option<Instant>,
    /// Per completed order, sending `CreateOrder` → reading `SagaCompleted`.
    pub(super) completion: Vec<Duration>,
    /// Whether the deadline passed first.
    pub(super) timed_out: bool,
    /// Orders created and not completed (when the deadline passed).
    pub(super) unfinished: Vec<String>,
    /// Orders never created, or whose `CreateOrder` had not answered, when
    /// the deadline passed.
    pub(super) not_created: usize,
}

impl Outcome {
    /// From the first create to the last completion.
    pub(super) fn wall_time(&self) -> Duration {
        match (self.first_create, self.last_completion) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        }
    }
}

/// Runs `orders` through the loop; `completions` is the `SagaCompleted`
/// stream, opened before the first order exists.
pub(super) async fn drive(
    clients: &Clients,
    completions: &mut pull::Stream,
    orders: Vec<CreateOrderRequest>,
    concurrency: usize,
    deadline: Instant,
) -> anyhow::Result<Outcome> {
    let concurrency = concurrency.max(1);
    let mut requests = orders.into_iter();
    let mut creating = FuturesUnordered::new();
    let mut open: HashMap<String, Instant> = HashMap::new();
    // Completions read before their order's CreateOrder answer: the order
    // is done as soon as its id is known.
    let mut early: HashSet<String> = HashSet::new();
    let mut outcome = Outcome::default();
    loop {
        while open.len() + creating.len() < concurrency {
            let Some(request) = requests.next() else {
                break;
            };
            let sent = Instant::now();
            outcome.first_create.get_or_insert(sent);
            creating.push(create(clients.orders.clone(), request, sent));
        }
        if open.is_empty() && creating.is_empty() {
            break;
        }
        tokio::select! {
            created = creating.next(), if !creating.is_empty() => {
                let Some(created) = created else { continue };
                let (order_id, sent) = created?;
                if early.remove(&order_id) {
                    let now = Instant::now();
                    outcome.completion.push(now.saturating_duration_since(sent));
                    outcome.last_completion = Some(now);
                } else {
                    open.insert(order_id, sent);
                }
            }
            message = completions.next() => {
                let message = match message.context("the SagaCompleted stream ended")? {
                    Ok(message) => message,
                    // A server too busy to send its idle heartbeat in time:
                    // the stream goes on where it was.
                    Err(err) if err.kind() == MessagesErrorKind::MissingHeartbeat => {
                        tracing::warn!(error = %err, "SagaCompleted stream missed a heartbeat");
                        continue;
                    }
                    Err(err) => anyhow::bail!("reading SagaCompleted: {err}"),
                };
                let Ok(envelope) = Envelope::decode(message.payload.as_ref()) else {
                    continue;
                };
                if let Some(sent) = open.remove(&envelope.order_id) {
                    let now = Instant::now();
                    outcome.completion.push(now.saturating_duration_since(sent));
                    outcome.last_completion = Some(now);
                } else if !creating.is_empty() {
                    early.insert(envelope.order_id);
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                outcome.timed_out = true;
                outcome.unfinished = std::mem::take(&mut open).into_keys().collect();
                outcome.unfinished.sort();
                outcome.not_created = creating.len() + requests.len();
                break;
            }
        }
    }
    outcome.completion.sort();
    Ok(outcome)
}

/// Sends one `CreateOrder`; the order's id and when it was first sent.
async fn create(
    orders: OrdersClient,
    request: CreateOrderRequest,
    sent: Instant,
) -> anyhow::Result<(String, Instant)> {
    let response = retry::transient(&[], retry::CLI_ATTEMPTS, || {
        let mut orders = orders.clone();
        let request = request.clone();
        async move { orders.create_order(request).await }
    })
    .await
    .with_context(|| format!("creating sample order {}", request.client_request_id))?;
    let order_id = response
        .order
        .map(|order| order.order_id)
        .context("CreateOrder answered without the order")?;
    Ok((order_id, sent))
}
