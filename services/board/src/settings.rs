//! Where the board listens and where it reads from: the HTTP address, the
//! gRPC URL of each service it calls, the NATS URL of the deployment and
//! an optional link template into the trace UI.
//!
//! | variable | default |
//! | --- | --- |
//! | `GENDAN_BOARD__HTTP_ADDR` | `127.0.0.1:8080` |
//! | `GENDAN_BOARD__ORDERS_URL` | `http://127.0.0.1:50051` |
//! | `GENDAN_BOARD__SAGA_URL` | `http://127.0.0.1:50053` |
//! | `GENDAN_BOARD__LOGISTICS_URL` | `http://127.0.0.1:50056` |
//! | `GENDAN_BOARD__FINANCE_URL` | `http://127.0.0.1:50057` |
//! | `GENDAN_BOARD__TRACE_URL` | none; e.g. `http://127.0.0.1:16686/trace/{trace_id}` |
//! | `GENDAN_NATS_URL` | as every service (`gendan-settings`) |
//!
//! The all-in-one `gendan` binary fills [`Settings`] itself with the ports
//! its services were bound to.

use gendan_settings::{Common, string};

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_ORDERS_URL: &str = "http://127.0.0.1:50051";
pub const DEFAULT_SAGA_URL: &str = "http://127.0.0.1:50053";
pub const DEFAULT_LOGISTICS_URL: &str = "http://127.0.0.1:50056";
pub const DEFAULT_FINANCE_URL: &str = "http://127.0.0.1:50057";

/// The placeholder a trace link template must contain.
pub const TRACE_ID_PLACEHOLDER: &str = "{trace_id}";

/// Everything the board needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `host:port` to listen on (`127.0.0.1:0` picks a free port).
    pub http_addr: String,
    pub upstream: Upstream,
    /// One server or a comma-separated cluster, as `GENDAN_NATS_URL`.
    pub nats_url: String,
    /// A link into the trace UI with `{trace_id}` where the id goes;
    /// `None` shows trace ids as text.
    pub trace_url: Option<String>,
}

/// The gRPC URL of each service the board reads from (`http://host:port`).
#[derive(Debug, Clone)]
pub struct Upstream {
    pub orders: String,
    pub saga: String,
    pub finance: String,
    pub logistics: String,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream {
            orders: DEFAULT_ORDERS_URL.to_owned(),
            saga: DEFAULT_SAGA_URL.to_owned(),
            finance: DEFAULT_FINANCE_URL.to_owned(),
            logistics: DEFAULT_LOGISTICS_URL.to_owned(),
        }
    }
}

impl Settings {
    /// Settings with explicit addresses and no trace link (the all-in-one
    /// binary and tests).
    pub fn new(
        http_addr: impl Into<String>,
        upstream: Upstream,
        nats_url: impl Into<String>,
    ) -> Self {
        Settings {
            http_addr: http_addr.into(),
            upstream,
            nats_url: nats_url.into(),
            trace_url: None,
        }
    }

    /// `GENDAN_BOARD__TRACE_URL`, trimmed, when set and not empty.
    pub fn trace_url_from_env() -> Option<String> {
        let trace_url = string("GENDAN_BOARD__TRACE_URL", "");
        Some(trace_url.trim().to_owned()).filter(|url| !url.is_empty())
    }

    /// `GENDAN_BOARD__HTTP_ADDR` (or the settings file's), else the
    /// default: where the board listens, alone or in the all-in-one binary.
    pub fn http_addr_from_env() -> String {
        string("GENDAN_BOARD__HTTP_ADDR", DEFAULT_HTTP_ADDR)
    }

    /// Reads the `GENDAN_BOARD__*` variables (or the `[board]` table of the
    /// settings file) and the NATS URL every service shares; `build` checks
    /// them.
    pub fn from_env() -> gendan_settings::Result<Self> {
        let common = Common::from_env()?;
        Ok(Settings {
            http_addr: Self::http_addr_from_env(),
            upstream: Upstream {
                orders: string("GENDAN_BOARD__ORDERS_URL", DEFAULT_ORDERS_URL),
                saga: string("GENDAN_BOARD__SAGA_URL", DEFAULT_SAGA_URL),
                finance: string("GENDAN_BOARD__FINANCE_URL", DEFAULT_FINANCE_URL),
                logistics: string("GENDAN_BOARD__LOGISTICS_URL", DEFAULT_LOGISTICS_URL),
            },
            nats_url: common.nats_url,
            trace_url: Self::trace_url_from_env(),
        })
    }

    /// The trace link template, when set, is an http(s) URL with the
    /// placeholder: anything else would put a `javascript:` or dead link on
    /// every timeline row.
    pub fn check(&self) -> gendan_settings::Result<()> {
        let Some(template) = &self.trace_url else {
            return Ok(());
        };
        let problem = if !(template.starts_with("http://") || template.starts_with("https://")) {
            Some("must be an http:// or https:// URL")
        } else if !template.contains(TRACE_ID_PLACEHOLDER) {
            Some("must contain {trace_id} where the trace id goes")
        } else {
            None
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(gendan_settings::Error {
                name: "GENDAN_BOARD__TRACE_URL".to_owned(),
                value: template.clone(),
                problem: problem.to_owned(),
            }),
        }
    }
}
