//! The closing summary of an order, computed from what orders already holds.
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
//! - cost: the last finance `CostOverrun` (budget and actual) when there is
//!   one, otherwise see [`costs`];
//! - first-pass yield over final inspections (each inspection id once);
//! - exceptions: stalls, risk flags, failed final inspections, late
//!   materials, rejected documents, packing mismatches, decisions asked of a
//!   person, each with a short note, and lessons written from them;
//! - amendments: each `OrderAmended`, with what it changed and the total
//!   before and after ([`crate::amendments::closing`]).
//!
//! Events recorded before payloads were kept (`payload` NULL) are counted by
//! type where the type alone is an exception and otherwise skipped.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_proto::v1::{
    CostOverrun, DecisionRequested, Delivered, DeliveryRiskChanged, DocumentsRejected,
    FinalInspectionFailed, FinalInspectionPassed, MaterialsDelayed, OrderConfirmed, OrderSummary,
    PackingChecked, PurchaseOrderPlaced, ReceivableOpened, SagaStalled, ShipmentBooked,
    ShipmentCancelled,
};
use gendan_proto::{TypeName, date_from_str, date_to_string, timestamp_from};
use prost::Message;

use crate::summary::money;
use crate::timeline::RecordedEvent;

/// What the order row says, as the summary needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub order_id: String,
    pub currency: String,
    /// The day the order was received.
    pub received_on: NaiveDate,
    pub requested_delivery_date: NaiveDate,
    pub promised_delivery_date: Option<NaiveDate>,
}

/// Exceptions and the counts lessons are written from.
#[derive(Debug, Default)]
struct Exceptions {
    notes: Vec<String>,
    stalls: u32,
    risk_flags: u32,
    inspection_failures: u32,
    material_delays: u32,
    /// Longest material delay in days, where the original date is known.
    material_days_late: Option<i64>,
    document_rejections: u32,
    packing_mismatches: u32,
    decisions: u32,
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

    let costs = costs(&facts.currency, events);
    let (first_pass_yield, inspections) = first_pass_yield(events);
    let exceptions = exceptions(events);
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
    lessons.extend(lessons_from(&exceptions));
    if inspections == 0 {
        lessons.push("No final inspection was recorded.".to_owned());
    }
    if costs.budget_minor > 0 && costs.actual_minor > costs.budget_minor {
        let over = costs.actual_minor.saturating_sub(costs.budget_minor);
        lessons.push(format!(
            "Costs ran {} over the budget of {}: check which cost lines grew.",
            money(over, &facts.currency),
            money(costs.budget_minor, &facts.currency)
        ));
    }
    if costs.skipped_other_currency > 0 {
        lessons.push(format!(
            "{} in another currency left out of the actual cost.",
            count(
                costs.skipped_other_currency,
                "cost item was",
                "cost items were"
            )
        ));
    }
    if costs.overflowed {
        lessons.push("The actual cost exceeds what can be added up; it is incomplete.".to_owned());
    }
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
        exceptions: u32::try_from(exceptions.notes.len()).unwrap_or(u32::MAX),
        exception_notes: exceptions.notes,
        lessons: lessons.join("\n"),
        closed_at: Some(timestamp_from(closed_at)),
        exceptions_by_kind,
        decisions,
        amendments: crate::amendments::closing::lines(&facts.currency, events),
    }
}

/// Budget and actual cost in the order currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Costs {
    pub budget_minor: i64,
    pub actual_minor: i64,
    /// Cost items in another currency, left out of `actual_minor`.
    pub skipped_other_currency: usize,
    /// The sum did not fit in i64; `actual_minor` holds what did.
    pub overflowed: bool,
}

/// Finance's latest `CostOverrun` verdict (budget and actual) when there is
/// one. Otherwise the actual cost is what the order committed to outside:
/// every purchase order placed (`PurchaseOrderPlaced.amount_minor`, the last
/// announcement per purchase order id) plus the freight of the bookings not
/// cancelled (`ShipmentBooked.freight_cost_minor`, per booking reference), in
/// the order currency; and the budget is the one finance announced with the
/// receivable (`ReceivableOpened.cost_budget_minor`, 0 when none).
///
/// Known limit: labour, rework and expedite costs live only on finance's
/// ledger; until finance publishes the ledger total for every order, they
/// reach the summary only through a `CostOverrun`.
pub fn costs(currency: &str, events: &[RecordedEvent]) -> Costs {
    let overrun = events
        .iter()
        .filter(|e| e.r#type == CostOverrun::TYPE_NAME)
        .filter_map(|e| CostOverrun::decode(e.payload.as_deref()?).ok())
        .next_back();
    if let Some(overrun) = overrun {
        return Costs {
            budget_minor: overrun.budget_minor,
            actual_minor: overrun.actual_minor,
            ..Costs::default()
        };
    }

    let budget_minor = events
        .iter()
        .filter(|e| e.r#type == ReceivableOpened::TYPE_NAME)
        .filter_map(|e| ReceivableOpened::decode(e.payload.as_deref()?).ok())
        .next_back()
        .map(|opened| opened.cost_budget_minor)
        .unwrap_or(0);

    // Keyed so a re-announced PO or booking counts once.
    let mut items: BTreeMap<(u8, String), (i64, String)> = BTreeMap::new();
    for (index, event) in events.iter().enumerate() {
        let Some(payload) = event.payload.as_deref() else {
            continue;
        };
        match event.r#type.as_str() {
            PurchaseOrderPlaced::TYPE_NAME => {
                let Ok(po) = PurchaseOrderPlaced::decode(payload) else {
                    continue;
                };
                let key = non_empty_or_index(po.purchase_order_id, index);
                items.insert((0, key), (po.amount_minor, po.currency));
            }
            ShipmentBooked::TYPE_NAME => {
                let Ok(booking) = ShipmentBooked::decode(payload) else {
                    continue;
                };
                let key = non_empty_or_index(booking.booking_reference, index);
                items.insert((1, key), (booking.freight_cost_minor, booking.currency));
            }
            // A cancelled shipment's freight is not spent; a new booking
            // that follows counts on its own.
            ShipmentCancelled::TYPE_NAME => items.retain(|(kind, _), _| *kind != 1),
            _ => {}
        }
    }
    let mut costs = Costs {
        budget_minor,
        ..Costs::default()
    };
    for (amount, item_currency) in items.into_values() {
        if !item_currency.is_empty() && item_currency != currency {
            costs.skipped_other_currency += 1;
            continue;
        }
        match costs.actual_minor.checked_add(amount) {
            Some(sum) => costs.actual_minor = sum,
            None => costs.overflowed = true,
        }
    }
    costs
}

fn non_empty_or_index(key: String, index: usize) -> String {
    if key.is_empty() {
        format!("#{index}")
    } else {
        key
    }
}

/// First-pass yield over final inspections, and how many were counted:
/// 1.0 when the first result was a pass, else passes / all results; 0.0
/// when there was none. Each inspection id counts once (its first result),
/// so a re-announced result does not skew it.
pub fn first_pass_yield(events: &[RecordedEvent]) -> (f64, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut results = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let passed = match event.r#type.as_str() {
            FinalInspectionPassed::TYPE_NAME => true,
            FinalInspectionFailed::TYPE_NAME => false,
            _ => continue,
        };
        let inspection_id = event.payload.as_deref().and_then(|payload| {
            if passed {
                FinalInspectionPassed::decode(payload)
                    .ok()
                    .map(|e| e.inspection_id)
            } else {
                FinalInspectionFailed::decode(payload)
                    .ok()
                    .map(|e| e.inspection_id)
            }
        });
        let key = non_empty_or_index(inspection_id.unwrap_or_default(), index);
        if seen.insert(key) {
            results.push(passed);
        }
    }
    let Some(&first) = results.first() else {
        return (0.0, 0);
    };
    if first {
        return (1.0, results.len());
    }
    let passes = results.iter().filter(|passed| **passed).count();
    (passes as f64 / results.len() as f64, results.len())
}

fn exceptions(events: &[RecordedEvent]) -> Exceptions {
    let mut found = Exceptions::default();
    // Original expected dates per purchase order, for "N days late".
    let mut po_expected: BTreeMap<String, NaiveDate> = BTreeMap::new();
    for event in events {
        let payload = event.payload.as_deref();
        match event.r#type.as_str() {
            PurchaseOrderPlaced::TYPE_NAME => {
                if let Some(po) = payload.and_then(|p| PurchaseOrderPlaced::decode(p).ok())
                    && let Some(date) = date_from_str(&po.expected_date)
                {
                    po_expected.entry(po.purchase_order_id).or_insert(date);
                }
            }
            SagaStalled::TYPE_NAME => {
                found.stalls += 1;
                found
                    .notes
                    .push(match payload.and_then(|p| SagaStalled::decode(p).ok()) {
                        Some(e) => format!("Workflow stalled at step {}: {}", e.step, e.reason),
                        None => "Workflow stalled".to_owned(),
                    });
            }
            DeliveryRiskChanged::TYPE_NAME => {
                let Some(e) = payload.and_then(|p| DeliveryRiskChanged::decode(p).ok()) else {
                    continue;
                };
                if !(e.at_risk && e.risk_changed) {
                    continue;
                }
                found.risk_flags += 1;
                let mut note = format!(
                    "Delivery flagged at risk: projected {} against promised {}",
                    or_unknown(&e.projected_delivery_date),
                    or_unknown(&e.promised_delivery_date)
                );
                if !e.reason.is_empty() {
                    note.push_str(&format!(" ({})", e.reason));
                }
                found.notes.push(note);
            }
            FinalInspectionFailed::TYPE_NAME => {
                found.inspection_failures += 1;
                let e = payload
                    .and_then(|p| FinalInspectionFailed::decode(p).ok())
                    .unwrap_or_default();
                let mut note = "Final inspection failed".to_owned();
                if !e.inspection_id.is_empty() {
                    note = format!("Final inspection {} failed", e.inspection_id);
                }
                if !e.summary.is_empty() {
                    note.push_str(&format!(": {}", e.summary));
                }
                found.notes.push(note);
            }
            MaterialsDelayed::TYPE_NAME => {
                found.material_delays += 1;
                let e = payload
                    .and_then(|p| MaterialsDelayed::decode(p).ok())
                    .unwrap_or_default();
                let late = date_from_str(&e.expected_ready_date).and_then(|ready| {
                    let planned = po_expected.get(&e.purchase_order_id)?;
                    Some((ready - *planned).num_days()).filter(|days| *days > 0)
                });
                if let Some(days) = late {
                    found.material_days_late =
                        Some(found.material_days_late.unwrap_or(0).max(days));
                }
                let mut note = "Materials delayed".to_owned();
                if !e.purchase_order_id.is_empty() {
                    note.push_str(&format!(" (purchase order {})", e.purchase_order_id));
                }
                if !e.expected_ready_date.is_empty() {
                    note.push_str(&format!(" to {}", e.expected_ready_date));
                }
                if let Some(days) = late {
                    note.push_str(&format!(", {} late", self::days(days)));
                }
                if !e.reason.is_empty() {
                    note.push_str(&format!(": {}", e.reason));
                }
                found.notes.push(note);
            }
            DocumentsRejected::TYPE_NAME => {
                found.document_rejections += 1;
                let e = payload
                    .and_then(|p| DocumentsRejected::decode(p).ok())
                    .unwrap_or_default();
                found.notes.push(if e.problems.is_empty() {
                    "Documents rejected".to_owned()
                } else {
                    format!("Documents rejected: {}", e.problems.join("; "))
                });
            }
            PackingChecked::TYPE_NAME => {
                let Some(e) = payload.and_then(|p| PackingChecked::decode(p).ok()) else {
                    continue;
                };
                if e.matches {
                    continue;
                }
                found.packing_mismatches += 1;
                found.notes.push(if e.mismatches.is_empty() {
                    "Packing did not match the packing spec".to_owned()
                } else {
                    format!(
                        "Packing did not match the packing spec: {}",
                        e.mismatches.join("; ")
                    )
                });
            }
            DecisionRequested::TYPE_NAME => {
                let Some(e) = payload.and_then(|p| DecisionRequested::decode(p).ok()) else {
                    continue;
                };
                if e.reminder {
                    continue;
                }
                found.decisions += 1;
                let decision = e.decision.unwrap_or_default();
                found
                    .notes
                    .push(format!("Decision needed: {}", or_unknown(&decision.kind)));
            }
            _ => {}
        }
    }
    found
}

fn lessons_from(found: &Exceptions) -> Vec<String> {
    let mut lessons = Vec::new();
    if found.material_delays > 0 {
        lessons.push(match found.material_days_late {
            Some(late) => format!(
                "Materials arrived {} late: confirm supplier lead times before promising a \
                 delivery date.",
                days(late)
            ),
            None => format!(
                "Materials were delayed {}: confirm supplier lead times before promising a \
                 delivery date.",
                times(found.material_delays)
            ),
        });
    }
    if found.inspection_failures > 0 {
        lessons.push(format!(
            "Final inspection failed {}: tighten in-process inspection at the stages where the \
             defects arose.",
            times(found.inspection_failures)
        ));
    }
    if found.packing_mismatches > 0 {
        lessons.push(format!(
            "Packing did not match the customer's spec {}: review the packing spec with the \
             warehouse before packing.",
            times(found.packing_mismatches)
        ));
    }
    if found.document_rejections > 0 {
        lessons.push(format!(
            "Documents were rejected {}: prepare and check them before the goods are ready.",
            times(found.document_rejections)
        ));
    }
    if found.stalls > 0 {
        lessons.push(format!(
            "The workflow stalled {}: review who owns the stalled steps and their timeouts.",
            times(found.stalls)
        ));
    }
    if found.risk_flags > 0 {
        lessons.push(format!(
            "Delivery was flagged at risk {}: the customer was told each time.",
            times(found.risk_flags)
        ));
    }
    if found.decisions > 0 {
        lessons.push(format!(
            "{} needed a person's answer.",
            count(found.decisions as usize, "decision", "decisions")
        ));
    }
    lessons
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

#[cfg(test)]
mod tests {
    use gendan_proto::v1::Decision;
    use proptest::prelude::*;

    use super::*;

    fn date(text: &str) -> NaiveDate {
        date_from_str(text).expect("date")
    }

    fn event<M: Message + TypeName>(payload: &M) -> RecordedEvent {
        RecordedEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            r#type: M::TYPE_NAME.to_owned(),
            occurred_at: Utc::now(),
            payload: Some(payload.encode_to_vec()),
        }
    }

    fn facts() -> Facts {
        Facts {
            order_id: "o-1".to_owned(),
            currency: "USD".to_owned(),
            received_on: date("2030-01-01"),
            requested_delivery_date: date("2030-03-01"),
            promised_delivery_date: None,
        }
    }

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
    fn cost_overrun_wins_over_the_committed_costs() {
        let events = vec![
            event(&PurchaseOrderPlaced {
                purchase_order_id: "PO-1".to_owned(),
                amount_minor: 1_000,
                currency: "USD".to_owned(),
                ..Default::default()
            }),
            event(&CostOverrun {
                budget_minor: 5_000,
                actual_minor: 6_000,
                ..Default::default()
            }),
            event(&CostOverrun {
                budget_minor: 5_000,
                actual_minor: 7_500,
                ..Default::default()
            }),
        ];
        let summary = summarize(&facts(), &events, Utc::now());
        assert_eq!(summary.cost_budget_minor, 5_000);
        assert_eq!(summary.cost_actual_minor, 7_500);
        assert!(
            summary
                .lessons
                .contains("Costs ran 25.00 USD over the budget of 50.00 USD"),
            "{}",
            summary.lessons
        );
    }

    #[test]
    fn committed_costs_count_each_po_and_live_booking_once() {
        let po = |id: &str, amount: i64, currency: &str| {
            event(&PurchaseOrderPlaced {
                purchase_order_id: id.to_owned(),
                amount_minor: amount,
                currency: currency.to_owned(),
                ..Default::default()
            })
        };
        let booking = |reference: &str, amount: i64| {
            event(&ShipmentBooked {
                booking_reference: reference.to_owned(),
                freight_cost_minor: amount,
                currency: "USD".to_owned(),
                ..Default::default()
            })
        };
        let events = vec![
            po("PO-1", 10_000, "USD"),
            po("PO-1", 10_000, "USD"),
            po("PO-2", 2_500, ""),
            po("PO-3", 900, "EUR"),
            booking("BK-1", 4_000),
            event(&ShipmentCancelled::default()),
            booking("BK-2", 4_500),
        ];
        let costs = costs("USD", &events);
        assert_eq!(costs.budget_minor, 0);
        assert_eq!(costs.actual_minor, 10_000 + 2_500 + 4_500);
        assert_eq!(costs.skipped_other_currency, 1);
        assert!(!costs.overflowed);
    }

    #[test]
    fn the_budget_is_the_one_announced_with_the_receivable() {
        let events = vec![
            event(&ReceivableOpened {
                cost_budget_minor: 75_000,
                ..Default::default()
            }),
            event(&PurchaseOrderPlaced {
                purchase_order_id: "PO-1".into(),
                amount_minor: 20_000,
                currency: "USD".into(),
                ..Default::default()
            }),
        ];
        let costs = costs("USD", &events);
        assert_eq!(costs.budget_minor, 75_000);
        assert_eq!(costs.actual_minor, 20_000);
    }

    #[test]
    fn cost_sums_never_wrap() {
        let events: Vec<RecordedEvent> = (0..3)
            .map(|n| {
                event(&PurchaseOrderPlaced {
                    purchase_order_id: format!("PO-{n}"),
                    amount_minor: i64::MAX / 2,
                    ..Default::default()
                })
            })
            .collect();
        let costs = costs("USD", &events);
        assert!(costs.overflowed);
        assert!(costs.actual_minor > 0);
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
    fn exceptions_are_counted_with_notes_and_lessons() {
        let events = vec![
            event(&PurchaseOrderPlaced {
                purchase_order_id: "PO-1".to_owned(),
                expected_date: "2030-01-20".to_owned(),
                ..Default::default()
            }),
            event(&MaterialsDelayed {
                purchase_order_id: "PO-1".to_owned(),
                expected_ready_date: "2030-01-25".to_owned(),
                reason: "supplier furnace repair".to_owned(),
                ..Default::default()
            }),
            event(&SagaStalled {
                step: "procure_materials".to_owned(),
                reason: "no reply after 5 attempts".to_owned(),
                ..Default::default()
            }),
            // Only a flip to at-risk counts.
            event(&DeliveryRiskChanged {
                at_risk: true,
                risk_changed: true,
                projected_delivery_date: "2030-03-12".to_owned(),
                promised_delivery_date: "2030-03-10".to_owned(),
                ..Default::default()
            }),
            event(&DeliveryRiskChanged {
                at_risk: true,
                risk_changed: false,
                ..Default::default()
            }),
            event(&DeliveryRiskChanged {
                at_risk: false,
                risk_changed: true,
                ..Default::default()
            }),
            event(&FinalInspectionFailed {
                inspection_id: "I-1".to_owned(),
                summary: "burrs".to_owned(),
                ..Default::default()
            }),
            event(&PackingChecked {
                matches: true,
                ..Default::default()
            }),
            event(&PackingChecked {
                matches: false,
                mismatches: vec!["carton marks".to_owned()],
                ..Default::default()
            }),
            event(&DocumentsRejected {
                problems: vec!["certificate of origin missing".to_owned()],
                ..Default::default()
            }),
            event(&DecisionRequested {
                decision: Some(Decision {
                    kind: "delivery_date".to_owned(),
                    ..Default::default()
                }),
                reminder: false,
            }),
            event(&DecisionRequested {
                decision: Some(Decision::default()),
                reminder: true,
            }),
        ];
        let summary = summarize(&facts(), &events, Utc::now());
        assert_eq!(summary.exceptions, 7, "{:#?}", summary.exception_notes);
        assert_eq!(
            summary.exception_notes[0],
            "Materials delayed (purchase order PO-1) to 2030-01-25, 5 days late: supplier furnace repair"
        );
        assert_eq!(
            summary.exception_notes[4],
            "Packing did not match the packing spec: carton marks"
        );
        for lesson in [
            "Materials arrived 5 days late",
            "Final inspection failed once",
            "Packing did not match the customer's spec once",
            "Documents were rejected once",
            "The workflow stalled once",
            "Delivery was flagged at risk once",
            "1 decision needed a person's answer.",
        ] {
            assert!(
                summary.lessons.contains(lesson),
                "{lesson} in {}",
                summary.lessons
            );
        }
    }

    #[test]
    fn events_without_payload_still_count_by_type() {
        let mut stalled = event(&SagaStalled::default());
        stalled.payload = None;
        let mut risk = event(&DeliveryRiskChanged::default());
        risk.payload = None;
        let summary = summarize(&facts(), &[stalled, risk], Utc::now());
        assert_eq!(summary.exceptions, 1);
        assert_eq!(summary.exception_notes, vec!["Workflow stalled".to_owned()]);
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

        #[test]
        fn committed_cost_is_the_checked_sum(amounts in proptest::collection::vec(0i64..i64::MAX / 4, 0..8)) {
            let events: Vec<RecordedEvent> = amounts
                .iter()
                .enumerate()
                .map(|(n, amount)| event(&PurchaseOrderPlaced {
                    purchase_order_id: format!("PO-{n}"),
                    amount_minor: *amount,
                    ..Default::default()
                }))
                .collect();
            let costs = costs("USD", &events);
            let exact = amounts.iter().try_fold(0i64, |sum, a| sum.checked_add(*a));
            match exact {
                Some(sum) => {
                    prop_assert_eq!(costs.actual_minor, sum);
                    prop_assert!(!costs.overflowed);
                }
                None => prop_assert!(costs.overflowed),
            }
        }
    }
}
