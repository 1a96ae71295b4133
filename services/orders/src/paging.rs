//! Opaque page tokens for ListOrders and ListCustomers.
//!
//! A token is the keyset position after the last row of a page, versioned
//! and hex-encoded so clients treat it as opaque and a future format can be
//! told apart: for orders `created_at` in microseconds (PostgreSQL's
//! precision) and the order id, led by the slip in days when the list is
//! sorted by slip, for customers the customer id. Decoding is
//! strict: anything else, a token of the other list included, is an
//! invalid `page_token`.

use chrono::DateTime;
use gendan_grpc::FieldError;
use uuid::Uuid;

use crate::store::Cursor;

const VERSION: &str = "o1";
/// Orders sorted by slip: the slip leads the position.
const SLIP_VERSION: &str = "o2";
const CUSTOMERS_VERSION: &str = "c1";
/// Longest token accepted (a customer id of 64 characters makes 134).
const MAX_TOKEN_CHARS: usize = 200;

pub fn encode(cursor: Cursor) -> String {
    match cursor.slip {
        None => hex(&format!(
            "{VERSION}:{}:{}",
            cursor.created_at.timestamp_micros(),
            cursor.order_id.simple()
        )),
        Some(slip) => hex(&format!(
            "{SLIP_VERSION}:{slip}:{}:{}",
            cursor.created_at.timestamp_micros(),
            cursor.order_id.simple()
        )),
    }
}

/// `None` for the empty token (first page).
pub fn decode(token: &str) -> Result<Option<Cursor>, FieldError> {
    if token.is_empty() {
        return Ok(None);
    }
    parse(token)
        .map(Some)
        .ok_or_else(|| FieldError::new("page_token", "not a token from a previous ListOrders"))
}

/// The token of a ListCustomers page that ends with `customer_id`.
pub fn encode_customer(customer_id: &str) -> String {
    hex(&format!("{CUSTOMERS_VERSION}:{customer_id}"))
}

/// The customer id a ListCustomers page starts after; `None` for the empty
/// token (first page).
pub fn decode_customer(token: &str) -> Result<Option<String>, FieldError> {
    if token.is_empty() {
        return Ok(None);
    }
    let plain = unhex(token).ok_or_else(not_a_customers_token)?;
    let customer_id = plain
        .strip_prefix(CUSTOMERS_VERSION)
        .and_then(|rest| rest.strip_prefix(':'))
        .ok_or_else(not_a_customers_token)?;
    // Only ids the master can hold: a forged token cannot inject anything
    // the keyset comparison would not expect.
    crate::customers::validate::customer_id("page_token", customer_id)
        .map_err(|_| not_a_customers_token())?;
    Ok(Some(customer_id.to_owned()))
}

fn not_a_customers_token() -> FieldError {
    FieldError::new("page_token", "not a token from a previous ListCustomers")
}

fn hex(plain: &str) -> String {
    plain.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(token: &str) -> Option<String> {
    if !token.len().is_multiple_of(2) || token.len() > MAX_TOKEN_CHARS {
        return None;
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

fn parse(token: &str) -> Option<Cursor> {
    let plain = unhex(token)?;
    let parts: Vec<&str> = plain.split(':').collect();
    let (slip, micros, order_id) = match parts.as_slice() {
        [VERSION, micros, order_id] => (None, micros, order_id),
        [SLIP_VERSION, slip, micros, order_id] => (Some(slip.parse().ok()?), micros, order_id),
        _ => return None,
    };
    Some(Cursor {
        slip,
        created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        order_id: Uuid::parse_str(order_id).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{SubsecRound, Utc};

    use super::*;

    #[test]
    fn tokens_round_trip() {
        let cursor = Cursor {
            slip: None,
            created_at: Utc::now().trunc_subsecs(6),
            order_id: Uuid::now_v7(),
        };
        let token = encode(cursor);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(decode(&token).unwrap(), Some(cursor));
        assert_eq!(decode("").unwrap(), None);
        for slip in [-3, 0, 12] {
            let by_slip = Cursor {
                slip: Some(slip),
                ..cursor
            };
            assert_eq!(decode(&encode(by_slip)).unwrap(), Some(by_slip));
        }
    }

    #[test]
    fn foreign_tokens_are_refused() {
        let plain_hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        for bad in [
            "zz".to_owned(),
            "abc".to_owned(),
            "é1".to_owned(),
            plain_hex("o1:12:not-a-uuid"),
            plain_hex("o2:12:0190c1e1a2b37c3d8e9f000000000000"),
            plain_hex("o1:x:0190c1e1a2b37c3d8e9f000000000000"),
            plain_hex("o1:12:0190c1e1a2b37c3d8e9f000000000000:extra"),
        ] {
            let err = decode(&bad).unwrap_err();
            assert_eq!(err.field, "page_token", "{bad}");
        }
    }

    #[test]
    fn customer_tokens_round_trip_and_foreign_ones_are_refused() {
        let token = encode_customer("NORDWIND.de_2-a");
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            decode_customer(&token).unwrap().as_deref(),
            Some("NORDWIND.de_2-a")
        );
        assert_eq!(decode_customer("").unwrap(), None);
        let longest = "X".repeat(64);
        assert_eq!(
            decode_customer(&encode_customer(&longest)).unwrap(),
            Some(longest)
        );
        let order_token = encode(Cursor {
            slip: None,
            created_at: Utc::now().trunc_subsecs(6),
            order_id: Uuid::now_v7(),
        });
        for bad in [
            order_token,
            "zz".to_owned(),
            hex("c2:NORDWIND"),
            hex("c1:"),
            hex("c1:has space"),
            hex("NORDWIND"),
        ] {
            assert_eq!(
                decode_customer(&bad).unwrap_err().field,
                "page_token",
                "{bad}"
            );
        }
    }
}
