//! What the saga tells others about an order's calendar: the projected
//! delivery it keeps on the saga, and `MilestonesChanged` — the whole
//! calendar on the wire, what moved in words, one announcement per run.

use chrono::NaiveDate;
use gendan_messaging::{Cause, Outgoing};
use gendan_proto::v1;
use gendan_proto::{TypeName, date_to_string};
use prost::Message as _;

use super::WHOLE_ORDER;
use crate::SERVICE;
use crate::calendar::{Calendar, Change, Key, Kind, WorkWeek};
use crate::state::SagaState;

/// The order's projected delivery is the calendar's delivered milestone,
/// once the order has a calendar: production, inspection, packing,
/// documents and transit included.
pub fn project_delivery(state: &mut SagaState) {
    if let Some(delivered) = state
        .facts
        .calendar
        .as_ref()
        .and_then(Calendar::projected_delivery)
    {
        state.projected = Some(delivered);
    }
}

/// `MilestonesChanged` for `changes`, keyed by the calendar's version so
/// announcing the same version again keeps its event id.
pub fn announce(
    state: &SagaState,
    changes: &[Change],
    week: &WorkWeek,
    cause: &Cause,
) -> Option<Outgoing> {
    let calendar = state.facts.calendar.as_ref()?;
    if changes.is_empty() {
        return None;
    }
    let changed = v1::MilestonesChanged {
        order_id: state.order_id.clone(),
        version: calendar.version(),
        milestones: milestones(calendar, week),
        changed: changes
            .iter()
            .map(|change| change.key.to_string())
            .collect(),
        projected_delivery_date: calendar
            .projected_delivery()
            .map(date_to_string)
            .unwrap_or_default(),
        cause: summary(changes),
        incomplete: calendar.incomplete(),
    };
    let key = format!("calendar:{}", calendar.version());
    Some(Outgoing::fact(
        SERVICE,
        &state.order_id,
        &changed,
        cause,
        &key,
    ))
}

/// Keeps one `MilestonesChanged` in `outgoing`: the last, the calendar at
/// its newest, carrying every key and cause of the ones before it. A run
/// that moved an order's calendar several times (a batch of its events)
/// announces it once; orders keeps the newest version anyway.
pub fn coalesce(outgoing: &mut Vec<Outgoing>) {
    let announced: Vec<usize> = outgoing
        .iter()
        .enumerate()
        .filter(|(_, out)| out.envelope.r#type == v1::MilestonesChanged::TYPE_NAME)
        .map(|(position, _)| position)
        .collect();
    let Some((&last, earlier)) = announced.split_last() else {
        return;
    };
    if earlier.is_empty() {
        return;
    }
    let decode = |position: usize| {
        v1::MilestonesChanged::decode(outgoing[position].envelope.payload.as_slice()).ok()
    };
    let Some(mut merged) = decode(last) else {
        return;
    };
    let mut changed: Vec<String> = Vec::new();
    let mut causes: Vec<String> = Vec::new();
    for position in announced.iter().copied() {
        let Some(one) = decode(position) else {
            continue;
        };
        for key in one.changed {
            if !changed.contains(&key) {
                changed.push(key);
            }
        }
        if !one.cause.is_empty() && !causes.contains(&one.cause) {
            causes.push(one.cause);
        }
    }
    merged.changed = changed;
    merged.cause = causes.join("; ");
    outgoing[last].envelope.payload = merged.encode_to_vec();
    for position in earlier.iter().rev() {
        outgoing.remove(*position);
    }
}

/// Every milestone on the wire, in the graph's order.
pub fn milestones(calendar: &Calendar, week: &WorkWeek) -> Vec<v1::Milestone> {
    let text = |on: Option<NaiveDate>| on.map(date_to_string).unwrap_or_default();
    calendar
        .milestones(week)
        .into_iter()
        .map(|view| v1::Milestone {
            key: view.key.to_string(),
            kind: kind_to_proto(view.key.kind) as i32,
            subject: view.key.subject.clone(),
            label: label(view.key),
            planned: text(view.planned),
            projected: text(view.projected),
            actual: text(view.actual),
            variance_days: 0,
            status: v1::MilestoneStatus::Unspecified as i32,
            depends_on: view.after.iter().map(|key| key.to_string()).collect(),
            moved_by: view.moved_by.unwrap_or_default().to_owned(),
        })
        .collect()
}

/// What moved, in words: the cause first, then the first few milestones
/// with their old and new dates.
fn summary(changes: &[Change]) -> String {
    const LISTED: usize = 4;
    let text = |on: Option<NaiveDate>| on.map_or("–".to_owned(), date_to_string);
    let source = changes
        .iter()
        .map(|change| change.source.as_str())
        .find(|source| !source.is_empty() && *source != "today" && *source != "actual")
        .unwrap_or("the calendar");
    let listed: Vec<String> = changes
        .iter()
        .take(LISTED)
        .map(|change| {
            format!(
                "{} {} → {}",
                change.key,
                text(change.before),
                text(change.after)
            )
        })
        .collect();
    let more = changes.len().saturating_sub(LISTED);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!("{source}: {}{tail}", listed.join(", "))
}

fn kind_to_proto(kind: Kind) -> v1::MilestoneKind {
    match kind {
        Kind::Confirmed => v1::MilestoneKind::Confirmed,
        Kind::MaterialsIn => v1::MilestoneKind::MaterialsIn,
        Kind::ProductionStart => v1::MilestoneKind::ProductionStart,
        Kind::StageDone => v1::MilestoneKind::StageDone,
        Kind::InProcessInspection => v1::MilestoneKind::InProcessInspection,
        Kind::FinalInspection => v1::MilestoneKind::FinalInspection,
        Kind::PackingDone => v1::MilestoneKind::PackingDone,
        Kind::DocumentsReady => v1::MilestoneKind::DocumentsReady,
        Kind::ExFactory => v1::MilestoneKind::ExFactory,
        Kind::Delivered => v1::MilestoneKind::Delivered,
        Kind::Accepted => v1::MilestoneKind::Accepted,
        Kind::PaymentDue => v1::MilestoneKind::PaymentDue,
    }
}

/// A milestone in a merchandiser's words: "sewing of shirt-oxford done".
fn label(key: &Key) -> String {
    let (product, stage) = key.subject.split_once('/').unwrap_or(("", &key.subject));
    match key.kind {
        Kind::Confirmed => "order confirmed".to_owned(),
        Kind::MaterialsIn => "materials in".to_owned(),
        Kind::ProductionStart => "production starts".to_owned(),
        Kind::StageDone if (product, stage) == WHOLE_ORDER => "production done".to_owned(),
        Kind::StageDone => format!("{stage} of {product} done"),
        Kind::InProcessInspection => format!("{stage} of {product} inspected"),
        Kind::FinalInspection => "final inspection passed".to_owned(),
        Kind::PackingDone => "packed".to_owned(),
        Kind::DocumentsReady => "export documents ready".to_owned(),
        Kind::ExFactory => "ex-factory".to_owned(),
        Kind::Delivered => "delivered".to_owned(),
        Kind::Accepted => "accepted".to_owned(),
        Kind::PaymentDue => format!("{} due", key.subject),
    }
}
