//! A whole world for end-to-end tests: every service as its own
//! application on a database and a nats-server of the test's own, the demo
//! catalogue, and the simulators playing the MES, suppliers, QA, the
//! warehouse, the carrier, the customer and the bank.

use std::time::Duration;

use gendan::demo::ports_of;
use gendan::sim::{self, Clients, SimHandle, SimOptions, Simulator};
use gendan::stack::{Addrs, Stack};
use gendan_messaging::Bus;
use gendan_proto::v1;

use crate::{TestDb, TestNats, eventually, service_settings};

/// How long an order may take to close: generous, for a loaded machine.
pub const WAIT: Duration = Duration::from_secs(40);

const WITHOUT_SAGA: [&str; 6] = [
    "orders",
    "production",
    "procurement",
    "quality",
    "logistics",
    "finance",
];

/// Every service, the demo catalogue and the simulators, over a database
/// and a nats-server of the test's own.
pub struct World {
    pub db: TestDb,
    pub nats: TestNats,
    pub bus: Bus,
    /// Every service but the saga.
    pub services: Stack,
    /// The saga coordinator alone, so a test can kill and restart it.
    pub saga: Stack,
    pub clients: Clients,
    pub simulator: Option<SimHandle>,
}

/// The saga coordinator on the test's database and nats-server.
pub async fn start_saga(db: &TestDb, nats: &TestNats) -> Stack {
    let common = service_settings(db, nats, "saga").common;
    Stack::start_only(&common, &Addrs::ephemeral(), Default::default(), &["saga"])
        .await
        .expect("saga starts")
}

/// Every service, the catalogue and the simulators with `options`; the
/// saga on `saga_clock` when given (a test moves its calendar).
pub async fn world_on(
    options: SimOptions,
    saga_clock: Option<std::sync::Arc<dyn gendan_saga::Clock>>,
) -> World {
    gendan_telemetry::init_for_tests();
    let db = TestDb::create().await.unwrap();
    let nats = TestNats::start().await.unwrap();
    let common = service_settings(&db, &nats, "unused").common;
    let services = Stack::start_only(
        &common,
        &Addrs::ephemeral(),
        Default::default(),
        &WITHOUT_SAGA,
    )
    .await
    .unwrap();
    let saga = match saga_clock {
        None => start_saga(&db, &nats).await,
        Some(clock) => {
            let common = service_settings(&db, &nats, "saga").common;
            let options = gendan::stack::StackOptions {
                calendar: clock,
                ..Default::default()
            };
            Stack::start_only(&common, &Addrs::ephemeral(), options, &["saga"])
                .await
                .expect("saga starts")
        }
    };
    let mut ports = ports_of(&services);
    ports.saga = saga.port("saga");
    let clients = Clients::connect(&ports).await.unwrap();
    sim::seed_catalog(&clients).await.unwrap();
    let bus = Bus::connect(&nats.url, "test-world").await.unwrap();
    let simulator = Simulator::start(bus.clone(), clients.clone(), options)
        .await
        .unwrap();
    World {
        db,
        nats,
        bus,
        services,
        saga,
        clients,
        simulator: Some(simulator),
    }
}

impl World {
    /// Stops the simulators (which must have met no error), then the
    /// services.
    pub async fn stop(mut self) {
        if let Some(simulator) = self.simulator.take() {
            let stats = simulator.stop().await.unwrap();
            assert_eq!(stats.errors, 0, "the simulators hit errors: {stats:?}");
        }
        self.saga.shutdown().await.unwrap();
        self.services.shutdown().await.unwrap();
        let _ = (&self.db, &self.nats, &self.bus);
    }
}

/// The order once its workflow completed; a failure says where the
/// workflow stands.
pub async fn wait_closed(clients: &Clients, order_id: &str) -> v1::Order {
    let closed = eventually(WAIT, "order closed", || {
        let mut orders = clients.orders.clone();
        let order_id = order_id.to_owned();
        async move {
            let order = orders
                .get_order(v1::GetOrderRequest { order_id })
                .await
                .ok()?
                .into_inner();
            (order.workflow_status == "completed").then_some(order)
        }
    })
    .await;
    match closed {
        Ok(order) => order,
        Err(err) => {
            // Say where the workflow stands, for whoever reads the failure.
            let saga = clients
                .saga
                .clone()
                .get_saga(v1::GetSagaRequest {
                    order_id: order_id.to_owned(),
                })
                .await;
            let standing = saga
                .map(|s| {
                    let s = s.into_inner();
                    let steps: Vec<String> = s
                        .steps
                        .iter()
                        .map(|step| {
                            format!(
                                "{}={}#{} {}",
                                step.step, step.status, step.runs, step.last_error
                            )
                        })
                        .collect();
                    format!(
                        "phase {:?} status {} {}: {}",
                        s.phase,
                        s.status,
                        s.stalled_reason,
                        steps.join("; ")
                    )
                })
                .unwrap_or_else(|status| status.to_string());
            panic!("{err}: order {order_id} {standing}");
        }
    }
}
