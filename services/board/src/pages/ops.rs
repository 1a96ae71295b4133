//! `/ops`: what an operator looks after. The stalled sagas
//! (`SagaService.ListStalled`), one row per stalled step or compensation
//! with its reason and since when, each with Retry (`RetryStep`, also for
//! a compensation's `compensate:<step>` key) and Skip (`SkipStep`, steps
//! only) posting to `/ops/retry` and `/ops/skip`; and the dead letters
//! per consumer, counted by subject (`gendan.dlq.<consumer>`) in the
//! `GENDAN_DLQ` stream's info. A stream that does not exist yet holds no
//! dead letters.

use askama::Template;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, ErrorCode};
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use futures::TryStreamExt;
use gendan_messaging::{streams, subjects};
use gendan_proto::v1;
use tonic::Request;

use crate::error::ErrorPage;
use crate::forms::StepForm;
use crate::routes::{AppState, check_origin, html, wants_fragment};
use crate::view::{self, Section};
use crate::{Error, Result};

/// Stalled sagas listed at most.
const LIMIT: u32 = 500;
/// The key prefix `RetryStep` takes for a stalled compensation.
const COMPENSATE: &str = "compensate:";
const OPS: &str = "/ops";

/// One stalled step or compensation.
#[derive(Debug, Clone)]
pub struct StalledRow {
    pub order_id: String,
    pub order_href: String,
    pub phase: String,
    /// The step (or `compensate:<step>`) to retry or skip; "" when the
    /// saga names none.
    pub step: String,
    pub reason: String,
    pub since: String,
    pub can_retry: bool,
    pub can_skip: bool,
    /// Unique on the page: the prefix of the form controls' ids.
    pub field_id: String,
}

/// Dead letters of one consumer.
#[derive(Debug, Clone)]
pub struct DeadLetterRow {
    pub consumer: String,
    pub count: usize,
}

#[derive(Debug, Clone)]
pub struct DeadLetters {
    pub consumers: Vec<DeadLetterRow>,
    pub total: usize,
}

/// The live region.
#[derive(Debug, Clone)]
pub struct OpsView {
    pub events_url: String,
    pub stalled: Section<Vec<StalledRow>>,
    pub dead_letters: Section<DeadLetters>,
}

#[derive(Template)]
#[template(path = "ops.html")]
struct OpsPage {
    title: &'static str,
    section: &'static str,
    live: OpsView,
}

#[derive(Template)]
#[template(path = "ops_live.html")]
struct OpsLive<'a> {
    live: &'a OpsView,
}

#[tracing::instrument(skip_all, err)]
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let mut saga = state.clients.saga.clone();
    let (stalled, dead_letters) = tokio::join!(
        Box::pin(saga.list_stalled(Request::new(v1::ListStalledRequest { limit: LIMIT }))),
        Box::pin(dead_letter_counts(&state.jetstream)),
    );
    let live = OpsView {
        events_url: "/events".to_owned(),
        stalled: Section::from_call(
            "saga",
            stalled.map(tonic::Response::into_inner),
            None,
            |listed| stalled_rows(&listed.sagas),
        ),
        dead_letters: match dead_letters {
            Ok(counts) => Section::ready(counts),
            Err(problem) => Section {
                data: None,
                note: format!("nats unavailable: {problem}"),
                failed: true,
            },
        },
    };
    if wants_fragment(&headers) {
        return html(&OpsLive { live: &live });
    }
    html(&OpsPage {
        title: "Operations",
        section: "ops",
        live,
    })
}

/// `POST /ops/retry`: runs a stalled step (or compensation) again.
#[tracing::instrument(skip_all)]
pub async fn retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<StepForm>,
) -> Result<Response, ErrorPage> {
    act(&state, &headers, &form, Action::Retry).await
}

/// `POST /ops/skip`: marks a stalled step done without its result.
#[tracing::instrument(skip_all)]
pub async fn skip(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<StepForm>,
) -> Result<Response, ErrorPage> {
    act(&state, &headers, &form, Action::Skip).await
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Retry,
    Skip,
}

async fn act(
    state: &AppState,
    headers: &HeaderMap,
    form: &StepForm,
    action: Action,
) -> Result<Response, ErrorPage> {
    check_origin(headers).map_err(|err| err.back_to(OPS))?;
    let step = form
        .validate()
        .map_err(|err| Error::from(err).back_to(OPS))?;
    let request = Request::new(v1::StepRequest {
        order_id: step.order_id.clone(),
        step: step.step.clone(),
        operator: step.operator.clone(),
        reason: step.reason.clone(),
    });
    let mut saga = state.clients.saga.clone();
    let answered = match action {
        Action::Retry => saga.retry_step(request).await,
        Action::Skip => saga.skip_step(request).await,
    };
    answered.map_err(|status| Error::upstream("saga", status).back_to(OPS))?;
    tracing::info!(
        order_id = %step.order_id,
        step = %step.step,
        operator = %step.operator,
        ?action,
        "stalled step resumed"
    );
    Ok(Redirect::to(OPS).into_response())
}

/// Every stalled step and compensation of `sagas`; a stalled saga that
/// names neither still gets a row with its reason.
fn stalled_rows(sagas: &[v1::Saga]) -> Vec<StalledRow> {
    let mut rows = Vec::new();
    for saga in sagas {
        let before = rows.len();
        let row =
            |step: String, reason: &str, since: String, can_skip: bool, index: usize| StalledRow {
                order_id: saga.order_id.clone(),
                order_href: view::order_href(&saga.order_id),
                phase: view::phase(saga.phase),
                can_retry: !step.is_empty(),
                can_skip: can_skip && !step.is_empty(),
                step,
                reason: if reason.is_empty() {
                    saga.stalled_reason.clone()
                } else {
                    reason.to_owned()
                },
                since,
                field_id: format!("s-{index}"),
            };
        for step in saga.steps.iter().filter(|step| step.status == "stalled") {
            let since = stalled_since(saga, &step.step);
            rows.push(row(
                step.step.clone(),
                &step.last_error,
                since,
                true,
                rows.len(),
            ));
        }
        for compensation in saga
            .compensations
            .iter()
            .filter(|compensation| compensation.status == "stalled")
        {
            let key = format!("{COMPENSATE}{}", compensation.step);
            let since = view::timestamp(
                compensation
                    .finished_at
                    .as_ref()
                    .or(compensation.started_at.as_ref()),
            );
            rows.push(row(key, &compensation.detail, since, false, rows.len()));
        }
        if rows.len() == before {
            let since = view::timestamp(saga.updated_at.as_ref());
            rows.push(row(String::new(), "", since, false, rows.len()));
        }
    }
    rows
}

/// When `step` stalled: its latest "stalled" entry in the saga's log, else
/// when the saga last changed.
fn stalled_since(saga: &v1::Saga, step: &str) -> String {
    let stalled_at = saga
        .log
        .iter()
        .filter(|entry| entry.step == step && entry.action == "stalled")
        .filter_map(|entry| entry.at.as_ref())
        .max_by_key(|at| (at.seconds, at.nanos));
    view::timestamp(stalled_at.or(saga.updated_at.as_ref()))
}

/// Dead letters per consumer, from the subjects of `GENDAN_DLQ`.
async fn dead_letter_counts(jetstream: &jetstream::Context) -> Result<DeadLetters, String> {
    let stream = match jetstream.get_stream(streams::DEAD_LETTERS).await {
        Ok(stream) => stream,
        Err(err) => {
            return match err.kind() {
                GetStreamErrorKind::JetStream(source)
                    if source.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(DeadLetters {
                        consumers: Vec::new(),
                        total: 0,
                    })
                }
                _ => Err(err.to_string()),
            };
        }
    };
    let mut listed = stream
        .info_with_subjects(subjects::DEAD_LETTERS)
        .await
        .map_err(|err| err.to_string())?;
    let prefix = subjects::dead_letter("");
    let mut consumers = Vec::new();
    while let Some((subject, count)) = listed.try_next().await.map_err(|err| err.to_string())? {
        let consumer = subject.strip_prefix(prefix.as_str()).unwrap_or(&subject);
        consumers.push(DeadLetterRow {
            consumer: consumer.to_owned(),
            count,
        });
    }
    consumers.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    let total = consumers.iter().map(|row| row.count).sum();
    Ok(DeadLetters { consumers, total })
}
