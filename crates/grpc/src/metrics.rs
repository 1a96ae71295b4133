//! RED metrics per gRPC method: every request counted with its code, and
//! its duration, from the server's side.
//!
//! | series | labels |
//! | --- | --- |
//! | `gendan_grpc_requests_total` (counter) | `service`, `method`, `code` |
//! | `gendan_grpc_request_duration_seconds` (histogram) | `service`, `method` |
//!
//! The code is the `grpc-status` of the response head: a handler's error is
//! answered trailers-only, with the code in the head; a success carries its
//! status in the trailers and counts as `OK`. (A stream that fails after
//! its first message is counted `OK`: its code is in trailers this layer
//! does not wait for.) Health and reflection are counted like any method; a
//! path nothing serves (`Unimplemented`) is counted as `unknown`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Server layer: `Server::builder().layer(MetricsLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metered { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, R> tower::Service<http::Request<B>> for Metered<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    R: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let (service, method) = service_and_method(request.uri().path());
        Box::pin(async move {
            let started = Instant::now();
            let response = inner.call(request).await;
            let code = match &response {
                Ok(response) => code_name(response.headers()),
                // The transport failed the call: no status reached the client.
                Err(_) => "Unavailable",
            };
            // A path no service serves is the client's text: counted under
            // one name, so no caller can grow the registry without bound.
            let (service, method) = if code == "Unimplemented" {
                ("unknown".to_owned(), "unknown".to_owned())
            } else {
                (service, method)
            };
            metrics::counter!(
                "gendan_grpc_requests_total",
                "service" => service.clone(),
                "method" => method.clone(),
                "code" => code,
            )
            .increment(1);
            metrics::histogram!(
                "gendan_grpc_request_duration_seconds",
                "service" => service,
                "method" => method,
            )
            .record(started.elapsed().as_secs_f64());
            response
        })
    }
}

/// `/gendan.v1.OrderService/CreateOrder` → (`gendan.v1.OrderService`,
/// `CreateOrder`); anything else is counted under `unknown`.
fn service_and_method(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    match (parts.next(), parts.next()) {
        (Some(service), Some(method)) if !service.is_empty() && !method.is_empty() => {
            (service.to_owned(), method.to_owned())
        }
        _ => ("unknown".to_owned(), "unknown".to_owned()),
    }
}

/// The code of a response head, by its name (`OK`, `InvalidArgument`, ...).
fn code_name(headers: &http::HeaderMap) -> &'static str {
    let number = headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<i32>().ok())
        .unwrap_or(0);
    match tonic::Code::from_i32(number) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "Cancelled",
        tonic::Code::Unknown => "Unknown",
        tonic::Code::InvalidArgument => "InvalidArgument",
        tonic::Code::DeadlineExceeded => "DeadlineExceeded",
        tonic::Code::NotFound => "NotFound",
        tonic::Code::AlreadyExists => "AlreadyExists",
        tonic::Code::PermissionDenied => "PermissionDenied",
        tonic::Code::ResourceExhausted => "ResourceExhausted",
        tonic::Code::FailedPrecondition => "FailedPrecondition",
        tonic::Code::Aborted => "Aborted",
        tonic::Code::OutOfRange => "OutOfRange",
        tonic::Code::Unimplemented => "Unimplemented",
        tonic::Code::Internal => "Internal",
        tonic::Code::Unavailable => "Unavailable",
        tonic::Code::DataLoss => "DataLoss",
        tonic::Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_codes_are_named() {
        assert_eq!(
            service_and_method("/gendan.v1.OrderService/CreateOrder"),
            (
                "gendan.v1.OrderService".to_owned(),
                "CreateOrder".to_owned()
            )
        );
        assert_eq!(
            service_and_method("/"),
            ("unknown".to_owned(), "unknown".to_owned())
        );
        let mut headers = http::HeaderMap::new();
        assert_eq!(code_name(&headers), "OK");
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        assert_eq!(code_name(&headers), "InvalidArgument");
    }
}
