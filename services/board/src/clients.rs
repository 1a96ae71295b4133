//! The gRPC clients of the services the board reads from, one lazily
//! connected channel each. A tonic client is a handle on its channel:
//! cloning one is cheap, and each concurrent call takes its own clone.
//!
//! Channels connect on first use and reconnect by themselves, so the board
//! starts while a service is still down and shows that section as
//! unavailable until it is back. Every call carries the handler's trace
//! context (`traceparent`), so what a person does on the board (answering
//! a decision, retrying a step) is one trace with what the services did.

use std::time::Duration;

use gendan_proto::v1::finance_service_client::FinanceServiceClient;
use gendan_proto::v1::logistics_service_client::LogisticsServiceClient;
use gendan_proto::v1::order_service_client::OrderServiceClient;
use gendan_proto::v1::saga_service_client::SagaServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::settings::Upstream;
use crate::{Error, Result};

/// How long a connection attempt may take before the call fails (a page
/// must not hang on a service that is down).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes the current span's `traceparent` into each request.
type Traced = fn(tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status>;
/// A channel whose requests carry the caller's trace context.
type TracedChannel = InterceptedService<Channel, Traced>;

const TRACE: Traced = gendan_telemetry::grpc::inject_trace_context;

/// One client per service.
#[derive(Clone)]
pub struct Clients {
    pub orders: OrderServiceClient<TracedChannel>,
    pub saga: SagaServiceClient<TracedChannel>,
    pub finance: FinanceServiceClient<TracedChannel>,
    pub logistics: LogisticsServiceClient<TracedChannel>,
}

impl Clients {
    /// Clients for the services at `upstream`; nothing is dialled yet.
    /// Must run inside a tokio runtime (each channel spawns its worker).
    pub fn connect_lazy(upstream: &Upstream) -> Result<Self> {
        Ok(Clients {
            orders: OrderServiceClient::with_interceptor(
                channel("orders", &upstream.orders)?,
                TRACE,
            ),
            saga: SagaServiceClient::with_interceptor(channel("saga", &upstream.saga)?, TRACE),
            finance: FinanceServiceClient::with_interceptor(
                channel("finance", &upstream.finance)?,
                TRACE,
            ),
            logistics: LogisticsServiceClient::with_interceptor(
                channel("logistics", &upstream.logistics)?,
                TRACE,
            ),
        })
    }
}

fn channel(service: &'static str, url: &str) -> Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|source| Error::Endpoint {
        service,
        url: url.to_owned(),
        source,
    })?;
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect_lazy())
}
