//! Exchange rates: the store behind `SetExchangeRate` / `ListExchangeRates`
//! and the valuing of costs in the order currency with them.
//!
//! A rate says what one unit of `from_currency` is worth in `to_currency`
//! from `valid_from` on, until the pair's next rate ([`crate::fx`] holds
//! the arithmetic). The rate in force for a conversion on a date is the
//! pair's with the latest `valid_from` on or before it; without one, the
//! opposite pair's, inverted ([`in_force`]). Finance keeps no market feed:
//! rates are set by a person (or a tool reading the bank's list) and a cost
//! booked without one is announced (`ExchangeRateMissing`) and waits.
//!
//! [`set`] stores a rate (the same pair and date again replaces it) and,
//! in the same transaction, values every waiting cost entry it covers, in
//! either direction: entries in one of its currencies, of orders whose
//! receivable is in the other, booked on or after `valid_from` and before
//! the pair's next rate. Entries valued already keep their value (a booked
//! cost is not revalued when a rate is corrected, as a labour rate change
//! does not rewrite booked labour). Each order whose entries were valued
//! gets its budget checked again ([`costs::overruns`]) and one
//! `CostsConverted`. An entry booked in the very instant its rate is set
//! may miss both (the booking read no rate, the setting did not see the
//! entry yet); its `ExchangeRateMissing` says so, and setting the same rate
//! again values it.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_messaging::{Cause, Outgoing, outbox};
use gendan_proto::v1::{
    CostsConverted, ExchangeRate, ListExchangeRatesRequest, ListExchangeRatesResponse,
};
use gendan_proto::{date_to_string, timestamp_from};
use sqlx::{PgConnection, PgPool};

use crate::costs::{self, Booked};
use crate::validate::{self, NewExchangeRate};
use crate::{Result, SERVICE, fx, receivables};

/// The rate that converts one currency into another on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInForce {
    /// Units of the target per unit of the source, × [`fx::RATE_SCALE`].
    pub scaled: i64,
    /// The date the stored rate is in force from.
    pub valid_from: NaiveDate,
    /// Derived from the opposite pair's rate.
    pub inverted: bool,
}

/// The rate converting `from` into `to` on `on`: the pair's latest on or
/// before that date, else the opposite pair's inverted. `None` when neither
/// pair has one (or the inverse does not fit the scale).
pub async fn in_force(
    conn: &mut PgConnection,
    from: &str,
    to: &str,
    on: NaiveDate,
) -> sqlx::Result<Option<RateInForce>> {
    // The pair's own rate wins over the opposite one even when that is
    // newer: it is what someone set for this direction.
    let row: Option<(i64, NaiveDate, bool)> = sqlx::query_as(
        "(SELECT rate_scaled, valid_from, false AS inverted FROM exchange_rates \
           WHERE from_currency = $1 AND to_currency = $2 AND valid_from <= $3 \
           ORDER BY valid_from DESC LIMIT 1) \
         UNION ALL \
         (SELECT rate_scaled, valid_from, true AS inverted FROM exchange_rates \
           WHERE from_currency = $2 AND to_currency = $1 AND valid_from <= $3 \
           ORDER BY valid_from DESC LIMIT 1) \
         ORDER BY inverted LIMIT 1",
    )
    .bind(from)
    .bind(to)
    .bind(on)
    .fetch_optional(conn)
    .await?;
    let Some((scaled, valid_from, inverted)) = row else {
        return Ok(None);
    };
    let scaled = if inverted {
        match fx::invert(scaled) {
            Some(scaled) => scaled,
            None => {
                tracing::warn!(from, to, %valid_from, "the inverse of the rate does not fit");
                return Ok(None);
            }
        }
    } else {
        scaled
    };
    Ok(Some(RateInForce {
        scaled,
        valid_from,
        inverted,
    }))
}

/// An amount valued in the order currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Valued {
    /// Already in the order currency: its value is the amount.
    Same,
    Converted {
        order_amount_minor: i64,
        /// The rate used (inverted when it came from the opposite pair).
        scaled: i64,
        /// The date that rate is in force from.
        rate_date: NaiveDate,
    },
    /// No rate on or before the date.
    NoRate,
}

/// `amount_minor` of `currency` in `order_currency` at the rate in force
/// on `on`. `None` only when the value overflows (callers treat it as no
/// rate, with a warning).
pub async fn value(
    conn: &mut PgConnection,
    amount_minor: i64,
    currency: &str,
    order_currency: &str,
    on: NaiveDate,
) -> sqlx::Result<Option<Valued>> {
    if currency == order_currency {
        return Ok(Some(Valued::Same));
    }
    let Some(rate) = in_force(conn, currency, order_currency, on).await? else {
        return Ok(Some(Valued::NoRate));
    };
    Ok(
        fx::convert(amount_minor, currency, order_currency, rate.scaled).map(
            |order_amount_minor| Valued::Converted {
                order_amount_minor,
                scaled: rate.scaled,
                rate_date: rate.valid_from,
            },
        ),
    )
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct RateRow {
    from_currency: String,
    to_currency: String,
    valid_from: NaiveDate,
    rate_scaled: i64,
    source: String,
    recorded_at: DateTime<Utc>,
}

impl RateRow {
    fn to_proto(&self) -> ExchangeRate {
        ExchangeRate {
            from_currency: self.from_currency.clone(),
            to_currency: self.to_currency.clone(),
            rate: fx::format_rate(self.rate_scaled),
            valid_from: date_to_string(self.valid_from),
            source: self.source.clone(),
            recorded_at: Some(timestamp_from(self.recorded_at)),
        }
    }
}

const RATE_COLUMNS: &str =
    "from_currency, to_currency, valid_from, rate_scaled, source, recorded_at";

/// One direction a new rate values waiting entries in: entries in
/// `entry_currency` of orders in `order_currency`, at `scaled`.
#[derive(Debug, Clone, Copy)]
struct Direction<'a> {
    entry_currency: &'a str,
    order_currency: &'a str,
    scaled: i64,
    inverted: bool,
}

/// Entries the rate (`$3` the date it is in force from, `$4`/`$5` its
/// pair) values in a [`Direction`] (`$1` the entries' currency, `$2` the
/// order currency, `$6` inverted): waiting for a value, booked in its
/// time (on or after it, before the pair's next rate) and, through the
/// opposite pair, only while their own direction has no rate of its own
/// (which [`in_force`] would prefer). Orders without a receivable have no
/// currency yet: their entries wait for it.
const WAITING: &str = "FROM cost_entries e JOIN receivables r ON r.order_id = e.order_id \
     WHERE e.currency = $1 AND r.currency = $2 \
       AND e.amount_minor IS NOT NULL AND e.order_amount_minor IS NULL \
       AND e.booked_on >= $3 \
       AND NOT EXISTS (SELECT 1 FROM exchange_rates x \
         WHERE x.from_currency = $4 AND x.to_currency = $5 \
           AND x.valid_from > $3 AND x.valid_from <= e.booked_on) \
       AND (NOT $6 OR NOT EXISTS (SELECT 1 FROM exchange_rates x \
         WHERE x.from_currency = $1 AND x.to_currency = $2 AND x.valid_from <= e.booked_on))";

/// Values the waiting entries of one direction in one statement, rounding
/// as [`fx::convert`] does (amounts are never negative, so half away from
/// zero is half up: `div` truncates an exact numeric quotient). A value
/// beyond `bigint` is left waiting rather than failing the whole rate.
/// Returns (order, category, description, amount, currency) of each entry
/// valued.
async fn value_waiting(
    conn: &mut PgConnection,
    rate: &NewExchangeRate,
    direction: Direction<'_>,
) -> sqlx::Result<Vec<(String, String, String, i64, String)>> {
    let (multiplier, divisor) = fx::factors(direction.entry_currency, direction.order_currency);
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH valued AS ( \
           SELECT e.seq, div(e.amount_minor::numeric * $7 * $8 + $9 / 2, $9) AS order_amount \
           {WAITING}) \
         UPDATE cost_entries e SET order_amount_minor = v.order_amount::bigint, \
           rate_scaled = $7, rate_date = $3, order_currency = $2 \
         FROM valued v \
         WHERE e.seq = v.seq AND v.order_amount <= 9223372036854775807 \
         RETURNING e.order_id, e.category, e.description, e.amount_minor, e.currency"
    )))
    .bind(direction.entry_currency)
    .bind(direction.order_currency)
    .bind(rate.valid_from)
    .bind(&rate.from)
    .bind(&rate.to)
    .bind(direction.inverted)
    .bind(direction.scaled)
    .bind(multiplier)
    .bind(divisor)
    .fetch_all(conn)
    .await
}

/// Stores `rate` and values the waiting cost entries it covers, then
/// checks each affected order's budget and announces `CostsConverted`
/// (see the module doc). Runs in the caller's transaction.
pub async fn set(conn: &mut PgConnection, rate: &NewExchangeRate) -> sqlx::Result<ExchangeRate> {
    let stored: RateRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO exchange_rates (from_currency, to_currency, valid_from, rate_scaled, source) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (from_currency, to_currency, valid_from) DO UPDATE \
           SET rate_scaled = EXCLUDED.rate_scaled, source = EXCLUDED.source, recorded_at = now() \
         RETURNING {RATE_COLUMNS}"
    )))
    .bind(&rate.from)
    .bind(&rate.to)
    .bind(rate.valid_from)
    .bind(rate.scaled)
    .bind(&rate.source)
    .fetch_one(&mut *conn)
    .await?;
    tracing::info!(
        from = %rate.from,
        to = %rate.to,
        valid_from = %rate.valid_from,
        rate = %fx::format_rate(rate.scaled),
        "exchange rate set"
    );

    let mut directions = vec![Direction {
        entry_currency: &rate.from,
        order_currency: &rate.to,
        scaled: rate.scaled,
        inverted: false,
    }];
    match fx::invert(rate.scaled) {
        Some(inverse) => directions.push(Direction {
            entry_currency: &rate.to,
            order_currency: &rate.from,
            scaled: inverse,
            inverted: true,
        }),
        None => tracing::warn!(
            currency = %rate.to,
            "the inverse of the rate does not fit, costs in the currency stay waiting"
        ),
    }
    // An order has one currency, so its entries are valued in one
    // direction at most: the order id alone keys what was valued.
    let mut valued: BTreeMap<String, (Direction<'_>, Vec<Booked>)> = BTreeMap::new();
    for direction in directions {
        for (order_id, category, description, amount_minor, currency) in
            value_waiting(conn, rate, direction).await?
        {
            let entries = &mut valued
                .entry(order_id)
                .or_insert_with(|| (direction, Vec::new()))
                .1;
            entries.push(Booked::new(
                &category,
                &description,
                amount_minor,
                &currency,
            ));
        }
    }

    let mut events = Vec::new();
    // BTreeMap order is order id order: concurrent calls take the order
    // locks in the same sequence and cannot deadlock on them.
    for (order_id, (direction, entries)) in &valued {
        receivables::lock_order(conn, order_id).await?;
        let cause = Cause::root(order_id);
        tracing::info!(%order_id, entries = entries.len(), "costs valued at the new rate");
        let converted = CostsConverted {
            order_id: order_id.clone(),
            from_currency: direction.entry_currency.to_owned(),
            to_currency: direction.order_currency.to_owned(),
            entries: u32::try_from(entries.len()).unwrap_or(u32::MAX),
            rate: fx::format_rate(direction.scaled),
        };
        events.push(Outgoing::event(SERVICE, order_id, &converted, &cause));
        events.extend(costs::overruns(conn, order_id, &cause, entries).await?);
    }
    outbox::write(conn, &events).await?;
    Ok(stored.to_proto())
}

/// The rates, newest `valid_from` first (then by pair): every one on
/// record, or with `on` only the one of each pair in force that day;
/// `currency` keeps the pairs it is a side of.
pub async fn list(
    conn: &mut PgConnection,
    currency: Option<&str>,
    on: Option<NaiveDate>,
    limit: u32,
) -> sqlx::Result<Vec<ExchangeRate>> {
    let rows: Vec<RateRow> = match on {
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {RATE_COLUMNS} FROM exchange_rates \
                 WHERE $1::text IS NULL OR from_currency = $1 OR to_currency = $1 \
                 ORDER BY valid_from DESC, from_currency, to_currency LIMIT $2"
            )))
            .bind(currency)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?
        }
        Some(on) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {RATE_COLUMNS} FROM ( \
                   SELECT DISTINCT ON (from_currency, to_currency) {RATE_COLUMNS} \
                   FROM exchange_rates \
                   WHERE valid_from <= $3 \
                     AND ($1::text IS NULL OR from_currency = $1 OR to_currency = $1) \
                   ORDER BY from_currency, to_currency, valid_from DESC) in_force \
                 ORDER BY valid_from DESC, from_currency, to_currency LIMIT $2"
            )))
            .bind(currency)
            .bind(i64::from(limit))
            .bind(on)
            .fetch_all(conn)
            .await?
        }
    };
    Ok(rows.iter().map(RateRow::to_proto).collect())
}

/// `SetExchangeRate`: checked against "today" (how far ahead a rate may
/// be set), stored and applied in one transaction.
pub async fn set_exchange_rate(
    pool: &PgPool,
    request: &ExchangeRate,
    today: NaiveDate,
) -> Result<ExchangeRate> {
    let rate = validate::exchange_rate(request, today)?;
    let mut tx = pool.begin().await?;
    let stored = set(&mut tx, &rate).await?;
    tx.commit().await?;
    Ok(stored)
}

/// `ListExchangeRates`.
pub async fn list_exchange_rates(
    pool: &PgPool,
    request: &ListExchangeRatesRequest,
) -> Result<ListExchangeRatesResponse> {
    let query = validate::list_exchange_rates(request)?;
    let mut conn = pool.acquire().await?;
    let rates = list(&mut conn, query.currency.as_deref(), query.on, query.limit).await?;
    Ok(ListExchangeRatesResponse { rates })
}
