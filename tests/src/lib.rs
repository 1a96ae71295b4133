//! Harness for tests that talk to real NATS and real PostgreSQL.
//!
//! Every test gets its own `nats-server` with JetStream in a temporary store
//! ([`TestNats`]) and its own database on the local PostgreSQL ([`TestDb`]),
//! so tests run in parallel without seeing each other's streams or rows.
//!
//! The NATS binary is `$GENDAN_TEST_NATS_SERVER`, else `nats-server` on the
//! PATH; the server is `$GENDAN_TEST_DATABASE_URL`, else the local default.
//!
//! [`Running`] starts one service on both, as the saga's counterpart: a
//! test sends it commands, repeats them on purpose and reads its rows.
//! [`enter_test_customers`] puts the customers the orders tests order for
//! in the orders service's customer master (an order needs its customer).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

mod running;
pub mod world;
pub use running::{Running, ServiceApp};
use tokio::process::{Child, Command};

/// A private nats-server with JetStream, killed on drop.
pub struct TestNats {
    pub url: String,
    pub port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl TestNats {
    pub async fn start() -> anyhow::Result<Self> {
        let store = tempfile::tempdir()?;
        let port = free_port()?;
        let mut nats = TestNats {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store,
            child: None,
        };
        nats.spawn().await?;
        Ok(nats)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let binary =
            std::env::var("GENDAN_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned());
        let child = Command::new(&binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| anyhow::anyhow!("cannot start {binary}: {err}"))?;
        self.child = Some(child);
        for _ in 0..100 {
            if let Ok(client) = async_nats::connect(&self.url).await {
                // JetStream answers once the store is ready.
                let js = async_nats::jetstream::new(client);
                if js.query_account().await.is_ok() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("nats-server on port {} did not become ready", self.port)
    }

    /// Kills the server and starts it again on the same port and store.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        self.spawn().await
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.store.path().to_owned()
    }
}

/// A fresh database on the local PostgreSQL.
pub struct TestDb {
    pub url: String,
    pub name: String,
}

impl TestDb {
    pub async fn create() -> anyhow::Result<Self> {
        let server = std::env::var("GENDAN_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("gendan_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&server).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        let _ = admin.close().await;
        let (base, _) = server
            .rsplit_once('/')
            .ok_or_else(|| anyhow::anyhow!("database url without a database: {server}"))?;
        Ok(TestDb {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads what was published on a subject, from the start of its stream, via
/// an ephemeral consumer (the test's own view, not a service's durable one).
pub struct SubjectReader {
    messages: async_nats::jetstream::consumer::pull::Stream,
}

/// One message as a test sees it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub subject: String,
    pub headers: async_nats::HeaderMap,
    pub payload: bytes::Bytes,
}

impl Seen {
    pub fn envelope(&self) -> anyhow::Result<gendan_proto::v1::Envelope> {
        use prost::Message as _;
        Ok(gendan_proto::v1::Envelope::decode(self.payload.as_ref())?)
    }

    pub fn decode<M: prost::Message + Default>(&self) -> anyhow::Result<M> {
        Ok(M::decode(self.envelope()?.payload.as_slice())?)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.as_str().to_owned())
    }

    pub fn type_name(&self) -> String {
        self.envelope().map(|e| e.r#type).unwrap_or_default()
    }
}

impl SubjectReader {
    pub async fn open(nats_url: &str, stream: &str, filter: &str) -> anyhow::Result<Self> {
        let client = async_nats::connect(nats_url).await?;
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream(stream).await?;
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                filter_subject: filter.to_owned(),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(300),
                ..Default::default()
            })
            .await?;
        let messages = consumer.messages().await?;
        Ok(SubjectReader { messages })
    }

    /// The next message, or `None` after `timeout` without one.
    pub async fn next(&mut self, timeout: Duration) -> anyhow::Result<Option<Seen>> {
        use futures::StreamExt;
        match tokio::time::timeout(timeout, self.messages.next()).await {
            Err(_) => Ok(None),
            Ok(None) => Ok(None),
            Ok(Some(message)) => {
                let message = message.map_err(|err| anyhow::anyhow!("{err}"))?;
                Ok(Some(Seen {
                    subject: message.subject.to_string(),
                    headers: message.headers.clone().unwrap_or_default(),
                    payload: message.payload.clone(),
                }))
            }
        }
    }

    /// Skips messages until one of type `type_name` arrives.
    pub async fn next_of_type(
        &mut self,
        type_name: &str,
        timeout: Duration,
    ) -> anyhow::Result<Seen> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Some(seen) if seen.type_name() == type_name => return Ok(seen),
                Some(_) => continue,
                None => anyhow::bail!("no {type_name} within {timeout:?}"),
            }
        }
    }
}

/// Service settings for a test: the test's database and NATS, a free port.
pub fn service_settings(
    db: &TestDb,
    nats: &TestNats,
    schema: &str,
) -> gendan_settings::ServiceSettings {
    gendan_settings::ServiceSettings {
        common: gendan_settings::Common {
            database_url: gendan_settings::Secret::new(db.url.clone()),
            nats_url: nats.url.clone(),
            stream_replicas: 1,
            db_max_connections: 5,
            ..Default::default()
        },
        grpc_addr: "127.0.0.1:0".to_owned(),
        schema: schema.to_owned(),
    }
}

/// The customers the orders tests create orders for: (customer id, name).
/// Tests name them by name (`customer: "Acme"`), as sales systems did
/// before the customer master, and see that name on the order.
pub const TEST_CUSTOMERS: [(&str, &str); 3] = [
    ("ACME", "Acme"),
    ("BOLT", "Bolt GmbH"),
    ("DOOMED", "Doomed Ltd"),
];

/// A customer for tests: an export customer in Germany with the defaults
/// the tests' orders use (USD, FOB, 30 % deposit) and no rules of its own.
pub fn test_customer(customer_id: &str, name: &str) -> gendan_proto::v1::Customer {
    gendan_proto::v1::Customer {
        customer_id: customer_id.to_owned(),
        name: name.to_owned(),
        country: "DE".to_owned(),
        currency: "USD".to_owned(),
        payment_terms: "30% T/T deposit, 70% against B/L copy".to_owned(),
        incoterm: "FOB".to_owned(),
        ..Default::default()
    }
}

/// Enters [`TEST_CUSTOMERS`] through `UpsertCustomer` of the orders service
/// at `endpoint` (`http://127.0.0.1:<port>`).
pub async fn enter_test_customers(endpoint: &str) -> anyhow::Result<()> {
    let mut client =
        gendan_proto::v1::order_service_client::OrderServiceClient::connect(endpoint.to_owned())
            .await?;
    for (customer_id, name) in TEST_CUSTOMERS {
        client
            .upsert_customer(test_customer(customer_id, name))
            .await
            .map_err(|status| anyhow::anyhow!("upsert customer {customer_id}: {status}"))?;
    }
    Ok(())
}

/// Waits until a service behind `pool` has handled the message `message_id`
/// (its consumer's inbox has it). A command repeated on purpose is answered
/// with the same fact under the same event id, which the bus already holds,
/// so nothing new is published: a test reads what the repeat did from the
/// records once this returns.
pub async fn handled(pool: &sqlx::PgPool, message_id: &str) -> anyhow::Result<()> {
    eventually(Duration::from_secs(30), "the message handled", || async {
        let handled: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE message_id = $1")
            .bind(message_id)
            .fetch_one(pool)
            .await
            .ok()?;
        (handled > 0).then_some(())
    })
    .await
}

/// Sends a command to `service` again on purpose, as the saga re-sends one,
/// and waits until the service has handled it (see [`handled`]).
pub async fn repeat_command<M: prost::Message + gendan_proto::TypeName>(
    bus: &gendan_messaging::Bus,
    pool: &sqlx::PgPool,
    service: &str,
    order_id: &str,
    payload: &M,
) -> anyhow::Result<()> {
    let message = gendan_messaging::Outgoing::command(
        "test",
        service,
        order_id,
        payload,
        &gendan_messaging::Cause::root(order_id),
    );
    bus.publish(&message).await?;
    handled(pool, message.event_id()).await
}
