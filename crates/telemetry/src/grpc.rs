//! Trace context across gRPC: a client interceptor that writes `traceparent`
//! into request metadata, and a server layer that reads it and runs the
//! handler inside a span parented to the caller's.

use std::task::{Context, Poll};

use tracing::Instrument;

use crate::propagation::{current_traceparent, set_parent_from_traceparent};

/// Client interceptor: `ServiceClient::with_interceptor(channel, inject_trace_context)`.
pub fn inject_trace_context(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    if request.metadata().get("traceparent").is_none()
        && let Some(traceparent) = current_traceparent()
        && let Ok(value) = traceparent.parse()
    {
        request.metadata_mut().insert("traceparent", value);
    }
    Ok(request)
}

/// Server layer: `Server::builder().layer(TraceContextLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer;

impl<S> tower::Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct TraceContextService<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for TraceContextService<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let span = tracing::info_span!("grpc.server", otel.name = %path, rpc.system = "grpc");
        if let Some(traceparent) = request
            .headers()
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
        {
            set_parent_from_traceparent(&span, traceparent);
        }
        self.inner.call(request).instrument(span)
    }
}
