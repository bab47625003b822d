//! Payment records: a payment session and a provider's intent as Pazar stores
//! and reports them. They are part of the shared kernel because the store writer
//! commits sessions' updates in the same group commits as stock and orders; the
//! payments service (`payments/`) owns the actor, the providers and the rules.

use crate::events::Event;
use crate::{Money, OrderId};
use chrono::{DateTime, Utc};
use pazar_events::payments as events;
use serde::Serialize;

/// Where a provider's payment intent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Waiting for a card (again, after a failed attempt: see `last_error`).
    RequiresPaymentMethod,
    /// The provider is working on it.
    Processing,
    /// Paid.
    Succeeded,
    /// Cancelled; can no longer be paid.
    Canceled,
    /// Paid, then refunded.
    Refunded,
}

impl IntentStatus {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
            Self::Refunded => "refunded",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "requires_payment_method" => Self::RequiresPaymentMethod,
            "processing" => Self::Processing,
            "succeeded" => Self::Succeeded,
            "canceled" => Self::Canceled,
            "refunded" => Self::Refunded,
            _ => return None,
        })
    }
}

/// A provider's payment intent, as far as Pazar cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderIntent {
    /// The provider's id (`pi_…`).
    pub id: String,
    /// What the payment page needs to confirm it.
    pub client_secret: String,
    /// Where it stands.
    pub status: IntentStatus,
    /// Why the last attempt failed, e.g. `card_declined`.
    pub last_error: Option<String>,
}

/// Where a payment session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

impl PaymentStatus {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RequiresPayment => "requires_payment",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "requires_payment" => Self::RequiresPayment,
            "processing" => Self::Processing,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "refunded" => Self::Refunded,
            _ => return None,
        })
    }

    /// Succeeded, cancelled and refunded sessions never change back.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Cancelled | Self::Refunded)
    }

    /// The session status an intent's status means.
    pub fn of(intent: &ProviderIntent) -> Self {
        match intent.status {
            IntentStatus::Succeeded => Self::Succeeded,
            IntentStatus::Processing => Self::Processing,
            IntentStatus::Canceled => Self::Cancelled,
            IntentStatus::Refunded => Self::Refunded,
            IntentStatus::RequiresPaymentMethod if intent.last_error.is_some() => Self::Failed,
            IntentStatus::RequiresPaymentMethod => Self::RequiresPayment,
        }
    }
}

/// One order's payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaymentSession {
    /// The order paid for.
    pub order_id: OrderId,
    /// `local` or `stripe`.
    pub provider: String,
    /// The provider's intent.
    pub intent_id: String,
    /// For the payment page.
    pub client_secret: String,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The order's stored total.
    pub amount: Money,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl PaymentSession {
    /// The session as its events carry it; `reason` says why Pazar made the move.
    fn snapshot(&self, reason: Option<&str>) -> events::PaymentSnapshot {
        events::PaymentSnapshot {
            order_id: self.order_id.0,
            provider: self.provider.clone(),
            intent_id: self.intent_id.clone(),
            status: match self.status {
                PaymentStatus::RequiresPayment => events::PaymentStatus::RequiresPayment,
                PaymentStatus::Processing => events::PaymentStatus::Processing,
                PaymentStatus::Succeeded => events::PaymentStatus::Succeeded,
                PaymentStatus::Failed => events::PaymentStatus::Failed,
                PaymentStatus::Cancelled => events::PaymentStatus::Cancelled,
                PaymentStatus::Refunded => events::PaymentStatus::Refunded,
            },
            amount: self.amount.into(),
            last_error: self.last_error.clone(),
            reason: reason.map(str::to_owned),
        }
    }

    /// The event for a move into the current status, if it is one that others
    /// hear about (`payments.<status>`).
    pub fn event(&self, reason: Option<&str>) -> Option<Event> {
        let snapshot = self.snapshot(reason);
        let id = self.order_id;
        Some(match self.status {
            PaymentStatus::Succeeded => Event::of(id, &events::PaymentSucceeded(snapshot)),
            PaymentStatus::Failed => Event::of(id, &events::PaymentFailed(snapshot)),
            PaymentStatus::Cancelled => Event::of(id, &events::PaymentCancelled(snapshot)),
            PaymentStatus::Refunded => Event::of(id, &events::PaymentRefunded(snapshot)),
            PaymentStatus::RequiresPayment | PaymentStatus::Processing => return None,
        })
    }
}
