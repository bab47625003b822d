//! The provider port: what the payments service needs from a payment provider
//! (Stripe, or the local simulator), and how a failed attempt is recorded.

use async_trait::async_trait;
use pazar_actors::payments::ProviderIntent;
use pazar_actors::{DomainError, Money, OrderId};

/// How a failed attempt is recorded: the most specific code Stripe gives (a
/// `decline_code` such as `insufficient_funds` before the general `code` such as
/// `card_declined`), then its message. Webhooks and API answers use the same form.
pub fn describe_failure(
    decline_code: Option<&str>,
    code: Option<&str>,
    message: Option<&str>,
) -> String {
    let code = decline_code.or(code).unwrap_or("payment_failed");
    match message {
        Some(message) => format!("{code}: {message}"),
        None => code.to_owned(),
    }
}

/// A payment provider (Stripe, or the local simulator).
#[async_trait]
pub trait PaymentProvider: Send + Sync + std::fmt::Debug + 'static {
    /// `local` or `stripe`.
    fn name(&self) -> &'static str;
    /// The key the payment page uses (Stripe's publishable key).
    fn publishable_key(&self) -> Option<String>;
    /// Where the payment page loads the provider's script from (Stripe.js);
    /// none when the page needs none.
    fn js_url(&self) -> Option<String> {
        None
    }
    /// Creates (or, for the same order, finds) the intent for `amount`.
    async fn create_intent(
        &self,
        order: OrderId,
        amount: Money,
    ) -> Result<ProviderIntent, DomainError>;
    /// Cancels an intent that was not paid.
    async fn cancel_intent(&self, intent_id: &str) -> Result<ProviderIntent, DomainError>;
    /// Refunds a paid intent in full.
    async fn refund(&self, intent_id: &str) -> Result<ProviderIntent, DomainError>;
    /// The intent as the provider has it now (reconciliation, when news went missing).
    async fn retrieve(&self, intent_id: &str) -> Result<ProviderIntent, DomainError>;
}
