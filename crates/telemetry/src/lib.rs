//! Logs, traces and trace-context propagation for every gendan process.
//!
//! [`init`] installs one `tracing` subscriber: an env filter (`RUST_LOG`), a log
//! format chosen by `GENDAN_LOG_FORMAT` (`pretty`, `compact` or `json`), and an
//! OpenTelemetry layer. Spans always get W3C trace and span ids, so trace ids
//! can be recorded on timelines and saga steps; they are exported over OTLP/gRPC
//! only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Dropping the returned
//! [`Guard`] flushes the exporter.
//!
//! [`propagation`] moves the current trace context in and out of the places it
//! travels: `traceparent` strings stored in outbox rows, NATS message headers,
//! and gRPC metadata ([`grpc`]).

pub mod grpc;
pub mod propagation;

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use propagation::{
    current_traceparent, link_traceparent, set_parent_from_traceparent, trace_id_of,
    traceparent_of_span,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Flushes and shuts down the trace exporter when dropped.
#[must_use = "dropping the guard shuts the exporter down"]
pub struct Guard {
    provider: SdkTracerProvider,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Errors here mean the collector is gone; nothing useful is left to do.
        let _ = self.provider.shutdown();
    }
}

/// Log line format, from `GENDAN_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Compact,
    Json,
}

impl LogFormat {
    pub fn from_env() -> Self {
        match std::env::var("GENDAN_LOG_FORMAT").as_deref() {
            Ok("json") => LogFormat::Json,
            Ok("pretty") => LogFormat::Pretty,
            _ => LogFormat::Compact,
        }
    }
}

/// Installs the global subscriber and propagator for `service_name`.
pub fn init(service_name: &str) -> Result<Guard> {
    init_with(service_name, LogFormat::from_env(), DEFAULT_FILTER)
}

/// Service logs at info, without the chatter of the database driver's
/// notices and the NATS client's connection events.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,async_nats=warn";

/// Like [`init`] with an explicit format and a default filter used when
/// `RUST_LOG` is not set.
pub fn init_with(service_name: &str, format: LogFormat, default_filter: &str) -> Result<Guard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|err| Error::Exporter(err.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer("gendan");
    opentelemetry::global::set_tracer_provider(provider.clone());

    // The log filter applies to log output only: spans feed trace ids to
    // timelines and saga steps even when logs are quiet, so the trace layer
    // has its own filter (`GENDAN_TRACE_FILTER`, default `info`).
    let log_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let trace_filter =
        EnvFilter::try_from_env("GENDAN_TRACE_FILTER").unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr, so a command's own output (tables, JSON) stays
    // clean on stdout; colours only on a terminal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let base = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let fmt_layer = match format {
        LogFormat::Json => base.json().with_current_span(true).boxed(),
        LogFormat::Pretty => base.pretty().boxed(),
        LogFormat::Compact => base.compact().boxed(),
    };
    tracing_subscriber::registry()
        .with(fmt_layer.with_filter(log_filter))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(trace_filter),
        )
        .try_init()
        .map_err(|_| Error::AlreadyInstalled)?;
    Ok(Guard { provider })
}

/// Installs telemetry once per test process; later calls do nothing.
///
/// Tests need real trace ids (they assert one order keeps one trace id across
/// hops), so this is the full subscriber with a `warn` default filter.
pub fn init_for_tests() {
    static GUARD: OnceLock<Option<Guard>> = OnceLock::new();
    GUARD.get_or_init(|| init_with("gendan-test", LogFormat::Compact, "warn").ok());
}
