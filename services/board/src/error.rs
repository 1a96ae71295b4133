//! The board's one error type and how each error looks to a person: an
//! HTML page with the status, what went wrong in words, and a link back.
//!
//! A service's gRPC status keeps its meaning: `NotFound` is a 404,
//! `InvalidArgument` a 400 and `FailedPrecondition` a 409 carrying the
//! service's own message (what the merchandiser must change), `Unavailable`
//! a 503. Errors of the board itself (rendering, start-up) are 500s and are
//! logged; their details stay in the log.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use tonic::Code;

use crate::forms;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Settings(#[from] gendan_settings::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the {service} URL {url:?} is not valid: {source}")]
    Endpoint {
        service: &'static str,
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error(transparent)]
    Messaging(#[from] gendan_messaging::Error),
    #[error("cannot follow the event stream: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("the event feed stopped: {0}")]
    Feed(String),
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
    #[error("there is no order {0}")]
    OrderNotFound(String),
    #[error("there is no page {0}")]
    PageNotFound(String),
    #[error(transparent)]
    Form(#[from] forms::Error),
    #[error("the form was not sent from this board")]
    CrossSite,
    #[error("{service}: {}", .status.message())]
    Upstream {
        service: &'static str,
        // Boxed: a status is large, and every `Result` here carries this.
        status: Box<tonic::Status>,
    },
    #[error("rendering the page: {0}")]
    Render(#[from] askama::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failed call to `service`.
    pub fn upstream(service: &'static str, status: tonic::Status) -> Self {
        Error::Upstream {
            service,
            status: Box::new(status),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Error::OrderNotFound(_) | Error::PageNotFound(_) => StatusCode::NOT_FOUND,
            Error::Form(_) => StatusCode::BAD_REQUEST,
            Error::CrossSite => StatusCode::FORBIDDEN,
            Error::Upstream { status, .. } => match status.code() {
                Code::NotFound => StatusCode::NOT_FOUND,
                Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
                Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => {
                    StatusCode::CONFLICT
                }
                Code::PermissionDenied => StatusCode::FORBIDDEN,
                Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
                Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::BAD_GATEWAY,
            },
            Error::Settings(_)
            | Error::Bind { .. }
            | Error::Endpoint { .. }
            | Error::Messaging(_)
            | Error::Subscribe(_)
            | Error::Feed(_)
            | Error::Serve(_)
            | Error::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The page for this error with a link back to `href` (a local path).
    pub fn back_to(self, href: impl Into<String>) -> ErrorPage {
        ErrorPage {
            error: self,
            back: href.into(),
        }
    }

    fn heading(&self, status: StatusCode) -> &'static str {
        match (self, status.as_u16()) {
            (Error::OrderNotFound(_), _) => "Order not found",
            (Error::PageNotFound(_), _) => "Page not found",
            (Error::Form(_), _) => "The form has a problem",
            (Error::CrossSite, _) => "Refused",
            (_, 400) => "The service refused the request",
            (_, 404) => "Not found",
            (_, 409) => "Not possible now",
            (_, 503 | 504) => "A service is unavailable",
            (_, 500..=599) => "Something went wrong",
            _ => "The request failed",
        }
    }
}

/// An error with the page it should lead back to.
pub struct ErrorPage {
    error: Error,
    back: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    title: &'a str,
    section: &'static str,
    status: u16,
    heading: &'a str,
    message: String,
    back: &'a str,
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        let status = self.error.status_code();
        let message = if status.is_server_error() && !matches!(self.error, Error::Upstream { .. }) {
            tracing::error!(error = %self.error, "board error");
            "The board could not show this page; the details are in its log.".to_owned()
        } else {
            self.error.to_string()
        };
        let heading = self.error.heading(status);
        let page = ErrorTemplate {
            title: heading,
            section: "",
            status: status.as_u16(),
            heading,
            message,
            back: &self.back,
        };
        match page.render() {
            Ok(body) => (status, Html(body)).into_response(),
            Err(err) => {
                tracing::error!(error = %err, "rendering the error page");
                (status, heading.to_owned()).into_response()
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.back_to("/").into_response()
    }
}
