//! The notice webhook's signature: HMAC-SHA256 with the deployment's
//! secret over the timestamp and the body, so a receiver can tell a notice
//! from us from a forged one and refuse a replayed one.
//!
//! Every POST carries two headers when a secret is set:
//! - `Gendan-Timestamp`: seconds since the Unix epoch when it was sent;
//! - `Gendan-Signature`: `v1=` and the lower-case hex HMAC-SHA256 of
//!   `"<timestamp>.<body>"` (the body's exact bytes) keyed with the secret.
//!
//! A receiver recomputes the HMAC over the timestamp header, a `.` and the
//! raw body, compares it in constant time with the header's, and refuses a
//! timestamp further than its tolerance (five minutes, say) from its own
//! clock; [`verify`] does all three. Within the tolerance a replay is the
//! same notice again, which the `Idempotency-Key` header de-duplicates. A
//! retried notice is signed afresh with its new timestamp.

use ring::hmac;

/// The version prefix of the signature header's value.
const VERSION: &str = "v1=";

/// The signature header's value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &signed_bytes(timestamp, body));
    format!("{VERSION}{}", hex(tag.as_ref()))
}

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the timestamp {0:?} is not a number of seconds")]
    Timestamp(String),
    #[error("the timestamp is {0} s away from now, beyond the tolerance")]
    Stale(i64),
    #[error("the signature is not a v1 hex HMAC-SHA256")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks a received notice as a receiver should: the signature header
/// against the timestamp header and the raw body, and the timestamp within
/// `tolerance_secs` of `now` (seconds since the epoch).
pub fn verify(
    secret: &[u8],
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), Refusal> {
    let timestamp: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| Refusal::Timestamp(timestamp_header.to_owned()))?;
    let skew = now.saturating_sub(timestamp);
    if skew.abs() > tolerance_secs {
        return Err(Refusal::Stale(skew));
    }
    let tag = signature_header
        .trim()
        .strip_prefix(VERSION)
        .and_then(unhex)
        .ok_or(Refusal::Malformed)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &signed_bytes(timestamp, body), &tag).map_err(|_| Refusal::Mismatch)
}

fn signed_bytes(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    signed
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: i64 = 1_796_500_000;

    #[test]
    fn a_known_vector() {
        // `printf '1.{}' | openssl dgst -sha256 -hmac key`
        let signature = sign(b"key", 1, b"{}");
        assert_eq!(
            signature,
            "v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
        assert_eq!(verify(b"key", "1", &signature, b"{}", 1, 0), Ok(()));
    }

    #[test]
    fn forged_tampered_and_stale_requests_are_refused() {
        let body = br#"{"notice_id":"n-1"}"#;
        let signature = sign(b"secret", NOW, body);
        let stamp = NOW.to_string();
        assert_eq!(
            verify(b"secret", &stamp, &signature, body, NOW, 300),
            Ok(())
        );
        assert_eq!(
            verify(b"other", &stamp, &signature, body, NOW, 300),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify(
                b"secret",
                &stamp,
                &signature,
                br#"{"notice_id":"n-2"}"#,
                NOW,
                300
            ),
            Err(Refusal::Mismatch)
        );
        // The same body under another timestamp is another message.
        let later = (NOW + 1).to_string();
        assert_eq!(
            verify(b"secret", &later, &signature, body, NOW, 300),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify(b"secret", &stamp, &signature, body, NOW + 301, 300),
            Err(Refusal::Stale(301))
        );
        assert_eq!(
            verify(b"secret", "yesterday", &signature, body, NOW, 300),
            Err(Refusal::Timestamp("yesterday".to_owned()))
        );
        assert_eq!(
            verify(b"secret", &stamp, "sha256=abc", body, NOW, 300),
            Err(Refusal::Malformed)
        );
    }

    proptest! {
        #[test]
        fn what_is_signed_verifies(secret in any::<Vec<u8>>(), body in any::<Vec<u8>>(), at in 0i64..4_000_000_000) {
            let signature = sign(&secret, at, &body);
            prop_assert_eq!(verify(&secret, &at.to_string(), &signature, &body, at, 0), Ok(()));
        }
    }
}
