//! The orders service's ears on the outbox: orders listen to payments, live
//! carts listen to the catalog.

use crate::cart::CartMessage;
use crate::kinds::{CartKind, OrderKind};
use crate::live::LiveCarts;
use crate::order::OrderMessage;
use async_trait::async_trait;
use pazar_actors::{
    DomainError, DomainEvent, EventSubscriber, EventType, OrderId, OrderStatus, ProductId,
    StoredEvent,
};
use pazar_payments::Payments;
use pazar_supervisor::entity::EntityHandle;
use std::sync::Arc;

/// The order service's ears: a successful payment makes the order paid, which
/// sells its held stock. A payment that succeeds for an order that can no longer be
/// paid (it expired or was cancelled first) is refunded automatically.
pub(crate) struct OrdersOnPayments {
    pub(crate) orders: EntityHandle<OrderKind>,
    pub(crate) payments: Payments,
}

#[async_trait]
impl EventSubscriber for OrdersOnPayments {
    fn name(&self) -> &str {
        "orders"
    }

    fn wants(&self, kind: EventType) -> bool {
        kind == EventType::PaymentSucceeded
    }

    async fn handle(&self, event: &StoredEvent, _: &DomainEvent) -> Result<(), DomainError> {
        let order = subject_order(event)?;
        let paid = self
            .orders
            .call(order, |reply| OrderMessage::MarkPaid { reply })
            .await
            .and_then(|outcome| outcome);
        let status = match paid {
            Ok(_) => return Ok(()),
            Err(DomainError::Conflict { .. }) => {
                self.orders
                    .call(order, |reply| OrderMessage::Get { reply })
                    .await?
                    .status
            }
            Err(error) => return Err(error),
        };
        match status {
            // A redelivery: the order is paid already (or further along).
            OrderStatus::Paid | OrderStatus::Fulfilled | OrderStatus::Refunded => Ok(()),
            OrderStatus::Cancelled | OrderStatus::Expired | OrderStatus::PendingPayment => {
                let reason = format!(
                    "paid after the order was {}: refunded automatically",
                    status.as_str()
                );
                tracing::warn!(%order, %reason);
                self.payments.refund(order, reason).await.map(|_| ())
            }
        }
    }
}

fn subject_order(event: &StoredEvent) -> Result<OrderId, DomainError> {
    event.event.subject.parse().map(OrderId).map_err(|_| {
        DomainError::invalid(
            "subject",
            format!("event {} has no order subject", event.event.id),
        )
    })
}

/// Pushes fresh snapshots to live carts when a product in them changes in the
/// catalog (price, name, deletion, availability below the quantity).
pub(crate) struct LiveCartWatcher {
    pub(crate) live: Arc<LiveCarts>,
    pub(crate) carts: EntityHandle<CartKind>,
    /// The event is committed, but the write's completion may not have reached the
    /// cache yet: the watcher drops the product's cached view so the carts it
    /// refreshes read the committed state from the store.
    pub(crate) views: Arc<pazar_catalog::ProductViews>,
}

#[async_trait]
impl EventSubscriber for LiveCartWatcher {
    fn name(&self) -> &str {
        "live-carts"
    }

    fn wants(&self, kind: EventType) -> bool {
        matches!(
            kind,
            EventType::StockChanged | EventType::ProductUpserted | EventType::ProductDeleted
        )
    }

    async fn handle(&self, _: &StoredEvent, payload: &DomainEvent) -> Result<(), DomainError> {
        let product = ProductId(match payload {
            DomainEvent::StockChanged(changed) => changed.product_id,
            DomainEvent::ProductUpserted(product) => product.product_id,
            DomainEvent::ProductDeleted(deleted) => deleted.product_id,
            _ => return Ok(()),
        });
        let watchers = self.live.watchers_of(product);
        if !watchers.is_empty() {
            self.views.invalidate(product);
        }
        for user in watchers {
            match self
                .carts
                .call(user, |reply| CartMessage::Get { reply })
                .await
            {
                Ok(Ok(snapshot)) => self.live.publish_if_changed(user, &snapshot),
                Ok(Err(error)) | Err(error) => {
                    // A live view is best effort: the next change pushes again.
                    tracing::debug!(%user, %error, "live cart refresh failed")
                }
            }
        }
        Ok(())
    }
}
