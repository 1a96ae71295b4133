//! The whole system in one process: every service's `Application`, each on
//! its own gRPC port, sharing one cancellation token.

use anyhow::Context;
use gendan_settings::{Common, ServiceSettings};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Where each service listens.
#[derive(Debug, Clone)]
pub struct Addrs {
    pub orders: String,
    pub production: String,
    pub saga: String,
}

impl Addrs {
    /// The per-service defaults, overridable with `GENDAN_<SERVICE>__GRPC_ADDR`.
    pub fn from_env() -> Self {
        let addr = |service: &str, default: &str| {
            gendan_settings::string(
                &format!("GENDAN_{}__GRPC_ADDR", service.to_ascii_uppercase()),
                default,
            )
        };
        Addrs {
            orders: addr("orders", "127.0.0.1:50051"),
            production: addr("production", "127.0.0.1:50052"),
            saga: addr("saga", "127.0.0.1:50053"),
        }
    }

    /// Free ports picked by the OS (demo, tests).
    pub fn ephemeral() -> Self {
        Addrs {
            orders: "127.0.0.1:0".into(),
            production: "127.0.0.1:0".into(),
            saga: "127.0.0.1:0".into(),
        }
    }
}

/// Running services.
pub struct Stack {
    pub orders_port: u16,
    pub production_port: u16,
    pub saga_port: u16,
    cancel: CancellationToken,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
}

fn settings(common: &Common, addr: &str, service: &str) -> ServiceSettings {
    let schema = gendan_settings::string(
        &format!("GENDAN_{}__SCHEMA", service.to_ascii_uppercase()),
        service,
    );
    ServiceSettings {
        common: common.clone(),
        grpc_addr: addr.to_owned(),
        schema,
    }
}

impl Stack {
    pub async fn start(
        common: &Common,
        addrs: &Addrs,
        saga_options: gendan_saga::Options,
    ) -> anyhow::Result<Self> {
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();

        let orders = gendan_orders::Application::build(settings(common, &addrs.orders, "orders"))
            .await
            .context("starting the orders service")?;
        let production = gendan_production::Application::build(settings(
            common,
            &addrs.production,
            "production",
        ))
        .await
        .context("starting the production service")?;
        let saga =
            gendan_saga::Application::build(settings(common, &addrs.saga, "saga"), saga_options)
                .await
                .context("starting the saga coordinator")?;
        let (orders_port, production_port, saga_port) =
            (orders.port(), production.port(), saga.port());

        let token = cancel.clone();
        tasks.spawn(async move {
            (
                "orders",
                orders.run_until_stopped(token).await.map_err(Into::into),
            )
        });
        let token = cancel.clone();
        tasks.spawn(async move {
            (
                "production",
                production
                    .run_until_stopped(token)
                    .await
                    .map_err(Into::into),
            )
        });
        let token = cancel.clone();
        tasks.spawn(async move {
            (
                "saga",
                saga.run_until_stopped(token).await.map_err(Into::into),
            )
        });

        Ok(Stack {
            orders_port,
            production_port,
            saga_port,
            cancel,
            tasks,
        })
    }

    /// Waits until a service stops on its own (an error) or `stop` fires.
    pub async fn run_until(mut self, stop: CancellationToken) -> anyhow::Result<()> {
        let failure = tokio::select! {
            _ = stop.cancelled() => None,
            joined = self.tasks.join_next() => joined,
        };
        self.cancel.cancel();
        let mut result = Ok(());
        if let Some(joined) = failure {
            result = describe(joined);
        }
        while let Some(joined) = self.tasks.join_next().await {
            if let (Ok(()), Err(err)) = (&result, describe(joined)) {
                result = Err(err);
            }
        }
        result
    }

    pub async fn shutdown(self) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        stop.cancel();
        self.run_until(stop).await
    }
}

fn describe(
    joined: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match joined {
        Ok((_, Ok(()))) => Ok(()),
        Ok((service, Err(err))) => Err(err.context(format!("{service} service stopped"))),
        Err(panic) => Err(anyhow::anyhow!("a service panicked: {panic}")),
    }
}
