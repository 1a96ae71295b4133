//! Settings every service shares, read from defaults and then `GENDAN_*`
//! environment variables (`__` separates a service prefix from its key).
//!
//! | variable | default |
//! | --- | --- |
//! | `GENDAN_DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/postgres` |
//! | `GENDAN_NATS_URL` | `nats://127.0.0.1:4222` |
//! | `GENDAN_STREAM_REPLICAS` | `1` |
//! | `GENDAN_DB_MAX_CONNECTIONS` | `10` |
//! | `GENDAN_<SERVICE>__GRPC_ADDR` | per service (`127.0.0.1:50051` orders, `…52` production, `…53` saga) |
//! | `GENDAN_<SERVICE>__SCHEMA` | the service name |
//!
//! The database URL may carry a password; [`Secret`] keeps it out of logs.

use std::fmt;

use gendan_storage::DatabaseSettings;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?}: {problem}")]
pub struct Error {
    pub name: String,
    pub value: String,
    pub problem: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A value that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Connection settings shared by all services of one deployment.
#[derive(Debug, Clone)]
pub struct Common {
    pub database_url: Secret,
    pub nats_url: String,
    pub stream_replicas: usize,
    pub db_max_connections: u32,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            database_url: Secret::new(DEFAULT_DATABASE_URL),
            nats_url: DEFAULT_NATS_URL.to_owned(),
            stream_replicas: 1,
            db_max_connections: 10,
        }
    }
}

impl Common {
    pub fn from_env() -> Result<Self> {
        let defaults = Common::default();
        Ok(Common {
            database_url: Secret::new(string(
                "GENDAN_DATABASE_URL",
                defaults.database_url.expose(),
            )),
            nats_url: string("GENDAN_NATS_URL", &defaults.nats_url),
            stream_replicas: parsed("GENDAN_STREAM_REPLICAS", defaults.stream_replicas)?,
            db_max_connections: parsed("GENDAN_DB_MAX_CONNECTIONS", defaults.db_max_connections)?,
        })
    }

    /// Database settings for a service schema.
    pub fn database(&self, schema: &str) -> DatabaseSettings {
        DatabaseSettings {
            url: self.database_url.expose().to_owned(),
            schema: schema.to_owned(),
            max_connections: self.db_max_connections,
        }
    }
}

/// Settings of one service: where it listens and which schema it owns.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub common: Common,
    pub grpc_addr: String,
    pub schema: String,
}

impl ServiceSettings {
    /// Reads `GENDAN_<SERVICE>__GRPC_ADDR` and `GENDAN_<SERVICE>__SCHEMA`.
    pub fn from_env(service: &str, default_grpc_addr: &str) -> Result<Self> {
        let prefix = format!("GENDAN_{}__", service.to_ascii_uppercase());
        Ok(ServiceSettings {
            common: Common::from_env()?,
            grpc_addr: string(&format!("{prefix}GRPC_ADDR"), default_grpc_addr),
            schema: string(&format!("{prefix}SCHEMA"), service),
        })
    }

    pub fn database(&self) -> DatabaseSettings {
        self.common.database(&self.schema)
    }
}

pub fn string(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: fmt::Display,
{
    match std::env::var(name) {
        Ok(value) => value.trim().parse().map_err(|err: T::Err| Error {
            name: name.to_owned(),
            value: value.clone(),
            problem: err.to_string(),
        }),
        Err(_) => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("postgres://u:hunter2@db/x");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
