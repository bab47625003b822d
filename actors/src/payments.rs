//! Payments: the provider port, payment sessions, and the `PaymentSession(order_id)`
//! actor that follows one order's payment at its provider.
//!
//! A session is created from the order's *stored* total (never a client's number)
//! with the order id as the provider's idempotency key, so a redelivered event or a
//! restart never makes a second intent. Provider news (the local simulator's
//! confirmation now; Stripe webhooks and reconciliation next) arrives as `Update`
//! messages; a status change is stored with its `payments.*` event in one
//! transaction. Terminal statuses never go back, so duplicated or out-of-order news
//! is harmless.

use crate::events::Event;
use crate::store_writer::{StoreWriter, Write};
use crate::{DomainError, Money, OrderId, OrderStatus, Store};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_events::payments as events;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use std::sync::Arc;

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

    fn of(intent: &ProviderIntent) -> Self {
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
    fn event(&self, reason: Option<&str>) -> Option<Event> {
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

/// The messages a PaymentSession actor understands.
pub enum PaymentSessionMessage {
    /// Creates the session and its intent if there is none; `true` when created now.
    Start {
        /// The session.
        reply: RpcReplyPort<Result<(PaymentSession, bool), DomainError>>,
    },
    /// The session, if any.
    Get {
        /// Answered at once.
        reply: RpcReplyPort<Option<PaymentSession>>,
    },
    /// News from the provider about the session's intent.
    Update {
        /// The intent as the provider reports it.
        intent: ProviderIntent,
        /// The session after the news.
        reply: RpcReplyPort<Result<PaymentSession, DomainError>>,
    },
    /// The order was cancelled or expired: cancel the intent unless it was paid.
    Cancel {
        /// The session after cancelling (None when there was none).
        reply: RpcReplyPort<Result<Option<PaymentSession>, DomainError>>,
    },
    /// Give a succeeded payment's money back (a no-op when already refunded).
    Refund {
        /// Why, kept in the `payments.refunded` event.
        reason: String,
        /// The session after the refund.
        reply: RpcReplyPort<Result<PaymentSession, DomainError>>,
    },
}

/// What a PaymentSession actor is started with.
pub struct PaymentSessionArgs {
    /// The order.
    pub order_id: OrderId,
    /// Where sessions are kept.
    pub store: Arc<dyn Store>,
    /// The configured provider.
    pub provider: Arc<dyn PaymentProvider>,
    /// Commits the session's updates (group commit).
    pub writer: StoreWriter,
}

/// The actor's state.
pub struct PaymentSessionState {
    order_id: OrderId,
    session: Option<PaymentSession>,
    store: Arc<dyn Store>,
    provider: Arc<dyn PaymentProvider>,
    writer: StoreWriter,
}

impl PaymentSessionState {
    async fn start(&mut self) -> Result<(PaymentSession, bool), DomainError> {
        if let Some(session) = &self.session {
            return Ok((session.clone(), false));
        }
        let order = self
            .store
            .order(self.order_id)
            .await?
            .ok_or(DomainError::NotFound { what: "order" })?;
        if order.status != OrderStatus::PendingPayment {
            return Err(DomainError::conflict(
                "order_not_payable",
                format!("the order is {}", order.status.as_str()),
            ));
        }
        let intent = self.provider.create_intent(order.id, order.total).await?;
        let now = crate::now();
        let session = PaymentSession {
            order_id: order.id,
            provider: self.provider.name().to_owned(),
            status: PaymentStatus::of(&intent),
            intent_id: intent.id,
            client_secret: intent.client_secret,
            amount: order.total,
            last_error: intent.last_error,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_payment_session(&session).await?;
        self.session = Some(session.clone());
        Ok((session, true))
    }

    /// Applies provider news; `reason` is recorded in the event (e.g. why a refund).
    async fn update(
        &mut self,
        intent: ProviderIntent,
        reason: Option<&str>,
    ) -> Result<PaymentSession, DomainError> {
        let current = self
            .session
            .clone()
            .ok_or(DomainError::NotFound { what: "payment" })?;
        if intent.id != current.intent_id {
            return Err(DomainError::conflict(
                "wrong_intent",
                "news about another intent",
            ));
        }
        let status = PaymentStatus::of(&intent);
        let unchanged = status == current.status && intent.last_error == current.last_error;
        // Only a refund may follow success; nothing follows a cancel or a refund.
        let refund_after_success =
            current.status == PaymentStatus::Succeeded && status == PaymentStatus::Refunded;
        if unchanged || (current.status.is_final() && !refund_after_success) {
            // Duplicate or late news: nothing to do.
            return Ok(current);
        }
        let mut next = current;
        next.status = status;
        next.last_error = intent.last_error;
        next.updated_at = crate::now();
        let event = next.event(reason);
        self.writer
            .write(Write::Payment {
                session: Box::new(next.clone()),
                event: event.map(Box::new),
            })
            .await?;
        self.session = Some(next.clone());
        Ok(next)
    }

    async fn refund(&mut self, reason: String) -> Result<PaymentSession, DomainError> {
        let current = self
            .session
            .clone()
            .ok_or(DomainError::NotFound { what: "payment" })?;
        match current.status {
            PaymentStatus::Refunded => return Ok(current),
            PaymentStatus::Succeeded => {}
            other => {
                return Err(DomainError::conflict(
                    "not_refundable",
                    format!("the payment is {}", other.as_str()),
                ))
            }
        }
        let intent = self.provider.refund(&current.intent_id).await?;
        self.update(intent, Some(&reason)).await
    }

    async fn cancel(&mut self) -> Result<Option<PaymentSession>, DomainError> {
        let Some(current) = self.session.clone() else {
            return Ok(None);
        };
        if current.status.is_final() {
            return Ok(Some(current));
        }
        let intent = self.provider.cancel_intent(&current.intent_id).await?;
        self.update(intent, Some("the order was closed"))
            .await
            .map(Some)
    }
}

/// The actor: behaviour only.
pub struct PaymentSessionActor;

impl Actor for PaymentSessionActor {
    type Msg = PaymentSessionMessage;
    type State = PaymentSessionState;
    type Arguments = PaymentSessionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<PaymentSessionMessage>,
        args: PaymentSessionArgs,
    ) -> Result<PaymentSessionState, ActorProcessingErr> {
        let session = args.store.payment_session(args.order_id).await?;
        Ok(PaymentSessionState {
            order_id: args.order_id,
            session,
            store: args.store,
            provider: args.provider,
            writer: args.writer,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<PaymentSessionMessage>,
        message: PaymentSessionMessage,
        state: &mut PaymentSessionState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            PaymentSessionMessage::Start { reply } => {
                let _ = reply.send(state.start().await);
            }
            PaymentSessionMessage::Get { reply } => {
                let _ = reply.send(state.session.clone());
            }
            PaymentSessionMessage::Update { intent, reply } => {
                let _ = reply.send(state.update(intent, None).await);
            }
            PaymentSessionMessage::Cancel { reply } => {
                let _ = reply.send(state.cancel().await);
            }
            PaymentSessionMessage::Refund { reason, reply } => {
                let _ = reply.send(state.refund(reason).await);
            }
        }
        Ok(())
    }
}
