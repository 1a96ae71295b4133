//! How values read on a page: phases in words, timestamps in UTC, slips in
//! days, money in its currency, links to orders and traces; and
//! [`Section`], a part of a page whose service may be down.
//!
//! Pages turn the services' messages into view structs with these, so the
//! templates only print strings and test booleans.

use gendan_proto::v1::Phase;
use prost_types::Timestamp;

use crate::forms::encode;
use crate::settings::TRACE_ID_PLACEHOLDER;

/// One part of a page: its data, or a sentence saying why there is none
/// ("no ledger yet", "finance unavailable: …").
#[derive(Debug, Clone)]
pub struct Section<T> {
    pub data: Option<T>,
    pub note: String,
    /// The note is a failure (shown as such), not an absence.
    pub failed: bool,
}

impl<T> Section<T> {
    pub fn ready(data: T) -> Self {
        Section {
            data: Some(data),
            note: String::new(),
            failed: false,
        }
    }

    /// Nothing to show yet, which is normal ("no ledger yet").
    pub fn missing(note: impl Into<String>) -> Self {
        Section {
            data: None,
            note: note.into(),
            failed: false,
        }
    }

    pub fn unavailable(service: &str, status: &tonic::Status) -> Self {
        Section {
            data: None,
            note: unavailable(service, status),
            failed: true,
        }
    }

    /// A call's answer turned into a section: `NotFound` is `missing`
    /// when the caller gave a note for it (the thing does not exist yet),
    /// any other failure says the service is unavailable.
    pub fn from_call<M>(
        service: &str,
        answer: Result<M, tonic::Status>,
        not_found: Option<&str>,
        view: impl FnOnce(M) -> T,
    ) -> Self {
        match (answer, not_found) {
            (Ok(message), _) => Section::ready(view(message)),
            (Err(status), Some(note)) if status.code() == tonic::Code::NotFound => {
                Section::missing(note)
            }
            (Err(status), _) => Section::unavailable(service, &status),
        }
    }
}

/// "saga unavailable: connection refused".
pub fn unavailable(service: &str, status: &tonic::Status) -> String {
    let message = status.message();
    if message.is_empty() {
        format!("{service} unavailable: {:?}", status.code())
    } else {
        format!("{service} unavailable: {message}")
    }
}

/// `PHASE_FINAL_INSPECTION` → "final inspection".
pub fn phase(phase: i32) -> String {
    Phase::try_from(phase)
        .unwrap_or(Phase::Unspecified)
        .short_name()
        .replace('_', " ")
}

/// A shared-vocabulary short name in words (`final_inspection_failed` →
/// "final inspection failed").
pub fn words(short_name: &str) -> String {
    short_name.replace('_', " ")
}

/// "2026-12-01 14:03 UTC"; "" when unset.
pub fn timestamp(at: Option<&Timestamp>) -> String {
    at.and_then(gendan_proto::timestamp_to)
        .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// RFC 3339, for `<time datetime>` and the event stream; "" when unset.
pub fn rfc3339(at: Option<&Timestamp>) -> String {
    at.and_then(gendan_proto::timestamp_to)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A date as the protos carry it, or "—" when unknown.
pub fn date(text: &str) -> String {
    if text.is_empty() {
        "\u{2014}".to_owned()
    } else {
        text.to_owned()
    }
}

/// Days late as people say it: "+3 d", "0 d", "−2 d".
pub fn days(days: i32) -> String {
    match days {
        0 => "0 d".to_owned(),
        late if late > 0 => format!("+{late} d"),
        early => format!("\u{2212}{} d", early.unsigned_abs()),
    }
}

/// Money in its currency ("1,234.50" style is left to the reader's
/// locale; the amount is exact: "1234.50 USD"). Without a currency the
/// amount alone.
pub fn money(minor: i64, currency: &str) -> String {
    if currency.is_empty() {
        gendan_proto::amount(minor, "")
    } else {
        gendan_proto::money(minor, currency)
    }
}

/// `gendan.v1.WorkOrderPlanned` → `WorkOrderPlanned`.
pub fn short_type(type_name: &str) -> String {
    type_name.rsplit('.').next().unwrap_or(type_name).to_owned()
}

/// The board's page of an order.
pub fn order_href(order_id: &str) -> String {
    format!("/orders/{}", encode(order_id))
}

/// The trace UI's page of `trace_id`, when a template is configured and
/// the id looks like one (hex digits).
pub fn trace_href(template: Option<&str>, trace_id: &str) -> String {
    let looks_like_a_trace_id = !trace_id.is_empty()
        && trace_id.len() <= 64
        && trace_id.bytes().all(|b| b.is_ascii_hexdigit());
    match template {
        Some(template) if looks_like_a_trace_id => template.replace(TRACE_ID_PLACEHOLDER, trace_id),
        _ => String::new(),
    }
}

/// Every phase an order can be in, as the filter offers them.
pub fn phases() -> impl Iterator<Item = Phase> {
    (1..=13).filter_map(|n| Phase::try_from(n).ok())
}

/// A choice of a `<select>`.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}
