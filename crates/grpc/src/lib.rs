//! gRPC server plumbing shared by every service.
//!
//! [`serve`] runs one tonic service on a bound listener together with the
//! standard `grpc.health.v1.Health` service (reporting SERVING) and server
//! reflection (`grpc.reflection.v1`), behind the trace-context layer that
//! parents each handler span to the caller's `traceparent`. Errors reach
//! clients through [`ServiceErrorCode`]: each service's `Error` enum says
//! which status code each variant is, in one place, and [`into_status`] turns
//! it into a `tonic::Status`.

pub mod admission;
pub mod metrics;
pub mod validate;

pub use admission::Limits;

use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;

pub use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reflection setup: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long a port held only by closing connections is waited for: Linux
/// keeps a closed connection's port in TIME-WAIT for 60 s.
const TIME_WAIT: Duration = Duration::from_secs(65);

/// Binds `addr` (port 0 picks a free port; read it from the listener).
///
/// The default ports (50051–50058) lie in Linux's ephemeral range, so on a
/// busy machine an outgoing connection that has just closed (to Postgres,
/// say) may hold one in TIME-WAIT, and the bind is refused although nothing
/// listens there. When nothing answers on the port, the bind is tried again
/// until TIME-WAIT is over; a port something listens on fails at once.
pub async fn bind(addr: &str) -> Result<TcpListener> {
    let deadline = Instant::now() + TIME_WAIT;
    let mut told = false;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(source)
                if source.kind() == ErrorKind::AddrInUse
                    && Instant::now() < deadline
                    && !listened_on(addr).await =>
            {
                if !told {
                    tracing::warn!(
                        addr,
                        "the port is held by connections closing (TIME-WAIT); binding again until it is free"
                    );
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(source) => {
                return Err(Error::Bind {
                    addr: addr.to_owned(),
                    source,
                });
            }
        }
    }
}

/// Whether a server accepts connections on `addr`.
async fn listened_on(addr: &str) -> bool {
    tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
        .await
        .is_ok_and(|connected| connected.is_ok())
}

/// The standard health service every port serves.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// Serves `service` with health and reflection until `cancel` fires,
/// taking on no more than `limits` allow ([`admission`]).
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    cancel: CancellationToken,
) -> Result<()>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<S>().await;
    // Reflection lists what this port serves, not every service the
    // descriptors describe: the others answer `Unimplemented` here.
    let reflection_of = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(gendan_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(S::NAME)
            .with_service_name(HEALTH_SERVICE)
    };
    let reflection = reflection_of().build_v1()?;
    let reflection_v1alpha = reflection_of().build_v1alpha()?;

    let local: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(service = S::NAME, addr = ?local, "grpc serving");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let mut routes = Routes::new(health_service);
    routes = routes
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(service);
    tonic::transport::Server::builder()
        .layer(gendan_telemetry::grpc::TraceContextLayer)
        .layer(metrics::MetricsLayer)
        .layer(admission::AdmissionLayer::new(admission::Gate::new(limits)))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, cancel.cancelled_owned())
        .await?;
    Ok(())
}

/// Which status code a domain error is. Implement it once per service error
/// enum; that impl is the service's whole error-to-status mapping.
pub trait ServiceErrorCode: std::fmt::Display {
    fn code(&self) -> Code;
}

/// Turns a domain error into a status; internal errors are logged here and
/// reach the client without internals.
pub fn into_status<E: ServiceErrorCode>(err: E) -> tonic::Status {
    let code = err.code();
    match code {
        Code::Internal => {
            tracing::error!(error = %err, "request failed");
            tonic::Status::internal("internal error (see the service logs)")
        }
        Code::Unavailable => {
            // A deadlock, an exhausted pool, a restarting server: the
            // client retries; nothing is wrong with the service itself.
            tracing::warn!(error = %err, "request refused for now");
            tonic::Status::unavailable("a backing store is unavailable, retry later")
        }
        _ => tonic::Status::new(code, err.to_string()),
    }
}

/// One invalid request field: a path such as `lines[2].quantity` and what is
/// wrong with it. Its text is the `InvalidArgument` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl ServiceErrorCode for FieldError {
    fn code(&self) -> Code {
        Code::InvalidArgument
    }
}

#[cfg(test)]
mod bind_tests {
    use super::*;

    #[tokio::test]
    async fn a_port_a_server_listens_on_is_refused_at_once() {
        let taken = bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        // Waiting out TIME-WAIT (65 s) would hit this bound.
        let again = tokio::time::timeout(Duration::from_secs(30), bind(&addr))
            .await
            .expect("refused without waiting");
        let err = again.unwrap_err();
        assert!(err.to_string().contains(&addr), "{err}");
        drop(taken);
        bind(&addr)
            .await
            .expect("free again once the server is gone");
    }
}
