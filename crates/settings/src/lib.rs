//! Settings every service shares, read from defaults, then a TOML file
//! named by `GENDAN_CONFIG`, then `GENDAN_*` environment variables (`__`
//! separates a service prefix from its key). In the file the same names
//! appear without the prefix, in lower case, a service's keys in its table:
//!
//! ```toml
//! database_url = "postgres://gendan@db:5432/gendan"
//! stream_replicas = 3
//! [orders]
//! grpc_addr = "0.0.0.0:50051"
//! notice_webhook_url = "http://notifier:8080/notices"
//! ```
//!
//! | variable | default |
//! | --- | --- |
//! | `GENDAN_DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/postgres` |
//! | `GENDAN_NATS_URL` | `nats://127.0.0.1:4222` |
//! | `GENDAN_STREAM_REPLICAS` | `1` |
//! | `GENDAN_DB_MAX_CONNECTIONS` | `10` |
//! | `GENDAN_GRPC_MAX_IN_FLIGHT` | twice `GENDAN_DB_MAX_CONNECTIONS` (1–10000) |
//! | `GENDAN_GRPC_MAX_QUEUED` | `256` (0–100000) |
//! | `GENDAN_GRPC_QUEUE_WAIT_MS` | `2000` (0–60000) |
//! | `GENDAN_<SERVICE>__GRPC_ADDR` | per service (`127.0.0.1:50051` orders, `…52` production, `…53` saga) |
//! | `GENDAN_<SERVICE>__SCHEMA` | the service name |
//!
//! The database URL may carry a password; [`Secret`] keeps it out of logs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use gendan_storage::DatabaseSettings;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

#[derive(Debug, Clone, thiserror::Error)]
#[error("setting {name}={value:?}: {problem}")]
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
    pub grpc: GrpcLimits,
}

/// How much work each gRPC server takes on at once: requests beyond
/// `max_in_flight` wait in a queue of `max_queued` for `queue_wait_ms`, and
/// are then refused with `Unavailable` and a retry hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcLimits {
    pub max_in_flight: usize,
    pub max_queued: usize,
    pub queue_wait_ms: u64,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        GrpcLimits {
            max_in_flight: 20,
            max_queued: 256,
            queue_wait_ms: 2_000,
        }
    }
}

impl Default for Common {
    fn default() -> Self {
        Common {
            database_url: Secret::new(DEFAULT_DATABASE_URL),
            nats_url: DEFAULT_NATS_URL.to_owned(),
            stream_replicas: 1,
            db_max_connections: 10,
            grpc: GrpcLimits::default(),
        }
    }
}

impl Common {
    pub fn from_env() -> Result<Self> {
        // A settings file that cannot be read is an error, not a silent
        // fall-back to defaults.
        if let Err(err) = file_values() {
            return Err(err.clone());
        }
        let defaults = Common::default();
        let db_max_connections = parsed("GENDAN_DB_MAX_CONNECTIONS", defaults.db_max_connections)?;
        Ok(Common {
            database_url: Secret::new(string(
                "GENDAN_DATABASE_URL",
                defaults.database_url.expose(),
            )),
            nats_url: string("GENDAN_NATS_URL", &defaults.nats_url),
            stream_replicas: parsed("GENDAN_STREAM_REPLICAS", defaults.stream_replicas)?,
            db_max_connections,
            grpc: GrpcLimits {
                // Each request holds a connection: twice the pool keeps the
                // pool's own queue short.
                max_in_flight: bounded(
                    "GENDAN_GRPC_MAX_IN_FLIGHT",
                    2 * db_max_connections as usize,
                    1,
                    10_000,
                )?,
                max_queued: bounded(
                    "GENDAN_GRPC_MAX_QUEUED",
                    defaults.grpc.max_queued,
                    0,
                    100_000,
                )?,
                queue_wait_ms: bounded(
                    "GENDAN_GRPC_QUEUE_WAIT_MS",
                    defaults.grpc.queue_wait_ms,
                    0,
                    60_000,
                )?,
            },
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

/// The value of setting `name` (`GENDAN_…`): the environment first, then the
/// `GENDAN_CONFIG` file.
pub fn value(name: &str) -> Option<String> {
    std::env::var(name).ok().or_else(|| {
        file_values()
            .as_ref()
            .ok()
            .and_then(|values| values.get(name).cloned())
    })
}

pub fn string(name: &str, default: &str) -> String {
    value(name).unwrap_or_else(|| default.to_owned())
}

/// The settings file, read once, as `GENDAN_…` names.
fn file_values() -> &'static Result<BTreeMap<String, String>, Error> {
    static VALUES: OnceLock<Result<BTreeMap<String, String>, Error>> = OnceLock::new();
    VALUES.get_or_init(|| match std::env::var("GENDAN_CONFIG") {
        Err(_) => Ok(BTreeMap::new()),
        Ok(path) => {
            let text = std::fs::read_to_string(&path).map_err(|err| Error {
                name: "GENDAN_CONFIG".to_owned(),
                value: path.clone(),
                problem: format!("cannot read the settings file: {err}"),
            })?;
            parse_file(&text).map_err(|problem| Error {
                name: "GENDAN_CONFIG".to_owned(),
                value: path,
                problem,
            })
        }
    })
}

/// TOML keys to `GENDAN_…` names: `stream_replicas` → `GENDAN_STREAM_REPLICAS`,
/// `[orders] grpc_addr` → `GENDAN_ORDERS__GRPC_ADDR`.
fn parse_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|err| format!("not valid TOML: {err}"))?;
    let mut values = BTreeMap::new();
    flatten(&table, "GENDAN_", &mut values)?;
    Ok(values)
}

fn flatten(
    table: &toml::Table,
    prefix: &str,
    values: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for (key, value) in table {
        let name = format!("{prefix}{}", key.to_ascii_uppercase());
        match value {
            toml::Value::Table(inner) => flatten(inner, &format!("{name}__"), values)?,
            toml::Value::String(text) => {
                values.insert(name, text.clone());
            }
            toml::Value::Integer(n) => {
                values.insert(name, n.to_string());
            }
            toml::Value::Float(n) => {
                values.insert(name, n.to_string());
            }
            toml::Value::Boolean(b) => {
                values.insert(name, b.to_string());
            }
            other => return Err(format!("{key}: unsupported value {other}")),
        }
    }
    Ok(())
}

pub fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: fmt::Display,
{
    match value(name) {
        Some(value) => value.trim().parse().map_err(|err: T::Err| Error {
            name: name.to_owned(),
            value: value.clone(),
            problem: err.to_string(),
        }),
        None => Ok(default),
    }
}

/// `name` parsed, and within `min..=max`.
pub fn bounded<T>(name: &str, default: T, min: T, max: T) -> Result<T>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    T::Err: fmt::Display,
{
    let value = parsed(name, default)?;
    if value < min || value > max {
        return Err(Error {
            name: name.to_owned(),
            value: value.to_string(),
            problem: format!("must be between {min} and {max}"),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_become_setting_names() {
        let values = parse_file(
            "database_url = \"postgres://db/x\"\nstream_replicas = 3\n[orders]\ngrpc_addr = \"0.0.0.0:50051\"\n",
        )
        .unwrap();
        assert_eq!(values["GENDAN_DATABASE_URL"], "postgres://db/x");
        assert_eq!(values["GENDAN_STREAM_REPLICAS"], "3");
        assert_eq!(values["GENDAN_ORDERS__GRPC_ADDR"], "0.0.0.0:50051");
        assert!(parse_file("not = [valid").is_err());
        assert!(parse_file("list = [1, 2]").unwrap_err().contains("list"));
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("postgres://u:hunter2@db/x");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
