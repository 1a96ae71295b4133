//! The delivery outlook: whenever the projected date moves or the risk
//! flag flips, the saga says so (`DeliveryRiskChanged`), with the open
//! causes in a customer's words, and keeps the delivery-risk exception.

use chrono::{DateTime, Utc};
use gendan_messaging::{Cause, Outgoing};
use gendan_proto::date_to_string;
use gendan_proto::v1::{self, Department, ExceptionKind};

use super::{Engine, log};
use crate::SERVICE;
use crate::exceptions;
use crate::state::SagaState;

impl Engine {
    /// Announces the delivery outlook whenever the projected date moved or
    /// the risk flag flips: the order is at risk when the projection passes
    /// the promise (or the requested date before a promise exists).
    pub(super) fn check_risk(
        &self,
        saga: &mut SagaState,
        projected_before: Option<chrono::NaiveDate>,
        cause: &Cause,
        now: DateTime<Utc>,
    ) {
        // The order was delivered: a claim's redelivery has its own dates,
        // and the customer is not told the order is late again.
        if saga.facts.redelivery.is_some() {
            return;
        }
        let committed = saga.promised.unwrap_or(saga.requested);
        let late = saga
            .projected
            .is_some_and(|projected| projected > committed);
        let flipped = late != saga.at_risk;
        if !flipped && saga.projected == projected_before {
            return;
        }
        saga.at_risk = late;
        exceptions::track_projection(saga);
        let projected = saga.projected.map(date_to_string).unwrap_or_default();
        let why = exceptions::why_dates_moved(saga);
        let reason = if late {
            format!(
                "projected {projected} is after the committed {}{why}",
                date_to_string(committed)
            )
        } else {
            format!(
                "projected {projected} is within the committed {}{why}",
                date_to_string(committed)
            )
        };
        if flipped && late {
            exceptions::open(
                saga,
                ExceptionKind::DeliveryRisk,
                Department::Orders,
                "",
                reason.clone(),
                now,
                cause,
            );
        } else if flipped {
            exceptions::close_kind(saga, ExceptionKind::DeliveryRisk, "back on track", now);
        }
        let changed = v1::DeliveryRiskChanged {
            order_id: saga.order_id.clone(),
            at_risk: late,
            promised_delivery_date: date_to_string(committed),
            projected_delivery_date: projected,
            reason: reason.clone(),
            risk_changed: flipped,
        };
        saga.outgoing
            .push(Outgoing::event(SERVICE, &saga.order_id, &changed, cause));
        if flipped {
            let action = if late { "at_risk" } else { "on_track" };
            log(saga, now, "-", action, reason);
        }
    }
}
