//! The board: the merchandiser's web view of every order, served as HTML
//! by axum, read only through the services' gRPC APIs and the NATS event
//! stream (never their tables).
//!
//! How data flows through the modules:
//! - [`settings`] says where the board listens and where orders, the saga,
//!   finance, logistics and NATS are; [`clients`] holds one lazily
//!   connected, cheap-to-clone gRPC client per service.
//! - [`routes`] maps URLs to the [`pages`]: the orders list (`/`), one
//!   order (`/orders/{id}`), decisions (`/decisions`) and operations
//!   (`/ops`). A page handler checks its query or form with [`forms`],
//!   calls the services concurrently, turns their answers into view
//!   structs ([`view`] formats dates, money and phases; [`chart`] lays out
//!   the time-and-action calendar) and renders them with askama templates
//!   checked at compile time (`templates/`). A section whose service is
//!   down says so and the rest of the page still renders; everything
//!   else that fails becomes an error page through [`error`].
//! - [`live`] subscribes to `gendan.evt.>` on core NATS, turns each
//!   envelope into a small update (order, type, time, source) and fans it
//!   out over a broadcast channel to every browser listening on `/events`
//!   (server-sent events). `static/board.js` re-fetches the page's live
//!   region (`X-Board-Fragment: 1`) when an update arrives, so the pages
//!   change without a reload, and work as plain links and forms without
//!   JavaScript.
//!
//! [`Application`] binds the listener and connects in
//! [`build`](Application::build), so [`port`](Application::port) is known
//! before [`run_until_stopped`](Application::run_until_stopped) serves.

pub mod chart;
pub mod clients;
pub mod error;
pub mod forms;
pub mod live;
pub mod pages;
pub mod routes;
pub mod settings;
pub mod view;

use async_nats::jetstream;
use gendan_messaging::{Bus, subjects};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::{Error, Result};
pub use settings::{Settings, Upstream};

pub const SERVICE: &str = "board";

/// The board, bound and connected, ready to serve.
pub struct Application {
    listener: TcpListener,
    port: u16,
    clients: clients::Clients,
    events: async_nats::Subscriber,
    jetstream: jetstream::Context,
    feed: live::Feed,
    trace_url: Option<String>,
}

impl Application {
    /// Binds the HTTP listener, prepares the gRPC clients (they connect on
    /// first use, so a service that is down only empties its sections),
    /// connects to NATS and subscribes to the events, so nothing published
    /// after this returns is missed.
    pub async fn build(settings: Settings) -> Result<Self> {
        settings.check()?;
        let listener = TcpListener::bind(&settings.http_addr)
            .await
            .map_err(|source| Error::Bind {
                addr: settings.http_addr.clone(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| Error::Bind {
                addr: settings.http_addr.clone(),
                source,
            })?
            .port();
        let clients = clients::Clients::connect_lazy(&settings.upstream)?;
        let bus = Bus::connect(&settings.nats_url, "gendan-board").await?;
        let events = bus.client().subscribe(subjects::EVENTS).await?;
        Ok(Application {
            listener,
            port,
            clients,
            events,
            jetstream: bus.jetstream().clone(),
            feed: live::Feed::new(),
            trace_url: settings.trace_url,
        })
    }

    /// The bound HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves the pages and follows the event stream until `cancel` fires
    /// or the event stream ends; open event streams to browsers are closed
    /// so the server can stop.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> Result<()> {
        let stop = cancel.child_token();
        let following = tokio::spawn(live::follow(self.events, self.feed.clone(), stop.clone()));
        let state = routes::AppState {
            clients: self.clients,
            feed: self.feed,
            jetstream: self.jetstream,
            trace_url: self.trace_url,
            shutdown: stop.clone(),
        };
        let served = axum::serve(self.listener, routes::router(state))
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .await;
        stop.cancel();
        let followed = following
            .await
            .map_err(|err| Error::Feed(format!("the event task panicked: {err}")))?;
        served.map_err(Error::Serve)?;
        followed
    }
}
