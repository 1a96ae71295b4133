//! `gendan finance`: the figures finance values an order's costs with, and
//! the order's costs themselves.
//!
//! - `rates set` / `rates list` keep the exchange rates (SetExchangeRate,
//!   ListExchangeRates): what one unit of a currency is worth in another
//!   from a date on, and where the rate comes from. Finance values every
//!   cost in the order currency at the rate in force on its booking date,
//!   so a rate is entered from the date it applies, not the day it is typed.
//! - `inspection-rate set` / `show` keep the cost of inspecting one sampled
//!   unit (SetInspectionRate, GetInspectionRate), the inspection line of
//!   estimates and ledgers.
//! - `estimate` and `ledger` print an order's review estimate and its cost
//!   ledger ([`crate::costs_cli`]).
//!
//! Calls are retried on transient failures ([`rpc`]); the output is a
//! table, or JSON with `--output json`.

use clap::Subcommand;
use gendan_proto::v1::{self, ExchangeRate, InspectionRate};
use serde_json::{Value, json};

use crate::cli::{Output, channel, dash, money, print_json, print_table, status_error, write_line};
use crate::costs_cli::{self, FinanceClient};
use crate::retry::rpc;
use crate::stack::Addrs;

#[derive(Debug, Subcommand)]
pub enum FinanceCommand {
    /// Exchange rates: set one from a date on, list them.
    #[command(subcommand)]
    Rates(RatesCommand),
    /// The cost of inspecting one sampled unit: set it, show it.
    #[command(subcommand)]
    InspectionRate(InspectionRateCommand),
    /// The review's cost estimate of an order: plan per category, parts
    /// with their rates, revenue, cost, margin against the customer's floor.
    Estimate { order_id: String },
    /// An order's cost ledger: plan against actual per category with the
    /// variance, then every entry with its rate.
    Ledger { order_id: String },
}

#[derive(Debug, Subcommand)]
pub enum RatesCommand {
    /// Record what one unit of --from is worth in --to from --from-date on
    /// (the same pair and date again replaces the rate).
    Set {
        /// ISO 4217 code of the currency converted from, e.g. CNY.
        #[arg(long)]
        from: String,
        /// ISO 4217 code of the currency converted into, e.g. USD.
        #[arg(long)]
        to: String,
        /// Units of --to for one unit of --from, a decimal such as 0.1408
        /// (at most 10 decimal places).
        #[arg(long)]
        rate: String,
        /// In force from this date, YYYY-MM-DD (default today).
        #[arg(long)]
        from_date: Option<String>,
        /// Where the rate comes from, e.g. "PBOC central parity".
        #[arg(long)]
        source: String,
    },
    /// Rates on record, newest first.
    List {
        /// Only the rates from or into this currency.
        #[arg(long)]
        currency: Option<String>,
        /// Only the rate of each pair in force on this date (YYYY-MM-DD).
        #[arg(long)]
        on: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum InspectionRateCommand {
    /// Set the cost of inspecting one sampled unit.
    Set {
        /// ISO 4217 code the rate is in, e.g. CNY.
        #[arg(long)]
        currency: String,
        /// Minor units (cents, fen) per sampled unit: 500 is 5.00.
        #[arg(long)]
        per_unit: i64,
    },
    /// The rate in force.
    Show,
}

/// ISO 4217 codes are upper case; a person types `cny` as often as `CNY`.
fn currency_code(text: &str) -> String {
    text.trim().to_ascii_uppercase()
}

fn recorded_at(rate: &ExchangeRate) -> String {
    rate.recorded_at
        .as_ref()
        .and_then(gendan_proto::timestamp_to)
        .map(|at| at.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn rate_json(rate: &ExchangeRate) -> Value {
    json!({
        "from_currency": rate.from_currency,
        "to_currency": rate.to_currency,
        "rate": rate.rate,
        "valid_from": rate.valid_from,
        "source": rate.source,
        "recorded_at": recorded_at(rate),
    })
}

fn rate_row(rate: &ExchangeRate) -> Vec<String> {
    vec![
        rate.from_currency.clone(),
        rate.to_currency.clone(),
        rate.rate.clone(),
        rate.valid_from.clone(),
        dash(&rate.source),
        recorded_at(rate),
    ]
}

const RATE_HEADERS: [&str; 6] = ["from", "to", "rate", "valid from", "source", "recorded"];

fn inspection_rate_json(rate: &InspectionRate) -> Value {
    json!({
        "currency": rate.currency,
        "rate_minor_per_unit": rate.rate_minor_per_unit,
        "per_unit": money(rate.rate_minor_per_unit, &rate.currency),
    })
}

fn inspection_rate_text(rate: &InspectionRate) -> String {
    if rate.currency.is_empty() {
        return "no inspection rate set: estimates and ledgers leave inspection out".to_owned();
    }
    format!(
        "inspection costs {} per sampled unit",
        money(rate.rate_minor_per_unit, &rate.currency)
    )
}

pub async fn finance(command: FinanceCommand, output: Output) -> anyhow::Result<()> {
    let addrs = Addrs::from_env();
    let mut finance: FinanceClient =
        v1::finance_service_client::FinanceServiceClient::new(channel(&addrs, "finance").await?);
    match command {
        FinanceCommand::Rates(RatesCommand::Set {
            from,
            to,
            rate,
            from_date,
            source,
        }) => {
            let valid_from = from_date.unwrap_or_else(|| {
                chrono::Utc::now()
                    .date_naive()
                    .format("%Y-%m-%d")
                    .to_string()
            });
            let stored = rpc!(
                finance,
                set_exchange_rate,
                ExchangeRate {
                    from_currency: currency_code(&from),
                    to_currency: currency_code(&to),
                    rate: rate.trim().to_owned(),
                    valid_from,
                    source,
                    recorded_at: None,
                }
            )
            .map_err(status_error)?;
            match output {
                Output::Json => print_json(&rate_json(&stored)),
                Output::Table => write_line(format_args!(
                    "1 {} = {} {} from {} ({})",
                    stored.from_currency,
                    stored.rate,
                    stored.to_currency,
                    stored.valid_from,
                    stored.source
                )),
            }
        }
        FinanceCommand::Rates(RatesCommand::List {
            currency,
            on,
            limit,
        }) => {
            let rates = rpc!(
                finance,
                list_exchange_rates,
                v1::ListExchangeRatesRequest {
                    currency: currency.as_deref().map(currency_code).unwrap_or_default(),
                    on: on.unwrap_or_default(),
                    limit: limit.min(1000),
                }
            )
            .map_err(status_error)?
            .rates;
            match output {
                Output::Json => print_json(&Value::Array(rates.iter().map(rate_json).collect())),
                Output::Table => print_table(&RATE_HEADERS, rates.iter().map(rate_row).collect()),
            }
        }
        FinanceCommand::InspectionRate(InspectionRateCommand::Set { currency, per_unit }) => {
            let stored = rpc!(
                finance,
                set_inspection_rate,
                InspectionRate {
                    currency: currency_code(&currency),
                    rate_minor_per_unit: per_unit,
                }
            )
            .map_err(status_error)?;
            match output {
                Output::Json => print_json(&inspection_rate_json(&stored)),
                Output::Table => write_line(format_args!("{}", inspection_rate_text(&stored))),
            }
        }
        FinanceCommand::InspectionRate(InspectionRateCommand::Show) => {
            let rate = rpc!(
                finance,
                get_inspection_rate,
                v1::GetInspectionRateRequest {}
            );
            // No rate set yet is an answer, not a failure of the command.
            let rate = match rate {
                Ok(rate) => rate,
                Err(status) if status.code() == tonic::Code::NotFound => InspectionRate::default(),
                Err(status) => return Err(status_error(status)),
            };
            match output {
                Output::Json => print_json(&inspection_rate_json(&rate)),
                Output::Table => write_line(format_args!("{}", inspection_rate_text(&rate))),
            }
        }
        FinanceCommand::Estimate { order_id } => {
            costs_cli::estimate(&mut finance, order_id, output).await?
        }
        FinanceCommand::Ledger { order_id } => {
            costs_cli::ledger(&mut finance, order_id, output).await?
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: FinanceCommand,
    }

    #[test]
    fn the_documented_commands_parse() {
        let cli = Cli::try_parse_from([
            "finance",
            "rates",
            "set",
            "--from",
            "cny",
            "--to",
            "USD",
            "--rate",
            "0.1408",
            "--from-date",
            "2026-12-01",
            "--source",
            "PBOC central parity",
        ])
        .unwrap();
        match cli.command {
            FinanceCommand::Rates(RatesCommand::Set {
                from, from_date, ..
            }) => {
                assert_eq!(currency_code(&from), "CNY");
                assert_eq!(from_date.as_deref(), Some("2026-12-01"));
            }
            other => panic!("{other:?}"),
        }

        let cli = Cli::try_parse_from([
            "finance",
            "inspection-rate",
            "set",
            "--currency",
            "CNY",
            "--per-unit",
            "500",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            FinanceCommand::InspectionRate(InspectionRateCommand::Set { per_unit: 500, .. })
        ));
        for args in [
            &[
                "finance",
                "rates",
                "list",
                "--currency",
                "CNY",
                "--on",
                "2026-12-05",
            ][..],
            &["finance", "inspection-rate", "show"][..],
            &[
                "finance",
                "estimate",
                "0193a5e2-7c4f-7d10-9a3e-5b2f8c1d4e6a",
            ][..],
            &["finance", "ledger", "0193a5e2-7c4f-7d10-9a3e-5b2f8c1d4e6a"][..],
        ] {
            Cli::try_parse_from(args).unwrap_or_else(|err| panic!("{args:?}: {err}"));
        }
    }

    #[test]
    fn an_unset_inspection_rate_says_what_it_leaves_out() {
        assert!(inspection_rate_text(&InspectionRate::default()).starts_with("no inspection rate"));
        assert_eq!(
            inspection_rate_text(&InspectionRate {
                currency: "CNY".to_owned(),
                rate_minor_per_unit: 500,
            }),
            "inspection costs 5.00 CNY per sampled unit"
        );
    }
}
