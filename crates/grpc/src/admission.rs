//! Admission control: a service under more load than it can serve slows
//! down and then says so, instead of queueing without bound.
//!
//! Every request except health and reflection needs one of `max_in_flight`
//! permits. When none is free it waits in a queue of at most `max_queued`
//! requests, for at most `max_wait`. A request that finds the queue full,
//! or waits its time out, is answered at once with `Unavailable` and a
//! `grpc-retry-pushback-ms` hint, the gRPC way of saying "try again after".
//! Well-behaved callers (gendan's CLI and simulators) honour the hint and
//! back off with jitter.
//!
//! Why a gate in front of the handlers: each request needs a database
//! connection. Without the gate, a burst turns into a queue on the
//! connection pool. Every caller then waits its full acquire timeout and
//! fails with "pool timed out", and the work done meanwhile is wasted.
//! With `max_in_flight` near the pool size, the pool queue stays short, and
//! the excess is refused while it is still cheap to refuse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The metadata key of the retry hint (gRPC's retry pushback).
pub const RETRY_PUSHBACK: &str = "grpc-retry-pushback-ms";

/// How much work a server takes on at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests handled at the same time.
    pub max_in_flight: usize,
    /// Requests waiting for a turn; more are refused at once.
    pub max_queued: usize,
    /// How long a request waits for a turn before it is refused.
    pub max_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_in_flight: 32,
            max_queued: 256,
            max_wait: Duration::from_secs(2),
        }
    }
}

/// The shared gate: one per server, across all its connections.
#[derive(Debug, Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    limits: Limits,
}

impl Gate {
    pub fn new(limits: Limits) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            queued: Arc::new(AtomicUsize::new(0)),
            limits,
        }
    }

    /// A turn to run, or the refusal to send back.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, tonic::Status> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let waiting = Waiting::join(&self.queued);
        if waiting.ahead >= self.limits.max_queued {
            return Err(self.refusal("the queue is full"));
        }
        match tokio::time::timeout(self.limits.max_wait, self.permits.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(self.refusal("no turn came in time")),
        }
    }

    fn refusal(&self, why: &str) -> tonic::Status {
        // Long enough for the requests ahead to finish; callers add jitter.
        let pushback = self.limits.max_wait.as_millis().clamp(100, 5_000);
        let mut status = tonic::Status::unavailable(format!(
            "overloaded: {} requests in flight and {} waiting ({why}); retry after {pushback} ms",
            self.limits.max_in_flight,
            self.queued.load(Ordering::Relaxed),
        ));
        if let Ok(value) = pushback.to_string().parse() {
            status.metadata_mut().insert(RETRY_PUSHBACK, value);
        }
        status
    }
}

/// One place in the queue, given up when dropped.
struct Waiting<'a> {
    queued: &'a AtomicUsize,
    ahead: usize,
}

impl<'a> Waiting<'a> {
    fn join(queued: &'a AtomicUsize) -> Self {
        let ahead = queued.fetch_add(1, Ordering::AcqRel);
        Waiting { queued, ahead }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The hint in a refusal, if the server gave one.
pub fn retry_pushback(status: &tonic::Status) -> Option<Duration> {
    let millis: u64 = status
        .metadata()
        .get(RETRY_PUSHBACK)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_millis(millis))
}

/// Health and reflection always answer: an orchestrator must be able to
/// tell "busy" from "dead", and tools must be able to look.
fn exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.")
}

/// Server layer: `Server::builder().layer(AdmissionLayer::new(gate))`.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    gate: Gate,
}

impl AdmissionLayer {
    pub fn new(gate: Gate) -> Self {
        AdmissionLayer { gate }
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            gate: self.gate.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    gate: Gate,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, R> tower::Service<http::Request<B>> for Admission<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone is the one made ready for this call; the fresh clone
        // stays behind for the next (tower's usual swap).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        if exempt(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let gate = self.gate.clone();
        Box::pin(async move {
            match gate.admit().await {
                Ok(permit) => {
                    let response = inner.call(request).await;
                    drop(permit);
                    response
                }
                Err(refusal) => {
                    tracing::warn!(path = %request.uri().path(), "request refused: overloaded");
                    Ok(refusal.into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(in_flight: usize, queued: usize) -> Gate {
        Gate::new(Limits {
            max_in_flight: in_flight,
            max_queued: queued,
            max_wait: Duration::from_secs(2),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waits_for_a_turn_and_gets_it_when_one_ends() {
        let gate = gate(1, 1);
        let running = gate.admit().await.unwrap();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit().await.map(drop) }
        });
        tokio::task::yield_now().await;
        drop(running);
        waiting.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_refuses_at_once_with_a_retry_hint() {
        let gate = gate(1, 1);
        let _running = gate.admit().await.unwrap();
        let _waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit().await.map(drop) }
        });
        tokio::task::yield_now().await;
        let refused = gate.admit().await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable);
        assert!(refused.message().contains("the queue is full"), "{refused}");
        assert_eq!(retry_pushback(&refused), Some(Duration::from_secs(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_outlasts_its_limit_is_refused_and_leaves_the_queue() {
        let gate = gate(1, 4);
        let _running = gate.admit().await.unwrap();
        let refused = gate.admit().await.unwrap_err();
        assert!(
            refused.message().contains("no turn came in time"),
            "{refused}"
        );
        assert_eq!(gate.queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn health_and_reflection_pass_a_closed_gate() {
        use tower::{Layer, Service, ServiceExt};
        let gate = gate(1, 0);
        let _running = gate.admit().await.unwrap();
        let inner = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::from("served")))
        });
        let mut service = AdmissionLayer::new(gate).layer(inner);
        let call = |path: &'static str| http::Request::builder().uri(path).body(()).unwrap();
        let health = service
            .ready()
            .await
            .unwrap()
            .call(call("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        assert_eq!(health.body(), "served");
        let order = service
            .ready()
            .await
            .unwrap()
            .call(call("/gendan.v1.OrderService/GetOrder"))
            .await
            .unwrap();
        assert_eq!(
            order.headers().get("grpc-status").unwrap(),
            &(tonic::Code::Unavailable as i32).to_string()
        );
        assert!(order.headers().get(RETRY_PUSHBACK).is_some());
    }
}
