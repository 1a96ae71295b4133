//! The orders a chaos run drives, created while the faults run rather than
//! before them, so that kills and crashes land on orders at every phase:
//! a steady trickle over the first part of the fault period, each create
//! its own task (a create that waits out a restart delays no other), and
//! each retried as a real sales system would, with backoff, under its
//! `client_request_id`, which makes a repeat return the first order.
//!
//! The factory is sized for the run first ([`size_factory`]): the demo
//! catalogue's work centres are sized for tens of orders at a time, and a
//! thousand in flight book its sewing lines years ahead, so the review
//! rightly parks them ("cannot be finished within 1098 days"). That is a
//! full factory, not a fault, and not what a chaos run is about.

use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;

use gendan_proto::v1::ListWorkCentresRequest;

use crate::retry::{PARTNER_ATTEMPTS, transient};
use crate::sim::{self, Clients};

/// Orders the demo factory's capacity is meant for at once.
const ORDERS_PER_FACTORY: usize = 100;

/// Gives every work centre the hours of `orders / 100` demo factories (at
/// least one); returns the factor.
pub(crate) async fn size_factory(clients: &Clients, orders: usize) -> anyhow::Result<usize> {
    let factor = orders.div_ceil(ORDERS_PER_FACTORY).max(1);
    if factor == 1 {
        return Ok(1);
    }
    let mut production = clients.production.clone();
    let centres = production
        .list_work_centres(ListWorkCentresRequest {})
        .await
        .context("listing the work centres")?
        .into_inner()
        .work_centres;
    for mut centre in centres {
        centre.hours_per_day *= factor as f64;
        production
            .upsert_work_centre(centre)
            .await
            .context("sizing a work centre")?;
    }
    Ok(factor)
}

/// Creates `count` sample orders spread evenly over `spread`; returns
/// their ids once every create has been answered.
pub(crate) async fn create_spread(
    clients: &Clients,
    seed: u64,
    count: usize,
    spread: Duration,
) -> anyhow::Result<Vec<String>> {
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let run = run_id[..12].to_owned();
    let every = spread / count.max(1) as u32;
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut creates = JoinSet::new();
    for index in 0..count {
        ticks.tick().await;
        let orders = clients.orders.clone();
        let request = sim::sample_order(seed, &run, index);
        creates.spawn(async move {
            let response = transient(&[], PARTNER_ATTEMPTS, || {
                let mut orders = orders.clone();
                let request = request.clone();
                async move { orders.create_order(request).await }
            })
            .await
            .with_context(|| format!("creating sample order {index}"))?;
            let order = response.order.context("CreateOrder answered no order")?;
            anyhow::Ok(order.order_id)
        });
    }
    let mut ids = Vec::with_capacity(count);
    while let Some(created) = creates.join_next().await {
        ids.push(created.context("a create task failed")??);
    }
    Ok(ids)
}
