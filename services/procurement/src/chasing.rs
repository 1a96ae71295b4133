//! Chasing late suppliers: a worker that finds purchase orders the supplier
//! has not confirmed by their confirm-by date, or not delivered by their
//! expected date, and announces `PurchaseOrderLate` to every order waiting
//! on them, so the saga can ask a person to re-source or accept the delay
//! (see [`delays`](crate::delays)).
//!
//! - [`lateness`] decides what is late: pure, tested below. A cancelled or
//!   received PO is never late, nor one whose goods are all at the dock
//!   (even if still awaiting inspection: the supplier delivered; a rejected
//!   lot is re-ordered by [`inspections`](crate::inspections)). A PO an
//!   amended order cancelled is never chased, and one it reduced is chased
//!   for its reduced quantity: the amendment lowers the PO's own quantity
//!   ([`holdings`](crate::holdings)), which is what is read here.
//! - [`ChaseWorker`] runs it over the stored POs. Each chase is a row
//!   (`purchase_order_chases`) written with its events in one transaction
//!   per batch, so a chase is announced once, survives restarts, and
//!   replicas share the work (`SKIP LOCKED`). The missed date is part of the
//!   key: when a PO's expected date moves (a confirmed later ETA, an
//!   accepted delay) the new date is chased again once it passes.
//! - "Today" is the [`Calendar`]'s, so tests move a manual clock instead of
//!   waiting days.

use std::time::Duration;

use chrono::NaiveDate;
use gendan_messaging::{Cause, Outgoing, outbox};
use gendan_proto::date_to_string;
use gendan_proto::v1::PurchaseOrderLate;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::clock::Calendar;
use crate::netting::{self, Milli};
use crate::{Result, SERVICE, catalog, delays};

/// How a purchase order is late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lateness {
    /// Not confirmed by the supplier by its confirm-by date.
    Unconfirmed,
    /// Not (fully) delivered by its expected date.
    NotReceived,
}

impl Lateness {
    /// The word on the wire (`PurchaseOrderLate.lateness`) and in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Lateness::Unconfirmed => "unconfirmed",
            Lateness::NotReceived => "not_received",
        }
    }
}

/// A purchase order as the chaser sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Watched {
    pub po_id: Uuid,
    pub order_id: String,
    pub supplier: String,
    pub material: String,
    /// "open", "confirmed", "received" or "cancelled".
    pub status: String,
    pub confirm_by: NaiveDate,
    /// The supplier's confirmed ETA, else the lead-time date.
    pub expected: NaiveDate,
    pub quantity_milli: Milli,
    /// Everything the warehouse received against it, inspected or not.
    pub delivered_milli: Milli,
}

/// One missed date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Late {
    pub lateness: Lateness,
    pub due: NaiveDate,
    /// At least 1: a date is missed once its day is over.
    pub days_late: u32,
}

/// What `po` is late for on `today`, unconfirmed first. A date is missed
/// only after its day: goods due today may still arrive today.
pub fn lateness(po: &Watched, today: NaiveDate) -> Vec<Late> {
    let waiting = matches!(po.status.as_str(), "open" | "confirmed");
    if !waiting || po.delivered_milli >= po.quantity_milli {
        return Vec::new();
    }
    let mut late = Vec::new();
    if po.status == "open" && po.confirm_by < today {
        late.push(Late {
            lateness: Lateness::Unconfirmed,
            due: po.confirm_by,
            days_late: days_between(po.confirm_by, today),
        });
    }
    if po.expected < today {
        late.push(Late {
            lateness: Lateness::NotReceived,
            due: po.expected,
            days_late: days_between(po.expected, today),
        });
    }
    late
}

fn days_between(due: NaiveDate, today: NaiveDate) -> u32 {
    u32::try_from(today.signed_duration_since(due).num_days()).unwrap_or(u32::MAX)
}

/// Open POs with a missed date not yet chased: the same rule as
/// [`lateness`] (which has the last word), so a batch is never filled with
/// POs that turn out not to be late and the rest starved behind them.
const DUE_SQL: &str = "\
SELECT p.po_id, p.order_id, p.supplier, p.material, p.status, p.confirm_by, \
       COALESCE(p.confirmed_eta, p.expected_date) AS expected, p.quantity_milli, \
       COALESCE((SELECT sum(l.quantity_milli) FROM lots l WHERE l.po_id = p.po_id), 0)::int8 \
         AS delivered_milli \
FROM purchase_orders p \
WHERE p.status IN ('open', 'confirmed') \
  AND COALESCE((SELECT sum(l.quantity_milli) FROM lots l WHERE l.po_id = p.po_id), 0) \
      < p.quantity_milli \
  AND ((p.status = 'open' AND p.confirm_by < $1 \
        AND NOT EXISTS (SELECT 1 FROM purchase_order_chases c WHERE c.po_id = p.po_id \
                        AND c.lateness = 'unconfirmed' AND c.due_date = p.confirm_by)) \
    OR (COALESCE(p.confirmed_eta, p.expected_date) < $1 \
        AND NOT EXISTS (SELECT 1 FROM purchase_order_chases c WHERE c.po_id = p.po_id \
                        AND c.lateness = 'not_received' \
                        AND c.due_date = COALESCE(p.confirmed_eta, p.expected_date)))) \
ORDER BY p.created_at, p.po_id \
LIMIT $2 \
FOR NO KEY UPDATE OF p SKIP LOCKED";

/// Announces late purchase orders; run by the service's supervisor.
#[derive(Debug, Clone)]
pub struct ChaseWorker {
    pool: PgPool,
    calendar: Calendar,
    poll_interval: Duration,
    batch_size: i64,
}

impl ChaseWorker {
    pub fn new(pool: PgPool, calendar: Calendar, poll_interval: Duration) -> Self {
        ChaseWorker {
            pool,
            calendar,
            poll_interval,
            batch_size: 100,
        }
    }

    /// Chases until `cancel` fires. A failed pass is logged and retried on
    /// the next poll: the rows are the truth, nothing is lost by waiting.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let chased = match self.chase_due().await {
                Ok(chased) => chased,
                Err(err) => {
                    tracing::warn!(error = %err, "chase pass failed, retrying");
                    0
                }
            };
            // A full batch means more may be waiting: go again at once.
            if chased as i64 >= self.batch_size {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// One pass: chases every late purchase order of a batch in one
    /// transaction. Returns how many purchase orders were chased.
    pub async fn chase_due(&self) -> Result<usize> {
        let today = self.calendar.today();
        let mut tx = self.pool.begin().await?;
        let due: Vec<Watched> = sqlx::query_as(DUE_SQL)
            .bind(today)
            .bind(self.batch_size)
            .fetch_all(&mut *tx)
            .await?;
        let mut chased = 0;
        for po in &due {
            let span = tracing::info_span!(
                "procurement.chase",
                purchase_order_id = %po.po_id,
                order_id = %po.order_id,
                supplier = %po.supplier,
            );
            if chase(&mut tx, po, today, &self.calendar)
                .instrument(span)
                .await?
            {
                chased += 1;
            }
        }
        tx.commit().await?;
        Ok(chased)
    }
}

/// Records and announces what `po` is late for; `false` when there was
/// nothing new to chase.
async fn chase(
    conn: &mut PgConnection,
    po: &Watched,
    today: NaiveDate,
    calendar: &Calendar,
) -> Result<bool> {
    let late = lateness(po, today);
    if late.is_empty() {
        return Ok(false);
    }
    let offers = catalog::offers(conn, std::slice::from_ref(&po.material)).await?;
    let alternative = offers
        .get(&po.material)
        .and_then(|offers| netting::best_offer_except(offers, &po.supplier))
        .map(|offer| offer.supplier.clone())
        .unwrap_or_default();
    let orders = delays::waiting_orders(conn, po.po_id, &po.order_id).await?;
    let mut events = Vec::new();
    let mut recorded = false;
    for missed in late {
        // The key makes a chase once-only even if two passes overlap.
        let inserted = sqlx::query(
            "INSERT INTO purchase_order_chases (po_id, lateness, due_date, days_late, chased_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(po.po_id)
        .bind(missed.lateness.as_str())
        .bind(missed.due)
        .bind(i32::try_from(missed.days_late).unwrap_or(i32::MAX))
        .bind(calendar.now())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 0 {
            continue;
        }
        recorded = true;
        tracing::info!(
            lateness = missed.lateness.as_str(),
            due_date = %missed.due,
            days_late = missed.days_late,
            alternative_supplier = %alternative,
            orders = orders.len(),
            "purchase order late, chasing the supplier"
        );
        for order_id in &orders {
            let event = PurchaseOrderLate {
                order_id: order_id.clone(),
                purchase_order_id: po.po_id.to_string(),
                supplier: po.supplier.clone(),
                material: po.material.clone(),
                lateness: missed.lateness.as_str().to_owned(),
                due_date: date_to_string(missed.due),
                days_late: missed.days_late,
                alternative_supplier: alternative.clone(),
            };
            // The clock is a first cause in the order's workflow.
            events.push(Outgoing::event(
                SERVICE,
                order_id,
                &event,
                &Cause::root(order_id.clone()),
            ));
        }
    }
    outbox::write(conn, &events).await?;
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// 100 m placed on 03-02, to confirm by 03-04, expected 03-09.
    fn po(status: &str) -> Watched {
        Watched {
            po_id: Uuid::nil(),
            order_id: "o-1".to_owned(),
            supplier: "FAST".to_owned(),
            material: "fabric".to_owned(),
            status: status.to_owned(),
            confirm_by: day("2026-03-04"),
            expected: day("2026-03-09"),
            quantity_milli: 100_000,
            delivered_milli: 0,
        }
    }

    #[test]
    fn nothing_is_late_on_or_before_its_day() {
        assert!(lateness(&po("open"), day("2026-03-02")).is_empty());
        assert!(lateness(&po("open"), day("2026-03-04")).is_empty());
    }

    #[test]
    fn an_unconfirmed_po_is_late_the_day_after_its_confirm_by_date() {
        assert_eq!(
            lateness(&po("open"), day("2026-03-05")),
            [Late {
                lateness: Lateness::Unconfirmed,
                due: day("2026-03-04"),
                days_late: 1,
            }]
        );
        // A confirmed one is not chased for its confirmation.
        assert!(lateness(&po("confirmed"), day("2026-03-05")).is_empty());
    }

    #[test]
    fn a_po_not_received_by_its_expected_date_is_late() {
        assert_eq!(
            lateness(&po("confirmed"), day("2026-03-12")),
            [Late {
                lateness: Lateness::NotReceived,
                due: day("2026-03-09"),
                days_late: 3,
            }]
        );
        // Never confirmed and never delivered: both, unconfirmed first.
        let both = lateness(&po("open"), day("2026-03-10"));
        assert_eq!(
            both.iter()
                .map(|l| (l.lateness, l.days_late))
                .collect::<Vec<_>>(),
            [(Lateness::Unconfirmed, 6), (Lateness::NotReceived, 1)]
        );
    }

    #[test]
    fn partly_delivered_is_still_late_fully_delivered_is_not() {
        let partly = Watched {
            delivered_milli: 60_000,
            ..po("confirmed")
        };
        assert_eq!(lateness(&partly, day("2026-03-10")).len(), 1);
        let delivered = Watched {
            delivered_milli: 100_000,
            ..po("open")
        };
        assert!(lateness(&delivered, day("2026-03-20")).is_empty());
    }

    #[test]
    fn a_po_reduced_by_an_amendment_is_chased_for_its_reduced_quantity() {
        // 100 m reduced to 60 m: 60 m delivered is all of it.
        let reduced = Watched {
            quantity_milli: 60_000,
            delivered_milli: 60_000,
            ..po("confirmed")
        };
        assert!(lateness(&reduced, day("2026-03-20")).is_empty());
        // 40 m of the 60 m delivered: late for the rest.
        let short = Watched {
            delivered_milli: 40_000,
            ..reduced
        };
        assert_eq!(lateness(&short, day("2026-03-10")).len(), 1);
    }

    #[test]
    fn cancelled_and_received_pos_are_never_chased() {
        for status in ["cancelled", "received"] {
            assert!(lateness(&po(status), day("2026-04-30")).is_empty());
        }
    }

    proptest! {
        #[test]
        fn a_missed_date_is_in_the_past_and_counted_in_whole_days(
            confirm_in in 0u64..30,
            expected_in in 0u64..90,
            today_in in 0u64..120,
            delivered in 0i64..=100_000,
            status in prop::sample::select(vec!["open", "confirmed", "received", "cancelled"]),
        ) {
            let placed = day("2026-03-02");
            let watched = Watched {
                confirm_by: placed + chrono::Days::new(confirm_in),
                expected: placed + chrono::Days::new(expected_in),
                delivered_milli: delivered,
                ..po(status)
            };
            let today = placed + chrono::Days::new(today_in);
            let late = lateness(&watched, today);
            if matches!(status, "received" | "cancelled") || delivered >= watched.quantity_milli {
                prop_assert!(late.is_empty());
            }
            for missed in &late {
                prop_assert!(missed.due < today);
                prop_assert!(missed.days_late >= 1);
                prop_assert_eq!(missed.due + chrono::Days::new(u64::from(missed.days_late)), today);
                if missed.lateness == Lateness::Unconfirmed {
                    prop_assert_eq!(status, "open");
                }
            }
            prop_assert!(late.len() <= 2);
        }
    }
}
