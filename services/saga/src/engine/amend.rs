//! An amended order (`OrderAmended`): the saga reviews the change again and
//! every department adjusts what it already did.
//!
//! The amended order replaces the saga's copy; the review steps run again
//! (materials, capacity, a clarification when the date cannot be met, the
//! confirmation with the new promise), and every adjusting step that has
//! already run ([`AMEND_ADJUST`]: the receivable, the work order, the
//! purchase orders, the inspection, the packing list, the documents) runs
//! again with its next revision, marked as this amendment's, so the
//! department adjusts its work instead of starting over. Steps that have
//! not run yet simply start with the amended order when their turn comes.
//! The amendment is an exception on the register until the order is
//! confirmed again; open questions of the reopened steps are withdrawn.
//! Once the goods have shipped an amendment changes nothing (orders refuses
//! it by then; one that raced the shipment is logged).

use chrono::{DateTime, Utc};
use gendan_messaging::{Cause, HandlerError, Incoming};
use gendan_proto::v1::{self, Department, ExceptionKind, Phase};

use super::{Engine, decisions, is_live, log};
use crate::exceptions;
use crate::state::{SagaState, Status, StepStatus};
use crate::workflow::standard::{AMEND_ADJUST, AMEND_REVIEW};

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
        if (saga.phase as i32) >= (Phase::Shipping as i32) {
            let detail = format!("amendment {number} arrived after the goods left; not applied");
            log(saga, now, "-", "amendment_refused", detail);
            return Ok(());
        }
        let cause = Cause::from_incoming(incoming);
        let projected_before = saga.projected;

        // The date the amended order is reviewed against: the new one the
        // customer asked for, or else the promise it already has.
        let date_changed = amendment.requested_date_after != amendment.requested_date_before;
        saga.requested = if date_changed {
            requested
        } else {
            saga.promised.unwrap_or(requested)
        };
        saga.promised = None;
        saga.order = order;
        saga.order_changed = true;
        saga.facts.amendments = number;

        let mut steps: Vec<&'static str> = AMEND_REVIEW.to_vec();
        for &name in AMEND_ADJUST {
            let runs = saga.step(name).runs;
            if runs > 0 {
                steps.push(name);
                let next = u32::try_from(runs).unwrap_or(0) + 1;
                saga.facts
                    .amended_runs
                    .insert(name.to_owned(), (next, number));
            }
        }
        let comment = format!("superseded by amendment {number}");
        for &step in &steps {
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
        let still_stalled = saga
            .steps
            .iter()
            .find(|(_, state)| state.status == StepStatus::Stalled)
            .map(|(name, state)| {
                format!("{name}: {}", state.last_error.clone().unwrap_or_default())
            });
        if saga.status == Status::Stalled && still_stalled.is_none() {
            saga.status = Status::Running;
            saga.stalled_reason = None;
        }
        log(saga, now, "-", "amended", text);
        self.check_risk(saga, projected_before, &cause, now);
        self.advance(saga, &cause, now);
        Ok(())
    }
}
