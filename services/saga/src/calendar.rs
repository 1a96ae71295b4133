//! The order's time-and-action calendar: a milestone per thing the
//! merchandiser follows, each with a planned, a projected and an actual
//! date, and the rule that re-projects the later milestones when an earlier
//! one slips. Pure: no I/O and no clock; the saga feeds it what the events
//! say ([`Inputs`], [`Estimate`]s, actuals) and today's date.
//!
//! The milestones and what each waits for ([`graph`]; wd = working days of
//! the [`WorkWeek`], cd = calendar days):
//!
//! | milestone | after (lag) |
//! | --- | --- |
//! | `confirmed` | — |
//! | `materials_in` | — |
//! | `payment_due:<label>`, due on confirmation | `confirmed` (cd due days) |
//! | `production_start` | `materials_in` (wd 0); each payment that gates production (wd 0) |
//! | `stage_done:<product>/<stage>`, first stage | `production_start` (wd from the plan's start to the stage's end) |
//! | `stage_done:<product>/<stage>`, later stages | the product's previous stage (wd between the two planned ends) |
//! | `in_process_inspection:<product>/<stage>` | that stage (wd 0) |
//! | `final_inspection` | every product's last stage and every in-process inspection (wd inspection) |
//! | `packing_done` | `final_inspection` (wd packing) |
//! | `documents_ready`, export orders | `packing_done` (wd documents) |
//! | `ex_factory` | `packing_done`, `documents_ready` (the lane's next departure; 0 without a lane) |
//! | `delivered` | `ex_factory` (cd transit) |
//! | `accepted` | `delivered` (cd acceptance) |
//! | `payment_due:<label>`, due on shipment or delivery | `ex_factory` / `delivered` (cd due days) |
//!
//! **The rule** ([`Calendar::reproject`], one pass in the graph's order): a
//! milestone with an actual date is projected on it (never before what it
//! waits for, payments apart: see `effective_actual`). Any other is projected
//! on the latest of its owner's estimate (a supplier's ETA, production's
//! projected stage end, the carrier's ETA), each dependency's projection
//! plus its lag, and today. So an owner can bring its milestone forward
//! but never before what it depends on; a slip pushes everything after it
//! and nothing before it; and an open milestone is never in the past, so a
//! wait that runs late slips its successors day by day.
//!
//! The stage lags come from the production plan in force, so a material
//! slip moves every stage by the same working days, and a re-plan (a
//! machine down) moves exactly the stages it hit through their estimates.
//!
//! The planned date of a milestone is its first projection once the order
//! is confirmed ([`Calendar::baseline`]); milestones that appear later (the
//! payments once terms are known, the stages of a remake) take theirs when
//! they appear. An amended order confirmed again is planned afresh
//! ([`Calendar::rebaseline`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

mod key;
mod settings;
mod week;

pub use key::{Key, Kind};
pub use settings::CalendarSettings;
pub use week::{Lag, WorkWeek, departure};

#[cfg(test)]
mod tests;

/// A dependency: the milestone comes `lag` after `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: Key,
    pub lag: Lag,
}

/// A milestone and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub key: Key,
    pub after: Vec<Edge>,
}

/// How long the order's own steps take, in working days (acceptance in
/// calendar days: the customer's time, not the factory's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durations {
    pub inspection: u32,
    pub packing: u32,
    pub documents: u32,
    pub acceptance_days: u32,
}

impl Default for Durations {
    fn default() -> Durations {
        Durations {
            inspection: 1,
            packing: 1,
            documents: 2,
            acceptance_days: 7,
        }
    }
}

/// One routing stage of the production plan in force, in routing order
/// per product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePlan {
    pub product: String,
    pub stage: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// The lane the goods travel: departures on an ISO weekday after a
/// cut-off, and the transit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    pub weekday: u32,
    pub cutoff_days: u32,
    pub transit_days: u32,
}

/// What starts a payment's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Confirmed,
    Shipped,
    Delivered,
}

/// One installment of the payment terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub label: String,
    pub trigger: Trigger,
    pub due_days: u32,
    /// Production waits for it (a deposit the terms require first).
    pub gates_production: bool,
}

/// What the milestones of one order are built from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Inputs {
    pub export: bool,
    pub stages: Vec<StagePlan>,
    /// The stages inspected in process, as (product, stage).
    pub in_process: Vec<(String, String)>,
    pub lane: Option<Lane>,
    pub payments: Vec<Payment>,
    pub durations: Durations,
}

/// An owner's date for a milestone, and who gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    pub on: NaiveDate,
    pub source: String,
}

/// One milestone's projection moved (or appeared, or went).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: Key,
    pub before: Option<NaiveDate>,
    pub after: Option<NaiveDate>,
    /// What moved it: the estimate, actual or dependency that decided it.
    pub source: String,
}

/// One milestone as the merchandiser reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View<'a> {
    pub key: &'a Key,
    pub after: Vec<&'a Key>,
    pub planned: Option<NaiveDate>,
    pub projected: Option<NaiveDate>,
    pub actual: Option<NaiveDate>,
    /// What decided the projection.
    pub moved_by: Option<&'a str>,
}

/// The milestones of `inputs`, each after the ones it depends on; stage
/// lags are counted in `week`'s working days.
pub fn graph(inputs: &Inputs, week: &WorkWeek) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut add = |key: Key, after: Vec<Edge>| nodes.push(Node { key, after });
    let edge = |from: Key, lag: Lag| Edge { from, lag };
    let durations = inputs.durations;

    add(Key::of(Kind::Confirmed), Vec::new());
    add(Key::of(Kind::MaterialsIn), Vec::new());
    for payment in inputs.payments.iter() {
        if payment.trigger == Trigger::Confirmed {
            let lag = Lag::Calendar(payment.due_days);
            add(
                Key::payment(&payment.label),
                vec![edge(Key::of(Kind::Confirmed), lag)],
            );
        }
    }
    let mut start_after = vec![edge(Key::of(Kind::MaterialsIn), Lag::Working(0))];
    start_after.extend(
        inputs
            .payments
            .iter()
            .filter(|payment| payment.gates_production && payment.trigger == Trigger::Confirmed)
            .map(|payment| edge(Key::payment(&payment.label), Lag::Working(0))),
    );
    add(Key::of(Kind::ProductionStart), start_after);

    // The plan's working days decide the stage lags; the plan's start is
    // its earliest stage start, so a product queued behind another keeps
    // its wait.
    let plan_start = inputs.stages.iter().map(|stage| stage.start).min();
    let mut before_inspection = Vec::new();
    let mut previous: Option<&StagePlan> = None;
    for (index, stage) in inputs.stages.iter().enumerate() {
        let key = Key::stage(&stage.product, &stage.stage);
        let after = match previous.filter(|prior| prior.product == stage.product) {
            Some(prior) => edge(
                Key::stage(&prior.product, &prior.stage),
                Lag::Working(week.working_between(prior.end, stage.end)),
            ),
            None => edge(
                Key::of(Kind::ProductionStart),
                Lag::Working(week.working_between(plan_start.unwrap_or(stage.start), stage.end)),
            ),
        };
        add(key.clone(), vec![after]);
        let last_of_product = inputs
            .stages
            .get(index + 1)
            .is_none_or(|next| next.product != stage.product);
        if last_of_product {
            before_inspection.push(edge(key, Lag::Working(durations.inspection)));
        }
        previous = Some(stage);
    }
    for (product, stage) in inputs.in_process.iter() {
        let stage_key = Key::stage(product, stage);
        if !inputs
            .stages
            .iter()
            .any(|planned| &planned.product == product && &planned.stage == stage)
        {
            continue;
        }
        let key = Key::in_process(product, stage);
        add(key.clone(), vec![edge(stage_key, Lag::Working(0))]);
        before_inspection.push(edge(key, Lag::Working(durations.inspection)));
    }
    if inputs.stages.is_empty() {
        before_inspection.push(edge(
            Key::of(Kind::ProductionStart),
            Lag::Working(durations.inspection),
        ));
    }
    add(Key::of(Kind::FinalInspection), before_inspection);
    add(
        Key::of(Kind::PackingDone),
        vec![edge(
            Key::of(Kind::FinalInspection),
            Lag::Working(durations.packing),
        )],
    );
    let departure = match inputs.lane {
        Some(lane) => Lag::Departure {
            weekday: lane.weekday,
            cutoff_days: lane.cutoff_days,
        },
        None => Lag::Calendar(0),
    };
    let mut ship_after = vec![edge(Key::of(Kind::PackingDone), departure)];
    if inputs.export {
        add(
            Key::of(Kind::DocumentsReady),
            vec![edge(
                Key::of(Kind::PackingDone),
                Lag::Working(durations.documents),
            )],
        );
        ship_after.push(edge(Key::of(Kind::DocumentsReady), departure));
    }
    add(Key::of(Kind::ExFactory), ship_after);
    let transit = inputs.lane.map_or(0, |lane| lane.transit_days);
    add(
        Key::of(Kind::Delivered),
        vec![edge(Key::of(Kind::ExFactory), Lag::Calendar(transit))],
    );
    add(
        Key::of(Kind::Accepted),
        vec![edge(
            Key::of(Kind::Delivered),
            Lag::Calendar(durations.acceptance_days),
        )],
    );
    for payment in inputs.payments.iter() {
        let from = match payment.trigger {
            Trigger::Confirmed => continue,
            Trigger::Shipped => Kind::ExFactory,
            Trigger::Delivered => Kind::Delivered,
        };
        add(
            Key::payment(&payment.label),
            vec![edge(Key::of(from), Lag::Calendar(payment.due_days))],
        );
    }
    nodes
}

/// One order's calendar.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Calendar {
    inputs: Inputs,
    estimates: BTreeMap<Key, Estimate>,
    actuals: BTreeMap<Key, NaiveDate>,
    planned: BTreeMap<Key, NaiveDate>,
    projected: BTreeMap<Key, NaiveDate>,
    /// What decided each projection.
    moved_by: BTreeMap<Key, String>,
    /// Raised by each re-projection that moved something: orders keeps the
    /// latest snapshot only.
    version: u64,
}

impl Calendar {
    /// A calendar of `inputs`, projected, not yet planned.
    pub fn new(inputs: Inputs, week: &WorkWeek, today: NaiveDate) -> Calendar {
        let mut calendar = Calendar::of(inputs);
        calendar.reproject(week, today);
        calendar
    }

    /// A calendar of `inputs`, not projected yet: its first re-projection
    /// reports every milestone as moved.
    pub fn of(inputs: Inputs) -> Calendar {
        Calendar {
            inputs,
            ..Calendar::default()
        }
    }

    /// What the calendar cannot date yet, in words: each missing input
    /// leaves its milestones on their dependencies alone.
    pub fn incomplete(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if self.inputs.stages.is_empty() {
            missing.push("no production plan".to_owned());
        }
        if self.inputs.lane.is_none() {
            missing.push("no lane quoted".to_owned());
        }
        if self.inputs.payments.is_empty() {
            missing.push("no payment terms".to_owned());
        }
        missing
    }

    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Replaces what the milestones are built from (a plan, a re-plan, the
    /// lane, the terms, an amendment). Takes effect at the next
    /// [`reproject`](Calendar::reproject).
    pub fn set_inputs(&mut self, inputs: Inputs) {
        self.inputs = inputs;
    }

    /// An owner's date for `key`; replaces its earlier one.
    pub fn estimate(&mut self, key: Key, estimate: Estimate) {
        self.estimates.insert(key, estimate);
    }

    /// `key` happened `on`; the first report of it counts.
    pub fn record_actual(&mut self, key: Key, on: NaiveDate) {
        self.actuals.entry(key).or_insert(on);
    }

    /// Projects every milestone by the module's rule and returns what
    /// moved; the version goes up when anything did.
    pub fn reproject(&mut self, week: &WorkWeek, today: NaiveDate) -> Vec<Change> {
        let nodes = graph(&self.inputs, week);
        let mut projected: BTreeMap<Key, NaiveDate> = BTreeMap::new();
        let mut moved_by: BTreeMap<Key, String> = BTreeMap::new();
        for node in nodes.iter() {
            let (on, source) = self.project(node, &projected, &moved_by, week, today);
            projected.insert(node.key.clone(), on);
            moved_by.insert(node.key.clone(), source);
        }
        let keys: BTreeSet<&Key> = projected.keys().chain(self.projected.keys()).collect();
        let changes: Vec<Change> = keys
            .into_iter()
            .filter_map(|key| {
                let before = self.projected.get(key).copied();
                let after = projected.get(key).copied();
                (before != after).then(|| Change {
                    key: key.clone(),
                    before,
                    after,
                    source: moved_by.get(key).cloned().unwrap_or_default(),
                })
            })
            .collect();
        self.projected = projected;
        self.moved_by = moved_by;
        if !changes.is_empty() {
            self.version += 1;
        }
        changes
    }

    fn project(
        &self,
        node: &Node,
        projected: &BTreeMap<Key, NaiveDate>,
        moved_by: &BTreeMap<Key, String>,
        week: &WorkWeek,
        today: NaiveDate,
    ) -> (NaiveDate, String) {
        if let Some(actual) = self.actuals.get(&node.key) {
            return (
                self.effective_actual(node, *actual, projected),
                "actual".to_owned(),
            );
        }
        let mut best = (today, "today".to_owned());
        if let Some(estimate) = self.estimates.get(&node.key)
            && estimate.on >= best.0
        {
            best = (estimate.on, estimate.source.clone());
        }
        for edge in node.after.iter() {
            let Some(from) = projected.get(&edge.from) else {
                continue;
            };
            let earliest = edge.lag.after(*from, week);
            if earliest > best.0 {
                let source = moved_by
                    .get(&edge.from)
                    .filter(|source| source.as_str() != "actual" && source.as_str() != "today")
                    .cloned()
                    .unwrap_or_else(|| edge.from.to_string());
                best = (earliest, source);
            }
        }
        best
    }

    /// When `node` happened: its recorded `actual`, but never before what
    /// it waits for happened or is projected to. A system whose clock runs
    /// behind, or a factory simulated in planned days, cannot date a final
    /// inspection before the production it inspects. Money is the
    /// exception: a customer may pay before the goods leave.
    fn effective_actual(
        &self,
        node: &Node,
        actual: NaiveDate,
        projected: &BTreeMap<Key, NaiveDate>,
    ) -> NaiveDate {
        if node.key.kind == Kind::PaymentDue {
            return actual;
        }
        node.after
            .iter()
            .filter_map(|edge| projected.get(&edge.from).copied())
            .fold(actual, NaiveDate::max)
    }

    /// Plans every milestone that has no planned date yet on its
    /// projection: at confirmation, and for milestones that appear later.
    pub fn baseline(&mut self) {
        for (key, on) in self.projected.iter() {
            self.planned.entry(key.clone()).or_insert(*on);
        }
    }

    /// Plans every milestone afresh on its projection: an amended order
    /// confirmed again.
    pub fn rebaseline(&mut self) {
        self.planned = self.projected.clone();
    }

    /// The order's projected delivery date.
    pub fn projected_delivery(&self) -> Option<NaiveDate> {
        self.projected.get(&Key::of(Kind::Delivered)).copied()
    }

    /// When the goods can leave: packed, and documented for export.
    pub fn ready_to_ship(&self) -> Option<NaiveDate> {
        let packed = self.projected.get(&Key::of(Kind::PackingDone)).copied();
        let documented = self
            .projected
            .get(&Key::of(Kind::DocumentsReady))
            .copied()
            .filter(|_| self.inputs.export);
        packed.max(documented)
    }

    /// The latest projection among the milestones of `kind` (the last
    /// stage done, for [`Kind::StageDone`]).
    pub fn latest(&self, kind: Kind) -> Option<NaiveDate> {
        self.projected
            .iter()
            .filter(|(key, _)| key.kind == kind)
            .map(|(_, on)| *on)
            .max()
    }

    pub fn projected(&self, key: &Key) -> Option<NaiveDate> {
        self.projected.get(key).copied()
    }

    pub fn planned(&self, key: &Key) -> Option<NaiveDate> {
        self.planned.get(key).copied()
    }

    pub fn actual(&self, key: &Key) -> Option<NaiveDate> {
        self.actuals.get(key).copied()
    }

    /// Every milestone of the current inputs, in the graph's order.
    pub fn milestones(&self, week: &WorkWeek) -> Vec<View<'_>> {
        let nodes = graph(&self.inputs, week);
        nodes
            .iter()
            .filter_map(|node| {
                // The view borrows keys from the calendar's own maps, which
                // hold every node after a re-projection.
                let (key, projected) = self.projected.get_key_value(&node.key)?;
                let after = node
                    .after
                    .iter()
                    .filter_map(|edge| self.projected.get_key_value(&edge.from).map(|(k, _)| k))
                    .collect();
                Some(View {
                    key,
                    after,
                    planned: self.planned.get(key).copied(),
                    projected: Some(*projected),
                    // Its projection is when it happened (see
                    // `effective_actual`).
                    actual: self.actuals.get(key).map(|_| *projected),
                    moved_by: self.moved_by.get(key).map(String::as_str),
                })
            })
            .collect()
    }
}
