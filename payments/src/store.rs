//! The payments service's store port: payment sessions (read here; created and
//! updated through the store writer's group commit) and the local
//! provider's intents. Each backend of `pazar-store` implements it
//! (`store/src/payments.rs`).

use crate::local::LocalIntent;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::payments::PaymentSession;
use pazar_actors::{OrderId, StoreError};

/// Payment sessions and local intents.
#[async_trait]
pub trait PaymentStore: Send + Sync + 'static {
    /// An order's payment session.
    async fn payment_session(&self, order: OrderId) -> Result<Option<PaymentSession>, StoreError>;
    /// The session of a provider intent (webhooks name the intent).
    async fn payment_session_by_intent(
        &self,
        intent_id: &str,
    ) -> Result<Option<PaymentSession>, StoreError>;
    /// Open sessions (waiting, failed or processing) neither changed nor checked
    /// since `before`, oldest first: reconciliation asks the provider about them.
    async fn stuck_payment_sessions(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OrderId>, StoreError>;
    /// Records that reconciliation asked the provider about a session at `at`.
    async fn mark_payment_session_checked(
        &self,
        order: OrderId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The local provider's intent for an order.
    async fn local_intent_for_order(
        &self,
        order: OrderId,
    ) -> Result<Option<LocalIntent>, StoreError>;
    /// The local intent a client secret belongs to.
    async fn local_intent_by_secret(&self, secret: &str)
        -> Result<Option<LocalIntent>, StoreError>;
    /// A local intent by id.
    async fn local_intent(&self, id: &str) -> Result<Option<LocalIntent>, StoreError>;
    /// Stores a new local intent unless its order has one: whether it was stored.
    async fn insert_local_intent(&self, intent: &LocalIntent) -> Result<bool, StoreError>;
    /// Stores a local intent's new status and error.
    async fn update_local_intent(&self, intent: &LocalIntent) -> Result<(), StoreError>;
}
