//! The in-process outbox subscribers that connect the services, as the design's
//! separate services would be connected by Kafka: payments listen to orders,
//! orders listen to payments, live carts listen to the catalog.

use crate::kinds::{CartKind, OrderKind, PaymentSessionKind};
use async_trait::async_trait;
use pazar_actors::cart::CartMessage;
use pazar_actors::order::{OrderMessage, OrderStatus};
use pazar_actors::payments::PaymentSessionMessage;
use pazar_actors::{
    DomainError, DomainEvent, EventSubscriber, EventType, LiveCarts, OrderId, ProductId,
    ProductViews, StoredEvent,
};
use pazar_supervisor::entity::EntityHandle;
use std::sync::Arc;

/// The payment service's ears: a new order gets its payment session (and intent);
/// a cancelled or expired order gets its intent cancelled.
pub(crate) struct PaymentsOnOrders {
    pub(crate) sessions: EntityHandle<PaymentSessionKind>,
}

#[async_trait]
impl EventSubscriber for PaymentsOnOrders {
    fn name(&self) -> &str {
        "payments"
    }

    fn wants(&self, kind: EventType) -> bool {
        matches!(
            kind,
            EventType::OrderCreated | EventType::OrderCancelled | EventType::OrderExpired
        )
    }

    async fn handle(&self, event: &StoredEvent, payload: &DomainEvent) -> Result<(), DomainError> {
        let order = subject_order(event)?;
        let outcome = if let DomainEvent::OrderCreated(_) = payload {
            self.sessions
                .call(order, |reply| PaymentSessionMessage::Start { reply })
                .await
                .and_then(|started| started.map(|_| ()))
        } else {
            self.sessions
                .call(order, |reply| PaymentSessionMessage::Cancel { reply })
                .await
                .and_then(|cancelled| cancelled.map(|_| ()))
        };
        match outcome {
            // The order moved on before its session started: nothing to pay.
            Ok(()) | Err(DomainError::Conflict { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// The order service's ears: a successful payment makes the order paid, which
/// sells its held stock. A payment that succeeds for an order that can no longer be
/// paid (it expired or was cancelled first) is refunded automatically.
pub(crate) struct OrdersOnPayments {
    pub(crate) orders: EntityHandle<OrderKind>,
    pub(crate) sessions: EntityHandle<PaymentSessionKind>,
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
                self.sessions
                    .call(order, |reply| PaymentSessionMessage::Refund {
                        reason: reason.clone(),
                        reply,
                    })
                    .await
                    .and_then(|refunded| refunded)
                    .map(|_| ())
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
    pub(crate) views: Arc<ProductViews>,
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
