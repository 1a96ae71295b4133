//! One service under test ([`Running`]): its own NATS server and database,
//! its pool (its schema) to read what it stored, a bus to send it commands
//! as the saga does, and a stop that returns the service's own error.
//!
//! Any service's `Application` runs here through [`ServiceApp`]; how it is
//! built (with a manual clock, say) stays with the test.

use std::future::Future;
use std::pin::Pin;

use gendan_messaging::{Bus, Cause, Outgoing};
use gendan_proto::TypeName;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{TestDb, TestNats, handled, service_settings};

/// What a test needs of a service's `Application`.
pub trait ServiceApp: Send + 'static {
    fn port(&self) -> u16;
    fn pool(&self) -> PgPool;
    /// Serves until `cancel`; the service's error, if it stops with one.
    fn serve(
        self,
        cancel: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
}

macro_rules! service_apps {
    ($($app:ty),* $(,)?) => {
        $(impl ServiceApp for $app {
            fn port(&self) -> u16 {
                <$app>::port(self)
            }

            fn pool(&self) -> PgPool {
                <$app>::pool(self).clone()
            }

            fn serve(
                self,
                cancel: CancellationToken,
            ) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> {
                Box::pin(async move { Ok(self.run_until_stopped(cancel).await?) })
            }
        })*
    };
}

service_apps!(
    gendan_orders::Application,
    gendan_production::Application,
    gendan_procurement::Application,
    gendan_quality::Application,
    gendan_logistics::Application,
    gendan_finance::Application,
    gendan_saga::Application,
);

/// A service running on a NATS server and a database of its own.
pub struct Running {
    pub nats: TestNats,
    pub db: TestDb,
    /// To send the service commands and external events.
    pub bus: Bus,
    /// The service's own pool (its schema on the search path).
    pub pool: PgPool,
    /// Its gRPC port.
    pub port: u16,
    /// Its name: the schema, and the token of its command subjects.
    pub service: &'static str,
    cancel: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Builds `service` with `build` on fresh servers and runs it.
    pub async fn start<A, F, Fut, E>(service: &'static str, build: F) -> anyhow::Result<Self>
    where
        A: ServiceApp,
        F: FnOnce(gendan_settings::ServiceSettings) -> Fut,
        Fut: Future<Output = Result<A, E>>,
        E: Into<anyhow::Error>,
    {
        gendan_telemetry::init_for_tests();
        let nats = TestNats::start().await?;
        let db = TestDb::create().await?;
        let app = build(service_settings(&db, &nats, service))
            .await
            .map_err(Into::into)?;
        let port = app.port();
        let pool = app.pool();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.serve(cancel.clone()));
        let bus = Bus::connect(&nats.url, "test").await?;
        Ok(Running {
            nats,
            db,
            bus,
            pool,
            port,
            service,
            cancel,
            task,
        })
    }

    /// The gRPC endpoint, for a client.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends the service a command as the saga does; its message id.
    pub async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<String> {
        let message = Outgoing::command(
            "test",
            self.service,
            order_id,
            payload,
            &Cause::root(order_id),
        );
        self.bus.publish(&message).await?;
        Ok(message.event_id().to_owned())
    }

    /// Sends a command again on purpose and waits until the service handled
    /// it: its answer is the same fact under the same event id, which the
    /// bus already holds, so what the repeat did is read from the records.
    pub async fn repeat<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let id = self.command(order_id, payload).await?;
        handled(&self.pool, &id).await
    }

    /// Stops the service and returns how it ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.task.await?
    }
}
