//! The payments service: payment sessions, providers, webhooks, reconciliation
//! and refunds. A newcomer who wants to change how refunds work opens this folder.
//!
//! - [`session`]: the `PaymentSession(order_id)` actor that follows one order's
//!   payment at its provider, and its entity kind;
//! - [`provider`]: the provider port; [`local`] (the embedded simulator) and
//!   [`stripe`] (async-stripe) implement it; Stripe's statuses are mapped once, in
//!   [`stripe::intent_status`];
//! - [`webhooks`] and [`signature`]: Stripe's signed webhook;
//! - [`reconcile`]: the loop that asks the provider about sessions whose news
//!   never came;
//! - [`subscriber`]: its ears on the outbox (`orders.created` starts a session,
//!   `orders.cancelled`/`orders.expired` cancel its intent, a payment that
//!   succeeded for a closed order is refunded);
//! - [`store`]: its store port, [`PaymentStore`];
//! - [`routes`]: its HTTP routes;
//! - [`Payments`]: its commands and queries, with the rules that are not the
//!   actor's own (who may pay which order; the refund sequence); [`start`] wires
//!   it all into a process.
//!
//! It needs two things from the orders service, through the [`OrderDesk`] port:
//! an order as it stands, and marking a refunded order `refunded`; [`desk`] holds
//! the port's two adapters (the Order actors in this process, or the stored
//! orders when the orders role runs in another).

pub mod desk;
pub mod local;
pub mod provider;
pub mod reconcile;
pub mod routes;
pub mod session;
pub mod signature;
pub mod store;
pub mod stripe;
mod subscriber;
pub mod webhooks;

pub use provider::PaymentProvider;
pub use session::{PaymentSessionKind, PaymentSessionMessage};
pub use store::PaymentStore;

use async_trait::async_trait;
use local::{Card, LocalPayments};
use pazar_actors::payments::{PaymentSession, ProviderIntent};
use pazar_actors::{DomainError, Listeners, Order, OrderId, OrderStatus, StoreWriter, UserId};
use pazar_supervisor::{EntityHandle, EntityPolicy, TaskSupervisor};
use ractor::ActorCell;
use std::sync::Arc;
use std::time::Duration;

/// What the payments service needs from the orders service.
#[async_trait]
pub trait OrderDesk: Send + Sync + 'static {
    /// The order as it stands; `NotFound` if there is none.
    async fn order(&self, id: OrderId) -> Result<Order, DomainError>;
    /// A refunded order's units go back on the shelf and it becomes `refunded`.
    async fn mark_refunded(&self, id: OrderId) -> Result<Order, DomainError>;
}

/// The service's commands and queries (what its routes, webhooks and the other
/// services call).
#[derive(Clone)]
pub struct Payments {
    sessions: EntityHandle<PaymentSessionKind>,
    store: Arc<dyn PaymentStore>,
    orders: Arc<dyn OrderDesk>,
    provider: Arc<dyn PaymentProvider>,
    local: Option<Arc<LocalPayments>>,
}

/// What the service needs from the process that runs it.
pub struct Dependencies<'a> {
    /// Sessions and local intents.
    pub store: Arc<dyn PaymentStore>,
    /// The orders service.
    pub orders: Arc<dyn OrderDesk>,
    /// The provider; `None` is the embedded local simulator.
    pub provider: Option<Arc<dyn PaymentProvider>>,
    /// Commits sessions' updates (group commit).
    pub writer: StoreWriter,
    /// Where its subscriber goes (the process feeds it from the outbox or Kafka).
    pub listeners: &'a Listeners,
    /// Runs the reconciler.
    pub tasks: &'a TaskSupervisor,
    /// The supervisor its entity supervisor is linked to.
    pub root: ActorCell,
    /// How PaymentSession actors are supervised.
    pub policy: EntityPolicy,
    /// A session this long without news is checked at the provider.
    pub reconcile_after: Duration,
    /// How often reconciliation looks.
    pub reconcile_every: Duration,
}

/// Starts the service: the PaymentSession entity supervisor, the reconciler, and
/// the `payments` subscriber.
pub async fn start(deps: Dependencies<'_>) -> Result<Payments, DomainError> {
    let (provider, local) = match deps.provider {
        Some(provider) => (provider, None),
        None => {
            let local = Arc::new(LocalPayments::new(deps.store.clone()));
            (local.clone() as Arc<dyn PaymentProvider>, Some(local))
        }
    };
    let sessions = EntityHandle::start(
        PaymentSessionKind {
            store: deps.store.clone(),
            orders: deps.orders.clone(),
            provider: provider.clone(),
            writer: deps.writer,
        },
        deps.policy,
        deps.root,
    )
    .await?;
    {
        let (store, sessions, provider) = (deps.store.clone(), sessions.clone(), provider.clone());
        let (after, every) = (deps.reconcile_after, deps.reconcile_every);
        deps.tasks.keep_running("payment_reconciler", move || {
            reconcile::reconcile(
                store.clone(),
                sessions.clone(),
                provider.clone(),
                after,
                every,
            )
        });
    }
    deps.listeners.add(Arc::new(subscriber::PaymentsOnOrders {
        sessions: sessions.clone(),
        orders: deps.orders.clone(),
    }));
    Ok(Payments {
        sessions,
        store: deps.store,
        orders: deps.orders,
        provider,
        local,
    })
}

impl Payments {
    /// The PaymentSession actors (inspection).
    pub fn sessions(&self) -> &EntityHandle<PaymentSessionKind> {
        &self.sessions
    }

    /// The embedded simulator, when it is the provider.
    pub fn local(&self) -> Option<&Arc<LocalPayments>> {
        self.local.as_ref()
    }

    /// The key the payment page uses (Stripe's publishable key).
    pub fn publishable_key(&self) -> Option<String> {
        self.provider.publishable_key()
    }

    /// Where the payment page loads the provider's script from (Stripe.js).
    pub fn js_url(&self) -> Option<String> {
        self.provider.js_url()
    }

    /// The user's order, or `NotFound` (also for another user's order).
    async fn order_of(&self, user: UserId, order: OrderId) -> Result<Order, DomainError> {
        let found = self.orders.order(order).await?;
        if found.user_id != user {
            return Err(DomainError::NotFound { what: "order" });
        }
        Ok(found)
    }

    /// Starts (or finds) the payment of the user's pending order; `true` when
    /// created now. A paid, cancelled or expired order cannot be paid: 409.
    pub async fn start_payment(
        &self,
        user: UserId,
        order: OrderId,
    ) -> Result<(PaymentSession, bool), DomainError> {
        let current = self.order_of(user, order).await?;
        if current.status != OrderStatus::PendingPayment {
            return Err(DomainError::conflict(
                "order_not_payable",
                format!("the order is {}", current.status.as_str()),
            ));
        }
        self.sessions
            .call(order, |reply| PaymentSessionMessage::Start {
                order: Some(Box::new(current.clone())),
                reply,
            })
            .await?
    }

    /// The payment of the user's order.
    pub async fn payment_of(
        &self,
        user: UserId,
        order: OrderId,
    ) -> Result<PaymentSession, DomainError> {
        self.order_of(user, order).await?;
        self.session(order)
            .await?
            .ok_or(DomainError::NotFound { what: "payment" })
    }

    /// An order's payment session, if it has one.
    pub async fn session(&self, order: OrderId) -> Result<Option<PaymentSession>, DomainError> {
        self.sessions
            .call(order, |reply| PaymentSessionMessage::Get { reply })
            .await
    }

    /// News from the provider about an intent (a verified webhook): applied to the
    /// intent's payment session. NotFound for an intent Pazar did not make.
    pub async fn provider_news(
        &self,
        intent: ProviderIntent,
    ) -> Result<PaymentSession, DomainError> {
        let session = self
            .store
            .payment_session_by_intent(&intent.id)
            .await?
            .ok_or(DomainError::NotFound { what: "payment" })?;
        self.sessions
            .call(session.order_id, |reply| PaymentSessionMessage::Update {
                intent: intent.clone(),
                reply,
            })
            .await?
    }

    /// The payment page's card confirmation with the local provider; NotFound when
    /// another provider is configured.
    pub async fn confirm_local_payment(
        &self,
        client_secret: &str,
        card: &Card,
    ) -> Result<PaymentSession, DomainError> {
        let local = self.local.as_ref().ok_or(DomainError::NotFound {
            what: "local payment provider",
        })?;
        let (order, intent) = local.confirm(client_secret, card).await?;
        self.sessions
            .call(order, |reply| PaymentSessionMessage::Update {
                intent: intent.clone(),
                reply,
            })
            .await?
    }

    /// Gives a succeeded payment's money back (a no-op when already refunded);
    /// `reason` is kept in the `payments.refunded` event.
    pub async fn refund(
        &self,
        order: OrderId,
        reason: String,
    ) -> Result<PaymentSession, DomainError> {
        self.sessions
            .call(order, |reply| PaymentSessionMessage::Refund {
                reason: reason.clone(),
                reply,
            })
            .await?
    }

    /// An admin refunds a paid order: the money goes back at the provider
    /// (`payments.refunded`), then the units go back on the shelf and the order
    /// becomes `refunded`. Repeating it after a partial failure finishes the job.
    pub async fn refund_order(&self, order: OrderId) -> Result<Order, DomainError> {
        let current = self.orders.order(order).await?;
        if current.status != OrderStatus::Paid {
            return Err(DomainError::conflict(
                "not_refundable",
                format!(
                    "only a paid order can be refunded; this one is {}",
                    current.status.as_str()
                ),
            ));
        }
        self.refund(order, "refunded by an admin".into()).await?;
        self.orders.mark_refunded(order).await
    }
}
