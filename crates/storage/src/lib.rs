//! PostgreSQL for one service: a pool whose connections live in the service's
//! own schema, and migrations run at start-up.
//!
//! Each service owns one schema (`orders`, `production`, `saga`) in a shared
//! or dedicated database; `search_path` is set on every connection so
//! service SQL names its tables unqualified and never reaches another
//! service's tables. Several migrators may share a schema (the messaging
//! tables and the service's own) because each ignores the other's versions.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid database url: {0}")]
    Url(#[source] sqlx::Error),
    #[error("invalid schema name {0:?}: use lower-case letters, digits and '_'")]
    SchemaName(String),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a service keeps its data.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub schema: String,
    pub max_connections: u32,
}

/// Opens a pool on `settings.schema`, creating the schema if needed.
pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool> {
    let schema = &settings.schema;
    let valid_schema = !schema.is_empty()
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid_schema {
        return Err(Error::SchemaName(schema.clone()));
    }
    let options: PgConnectOptions = settings.url.parse().map_err(Error::Url)?;
    let options = options.log_statements(tracing::log::LevelFilter::Trace);

    let mut admin = options.connect().await.map_err(Error::Connect)?;
    // Two services starting together may race on CREATE SCHEMA; the loser's
    // unique violation means the schema exists, which is all we need.
    if let Err(err) = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .await
    {
        let exists = admin
            .execute(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
            .await
            .is_ok();
        if !exists {
            return Err(Error::Connect(err));
        }
    }
    let _ = admin.close().await;

    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .map_err(Error::Connect)
}

/// Whether `err` says "not now" rather than "never": the pool is busy or
/// closed, the connection broke, or the server is restarting, out of
/// resources, or chose this transaction as a deadlock or serialization
/// victim (SQLSTATE classes 08, 53, 57 and 40). The same request will do
/// later, so callers are told to retry (`Unavailable`).
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            ["08", "53", "57", "40"]
                .iter()
                .any(|class| code.starts_with(class))
        }),
        _ => false,
    }
}

/// Runs each migrator in turn against the pool's schema (`sqlx::migrate!()`
/// values), each ignoring the versions applied by the others.
pub async fn migrate(pool: &PgPool, migrators: impl IntoIterator<Item = Migrator>) -> Result<()> {
    for mut migrator in migrators {
        migrator.set_ignore_missing(true);
        migrator.run(pool).await?;
    }
    Ok(())
}
