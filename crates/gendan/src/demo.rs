//! `gendan demo`: sample orders through the running system, with the demo
//! playing the factory MES, and a live view until every order's workflow is
//! done.
//!
//! Everything goes through the public surfaces a real deployment has: the
//! catalog and orders over gRPC, MES events over NATS (`gendan.ext.mes.*`),
//! progress read back over gRPC.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use gendan_messaging::{Bus, Cause, Outgoing, subjects};
use gendan_proto::v1::order_service_client::OrderServiceClient;
use gendan_proto::v1::production_service_client::ProductionServiceClient;
use gendan_proto::v1::saga_service_client::SagaServiceClient;
use gendan_proto::v1::{self, Phase};
use gendan_proto::{TypeName, timestamp_from};
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use tracing::Instrument;

type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;
pub type Orders = OrderServiceClient<InterceptedService<Channel, Interceptor>>;
pub type Production = ProductionServiceClient<InterceptedService<Channel, Interceptor>>;
pub type Saga = SagaServiceClient<InterceptedService<Channel, Interceptor>>;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub orders: usize,
    pub concurrency: usize,
    pub timeout: Duration,
    pub seed: u64,
}

pub async fn connect(port: u16) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://127.0.0.1:{port}"))?
        .connect()
        .await?)
}

pub fn orders_client(channel: Channel) -> Orders {
    OrderServiceClient::with_interceptor(
        channel,
        gendan_telemetry::grpc::inject_trace_context as Interceptor,
    )
}

pub fn saga_client(channel: Channel) -> Saga {
    SagaServiceClient::with_interceptor(
        channel,
        gendan_telemetry::grpc::inject_trace_context as Interceptor,
    )
}

pub fn production_client(channel: Channel) -> Production {
    ProductionServiceClient::with_interceptor(
        channel,
        gendan_telemetry::grpc::inject_trace_context as Interceptor,
    )
}

/// A small repeatable generator, so two runs with one seed make the same orders.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below.max(1)
    }
}

const CUSTOMERS: &[&str] = &[
    "Nordwind GmbH",
    "Maple & Co",
    "Sakura Trading",
    "Atlas Retail",
    "Lumen SA",
];

/// Specification text for the demo catalogue's products.
fn spec_of(product: &str) -> &'static str {
    match product {
        "shirt-oxford" => "oxford cotton 120 g/m², button-down collar",
        "jacket-denim" => "13 oz denim, stonewashed",
        _ => "12 oz canvas, natural",
    }
}

fn sample_order(rng: &mut Lcg, run: &str, index: usize) -> v1::CreateOrderRequest {
    let line_count = 1 + rng.next(2) as usize;
    let lines = (0..line_count)
        .map(|_| {
            let products = gendan_production::demo::demo_products();
            let product = products[rng.next(products.len() as u64) as usize];
            v1::OrderLine {
                product: product.into(),
                spec: spec_of(product).into(),
                quantity: 200 + 100 * rng.next(10) as u32,
                unit_price_minor: 250 + 25 * rng.next(40) as i64,
            }
        })
        .collect();
    let export = rng.next(2) == 0;
    // Every fifth customer asks for next week, which the factory cannot
    // make: the saga opens a delivery-date clarification for those.
    let lead_days = if index % 5 == 4 {
        2
    } else {
        45 + rng.next(30) as i64
    };
    let requested = chrono::Utc::now().date_naive() + chrono::Duration::days(lead_days);
    v1::CreateOrderRequest {
        client_request_id: format!("demo-{run}-{index}"),
        customer: CUSTOMERS[rng.next(CUSTOMERS.len() as u64) as usize].into(),
        lines,
        currency: if export { "USD" } else { "CNY" }.into(),
        requested_delivery_date: gendan_proto::date_to_string(requested),
        incoterm: if export { "FOB" } else { "EXW" }.into(),
        payment_terms: "30% T/T deposit, 70% against B/L copy".into(),
        export,
    }
}

/// Plays the MES for one order: waits for its work order, then reports every
/// stage started, quantities and completion, in routing order.
pub async fn play_mes(
    bus: Bus,
    mut production: Production,
    order_id: String,
    seed: u64,
) -> anyhow::Result<()> {
    let mut rng = Lcg(seed);
    let work_order = loop {
        match production
            .get_work_order(v1::GetWorkOrderRequest {
                order_id: order_id.clone(),
            })
            .await
        {
            Ok(response) => break response.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => bail!("reading the work order of {order_id}: {status}"),
        }
    };
    let source = "mes:demo-factory";
    let cause = Cause::root(order_id.clone());
    for stage in &work_order.stages {
        let now = chrono::Utc::now();
        let started = v1::MesStageStarted {
            order_id: order_id.clone(),
            product: stage.product.clone(),
            stage: stage.stage.clone(),
            at: Some(timestamp_from(now)),
        };
        bus.publish(&mes(source, &order_id, &started, &cause))
            .await?;
        let scrap = (stage.planned_quantity as u64 * rng.next(3) / 100) as u32;
        let reported = v1::MesQuantityReported {
            order_id: order_id.clone(),
            product: stage.product.clone(),
            stage: stage.stage.clone(),
            good: stage.planned_quantity,
            scrap,
            at: Some(timestamp_from(now)),
        };
        bus.publish(&mes(source, &order_id, &reported, &cause))
            .await?;
        let completed = v1::MesStageCompleted {
            order_id: order_id.clone(),
            product: stage.product.clone(),
            stage: stage.stage.clone(),
            at: Some(timestamp_from(now)),
        };
        bus.publish(&mes(source, &order_id, &completed, &cause))
            .await?;
    }
    Ok(())
}

fn mes<M: prost::Message + TypeName>(
    source: &str,
    order_id: &str,
    payload: &M,
    cause: &Cause,
) -> Outgoing {
    // gendan.v1.MesStageStarted → gendan.ext.mes.stage_started
    let token = subjects::token_for_type(M::TYPE_NAME);
    let name = token.strip_prefix("mes_").unwrap_or(&token);
    Outgoing::new(subjects::mes(name), source, order_id, payload, cause)
}

/// Creates the orders, plays the MES and waits until every workflow is done.
/// Returns the orders as they ended.
pub async fn run(
    bus: &Bus,
    orders: Orders,
    production_channel: Channel,
    mut saga: Saga,
    options: &DemoOptions,
) -> anyhow::Result<Vec<v1::Order>> {
    gendan_production::demo::seed_demo_catalog(&mut ProductionServiceClient::new(
        production_channel.clone(),
    ))
    .await
    .context("loading the demo catalogue")?;
    let production = production_client(production_channel);
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let mut rng = Lcg(options.seed);
    let requests: Vec<_> = (0..options.orders)
        .map(|i| sample_order(&mut rng, &run_id[..12], i))
        .collect();

    let started = Instant::now();
    println!(
        "creating {} orders ({} at a time)…",
        options.orders, options.concurrency
    );
    let created: Vec<anyhow::Result<String>> = futures::stream::iter(requests)
        .map(|request| {
            let mut orders = orders.clone();
            let span = tracing::info_span!("demo.create_order", client_request_id = %request.client_request_id);
            async move {
                let response = orders.create_order(request).await?.into_inner();
                Ok(response.order.map(|order| order.order_id).unwrap_or_default())
            }
            .instrument(span)
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let order_ids: Vec<String> = created.into_iter().collect::<anyhow::Result<_>>()?;

    let mut players = tokio::task::JoinSet::new();
    for (i, order_id) in order_ids.iter().enumerate() {
        players.spawn(play_mes(
            bus.clone(),
            production.clone(),
            order_id.clone(),
            options.seed ^ i as u64,
        ));
    }

    let deadline = started + options.timeout;
    let ours: std::collections::HashSet<&String> = order_ids.iter().collect();
    let mut decided = 0;
    loop {
        decided += answer_decisions(&mut saga, &ours).await?;
        let snapshot = fetch(&orders, &order_ids).await?;
        let done = snapshot
            .iter()
            .filter(|o| o.workflow_status == "completed")
            .count();
        print_progress(&snapshot, started.elapsed());
        if done == order_ids.len() {
            let elapsed = started.elapsed();
            println!();
            print_summary(&snapshot);
            if decided > 0 {
                println!(
                    "\n{decided} delivery-date clarifications answered: the customer accepted the factory's date"
                );
            }
            println!(
                "\n{} orders reached production completed in {:.1} s: {:.1} orders/s",
                done,
                elapsed.as_secs_f64(),
                done as f64 / elapsed.as_secs_f64()
            );
            players.shutdown().await;
            return Ok(snapshot);
        }
        while let Some(joined) = players.try_join_next() {
            if let Ok(Err(err)) = joined {
                bail!("MES simulation failed: {err:#}");
            }
        }
        if Instant::now() > deadline {
            println!();
            print_summary(&snapshot);
            bail!(
                "{} of {} orders did not finish within {:?}",
                order_ids.len() - done,
                order_ids.len(),
                options.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Plays the merchandiser: every open decision on the demo's orders is
/// answered as the customer would (accept the factory's proposed date).
async fn answer_decisions(
    saga: &mut Saga,
    ours: &std::collections::HashSet<&String>,
) -> anyhow::Result<usize> {
    let open = saga
        .list_decisions(v1::ListDecisionsRequest {
            order_id: String::new(),
            open_only: true,
            limit: 1000,
        })
        .await
        .context("listing open decisions")?
        .into_inner()
        .decisions;
    let mut answered = 0;
    for decision in open.into_iter().filter(|d| ours.contains(&d.order_id)) {
        let answer = if decision.options.iter().any(|o| o == "accept_proposed_date") {
            "accept_proposed_date"
        } else {
            decision
                .options
                .first()
                .map(String::as_str)
                .unwrap_or_default()
        };
        let request = v1::DecideRequest {
            order_id: decision.order_id.clone(),
            decision_id: decision.decision_id.clone(),
            answer: answer.to_owned(),
            operator: "demo-merchandiser".to_owned(),
            comment: "customer accepted by e-mail".to_owned(),
        };
        match saga.decide(request).await {
            Ok(_) => answered += 1,
            // Answered meanwhile (a second demo, an operator): fine.
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {}
            Err(status) => {
                return Err(anyhow::anyhow!(
                    "answering decision {}: {status}",
                    decision.decision_id
                ));
            }
        }
    }
    Ok(answered)
}

/// Reads the demo's orders, several requests in flight, in `ids` order.
async fn fetch(orders: &Orders, ids: &[String]) -> anyhow::Result<Vec<v1::Order>> {
    futures::stream::iter(ids)
        .map(|id| {
            let mut orders = orders.clone();
            async move {
                let order = orders
                    .get_order(v1::GetOrderRequest {
                        order_id: id.clone(),
                    })
                    .await
                    .with_context(|| format!("reading order {id}"))?;
                Ok(order.into_inner())
            }
        })
        .buffered(16)
        .collect::<Vec<anyhow::Result<v1::Order>>>()
        .await
        .into_iter()
        .collect()
}

fn phase_name(order: &v1::Order) -> &'static str {
    v1::Phase::try_from(order.phase)
        .unwrap_or(Phase::Unspecified)
        .short_name()
}

fn print_progress(orders: &[v1::Order], elapsed: Duration) {
    let mut counts: BTreeMap<(i32, &str), usize> = BTreeMap::new();
    for order in orders {
        let label = if order.workflow_status == "completed" {
            "production completed"
        } else {
            phase_name(order)
        };
        *counts
            .entry((
                if label == "production completed" {
                    100
                } else {
                    order.phase
                },
                label,
            ))
            .or_default() += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|((_, label), n)| format!("{label} {n}"))
        .collect();
    let at_risk = orders.iter().filter(|o| o.at_risk).count();
    println!(
        "[{:>5.1}s] {} | at risk {}",
        elapsed.as_secs_f64(),
        parts.join(" | "),
        at_risk
    );
}

fn print_summary(orders: &[v1::Order]) {
    println!(
        "{:<36}  {:<16}  {:<11}  {:<10}  {:<10}  {:<10}  risk",
        "order", "customer", "phase", "status", "requested", "projected"
    );
    for order in orders {
        println!(
            "{:<36}  {:<16}  {:<11}  {:<10}  {:<10}  {:<10}  {}",
            order.order_id,
            truncate(&order.customer, 16),
            phase_name(order),
            order.workflow_status,
            order.requested_delivery_date,
            if order.projected_delivery_date.is_empty() {
                "-"
            } else {
                &order.projected_delivery_date
            },
            if order.at_risk { "AT RISK" } else { "ok" }
        );
    }
}

fn truncate(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}
