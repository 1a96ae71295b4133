//! What the browser sends, checked before anything is called: the orders
//! filters (a GET form), a decision's answer and an operator's retry or
//! skip (POST forms), the `/events` filter.
//!
//! Every field arrives as an optional string, so a hand-made request gets
//! this module's message rather than a deserializer's; texts are trimmed
//! and bounded (ids 200 characters, names 200, notes 2000), and a
//! `return_to` is only ever a path on this board. [`same_origin`] refuses
//! a form posted from another site, since every POST here moves a saga.
//! [`encode`] builds the query strings and paths the pages link to.

use gendan_proto::v1::{OrderSort, Phase};
use serde::Deserialize;

/// Longest id (order, decision, step) accepted.
pub const MAX_ID: usize = 200;
/// Longest name (who decided, customer filter) accepted.
pub const MAX_NAME: usize = 200;
/// Longest note or reason accepted.
pub const MAX_NOTE: usize = 2000;
/// Longest answer (one of a decision's options) accepted.
pub const MAX_ANSWER: usize = 200;
/// Longest page token accepted (the services' tokens are far shorter).
pub const MAX_PAGE_TOKEN: usize = 1000;
/// Longest `return_to` path accepted.
pub const MAX_PATH: usize = 2000;

/// Where a decision's answer leads when its form names no valid page.
pub const DEFAULT_RETURN: &str = "/decisions";

/// A field that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Error {
    pub field: &'static str,
    pub problem: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn invalid(field: &'static str, problem: impl Into<String>) -> Error {
    Error {
        field,
        problem: problem.into(),
    }
}

/// A required id: trimmed, 1 to [`MAX_ID`] characters, no control characters.
pub fn id(field: &'static str, value: Option<&str>) -> Result<String> {
    let value = value.unwrap_or_default().trim();
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if value.chars().count() > MAX_ID {
        return Err(invalid(field, format!("at most {MAX_ID} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// An optional text: trimmed, at most `max` characters; line breaks and
/// tabs are kept, other control characters refused.
pub fn text(field: &'static str, value: Option<&str>, max: usize) -> Result<String> {
    let value = value.unwrap_or_default().trim();
    if value.chars().count() > max {
        return Err(invalid(field, format!("at most {max} characters")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// A required text: as [`text`], and not empty.
pub fn required(field: &'static str, value: Option<&str>, max: usize) -> Result<String> {
    let value = text(field, value, max)?;
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    Ok(value)
}

/// A checkbox: checked boxes send `on` (or `true` / `1` from a link).
pub fn flag(value: Option<&str>) -> bool {
    matches!(value.map(str::trim), Some("on" | "true" | "1" | "yes"))
}

/// `value` when it is a path on this board (`/…`, not `//host` nor
/// `/\host`, which browsers treat as another site), else `None`.
pub fn local_path(value: Option<&str>) -> Option<String> {
    let value = value?.trim();
    let local = value.starts_with('/')
        && !value.starts_with("//")
        && !value.starts_with("/\\")
        && value.len() <= MAX_PATH
        && value.bytes().all(|b| b.is_ascii_graphic());
    local.then(|| value.to_owned())
}

/// Percent-encodes `value` for a query value or a path segment: only
/// letters, digits and `-_.~` stay as they are.
pub fn encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The orders list's GET form, as sent.
#[derive(Debug, Default, Deserialize)]
pub struct OrdersQuery {
    pub phase: Option<String>,
    pub customer: Option<String>,
    pub at_risk: Option<String>,
    pub exception_open: Option<String>,
    pub sort: Option<String>,
    pub page_token: Option<String>,
}

/// The orders list's filters, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdersFilter {
    pub phase: Phase,
    pub customer: String,
    pub at_risk: bool,
    pub exception_open: bool,
    pub sort: OrderSort,
    pub page_token: String,
}

impl OrdersQuery {
    pub fn validate(&self) -> Result<OrdersFilter> {
        let phase = match self.phase.as_deref().map(str::trim).unwrap_or_default() {
            "" | "any" => Phase::Unspecified,
            name => Phase::from_short_name(name)
                .filter(|phase| *phase != Phase::Unspecified)
                .ok_or_else(|| invalid("phase", format!("{name:?} is not a phase")))?,
        };
        let sort = match self.sort.as_deref().map(str::trim).unwrap_or_default() {
            "" | "newest" => OrderSort::Unspecified,
            "slip" => OrderSort::Slip,
            other => return Err(invalid("sort", format!("{other:?} is not newest or slip"))),
        };
        Ok(OrdersFilter {
            phase,
            customer: text("customer", self.customer.as_deref(), MAX_NAME)?,
            at_risk: flag(self.at_risk.as_deref()),
            exception_open: flag(self.exception_open.as_deref()),
            sort,
            page_token: text("page_token", self.page_token.as_deref(), MAX_PAGE_TOKEN)?,
        })
    }
}

impl OrdersFilter {
    /// The query string of these filters at `page_token` ("" for the first
    /// page), without the `?`; only what differs from the defaults.
    pub fn query(&self, page_token: &str) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if self.phase != Phase::Unspecified {
            pairs.push(("phase", self.phase.short_name().to_owned()));
        }
        if !self.customer.is_empty() {
            pairs.push(("customer", self.customer.clone()));
        }
        if self.at_risk {
            pairs.push(("at_risk", "on".to_owned()));
        }
        if self.exception_open {
            pairs.push(("exception_open", "on".to_owned()));
        }
        if self.sort == OrderSort::Slip {
            pairs.push(("sort", "slip".to_owned()));
        }
        if !page_token.is_empty() {
            pairs.push(("page_token", page_token.to_owned()));
        }
        pairs
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A decision's answer form (POST `/decisions/{decision_id}`), as sent.
#[derive(Debug, Default, Deserialize)]
pub struct DecisionForm {
    pub order_id: Option<String>,
    pub answer: Option<String>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
    pub return_to: Option<String>,
}

/// A decision's answer, checked: the fields of `DecideRequest` and where
/// to go after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub order_id: String,
    pub decision_id: String,
    pub answer: String,
    pub decided_by: String,
    pub note: String,
    pub return_to: String,
}

impl DecisionForm {
    /// Checks the form for decision `decision_id` (from the path). The
    /// saga checks that the answer is one of the decision's options.
    pub fn validate(&self, decision_id: &str) -> Result<Answer> {
        Ok(Answer {
            order_id: id("order_id", self.order_id.as_deref())?,
            decision_id: id("decision_id", Some(decision_id))?,
            answer: required("answer", self.answer.as_deref(), MAX_ANSWER)?,
            decided_by: required("decided_by", self.decided_by.as_deref(), MAX_NAME)?,
            note: text("note", self.note.as_deref(), MAX_NOTE)?,
            return_to: self.return_to(),
        })
    }

    /// Where to go after answering (also after a failed answer).
    pub fn return_to(&self) -> String {
        local_path(self.return_to.as_deref()).unwrap_or_else(|| DEFAULT_RETURN.to_owned())
    }
}

/// An operator's retry or skip of a stalled step (POST `/ops/retry`,
/// `/ops/skip`), as sent.
#[derive(Debug, Default, Deserialize)]
pub struct StepForm {
    pub order_id: Option<String>,
    pub step: Option<String>,
    pub operator: Option<String>,
    pub reason: Option<String>,
}

/// A retry or skip, checked: the fields of `StepRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepAction {
    pub order_id: String,
    pub step: String,
    pub operator: String,
    pub reason: String,
}

impl StepForm {
    pub fn validate(&self) -> Result<StepAction> {
        Ok(StepAction {
            order_id: id("order_id", self.order_id.as_deref())?,
            step: id("step", self.step.as_deref())?,
            operator: required("operator", self.operator.as_deref(), MAX_NAME)?,
            reason: text("reason", self.reason.as_deref(), MAX_NOTE)?,
        })
    }
}

/// `/events?order=<id>`: only that order's events.
#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    pub order: Option<String>,
}

impl EventsQuery {
    /// The order to filter on; `None` for every order.
    pub fn validate(&self) -> Result<Option<String>> {
        match self.order.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(order) => id("order", Some(order)).map(Some),
        }
    }
}

/// Whether a POST comes from a page of this board: browsers say where a
/// request comes from (`Sec-Fetch-Site`, `Origin`); a request that says
/// nothing (a script, curl) is let through.
pub fn same_origin(origin: Option<&str>, host: Option<&str>, fetch_site: Option<&str>) -> bool {
    if let Some(site) = fetch_site
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = origin else {
        return true;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match (authority, host) {
        (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> OrdersQuery {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        };
        OrdersQuery {
            phase: get("phase"),
            customer: get("customer"),
            at_risk: get("at_risk"),
            exception_open: get("exception_open"),
            sort: get("sort"),
            page_token: get("page_token"),
        }
    }

    #[test]
    fn an_empty_orders_form_asks_for_everything_newest_first() {
        let filter = OrdersQuery::default().validate().unwrap();
        assert_eq!(filter.phase, Phase::Unspecified);
        assert_eq!(filter.sort, OrderSort::Unspecified);
        assert!(!filter.at_risk && !filter.exception_open);
        assert_eq!(filter.query(""), "");
    }

    #[test]
    fn orders_filters_survive_the_next_page_link() {
        let filter = query(&[
            ("phase", "final_inspection"),
            ("customer", "Nord & Wind"),
            ("at_risk", "on"),
            ("exception_open", "on"),
            ("sort", "slip"),
        ])
        .validate()
        .unwrap();
        assert_eq!(filter.phase, Phase::FinalInspection);
        assert_eq!(filter.sort, OrderSort::Slip);
        assert_eq!(
            filter.query("tok/1"),
            "phase=final_inspection&customer=Nord%20%26%20Wind&at_risk=on\
             &exception_open=on&sort=slip&page_token=tok%2F1"
        );
    }

    #[test]
    fn unknown_phases_and_sorts_and_long_customers_are_refused() {
        let phase = query(&[("phase", "lunch")]).validate().unwrap_err();
        assert_eq!(phase.field, "phase");
        let sort = query(&[("sort", "oldest")]).validate().unwrap_err();
        assert_eq!(sort.field, "sort");
        let long = "c".repeat(MAX_NAME + 1);
        let customer = query(&[("customer", long.as_str())])
            .validate()
            .unwrap_err();
        assert_eq!(customer.field, "customer");
        // "Any" and unchecked boxes are the defaults.
        let any = query(&[("phase", "any"), ("at_risk", "")])
            .validate()
            .unwrap();
        assert_eq!(any.phase, Phase::Unspecified);
        assert!(!any.at_risk);
    }

    fn decision_form() -> DecisionForm {
        DecisionForm {
            order_id: Some(" ORD-1 ".to_owned()),
            answer: Some("concession".to_owned()),
            decided_by: Some("Mia".to_owned()),
            note: Some("customer agreed\non the phone".to_owned()),
            return_to: Some("/orders/ORD-1".to_owned()),
        }
    }

    #[test]
    fn a_decision_form_becomes_an_answer() {
        let answer = decision_form().validate("d-1").unwrap();
        assert_eq!(
            answer,
            Answer {
                order_id: "ORD-1".to_owned(),
                decision_id: "d-1".to_owned(),
                answer: "concession".to_owned(),
                decided_by: "Mia".to_owned(),
                note: "customer agreed\non the phone".to_owned(),
                return_to: "/orders/ORD-1".to_owned(),
            }
        );
    }

    #[test]
    fn a_decision_form_needs_its_answer_and_who_decided_within_bounds() {
        let mut form = decision_form();
        form.answer = Some("  ".to_owned());
        assert_eq!(form.validate("d-1").unwrap_err().field, "answer");

        let mut form = decision_form();
        form.decided_by = None;
        assert_eq!(form.validate("d-1").unwrap_err().field, "decided_by");

        let mut form = decision_form();
        form.note = Some("n".repeat(MAX_NOTE + 1));
        assert_eq!(form.validate("d-1").unwrap_err().field, "note");
        form.note = Some("n".repeat(MAX_NOTE));
        assert!(form.validate("d-1").is_ok());

        let mut form = decision_form();
        form.order_id = Some("o".repeat(MAX_ID + 1));
        assert_eq!(form.validate("d-1").unwrap_err().field, "order_id");

        let form = decision_form();
        assert_eq!(form.validate("").unwrap_err().field, "decision_id");
        assert_eq!(form.validate("d\u{0}1").unwrap_err().field, "decision_id");
    }

    #[test]
    fn return_to_is_a_local_path_or_the_decisions_page() {
        let mut form = decision_form();
        for foreign in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "javascript:alert(1)",
            "/orders/a b",
            "",
        ] {
            form.return_to = Some(foreign.to_owned());
            assert_eq!(form.return_to(), DEFAULT_RETURN, "{foreign}");
        }
        form.return_to = None;
        assert_eq!(form.return_to(), DEFAULT_RETURN);
        form.return_to = Some("/orders/ORD%2D1?x=1".to_owned());
        assert_eq!(form.return_to(), "/orders/ORD%2D1?x=1");
    }

    #[test]
    fn a_step_form_needs_order_step_and_operator() {
        let form = StepForm {
            order_id: Some("ORD-1".to_owned()),
            step: Some("book_shipment".to_owned()),
            operator: Some("ops".to_owned()),
            reason: None,
        };
        let action = form.validate().unwrap();
        assert_eq!(action.step, "book_shipment");
        assert_eq!(action.reason, "");
        let missing = StepForm {
            operator: None,
            ..form
        };
        assert_eq!(missing.validate().unwrap_err().field, "operator");
        assert_eq!(
            StepForm::default().validate().unwrap_err().field,
            "order_id"
        );
    }

    #[test]
    fn the_events_filter_is_an_order_id_or_nothing() {
        let none = EventsQuery {
            order: Some(" ".to_owned()),
        };
        assert_eq!(none.validate().unwrap(), None);
        let one = EventsQuery {
            order: Some("ORD-1".to_owned()),
        };
        assert_eq!(one.validate().unwrap().as_deref(), Some("ORD-1"));
        let long = EventsQuery {
            order: Some("o".repeat(MAX_ID + 1)),
        };
        assert!(long.validate().is_err());
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(encode("ORD-1_a.b~"), "ORD-1_a.b~");
        assert_eq!(encode("a b/c?d&e=f"), "a%20b%2Fc%3Fd%26e%3Df");
        assert_eq!(encode("ü"), "%C3%BC");
    }

    #[test]
    fn posts_from_other_sites_are_refused() {
        let host = Some("127.0.0.1:8080");
        assert!(same_origin(
            Some("http://127.0.0.1:8080"),
            host,
            Some("same-origin")
        ));
        assert!(same_origin(None, host, None));
        assert!(!same_origin(Some("http://evil.example"), host, None));
        assert!(!same_origin(Some("null"), host, None));
        assert!(!same_origin(
            Some("http://127.0.0.1:8080"),
            host,
            Some("cross-site")
        ));
        assert!(!same_origin(None, host, Some("same-site")));
        assert!(!same_origin(Some("http://127.0.0.1:8080"), None, None));
    }
}
