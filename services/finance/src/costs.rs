//! The per-order cost ledger, fed by domain events (`gendan.evt.>`, durable
//! `finance-costs`).
//!
//! | event | category | amount |
//! | --- | --- | --- |
//! | `PurchaseOrderPlaced` | material | `amount_minor` in `currency` |
//! | `WorkOrderCompleted` | labour | hours per work centre × that centre's rate (`SetLabourRate`); a centre without a rate books a warning entry and no amount |
//! | `ReworkCompleted` | rework | the same, for the hours of a rework of goods that failed final inspection |
//! | `ShipmentBooked` | freight | `freight_cost_minor` in `currency` |
//!
//! Other event types are ignored. Entries are keyed by the fact they cost
//! (purchase order, work order run, rework order, booking reference) and
//! line, so a fact is booked once even when it is announced again under
//! another event id (the answer to a re-sent command) or the inbox were
//! bypassed. Entries keep
//! their own currency; the budget comparison counts entries in the order
//! currency only (gendan keeps no exchange rates, so the others are listed
//! as unconverted). Costs of an order whose receivable does not exist yet
//! are kept: the ledger is keyed by order id, and `OpenReceivable` checks the
//! budget against them when it arrives. [`check_overrun`] emits
//! `CostOverrun` when actual goes over budget, once per crossing; a budget
//! of 0 means none was set and is never overrun.

use gendan_messaging::{Cause, Handler, HandlerError, Incoming, Outgoing, outbox};
use gendan_proto::v1::{
    CostOverrun, PurchaseOrderPlaced, ReworkCompleted, ShipmentBooked, WorkOrderCompleted,
};
use sqlx::PgConnection;

use crate::receivables::{self, STATUS_CANCELLED};
use crate::{SERVICE, validate};

pub const MATERIAL: &str = "material";
pub const LABOUR: &str = "labour";
pub const REWORK: &str = "rework";
pub const FREIGHT: &str = "freight";

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
            || message.is::<WorkOrderCompleted>()
            || message.is::<ReworkCompleted>()
            || message.is::<ShipmentBooked>()
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
        } else if message.is::<ShipmentBooked>() {
            let event: ShipmentBooked = message.payload()?;
            (
                message.order_id_or(&event.order_id)?,
                format!("booking:{}", event.booking_reference),
                vec![freight(&event).map_err(HandlerError::Rejected)?],
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

fn amount(value: i64, currency: &str, what: &str) -> Result<(i64, String), String> {
    if value < 0 {
        return Err(format!("{what}: negative amount {value}"));
    }
    let currency = validate::currency(currency, "currency").map_err(|e| format!("{what}: {e}"))?;
    Ok((value, currency))
}

pub fn material(event: &PurchaseOrderPlaced) -> Result<Entry, String> {
    let what = format!("purchase order {}", event.purchase_order_id);
    Ok(Entry {
        category: MATERIAL,
        description: format!(
            "purchase order {} to {}: {} {}",
            event.purchase_order_id, event.supplier, event.quantity, event.material
        ),
        amount: Some(amount(event.amount_minor, &event.currency, &what)?),
        warning: None,
    })
}

pub fn freight(event: &ShipmentBooked) -> Result<Entry, String> {
    let description = format!(
        "freight {} {} ({})",
        event.carrier, event.mode, event.booking_reference
    );
    if event.freight_cost_minor == 0 && event.currency.trim().is_empty() {
        // A booking without a quote yet: visible on the ledger, not a cost.
        return Ok(Entry {
            category: FREIGHT,
            description,
            amount: None,
            warning: Some("shipment booked without a freight cost".to_owned()),
        });
    }
    Ok(Entry {
        category: FREIGHT,
        description,
        amount: Some(amount(
            event.freight_cost_minor,
            &event.currency,
            "shipment booking",
        )?),
        warning: None,
    })
}

/// A labour rate: currency and minor units per hour.
pub type Rates = std::collections::HashMap<String, (String, i64)>;

/// `hours × rate`, rounded half up to the minor unit. Hours are taken to
/// the thousandth (3.6 seconds) so the product is integer arithmetic.
pub fn labour_cost(hours: f64, rate_minor_per_hour: i64) -> Option<i64> {
    if !hours.is_finite() || hours < 0.0 || rate_minor_per_hour < 0 {
        return None;
    }
    let milli_hours = (hours * 1000.0).round();
    if milli_hours > 1e15 {
        return None;
    }
    let cost = (milli_hours as i128 * i128::from(rate_minor_per_hour) + 500) / 1000;
    i64::try_from(cost).ok()
}

pub fn labour(event: &WorkOrderCompleted, rates: &Rates) -> Vec<Entry> {
    hours_at_rates(
        LABOUR,
        &format!("work order {}", event.work_order_id),
        &event.hours_by_work_centre,
        rates,
    )
}

/// A rework's hours cost like labour, on their own line of the ledger: what
/// failed inspection cost the order shows apart from what making it did.
pub fn rework(event: &ReworkCompleted, rates: &Rates) -> Vec<Entry> {
    hours_at_rates(
        REWORK,
        &format!("rework work order {}", event.work_order_id),
        &event.hours_by_work_centre,
        rates,
    )
}

/// One entry per work centre (in code order): `hours × rate` under
/// `category`, or a warning when the centre has no rate.
fn hours_at_rates(
    category: &'static str,
    work_order: &str,
    hours_by_work_centre: &std::collections::HashMap<String, f64>,
    rates: &Rates,
) -> Vec<Entry> {
    let mut centres: Vec<(&String, &f64)> = hours_by_work_centre.iter().collect();
    // Map order is random; line numbers must be stable across redeliveries.
    centres.sort_by(|a, b| a.0.cmp(b.0));
    centres
        .into_iter()
        .map(|(work_centre, hours)| {
            let description = format!("{category} {work_centre}: {hours} h on {work_order}");
            let (amount, warning) = match rates.get(work_centre) {
                None => (
                    None,
                    Some(format!(
                        "no labour rate for work centre {work_centre:?}: {hours} h not costed"
                    )),
                ),
                Some((currency, rate)) => match labour_cost(*hours, *rate) {
                    Some(cost) => (Some((cost, currency.clone())), None),
                    None => (
                        None,
                        Some(format!("{hours} h at {work_centre:?} cannot be costed")),
                    ),
                },
            };
            Entry {
                category,
                description,
                amount,
                warning,
            }
        })
        .collect()
}

pub async fn labour_rates(conn: &mut PgConnection) -> sqlx::Result<Rates> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT work_centre, currency, rate_minor_per_hour FROM labour_rates")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(centre, currency, rate)| (centre, (currency, rate)))
        .collect())
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
    let mut booked = 0u64;
    for (line, entry) in entries.iter().enumerate() {
        let (amount_minor, currency) = match &entry.amount {
            Some((amount, currency)) => (Some(*amount), Some(currency.as_str())),
            None => (None, None),
        };
        booked += sqlx::query(
            "INSERT INTO cost_entries (event_id, line, order_id, category, description, \
               amount_minor, currency, warning) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id, line) DO NOTHING",
        )
        .bind(fact)
        .bind(line as i32)
        .bind(order_id)
        .bind(entry.category)
        .bind(&entry.description)
        .bind(amount_minor)
        .bind(currency)
        .bind(&entry.warning)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if let Some(warning) = &entry.warning {
            tracing::warn!(%warning, "cost entry without an amount");
        }
    }
    if booked == 0 {
        return Ok(());
    }
    let cause = Cause::from_incoming(message);
    if let Some(overrun) = check_overrun(conn, order_id, &cause).await? {
        outbox::write(conn, &[overrun]).await?;
    }
    Ok(())
}

/// Actual cost of the order in `currency` (entries in other currencies are
/// not counted).
pub async fn actual_in(
    conn: &mut PgConnection,
    order_id: &str,
    currency: &str,
) -> sqlx::Result<i64> {
    let actual: Option<i64> = sqlx::query_scalar(
        "SELECT sum(amount_minor)::bigint FROM cost_entries WHERE order_id = $1 AND currency = $2",
    )
    .bind(order_id)
    .bind(currency)
    .fetch_one(conn)
    .await?;
    Ok(actual.unwrap_or(0))
}

/// Compares actual with budget and records whether the order is over it;
/// returns `CostOverrun` when it just went over. Falling back under the
/// budget (a credit) re-arms it, so each crossing is announced once. The
/// caller holds the order lock.
pub async fn check_overrun(
    conn: &mut PgConnection,
    order_id: &str,
    cause: &Cause,
) -> sqlx::Result<Option<Outgoing>> {
    let Some(receivable) = receivables::find(conn, order_id).await? else {
        return Ok(None);
    };
    if receivable.cost_budget_minor == 0 || receivable.status == STATUS_CANCELLED {
        return Ok(None);
    }
    let actual_minor = actual_in(conn, order_id, &receivable.currency).await?;
    let over = actual_minor > receivable.cost_budget_minor;
    if over == receivable.over_budget {
        return Ok(None);
    }
    sqlx::query("UPDATE receivables SET over_budget = $2 WHERE order_id = $1")
        .bind(order_id)
        .bind(over)
        .execute(&mut *conn)
        .await?;
    if !over {
        return Ok(None);
    }
    tracing::warn!(
        order_id,
        budget_minor = receivable.cost_budget_minor,
        actual_minor,
        "cost overrun"
    );
    let overrun = CostOverrun {
        order_id: order_id.to_owned(),
        budget_minor: receivable.cost_budget_minor,
        actual_minor,
    };
    Ok(Some(Outgoing::event(SERVICE, order_id, &overrun, cause)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labour_is_hours_times_rate_rounded() {
        assert_eq!(labour_cost(12.5, 2_000), Some(25_000));
        assert_eq!(labour_cost(0.3333, 100), Some(33));
        assert_eq!(labour_cost(0.0005, 1_000), Some(1));
        assert_eq!(labour_cost(-1.0, 100), None);
        assert_eq!(labour_cost(f64::NAN, 100), None);
        assert_eq!(labour_cost(1e30, 100), None);
    }

    #[test]
    fn missing_rate_books_a_warning() {
        let event = WorkOrderCompleted {
            order_id: "o-1".into(),
            work_order_id: "wo-1".into(),
            hours_by_work_centre: [("SEW".to_owned(), 10.0), ("CUT".to_owned(), 4.0)]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let rates: Rates = [("CUT".to_owned(), ("USD".to_owned(), 1_500))]
            .into_iter()
            .collect();
        let entries = labour(&event, &rates);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].amount, Some((6_000, "USD".to_owned())));
        assert!(entries[1].amount.is_none());
        assert!(entries[1].warning.as_deref().unwrap().contains("SEW"));
    }

    #[test]
    fn rework_hours_are_costed_at_labour_rates_under_rework() {
        let event = ReworkCompleted {
            order_id: "o-1".into(),
            revision: 1,
            work_order_id: "wo-r1".into(),
            hours_by_work_centre: [("SEW".to_owned(), 4.0)].into_iter().collect(),
            ..Default::default()
        };
        let rates: Rates = [("SEW".to_owned(), ("USD".to_owned(), 2_000))]
            .into_iter()
            .collect();
        let entries = rework(&event, &rates);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].category, REWORK);
        assert_eq!(entries[0].amount, Some((8_000, "USD".to_owned())));
        assert!(
            entries[0].description.contains("wo-r1"),
            "{}",
            entries[0].description
        );
    }

    #[test]
    fn malformed_costs_are_refused() {
        let po = PurchaseOrderPlaced {
            order_id: "o-1".into(),
            amount_minor: -5,
            currency: "USD".into(),
            ..Default::default()
        };
        assert!(material(&po).unwrap_err().contains("negative"));
        let shipment = ShipmentBooked {
            freight_cost_minor: 100,
            currency: "usd".into(),
            ..Default::default()
        };
        assert!(freight(&shipment).unwrap_err().contains("currency"));
        let unquoted = ShipmentBooked::default();
        assert!(freight(&unquoted).unwrap().warning.is_some());
    }
}
