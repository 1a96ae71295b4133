//! The faults a chaos run injects while the orders flow, for a fixed period:
//! every few seconds a random service process is killed with SIGKILL and
//! started again after half a second to two seconds; at a third of the
//! period one NATS node is killed and started again; at two thirds
//! PostgreSQL crashes and recovers; optionally, at half, one service process
//! is frozen with SIGSTOP for longer than the saga's command timeout, so its
//! commands are re-sent while it still holds its messages, then thawed.
//! Each fault prints one line with the time since the period began.
//!
//! The choices come from the run's seed, so the same seed picks the same
//! victims (their timing still depends on the machine).

use std::time::{Duration, Instant};

use super::nats::Nats;
use super::servers::Postgres;
use super::services::Services;
use crate::sim::rng::Lcg;

/// How long a killed NATS node stays down.
const NATS_DOWN: Duration = Duration::from_secs(2);
/// How long a crashed PostgreSQL stays down.
const POSTGRES_DOWN: Duration = Duration::from_secs(3);
/// How often the loop looks at the clock and at ended processes.
const TICK: Duration = Duration::from_millis(200);

/// What to inject.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub period: Duration,
    pub kill_every: Duration,
    pub nats_crash: bool,
    pub postgres_crash: bool,
    pub sigstop: bool,
    /// The saga's command timeout; a frozen process stays frozen past it.
    pub command_timeout: Duration,
}

/// What was injected.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    pub service_kills: u32,
    pub nats_kills: u32,
    pub postgres_crashes: u32,
    pub sigstops: u32,
}

fn say(started: Instant, line: &str) {
    println!("  {:>6.1}s  {line}", started.elapsed().as_secs_f64());
}

/// Injects the faults of `plan`, returning once its period is over and no
/// process is left frozen.
pub(crate) async fn inject(
    plan: &Plan,
    rng: &mut Lcg,
    services: &mut Services,
    nats: &mut Nats,
    postgres: &Postgres,
) -> anyhow::Result<Faults> {
    let started = Instant::now();
    let mut faults = Faults::default();
    let mut nats_due = plan.nats_crash.then_some(plan.period / 3);
    let mut postgres_due = plan.postgres_crash.then_some(plan.period * 2 / 3);
    let mut sigstop_due = plan.sigstop.then_some(plan.period / 2);
    let mut next_kill = plan.kill_every;
    // The frozen process and when it is thawed.
    let mut frozen: Option<(usize, Duration)> = None;
    loop {
        let elapsed = started.elapsed();
        if elapsed >= plan.period && frozen.is_none() {
            return Ok(faults);
        }
        for line in services.restart_ended()? {
            say(started, &line);
        }

        if let Some((index, thaw_at)) = frozen
            && elapsed >= thaw_at
        {
            frozen = None;
            let pid = services.signal(index, "CONT").await?;
            say(
                started,
                &format!("SIGCONT {} (pid {pid})", services.name(index)),
            );
        }

        if sigstop_due.is_some_and(|due| elapsed >= due) {
            sigstop_due = None;
            let index = rng.below(services.count() as u64) as usize;
            let hold = plan.command_timeout + Duration::from_secs(5);
            let pid = services.signal(index, "STOP").await?;
            frozen = Some((index, elapsed + hold));
            faults.sigstops += 1;
            say(
                started,
                &format!(
                    "SIGSTOP {} (pid {pid}) for {} s",
                    services.name(index),
                    hold.as_secs()
                ),
            );
        }

        if nats_due.is_some_and(|due| elapsed >= due) {
            nats_due = None;
            let (index, name, pid) = nats.kill_next().await;
            tokio::time::sleep(NATS_DOWN).await;
            let ready_in = nats.restart(index).await?;
            faults.nats_kills += 1;
            say(
                started,
                &format!(
                    "kill -9 nats-server {name} (pid {}), down {} s, JetStream answering {:.1} s after the restart",
                    pid.map(|pid| pid.to_string())
                        .unwrap_or_else(|| "?".to_owned()),
                    NATS_DOWN.as_secs(),
                    ready_in.as_secs_f64()
                ),
            );
        }

        if postgres_due.is_some_and(|due| elapsed >= due) {
            postgres_due = None;
            postgres.crash().await?;
            tokio::time::sleep(POSTGRES_DOWN).await;
            let restarting = Instant::now();
            postgres.launch().await?;
            faults.postgres_crashes += 1;
            say(
                started,
                &format!(
                    "PostgreSQL crashed (pg_ctl -m immediate stop), down {} s, accepting connections {:.1} s after the restart",
                    POSTGRES_DOWN.as_secs(),
                    restarting.elapsed().as_secs_f64()
                ),
            );
        }

        if elapsed >= next_kill && elapsed < plan.period {
            next_kill += plan.kill_every;
            let frozen_index = frozen.map(|(index, _)| index);
            let candidates: Vec<usize> = (0..services.count())
                .filter(|index| Some(*index) != frozen_index)
                .collect();
            if !candidates.is_empty() {
                let index = candidates[rng.below(candidates.len() as u64) as usize];
                let pid = services.kill(index).await;
                let pause = Duration::from_millis(rng.between(500, 2000));
                tokio::time::sleep(pause).await;
                services.spawn(index)?;
                faults.service_kills += 1;
                say(
                    started,
                    &format!(
                        "kill -9 {} (pid {}), restarted after {:.1} s",
                        services.name(index),
                        pid.map(|pid| pid.to_string())
                            .unwrap_or_else(|| "not running".to_owned()),
                        pause.as_secs_f64()
                    ),
                );
            }
        }

        tokio::time::sleep(TICK).await;
    }
}
