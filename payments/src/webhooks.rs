//! `POST /api/v1/webhooks/stripe`: payment news from Stripe.
//!
//! No JWT: the `Stripe-Signature` header is verified instead (HMAC-SHA256 over
//! `timestamp.payload`, constant-time compare, 5-minute tolerance); a missing,
//! wrong or stale signature is a 400 and changes nothing. A verified
//! `payment_intent.*` event is handed to the intent's payment session; duplicated
//! and out-of-order deliveries are harmless because a session never leaves a final
//! status (and a success that lands after its order closed is refunded).

use crate::signature::{SignatureError, SignatureHeader};
use crate::Payments;
use pazar_actors::payments::ProviderIntent;
use pazar_actors::DomainError;
use pazar_http::error::{problem, ApiError};
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{handler, Body, Request};
use serde_json::{json, Value};

/// Seconds a signature stays valid.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Bodies up to this size are verified on the async worker (a few microseconds);
/// larger ones on the blocking pool.
const INLINE_HMAC_BYTES: usize = 16 * 1024;

/// The endpoint's signing secret (`STRIPE_WEBHOOK_SECRET`), never logged.
#[derive(Clone)]
pub struct WebhookSecret(pub String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// The provider news a Stripe event carries, if it is one Pazar follows. The
/// status is read from the intent object with the provider's own mapping.
fn intent_news(event: &Value) -> Option<ProviderIntent> {
    match event["type"].as_str()? {
        "payment_intent.succeeded"
        | "payment_intent.processing"
        | "payment_intent.canceled"
        | "payment_intent.payment_failed" => {
            crate::stripe::news_of_event_object(&event["data"]["object"])
        }
        _ => None,
    }
}

/// The webhook endpoint.
#[handler]
pub async fn stripe_webhook(
    request: &Request,
    body: Body,
    payments: Data<&Payments>,
    secret: Data<&Option<WebhookSecret>>,
) -> poem::Result<Json<Value>> {
    let secret = secret.0.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)",
        )
    })?;
    let refused = |error: SignatureError| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-signature",
            "Invalid webhook signature",
            error.to_string(),
        )
        .with_field("Stripe-Signature")
    };
    // The body is read first (it is bounded by the body limit), so a refused
    // client still gets its answer rather than a reset connection; the header's
    // size, candidates and freshness are checked before any HMAC.
    let payload = body
        .into_vec()
        .await
        .map_err(|e| ApiError::malformed(format!("could not read the body: {e}")))?;
    let header = request
        .headers()
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    let signature = SignatureHeader::parse(header, now, TOLERANCE_SECONDS).map_err(refused)?;
    // One HMAC over the body; a large body is hashed off the async workers.
    let payload = if payload.len() <= INLINE_HMAC_BYTES {
        signature.verify(&payload, &secret.0).map_err(refused)?;
        payload
    } else {
        let key = secret.0.clone();
        tokio::task::spawn_blocking(move || signature.verify(&payload, &key).map(|()| payload))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(refused)?
    };
    let event: Value = serde_json::from_slice(&payload)
        .map_err(|e| ApiError::malformed(format!("the event is not JSON: {e}")))?;
    let Some(news) = intent_news(&event) else {
        return Ok(Json(json!({"received": true, "handled": false})));
    };
    match payments.provider_news(news).await {
        Ok(session) => Ok(Json(json!({
            "received": true,
            "handled": true,
            "status": session.status,
        }))),
        // An intent Pazar never made (another shop on the same account): ignore it.
        Err(DomainError::NotFound { .. }) => Ok(Json(json!({"received": true, "handled": false}))),
        Err(other) => Err(problem(other).into()),
    }
}
