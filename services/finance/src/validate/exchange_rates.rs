//! Checks of the exchange-rate calls (`SetExchangeRate`,
//! `ListExchangeRates`), in the style of the rest of [`crate::validate`]:
//! the wire message becomes the value [`crate::exchange_rates`] trusts, or
//! a [`FieldError`] naming the field.

use chrono::NaiveDate;
use gendan_grpc::FieldError;
use gendan_proto::v1::{ExchangeRate, ListExchangeRatesRequest};

use super::{currency, date, required_text};
use crate::fx;

/// How far ahead a rate may be set: a budget rate for the coming year is
/// planning; one beyond that is more likely a mistyped year.
const MAX_DAYS_AHEAD: u64 = 366;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// A validated SetExchangeRate request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExchangeRate {
    pub from: String,
    pub to: String,
    /// × [`fx::RATE_SCALE`].
    pub scaled: i64,
    pub valid_from: NaiveDate,
    pub source: String,
}

pub fn exchange_rate(
    request: &ExchangeRate,
    today: NaiveDate,
) -> Result<NewExchangeRate, FieldError> {
    let from = currency(&request.from_currency, "from_currency")?;
    let to = currency(&request.to_currency, "to_currency")?;
    if from == to {
        return Err(FieldError::new(
            "to_currency",
            format!("must differ from from_currency, both are {from}"),
        ));
    }
    let scaled =
        fx::parse_rate(&request.rate).map_err(|problem| FieldError::new("rate", problem))?;
    let valid_from = date(&request.valid_from, "valid_from")?;
    if valid_from > today + chrono::Days::new(MAX_DAYS_AHEAD) {
        return Err(FieldError::new(
            "valid_from",
            format!("{valid_from} is more than {MAX_DAYS_AHEAD} days after today ({today})"),
        ));
    }
    let source = required_text(&request.source, "source")?;
    Ok(NewExchangeRate {
        from,
        to,
        scaled,
        valid_from,
        source,
    })
}

/// A validated ListExchangeRates request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatesQuery {
    pub currency: Option<String>,
    pub on: Option<NaiveDate>,
    pub limit: u32,
}

pub fn list_exchange_rates(request: &ListExchangeRatesRequest) -> Result<RatesQuery, FieldError> {
    let currency = match request.currency.trim() {
        "" => None,
        code => Some(currency(code, "currency")?),
    };
    let on = match request.on.trim() {
        "" => None,
        text => Some(date(text, "on")?),
    };
    let limit = match request.limit {
        0 => DEFAULT_LIMIT,
        limit if limit > MAX_LIMIT => {
            return Err(FieldError::new(
                "limit",
                format!("must be at most {MAX_LIMIT}, got {limit}"),
            ));
        }
        limit => limit,
    };
    Ok(RatesQuery {
        currency,
        on,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
    }

    fn request() -> ExchangeRate {
        ExchangeRate {
            from_currency: "CNY".into(),
            to_currency: "USD".into(),
            rate: "0.1408".into(),
            valid_from: "2026-03-01".into(),
            source: " PBOC central parity ".into(),
            recorded_at: None,
        }
    }

    #[test]
    fn a_rate_is_read_exactly() {
        let rate = exchange_rate(&request(), today()).unwrap();
        assert_eq!(rate.scaled, 1_408_000_000);
        assert_eq!(rate.source, "PBOC central parity");
        let a_year_ahead = ExchangeRate {
            valid_from: "2027-03-03".into(),
            ..request()
        };
        assert!(exchange_rate(&a_year_ahead, today()).is_ok());
    }

    #[test]
    fn exchange_rate_errors_name_the_field() {
        type Change = fn(&mut ExchangeRate);
        let cases: [(Change, &str); 11] = [
            (|r| r.from_currency = "cny".into(), "from_currency"),
            (|r| r.from_currency = String::new(), "from_currency"),
            (|r| r.to_currency = "US".into(), "to_currency"),
            (|r| r.to_currency = "CNY".into(), "to_currency"),
            (|r| r.rate = "0".into(), "rate"),
            (|r| r.rate = "-0.14".into(), "rate"),
            (|r| r.rate = "1e-1".into(), "rate"),
            (|r| r.valid_from = "1 March".into(), "valid_from"),
            (|r| r.valid_from = "2027-03-04".into(), "valid_from"),
            (|r| r.source = "  ".into(), "source"),
            (|r| r.source = "s".repeat(201), "source"),
        ];
        for (change, field) in cases {
            let mut bad = request();
            change(&mut bad);
            assert_eq!(exchange_rate(&bad, today()).unwrap_err().field, field);
        }
    }

    #[test]
    fn listing_defaults_and_limits() {
        let all = list_exchange_rates(&ListExchangeRatesRequest::default()).unwrap();
        assert_eq!(
            all,
            RatesQuery {
                currency: None,
                on: None,
                limit: DEFAULT_LIMIT
            }
        );
        let some = list_exchange_rates(&ListExchangeRatesRequest {
            currency: "USD".into(),
            on: "2026-03-02".into(),
            limit: 1000,
        })
        .unwrap();
        assert_eq!(some.currency.as_deref(), Some("USD"));
        assert_eq!(some.on, Some(today()));
        assert_eq!(some.limit, 1000);
    }

    #[test]
    fn listing_errors_name_the_field() {
        type Change = fn(&mut ListExchangeRatesRequest);
        let cases: [(Change, &str); 3] = [
            (|r| r.currency = "usd".into(), "currency"),
            (|r| r.on = "2026-02-30".into(), "on"),
            (|r| r.limit = 1001, "limit"),
        ];
        for (change, field) in cases {
            let mut bad = ListExchangeRatesRequest::default();
            change(&mut bad);
            assert_eq!(list_exchange_rates(&bad).unwrap_err().field, field);
        }
    }
}
