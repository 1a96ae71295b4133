//! The review's cost estimates: the saga's `EstimateCosts` (dispatched by
//! [`crate::commands`]), the stored
//! estimates the order's budget comes from, and the inspection rate.
//!
//! `EstimateCosts` is keyed by order and revision. The first time, the
//! command is checked ([`validate::estimate_costs`]; a malformed one is
//! rejected to the dead-letter subject with the field named), completed
//! with finance's labour rates, the inspection rate, what the customer owes
//! on its other receivables ([`open_balances`]) and, for each currency other
//! than the order's, the exchange rate in force today
//! ([`exchange_rates::in_force`]), and estimated by [`estimate`] (pure),
//! which also measures that balance plus the order value against the
//! customer's credit limit.
//! The estimate is stored (`cost_estimates`, the encoded `CostEstimate`)
//! and announced by `CostsEstimated`, a fact keyed `estimate:<revision>`;
//! a re-sent revision answers the stored estimate again under the same
//! event id and writes nothing. A missing rate (of a cost, or with a credit
//! limit, of an open balance or of the limit) stores nothing and answers
//! `CostEstimateFailed` naming every missing pair (a new message each
//! time): once the rate is set, the command sent again estimates.
//!
//! The budget: an `OpenReceivable` without one (no `cost_budget_minor`, no
//! `budget_lines`) takes the order's latest estimate at or below its
//! revision, in the receivable's currency, as its budget lines and total
//! ([`apply_budget`]); an amendment's revision takes the new estimate the
//! same way. An explicit budget wins.
//!
//! `GetCostEstimate`, `SetInspectionRate` and `GetInspectionRate` are
//! served from here for [`crate::api`].

use std::collections::BTreeMap;

use chrono::NaiveDate;
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing, outbox};
use gendan_proto::date_to_string;
use gendan_proto::v1::{
    CostBudgetLine, CostEstimate, CostEstimateFailed, CostsEstimated, EstimateCosts, EstimatePart,
    GetCostEstimateRequest, InspectionRate, Money, OpenReceivable,
};
use prost::Message as _;
use sqlx::{PgConnection, PgPool};

use crate::estimate::{self, Estimate, RatesInto};
use crate::validate::{self, CostsToEstimate, NewReceivable};
use crate::{Error, Result, SERVICE, balance, costs, exchange_rates, fx, receivables};

/// The inspection rate: currency and minor units per sampled unit; `None`
/// while none was set.
pub async fn inspection_rate(conn: &mut PgConnection) -> sqlx::Result<Option<(String, i64)>> {
    sqlx::query_as("SELECT currency, rate_minor_per_unit FROM inspection_rate")
        .fetch_optional(conn)
        .await
}

/// `SetInspectionRate`: replaces the rate. Estimates already made and
/// inspections already booked keep the rate they were costed at.
pub async fn set_inspection_rate(
    pool: &PgPool,
    request: &InspectionRate,
) -> Result<InspectionRate> {
    let rate = validate::inspection_rate(request)?;
    let mut conn = pool.acquire().await?;
    sqlx::query(
        "INSERT INTO inspection_rate (singleton, currency, rate_minor_per_unit) \
         VALUES (true, $1, $2) \
         ON CONFLICT (singleton) DO UPDATE SET currency = EXCLUDED.currency, \
           rate_minor_per_unit = EXCLUDED.rate_minor_per_unit, updated_at = now()",
    )
    .bind(&rate.currency)
    .bind(rate.rate_minor_per_unit)
    .execute(&mut *conn)
    .await?;
    tracing::info!(
        currency = %rate.currency,
        rate_minor_per_unit = rate.rate_minor_per_unit,
        "inspection rate set"
    );
    Ok(rate)
}

/// `GetInspectionRate`: the rate, or `InspectionRateNotSet`.
pub async fn get_inspection_rate(pool: &PgPool) -> Result<InspectionRate> {
    let mut conn = pool.acquire().await?;
    let (currency, rate_minor_per_unit) = inspection_rate(&mut conn)
        .await?
        .ok_or(Error::InspectionRateNotSet)?;
    Ok(InspectionRate {
        currency,
        rate_minor_per_unit,
    })
}

/// `GetCostEstimate`: the order's latest estimate, or `CostEstimateNotFound`.
pub async fn get_cost_estimate(
    pool: &PgPool,
    request: &GetCostEstimateRequest,
) -> Result<CostEstimate> {
    let order_id = validate::order_id(&request.order_id)?;
    let mut conn = pool.acquire().await?;
    latest(&mut conn, &order_id)
        .await?
        .ok_or(Error::CostEstimateNotFound(order_id))
}

fn decode(bytes: &[u8]) -> sqlx::Result<CostEstimate> {
    // Only this module writes the column, from the same message type: a
    // row that does not decode is a fault to surface.
    CostEstimate::decode(bytes).map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

/// The estimate of the order's `revision`, when one was made.
async fn find(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
) -> sqlx::Result<Option<CostEstimate>> {
    let stored: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT estimate FROM cost_estimates WHERE order_id = $1 AND revision = $2",
    )
    .bind(order_id)
    .bind(revision)
    .fetch_optional(conn)
    .await?;
    stored.as_deref().map(decode).transpose()
}

/// The order's estimate of the highest revision up to `revision`.
async fn latest_up_to(
    conn: &mut PgConnection,
    order_id: &str,
    revision: i32,
) -> sqlx::Result<Option<CostEstimate>> {
    let stored: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT estimate FROM cost_estimates WHERE order_id = $1 AND revision <= $2 \
         ORDER BY revision DESC LIMIT 1",
    )
    .bind(order_id)
    .bind(revision)
    .fetch_optional(conn)
    .await?;
    stored.as_deref().map(decode).transpose()
}

/// The order's estimate of its latest revision.
pub async fn latest(conn: &mut PgConnection, order_id: &str) -> sqlx::Result<Option<CostEstimate>> {
    latest_up_to(conn, order_id, i32::MAX).await
}

/// What `customer` owes on its receivables other than `order_id`'s, one
/// entry per currency: the outstanding of each open one (or in collection),
/// as [`balance`] figures it for the receivable itself. Nothing for an
/// order that names no customer: "" is nobody, not everyone without a
/// name.
pub async fn open_balances(
    conn: &mut PgConnection,
    customer: &str,
    order_id: &str,
) -> sqlx::Result<Vec<(i64, String)>> {
    if customer.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_currency: BTreeMap<String, i64> = BTreeMap::new();
    for receivable in receivables::open_of_customer(conn, customer, order_id).await? {
        let outstanding_minor = balance::load(conn, &receivable).await?.outstanding_minor();
        if outstanding_minor == 0 {
            continue;
        }
        // Saturating as the balance itself is: each figure is bounded by
        // an order total.
        let sum = by_currency.entry(receivable.currency).or_insert(0);
        *sum = sum.saturating_add(outstanding_minor);
    }
    Ok(by_currency
        .into_iter()
        .map(|(currency, amount_minor)| (amount_minor, currency))
        .collect())
}

/// The estimate as the message carries it.
fn to_proto(order_id: &str, revision: i32, estimate: &Estimate, on: NaiveDate) -> CostEstimate {
    CostEstimate {
        order_id: order_id.to_owned(),
        revision: u32::try_from(revision).unwrap_or(0),
        currency: estimate.currency.clone(),
        revenue_minor: estimate.revenue_minor,
        lines: estimate
            .lines
            .iter()
            .map(|(category, amount_minor)| CostBudgetLine {
                category: (*category).to_owned(),
                amount_minor: *amount_minor,
            })
            .collect(),
        cost_minor: estimate.cost_minor,
        margin_minor: estimate.margin_minor,
        margin_bp: estimate.margin_bp,
        min_margin_bp: estimate.min_margin_bp,
        below_margin: estimate.below_margin.clone().unwrap_or_default(),
        parts: estimate
            .parts
            .iter()
            .map(|part| EstimatePart {
                category: part.category.to_owned(),
                description: part.description.clone(),
                original: Some(Money {
                    amount_minor: part.original.0,
                    currency: part.original.1.clone(),
                }),
                order_amount_minor: part.order_amount_minor,
                rate: part
                    .rate
                    .map(|(scaled, _)| fx::format_rate(scaled))
                    .unwrap_or_default(),
                rate_date: part
                    .rate
                    .map(|(_, from)| date_to_string(from))
                    .unwrap_or_default(),
            })
            .collect(),
        warnings: estimate.warnings.clone(),
        estimated_on: date_to_string(on),
        credit_exposure_minor: estimate.credit_exposure_minor,
        credit_limit_minor: estimate.credit_limit_minor,
        over_credit_limit: estimate.over_credit_limit.clone().unwrap_or_default(),
    }
}

/// `CostsEstimated` for a stored estimate: the same fact every time.
fn estimated(estimate: CostEstimate, cause: &Cause) -> Outgoing {
    let order_id = estimate.order_id.clone();
    let key = format!("estimate:{}", estimate.revision);
    let event = CostsEstimated {
        order_id: order_id.clone(),
        revision: estimate.revision,
        estimate: Some(estimate),
    };
    Outgoing::fact(SERVICE, &order_id, &event, cause, &key)
}

/// `EstimateCosts` (see the module doc). "Today" is the day of the rates
/// and of the estimate.
#[tracing::instrument(
    skip_all,
    fields(order_id = %message.order_id(), revision = command.revision)
)]
pub async fn estimate_costs(
    conn: &mut PgConnection,
    message: &Incoming,
    command: EstimateCosts,
    today: NaiveDate,
) -> Result<(), HandlerError> {
    let sent = message.order_id_or(&command.order_id)?;
    let CostsToEstimate {
        order_id,
        revision,
        customer,
        mut input,
    } = validate::estimate_costs(&sent, &command)
        .map_err(|err| HandlerError::Rejected(format!("EstimateCosts for order {sent}: {err}")))?;
    let cause = Cause::from_incoming(message);
    receivables::lock_order(conn, &order_id).await?;
    if let Some(stored) = find(conn, &order_id, revision).await? {
        tracing::info!("revision estimated already, answering again");
        outbox::write(conn, &[estimated(stored, &cause)]).await?;
        return Ok(());
    }

    input.labour_rates = costs::labour_rates(conn).await?;
    input.inspection_rate = inspection_rate(conn).await?;
    // The customer's other orders, as they stand now: a revision sent again
    // answers the stored estimate, not a new count.
    input.open_balances = open_balances(conn, &customer, &order_id).await?;
    let mut rates = RatesInto::new();
    for from in estimate::foreign_currencies(&input) {
        if let Some(rate) = exchange_rates::in_force(conn, &from, &input.currency, today).await? {
            rates.insert(from, (rate.scaled, rate.valid_from));
        }
    }
    let estimate = match estimate::estimate(&input, &rates, today) {
        Ok(estimate) => estimate,
        Err(err @ estimate::Error::MissingRate { .. }) => {
            let reason = err.to_string();
            tracing::warn!(%reason, "costs cannot be estimated");
            // Nothing is stored: the command sent again after the rate is
            // set estimates, so this answer is a new message each time.
            let failed = CostEstimateFailed {
                order_id: order_id.clone(),
                revision: u32::try_from(revision).unwrap_or(0),
                reason,
            };
            outbox::write(
                conn,
                &[Outgoing::event(SERVICE, &order_id, &failed, &cause)],
            )
            .await?;
            return Ok(());
        }
        // Amounts no order has: the sender is broken, redelivery gives the
        // same answer.
        Err(err @ estimate::Error::Overflow(_)) => {
            return Err(HandlerError::Rejected(format!(
                "EstimateCosts for order {order_id}: {err}"
            )));
        }
    };

    let proto = to_proto(&order_id, revision, &estimate, today);
    sqlx::query(
        "INSERT INTO cost_estimates (order_id, revision, estimate, estimated_on) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&order_id)
    .bind(revision)
    .bind(proto.encode_to_vec())
    .bind(today)
    .execute(&mut *conn)
    .await?;
    tracing::info!(
        cost_minor = estimate.cost_minor,
        margin_bp = estimate.margin_bp,
        below_margin = estimate.below_margin.as_deref().unwrap_or(""),
        credit_exposure_minor = estimate.credit_exposure_minor,
        credit_limit_minor = estimate.credit_limit_minor,
        over_credit_limit = estimate.over_credit_limit.is_some(),
        warnings = estimate.warnings.len(),
        "costs estimated"
    );
    outbox::write(conn, &[estimated(proto, &cause)]).await?;
    Ok(())
}

/// The budget an `OpenReceivable` without one takes from `estimate`: its
/// total and lines, when it is in the receivable's `currency`. `None`: the
/// command's own budget stands (it has one, there is no usable estimate).
pub fn budget_from(
    command: &OpenReceivable,
    currency: &str,
    estimate: Option<&CostEstimate>,
) -> Option<(i64, Vec<(String, i64)>)> {
    if command.cost_budget_minor != 0 || !command.budget_lines.is_empty() {
        return None;
    }
    let estimate = estimate?;
    if estimate.currency != currency
        || estimate.cost_minor < 0
        || estimate.lines.iter().any(|line| line.amount_minor < 0)
    {
        return None;
    }
    let lines = estimate
        .lines
        .iter()
        .map(|line| (line.category.clone(), line.amount_minor))
        .collect();
    Some((estimate.cost_minor, lines))
}

/// Gives `new` (the checked `command` of `revision`) the budget of the
/// order's latest estimate up to that revision, when the command has none
/// ([`budget_from`]). An estimate of a later revision is left for that
/// revision's `OpenReceivable`.
pub async fn apply_budget(
    conn: &mut PgConnection,
    command: &OpenReceivable,
    new: &mut NewReceivable,
    revision: i32,
) -> sqlx::Result<()> {
    if command.cost_budget_minor != 0 || !command.budget_lines.is_empty() {
        return Ok(());
    }
    let estimate = latest_up_to(conn, &new.order_id, revision).await?;
    match budget_from(command, &new.currency, estimate.as_ref()) {
        Some((cost_budget_minor, budget_lines)) => {
            tracing::info!(
                cost_budget_minor,
                estimate_revision = estimate.as_ref().map_or(0, |e| e.revision),
                "budget from the cost estimate"
            );
            new.cost_budget_minor = cost_budget_minor;
            new.budget_lines = budget_lines;
        }
        None => {
            if let Some(estimate) = &estimate {
                tracing::warn!(
                    estimate_currency = %estimate.currency,
                    currency = %new.currency,
                    "the cost estimate is in another currency than the receivable, no budget"
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(currency: &str) -> CostEstimate {
        CostEstimate {
            order_id: "o-1".into(),
            revision: 1,
            currency: currency.into(),
            revenue_minor: 1_000_000,
            lines: vec![
                CostBudgetLine {
                    category: "inspection".into(),
                    amount_minor: 8_000,
                },
                CostBudgetLine {
                    category: "material".into(),
                    amount_minor: 440_800,
                },
            ],
            cost_minor: 448_800,
            ..Default::default()
        }
    }

    fn open(cost_budget_minor: i64) -> OpenReceivable {
        OpenReceivable {
            order_id: "o-1".into(),
            currency: "USD".into(),
            total_minor: 1_000_000,
            cost_budget_minor,
            ..Default::default()
        }
    }

    #[test]
    fn a_command_without_a_budget_takes_the_estimate() {
        assert_eq!(
            budget_from(&open(0), "USD", Some(&stored("USD"))),
            Some((
                448_800,
                vec![
                    ("inspection".to_owned(), 8_000),
                    ("material".to_owned(), 440_800)
                ]
            ))
        );
    }

    #[test]
    fn an_explicit_budget_wins_and_another_currency_is_not_taken() {
        assert_eq!(
            budget_from(&open(750_000), "USD", Some(&stored("USD"))),
            None
        );
        let mut lines_only = open(0);
        lines_only.budget_lines = vec![CostBudgetLine {
            category: "material".into(),
            amount_minor: 1,
        }];
        assert_eq!(budget_from(&lines_only, "USD", Some(&stored("USD"))), None);
        assert_eq!(budget_from(&open(0), "USD", Some(&stored("EUR"))), None);
        assert_eq!(budget_from(&open(0), "USD", None), None);
    }

    #[test]
    fn the_message_carries_every_part_with_its_rate() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let from = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let estimate = Estimate {
            currency: "USD".into(),
            parts: vec![
                estimate::Part {
                    category: costs::MATERIAL,
                    description: "materials priced in CNY (standard cost)".into(),
                    original: (1_000_000, "CNY".into()),
                    order_amount_minor: 140_800,
                    rate: Some((1_408_000_000, from)),
                },
                estimate::Part {
                    category: costs::FREIGHT,
                    description: "freight quote".into(),
                    original: (50_000, "USD".into()),
                    order_amount_minor: 50_000,
                    rate: None,
                },
            ],
            lines: [(costs::FREIGHT, 50_000), (costs::MATERIAL, 140_800)]
                .into_iter()
                .collect(),
            cost_minor: 190_800,
            revenue_minor: 200_000,
            margin_minor: 9_200,
            margin_bp: 460,
            min_margin_bp: 1_500,
            below_margin: Some("margin 4.60% is below the customer's floor of 15.00%".into()),
            credit_exposure_minor: 5_200_000,
            credit_limit_minor: 5_000_000,
            over_credit_limit: Some("order value 2000.00 USD would bring …".into()),
            warnings: vec!["freight: slow lane".into()],
        };
        let proto = to_proto("o-1", 2, &estimate, day);
        assert_eq!(proto.revision, 2);
        assert_eq!(proto.estimated_on, "2026-12-05");
        assert_eq!(proto.lines.len(), 2);
        assert_eq!(proto.lines[0].category, "freight");
        assert_eq!(proto.parts[0].rate, fx::format_rate(1_408_000_000));
        assert_eq!(proto.parts[0].rate_date, "2026-12-01");
        assert_eq!(proto.parts[1].rate, "");
        assert_eq!(proto.parts[1].rate_date, "");
        assert_eq!(
            proto.parts[0].original,
            Some(Money {
                amount_minor: 1_000_000,
                currency: "CNY".into()
            })
        );
        assert_eq!(proto.below_margin, estimate.below_margin.clone().unwrap());
        assert_eq!(
            (proto.credit_exposure_minor, proto.credit_limit_minor),
            (5_200_000, 5_000_000)
        );
        assert_eq!(
            proto.over_credit_limit,
            estimate.over_credit_limit.clone().unwrap()
        );
        assert_eq!(decode(&proto.encode_to_vec()).unwrap(), proto);
    }
}
