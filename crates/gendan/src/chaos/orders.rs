//! The orders a chaos run drives, created while the faults run rather than
//! before them, so that kills and crashes land on orders at every phase:
//! a steady trickle over the first part of the fault period, each create
//! its own task (a create that waits out a restart delays no other), and
//! each retried as a real sales system would, with backoff, under its
//! `client_request_id`, which makes a repeat return the first order.

use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;

use crate::retry::{PARTNER_ATTEMPTS, transient};
use crate::sim::{self, Clients};

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
