//! Prometheus metrics for every gendan process (ADR 0019).
//!
//! Crates record through the `metrics` facade (`metrics::counter!`,
//! `gauge!`, `histogram!`): the gRPC layer in `gendan-grpc` (requests,
//! codes, durations per method), the consumers and the outbox relay in
//! `gendan-messaging` (messages by outcome, batch sizes and times, pending
//! messages), and the runtime's sampler (database pool, outbox backlog).
//! Nothing is recorded until a process installs the recorder.
//!
//! - [`handle`] installs the process's Prometheus recorder once and returns
//!   it; every series carries the labels its recorder call gave (a
//!   `service` or a `consumer`), so the all-in-one `gendan up` serves every
//!   service's series from one registry.
//! - [`Admin`] is the admin HTTP endpoint: `/metrics` (text exposition
//!   format) and `/healthz`. Each service binary serves it on
//!   `GENDAN_<SERVICE>__METRICS_ADDR` ([`addr_for`]), `gendan up` on
//!   `GENDAN_METRICS_ADDR`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("metrics endpoint: cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("metrics endpoint: {0}")]
    Serve(std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Durations are histograms with these bounds, in seconds: from a fast
/// statement to a slow batch.
const SECONDS_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Batch sizes, in messages.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. Installing fails only
/// when another recorder was installed first (a test harness); that one
/// then records and this handle renders nothing, which is logged.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Suffix("_batch_size".to_owned()),
                    &BATCH_BUCKETS,
                )
            })
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(err) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %err, "another metrics recorder is installed; /metrics will be empty");
        }
        handle
    })
}

/// `GENDAN_<SERVICE>__METRICS_ADDR`, else `default`.
pub fn addr_for(service: &str, default: &str) -> String {
    let variable = format!("GENDAN_{}__METRICS_ADDR", service.to_ascii_uppercase());
    gendan_settings::string(&variable, default)
}

/// The admin endpoint, bound, ready to serve.
#[derive(Debug)]
pub struct Admin {
    listener: TcpListener,
    port: u16,
}

impl Admin {
    /// Binds `addr` (`127.0.0.1:0` picks a free port) and installs the
    /// recorder, so everything recorded from now on is served.
    pub async fn bind(addr: &str) -> Result<Self> {
        let bind_error = |source| Error::Bind {
            addr: addr.to_owned(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        handle();
        Ok(Admin { listener, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves `/metrics` and `/healthz` until `cancel` fires, and runs the
    /// recorder's upkeep (draining histogram buffers) meanwhile.
    pub async fn serve(self, cancel: CancellationToken) -> Result<()> {
        let upkeep = tokio::spawn(upkeep(cancel.clone()));
        let router = Router::new()
            .route("/metrics", get(|| async { handle().render() }))
            .route("/healthz", get(|| async { "ok" }));
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await
            .map_err(Error::Serve);
        upkeep.abort();
        served
    }
}

/// Binds `addr` and serves the endpoint in the background until `cancel`
/// fires; returns the bound port. A service binary calls it before it
/// builds its application, so its first requests are counted.
pub async fn spawn(addr: &str, cancel: &CancellationToken) -> Result<u16> {
    let admin = Admin::bind(addr).await?;
    let port = admin.port();
    let cancel = cancel.clone();
    tokio::spawn(async move {
        if let Err(err) = admin.serve(cancel).await {
            tracing::error!(error = %err, "metrics endpoint stopped");
        }
    });
    Ok(port)
}

async fn upkeep(cancel: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = every.tick() => handle().run_upkeep(),
        }
    }
}
