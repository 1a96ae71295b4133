//! The chasing worker: reports bookings whose ETD passed without the goods
//! leaving (DESIGN §2 row 9, "missed ETD").
//!
//! A booking is late once its ETD day has ended (today, on the service's
//! [`Clock`], is after the ETD) while it is still the order's open, current
//! booking and the warehouse has not reported the goods shipped. What is
//! late is the pure [`days_late`]; [`bookings::overdue`] asks the same in
//! SQL so a batch holds only work, and `days_late` has the last word.
//!
//! Each pass claims a batch (`FOR UPDATE SKIP LOCKED`, so replicas share
//! it), marks each booking reported and writes its `ShipmentLate` to the
//! outbox, all in one transaction: a crash before the commit reports
//! nothing and one after it never reports the same booking again. The saga
//! answers a `ShipmentLate` by re-booking (a new BookShipment revision),
//! whose new booking is chased on its own ETD.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_messaging::{Cause, Outgoing, outbox, subjects};
use gendan_proto::v1::ShipmentLate;
use gendan_proto::{TypeName, date_to_string};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::SHIPMENT_BOOKED;
use crate::store::bookings::{self, BOOKING_OPEN, Watched};
use crate::{Result, SERVICE};

/// Days past `etd` on `today` when `booking` is to be reported late; `None`
/// when it is not late, not the order's open booking any more, already
/// shipped, or already reported.
pub fn days_late(booking: &Watched, today: NaiveDate) -> Option<u32> {
    let open = booking.status == BOOKING_OPEN && booking.is_current;
    // Shipped or delivered: the goods left, however late. Cancelled: the
    // saga called it off.
    let waiting_for_goods = booking.shipment_status == SHIPMENT_BOOKED;
    if !open || !waiting_for_goods || booking.reported {
        return None;
    }
    // The ETD day itself is still on time: the goods may leave that night.
    let days = (today - booking.etd).num_days();
    (days >= 1).then(|| u32::try_from(days).unwrap_or(u32::MAX))
}

/// Runs chasing passes until cancelled.
#[derive(Debug, Clone)]
pub struct ChasingWorker {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    poll_interval: Duration,
    batch_size: usize,
}

impl ChasingWorker {
    pub fn new(pool: PgPool, clock: Arc<dyn Clock>, poll_interval: Duration) -> Self {
        ChasingWorker {
            pool,
            clock,
            poll_interval,
            batch_size: 100,
        }
    }

    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        loop {
            let reported = match self.pass().await {
                Ok(reported) => reported,
                Err(err) => {
                    tracing::warn!(error = %err, "chasing pass failed, retrying");
                    0
                }
            };
            // A full batch reported: more may be waiting behind it.
            if reported >= self.batch_size {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// One pass on today's date: one batch of late bookings reported in one
    /// transaction. Returns how many were reported.
    pub async fn pass(&self) -> Result<usize> {
        let now = self.clock.now();
        let today = now.date_naive();
        let mut tx = self.pool.begin().await?;
        let limit = i64::try_from(self.batch_size).unwrap_or(i64::MAX);
        let due = bookings::overdue(&mut tx, today, limit).await?;
        let mut events = Vec::with_capacity(due.len());
        for booking in &due {
            let span = tracing::info_span!(
                "logistics.chase",
                order_id = %booking.order_id,
                booking_reference = %booking.booking_reference
            );
            let Some(late) = days_late(booking, today) else {
                // The query and `days_late` disagree: a bug in one of them.
                // Logged, not fatal; the booking waits for the fix.
                span.in_scope(|| {
                    tracing::warn!(etd = %booking.etd, "booking selected for chasing but not late");
                });
                continue;
            };
            bookings::mark_late(&mut tx, &booking.order_id, booking.revision, late, now).await?;
            span.in_scope(|| {
                tracing::warn!(etd = %booking.etd, days_late = late, "shipment missed its etd");
            });
            events.push(outgoing(&late_event(booking, late), &booking.order_id, now));
        }
        outbox::write(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(events.len())
    }
}

fn late_event(booking: &Watched, days_late: u32) -> ShipmentLate {
    ShipmentLate {
        order_id: booking.order_id.clone(),
        booking_reference: booking.booking_reference.clone(),
        etd: date_to_string(booking.etd),
        days_late,
        revision: u32::try_from(booking.revision).unwrap_or(0),
    }
}

/// The event in the order's workflow, dated by the service clock (a test's
/// missed ETD reads as that day on the timeline).
fn outgoing<M: prost::Message + TypeName>(
    payload: &M,
    order_id: &str,
    at: DateTime<Utc>,
) -> Outgoing {
    let subject = subjects::event(SERVICE, &subjects::token_for_type(M::TYPE_NAME));
    Outgoing::at(
        subject,
        SERVICE,
        order_id,
        payload,
        &Cause::root(order_id),
        at,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::bookings::BOOKING_CANCELLED;
    use crate::store::{SHIPMENT_CANCELLED, SHIPMENT_DELIVERED, SHIPMENT_SHIPPED};

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// The first booking of an order, ETD Monday 2026-03-09, not shipped.
    fn booked() -> Watched {
        Watched {
            order_id: "o-1".into(),
            revision: 1,
            booking_reference: "ROAD-MON-20260309-0A1B2C3D".into(),
            etd: date("2026-03-09"),
            status: BOOKING_OPEN.into(),
            shipment_status: SHIPMENT_BOOKED.into(),
            is_current: true,
            reported: false,
        }
    }

    #[test]
    fn late_once_the_etd_day_has_ended() {
        assert_eq!(days_late(&booked(), date("2026-03-08")), None);
        assert_eq!(days_late(&booked(), date("2026-03-09")), None);
        assert_eq!(days_late(&booked(), date("2026-03-10")), Some(1));
        assert_eq!(days_late(&booked(), date("2026-03-16")), Some(7));
    }

    #[test]
    fn goods_that_left_are_never_chased() {
        for status in [SHIPMENT_SHIPPED, SHIPMENT_DELIVERED, SHIPMENT_CANCELLED] {
            let booking = Watched {
                shipment_status: status.into(),
                ..booked()
            };
            assert_eq!(days_late(&booking, date("2026-04-01")), None, "{status}");
        }
    }

    #[test]
    fn a_reported_cancelled_or_superseded_booking_is_not_chased_again() {
        let reported = Watched {
            reported: true,
            ..booked()
        };
        let cancelled = Watched {
            status: BOOKING_CANCELLED.into(),
            ..booked()
        };
        let superseded = Watched {
            is_current: false,
            ..booked()
        };
        for booking in [reported, cancelled, superseded] {
            assert_eq!(days_late(&booking, date("2026-04-01")), None, "{booking:?}");
        }
    }

    #[test]
    fn a_re_booking_is_chased_on_its_own_etd() {
        let rebooked = Watched {
            revision: 2,
            etd: date("2026-03-16"),
            ..booked()
        };
        assert_eq!(days_late(&rebooked, date("2026-03-12")), None);
        assert_eq!(days_late(&rebooked, date("2026-03-18")), Some(2));
    }
}
