//! The orders service's ears on the outbox: orders listen to payments, live
//! carts listen to the catalog.

use crate::cart::CartMessage;
use crate::kinds::{CartKind, OrderKind};
use crate::live::LiveCarts;
use crate::order::OrderMessage;
use async_trait::async_trait;
use pazar_actors::{DomainError, DomainEvent, EventSubscriber, OrderId, ProductId, StoredEvent};
use pazar_supervisor::entity::EntityHandle;
use std::sync::Arc;

/// The order service's ears on payments: a successful payment makes the order
/// paid, which sells its held stock; a refund of a paid order puts its units back
/// on the shelf and makes it refunded.
///
/// A payment that succeeds for an order that can no longer be paid (it expired or
/// was cancelled first) is left as it is here: the payments service sees both
/// facts and refunds it, and its `payments.refunded` finds the order closed.
pub(crate) struct OrdersOnPayments {
    pub(crate) orders: EntityHandle<OrderKind>,
}

#[async_trait]
impl EventSubscriber for OrdersOnPayments {
    fn name(&self) -> &str {
        "orders"
    }

    async fn handle(&self, event: &StoredEvent, payload: &DomainEvent) -> Result<(), DomainError> {
        let order = subject_order(event)?;
        // The bridge's record of this event, stored with the transition.
        let handled = pazar_actors::events::handled();
        let done = if let DomainEvent::PaymentRefunded(_) = payload {
            self.orders
                .call(order, |reply| OrderMessage::Refund {
                    handled: handled.clone(),
                    reply,
                })
                .await
        } else {
            self.orders
                .call(order, |reply| OrderMessage::MarkPaid {
                    handled: handled.clone(),
                    reply,
                })
                .await
        };
        match done.and_then(|outcome| outcome) {
            // A conflict is a redelivery (already paid or further along) or an
            // order that closed first (the payments service refunds it).
            Ok(_) | Err(DomainError::Conflict { .. }) => Ok(()),
            Err(error) => Err(error),
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
