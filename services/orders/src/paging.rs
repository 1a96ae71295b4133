//! Opaque page tokens for ListOrders.
//!
//! A token is the keyset position after the last order of a page
//! (`created_at` in microseconds, PostgreSQL's precision, and the order id),
//! versioned and hex-encoded so clients treat it as opaque and a future
//! format can be told apart. Decoding is strict: anything else is an invalid
//! `page_token`.

use chrono::DateTime;
use gendan_grpc::FieldError;
use uuid::Uuid;

use crate::store::Cursor;

const VERSION: &str = "o1";

pub fn encode(cursor: Cursor) -> String {
    let plain = format!(
        "{VERSION}:{}:{}",
        cursor.created_at.timestamp_micros(),
        cursor.order_id.simple()
    );
    plain.bytes().map(|b| format!("{b:02x}")).collect()
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

fn parse(token: &str) -> Option<Cursor> {
    if !token.len().is_multiple_of(2) || token.len() > 200 {
        return None;
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let plain = String::from_utf8(bytes).ok()?;
    let mut parts = plain.split(':');
    let (Some(VERSION), Some(micros), Some(order_id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(Cursor {
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
            created_at: Utc::now().trunc_subsecs(6),
            order_id: Uuid::now_v7(),
        };
        let token = encode(cursor);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(decode(&token).unwrap(), Some(cursor));
        assert_eq!(decode("").unwrap(), None);
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
}
