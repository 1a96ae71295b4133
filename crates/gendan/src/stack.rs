//! The whole system in one process: every service's `Application`, each on
//! its own gRPC port, and the web board on its HTTP port reading from them,
//! sharing one cancellation token and, through [`StackOptions`], one clock
//! for the services that read dates from one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gendan_runtime::clock::{Clock, SystemClock};
use gendan_settings::{Common, ServiceSettings};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Every service of the system and its default gRPC address.
pub const SERVICES: [(&str, &str); 7] = [
    ("orders", "127.0.0.1:50051"),
    ("production", "127.0.0.1:50052"),
    ("saga", "127.0.0.1:50053"),
    ("procurement", "127.0.0.1:50054"),
    ("quality", "127.0.0.1:50055"),
    ("logistics", "127.0.0.1:50056"),
    ("finance", "127.0.0.1:50057"),
];

/// The web board's name in a stack (its address is HTTP, not gRPC).
pub const BOARD: &str = "board";

/// Where each service listens.
#[derive(Debug, Clone)]
pub struct Addrs(BTreeMap<&'static str, String>);

impl Addrs {
    /// The per-service defaults, overridable with `GENDAN_<SERVICE>__GRPC_ADDR`,
    /// and the board's, overridable with `GENDAN_BOARD__HTTP_ADDR`.
    pub fn from_env() -> Self {
        let mut addrs: BTreeMap<&'static str, String> = SERVICES
            .iter()
            .map(|(service, default)| {
                let variable = format!("GENDAN_{}__GRPC_ADDR", service.to_ascii_uppercase());
                (*service, gendan_settings::string(&variable, default))
            })
            .collect();
        addrs.insert(
            BOARD,
            board_addr_or_free(&gendan_board::Settings::http_addr_from_env()),
        );
        Addrs(addrs)
    }

    /// Free ports picked by the OS (demo, tests).
    pub fn ephemeral() -> Self {
        Addrs(
            SERVICES
                .iter()
                .map(|(service, _)| *service)
                .chain([BOARD])
                .map(|service| (service, "127.0.0.1:0".to_owned()))
                .collect(),
        )
    }

    /// The same, with the board on `addr`.
    pub fn with_board(mut self, addr: impl Into<String>) -> Self {
        self.0.insert(BOARD, addr.into());
        self
    }

    /// The address of `service`.
    pub fn of(&self, service: &str) -> &str {
        self.0
            .get(service)
            .map(String::as_str)
            .unwrap_or("127.0.0.1:0")
    }
}

/// How the stack's services run beyond their settings.
#[derive(Clone)]
pub struct StackOptions {
    pub saga: gendan_saga::Options,
    /// The business calendar of the services that read one (saga, finance,
    /// procurement, logistics); the saga's own `clock` is replaced by it.
    pub calendar: Arc<dyn Clock>,
    /// How often finance's dunning worker looks for reminders due; `None`
    /// keeps the service's default.
    pub dunning_poll: Option<Duration>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            saga: gendan_saga::Options::default(),
            calendar: Arc::new(SystemClock),
            dunning_poll: None,
        }
    }
}

impl StackOptions {
    /// The system clock, with the saga's options as given.
    pub fn with_saga(saga: gendan_saga::Options) -> Self {
        StackOptions {
            saga,
            ..StackOptions::default()
        }
    }
}

/// Running services.
pub struct Stack {
    ports: BTreeMap<&'static str, u16>,
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

/// Builds a service's application and runs it on the stack's token.
macro_rules! start_service {
    ($stack:ident, $name:literal, $build:expr) => {{
        let app = $build
            .await
            .context(concat!("starting the ", $name, " service"))?;
        $stack.ports.insert($name, app.port());
        let token = $stack.cancel.clone();
        $stack.tasks.spawn(async move {
            (
                $name,
                app.run_until_stopped(token).await.map_err(Into::into),
            )
        });
    }};
}

impl Stack {
    pub async fn start(
        common: &Common,
        addrs: &Addrs,
        options: StackOptions,
    ) -> anyhow::Result<Self> {
        let all: Vec<&str> = SERVICES
            .iter()
            .map(|(service, _)| *service)
            .chain([BOARD])
            .collect();
        Self::start_only(common, addrs, options, &all).await
    }

    /// Starts only the named services (a test runs one of them apart to
    /// crash and restart it).
    pub async fn start_only(
        common: &Common,
        addrs: &Addrs,
        options: StackOptions,
        services: &[&str],
    ) -> anyhow::Result<Self> {
        let calendar = options.calendar;
        let mut stack = Stack {
            ports: BTreeMap::new(),
            cancel: CancellationToken::new(),
            tasks: JoinSet::new(),
        };
        let at = |service| settings(common, addrs.of(service), service);
        let wanted = |service: &str| services.contains(&service);
        if wanted("orders") {
            start_service!(
                stack,
                "orders",
                gendan_orders::Application::build(at("orders"))
            );
        }
        if wanted("production") {
            start_service!(
                stack,
                "production",
                gendan_production::Application::build(at("production"))
            );
        }
        if wanted("procurement") {
            start_service!(stack, "procurement", async {
                let app = gendan_procurement::Application::build(at("procurement")).await?;
                let options = gendan_procurement::Options {
                    clock: calendar.clone(),
                    ..gendan_procurement::Options::from_env()?
                };
                Ok::<_, gendan_procurement::Error>(app.with_options(options))
            });
        }
        if wanted("quality") {
            start_service!(
                stack,
                "quality",
                gendan_quality::Application::build(at("quality"))
            );
        }
        if wanted("logistics") {
            start_service!(
                stack,
                "logistics",
                gendan_logistics::Application::build_with(
                    at("logistics"),
                    gendan_logistics::Options {
                        clock: calendar.clone(),
                        ..Default::default()
                    }
                )
            );
        }
        if wanted("finance") {
            start_service!(
                stack,
                "finance",
                gendan_finance::Application::build_with(at("finance"), {
                    let defaults = gendan_finance::Options::default();
                    gendan_finance::Options {
                        clock: calendar.clone(),
                        dunning_poll: options.dunning_poll.unwrap_or(defaults.dunning_poll),
                    }
                })
            );
        }
        if wanted("saga") {
            start_service!(
                stack,
                "saga",
                gendan_saga::Application::build(
                    at("saga"),
                    gendan_saga::Options {
                        clock: calendar.clone(),
                        ..options.saga
                    }
                )
            );
        }
        // Last: it reads from the services above, on the ports they got.
        if wanted(BOARD) {
            let settings = stack.board_settings(common, addrs.of(BOARD));
            start_service!(stack, "board", gendan_board::Application::build(settings));
        }
        Ok(stack)
    }

    /// The board's settings: listening on `addr`, reading from this stack's
    /// services on the ports they were bound to, with the trace UI link of
    /// `GENDAN_BOARD__TRACE_URL` when set.
    fn board_settings(&self, common: &Common, addr: &str) -> gendan_board::Settings {
        let url = |service: &str| format!("http://127.0.0.1:{}", self.port(service));
        let upstream = gendan_board::Upstream {
            orders: url("orders"),
            saga: url("saga"),
            finance: url("finance"),
            logistics: url("logistics"),
        };
        let mut settings = gendan_board::Settings::new(addr, upstream, common.nats_url.clone());
        settings.trace_url = gendan_board::Settings::trace_url_from_env();
        settings
    }

    /// The board's address for a person: `http://127.0.0.1:<port>/`, when
    /// the stack runs it.
    pub fn board_url(&self) -> Option<String> {
        self.ports
            .get(BOARD)
            .map(|port| format!("http://127.0.0.1:{port}/"))
    }

    /// The bound gRPC port of `service`.
    pub fn port(&self, service: &str) -> u16 {
        self.ports.get(service).copied().unwrap_or(0)
    }

    /// Every service with its bound port, in name order.
    pub fn ports(&self) -> impl Iterator<Item = (&'static str, u16)> + '_ {
        self.ports.iter().map(|(service, port)| (*service, *port))
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

    /// Drops every service wherever it is, like a crash (tests).
    pub async fn abort(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    pub async fn shutdown(self) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        stop.cancel();
        self.run_until(stop).await
    }
}

/// Where the board listens: `wanted`, or a free port when another program
/// holds it (a second demo, a `gendan up`), said on stderr. The board is
/// optional to the services: a taken port must not stop them.
pub fn board_addr_or_free(wanted: &str) -> String {
    match std::net::TcpListener::bind(wanted) {
        Ok(_) => wanted.to_owned(),
        Err(err) => {
            eprintln!("note: the board cannot listen on {wanted} ({err}); it takes a free port");
            "127.0.0.1:0".to_owned()
        }
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
