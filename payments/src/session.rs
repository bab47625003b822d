//! The `PaymentSession(order_id)` actor: it follows one order's payment at its
//! provider.
//!
//! A session is created from the order's *stored* total (never a client's number)
//! with the order id as the provider's idempotency key, so a redelivered event or a
//! restart never makes a second intent. Provider news (the local simulator's
//! confirmation, Stripe webhooks, reconciliation) arrives as `Update` messages; a
//! status change is committed with its `payments.*` event by the store writer.
//! Terminal statuses never go back, so duplicated or out-of-order news is harmless.

use crate::provider::PaymentProvider;
use crate::store::PaymentStore;
use crate::OrderDesk;
use pazar_actors::payments::{PaymentSession, PaymentStatus, ProviderIntent};
use pazar_actors::store_writer::{StoreWriter, Write};
use pazar_actors::{DomainError, Order, OrderId, OrderStatus};
use pazar_supervisor::EntityKind;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;

/// The messages a PaymentSession actor understands.
pub enum PaymentSessionMessage {
    /// Creates the session and its intent if there is none; `true` when created now.
    Start {
        /// The order as the caller has just read it; `None`: the session reads
        /// it from the orders service.
        order: Option<Box<Order>>,
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
    /// The order was cancelled or expired (`closed_as`): cancel the intent; if it
    /// was paid after all, give the money back.
    Cancel {
        /// What the order became.
        closed_as: OrderStatus,
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
    pub store: Arc<dyn PaymentStore>,
    /// The orders service (the order's stored total and status).
    pub orders: Arc<dyn OrderDesk>,
    /// The configured provider.
    pub provider: Arc<dyn PaymentProvider>,
    /// Commits the session's updates (group commit).
    pub writer: StoreWriter,
}

/// The actor's state.
pub struct PaymentSessionState {
    order_id: OrderId,
    session: Option<PaymentSession>,
    orders: Arc<dyn OrderDesk>,
    provider: Arc<dyn PaymentProvider>,
    writer: StoreWriter,
}

impl PaymentSessionState {
    async fn start(&mut self, known: Option<Order>) -> Result<(PaymentSession, bool), DomainError> {
        if let Some(session) = &self.session {
            return Ok((session.clone(), false));
        }
        let order = match known {
            Some(order) if order.id == self.order_id => order,
            _ => self.orders.order(self.order_id).await?,
        };
        if order.status != OrderStatus::PendingPayment {
            return Err(DomainError::conflict(
                "order_not_payable",
                format!("the order is {}", order.status.as_str()),
            ));
        }
        let intent = self.provider.create_intent(order.id, order.total).await?;
        let now = pazar_actors::now();
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
        // Through the store writer: sessions opened together share a commit.
        self.writer
            .write(Write::OpenPayment(Box::new(session.clone())))
            .await?;
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
        next.updated_at = pazar_actors::now();
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

    async fn cancel(
        &mut self,
        closed_as: OrderStatus,
    ) -> Result<Option<PaymentSession>, DomainError> {
        let Some(current) = self.session.clone() else {
            return Ok(None);
        };
        if current.status == PaymentStatus::Succeeded {
            // The payment won a race it should have lost: the order had closed.
            return self.refund(paid_too_late(closed_as)).await.map(Some);
        }
        if current.status.is_final() {
            return Ok(Some(current));
        }
        let intent = self.provider.cancel_intent(&current.intent_id).await?;
        self.update(intent, Some("the order was closed"))
            .await
            .map(Some)
    }
}

/// Why a payment is refunded without being asked: it succeeded for an order that
/// had closed first.
pub(crate) fn paid_too_late(closed_as: OrderStatus) -> String {
    format!(
        "paid after the order was {}: refunded automatically",
        closed_as.as_str()
    )
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
            orders: args.orders,
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
            PaymentSessionMessage::Start { order, reply } => {
                let _ = reply.send(state.start(order.map(|order| *order)).await);
            }
            PaymentSessionMessage::Get { reply } => {
                let _ = reply.send(state.session.clone());
            }
            PaymentSessionMessage::Update { intent, reply } => {
                let _ = reply.send(state.update(intent, None).await);
            }
            PaymentSessionMessage::Cancel { closed_as, reply } => {
                let _ = reply.send(state.cancel(closed_as).await);
            }
            PaymentSessionMessage::Refund { reason, reply } => {
                let _ = reply.send(state.refund(reason).await);
            }
        }
        Ok(())
    }
}

/// PaymentSession entities: one actor per order id.
pub struct PaymentSessionKind {
    pub(crate) store: Arc<dyn PaymentStore>,
    pub(crate) orders: Arc<dyn OrderDesk>,
    pub(crate) provider: Arc<dyn PaymentProvider>,
    pub(crate) writer: StoreWriter,
}

impl EntityKind for PaymentSessionKind {
    type Key = OrderId;
    type Actor = PaymentSessionActor;
    const NAME: &'static str = "payment_session";

    fn actor(&self) -> PaymentSessionActor {
        PaymentSessionActor
    }

    fn arguments(&self, order_id: OrderId) -> PaymentSessionArgs {
        PaymentSessionArgs {
            order_id,
            store: self.store.clone(),
            orders: self.orders.clone(),
            provider: self.provider.clone(),
            writer: self.writer.clone(),
        }
    }
}
