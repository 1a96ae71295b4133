//! `/decisions`: everything the workflows wait for a person to decide
//! (`SagaService.ListDecisions`, open ones, the nearest deadline first),
//! each with its question, options, deadline and an answer form; and the
//! form's POST, which answers with `SagaService.Decide` (the saga moves on
//! at once) and sends the browser back where it came from (303).
//!
//! The order page shows the same forms for its own decisions
//! ([`decision_view`]). A refused answer (not one of the options, already
//! answered) is an error page with the saga's message and a link back.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use gendan_proto::v1;
use tonic::Request;

use crate::error::ErrorPage;
use crate::forms::{self, DecisionForm, encode};
use crate::routes::{AppState, check_origin, html, wants_fragment};
use crate::view::{self, Choice, Section};
use crate::{Error, Result};

/// Open decisions listed at most.
const LIMIT: u32 = 500;

/// One open decision with what its form needs.
#[derive(Debug, Clone)]
pub struct DecisionView {
    pub decision_id: String,
    pub order_id: String,
    pub order_href: String,
    pub kind: String,
    pub step: String,
    pub question: String,
    /// What it is about when a step asks several (a claim id).
    pub subject: String,
    pub options: Vec<Choice>,
    pub opened: String,
    pub deadline: String,
    pub deadline_iso: String,
    pub overdue: bool,
    pub reminders: u32,
    /// Where the form posts.
    pub action: String,
    /// Where the browser goes after answering.
    pub return_to: String,
    /// Unique on the page: the prefix of the form controls' ids.
    pub field_id: String,
}

/// `decision` as its card and form show it, answered from a page at
/// `return_to`, seen at `now`.
pub fn decision_view(decision: &v1::Decision, return_to: &str, now: DateTime<Utc>) -> DecisionView {
    let kind = match decision.decision_kind() {
        v1::DecisionKind::Unspecified => view::words(&decision.kind),
        kind => view::words(&kind.short_name()),
    };
    let deadline = decision.deadline.as_ref();
    let overdue = deadline
        .and_then(gendan_proto::timestamp_to)
        .is_some_and(|deadline| deadline < now);
    DecisionView {
        decision_id: decision.decision_id.clone(),
        order_id: decision.order_id.clone(),
        order_href: view::order_href(&decision.order_id),
        kind,
        step: decision.step.clone(),
        question: decision.question.clone(),
        subject: decision.subject.clone(),
        options: decision
            .options
            .iter()
            .map(|option| Choice {
                value: option.clone(),
                label: view::words(option),
                selected: false,
            })
            .collect(),
        opened: view::timestamp(decision.opened_at.as_ref()),
        deadline: view::timestamp(deadline),
        deadline_iso: view::rfc3339(deadline),
        overdue,
        reminders: decision.reminders,
        action: format!("/decisions/{}", encode(&decision.decision_id)),
        return_to: return_to.to_owned(),
        field_id: format!("d-{}", encode(&decision.decision_id)),
    }
}

/// The live region: the open decisions.
#[derive(Debug, Clone)]
pub struct DecisionsView {
    pub events_url: String,
    pub decisions: Section<Vec<DecisionView>>,
}

#[derive(Template)]
#[template(path = "decisions.html")]
struct DecisionsPage {
    title: &'static str,
    section: &'static str,
    live: DecisionsView,
}

#[derive(Template)]
#[template(path = "decisions_live.html")]
struct DecisionsLive<'a> {
    live: &'a DecisionsView,
}

#[tracing::instrument(skip_all, err)]
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let mut saga = state.clients.saga.clone();
    let listed = saga
        .list_decisions(Request::new(v1::ListDecisionsRequest {
            order_id: String::new(),
            open_only: true,
            limit: LIMIT,
        }))
        .await
        .map(tonic::Response::into_inner);
    let now = Utc::now();
    let live = DecisionsView {
        events_url: "/events".to_owned(),
        decisions: Section::from_call("saga", listed, None, |listed| {
            listed
                .decisions
                .iter()
                .map(|decision| decision_view(decision, forms::DEFAULT_RETURN, now))
                .collect()
        }),
    };
    if wants_fragment(&headers) {
        return html(&DecisionsLive { live: &live });
    }
    html(&DecisionsPage {
        title: "Decisions",
        section: "decisions",
        live,
    })
}

/// `POST /decisions/{decision_id}`: answers the decision and goes back.
#[tracing::instrument(skip_all)]
pub async fn answer(
    State(state): State<AppState>,
    Path(decision_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<DecisionForm>,
) -> Result<Response, ErrorPage> {
    let back = form.return_to();
    check_origin(&headers).map_err(|err| err.back_to(back.as_str()))?;
    let answer = form
        .validate(&decision_id)
        .map_err(|err| Error::from(err).back_to(back.as_str()))?;
    let mut saga = state.clients.saga.clone();
    saga.decide(Request::new(v1::DecideRequest {
        order_id: answer.order_id.clone(),
        decision_id: answer.decision_id.clone(),
        answer: answer.answer.clone(),
        operator: answer.decided_by.clone(),
        comment: answer.note.clone(),
    }))
    .await
    .map_err(|status| Error::upstream("saga", status).back_to(answer.return_to.as_str()))?;
    tracing::info!(
        order_id = %answer.order_id,
        answer = %answer.answer,
        decided_by = %answer.decided_by,
        "decision answered"
    );
    Ok(Redirect::to(&answer.return_to).into_response())
}
