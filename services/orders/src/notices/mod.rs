//! Customer notices: what we tell the customer, and when.
//!
//! The events a customer cares about become a notice written in the same
//! transaction as the timeline entry that records them: every phase the
//! order reaches for the first time (`PhaseChanged`; the saga's loop back
//! with an amendment, and the walk forward again, are told by the
//! amendment's notices; closing is told once, by `OrderClosed`), the
//! delivery date becoming at
//! risk or back on track (`DeliveryRiskChanged` with `risk_changed`), a
//! delivery-date clarification (`DecisionRequested` of kind `delivery_date`,
//! the first request only: reminders are for our merchandiser), a request
//! for a concession after failed final inspections (kind
//! `final_inspection`), how goods the carrier lost or damaged are made good
//! (`DecisionMade` of kind `cargo_claim`: a replacement or a credit), each
//! dunning reminder (`PaymentReminder`), `Shipped`,
//! `Delivered`, a resolved claim (`ClaimResolved`, worded by
//! [`crate::claims::notice`]), an amendment received (`OrderAmended`) and
//! the order confirmed again after it (`OrderConfirmed` of a revision
//! above 1, with the amendment that explains it; both worded by
//! [`crate::amendments::notice`]) and `OrderClosed`. [`compose`] turns one
//! event into a subject line and a plain English body addressed to the
//! order's customer; [`on_event`] stores it (once per event id: a redelivered event
//! makes no second notice) and puts a `CustomerNotice` on
//! `gendan.notify.customer` through the outbox, for notification adapters
//! (e-mail, portal). The webhook dispatcher ([`crate::webhook`]) delivers
//! the stored rows to the customer's own URL or the deployment's. A closed order gets no notice but
//! its closing one. The words for each phase are in `phase.rs`.

mod decisions;
mod phase;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use gendan_messaging::{Cause, Outgoing, outbox, subjects};
use gendan_proto::v1::{
    ClaimResolved, CustomerNotice, DecisionMade, DecisionRequested, Delivered, DeliveryRiskChanged,
    Envelope, OrderAmended, OrderClosed, OrderConfirmed, PaymentReminder, Phase, PhaseChanged,
    Shipped,
};
use gendan_proto::{TypeName, timestamp_from};
use prost::Message;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use self::phase::phase_text;
use crate::SERVICE;
use crate::store::{self, OrderState};

/// Webhook delivery states of a notice.
pub mod delivery {
    /// Waiting for the dispatcher (or for its next retry).
    pub const PENDING: &str = "pending";
    pub const DELIVERED: &str = "delivered";
    /// The dispatcher gave up (attempts exhausted or a permanent refusal).
    pub const FAILED: &str = "failed";
    /// Neither the deployment nor the order's customer has a webhook URL:
    /// nothing will deliver it (it is still on the bus for other adapters).
    pub const NOT_CONFIGURED: &str = "not_configured";
}

/// The decision kind that asks the customer about the delivery date.
pub const DELIVERY_DATE_DECISION: &str = "delivery_date";
/// The decision kind that asks the customer for a concession.
pub const FINAL_INSPECTION_DECISION: &str = "final_inspection";
/// The decision kind that settles goods the carrier lost or damaged.
pub const CARGO_CLAIM_DECISION: &str = "cargo_claim";

/// A notice before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// "phase", "delivery_risk", "decision", "payment_reminder", "shipped",
    /// "delivered", "claim", "amendment", "confirmed_again", "closed".
    pub kind: &'static str,
    pub subject: String,
    pub body: String,
}

/// Stores the notice `envelope` calls for, if any, and announces it.
/// Returns the notice when one was written now.
pub async fn on_event(
    conn: &mut PgConnection,
    order_id: Uuid,
    envelope: &Envelope,
    cause: &Cause,
) -> sqlx::Result<Option<CustomerNotice>> {
    if !concerns_customer(&envelope.r#type) {
        return Ok(None);
    }
    let Some(order) = store::state(&mut *conn, order_id).await? else {
        return Ok(None);
    };
    if order.is_closed() && envelope.r#type != OrderClosed::TYPE_NAME {
        return Ok(None);
    }
    // A confirmation again is explained by the amendment it follows.
    let draft = if envelope.r#type == OrderConfirmed::TYPE_NAME {
        let latest = crate::amendments::store::latest(&mut *conn, order_id).await?;
        let latest = latest
            .as_ref()
            .map(crate::amendments::store::StoredAmendment::to_amendment);
        crate::amendments::notice::confirmed_again(&envelope.payload, &order, latest.as_ref())
    } else {
        compose(envelope, &order)
    };
    let Some(draft) = draft else {
        return Ok(None);
    };
    let notice_id = Uuid::now_v7();
    let created_at = Utc::now().trunc_subsecs(6);
    let inserted = sqlx::query(
        "INSERT INTO notices (notice_id, order_id, source_event_id, customer, kind, subject, \
             body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (source_event_id) DO NOTHING",
    )
    .bind(notice_id)
    .bind(order_id)
    .bind(&envelope.event_id)
    .bind(&order.customer)
    .bind(draft.kind)
    .bind(&draft.subject)
    .bind(&draft.body)
    .bind(created_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    let notice = CustomerNotice {
        notice_id: notice_id.to_string(),
        order_id: order_id.to_string(),
        customer: order.customer.clone(),
        kind: draft.kind.to_owned(),
        subject: draft.subject,
        body: draft.body,
        created_at: Some(timestamp_from(created_at)),
        delivery_status: delivery::PENDING.to_owned(),
        delivery_attempts: 0,
    };
    let message = Outgoing::new(
        subjects::CUSTOMER_NOTICES.to_owned(),
        SERVICE,
        &notice.order_id,
        &notice,
        cause,
    );
    outbox::write(conn, std::slice::from_ref(&message)).await?;
    tracing::debug!(%order_id, kind = notice.kind, "customer notice written");
    Ok(Some(notice))
}

fn concerns_customer(type_name: &str) -> bool {
    matches!(
        type_name,
        PhaseChanged::TYPE_NAME
            | OrderAmended::TYPE_NAME
            | OrderConfirmed::TYPE_NAME
            | DeliveryRiskChanged::TYPE_NAME
            | DecisionRequested::TYPE_NAME
            | DecisionMade::TYPE_NAME
            | Shipped::TYPE_NAME
            | Delivered::TYPE_NAME
            | ClaimResolved::TYPE_NAME
            | PaymentReminder::TYPE_NAME
            | OrderClosed::TYPE_NAME
    )
}

#[derive(Debug, sqlx::FromRow)]
struct NoticeRow {
    notice_id: Uuid,
    order_id: Uuid,
    customer: String,
    kind: String,
    subject: String,
    body: String,
    created_at: DateTime<Utc>,
    delivery_status: String,
    delivery_attempts: i32,
}

impl NoticeRow {
    fn into_notice(self) -> CustomerNotice {
        CustomerNotice {
            notice_id: self.notice_id.to_string(),
            order_id: self.order_id.to_string(),
            customer: self.customer,
            kind: self.kind,
            subject: self.subject,
            body: self.body,
            created_at: Some(timestamp_from(self.created_at)),
            delivery_status: self.delivery_status,
            delivery_attempts: u32::try_from(self.delivery_attempts).unwrap_or(0),
        }
    }
}

/// The order's notices, oldest first.
pub async fn list(
    executor: impl PgExecutor<'_>,
    order_id: Uuid,
) -> sqlx::Result<Vec<CustomerNotice>> {
    let rows: Vec<NoticeRow> = sqlx::query_as(
        "SELECT notice_id, order_id, customer, kind, subject, body, created_at, \
             delivery_status, delivery_attempts \
         FROM notices WHERE order_id = $1 ORDER BY seq",
    )
    .bind(order_id)
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(NoticeRow::into_notice).collect())
}

/// The notice `envelope` calls for, written to `order`'s customer; `None`
/// for events the customer is not told about (or that do not decode).
/// `OrderConfirmed` is not composed here: [`on_event`] explains a
/// confirmation again with the amendment it follows.
pub fn compose(envelope: &Envelope, order: &OrderState) -> Option<Draft> {
    let payload = envelope.payload.as_slice();
    let id = order.order_id;
    let (kind, subject, text) = match envelope.r#type.as_str() {
        PhaseChanged::TYPE_NAME => {
            let event = PhaseChanged::decode(payload).ok()?;
            let phase = Phase::try_from(event.to).ok()?;
            // The order's closing is told once, by `OrderClosed` with its
            // delivery date, not a second time as a phase.
            if phase == Phase::Closed {
                return None;
            }
            let expected = parse_date(&event.projected_delivery_date)
                .or(order.projected_delivery_date)
                .or(order.promised_delivery_date);
            let (label, mut text) = phase_text(phase, order);
            if let Some(date) = expected.filter(|_| phase < Phase::Acceptance) {
                text.push_str(&format!(" We currently expect to deliver on {date}."));
            }
            ("phase", format!("Order {id}: {label}"), text)
        }
        DeliveryRiskChanged::TYPE_NAME => {
            let event = DeliveryRiskChanged::decode(payload).ok()?;
            if !event.risk_changed {
                return None;
            }
            let projected = or_text(&event.projected_delivery_date, "a later date");
            if event.at_risk {
                let mut text = format!("We now expect to deliver your order on {projected}");
                match parse_date(&event.promised_delivery_date).or(order.promised_delivery_date) {
                    Some(promised) => {
                        text.push_str(&format!(", later than the {promised} we promised."))
                    }
                    None => text.push_str(", later than planned."),
                }
                if !event.reason.is_empty() {
                    text.push_str(&format!(
                        " The reason: {}.",
                        event.reason.trim_end_matches('.')
                    ));
                }
                text.push_str(
                    " We are working to recover the time and will keep you informed. \
                     Please tell us if this date causes you a problem.",
                );
                (
                    "delivery_risk",
                    format!("Order {id}: delivery may be late"),
                    text,
                )
            } else {
                (
                    "delivery_risk",
                    format!("Order {id}: back on schedule"),
                    format!(
                        "Good news: your order is back on schedule. We expect to deliver on \
                         {projected}."
                    ),
                )
            }
        }
        DecisionRequested::TYPE_NAME => decisions::requested(payload, order)?,
        DecisionMade::TYPE_NAME => decisions::made(payload, order)?,
        PaymentReminder::TYPE_NAME => {
            let event = PaymentReminder::decode(payload).ok()?;
            let text = format!(
                "Our records show invoice {} ({}) unpaid; it was due on {} ({} days ago). \
                 Please arrange payment, or tell us if it has already been made.",
                event.invoice_id,
                crate::summary::money(event.outstanding_minor, &event.currency),
                event.due_date,
                event.days_overdue
            );
            (
                "payment_reminder",
                format!("Order {id}: payment reminder {}", event.reminder),
                text,
            )
        }
        Shipped::TYPE_NAME => {
            let event = Shipped::decode(payload).ok()?;
            let mut text = format!(
                "Your order left our factory on {}",
                or_text(&event.shipped_on, "today")
            );
            if !event.bill_of_lading.is_empty() {
                text.push_str(&format!(" under bill of lading {}", event.bill_of_lading));
            }
            text.push_str(". We will let you know when it is delivered.");
            ("shipped", format!("Order {id}: shipped"), text)
        }
        Delivered::TYPE_NAME => {
            let event = Delivered::decode(payload).ok()?;
            let text = format!(
                "Your order was delivered on {}. Please inspect the goods and confirm \
                 acceptance, or tell us about any shortage, damage or quality problem.",
                or_text(&event.delivered_on, "today")
            );
            ("delivered", format!("Order {id}: delivered"), text)
        }
        ClaimResolved::TYPE_NAME => return crate::claims::notice::compose(payload, order),
        OrderAmended::TYPE_NAME => return crate::amendments::notice::received(payload, order),
        OrderClosed::TYPE_NAME => {
            let summary = OrderClosed::decode(payload)
                .ok()?
                .summary
                .unwrap_or_default();
            let mut text = "Your order is complete and its file is now closed.".to_owned();
            if !summary.delivered_on.is_empty() {
                text.push_str(&format!(" It was delivered on {}.", summary.delivered_on));
            }
            text.push_str(" Thank you for your business; we look forward to your next order.");
            ("closed", format!("Order {id}: completed"), text)
        }
        _ => return None,
    };
    Some(Draft {
        kind,
        subject,
        body: letter(&order.customer, &text, id),
    })
}

/// `text` as a letter to `customer` about the order.
pub(crate) fn letter(customer: &str, text: &str, order_id: Uuid) -> String {
    format!(
        "Dear {customer},\n\n{text}\n\nOrder reference: {order_id}\n\n\
         Kind regards,\nYour order follow-up team"
    )
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    gendan_proto::date_from_str(text)
}

fn or_text<'a>(value: &'a str, fallback: &'a str) -> &'a str {
    if value.is_empty() { fallback } else { value }
}

#[cfg(test)]
mod tests;
