//! Events the payments service publishes: one per final-ish status a payment
//! session enters, each carrying the session as it stands after the move.

use crate::Money;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a payment session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Waiting for the customer's card.
    RequiresPayment,
    /// The provider is working on it.
    Processing,
    /// Paid.
    Succeeded,
    /// The last attempt failed; another card may be tried until the order expires.
    Failed,
    /// The order was cancelled or expired; the intent was cancelled.
    Cancelled,
    /// Paid, then refunded.
    Refunded,
}

/// A payment session after the move its event reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentSnapshot {
    /// The order paid for (also the event's subject).
    pub order_id: Uuid,
    /// `local` or `stripe`.
    pub provider: String,
    /// The provider's payment intent.
    pub intent_id: String,
    /// The status just entered.
    pub status: PaymentStatus,
    /// The amount of the intent (the order's total).
    pub amount: Money,
    /// Why the last attempt failed, as the provider said.
    pub last_error: Option<String>,
    /// Why the move happened, when Pazar made it (e.g. why a refund).
    pub reason: Option<String>,
}

/// `payments.succeeded`: the customer paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PaymentSucceeded(pub PaymentSnapshot);

/// `payments.failed`: an attempt failed; another card may be tried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PaymentFailed(pub PaymentSnapshot);

/// `payments.cancelled`: the order closed unpaid; the intent was cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PaymentCancelled(pub PaymentSnapshot);

/// `payments.refunded`: the money went back to the customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PaymentRefunded(pub PaymentSnapshot);
