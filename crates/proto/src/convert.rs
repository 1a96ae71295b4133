//! Conversions between wire types (protobuf `Timestamp`, `YYYY-MM-DD` strings)
//! and chrono types.

use chrono::{DateTime, NaiveDate, Utc};
use prost_types::Timestamp;

pub fn timestamp_from(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

/// `None` when the timestamp is out of chrono's range or has invalid nanos.
pub fn timestamp_to(ts: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(ts.nanos).ok()?;
    DateTime::from_timestamp(ts.seconds, nanos)
}

/// Parses a calendar date in the `YYYY-MM-DD` form used on the wire.
pub fn date_from_str(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

pub fn date_to_string(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let now = Utc::now();
        assert_eq!(timestamp_to(&timestamp_from(now)), Some(now));
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(
            date_from_str("2026-12-01").map(date_to_string).as_deref(),
            Some("2026-12-01")
        );
        assert!(date_from_str("2026-13-01").is_none());
        assert!(date_from_str("01/12/2026").is_none());
        assert!(date_from_str("").is_none());
    }
}
