//! What each event teaches the order's time-and-action calendar
//! ([`crate::calendar`]), and the snapshot the saga announces when a
//! re-projection moved a milestone (`MilestonesChanged`).
//!
//! | event | the calendar learns |
//! | --- | --- |
//! | `MaterialsChecked`, `MaterialsOrdered`, `MaterialsDelayed` | materials in: the estimate |
//! | `MaterialsReady` | materials in: the actual |
//! | `CapacityChecked`, `WorkOrderPlanned` | the production plan (stages), its start and each stage's end: estimates |
//! | `WorkOrderProgressed`, `WorkOrderRescheduled` | each stage's projected end (estimate), completed stages and the start (actuals) |
//! | `WorkOrderCompleted` | every stage done (actual) |
//! | `ReworkPlanned` | final inspection: the rework's end plus the inspection |
//! | `InspectionEstimated` | the stages inspected in process |
//! | `FreightQuoted` | the lane: departure weekday, cut-off, transit |
//! | `ShipmentBooked` | ex-factory and delivery: the booking's ETD and ETA |
//! | `TrackingUpdated` | delivery: the carrier's ETA, when it gives one |
//! | `OrderConfirmed` | confirmed (actual); the milestones are planned on their projection |
//! | `ReceivableOpened` | the payments and which one production waits for |
//! | `InvoiceIssued`, `PaymentDueExtended` | a payment's due date, as invoiced and as extended |
//! | `InProcessInspectionPassed`, `FinalInspectionPassed`, `PackingChecked` (matching), `DocumentsReady`, `Shipped`, `Delivered`, `OrderAccepted`, `DepositReceived`, `OrderPaidInFull` | actuals |
//! | `PaymentReceived` | the actual of each installment whose invoice it settled |
//!
//! A calendar starts with the review's first answer. A saga that was past
//! its review before calendars existed keeps none (`Facts.calendar` is
//! `None`) and announces nothing.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use gendan_messaging::{HandlerError, Incoming};
use gendan_proto::TypeName;
use gendan_proto::v1;

use super::date;
use crate::calendar::{
    Calendar, CalendarSettings, Change, Estimate, Inputs, Key, Kind, Lane, Payment, StagePlan,
    Trigger, WorkWeek,
};
use crate::state::SagaState;

mod announce;

pub use announce::{announce, coalesce, milestones, project_delivery};

/// Applies `incoming` to the order's calendar and re-projects it on
/// `today`; returns what moved.
pub fn follow(
    state: &mut SagaState,
    incoming: &Incoming,
    settings: &CalendarSettings,
    today: NaiveDate,
) -> Result<Vec<Change>, HandlerError> {
    let week = &settings.week;
    // A second answer to a re-sent capacity check (a new computation) must
    // not move the dates the customer was asked about once it is settled.
    let capacity_settled = state.step("capacity_check").status.is_finished();
    if state.facts.calendar.is_none() && (capacity_settled || !starts_calendar(incoming)) {
        return Ok(Vec::new());
    }
    let export = state.order.export;
    let facts = &mut state.facts;
    let calendar = facts.calendar.get_or_insert_with(|| {
        let inputs = Inputs {
            export,
            durations: settings.durations,
            ..Inputs::default()
        };
        Calendar::of(inputs)
    });
    let confirmed = learn(
        calendar,
        &mut facts.invoice_payments,
        incoming,
        week,
        today,
        capacity_settled,
    )?;
    let changes = calendar.reproject(week, today);
    if calendar.actual(&Key::of(Kind::Confirmed)).is_some() {
        // Milestones that appear after confirmation (the payments, a
        // remake's stages) are planned on their first projection.
        calendar.baseline();
    }
    if confirmed == Confirmation::Again {
        calendar.rebaseline();
    }
    Ok(changes)
}

fn starts_calendar(incoming: &Incoming) -> bool {
    [
        v1::MaterialsChecked::TYPE_NAME,
        v1::CapacityChecked::TYPE_NAME,
        v1::FreightQuoted::TYPE_NAME,
        v1::InspectionEstimated::TYPE_NAME,
    ]
    .contains(&incoming.type_name())
}

#[derive(Debug, PartialEq, Eq)]
enum Confirmation {
    None,
    First,
    /// An amended order confirmed again: it is planned afresh.
    Again,
}

/// Records what `incoming` says about dates.
fn learn(
    calendar: &mut Calendar,
    invoices: &mut BTreeMap<String, Key>,
    incoming: &Incoming,
    week: &WorkWeek,
    today: NaiveDate,
    capacity_settled: bool,
) -> Result<Confirmation, HandlerError> {
    let source = incoming
        .type_name()
        .trim_start_matches("gendan.v1.")
        .to_owned();
    // What an event does not date happened on the saga's day (its clock
    // is the business calendar, which the demo moves).
    let happened = today;
    let estimate = |on: NaiveDate, source: &str| Estimate {
        on,
        source: source.to_owned(),
    };
    match incoming.type_name() {
        v1::MaterialsChecked::TYPE_NAME => {
            let checked: v1::MaterialsChecked = incoming.payload()?;
            if let Some(on) = date(&checked.earliest_material_date, "earliest_material_date")? {
                calendar.estimate(Key::of(Kind::MaterialsIn), estimate(on, &source));
            }
        }
        v1::MaterialsOrdered::TYPE_NAME => {
            let ordered: v1::MaterialsOrdered = incoming.payload()?;
            if let Some(on) = date(&ordered.expected_ready_date, "expected_ready_date")? {
                calendar.estimate(Key::of(Kind::MaterialsIn), estimate(on, &source));
            }
        }
        v1::MaterialsDelayed::TYPE_NAME => {
            let delayed: v1::MaterialsDelayed = incoming.payload()?;
            if let Some(on) = date(&delayed.expected_ready_date, "expected_ready_date")? {
                let why = format!("{source} {}", delayed.purchase_order_id);
                calendar.estimate(Key::of(Kind::MaterialsIn), estimate(on, why.trim()));
            }
        }
        v1::MaterialsReady::TYPE_NAME => {
            let ready: v1::MaterialsReady = incoming.payload()?;
            let on = date(&ready.ready_on, "ready_on")?.unwrap_or(happened);
            calendar.record_actual(Key::of(Kind::MaterialsIn), on);
        }
        v1::CapacityChecked::TYPE_NAME => {
            let checked: v1::CapacityChecked = incoming.payload()?;
            if checked.problem.is_empty() && !capacity_settled {
                let end = date(&checked.earliest_completion, "earliest_completion")?;
                let plan = Plan::of(&checked.stages, &checked.planned_start, end)?;
                plan_production(calendar, plan, &source);
            }
        }
        v1::WorkOrderPlanned::TYPE_NAME => {
            let planned: v1::WorkOrderPlanned = incoming.payload()?;
            let end = date(&planned.planned_end, "planned_end")?;
            let plan = Plan::of(&planned.stages, &planned.planned_start, end)?;
            plan_production(calendar, plan, &source);
        }
        v1::WorkOrderProgressed::TYPE_NAME => {
            let progressed: v1::WorkOrderProgressed = incoming.payload()?;
            let end = date(&progressed.projected_end, "projected_end")?;
            follow_stages(calendar, &progressed.stages, end, &source)?;
        }
        v1::WorkOrderRescheduled::TYPE_NAME => {
            let moved: v1::WorkOrderRescheduled = incoming.payload()?;
            let why = format!("{source} {}", moved.work_centre);
            let end = date(&moved.projected_end, "projected_end")?;
            follow_stages(calendar, &moved.stages, end, why.trim())?;
        }
        v1::WorkOrderCompleted::TYPE_NAME => {
            let completed: v1::WorkOrderCompleted = incoming.payload()?;
            let on = date(&completed.completed_on, "completed_on")?.unwrap_or(happened);
            let stages: Vec<Key> = calendar
                .inputs()
                .stages
                .iter()
                .map(|stage| Key::stage(&stage.product, &stage.stage))
                .collect();
            calendar.record_actual(Key::of(Kind::ProductionStart), on);
            for key in stages {
                calendar.record_actual(key, on);
            }
        }
        v1::ReworkPlanned::TYPE_NAME => {
            let planned: v1::ReworkPlanned = incoming.payload()?;
            if let Some(end) = date(&planned.planned_end, "planned_end")? {
                let inspected = week.add_working(end, calendar.inputs().durations.inspection);
                let why = format!("{source} {}", planned.work_order_id);
                calendar.estimate(
                    Key::of(Kind::FinalInspection),
                    estimate(inspected, why.trim()),
                );
            }
        }
        v1::FreightQuoted::TYPE_NAME => {
            let quoted: v1::FreightQuoted = incoming.payload()?;
            if quoted.problem.is_empty() && (1..=7).contains(&quoted.departure_weekday) {
                let mut inputs = calendar.inputs().clone();
                inputs.lane = Some(Lane {
                    weekday: quoted.departure_weekday,
                    cutoff_days: quoted.cutoff_days,
                    transit_days: quoted.transit_days,
                });
                calendar.set_inputs(inputs);
            }
        }
        v1::ShipmentBooked::TYPE_NAME => {
            let booked: v1::ShipmentBooked = incoming.payload()?;
            let why = format!("{source} {}", booked.booking_reference);
            if let Some(etd) = date(&booked.etd, "etd")? {
                calendar.estimate(Key::of(Kind::ExFactory), estimate(etd, why.trim()));
            }
            if let Some(eta) = date(&booked.eta, "eta")? {
                calendar.estimate(Key::of(Kind::Delivered), estimate(eta, why.trim()));
            }
        }
        v1::OrderConfirmed::TYPE_NAME => {
            let first = calendar.actual(&Key::of(Kind::Confirmed)).is_none();
            calendar.record_actual(Key::of(Kind::Confirmed), happened);
            let confirmed: v1::OrderConfirmed = incoming.payload()?;
            return Ok(if first {
                Confirmation::First
            } else if confirmed.revision > 1 {
                Confirmation::Again
            } else {
                Confirmation::None
            });
        }
        v1::InspectionEstimated::TYPE_NAME => {
            let estimated: v1::InspectionEstimated = incoming.payload()?;
            let mut inputs = calendar.inputs().clone();
            inputs.in_process = estimated
                .in_process
                .into_iter()
                .map(|inspected| (inspected.product, inspected.stage))
                .collect();
            calendar.set_inputs(inputs);
        }
        v1::ReceivableOpened::TYPE_NAME => {
            let opened: v1::ReceivableOpened = incoming.payload()?;
            let mut inputs = calendar.inputs().clone();
            inputs.payments = payments(&opened);
            calendar.set_inputs(inputs);
        }
        v1::InProcessInspectionPassed::TYPE_NAME => {
            let passed: v1::InProcessInspectionPassed = incoming.payload()?;
            calendar.record_actual(Key::in_process(&passed.product, &passed.stage), happened);
        }
        v1::FinalInspectionPassed::TYPE_NAME => {
            calendar.record_actual(Key::of(Kind::FinalInspection), happened);
        }
        v1::PackingChecked::TYPE_NAME => {
            let checked: v1::PackingChecked = incoming.payload()?;
            if checked.matches {
                calendar.record_actual(Key::of(Kind::PackingDone), happened);
            }
        }
        v1::DocumentsReady::TYPE_NAME => {
            calendar.record_actual(Key::of(Kind::DocumentsReady), happened);
        }
        v1::TrackingUpdated::TYPE_NAME => {
            let tracked: v1::TrackingUpdated = incoming.payload()?;
            if let Some(eta) = date(&tracked.eta, "eta")? {
                let why = format!("carrier ETA ({} {})", tracked.status, tracked.location);
                calendar.estimate(Key::of(Kind::Delivered), estimate(eta, why.trim()));
            }
        }
        v1::Shipped::TYPE_NAME => {
            let shipped: v1::Shipped = incoming.payload()?;
            let on = date(&shipped.shipped_on, "shipped_on")?.unwrap_or(happened);
            calendar.record_actual(Key::of(Kind::ExFactory), on);
        }
        v1::Delivered::TYPE_NAME => {
            let delivered: v1::Delivered = incoming.payload()?;
            let on = date(&delivered.delivered_on, "delivered_on")?.unwrap_or(happened);
            calendar.record_actual(Key::of(Kind::Delivered), on);
        }
        v1::OrderAccepted::TYPE_NAME => {
            calendar.record_actual(Key::of(Kind::Accepted), happened);
        }
        v1::InvoiceIssued::TYPE_NAME => {
            // The invoice's due date is the payment's: the terms' days
            // counted from the day it was really issued.
            let issued: v1::InvoiceIssued = incoming.payload()?;
            let key = Key::payment(issued.kind.trim());
            let known = calendar
                .inputs()
                .payments
                .iter()
                .any(|p| p.label == key.subject);
            if let (true, Some(due)) = (known, date(&issued.due_date, "due_date")?) {
                invoices.insert(issued.invoice_id.clone(), key.clone());
                let why = format!("{source} {}", issued.invoice_id);
                calendar.estimate(key, estimate(due, why.trim()));
            }
        }
        v1::PaymentDueExtended::TYPE_NAME => {
            let extended: v1::PaymentDueExtended = incoming.payload()?;
            let due = date(&extended.new_due_date, "new_due_date")?;
            if let (Some(key), Some(due)) = (invoices.get(&extended.invoice_id).cloned(), due) {
                let why = format!("{source} {}", extended.invoice_id);
                calendar.estimate(key, estimate(due, why.trim()));
            }
        }
        v1::PaymentReceived::TYPE_NAME => {
            // Each installment on the day the payment that settled its
            // invoice came in (a middle installment has no event of its
            // own; the deposit and the last also have theirs below).
            let received: v1::PaymentReceived = incoming.payload()?;
            let on = date(&received.received_on, "received_on")?.unwrap_or(happened);
            for invoice_id in &received.invoices_paid {
                if let Some(key) = invoices.get(invoice_id).cloned() {
                    calendar.record_actual(key, on);
                }
            }
        }
        v1::DepositReceived::TYPE_NAME => {
            let received: v1::DepositReceived = incoming.payload()?;
            let on = date(&received.received_on, "received_on")?.unwrap_or(happened);
            let deposits: Vec<Key> = calendar
                .inputs()
                .payments
                .iter()
                .filter(|payment| payment.trigger == Trigger::Confirmed)
                .map(|payment| Key::payment(&payment.label))
                .collect();
            for key in deposits {
                calendar.record_actual(key, on);
            }
        }
        v1::OrderPaidInFull::TYPE_NAME => {
            let paid: v1::OrderPaidInFull = incoming.payload()?;
            let on = date(&paid.paid_on, "paid_on")?.unwrap_or(happened);
            let payments: Vec<Key> = calendar
                .inputs()
                .payments
                .iter()
                .map(|payment| Key::payment(&payment.label))
                .collect();
            for key in payments {
                calendar.record_actual(key, on);
            }
        }
        _ => {}
    }
    Ok(Confirmation::None)
}

/// A production plan as an event gives it: its stages, or, from a producer
/// that sends only the end, the whole production as one stage.
struct Plan {
    stages: Vec<StagePlan>,
    start: Option<NaiveDate>,
}

impl Plan {
    fn of(
        stages: &[v1::StagePlan],
        planned_start: &str,
        end: Option<NaiveDate>,
    ) -> Result<Plan, HandlerError> {
        let mut plan = Vec::with_capacity(stages.len());
        for stage in stages {
            let (Some(start), Some(end)) = (
                date(&stage.planned_start, "stages.planned_start")?,
                date(&stage.planned_end, "stages.planned_end")?,
            ) else {
                continue;
            };
            plan.push(StagePlan {
                product: stage.product.clone(),
                stage: stage.stage.clone(),
                start,
                end,
            });
        }
        let start =
            date(planned_start, "planned_start")?.or(plan.iter().map(|stage| stage.start).min());
        if plan.is_empty()
            && let Some(end) = end
        {
            plan.push(StagePlan {
                product: WHOLE_ORDER.0.to_owned(),
                stage: WHOLE_ORDER.1.to_owned(),
                start: start.unwrap_or(end).min(end),
                end,
            });
        }
        Ok(Plan {
            stages: plan,
            start,
        })
    }
}

/// The one stage of a plan given without its stages.
pub(crate) const WHOLE_ORDER: (&str, &str) = ("order", "production");

/// The production plan in force becomes the calendar's stages; its start
/// and each stage's end are production's estimates.
fn plan_production(calendar: &mut Calendar, plan: Plan, source: &str) {
    if plan.stages.is_empty() {
        return;
    }
    let estimate = |on: NaiveDate| Estimate {
        on,
        source: source.to_owned(),
    };
    for stage in plan.stages.iter() {
        calendar.estimate(
            Key::stage(&stage.product, &stage.stage),
            estimate(stage.end),
        );
    }
    if let Some(start) = plan.start {
        calendar.estimate(Key::of(Kind::ProductionStart), estimate(start));
    }
    let mut inputs = calendar.inputs().clone();
    inputs.stages = plan.stages;
    calendar.set_inputs(inputs);
}

/// Each stage's projected end is production's estimate; a completed stage
/// and the first start are actuals.
fn follow_stages(
    calendar: &mut Calendar,
    stages: &[v1::StageProgress],
    work_order_end: Option<NaiveDate>,
    source: &str,
) -> Result<(), HandlerError> {
    if stages.is_empty() {
        // A producer that sends only the work order's end: each product's
        // last stage ends then.
        if let Some(end) = work_order_end {
            for key in last_stages(calendar.inputs()) {
                calendar.estimate(
                    key,
                    Estimate {
                        on: end,
                        source: source.to_owned(),
                    },
                );
            }
        }
        return Ok(());
    }
    let mut started: Option<NaiveDate> = None;
    for stage in stages {
        let key = Key::stage(&stage.product, &stage.stage);
        if let Some(end) = date(&stage.actual_end, "stages.actual_end")? {
            calendar.record_actual(key.clone(), end);
        }
        if let Some(end) = date(&stage.projected_end, "stages.projected_end")? {
            calendar.estimate(
                key,
                Estimate {
                    on: end,
                    source: source.to_owned(),
                },
            );
        }
        if let Some(start) = date(&stage.actual_start, "stages.actual_start")? {
            started = Some(started.map_or(start, |first| first.min(start)));
        }
    }
    if let Some(start) = started {
        calendar.record_actual(Key::of(Kind::ProductionStart), start);
    }
    Ok(())
}

/// Each product's last stage in the plan.
fn last_stages(inputs: &Inputs) -> Vec<Key> {
    let stages = &inputs.stages;
    stages
        .iter()
        .enumerate()
        .filter(|(index, stage)| {
            stages
                .get(index + 1)
                .is_none_or(|next| next.product != stage.product)
        })
        .map(|(_, stage)| Key::stage(&stage.product, &stage.stage))
        .collect()
}

/// The installments of the terms as payments: a payment due on
/// confirmation is a deposit, which production waits for when the terms
/// say so; a payment due against the bill of lading, the documents or net
/// days runs from shipment; one due on delivery from delivery.
fn payments(opened: &v1::ReceivableOpened) -> Vec<Payment> {
    let mut payments: Vec<Payment> = Vec::new();
    for installment in opened.installments.iter() {
        let trigger = match installment.payment_trigger() {
            v1::PaymentTrigger::OnConfirmation => Trigger::Confirmed,
            v1::PaymentTrigger::OnDelivery => Trigger::Delivered,
            v1::PaymentTrigger::Unspecified => match installment.trigger.as_str() {
                "on_confirmation" => Trigger::Confirmed,
                "on_delivery" => Trigger::Delivered,
                _ => Trigger::Shipped,
            },
            _ => Trigger::Shipped,
        };
        let mut label = if installment.kind.is_empty() {
            "payment".to_owned()
        } else {
            installment.kind.clone()
        };
        if payments.iter().any(|payment| payment.label == label) {
            label = format!("{label} {}", payments.len() + 1);
        }
        payments.push(Payment {
            label,
            trigger,
            due_days: installment.due_days,
            gates_production: opened.deposit_required && trigger == Trigger::Confirmed,
        });
    }
    payments
}
