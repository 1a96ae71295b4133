//! An amended order's production. When a customer amends an order
//! (quantities up or down, lines added or removed) the saga checks its
//! capacity again and then plans the next production run with
//! `PlanWorkOrder.amendment` set to the amendment's number. That run does
//! not start over as a remake after scrap does: per product and routing
//! stage it makes what the amended items still need beyond the good units
//! made so far ([`still_needed`]), "made so far" being summed over the
//! order's runs since the latest one planned without an amendment, the
//! first run or the last remake, which made everything anew
//! ([`earlier_runs`], [`made_so_far`]).
//!
//! [`Remaining`] is that arithmetic for one order, pure. A stage with
//! nothing to make books nothing and is stored completed at once; the
//! others are scheduled by the same finite-capacity scheduler as any run
//! ([`schedule::schedule_staged`]), against everyone's bookings but those
//! of the order's own open runs, which the new run supersedes. [`plan`]
//! then cancels those runs ("superseded by amendment N", their remaining
//! bookings released) and stores the new one in the same transaction; a
//! run with nothing at all to make is planned and completed today, and its
//! completion announced with its plan. [`schedule_check`] answers a
//! capacity check of an order that has runs by the same rule, booking
//! nothing, so the review of an amendment sees what its plan will be.

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing};
use gendan_proto::v1::PlanWorkOrder;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::reschedule::StageKey;
use crate::schedule::{self, Item, Schedule, StagedItem};
use crate::work_orders::store::{self, NewWorkOrder};
use crate::work_orders::{KIND_PRODUCTION, STATUS_COMPLETED, WorkOrder};
use crate::{Error, Result, mes, planning, validate};

/// Good units made, per product and routing stage.
pub type Made = HashMap<StageKey, i64>;

/// The order's production runs that a run of `revision` builds on: those
/// of a lower revision, from the latest one planned without an amendment
/// on (all of them when each was planned for one, as for an order amended
/// before its first run). Reworks are not counted: they redo goods a run
/// already counted.
pub fn earlier_runs(work_orders: &[WorkOrder], revision: i32) -> Vec<&WorkOrder> {
    let earlier: Vec<&WorkOrder> = work_orders
        .iter()
        .filter(|wo| wo.kind == KIND_PRODUCTION && wo.revision < revision)
        .collect();
    let from = earlier
        .iter()
        .filter(|wo| wo.amendment == 0)
        .map(|wo| wo.revision)
        .max()
        .unwrap_or(i32::MIN);
    earlier
        .into_iter()
        .filter(|wo| wo.revision >= from)
        .collect()
}

/// The good units of every stage of `runs`, summed per product and stage,
/// whatever became of the run since (a superseded run's goods are made).
pub fn made_so_far(runs: &[&WorkOrder]) -> Made {
    let mut made = Made::new();
    for run in runs {
        for stage in &run.stages {
            *made
                .entry((stage.product.clone(), stage.stage.clone()))
                .or_default() += stage.good_quantity.max(0);
        }
    }
    made
}

/// What each routing stage of `item` still has to make for `item.quantity`
/// good units when `made` were made already: the difference, 0 where the
/// stage made as many or more.
pub fn still_needed(item: &Item, made: &Made) -> StagedItem {
    let amended = i64::from(item.quantity);
    let stages = item
        .stages
        .iter()
        .map(|spec| {
            let key = (item.product.clone(), spec.stage.clone());
            let done = made.get(&key).copied().unwrap_or(0);
            let needed = (amended - done).clamp(0, amended);
            (spec.clone(), u32::try_from(needed).unwrap_or(item.quantity))
        })
        .collect();
    StagedItem {
        product: item.product.clone(),
        stages,
    }
}

/// Whether no stage of `staged` has anything to make.
pub fn nothing_to_make(staged: &[StagedItem]) -> bool {
    staged
        .iter()
        .all(|item| item.stages.iter().all(|(_, quantity)| *quantity == 0))
}

/// The runs a run of `revision` supersedes: the order's earlier production
/// runs still open. Reworks go on: their goods are counted already.
pub fn superseded(work_orders: &[WorkOrder], revision: i32) -> Vec<Uuid> {
    work_orders
        .iter()
        .filter(|wo| wo.kind == KIND_PRODUCTION && wo.revision < revision && wo.is_open())
        .map(|wo| wo.work_order_id)
        .collect()
}

/// What an order's next production run is to make, and the runs it
/// replaces.
#[derive(Debug, Clone, PartialEq)]
pub struct Remaining {
    /// Per product (request order), each routing stage with what it still
    /// owes.
    pub staged: Vec<StagedItem>,
    /// The open runs it supersedes.
    pub superseded: Vec<Uuid>,
}

impl Remaining {
    /// Run `revision` of an order with `work_orders`, for the amended items
    /// `routed` (with their routings, [`planning::with_routings`]).
    pub fn of(work_orders: &[WorkOrder], routed: &[Item], revision: i32) -> Self {
        let made = made_so_far(&earlier_runs(work_orders, revision));
        Remaining {
            staged: routed
                .iter()
                .map(|item| still_needed(item, &made))
                .collect(),
            superseded: superseded(work_orders, revision),
        }
    }

    pub fn nothing_to_make(&self) -> bool {
        nothing_to_make(&self.staged)
    }

    /// The first day the run may be planned on: never a day gone by, and
    /// `today` when there is nothing to make (it waits for no material).
    pub fn start(&self, earliest_start: NaiveDate, today: NaiveDate) -> NaiveDate {
        if self.nothing_to_make() {
            today
        } else {
            earliest_start.max(today)
        }
    }
}

/// Schedules `remaining` from `start` against the capacity booked by
/// everyone but the runs it supersedes, whose bookings from `start` on are
/// given back to the load first. Books nothing.
async fn schedule_remaining(
    conn: &mut PgConnection,
    remaining: &Remaining,
    start: NaiveDate,
) -> Result<Schedule> {
    let centres = planning::work_centres(
        remaining
            .staged
            .iter()
            .flat_map(|item| item.stages.iter().map(|(spec, _)| spec)),
    );
    let (calendars, mut load) = planning::capacity_from(conn, start, &centres).await?;
    let replaced = store::bookings_from(conn, &remaining.superseded, start).await?;
    for (work_centre, day, hours) in replaced {
        load.release(&work_centre, day, hours);
    }
    schedule::schedule_staged(&remaining.staged, &calendars, &mut load, start)
}

/// What a capacity check of `order_id` for `items` from `earliest_start`
/// schedules, booking nothing, with the items' routings. An order without
/// a production run is checked as any order under review. An order that
/// has runs (an amended order reviewed again) is checked for what its next
/// run would make: only what the items still need beyond the good units
/// made, against the load without its own open runs' bookings, which that
/// run would replace. The routings are of the whole items either way, so
/// the caller can cost the order as a whole.
pub async fn schedule_check(
    conn: &mut PgConnection,
    order_id: &str,
    items: &[(String, u32)],
    earliest_start: NaiveDate,
) -> Result<(Schedule, Vec<Item>)> {
    let routed = planning::with_routings(conn, items).await?;
    let existing = store::all_of(conn, order_id, false).await?;
    if !existing.iter().any(|wo| wo.kind == KIND_PRODUCTION) {
        let schedule = planning::schedule_routed(conn, &routed, earliest_start).await?;
        return Ok((schedule, routed));
    }
    // The run after every one planned so far.
    let remaining = Remaining::of(&existing, &routed, i32::MAX);
    let start = remaining.start(earliest_start, Utc::now().date_naive());
    let schedule = schedule_remaining(conn, &remaining, start).await?;
    Ok((schedule, routed))
}

/// Plans production run `revision` of `order_id` for amendment `amendment`
/// (≥ 1) of the order, given its work orders `existing` (locked by the
/// caller, which holds the capacity lock): schedules what the amended items
/// still need, then cancels the open runs it supersedes, releasing their
/// bookings from today on, and stores it with its bookings. Returns the
/// stored run and, when it had nothing to make and was completed at once,
/// its `WorkOrderCompleted`: the good units the amended order needs, no
/// scrap, no hours, completed today.
///
/// Everything that can make the plan impossible (items, routings,
/// capacity) is checked before anything is written, so a rejection, which
/// the caller answers as `WorkOrderPlanningFailed`, leaves the runs it
/// would have superseded as they were.
pub async fn plan(
    conn: &mut PgConnection,
    message: &Incoming,
    command: &PlanWorkOrder,
    order_id: &str,
    revision: i32,
    amendment: i32,
    existing: &[WorkOrder],
) -> Result<(WorkOrder, Option<Outgoing>), HandlerError> {
    debug_assert!(amendment >= 1, "a run without an amendment is planned anew");
    let items = validate::items(&command.items, "items").map_err(Error::from)?;
    let today = Utc::now().date_naive();
    let earliest_start =
        validate::date_or(&command.earliest_start, "earliest_start", today).map_err(Error::from)?;
    let routed = planning::with_routings(conn, &items).await?;
    let remaining = Remaining::of(existing, &routed, revision);
    let start = remaining.start(earliest_start, today);
    let schedule = schedule_remaining(conn, &remaining, start).await?;

    let reason = format!("superseded by amendment {amendment}");
    let released_hours = store::cancel(conn, &remaining.superseded, today, &reason).await?;
    let new = NewWorkOrder {
        order_id,
        kind: KIND_PRODUCTION,
        revision,
        amendment,
        nonconformance_id: None,
        rework_reason: None,
        traceparent: message.traceparent.as_deref(),
        hold_until: None,
    };
    let mut created = store::insert(conn, &new, &schedule).await?;
    tracing::info!(
        work_order_id = %created.work_order_id,
        revision,
        amendment,
        superseded = remaining.superseded.len(),
        released_hours,
        planned_end = %created.planned_end,
        "work order planned for an amended order"
    );
    if !created.all_stages_completed() {
        return Ok((created, None));
    }

    // Everything the amended order needs was made: the run is done as it
    // is planned, and says so the way the MES's last stage would. Its
    // stages made nothing, so the figures are stored with it: announced
    // again, its completion says the same.
    let needed: u64 = items.iter().map(|(_, quantity)| u64::from(*quantity)).sum();
    let good = u32::try_from(needed).unwrap_or(u32::MAX);
    store::complete(conn, created.work_order_id, today, (good, 0)).await?;
    created.status = STATUS_COMPLETED.to_owned();
    created.completed_on = Some(today);
    tracing::info!(work_order_id = %created.work_order_id, good, "nothing left to make, work order completed");
    let completed = mes::completion(&created, today, (good, 0), &Cause::from_incoming(message));
    Ok((created, Some(completed)))
}

#[cfg(test)]
mod tests {
    use chrono::Days;

    use super::*;
    use crate::schedule::{Calendar, Load, StageSpec};
    use crate::work_orders::{
        KIND_REWORK, STAGE_PLANNED, STATUS_CANCELLED, STATUS_IN_PROGRESS, STATUS_PLANNED, Stage,
    };

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn key(product: &str, stage: &str) -> StageKey {
        (product.to_owned(), stage.to_owned())
    }

    fn spec(stage: &str, work_centre: &str) -> StageSpec {
        StageSpec {
            stage: stage.to_owned(),
            work_centre: work_centre.to_owned(),
            hours_per_unit: 1.0,
            setup_hours: 0.0,
        }
    }

    fn shirts(quantity: u32) -> Item {
        Item {
            product: "shirt".to_owned(),
            quantity,
            stages: vec![spec("cutting", "CUT"), spec("sewing", "SEW")],
        }
    }

    fn stage(name: &str, good: i64) -> Stage {
        Stage {
            product: "shirt".to_owned(),
            stage: name.to_owned(),
            product_seq: 0,
            stage_seq: 0,
            work_centre: "SEW".to_owned(),
            quantity: 100,
            hours_per_unit: 1.0,
            setup_hours: 0.0,
            hours: 100.0,
            planned_start: date("2030-03-04"),
            planned_end: date("2030-03-08"),
            actual_start: None,
            actual_end: None,
            good_quantity: good,
            scrap_quantity: 0,
            status: STAGE_PLANNED.to_owned(),
        }
    }

    /// A shirt run with its cut and sewn good units.
    fn run(revision: i32, amendment: i32, status: &str, (cut, sewn): (i64, i64)) -> WorkOrder {
        WorkOrder {
            work_order_id: Uuid::from_u128(revision as u128),
            order_id: "o-1".to_owned(),
            kind: KIND_PRODUCTION.to_owned(),
            revision,
            amendment,
            status: status.to_owned(),
            planned_start: date("2030-03-04"),
            planned_end: date("2030-03-08"),
            completed_on: None,
            traceparent: None,
            stages: vec![stage("cutting", cut), stage("sewing", sewn)],
        }
    }

    fn rework(good: i64) -> WorkOrder {
        WorkOrder {
            work_order_id: Uuid::from_u128(99),
            kind: KIND_REWORK.to_owned(),
            stages: vec![stage("rework", good)],
            ..run(1, 0, STATUS_IN_PROGRESS, (0, 0))
        }
    }

    fn quantities(item: &StagedItem) -> Vec<(&str, u32)> {
        item.stages
            .iter()
            .map(|(stage_spec, quantity)| (stage_spec.stage.as_str(), *quantity))
            .collect()
    }

    /// Newest first, as the store returns them: revision 1 was made in
    /// full and scrapped, revision 2 remade it and was superseded halfway
    /// by amendment 1 (revision 3), which is running; a rework is open.
    fn history() -> Vec<WorkOrder> {
        vec![
            rework(5),
            run(3, 1, STATUS_IN_PROGRESS, (30, 50)),
            run(2, 0, STATUS_CANCELLED, (60, 0)),
            run(1, 0, STATUS_COMPLETED, (100, 100)),
        ]
    }

    #[test]
    fn made_so_far_counts_the_runs_since_the_last_one_made_anew() {
        let all = history();
        let made = made_so_far(&earlier_runs(&all, 4));
        assert_eq!(made.get(&key("shirt", "cutting")), Some(&90));
        assert_eq!(made.get(&key("shirt", "sewing")), Some(&50));
        assert!(!made.contains_key(&key("shirt", "rework")));

        // Planned as revision 3, it built on revision 2 alone.
        let made = made_so_far(&earlier_runs(&all, 3));
        assert_eq!(made.get(&key("shirt", "cutting")), Some(&60));
        assert_eq!(made.get(&key("shirt", "sewing")), Some(&0));

        // Amended before its first run: every run was planned for an
        // amendment, and all of them count.
        let amended_only = vec![
            run(2, 2, STATUS_PLANNED, (10, 0)),
            run(1, 1, STATUS_CANCELLED, (20, 5)),
        ];
        let made = made_so_far(&earlier_runs(&amended_only, 3));
        assert_eq!(made.get(&key("shirt", "cutting")), Some(&30));
        assert!(made_so_far(&earlier_runs(&[], 1)).is_empty());
    }

    #[test]
    fn each_stage_makes_what_it_still_owes() {
        let made = Made::from([(key("shirt", "cutting"), 60)]);
        // Up from 100 to 120 after 60 were cut.
        assert_eq!(
            quantities(&still_needed(&shirts(120), &made)),
            [("cutting", 60), ("sewing", 120)]
        );
        // Down to 50: the cutting is done.
        assert_eq!(
            quantities(&still_needed(&shirts(50), &made)),
            [("cutting", 0), ("sewing", 50)]
        );
        // A product added by the amendment: all of it.
        let totes = Item {
            product: "tote".to_owned(),
            quantity: 5,
            stages: vec![spec("sewing", "SEW")],
        };
        assert_eq!(quantities(&still_needed(&totes, &made)), [("sewing", 5)]);
    }

    #[test]
    fn an_amended_run_supersedes_the_earlier_open_runs_only() {
        let all = history();
        let next = Remaining::of(&all, &[shirts(150)], 4);
        // The running amendment; not the rework, not the finished or
        // cancelled runs.
        assert_eq!(next.superseded, vec![Uuid::from_u128(3)]);
        assert_eq!(
            quantities(&next.staged[0]),
            [("cutting", 60), ("sewing", 100)]
        );
        assert!(!next.nothing_to_make());
        // Work waits for its material, and never plans on a day gone by.
        let today = date("2030-03-06");
        assert_eq!(next.start(date("2030-03-20"), today), date("2030-03-20"));
        assert_eq!(next.start(date("2030-03-01"), today), today);
        // Revision 3 came when only revision 2 was there, cancelled.
        assert!(Remaining::of(&all, &[shirts(150)], 3).superseded.is_empty());
    }

    #[test]
    fn a_run_with_nothing_to_make_is_planned_today_and_books_nothing() {
        // Amended down to 90 after 120 were cut and sewn.
        let all = vec![
            run(2, 1, STATUS_COMPLETED, (60, 120)),
            run(1, 0, STATUS_CANCELLED, (60, 0)),
        ];
        let next = Remaining::of(&all, &[shirts(90)], 3);
        assert!(next.nothing_to_make());
        assert!(next.superseded.is_empty());
        assert_eq!(quantities(&next.staged[0]), [("cutting", 0), ("sewing", 0)]);
        let today = date("2030-03-06");
        let start = next.start(date("2030-04-01"), today);
        assert_eq!(start, today);

        let eight_hours = Calendar {
            hours_per_day: 8.0,
            ..Calendar::default()
        };
        let calendars = HashMap::from([
            ("CUT".to_owned(), eight_hours.clone()),
            ("SEW".to_owned(), eight_hours),
        ]);
        let plan = schedule::schedule_staged(&next.staged, &calendars, &mut Load::default(), start)
            .unwrap();
        assert!(
            plan.stages
                .iter()
                .all(|s| s.quantity == 0 && s.hours == 0.0 && s.bookings.is_empty())
        );
        assert_eq!((plan.start, plan.earliest_completion), (today, today));

        // One unit more than was sewn is work again.
        assert!(!Remaining::of(&all, &[shirts(121)], 3).nothing_to_make());
    }

    /// A small deterministic generator, as in the scheduler's tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below
        }
    }

    /// Over random routings, amended quantities and units made (some stages
    /// made nothing yet): at every stage what the new run makes and what
    /// was made cover the amended quantity, exactly when it fell short and
    /// with nothing to make when it did not; the run has nothing at all to
    /// make exactly when every stage made enough.
    #[test]
    fn property_new_and_made_cover_the_amended_quantity() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _case in 0..500 {
            let stages = (0..1 + rng.next(5))
                .map(|s| spec(&format!("s{s}"), "SEW"))
                .collect();
            let item = Item {
                product: "p".to_owned(),
                quantity: 1 + rng.next(300) as u32,
                stages,
            };
            let mut made = Made::new();
            for stage_spec in &item.stages {
                if rng.next(4) > 0 {
                    made.insert(key("p", &stage_spec.stage), rng.next(400) as i64);
                }
            }
            let staged = still_needed(&item, &made);
            assert_eq!(staged.product, item.product);
            assert_eq!(staged.stages.len(), item.stages.len());
            let amended = i64::from(item.quantity);
            for (stage_spec, new) in &staged.stages {
                let done = made.get(&key("p", &stage_spec.stage)).copied().unwrap_or(0);
                let new = i64::from(*new);
                assert!(new + done >= amended, "{new} + {done} < {amended}");
                assert!((0..=amended).contains(&new));
                if done >= amended {
                    assert_eq!(new, 0);
                } else {
                    assert_eq!(new + done, amended);
                }
            }
            let all_made = item.stages.iter().all(|stage_spec| {
                made.get(&key("p", &stage_spec.stage))
                    .is_some_and(|done| *done >= amended)
            });
            assert_eq!(nothing_to_make(std::slice::from_ref(&staged)), all_made);
        }
    }

    #[test]
    fn a_later_start_is_never_before_today() {
        let next = Remaining {
            staged: vec![StagedItem::from(&shirts(1))],
            superseded: Vec::new(),
        };
        let today = date("2030-03-06");
        for offset in 0..10 {
            let asked = date("2030-03-01") + Days::new(offset);
            assert!(next.start(asked, today) >= today);
            assert!(next.start(asked, today) >= asked);
        }
    }
}
