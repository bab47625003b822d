//! Verifying the `Stripe-Signature` header of a webhook.
//!
//! Stripe signs `"{timestamp}.{payload}"` with HMAC-SHA256 under the endpoint's
//! secret and sends `t=<timestamp>,v1=<hex signature>[,v1=…]`. A delivery is
//! accepted only if one `v1` matches (compared in constant time) and the timestamp
//! is within the tolerance of now, so a captured delivery cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a signature was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("the Stripe-Signature header is missing")]
    Missing,
    /// The header has no `t=` or no `v1=`, or they do not parse.
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    /// The timestamp is further from now than the tolerance.
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    /// No `v1` signature matches the payload and secret.
    #[error("no signature matches the payload")]
    Mismatch,
}

/// Checks `header` against `payload` and `secret`; `now` and `tolerance` in seconds.
pub fn verify(
    payload: &[u8],
    header: Option<&str>,
    secret: &str,
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > tolerance {
        return Err(SignatureError::Stale);
    }
    let matches = signatures.iter().any(|signature| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac.verify_slice(signature).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// A header value signing `payload` at `timestamp` (for tests and tooling).
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn a_valid_signature_passes_and_defects_are_named() {
        let payload = br#"{"type":"payment_intent.succeeded"}"#;
        let now = 1_800_000_000;
        let header = sign(payload, SECRET, now);
        assert_eq!(
            verify(payload, Some(&header), SECRET, now + 10, 300),
            Ok(())
        );
        // Another signature alongside (key rotation) is fine.
        let rotated = format!("{header},v1={}", "00".repeat(32));
        assert_eq!(verify(payload, Some(&rotated), SECRET, now, 300), Ok(()));
        assert_eq!(
            verify(b"{\"type\":\"tampered\"}", Some(&header), SECRET, now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(payload, Some(&header), "whsec_other", now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(payload, Some(&header), SECRET, now + 301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(payload, None, SECRET, now, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(payload, Some("v1=abcd"), SECRET, now, 300),
            Err(SignatureError::Malformed)
        );
    }
}
