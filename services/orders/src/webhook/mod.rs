//! The notice webhook dispatcher: delivers customer notices to a URL.
//!
//! A worker loop of the orders service. Each pass claims due `pending`
//! notices with `FOR UPDATE SKIP LOCKED` (so the dispatchers of several
//! replicas share the work and never post one notice at the same time),
//! counts the attempt and leases the row for a while, commits, then POSTs
//! each notice as JSON. A 2xx answer marks it `delivered`; a timeout, a
//! connection error, 408, 429 or 5xx schedules a retry with exponential
//! backoff; any other answer, or the last allowed attempt failing, marks it
//! `failed` with the reason. Nothing loops forever: attempts are counted when
//! claimed, so even a dispatcher that dies mid-request uses one up, and a
//! notice whose lease ran out after its last attempt is marked `failed`.
//!
//! Notices of one order go out in order: a notice is not claimed while an
//! earlier notice of the same order is still pending.
//!
//! Where a notice goes: the `notice_webhook_url` of the order's customer in
//! the customer master ([`crate::customers`]) when it has one, else the
//! deployment's URL (`GENDAN_ORDERS__NOTICE_WEBHOOK_URL`). The claiming
//! statement reads the customer's URL in the same query (notices joined to
//! their order and its customer), so choosing the address costs no query of
//! its own, and a customer's URL changed while a notice waits applies from
//! its next attempt. Orders created before the customer master have no
//! customer id and use the deployment's URL.
//!
//! When neither is set, pending notices are marked `not_configured`, a
//! final state: nobody was there to receive them, and setting a URL later
//! must not flood the customer with old news. (They are on
//! `gendan.notify.customer` all the same, for other adapters.) Every replica
//! should have the same setting.
//!
//! URLs are `http://` (an internal relay) or `https://` ([`parse_url`],
//! which the customer master's validation uses too), through rustls with the
//! system's roots and, when set, an internal CA's certificates ([`tls`]).
//! With a secret set (`GENDAN_ORDERS__NOTICE_WEBHOOK_SECRET`), every POST is
//! signed: `Gendan-Timestamp` and `Gendan-Signature`, an HMAC-SHA256 over the
//! timestamp and the body ([`signature`], which also has the receiver's
//! check). The receiver should de-duplicate by the `Idempotency-Key` header
//! (the notice id): a dispatcher that dies after the POST but before
//! recording it posts the notice again.

pub mod signature;
pub mod tls;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gendan_settings::Secret;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::notices::delivery;
use crate::{Error, Result};

/// Environment variable holding the webhook URL.
pub const URL_VARIABLE: &str = "GENDAN_ORDERS__NOTICE_WEBHOOK_URL";
/// Environment variable holding the attempts per notice.
pub const MAX_ATTEMPTS_VARIABLE: &str = "GENDAN_ORDERS__NOTICE_MAX_ATTEMPTS";
/// Environment variable holding the secret notices are signed with.
pub const SECRET_VARIABLE: &str = "GENDAN_ORDERS__NOTICE_WEBHOOK_SECRET";
/// The header carrying when a notice was sent, in seconds since the epoch.
pub const TIMESTAMP_HEADER: &str = "Gendan-Timestamp";
/// The header carrying the notice's signature ([`signature::sign`]).
pub const SIGNATURE_HEADER: &str = "Gendan-Signature";

/// How notices are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `http(s)://host:port/path`; `None`: notices are not delivered.
    pub url: Option<String>,
    /// The HMAC-SHA256 key notices are signed with; `None`: unsigned.
    pub secret: Option<Secret>,
    /// PEM certificates to trust beside the system's roots (an internal CA).
    pub ca_file: Option<PathBuf>,
    /// Attempts per notice before it is `failed`.
    pub max_attempts: u32,
    /// Delay after the first failed attempt; doubles each time.
    pub first_retry: Duration,
    /// Longest delay between attempts.
    pub max_retry: Duration,
    /// How often the dispatcher looks for due notices.
    pub poll_interval: Duration,
    /// How long one POST may take.
    pub request_timeout: Duration,
    /// Notices claimed per pass.
    pub batch_size: i64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            url: None,
            secret: None,
            ca_file: None,
            max_attempts: 8,
            first_retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(30 * 60),
            poll_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            batch_size: 20,
        }
    }
}

impl WebhookSettings {
    /// Defaults, with the URL and attempts from the settings (environment or
    /// the `GENDAN_CONFIG` file).
    pub fn from_env() -> std::result::Result<Self, gendan_settings::Error> {
        let defaults = WebhookSettings::default();
        let url = gendan_settings::value(URL_VARIABLE)
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty());
        let secret = gendan_settings::value(SECRET_VARIABLE)
            .filter(|secret| !secret.trim().is_empty())
            .map(Secret::new);
        let ca_file = gendan_settings::value(tls::CA_FILE_VARIABLE)
            .map(|path| path.trim().to_owned())
            .filter(|path| !path.is_empty())
            .map(PathBuf::from);
        Ok(WebhookSettings {
            url,
            secret,
            ca_file,
            max_attempts: gendan_settings::parsed(MAX_ATTEMPTS_VARIABLE, defaults.max_attempts)?,
            ..defaults
        })
    }

    /// The delay after `attempts` failed attempts (1 = the first).
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.first_retry
            .checked_mul(1 << doublings)
            .unwrap_or(self.max_retry)
            .min(self.max_retry)
    }

    /// The parsed URL, refusing what this dispatcher cannot post to.
    fn target(&self) -> Result<Option<Uri>> {
        // Checked with or without a URL of the deployment's own: customers
        // may have theirs, and with 0 attempts their notices would wait
        // forever.
        if self.max_attempts == 0 {
            return Err(Error::Settings(format!(
                "{MAX_ATTEMPTS_VARIABLE} must be at least 1"
            )));
        }
        let Some(url) = &self.url else {
            return Ok(None);
        };
        parse_url(url)
            .map(Some)
            .map_err(|why| Error::Settings(format!("{URL_VARIABLE}={url:?}: {why}")))
    }
}

/// `url` as the dispatcher can post to it: `http://` or `https://` with a
/// host; else what is wrong, in words, for a setting's or a request field's
/// error.
pub fn parse_url(url: &str) -> std::result::Result<Uri, &'static str> {
    let uri: Uri = url.parse().map_err(|_| "not a URL")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must be an http:// or https:// URL");
    }
    if uri.host().is_none() {
        return Err("the URL has no host");
    }
    Ok(uri)
}

/// The dispatcher loop of one replica.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    pool: PgPool,
    settings: WebhookSettings,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The deployment's URL; `None`: only customers with a URL of their own
    /// get their notices posted.
    default_target: Option<Uri>,
}

#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    notice_id: Uuid,
    order_id: Uuid,
    customer: String,
    kind: String,
    subject: String,
    body: String,
    created_at: DateTime<Utc>,
    delivery_attempts: i32,
    /// The order's customer's `notice_webhook_url`; `None` when it has
    /// none (or the order predates the customer master).
    customer_url: Option<String>,
}

/// What one POST came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// Worth another attempt later.
    Retry(String),
    /// The receiver refused it for good.
    Refused(String),
}

impl Dispatcher {
    /// Fails on a URL it cannot post to, so a typo stops start-up.
    pub fn new(pool: PgPool, settings: WebhookSettings) -> Result<Self> {
        let default_target = settings.target()?;
        // Built even without a URL of the deployment's: a customer's own
        // URL may need it.
        let tls = tls::client_config(settings.ca_file.as_deref())?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Dispatcher {
            pool,
            settings,
            client,
            default_target,
        })
    }

    /// Runs passes until `cancel` fires; a failing pass (database away) is
    /// logged and retried on the next tick.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        loop {
            match self.pass().await {
                // A full batch: there may be more due right now.
                Ok(claimed) if claimed as i64 >= self.settings.batch_size => {
                    if cancel.is_cancelled() {
                        return Ok(());
                    }
                    continue;
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "notice dispatch pass failed, retrying"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// One pass; returns how many notices it claimed.
    pub async fn pass(&self) -> Result<usize> {
        let has_default = self.default_target.is_some();
        if !has_default {
            // Only notices whose customer has a URL of its own can go
            // anywhere; the rest are parked for good.
            let parked = sqlx::query(
                "UPDATE notices SET delivery_status = $1, \
                     last_error = 'no webhook URL configured' \
                 WHERE delivery_status = $2 \
                   AND NOT EXISTS (SELECT 1 FROM orders o \
                                   JOIN customers c ON c.customer_id = o.customer_id \
                                   WHERE o.order_id = notices.order_id \
                                     AND c.notice_webhook_url <> '')",
            )
            .bind(delivery::NOT_CONFIGURED)
            .bind(delivery::PENDING)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if parked > 0 {
                tracing::debug!(parked, "notices not delivered: no webhook URL configured");
            }
        }

        let max_attempts = i32::try_from(self.settings.max_attempts).unwrap_or(i32::MAX);
        // A dispatcher that died during the last allowed attempt left its
        // lease to run out; nothing will try again.
        sqlx::query(
            "UPDATE notices SET delivery_status = $1, \
                 last_error = 'gave up: the last attempt did not report back' \
             WHERE delivery_status = $2 AND delivery_attempts >= $3 AND next_attempt_at <= now()",
        )
        .bind(delivery::FAILED)
        .bind(delivery::PENDING)
        .bind(max_attempts)
        .execute(&self.pool)
        .await?;

        // The lease outlasts a request, so no other replica claims the row
        // while this one is posting it. Each notice comes back with its
        // customer's URL (the join on the order's customer id); without a
        // URL of the deployment's, only notices that have one are claimed.
        let lease_ms = duration_ms(self.settings.request_timeout.saturating_mul(3));
        let claimed: Vec<Claimed> = sqlx::query_as(
            "UPDATE notices SET delivery_attempts = notices.delivery_attempts + 1, \
                 next_attempt_at = now() + $4 * interval '1 millisecond' \
             FROM orders o LEFT JOIN customers c ON c.customer_id = o.customer_id \
             WHERE o.order_id = notices.order_id \
               AND notices.seq IN ( \
                 SELECT n.seq FROM notices n \
                 WHERE n.delivery_status = $1 AND n.next_attempt_at <= now() \
                   AND n.delivery_attempts < $2 \
                   AND NOT EXISTS (SELECT 1 FROM notices e WHERE e.order_id = n.order_id \
                                   AND e.seq < n.seq AND e.delivery_status = $1) \
                   AND ($5::boolean OR EXISTS ( \
                       SELECT 1 FROM orders o2 \
                       JOIN customers c2 ON c2.customer_id = o2.customer_id \
                       WHERE o2.order_id = n.order_id AND c2.notice_webhook_url <> '')) \
                 ORDER BY n.seq LIMIT $3 FOR UPDATE OF n SKIP LOCKED) \
             RETURNING notices.notice_id, notices.order_id, notices.customer, notices.kind, \
                 notices.subject, notices.body, notices.created_at, \
                 notices.delivery_attempts, NULLIF(c.notice_webhook_url, '') AS customer_url",
        )
        .bind(delivery::PENDING)
        .bind(max_attempts)
        .bind(self.settings.batch_size)
        .bind(lease_ms)
        .bind(has_default)
        .fetch_all(&self.pool)
        .await?;

        for notice in &claimed {
            let outcome = match self.target_of(notice) {
                Ok(uri) => self.post(&uri, notice).await,
                Err(reason) => Outcome::Refused(reason),
            };
            self.record(notice, outcome).await?;
        }
        Ok(claimed.len())
    }

    /// Where `notice` goes: its customer's URL, else the deployment's. A
    /// customer's URL was checked when it was entered; one that no longer
    /// parses (a rule tightened since) fails the notice with the reason.
    fn target_of(&self, notice: &Claimed) -> std::result::Result<Uri, String> {
        match notice.customer_url.as_deref() {
            Some(url) => parse_url(url)
                .map_err(|why| format!("the customer's notice_webhook_url {url:?}: {why}")),
            // `pass` claims no notice without either; should one slip
            // through, it fails with the reason rather than waits.
            None => self
                .default_target
                .clone()
                .ok_or_else(|| "no webhook URL configured".to_owned()),
        }
    }

    #[tracing::instrument(skip_all, fields(notice_id = %notice.notice_id, order_id = %notice.order_id, attempt = notice.delivery_attempts))]
    async fn post(&self, uri: &Uri, notice: &Claimed) -> Outcome {
        let body = serde_json::json!({
            "notice_id": notice.notice_id.to_string(),
            "order_id": notice.order_id.to_string(),
            "customer": notice.customer,
            "kind": notice.kind,
            "subject": notice.subject,
            "body": notice.body,
            "created_at": notice.created_at.to_rfc3339(),
            "attempt": notice.delivery_attempts,
        });
        let body = Bytes::from(body.to_string());
        let mut request = Request::post(uri.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "gendan-orders")
            .header("Idempotency-Key", notice.notice_id.to_string());
        if let Some(secret) = &self.settings.secret {
            let timestamp = Utc::now().timestamp();
            let signature = signature::sign(secret.expose().as_bytes(), timestamp, &body);
            request = request
                .header(TIMESTAMP_HEADER, timestamp)
                .header(SIGNATURE_HEADER, signature);
        }
        let request = request.body(Full::new(body));
        let request = match request {
            Ok(request) => request,
            Err(err) => return Outcome::Refused(format!("cannot build the request: {err}")),
        };
        let response =
            match tokio::time::timeout(self.settings.request_timeout, self.client.request(request))
                .await
            {
                Err(_) => {
                    return Outcome::Retry(format!(
                        "no answer within {:?}",
                        self.settings.request_timeout
                    ));
                }
                Ok(Err(err)) => return Outcome::Retry(format!("request failed: {err}")),
                Ok(Ok(response)) => response,
            };
        classify(response.status())
    }

    async fn record(&self, notice: &Claimed, outcome: Outcome) -> Result<()> {
        let attempts = u32::try_from(notice.delivery_attempts).unwrap_or(u32::MAX);
        let (status, reason, retry_in) = match outcome {
            Outcome::Delivered => (delivery::DELIVERED, String::new(), None),
            Outcome::Refused(reason) => (delivery::FAILED, reason, None),
            Outcome::Retry(reason) if attempts >= self.settings.max_attempts => (
                delivery::FAILED,
                format!("gave up after {attempts} attempts: {reason}"),
                None,
            ),
            Outcome::Retry(reason) => (
                delivery::PENDING,
                reason,
                Some(self.settings.retry_delay(attempts)),
            ),
        };
        match status {
            delivery::DELIVERED => {
                tracing::debug!(notice_id = %notice.notice_id, "notice delivered")
            }
            delivery::FAILED => {
                tracing::warn!(notice_id = %notice.notice_id, %reason, "notice delivery failed")
            }
            _ => {
                tracing::debug!(notice_id = %notice.notice_id, %reason, "notice delivery will be retried")
            }
        }
        sqlx::query(
            "UPDATE notices SET delivery_status = $2, last_error = $3, \
                 next_attempt_at = CASE WHEN $4::bigint IS NULL THEN next_attempt_at \
                                        ELSE now() + $4 * interval '1 millisecond' END, \
                 delivered_at = CASE WHEN $2 = $5 THEN now() ELSE delivered_at END \
             WHERE notice_id = $1",
        )
        .bind(notice.notice_id)
        .bind(status)
        .bind(reason)
        .bind(retry_in.map(duration_ms))
        .bind(delivery::DELIVERED)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// What an HTTP status means for a notice.
fn classify(status: StatusCode) -> Outcome {
    if status.is_success() {
        return Outcome::Delivered;
    }
    let reason = format!("the webhook answered {status}");
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Outcome::Retry(reason)
    } else {
        // 3xx (not followed: a relay should not move) and other 4xx: the
        // same notice will be refused again.
        Outcome::Refused(reason)
    }
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let settings = WebhookSettings {
            first_retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(60),
            ..Default::default()
        };
        let delays: Vec<u64> = (1..=6).map(|n| settings.retry_delay(n).as_secs()).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 60, 60]);
        assert_eq!(settings.retry_delay(u32::MAX).as_secs(), 60);
    }

    #[test]
    fn statuses_decide_retry_or_give_up() {
        assert_eq!(classify(StatusCode::OK), Outcome::Delivered);
        assert_eq!(classify(StatusCode::NO_CONTENT), Outcome::Delivered);
        for retry in [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::REQUEST_TIMEOUT,
        ] {
            assert!(matches!(classify(retry), Outcome::Retry(_)), "{retry}");
        }
        for refused in [
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_FOUND,
            StatusCode::MOVED_PERMANENTLY,
        ] {
            assert!(
                matches!(classify(refused), Outcome::Refused(_)),
                "{refused}"
            );
        }
    }

    #[test]
    fn http_and_https_urls_are_taken() {
        let with = |url: &str| WebhookSettings {
            url: Some(url.to_owned()),
            ..Default::default()
        };
        assert!(with("http://relay.internal:8080/notices").target().is_ok());
        assert!(with("https://hooks.example.com/notices").target().is_ok());
        assert!(WebhookSettings::default().target().unwrap().is_none());
        for bad in [
            "ftp://example.com/hook",
            "relay:8080",
            "not a url",
            "http:///x",
        ] {
            assert!(with(bad).target().is_err(), "{bad}");
        }
    }
}
