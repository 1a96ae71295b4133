//! Simulators of the world around the factory, and the catalogue they need.
//!
//! [`seed_catalog`] loads master data into every service over its public
//! gRPC API (customers, work centres and routings, materials, suppliers,
//! BOMs and stock, inspection plans, packing specs, product masters,
//! carrier lanes, labour rates, exchange rates, the inspection rate).
//! [`sample_order`] makes orders that catalogue can carry
//! through all twelve phases. [`Simulator`] plays everybody outside gendan
//! (the MES, suppliers, QA inspectors, the warehouse, the carrier, the
//! customer and the bank), reacting to gendan's events in simulated time:
//! each reaction waits a number of simulated days, one simulated day being
//! [`SimOptions::day`] of real time.
//!
//! Everything goes through the surfaces a real deployment offers: gRPC
//! calls and external events (`gendan.ext.*`) on NATS JetStream.

mod actors;
pub mod barcode;
mod catalog;
mod catalog_costs;
mod mix;
pub(crate) mod rng;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use gendan_messaging::{Bus, streams, subjects};
use gendan_proto::v1::finance_service_client::FinanceServiceClient;
use gendan_proto::v1::logistics_service_client::LogisticsServiceClient;
use gendan_proto::v1::order_service_client::OrderServiceClient;
use gendan_proto::v1::procurement_service_client::ProcurementServiceClient;
use gendan_proto::v1::production_service_client::ProductionServiceClient;
use gendan_proto::v1::quality_service_client::QualityServiceClient;
use gendan_proto::v1::saga_service_client::SagaServiceClient;
use gendan_runtime::clock::ShiftedClock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

pub use actors::HeldPayment;
pub use catalog::{CUSTOMERS, is_export_customer, sample_order, seed_catalog};

use actors::World;

type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;
type Traced = InterceptedService<Channel, Interceptor>;

pub type OrdersClient = OrderServiceClient<Traced>;
pub type ProductionClient = ProductionServiceClient<Traced>;
pub type ProcurementClient = ProcurementServiceClient<Traced>;
pub type QualityClient = QualityServiceClient<Traced>;
pub type LogisticsClient = LogisticsServiceClient<Traced>;
pub type FinanceClient = FinanceServiceClient<Traced>;
pub type SagaClient = SagaServiceClient<Traced>;

/// gRPC ports of the services, on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub orders: u16,
    pub production: u16,
    pub procurement: u16,
    pub quality: u16,
    pub logistics: u16,
    pub finance: u16,
    pub saga: u16,
}

/// A client of every service, each sending the caller's trace context.
#[derive(Clone)]
pub struct Clients {
    pub orders: OrdersClient,
    pub production: ProductionClient,
    pub procurement: ProcurementClient,
    pub quality: QualityClient,
    pub logistics: LogisticsClient,
    pub finance: FinanceClient,
    pub saga: SagaClient,
    /// The production channel without interceptor, for
    /// `gendan_production::demo::seed_demo_catalog`.
    production_channel: Channel,
}

async fn channel(port: u16) -> anyhow::Result<Channel> {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))?
        .connect()
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))
}

const TRACE: Interceptor = gendan_telemetry::grpc::inject_trace_context;

impl Clients {
    pub async fn connect(ports: &Ports) -> anyhow::Result<Self> {
        let production_channel = channel(ports.production).await?;
        Ok(Clients {
            orders: OrderServiceClient::with_interceptor(channel(ports.orders).await?, TRACE),
            production: ProductionServiceClient::with_interceptor(
                production_channel.clone(),
                TRACE,
            ),
            procurement: ProcurementServiceClient::with_interceptor(
                channel(ports.procurement).await?,
                TRACE,
            ),
            quality: QualityServiceClient::with_interceptor(channel(ports.quality).await?, TRACE),
            logistics: LogisticsServiceClient::with_interceptor(
                channel(ports.logistics).await?,
                TRACE,
            ),
            finance: FinanceServiceClient::with_interceptor(channel(ports.finance).await?, TRACE),
            saga: SagaServiceClient::with_interceptor(channel(ports.saga).await?, TRACE),
            production_channel,
        })
    }

    /// A production client without the trace interceptor.
    pub fn production_plain(&self) -> ProductionServiceClient<Channel> {
        ProductionServiceClient::new(self.production_channel.clone())
    }
}

#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Real time per simulated day; `Duration::ZERO` runs at full speed.
    pub day: Duration,
    /// Seed of the per-order variation (scrap, ...).
    pub seed: u64,
    /// Play the seeded mix of exceptions (failed final inspections, ...).
    pub exceptions: bool,
    /// How the merchandiser settles a customer's claim: `credit_note`,
    /// `replacement` or `rework` (an answer of the `claim_resolution`
    /// decision).
    pub settle_claims_by: &'static str,
    /// The business calendar the services run on, when the caller can move
    /// it (`gendan demo`, ADR 0009): payments are dated on it, and with the
    /// exception mix on, one customer pays its balance only when reminded.
    pub calendar: Option<ShiftedClock>,
    /// The carrier loses the first shipment it carries (the whole cargo);
    /// the merchandiser answers the carrier claim with `settle_claims_by`.
    pub lose_first_shipment: bool,
    /// The carrier reports departures but never a delivery (a lost report:
    /// the saga's overdue wait asks logistics again).
    pub carrier_silent: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            day: Duration::ZERO,
            seed: 1,
            exceptions: false,
            settle_claims_by: gendan_saga::workflow::answers::CREDIT_NOTE,
            calendar: None,
            lose_first_shipment: false,
            carrier_silent: false,
        }
    }
}

/// What the simulated world has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Events read from `GENDAN_EVT`.
    pub events_seen: u64,
    /// MES stages reported (started, quantity, completed).
    pub mes_stages: u64,
    /// Purchase orders confirmed by the supplier.
    pub purchase_orders_confirmed: u64,
    /// Lots received by the warehouse.
    pub goods_received: u64,
    /// Inspection results recorded by QA (incoming and final).
    pub inspections_recorded: u64,
    /// Packed reports sent by the warehouse.
    pub packed: u64,
    /// Shipped reports sent by the warehouse.
    pub shipped: u64,
    /// Carrier tracking updates.
    pub tracking_updates: u64,
    /// Carrier delivery reports.
    pub delivered: u64,
    /// Orders accepted by the customer.
    pub accepted: u64,
    /// Payments received by the bank.
    pub payments: u64,
    /// Decisions answered by the customer or the merchandiser (delivery
    /// date, concession, claims, margin).
    pub decisions_answered: u64,
    /// Reactions that failed (logged as warnings).
    pub errors: u64,
}

/// Starts the simulated world.
pub struct Simulator;

impl Simulator {
    /// Subscribes to every domain event published from now on (the consumer
    /// exists when this returns), then reacts to them in the background
    /// until [`SimHandle::stop`].
    pub async fn start(
        bus: Bus,
        clients: Clients,
        options: SimOptions,
    ) -> anyhow::Result<SimHandle> {
        let stream = bus
            .jetstream()
            .get_stream(streams::EVENTS)
            .await
            .with_context(|| format!("opening stream {}", streams::EVENTS))?;
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                filter_subject: subjects::EVENTS.to_owned(),
                deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
                description: Some("gendan world simulator".to_owned()),
                ..Default::default()
            })
            .await
            .context("creating the simulator's consumer")?;
        let mut messages = consumer
            .messages()
            .await
            .context("reading the simulator's consumer")?;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let world = Arc::new(World::new(
            bus,
            clients,
            options,
            cancel.clone(),
            tracker.clone(),
        ));
        let loop_world = world.clone();
        let loop_cancel = cancel.clone();
        let main = tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = loop_cancel.cancelled() => break,
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => loop_world.dispatch(&message.payload),
                    Some(Err(err)) => {
                        // The ordered consumer recreates itself after the
                        // last message it delivered (a bus restart, say):
                        // nothing is missed, so it is noted, not counted.
                        tracing::warn!(error = %err, "simulator consumer recreated");
                    }
                    None => {
                        tracing::warn!("simulator consumer ended");
                        break;
                    }
                }
            }
        });
        Ok(SimHandle {
            world,
            cancel,
            tracker,
            main: Some(main),
        })
    }
}

/// The running simulation.
pub struct SimHandle {
    world: Arc<World>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    main: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    pub fn stats(&self) -> SimStats {
        self.world.stats.snapshot()
    }

    /// The invoice the late payer is holding until it is reminded, once one
    /// is (see [`SimOptions::calendar`]).
    pub fn held_payment(&self) -> Option<HeldPayment> {
        self.world.held_payment()
    }

    /// Stops reading events and abandons the reactions still waiting.
    pub async fn stop(mut self) -> anyhow::Result<SimStats> {
        self.cancel.cancel();
        if let Some(main) = self.main.take() {
            main.await.context("the simulator loop panicked")?;
        }
        self.tracker.close();
        self.tracker.wait().await;
        Ok(self.world.stats.snapshot())
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
