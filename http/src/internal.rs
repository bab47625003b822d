//! The internal API's shared secret (`PAZAR_INTERNAL_TOKEN`): what one Pazar
//! process shows another on `/internal/v1/…`. The gateway never routes those
//! paths; the secret keeps anyone else who reaches a process from using them.

use crate::error::ApiError;
use poem::http::header;
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::Arc;

/// The shortest secret accepted (bytes).
pub const MIN_TOKEN_LEN: usize = 32;

/// The shared secret. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct InternalToken(Arc<str>);

impl InternalToken {
    /// Accepts a secret of at least [`MIN_TOKEN_LEN`] bytes.
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "PAZAR_INTERNAL_TOKEN must be at least {MIN_TOKEN_LEN} bytes (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(Self(secret.into()))
    }

    /// The `Authorization` header value a caller sends.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether `header` carries the secret, compared in time independent of where
    /// it first differs.
    pub fn admits(&self, header: Option<&str>) -> bool {
        let Some(presented) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        let (a, b) = (presented.as_bytes(), self.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for InternalToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalToken(…)")
    }
}

/// Middleware: 401 problem+json unless the request carries the secret; nothing
/// behind it runs.
pub async fn require_token<E: Endpoint>(
    endpoint: Arc<E>,
    request: Request,
    token: InternalToken,
) -> poem::Result<Response> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !token.admits(presented) {
        return Err(ApiError::unauthorized(
            "the internal API needs `Authorization: Bearer <PAZAR_INTERNAL_TOKEN>`",
        )
        .into());
    }
    Ok(endpoint.call(request).await?.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_is_admitted() {
        let token = InternalToken::new(&"s".repeat(40)).unwrap();
        assert!(token.admits(Some(&token.bearer())));
        assert!(!token.admits(None));
        assert!(!token.admits(Some(&"s".repeat(40))));
        assert!(!token.admits(Some(&format!("Bearer {}", "s".repeat(39)))));
        assert!(!token.admits(Some(&format!("Bearer {}t", "s".repeat(39)))));
        assert!(InternalToken::new("short").is_err());
        assert_eq!(format!("{token:?}"), "InternalToken(…)");
    }
}
