//! An amended order (`OrderAmended`): the saga reviews the change again and
//! every department adjusts what it already did.
//!
//! The amended order replaces the saga's copy; the review steps run again
//! (materials, capacity, a clarification when the date cannot be met, the
//! cost estimate and the margin question when it is too thin, the
//! confirmation with the new promise). A margin question answered
//! `re_quote` waits for exactly this: the amended price is estimated again,
//! and the new estimate asks again or lets the order through. What else
//! runs again depends on what changed: a change of the goods (products,
//! specs, quantities) runs every adjusting step that has already run
//! ([`AMEND_ADJUST`]: the receivable, the work order, the purchase orders,
//! the inspection, the packing list, the documents), a change of prices
//! alone the receivable and the documents ([`AMEND_PRICES`]), a date alone
//! nothing more. Each runs with
//! its next revision, marked as this amendment's, so the department adjusts
//! its work instead of starting over. Steps that have not run yet simply
//! start with the amended order when their turn comes. The amendment is an
//! exception on the register until the order is confirmed again; open
//! questions of the reopened steps are withdrawn, and a step parked for an
//! operator that runs again no longer holds the order. Once the goods have
//! shipped an amendment changes nothing (orders refuses it by then; one
//! that raced the shipment is an open exception for an operator).

use chrono::{DateTime, Utc};
use gendan_messaging::{Cause, HandlerError, Incoming};
use gendan_proto::v1::{self, Department, ExceptionKind, Phase};

use super::{Engine, decisions, is_live, log};
use crate::exceptions;
use crate::state::{SagaState, Status, StepStatus};
use crate::workflow::reruns::{AMEND_ADJUST, AMEND_PRICES, AMEND_REVIEW};

/// The step whose completion settles the amendment: the order confirmed
/// again with its new promise.
const SETTLED_BY: &str = "confirm_order";

impl Engine {
    pub(super) fn amend(
        &self,
        saga: &mut SagaState,
        incoming: &Incoming,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        let amended: v1::OrderAmended = incoming.payload()?;
        let (Some(order), Some(amendment)) = (amended.order, amended.amendment) else {
            return Err(HandlerError::Rejected(
                "OrderAmended without the order or the amendment".into(),
            ));
        };
        if !is_live(saga) || amendment.number <= saga.facts.amendments {
            // Finished sagas change no more; an amendment already applied
            // (or an older one arriving late) is history.
            return Ok(());
        }
        let requested =
            gendan_proto::date_from_str(&order.requested_delivery_date).ok_or_else(|| {
                HandlerError::Rejected(format!(
                    "amended order {} has requested_delivery_date {:?}, not YYYY-MM-DD",
                    order.order_id, order.requested_delivery_date
                ))
            })?;
        let number = amendment.number;
        let cause = Cause::from_incoming(incoming);
        if super::goods_left(saga) {
            // Orders accepted it while its copy of the phase lagged behind
            // the goods: an operator must sort it out with the customer.
            let text = format!(
                "amendment {number} ({}) arrived after the goods left; not applied: the order \
                 shipped as confirmed before it",
                amendment.reason
            );
            exceptions::open(
                saga,
                ExceptionKind::Amendment,
                Department::Orders,
                "-",
                text.clone(),
                now,
                &cause,
            );
            log(saga, now, "-", "amendment_refused", text);
            return Ok(());
        }
        let projected_before = saga.projected;

        // The date the amended order is reviewed against: the new one the
        // customer asked for, or else the promise it already has (or, while
        // an earlier amendment is still under review, the date it was
        // reviewed against).
        let date_changed = amendment.requested_date_after != amendment.requested_date_before;
        saga.requested = if date_changed {
            requested
        } else {
            saga.promised.unwrap_or(saga.requested)
        };
        saga.promised = None;
        let goods_changed = goods_changed(&saga.order.lines, &order.lines);
        let prices_changed = saga.order.total_minor != order.total_minor
            || prices(&saga.order.lines) != prices(&order.lines);
        // Material already received is in the goods being made once
        // production has begun: an amendment then gives none of it back.
        if (saga.phase as i32) >= (Phase::Production as i32) {
            saga.facts.materials_in_use = true;
        }
        saga.order = order;
        saga.order_changed = true;
        saga.facts.amendments = number;

        // What the change touches: the review and the confirmation always
        // (the date); the goods (products, specs, quantities) every
        // department's work; prices only the money and the papers.
        let mut steps: Vec<&'static str> = AMEND_REVIEW.to_vec();
        let adjust: &[&'static str] = if goods_changed {
            AMEND_ADJUST
        } else if prices_changed {
            AMEND_PRICES
        } else {
            &[]
        };
        for &name in adjust {
            let runs = saga.step(name).runs;
            // A step the review runs again anyway (a new price's estimate)
            // runs once.
            if runs > 0 && !steps.contains(&name) {
                steps.push(name);
                let next = u32::try_from(runs).unwrap_or(0) + 1;
                saga.facts
                    .amended_runs
                    .insert(name.to_owned(), (next, number));
            }
        }
        let comment = format!("superseded by amendment {number}");
        let parked: Vec<&'static str> = steps
            .iter()
            .copied()
            .filter(|step| saga.step(step).status == StepStatus::Stalled)
            .collect();
        for &step in &steps {
            // A question about something the amendment leaves standing (a
            // late purchase order) stays asked: its news is announced once.
            let about_a_subject = saga
                .decisions
                .iter()
                .any(|d| d.is_open() && d.step == step && d.subject.is_some());
            if about_a_subject {
                continue;
            }
            decisions::withdraw(saga, Some(step), "superseded", "system", &comment, now);
            exceptions::close_for_step(saga, step, &comment, now);
        }
        let what = if amendment.changes.is_empty() {
            "changes".to_owned()
        } else {
            amendment.changes.join("; ")
        };
        let text = format!("amendment {number} ({}): {what}", amendment.reason);
        exceptions::open(
            saga,
            ExceptionKind::Amendment,
            Department::Orders,
            SETTLED_BY,
            text.clone(),
            now,
            &cause,
        );
        self.reopen(saga, &steps, true, now);
        // A step parked for an operator that the amendment runs again no
        // longer holds the order.
        for step in parked {
            if saga.status == Status::Stalled {
                let by = amendment.requested_by.clone();
                self.resume(saga, step, "amended", &by, &comment, now);
            }
        }
        log(saga, now, "-", "amended", text);
        self.check_risk(saga, projected_before, &cause, now);
        self.advance(saga, &cause, now);
        Ok(())
    }
}

/// Whether the goods changed: products, specs or quantities (not prices).
fn goods_changed(before: &[v1::OrderLine], after: &[v1::OrderLine]) -> bool {
    let goods = |lines: &[v1::OrderLine]| {
        let mut goods: Vec<(String, String, u32)> = lines
            .iter()
            .map(|line| (line.product.clone(), line.spec.clone(), line.quantity))
            .collect();
        goods.sort();
        goods
    };
    goods(before) != goods(after)
}

/// Unit prices by product, in a comparable order.
fn prices(lines: &[v1::OrderLine]) -> Vec<(String, i64)> {
    let mut prices: Vec<(String, i64)> = lines
        .iter()
        .map(|line| (line.product.clone(), line.unit_price_minor))
        .collect();
    prices.sort();
    prices
}
