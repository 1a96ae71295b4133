//! `gendan bench mes`: how fast production takes in MES quantity reports
//! for one work order, and how long a report takes to show over gRPC.
//!
//! The bench plans a work order of its own, for an order id only production
//! knows: it sends production the saga's `PlanWorkOrder` (100 units of the
//! first demo product), so no simulator and no saga step reports on it or
//! moves it on (the saga and the orders service skip events about orders
//! they do not know). It then publishes N `gendan.ext.mes.quantity_reported`
//! messages, each one good unit on the work order's first stage, in the
//! envelope the simulated MES uses (source `mes:bench`), R a second or, with
//! R = 0, as fast as JetStream acknowledges them (up to [`IN_FLIGHT`] at
//! once), while it polls `GetWorkOrder` every [`POLL`] for the stage's good
//! quantity. At the end the work order is cancelled (`CancelWorkOrder`), so
//! its bookings go back.
//!
//! Figures: events per second ingested, N over the time from the first
//! publish to the poll that shows all N units; and the latency of the k-th
//! unit, from the k-th publish (in the order they were sent) to the first
//! poll that shows at least k units. Production applies reports in the
//! order its consumer takes them, so the k-th unit shown need not be the
//! k-th report sent: the figure is the delay of the k-th application, which
//! is what a stream of reports cares about. Every latency is rounded up to
//! the next poll, and the polling is load of its own (a read transaction
//! every [`POLL`]).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use gendan_messaging::{Bus, Cause, Outgoing, subjects};
use gendan_proto::timestamp_from;
use gendan_proto::v1;
use serde_json::json;
use tonic::Code;

use super::{ms, note, percentile};
use crate::cli::{Output, print_json, print_table};
use crate::sim::{Clients, ProductionClient};

#[derive(Debug, Clone)]
pub struct MesOptions {
    /// Quantity reports to publish.
    pub events: usize,
    /// Reports per second; 0 publishes as fast as they are acknowledged.
    pub rate: u32,
    pub timeout: Duration,
    pub output: Output,
}

/// Units the bench's work order is planned for; the reports may go past
/// it (production adds what the MES reports).
const PLANNED_UNITS: u32 = 100;
/// Publishes waiting for their acknowledgement at once, at full speed.
const IN_FLIGHT: usize = 64;
/// How often production's progress is read.
const POLL: Duration = Duration::from_millis(5);

/// The stage the reports go to.
#[derive(Debug, Clone)]
struct Target {
    order_id: String,
    product: String,
    stage: String,
}

pub(super) async fn run(bus: &Bus, clients: &Clients, options: &MesOptions) -> anyhow::Result<()> {
    let deadline = Instant::now() + options.timeout;
    let order_id = uuid::Uuid::now_v7().to_string();
    let product = gendan_production::demo::demo_products()
        .first()
        .copied()
        .context("the demo catalogue has no product")?
        .to_owned();
    plan(bus, &order_id, &product).await?;
    let work_order = planned(clients.production.clone(), &order_id, deadline).await?;
    let first = work_order
        .stages
        .iter()
        .find(|stage| stage.product == product)
        .context("the bench's work order has no stage")?;
    let target = Target {
        order_id: order_id.clone(),
        product,
        stage: first.stage.clone(),
    };
    let base = first.good_quantity;
    note(
        options.output,
        &format!(
            "{} MES quantity reports on work order {} ({} {}), {}",
            options.events,
            work_order.work_order_id,
            target.product,
            target.stage,
            if options.rate == 0 {
                "as fast as acknowledged".to_owned()
            } else {
                format!("{} a second", options.rate)
            }
        ),
    );

    let watcher = tokio::spawn(watch(
        clients.production.clone(),
        target.clone(),
        base,
        options.events,
        deadline,
    ));
    let published = publish_all(bus, &target, options).await;
    if published.is_err() {
        // Nothing more will come: the watcher would only wait for the deadline.
        watcher.abort();
    }
    let seen = watcher.await;
    // Whatever happened, the bench's work order gives its capacity back.
    let cancelled = cancel(bus, &order_id).await;
    let published = published?;
    let seen = seen.context("the progress watcher panicked")??;
    cancelled?;

    let shown = seen.last().map_or(0, |(_, units)| *units);
    if (shown as usize) < options.events {
        bail!(
            "production showed {shown} of {} reported units within {:?}",
            options.events,
            options.timeout
        );
    }
    print(options, &figures(&published, &seen));
    Ok(())
}

/// Asks production to plan the bench's work order, as the saga would.
async fn plan(bus: &Bus, order_id: &str, product: &str) -> anyhow::Result<()> {
    let command = v1::PlanWorkOrder {
        order_id: order_id.to_owned(),
        items: vec![v1::ProductQuantity {
            product: product.to_owned(),
            quantity: PLANNED_UNITS,
        }],
        earliest_start: String::new(),
        revision: 1,
        amendment: 0,
    };
    let message = Outgoing::command(
        "bench",
        "production",
        order_id,
        &command,
        &Cause::root(order_id),
    );
    bus.publish(&message).await.context("sending PlanWorkOrder")
}

/// The work order once production has planned it.
async fn planned(
    mut production: ProductionClient,
    order_id: &str,
    deadline: Instant,
) -> anyhow::Result<v1::WorkOrder> {
    loop {
        let request = v1::GetWorkOrderRequest {
            order_id: order_id.to_owned(),
        };
        match production.get_work_order(request).await {
            Ok(found) => return Ok(found.into_inner()),
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => bail!("reading the bench's work order: {status}"),
        }
        if Instant::now() >= deadline {
            bail!("production did not plan the bench's work order in time");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Gives the bench's work order's bookings back.
async fn cancel(bus: &Bus, order_id: &str) -> anyhow::Result<()> {
    let command = v1::CancelWorkOrder {
        order_id: order_id.to_owned(),
        reason: "bench run over".to_owned(),
    };
    let message = Outgoing::command(
        "bench",
        "production",
        order_id,
        &command,
        &Cause::root(order_id),
    );
    bus.publish(&message)
        .await
        .context("sending CancelWorkOrder")
}

/// When each report was sent and when JetStream acknowledged it, in the
/// order they were sent.
type Published = Vec<(Instant, Instant)>;

async fn publish_all(
    bus: &Bus,
    target: &Target,
    options: &MesOptions,
) -> anyhow::Result<Published> {
    let started = Instant::now();
    // Each publish is its own task, so it goes out when its turn comes, not
    // when the loop next looks at the ones in flight.
    let mut in_flight = FuturesUnordered::new();
    let mut published = Vec::with_capacity(options.events);
    for index in 0..options.events {
        if options.rate > 0 {
            let due = started + Duration::from_secs_f64(index as f64 / f64::from(options.rate));
            tokio::time::sleep_until(due.into()).await;
        }
        while in_flight.len() >= IN_FLIGHT {
            if let Some(done) = in_flight.next().await {
                published.push(acknowledged(done)?);
            }
        }
        let bus = bus.clone();
        let message = report(target);
        in_flight.push(tokio::spawn(async move {
            let sent = Instant::now();
            bus.publish(&message).await.map(|()| (sent, Instant::now()))
        }));
    }
    while let Some(done) = in_flight.next().await {
        published.push(acknowledged(done)?);
    }
    published.sort();
    Ok(published)
}

/// A publish task's answer: when the report was sent and acknowledged.
type PublishOutcome = Result<(Instant, Instant), gendan_messaging::Error>;

fn acknowledged(
    done: Result<PublishOutcome, tokio::task::JoinError>,
) -> anyhow::Result<(Instant, Instant)> {
    done.context("a publish task panicked")?
        .context("publishing an MES quantity report")
}

/// One good unit on the target stage, as the MES reports it.
fn report(target: &Target) -> Outgoing {
    let reported = v1::MesQuantityReported {
        order_id: target.order_id.clone(),
        product: target.product.clone(),
        stage: target.stage.clone(),
        good: 1,
        scrap: 0,
        at: Some(timestamp_from(chrono::Utc::now())),
    };
    Outgoing::new(
        subjects::mes("quantity_reported"),
        "mes:bench",
        &target.order_id,
        &reported,
        &Cause::root(&target.order_id),
    )
}

/// Polls the stage's good quantity every [`POLL`] until it shows `events`
/// units more than `base` or the deadline passes; every change seen, as
/// (when, units above `base`).
async fn watch(
    mut production: ProductionClient,
    target: Target,
    base: u32,
    events: usize,
    deadline: Instant,
) -> anyhow::Result<Vec<(Instant, u32)>> {
    let mut seen: Vec<(Instant, u32)> = Vec::new();
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let request = v1::GetWorkOrderRequest {
            order_id: target.order_id.clone(),
        };
        let work_order = match production.get_work_order(request).await {
            Ok(found) => found.into_inner(),
            // An overloaded production pushes back: the next poll will do.
            Err(status) if crate::retry::TRANSIENT.contains(&status.code()) => {
                if Instant::now() >= deadline {
                    return Ok(seen);
                }
                continue;
            }
            Err(status) => bail!("reading the bench's work order: {status}"),
        };
        let at = Instant::now();
        let units = work_order
            .stages
            .iter()
            .find(|stage| stage.product == target.product && stage.stage == target.stage)
            .map_or(0, |stage| stage.good_quantity.saturating_sub(base));
        if seen.last().is_none_or(|(_, last)| *last != units) {
            seen.push((at, units));
        }
        if (units as usize) >= events || at >= deadline {
            return Ok(seen);
        }
    }
}

/// The MES bench's figures.
struct MesFigures {
    events: usize,
    published_per_sec: f64,
    ingested_per_sec: f64,
    /// Sorted.
    latencies: Vec<Duration>,
}

fn figures(published: &[(Instant, Instant)], seen: &[(Instant, u32)]) -> MesFigures {
    let first_sent = published.first().map(|(sent, _)| *sent);
    let last_acked = published.iter().map(|(_, acked)| *acked).max();
    let all_shown = seen.last().map(|(at, _)| *at);
    let per_sec = |until: Option<Instant>| match (first_sent, until) {
        (Some(from), Some(until)) if until > from => {
            published.len() as f64 / (until - from).as_secs_f64()
        }
        _ => 0.0,
    };
    // The k-th unit shown against the k-th report sent.
    let mut latencies = Vec::with_capacity(published.len());
    let mut shown_before = 0usize;
    for (at, units) in seen {
        let units = (*units as usize).min(published.len());
        for (sent, _) in published.iter().take(units).skip(shown_before) {
            latencies.push(at.saturating_duration_since(*sent));
        }
        shown_before = shown_before.max(units);
    }
    latencies.sort();
    MesFigures {
        events: published.len(),
        published_per_sec: per_sec(last_acked),
        ingested_per_sec: per_sec(all_shown),
        latencies,
    }
}

fn print(options: &MesOptions, figures: &MesFigures) {
    let p50 = ms(percentile(&figures.latencies, 0.50));
    let p99 = ms(percentile(&figures.latencies, 0.99));
    match options.output {
        Output::Json => print_json(&json!({
            "events": figures.events,
            "rate": options.rate,
            "published_per_sec": figures.published_per_sec,
            "ingested_per_sec": figures.ingested_per_sec,
            "visible_latency_ms": { "p50": p50, "p99": p99 },
            "poll_ms": ms(POLL),
        })),
        Output::Table => {
            println!();
            print_table(
                &["figure", "value"],
                vec![
                    vec![
                        "published/s".to_owned(),
                        format!("{:.0}", figures.published_per_sec),
                    ],
                    vec![
                        "ingested/s".to_owned(),
                        format!("{:.0}", figures.ingested_per_sec),
                    ],
                    vec!["publish → visible p50".to_owned(), format!("{p50:.1} ms")],
                    vec![
                        "publish → visible p99".to_owned(),
                        format!("{p99:.1} ms  (polled every {:.0} ms)", ms(POLL)),
                    ],
                ],
            );
        }
    }
}
