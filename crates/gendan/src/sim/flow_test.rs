//! The whole system with the simulated world, end to end: a private
//! nats-server, a fresh database on the local PostgreSQL, every service,
//! the catalogue, a few sample orders, and the simulator at full speed.
//! Ignored by default (it needs `nats-server` and PostgreSQL); run with
//! `cargo test -p gendan --lib sim::flow_test -- --ignored --nocapture`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};

use super::*;
use crate::stack::{Addrs, Stack};
use gendan_proto::v1::{self, Phase};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server and a local PostgreSQL"]
async fn sample_orders_go_through_all_twelve_phases() -> anyhow::Result<()> {
    let store = tempfile::tempdir()?;
    let port = free_port();
    let nats_url = format!("nats://127.0.0.1:{port}");
    let _nats = tokio::process::Command::new(
        std::env::var("GENDAN_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned()),
    )
    .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
    .arg(store.path())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .kill_on_drop(true)
    .spawn()?;
    for _ in 0..100 {
        if let Ok(client) = async_nats::connect(&nats_url).await
            && async_nats::jetstream::new(client)
                .query_account()
                .await
                .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server = std::env::var("GENDAN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("gendan_sim_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&server).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    let (base, _) = server.rsplit_once('/').expect("a database url");
    let common = gendan_settings::Common {
        database_url: gendan_settings::Secret::new(format!("{base}/{name}")),
        nats_url: nats_url.clone(),
        stream_replicas: 1,
        db_max_connections: 5,
    };
    let stack = Stack::start(&common, &Addrs::ephemeral(), Default::default()).await?;
    let ports = Ports {
        orders: stack.port("orders"),
        production: stack.port("production"),
        procurement: stack.port("procurement"),
        quality: stack.port("quality"),
        logistics: stack.port("logistics"),
        finance: stack.port("finance"),
        saga: stack.port("saga"),
    };
    let clients = Clients::connect(&ports).await?;
    seed_catalog(&clients).await?;
    seed_catalog(&clients).await?;
    let bus = gendan_messaging::Bus::connect(&nats_url, "sim-test").await?;
    let sim = Simulator::start(
        bus,
        clients.clone(),
        SimOptions {
            day: Duration::ZERO,
            seed: 3,
        },
    )
    .await?;
    let count: usize = std::env::var("SIM_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6);
    let mut ids = Vec::new();
    let mut orders = clients.orders.clone();
    for index in 0..count {
        let request = sample_order(3, "t", index);
        let created = orders.create_order(request).await?.into_inner();
        ids.push(created.order.expect("an order").order_id);
    }
    let started = Instant::now();
    let mut outcome = Ok(());
    loop {
        let mut snapshot = Vec::new();
        for id in &ids {
            let order = orders
                .get_order(v1::GetOrderRequest {
                    order_id: id.clone(),
                })
                .await?
                .into_inner();
            snapshot.push(order);
        }
        let closed = snapshot
            .iter()
            .filter(|o| o.phase == Phase::Closed as i32 && o.workflow_status == "completed")
            .count();
        let phases: Vec<String> = snapshot
            .iter()
            .map(|o| {
                format!(
                    "{}:{}",
                    Phase::try_from(o.phase)
                        .unwrap_or(Phase::Unspecified)
                        .short_name(),
                    o.workflow_status
                )
            })
            .collect();
        println!(
            "[{:>5.1}s] {closed}/{} closed {phases:?} {:?}",
            started.elapsed().as_secs_f64(),
            ids.len(),
            sim.stats()
        );
        if closed == ids.len() {
            break;
        }
        if started.elapsed() > Duration::from_secs(240) {
            let mut saga = clients.saga.clone();
            for order in snapshot.iter().filter(|o| o.phase != Phase::Closed as i32) {
                let state = saga
                    .get_saga(v1::GetSagaRequest {
                        order_id: order.order_id.clone(),
                    })
                    .await?
                    .into_inner();
                let open: Vec<_> = state
                    .steps
                    .iter()
                    .filter(|s| s.status != "done" && s.status != "skipped")
                    .map(|s| format!("{}={} {}", s.step, s.status, s.last_error))
                    .collect();
                println!("{} {} {:?}", order.order_id, state.stalled_reason, open);
            }
            outcome = Err(anyhow::anyhow!("orders did not close in time"));
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let stats = sim.stop().await?;
    println!("{stats:?}");
    stack.shutdown().await?;
    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await;
    outcome?;
    assert_eq!(stats.errors, 0);
    Ok(())
}
