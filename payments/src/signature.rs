//! Verifying the `Stripe-Signature` header of a webhook.
//!
//! Stripe signs `"{timestamp}.{payload}"` with HMAC-SHA256 under the endpoint's
//! secret and sends `t=<timestamp>,v1=<hex signature>[,v1=…]`. A delivery is
//! accepted only if one `v1` matches (compared in constant time) and the timestamp
//! is within the tolerance of now, so a captured delivery cannot be replayed later.
//! The header is bounded (size and number of candidates) and the HMAC is computed
//! once per request, however many candidates there are: an unauthenticated sender
//! cannot make one request cost more than one hash of its body.

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

/// The longest `Stripe-Signature` header accepted. Stripe sends about 150 bytes
/// (more during a secret rotation); anything near this is not Stripe.
pub const MAX_HEADER_BYTES: usize = 4096;
/// The most `v1` candidates accepted in one header.
pub const MAX_CANDIDATES: usize = 8;

/// A parsed, fresh `Stripe-Signature` header: its timestamp and `v1` candidates.
#[derive(Debug)]
pub struct SignatureHeader {
    timestamp: i64,
    candidates: Vec<[u8; 32]>,
}

impl SignatureHeader {
    /// Parses `header` and checks its timestamp is within `tolerance` seconds of
    /// `now`: cheap, and done before the body is even read. A header over
    /// [`MAX_HEADER_BYTES`] or with more than [`MAX_CANDIDATES`] is malformed.
    pub fn parse(header: Option<&str>, now: i64, tolerance: i64) -> Result<Self, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        if header.len() > MAX_HEADER_BYTES {
            return Err(SignatureError::Malformed);
        }
        let mut timestamp = None;
        let mut candidates = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
                Some(("v1", value)) => {
                    let mut signature = [0u8; 32];
                    if hex::decode_to_slice(value, &mut signature).is_ok() {
                        if candidates.len() == MAX_CANDIDATES {
                            return Err(SignatureError::Malformed);
                        }
                        candidates.push(signature);
                    }
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
        if candidates.is_empty() {
            return Err(SignatureError::Malformed);
        }
        if now
            .checked_sub(timestamp)
            .is_none_or(|age| age.unsigned_abs() > tolerance.unsigned_abs())
        {
            return Err(SignatureError::Stale);
        }
        Ok(Self {
            timestamp,
            candidates,
        })
    }

    /// Whether a candidate signs `payload` under `secret`: the HMAC is computed
    /// once, then compared with each candidate in constant time.
    pub fn verify(&self, payload: &[u8], secret: &str) -> Result<(), SignatureError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(self.timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        let expected = mac.finalize().into_bytes();
        // Every candidate is compared, matching or not: the time taken says nothing.
        let matches = self.candidates.iter().fold(false, |found, candidate| {
            found | equal(candidate, &expected)
        });
        if matches {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// Constant-time equality of two 32-byte strings.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Checks `header` against `payload` and `secret`; `now` and `tolerance` in seconds.
pub fn verify(
    payload: &[u8],
    header: Option<&str>,
    secret: &str,
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    SignatureHeader::parse(header, now, tolerance)?.verify(payload, secret)
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

    /// The amplification found from outside: thousands of `v1=` entries each cost
    /// an HMAC over the whole body. Now a header is bounded in size and candidates,
    /// and the HMAC is computed once whatever the count.
    #[test]
    fn huge_or_crowded_headers_are_refused_before_any_hmac() {
        let now = 1_800_000_000;
        let payload = vec![b'x'; 1024];
        let header = sign(&payload, SECRET, now);
        let crowded = format!("{header}{}", ",v1=00".repeat(8_000));
        assert_eq!(
            verify(&payload, Some(&crowded), SECRET, now, 300),
            Err(SignatureError::Malformed)
        );
        let zeros = format!(",v1={}", "00".repeat(32));
        let nine = format!("t={now}{}", zeros.repeat(MAX_CANDIDATES + 1));
        assert!(nine.len() <= MAX_HEADER_BYTES);
        assert_eq!(
            SignatureHeader::parse(Some(&nine), now, 300).unwrap_err(),
            SignatureError::Malformed
        );
        // Up to the limit, the real signature is found among decoys.
        let decoys = zeros.repeat(MAX_CANDIDATES - 1);
        let rotated = format!("{header}{decoys}");
        assert_eq!(verify(&payload, Some(&rotated), SECRET, now, 300), Ok(()));
        // A timestamp that would overflow is stale, not a panic.
        assert_eq!(
            verify(
                &payload,
                Some(&format!("t={}{zeros}", i64::MIN)),
                SECRET,
                1,
                300
            ),
            Err(SignatureError::Stale)
        );
    }
}
