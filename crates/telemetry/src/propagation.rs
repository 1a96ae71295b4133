//! W3C trace context in and out of spans, as `traceparent` strings and NATS
//! headers.
//!
//! A `traceparent` string is how context crosses every boundary we own: it is
//! stored with an outbox row (so the relay can publish the event under the
//! span that wrote it), put in the NATS `traceparent` header, and read back by
//! consumers to parent their handling span.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `traceparent` of the current span, if it carries a valid context.
pub fn current_traceparent() -> Option<String> {
    traceparent_of_span(&tracing::Span::current())
}

/// `traceparent` of `span`, if it carries a valid context.
pub fn traceparent_of_span(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier)
    });
    carrier.remove("traceparent")
}

/// Makes `traceparent` the remote parent of `span`. Invalid or empty input
/// leaves the span as a new root, which is the right thing for a message from
/// a system that does not trace.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    if trace_id_of(traceparent).is_none() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    // Fails only when the span is already closed or has no otel layer.
    let _ = span.set_parent(context);
}

/// Links `span` to the context in `traceparent` (a cause in another trace)
/// without making it the parent.
pub fn link_traceparent(span: &tracing::Span, traceparent: &str) {
    if trace_id_of(traceparent).is_none() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    span.add_link(context.span().span_context().clone());
}

/// The 32-hex-digit trace id inside a `traceparent` (`00-<trace>-<span>-<flags>`).
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (Some(version), Some(trace_id), Some(span_id), Some(_flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && hex(trace_id, 32)
        && hex(span_id, 16)
        && trace_id.bytes().any(|b| b != b'0');
    valid.then_some(trace_id)
}

/// Adapts NATS headers to the OpenTelemetry carrier traits.
pub struct NatsHeaders<'a>(pub &'a mut async_nats::HeaderMap);

impl Injector for NatsHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

/// Read-only view of NATS headers for extraction.
pub struct NatsHeadersRef<'a>(pub &'a async_nats::HeaderMap);

impl Extractor for NatsHeadersRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_is_read_from_a_valid_traceparent_only() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id_of(tp), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(trace_id_of(""), None);
        assert_eq!(
            trace_id_of("00-0000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(
            trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id_of("garbage"), None);
    }
}
