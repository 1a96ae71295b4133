//! The per-order cost ledger, fed by domain events (`gendan.evt.>`, durable
//! `finance-costs`).
//!
//! | event | category | amount |
//! | --- | --- | --- |
//! | `PurchaseOrderPlaced` | material | `amount_minor` in `currency` |
//! | `MaterialsOrdered` | material | per `stock_issued` line, the material the order took from stock at the price of the offer a purchase would use (procurement values it): `amount_minor` in `currency`; an issue without a supplier offer books a warning entry and no amount, one that costs 0 books nothing |
//! | `WorkOrderCompleted` | labour | hours per work centre × that centre's rate (`SetLabourRate`); a centre without a rate books a warning entry and no amount |
//! | `ReworkCompleted` | rework | the same, for the hours of a rework of goods that failed final inspection |
//! | `FinalInspectionOpened` | inspection | `sample_size` × the inspection rate (`SetInspectionRate`); without a rate a warning entry and no amount |
//! | `ShipmentBooked`, first booking | freight | `freight_cost_minor` in `currency` |
//! | `ShipmentBooked`, revision ≥ 2 | expedite | the same: a re-booking after a missed departure is freight the plan did not have |
//! | `CreditNoteIssued` for a claim | credit_note | `amount_minor` in `currency`: the money the order gave back to settle a claim is what the claim cost it (an amendment's note, `amendment:<revision>`, only follows a lower price: not booked) |
//!
//! Other event types are ignored. The consumer records how far along the
//! stream it got (`consumer_progress`), which `CloseCostLedger` waits for. Entries are keyed by the fact they cost
//! (purchase order, the stock issues of an order's revision, work order
//! run, rework order, inspection, booking reference, claim) and line, so a
//! fact is booked once even when it is announced again under another event
//! id (the answer to a re-sent command) or the inbox were bypassed.
//!
//! Entries keep their own amount and currency and are valued in the order
//! currency (the receivable's) at booking: the amount itself in that
//! currency, else at the rate in force on the booking date, the day the
//! event happened ([`exchange_rates::value`]). Without a rate the entry
//! waits unvalued, `ExchangeRateMissing` says which rate is missing, and
//! setting the rate values it ([`exchange_rates::set`]). Costs of an order
//! whose receivable does not exist yet are kept unvalued too (the ledger is
//! keyed by order id); `OpenReceivable` values them ([`value_pending`]) and
//! checks the budget against them.
//!
//! [`check_overrun`] compares the valued entries with the budget and emits
//! `CostOverrun` once per crossing: for the whole order, and, when the
//! budget is split into lines, for each category over its plan (a category
//! without a plan is over at its first cost). A budget of 0 means none was
//! set and is never overrun.

use chrono::NaiveDate;
use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing, outbox};
use gendan_proto::v1::{
    CreditNoteIssued, ExchangeRateMissing, FinalInspectionOpened, MaterialsOrdered,
    PurchaseOrderPlaced, ReworkCompleted, ShipmentBooked, WorkOrderCompleted,
};
use gendan_proto::{date_to_string, money};
use sqlx::PgConnection;

use crate::exchange_rates::{self, Valued};
use crate::receivables::{self, Receivable};
use crate::{SERVICE, estimates};

mod entries;
mod overruns;

pub use entries::{
    Rates, credit_note, freight, inspection, labour, labour_cost, labour_rates, material, rework,
    stock_issued,
};
pub use overruns::{Standing, check_overrun, in_listing_order, overruns, standings};

pub const MATERIAL: &str = "material";
pub const LABOUR: &str = "labour";
pub const REWORK: &str = "rework";
pub const INSPECTION: &str = "inspection";
pub const FREIGHT: &str = "freight";
pub const EXPEDITE: &str = "expedite";
pub const CREDIT_NOTE: &str = "credit_note";

/// One line to book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub category: &'static str,
    pub description: String,
    /// `None` with a warning when nothing could be costed.
    pub amount: Option<(i64, String)>,
    pub warning: Option<String>,
}

/// Handles `gendan.evt.>` for the cost ledger.
#[derive(Debug, Clone, Copy, Default)]
pub struct CostHandler;

impl Handler for CostHandler {
    fn handles(&self, message: &Incoming) -> bool {
        message.is::<PurchaseOrderPlaced>()
            || message.is::<MaterialsOrdered>()
            || message.is::<WorkOrderCompleted>()
            || message.is::<ReworkCompleted>()
            || message.is::<FinalInspectionOpened>()
            || message.is::<ShipmentBooked>()
            || message.is::<CreditNoteIssued>()
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        // Each cost is keyed by the fact it comes from (the purchase order,
        // the work order run, the booking), not by the message that told
        // us: the same fact announced again under another event id must not
        // be booked twice.
        let (order_id, fact, entries) = if message.is::<PurchaseOrderPlaced>() {
            let event: PurchaseOrderPlaced = message.payload()?;
            (
                message.order_id_or(&event.order_id)?,
                format!("po:{}", event.purchase_order_id),
                vec![material(&event).map_err(HandlerError::Rejected)?],
            )
        } else if message.is::<MaterialsOrdered>() {
            let event: MaterialsOrdered = message.payload()?;
            let entries = stock_issued(&event).map_err(HandlerError::Rejected)?;
            if entries.is_empty() {
                // Nothing taken from stock (or a producer older than stock
                // issues): no cost, and no need to lock the order.
                return Ok(());
            }
            let order_id = message.order_id_or(&event.order_id)?;
            // A revision counts per order while the ledger's fact keys are
            // unique across orders, so the order is part of the key; 0 is
            // a sender older than revisions, its first.
            let fact = format!("stock:{order_id}:{}", event.revision.max(1));
            (order_id, fact, entries)
        } else if message.is::<WorkOrderCompleted>() {
            let event: WorkOrderCompleted = message.payload()?;
            let order_id = message.order_id_or(&event.order_id)?;
            let rates = labour_rates(conn).await?;
            let fact = format!("wo:{}", event.work_order_id);
            (order_id, fact, labour(&event, &rates))
        } else if message.is::<ReworkCompleted>() {
            let event: ReworkCompleted = message.payload()?;
            let order_id = message.order_id_or(&event.order_id)?;
            let rates = labour_rates(conn).await?;
            let fact = format!("rework:{}", event.work_order_id);
            (order_id, fact, rework(&event, &rates))
        } else if message.is::<FinalInspectionOpened>() {
            let event: FinalInspectionOpened = message.payload()?;
            let order_id = message.order_id_or(&event.order_id)?;
            let rate = estimates::inspection_rate(conn).await?;
            let fact = format!("inspection:{}", event.inspection_id);
            (order_id, fact, vec![inspection(&event, rate.as_ref())])
        } else if message.is::<ShipmentBooked>() {
            let event: ShipmentBooked = message.payload()?;
            (
                message.order_id_or(&event.order_id)?,
                format!("booking:{}", event.booking_reference),
                vec![freight(&event).map_err(HandlerError::Rejected)?],
            )
        } else if message.is::<CreditNoteIssued>() {
            let event: CreditNoteIssued = message.payload()?;
            let Some(entry) = credit_note(&event).map_err(HandlerError::Rejected)? else {
                return Ok(());
            };
            (
                message.order_id_or(&event.order_id)?,
                format!("credit_note:{}", event.claim_id),
                vec![entry],
            )
        } else {
            // Not a cost; this consumer sees every domain event.
            return Ok(());
        };
        // A fact without its own id (an older producer) falls back to the
        // message's.
        let fact = if fact.ends_with(':') {
            message.envelope.event_id.clone()
        } else {
            fact
        };
        book(conn, message, &order_id, &fact, &entries).await
    }
}

/// A cost just booked or valued, as `CostOverrun` names what crossed the
/// line and `ExchangeRateMissing` what waits for a rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booked {
    pub category: String,
    /// The entry and its own amount ("purchase order PO-7 to Acme: 100 m
    /// FABRIC (1200.00 CNY)").
    pub what: String,
}

impl Booked {
    pub fn new(category: &str, description: &str, amount_minor: i64, currency: &str) -> Self {
        Booked {
            category: category.to_owned(),
            what: format!("{description} ({})", money(amount_minor, currency)),
        }
    }
}

/// What an entry is worth in the order currency, as stored beside it: all
/// `None` while it waits (no receivable, no rate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Valuation {
    order_amount_minor: Option<i64>,
    rate_scaled: Option<i64>,
    rate_date: Option<NaiveDate>,
    order_currency: Option<String>,
    /// No rate on the booking date: announced as `ExchangeRateMissing`.
    missing: bool,
}

/// Values `amount_minor` of `currency` in `order_currency` on `on` (see
/// [`exchange_rates::value`]).
async fn valuation(
    conn: &mut PgConnection,
    amount_minor: i64,
    currency: &str,
    order_currency: &str,
    on: NaiveDate,
) -> sqlx::Result<Valuation> {
    let valued = exchange_rates::value(conn, amount_minor, currency, order_currency, on).await?;
    Ok(match valued {
        Some(Valued::Same) => Valuation {
            order_amount_minor: Some(amount_minor),
            order_currency: Some(order_currency.to_owned()),
            ..Valuation::default()
        },
        Some(Valued::Converted {
            order_amount_minor,
            scaled,
            rate_date,
        }) => Valuation {
            order_amount_minor: Some(order_amount_minor),
            rate_scaled: Some(scaled),
            rate_date: Some(rate_date),
            order_currency: Some(order_currency.to_owned()),
            missing: false,
        },
        Some(Valued::NoRate) => Valuation {
            missing: true,
            ..Valuation::default()
        },
        None => {
            // Only an absurd amount or rate gets here; a person has to look
            // at it like at a missing rate.
            tracing::warn!(
                amount_minor,
                currency,
                order_currency,
                "the value in the order currency overflows, the cost waits unvalued"
            );
            Valuation {
                missing: true,
                ..Valuation::default()
            }
        }
    })
}

fn rate_missing(
    order_id: &str,
    order_currency: &str,
    on: NaiveDate,
    currency: &str,
    booked: &Booked,
    cause: &Cause,
) -> Outgoing {
    tracing::warn!(
        order_id,
        from = currency,
        to = order_currency,
        %on,
        what = %booked.what,
        "no exchange rate, the cost waits for one"
    );
    let event = ExchangeRateMissing {
        order_id: order_id.to_owned(),
        from_currency: currency.to_owned(),
        to_currency: order_currency.to_owned(),
        on: date_to_string(on),
        what: booked.what.clone(),
    };
    Outgoing::event(SERVICE, order_id, &event, cause)
}

#[tracing::instrument(skip_all, fields(order_id = %order_id, event = %message.type_name()))]
async fn book(
    conn: &mut PgConnection,
    message: &Incoming,
    order_id: &str,
    fact: &str,
    entries: &[Entry],
) -> Result<(), HandlerError> {
    receivables::lock_order(conn, order_id).await?;
    // The day the cost happened rather than the day it is handled: a
    // redelivery or a backlog values it at the same rate.
    let booked_on = message.occurred_at().date_naive();
    let receivable: Option<Receivable> = receivables::find(conn, order_id).await?;
    let cause = Cause::from_incoming(message);
    let mut inserted_any = false;
    let mut booked = Vec::new();
    let mut events = Vec::new();
    for (line, entry) in entries.iter().enumerate() {
        let valued = match (&entry.amount, &receivable) {
            (Some((amount_minor, currency)), Some(receivable)) => {
                valuation(
                    conn,
                    *amount_minor,
                    currency,
                    &receivable.currency,
                    booked_on,
                )
                .await?
            }
            // Nothing to value, or no order currency yet (value_pending
            // values it when the receivable opens).
            _ => Valuation::default(),
        };
        let (amount_minor, currency) = match &entry.amount {
            Some((amount, currency)) => (Some(*amount), Some(currency.as_str())),
            None => (None, None),
        };
        let inserted = sqlx::query(
            "INSERT INTO cost_entries (event_id, line, order_id, category, description, \
               amount_minor, currency, warning, order_amount_minor, rate_scaled, rate_date, \
               order_currency, booked_on) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (event_id, line) DO NOTHING",
        )
        .bind(fact)
        .bind(line as i32)
        .bind(order_id)
        .bind(entry.category)
        .bind(&entry.description)
        .bind(amount_minor)
        .bind(currency)
        .bind(&entry.warning)
        .bind(valued.order_amount_minor)
        .bind(valued.rate_scaled)
        .bind(valued.rate_date)
        .bind(&valued.order_currency)
        .bind(booked_on)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            > 0;
        if !inserted {
            continue;
        }
        inserted_any = true;
        if let Some(warning) = &entry.warning {
            tracing::warn!(%warning, "cost entry without an amount");
        }
        let Some((amount_minor, currency)) = &entry.amount else {
            continue;
        };
        let item = Booked::new(entry.category, &entry.description, *amount_minor, currency);
        if valued.order_amount_minor.is_some() {
            booked.push(item);
        } else if let (true, Some(receivable)) = (valued.missing, &receivable) {
            events.push(rate_missing(
                order_id,
                &receivable.currency,
                booked_on,
                currency,
                &item,
                &cause,
            ));
        }
    }
    if !inserted_any {
        return Ok(());
    }
    events.extend(overruns(conn, order_id, &cause, &booked).await?);
    outbox::write(conn, &events).await?;
    Ok(())
}

/// Values the order's entries booked before its receivable existed (their
/// order currency was unknown), each at the rate in force on its booking
/// date; returns `ExchangeRateMissing` for those without one. Called under
/// the order lock right after the receivable is first stored; the caller
/// then checks the budget ([`check_overrun`]).
pub async fn value_pending(
    conn: &mut PgConnection,
    order_id: &str,
    cause: &Cause,
) -> sqlx::Result<Vec<Outgoing>> {
    let Some(receivable) = receivables::find(conn, order_id).await? else {
        return Ok(Vec::new());
    };
    let waiting: Vec<(i64, String, String, i64, String, NaiveDate)> = sqlx::query_as(
        "SELECT seq, category, description, amount_minor, currency, booked_on FROM cost_entries \
         WHERE order_id = $1 AND amount_minor IS NOT NULL AND order_amount_minor IS NULL \
         ORDER BY seq",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut events = Vec::new();
    for (seq, category, description, amount_minor, currency, booked_on) in waiting {
        let valued = valuation(
            conn,
            amount_minor,
            &currency,
            &receivable.currency,
            booked_on,
        )
        .await?;
        if valued.missing {
            let item = Booked::new(&category, &description, amount_minor, &currency);
            events.push(rate_missing(
                order_id,
                &receivable.currency,
                booked_on,
                &currency,
                &item,
                cause,
            ));
            continue;
        }
        sqlx::query(
            "UPDATE cost_entries SET order_amount_minor = $2, rate_scaled = $3, rate_date = $4, \
               order_currency = $5 \
             WHERE seq = $1",
        )
        .bind(seq)
        .bind(valued.order_amount_minor)
        .bind(valued.rate_scaled)
        .bind(valued.rate_date)
        .bind(&valued.order_currency)
        .execute(&mut *conn)
        .await?;
    }
    Ok(events)
}

/// Actual cost of the order in `currency`: its entries valued in it
/// (entries still waiting for a rate are not counted).
pub async fn actual_in(
    conn: &mut PgConnection,
    order_id: &str,
    currency: &str,
) -> sqlx::Result<i64> {
    let actual: Option<i64> = sqlx::query_scalar(
        "SELECT sum(order_amount_minor)::bigint FROM cost_entries \
         WHERE order_id = $1 AND order_currency = $2",
    )
    .bind(order_id)
    .bind(currency)
    .fetch_one(conn)
    .await?;
    Ok(actual.unwrap_or(0))
}
