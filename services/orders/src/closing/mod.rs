//! The closing summary of an order, written from the order row and its
//! timeline.
//!
//! [`summarize`] reads the order's facts ([`Facts`]: currency, receipt date,
//! promised date) and its timeline ([`RecordedEvent`]s with their payloads,
//! oldest first) and writes the [`OrderSummary`] a merchandiser files:
//!
//! - promised date: the stored promise, else the last `OrderConfirmed`, else
//!   the requested date (nothing else was ever committed to);
//! - `delivered_on`: the first logistics `Delivered` (a later one is a
//!   claim's redelivery); `on_time` when it is on or before the promise;
//!   lead time in days from receipt to delivery;
//! - cost ([`costs`]): finance's figures from the last `CostLedgerClosed`
//!   (budget, actual, variance, plan vs actual per category in the order
//!   currency, costs still without an exchange rate: the same totals as
//!   `GetCostLedger`); orders closed before finance closed ledgers keep a
//!   reconstruction from the events orders saw. Lessons name the categories
//!   that went over their plan and the costs left unconverted;
//! - first-pass yield over final inspections (each inspection id once);
//! - exceptions ([`exceptions`]): stalls, risk flags, failed final
//!   inspections, late materials, rejected documents, packing mismatches,
//!   decisions asked of a person, each with a short note, and lessons
//!   written from them; the register's tally by kind and the decisions
//!   taken ([`crate::register::tally`]);
//! - amendments: each `OrderAmended`, with what it changed and the total
//!   before and after ([`crate::amendments::closing`]).
//!
//! Events recorded before payloads were kept (`payload` NULL) are counted by
//! type where the type alone is an exception and otherwise skipped.

pub mod costs;
mod exceptions;
mod reconstruction;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_proto::v1::{
    Delivered, FinalInspectionFailed, FinalInspectionPassed, OrderConfirmed, OrderSummary,
};
use gendan_proto::{TypeName, date_from_str, date_to_string, timestamp_from};
use prost::Message;

use crate::timeline::RecordedEvent;

/// What the order row says, as the summary needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub order_id: String,
    pub currency: String,
    /// The day the order was received.
    pub received_on: NaiveDate,
    pub requested_delivery_date: NaiveDate,
    pub promised_delivery_date: Option<NaiveDate>,
    /// Finance's closing figures, as `CloseOrder` brought them (`None` for
    /// an order whose ledger was not closed).
    pub ledger: Option<gendan_proto::v1::CostLedgerClosed>,
}

/// The summary of an order closed at `closed_at`.
pub fn summarize(
    facts: &Facts,
    events: &[RecordedEvent],
    closed_at: DateTime<Utc>,
) -> OrderSummary {
    let promised = facts
        .promised_delivery_date
        .or_else(|| {
            events
                .iter()
                .filter(|e| e.r#type == OrderConfirmed::TYPE_NAME)
                .filter_map(|e| OrderConfirmed::decode(e.payload.as_deref()?).ok())
                .filter_map(|c| date_from_str(&c.promised_delivery_date))
                .next_back()
        })
        .unwrap_or(facts.requested_delivery_date);
    let delivered_on = events
        .iter()
        .filter(|e| e.r#type == Delivered::TYPE_NAME)
        .filter_map(|e| Delivered::decode(e.payload.as_deref()?).ok())
        .filter_map(|d| date_from_str(&d.delivered_on))
        .next();
    let on_time = delivered_on.is_some_and(|delivered| delivered <= promised);
    let lead_time_days = delivered_on
        .map(|delivered| (delivered - facts.received_on).num_days().max(0))
        .map(|days| u32::try_from(days).unwrap_or(u32::MAX))
        .unwrap_or(0);

    let costs = costs::costs(&facts.currency, facts.ledger.as_ref(), events);
    let (first_pass_yield, inspections) = first_pass_yield(events);
    let found = exceptions::exceptions(events);
    let (exceptions_by_kind, decisions) = crate::register::tally(events);

    let mut lessons = Vec::new();
    match delivered_on {
        None => lessons.push("No delivery was recorded before the order was closed.".to_owned()),
        Some(delivered) if delivered > promised => lessons.push(format!(
            "Delivered {} after the promised date {promised}: re-plan earlier when an estimate slips.",
            days((delivered - promised).num_days())
        )),
        Some(_) => {}
    }
    lessons.extend(exceptions::lessons(&found));
    if inspections == 0 {
        lessons.push("No final inspection was recorded.".to_owned());
    }
    lessons.extend(costs::lessons(&costs, &facts.currency));
    if lessons.is_empty() {
        lessons.push(
            "Delivered on time with no exceptions: keep the same plan for repeat orders."
                .to_owned(),
        );
    }

    OrderSummary {
        order_id: facts.order_id.clone(),
        promised_delivery_date: date_to_string(promised),
        delivered_on: delivered_on.map(date_to_string).unwrap_or_default(),
        on_time,
        lead_time_days,
        cost_budget_minor: costs.budget_minor,
        cost_actual_minor: costs.actual_minor,
        currency: facts.currency.clone(),
        first_pass_yield,
        exceptions: u32::try_from(found.notes.len()).unwrap_or(u32::MAX),
        exception_notes: found.notes,
        lessons: lessons.join("\n"),
        closed_at: Some(timestamp_from(closed_at)),
        exceptions_by_kind,
        decisions,
        amendments: crate::amendments::closing::lines(&facts.currency, events),
        cost_categories: costs.categories,
        cost_variance_minor: costs.variance_minor,
        cost_variance_bp: costs.variance_bp,
        unconverted_costs: costs.unconverted,
    }
}

fn non_empty_or_index(key: String, index: usize) -> String {
    if key.is_empty() {
        format!("#{index}")
    } else {
        key
    }
}

/// First-pass yield and how many final inspections were counted: the good
/// units over the units inspected at the order's first final inspection
/// (1 defective unit of 20 sampled is 0.95, whether the lot passed or
/// failed); 0.0 when there was none. Results announced before inspections
/// carried their sample fall back to the share of passes (1.0 when the first
/// passed). Each inspection id counts once (its first result), so a
/// re-announced result does not skew it.
pub fn first_pass_yield(events: &[RecordedEvent]) -> (f64, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut results: Vec<FinalResult> = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let Some(result) = final_result(event) else {
            continue;
        };
        let key = non_empty_or_index(result.inspection_id.clone(), index);
        if seen.insert(key) {
            results.push(result);
        }
    }
    let Some(first) = results.first() else {
        return (0.0, 0);
    };
    let counted = results.len();
    if first.sample_size > 0 {
        let good = first.sample_size.saturating_sub(first.defective_units);
        return (f64::from(good) / f64::from(first.sample_size), counted);
    }
    if first.passed {
        return (1.0, counted);
    }
    let passes = results.iter().filter(|result| result.passed).count();
    (passes as f64 / counted as f64, counted)
}

/// One final inspection's result as its event told it.
struct FinalResult {
    inspection_id: String,
    passed: bool,
    sample_size: u32,
    defective_units: u32,
}

fn final_result(event: &RecordedEvent) -> Option<FinalResult> {
    let payload = event.payload.as_deref();
    match event.r#type.as_str() {
        FinalInspectionPassed::TYPE_NAME => {
            let passed = payload.and_then(|p| FinalInspectionPassed::decode(p).ok());
            let passed = passed.unwrap_or_default();
            Some(FinalResult {
                inspection_id: passed.inspection_id,
                passed: true,
                sample_size: passed.sample_size,
                defective_units: passed.defective_units,
            })
        }
        FinalInspectionFailed::TYPE_NAME => {
            let failed = payload.and_then(|p| FinalInspectionFailed::decode(p).ok());
            let failed = failed.unwrap_or_default();
            Some(FinalResult {
                inspection_id: failed.inspection_id,
                passed: false,
                sample_size: failed.sample_size,
                defective_units: failed.defective_units,
            })
        }
        _ => None,
    }
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "unknown" } else { text }
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".to_owned()
    } else {
        format!("{n} days")
    }
}

fn times(n: u32) -> String {
    if n == 1 {
        "once".to_owned()
    } else {
        format!("{n} times")
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Timelines for the tests of this module and its parts.
#[cfg(test)]
mod fixtures {
    use chrono::{NaiveDate, Utc};
    use gendan_proto::{TypeName, date_from_str};
    use prost::Message;

    use super::Facts;
    use crate::timeline::RecordedEvent;

    pub fn date(text: &str) -> NaiveDate {
        date_from_str(text).expect("date")
    }

    pub fn event<M: Message + TypeName>(payload: &M) -> RecordedEvent {
        RecordedEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            r#type: M::TYPE_NAME.to_owned(),
            occurred_at: Utc::now(),
            payload: Some(payload.encode_to_vec()),
        }
    }

    /// A USD order received 2030-01-01, requested for 2030-03-01.
    pub fn facts() -> Facts {
        Facts {
            order_id: "o-1".to_owned(),
            currency: "USD".to_owned(),
            received_on: date("2030-01-01"),
            requested_delivery_date: date("2030-03-01"),
            promised_delivery_date: None,
            ledger: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::fixtures::{date, event, facts};
    use super::*;

    fn delivered(on: &str) -> RecordedEvent {
        event(&Delivered {
            delivered_on: on.to_owned(),
            ..Default::default()
        })
    }

    #[test]
    fn on_time_and_lead_time_come_from_the_confirmation_and_the_delivery() {
        let events = vec![
            event(&OrderConfirmed {
                promised_delivery_date: "2030-03-10".to_owned(),
                ..Default::default()
            }),
            event(&FinalInspectionPassed::default()),
            delivered("2030-03-08"),
        ];
        let summary = summarize(&facts(), &events, Utc::now());
        assert_eq!(summary.promised_delivery_date, "2030-03-10");
        assert_eq!(summary.delivered_on, "2030-03-08");
        assert!(summary.on_time);
        assert_eq!(summary.lead_time_days, 66);
        assert_eq!(summary.first_pass_yield, 1.0);
        assert_eq!(summary.exceptions, 0);
        assert_eq!(
            summary.lessons,
            "Delivered on time with no exceptions: keep the same plan for repeat orders."
        );
    }

    #[test]
    fn the_stored_promise_wins_and_late_delivery_is_a_lesson() {
        let mut facts = facts();
        facts.promised_delivery_date = Some(date("2030-03-05"));
        let events = vec![
            event(&OrderConfirmed {
                promised_delivery_date: "2030-03-20".to_owned(),
                ..Default::default()
            }),
            delivered("2030-03-08"),
        ];
        let summary = summarize(&facts, &events, Utc::now());
        assert!(!summary.on_time);
        assert!(
            summary
                .lessons
                .contains("Delivered 3 days after the promised date 2030-03-05"),
            "{}",
            summary.lessons
        );
    }

    #[test]
    fn no_delivery_is_not_on_time() {
        let summary = summarize(&facts(), &[], Utc::now());
        assert!(!summary.on_time);
        assert_eq!(summary.delivered_on, "");
        assert_eq!(summary.lead_time_days, 0);
        assert_eq!(summary.promised_delivery_date, "2030-03-01");
        assert!(summary.lessons.contains("No delivery was recorded"));
    }

    #[test]
    fn first_pass_yield_over_final_inspections() {
        let passed = |id: &str| {
            event(&FinalInspectionPassed {
                inspection_id: id.to_owned(),
                ..Default::default()
            })
        };
        let failed = |id: &str| {
            event(&FinalInspectionFailed {
                inspection_id: id.to_owned(),
                summary: "scratches on 4 of 80 samples".to_owned(),
                ..Default::default()
            })
        };
        assert_eq!(first_pass_yield(&[]), (0.0, 0));
        assert_eq!(first_pass_yield(&[passed("I-1")]), (1.0, 1));
        assert_eq!(
            first_pass_yield(&[failed("I-1"), failed("I-2"), passed("I-3")]),
            (1.0 / 3.0, 3)
        );
        // A re-announced failure counts once.
        assert_eq!(
            first_pass_yield(&[failed("I-1"), failed("I-1"), passed("I-2")]),
            (0.5, 2)
        );
    }

    #[test]
    fn first_pass_yield_counts_the_good_units_of_the_first_inspection() {
        // 1 defective unit of 20 sampled: 0.95, failed (acceptance 0) or
        // passed (within what the plan accepts) alike.
        let failed = event(&FinalInspectionFailed {
            inspection_id: "I-1".to_owned(),
            sample_size: 20,
            defective_units: 1,
            ..Default::default()
        });
        let reinspected = event(&FinalInspectionPassed {
            inspection_id: "I-2".to_owned(),
            sample_size: 20,
            ..Default::default()
        });
        assert_eq!(first_pass_yield(&[failed, reinspected]), (0.95, 2));
        let passed = event(&FinalInspectionPassed {
            inspection_id: "I-1".to_owned(),
            sample_size: 20,
            defective_units: 1,
            ..Default::default()
        });
        assert_eq!(first_pass_yield(&[passed]), (0.95, 1));
        // Defects counted per class may exceed the sample: never below 0.
        let all_bad = event(&FinalInspectionFailed {
            inspection_id: "I-1".to_owned(),
            sample_size: 20,
            defective_units: 25,
            ..Default::default()
        });
        assert_eq!(first_pass_yield(&[all_bad]), (0.0, 1));
    }

    proptest! {
        #[test]
        fn yield_stays_within_zero_and_one(results in proptest::collection::vec(any::<bool>(), 0..40)) {
            let events: Vec<RecordedEvent> = results
                .iter()
                .enumerate()
                .map(|(n, passed)| {
                    let id = format!("I-{n}");
                    if *passed {
                        event(&FinalInspectionPassed { inspection_id: id, ..Default::default() })
                    } else {
                        event(&FinalInspectionFailed { inspection_id: id, ..Default::default() })
                    }
                })
                .collect();
            let (fpy, counted) = first_pass_yield(&events);
            prop_assert_eq!(counted, results.len());
            prop_assert!((0.0..=1.0).contains(&fpy));
            if results.first() == Some(&true) {
                prop_assert_eq!(fpy, 1.0);
            }
        }
    }
}
