//! The `stripe` payment provider: PaymentIntents and Refunds through async-stripe 1.0.
//!
//! Pazar creates one PaymentIntent per order, for the order's stored total, with
//! `pazar-order-<order id>` as Stripe's `Idempotency-Key`: a retried create (after
//! a crash between Stripe's answer and Pazar's commit) returns the same intent
//! instead of making a second one. The customer's browser confirms the intent with
//! Stripe.js (automatic confirmation); Pazar learns the outcome from the signed
//! webhook (`webhooks.rs`) or, when that never comes, from [`StripePayments`]'s
//! `retrieve` during reconciliation.
//!
//! Only the `payment_intent` and `refund` parts of async-stripe are compiled. The
//! API base URL is a setting so tests can point the provider at a Stripe-compatible
//! server on loopback (`localstripe`, see the README).

use crate::provider::{describe_failure, PaymentProvider};
use async_trait::async_trait;
use pazar_actors::payments::{IntentStatus, ProviderIntent};
use pazar_actors::{DomainError, Money, OrderId};
use std::collections::HashMap;
use std::str::FromStr;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::payment_intent::{
    CancelPaymentIntent, CreatePaymentIntent, RetrievePaymentIntent,
};
use stripe_core::refund::CreateRefund;
use stripe_shared::PaymentIntent;

/// The longest one Stripe request may take.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How to reach Stripe.
#[derive(Clone)]
pub struct StripeSettings {
    /// `sk_…`; sent as a bearer token, never logged.
    pub secret_key: String,
    /// `pk_…`, handed to the payment page.
    pub publishable_key: Option<String>,
    /// Default `https://api.stripe.com/`; tests use a local Stripe-compatible server.
    pub api_base: Option<String>,
    /// Where the payment page loads Stripe.js from (default
    /// [`STRIPE_JS_URL`]); tests use localstripe's.
    pub js_url: Option<String>,
}

/// Stripe.js, as Stripe serves it.
pub const STRIPE_JS_URL: &str = "https://js.stripe.com/v3/";

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSettings")
            .field("secret_key", &"[redacted]")
            .field("publishable_key", &self.publishable_key)
            .field("api_base", &self.api_base)
            .field("js_url", &self.js_url)
            .finish()
    }
}

/// Why the provider could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StripeSetupError {
    /// The secret key is missing or is not a secret key.
    #[error("STRIPE_SECRET_KEY must be a Stripe secret key (sk_…)")]
    SecretKey,
    /// The API base URL or another setting was refused by the client.
    #[error("invalid Stripe settings: {0}")]
    Client(String),
}

/// The Stripe provider.
pub struct StripePayments {
    client: Client,
    publishable_key: Option<String>,
    js_url: String,
}

impl std::fmt::Debug for StripePayments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripePayments")
    }
}

impl StripePayments {
    /// A provider talking to the Stripe API (or to `settings.api_base`).
    pub fn new(settings: StripeSettings) -> Result<Self, StripeSetupError> {
        if !settings.secret_key.starts_with("sk_") && !settings.secret_key.starts_with("rk_") {
            return Err(StripeSetupError::SecretKey);
        }
        // A hung Stripe must not hold the order's payment actor for long: each
        // request gives up after REQUEST_TIMEOUT and the session stays as it was.
        let mut builder = ClientBuilder::new(settings.secret_key).timeout(REQUEST_TIMEOUT);
        if let Some(base) = settings.api_base {
            // The client appends `v1/…` to the base as it is.
            let base = if base.ends_with('/') {
                base
            } else {
                format!("{base}/")
            };
            builder = builder.url(base);
        }
        let client = builder
            .build()
            .map_err(|e| StripeSetupError::Client(e.to_string()))?;
        Ok(Self {
            client,
            publishable_key: settings.publishable_key,
            js_url: settings.js_url.unwrap_or_else(|| STRIPE_JS_URL.to_owned()),
        })
    }

    async fn retrieve_intent(&self, intent_id: &str) -> Result<PaymentIntent, DomainError> {
        RetrievePaymentIntent::new(intent_id)
            .send(&self.client)
            .await
            .map_err(unavailable)
    }
}

/// Stripe could not be reached or refused the call: the caller may try again later.
fn unavailable(error: StripeError) -> DomainError {
    let detail = match &error {
        StripeError::Stripe(api, status) => format!(
            "Stripe answered {status}: {}",
            api.message.as_deref().unwrap_or("no message")
        ),
        other => other.to_string(),
    };
    tracing::warn!(%detail, "Stripe call failed");
    DomainError::Unavailable(format!("payment provider: {detail}"))
}

/// A PaymentIntent status, as Stripe names it, in Pazar's terms: the one mapping,
/// used for API answers and webhook events alike.
pub fn intent_status(status: &str) -> IntentStatus {
    match status {
        "succeeded" => IntentStatus::Succeeded,
        "processing" | "requires_capture" => IntentStatus::Processing,
        "canceled" => IntentStatus::Canceled,
        // Waiting for the customer: a card (`requires_payment_method`), a
        // confirmation or 3-D Secure; and statuses newer than this code.
        _ => IntentStatus::RequiresPaymentMethod,
    }
}

/// A PaymentIntent in Pazar's terms.
fn news(intent: &PaymentIntent) -> ProviderIntent {
    let status = intent_status(intent.status.as_str());
    let last_error = match status {
        IntentStatus::RequiresPaymentMethod => intent.last_payment_error.as_ref().map(|error| {
            describe_failure(
                error.decline_code.as_deref(),
                error.code.as_ref().map(|code| code.as_str()),
                error.message.as_deref(),
            )
        }),
        _ => None,
    };
    ProviderIntent {
        id: intent.id.as_str().to_owned(),
        client_secret: intent.client_secret.clone().unwrap_or_default(),
        status,
        last_error,
    }
}

/// The news a PaymentIntent object of a webhook event (`data.object`) carries,
/// read with the same mapping as [`news`]; `None` without an id. A webhook
/// reports an intent back at `requires_payment_method` only when an attempt
/// failed, so that status always carries the failure.
pub fn news_of_event_object(object: &serde_json::Value) -> Option<ProviderIntent> {
    let status = intent_status(object["status"].as_str().unwrap_or_default());
    let last_error = (status == IntentStatus::RequiresPaymentMethod)
        .then(|| &object["last_payment_error"])
        .map(|error| {
            describe_failure(
                error["decline_code"].as_str(),
                error["code"].as_str(),
                error["message"].as_str(),
            )
        });
    Some(ProviderIntent {
        id: object["id"].as_str()?.to_owned(),
        client_secret: object["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        status,
        last_error,
    })
}

fn idempotency_key(key: String) -> Result<RequestStrategy, DomainError> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| DomainError::Unavailable(format!("idempotency key: {e}")))
}

#[async_trait]
impl PaymentProvider for StripePayments {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn publishable_key(&self) -> Option<String> {
        self.publishable_key.clone()
    }

    fn js_url(&self) -> Option<String> {
        Some(self.js_url.clone())
    }

    async fn create_intent(
        &self,
        order: OrderId,
        amount: Money,
    ) -> Result<ProviderIntent, DomainError> {
        let currency =
            stripe_types::Currency::from_str(&amount.currency.as_str().to_ascii_lowercase())
                .unwrap_or_default();
        let intent = CreatePaymentIntent::new(amount.amount, currency)
            .metadata(HashMap::from([("order_id".to_owned(), order.to_string())]))
            .customize()
            .request_strategy(idempotency_key(format!("pazar-order-{order}"))?)
            .send(&self.client)
            .await
            .map_err(unavailable)?;
        Ok(news(&intent))
    }

    async fn cancel_intent(&self, intent_id: &str) -> Result<ProviderIntent, DomainError> {
        match CancelPaymentIntent::new(intent_id).send(&self.client).await {
            Ok(intent) => Ok(news(&intent)),
            // Stripe refuses to cancel an intent that is already final (succeeded,
            // or cancelled before): what it is now is the answer.
            Err(StripeError::Stripe(_, 400)) => Ok(news(&self.retrieve_intent(intent_id).await?)),
            Err(other) => Err(unavailable(other)),
        }
    }

    async fn refund(&self, intent_id: &str) -> Result<ProviderIntent, DomainError> {
        let refund = CreateRefund::new()
            .payment_intent(intent_id)
            .customize()
            .request_strategy(idempotency_key(format!("pazar-refund-{intent_id}"))?)
            .send(&self.client)
            .await
            .map_err(unavailable)?;
        match refund.status.as_deref() {
            Some("failed") | Some("canceled") => {
                return Err(DomainError::Unavailable(format!(
                    "payment provider: refund {} is {}",
                    refund.id.as_str(),
                    refund.status.as_deref().unwrap_or_default()
                )))
            }
            // succeeded, pending, requires_action: the money is on its way back.
            _ => {}
        }
        let mut intent = news(&self.retrieve_intent(intent_id).await?);
        intent.status = IntentStatus::Refunded;
        intent.last_error = None;
        Ok(intent)
    }

    async fn retrieve(&self, intent_id: &str) -> Result<ProviderIntent, DomainError> {
        Ok(news(&self.retrieve_intent(intent_id).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Webhook objects and API answers go through one status mapping.
    #[test]
    fn a_webhook_object_reads_like_an_api_answer() {
        for (stripe, pazar) in [
            ("succeeded", IntentStatus::Succeeded),
            ("processing", IntentStatus::Processing),
            ("requires_capture", IntentStatus::Processing),
            ("canceled", IntentStatus::Canceled),
            ("requires_action", IntentStatus::RequiresPaymentMethod),
            (
                "a_status_from_the_future",
                IntentStatus::RequiresPaymentMethod,
            ),
        ] {
            assert_eq!(intent_status(stripe), pazar, "{stripe}");
            let api: stripe_shared::PaymentIntentStatus = stripe.parse().unwrap();
            assert_eq!(
                intent_status(api.as_str()),
                pazar,
                "{stripe} via the API type"
            );
        }
        let failed = news_of_event_object(&serde_json::json!({
            "id": "pi_1", "status": "requires_payment_method",
            "last_payment_error": {"decline_code": "insufficient_funds", "message": "No."}
        }))
        .unwrap();
        assert_eq!(failed.status, IntentStatus::RequiresPaymentMethod);
        assert_eq!(
            failed.last_error.as_deref(),
            Some("insufficient_funds: No.")
        );
        assert!(news_of_event_object(&serde_json::json!({"status": "succeeded"})).is_none());
    }
}
