//! The board's URLs, the state every handler shares, the two static files
//! served from the binary, and how a page becomes a response: the whole
//! page, or only its live region when `board.js` asks for it with
//! `X-Board-Fragment: 1`.

use askama::Template;
use axum::Router;
use axum::http::Uri;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::middleware::map_response;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::clients::Clients;
use crate::live::{self, Feed};
use crate::pages::{decisions, ops, order, orders};
use crate::{Error, Result, forms};

const SCRIPT: &str = include_str!("../static/board.js");
const STYLE: &str = include_str!("../static/board.css");

/// The header `board.js` sends when it wants only the live region.
pub const FRAGMENT_HEADER: &str = "x-board-fragment";

/// What every handler gets: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub clients: Clients,
    pub feed: Feed,
    pub jetstream: async_nats::jetstream::Context,
    /// The trace UI link template (`…{trace_id}…`), if any.
    pub trace_url: Option<String>,
    /// Fires when the board stops: open event streams end with it.
    pub shutdown: CancellationToken,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(orders::page))
        .route("/orders/{id}", get(order::page))
        .route("/decisions", get(decisions::page))
        .route("/decisions/{decision_id}", post(decisions::answer))
        .route("/ops", get(ops::page))
        .route("/ops/retry", post(ops::retry))
        .route("/ops/skip", post(ops::skip))
        .route("/events", get(live::events))
        .route("/healthz", get(health))
        .route("/static/board.js", get(script))
        .route("/static/board.css", get(style))
        .fallback(not_found)
        .layer(map_response(security_headers))
        .with_state(state)
}

async fn health() -> &'static str {
    "ok"
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
}

async fn not_found(uri: Uri) -> Error {
    Error::PageNotFound(uri.path().to_owned())
}

/// Scripts and styles come only from the board itself (no inline ones),
/// and no other site may frame its pages.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Whether the request asks for the live region only.
pub fn wants_fragment(headers: &HeaderMap) -> bool {
    headers
        .get(FRAGMENT_HEADER)
        .is_some_and(|value| value.as_bytes() == b"1")
}

/// A rendered template as an HTML response that is never cached (it is
/// what the services said a moment ago) and differs by the fragment header.
pub fn html(template: &impl Template) -> Result<Response> {
    let body = template.render()?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::VARY, "X-Board-Fragment"),
        ],
        Html(body),
    )
        .into_response())
}

/// Refuses a form posted from a page of another site.
pub fn check_origin(headers: &HeaderMap) -> Result<()> {
    let value = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let origin = value(header::ORIGIN);
    let host = value(header::HOST);
    let fetch_site = value(header::HeaderName::from_static("sec-fetch-site"));
    if forms::same_origin(origin.as_deref(), host.as_deref(), fetch_site.as_deref()) {
        Ok(())
    } else {
        Err(Error::CrossSite)
    }
}
