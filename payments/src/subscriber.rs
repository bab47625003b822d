//! The payments service's ears: a new order gets its payment session (and
//! intent); a cancelled or expired order gets its intent cancelled, and a payment
//! that succeeded for a closed order is refunded.

use crate::session::{paid_too_late, PaymentSessionKind, PaymentSessionMessage};
use crate::OrderDesk;
use async_trait::async_trait;
use pazar_actors::{DomainError, DomainEvent, EventSubscriber, OrderId, OrderStatus, StoredEvent};
use pazar_supervisor::EntityHandle;
use std::sync::Arc;

/// The payment service's ears: a new order gets its payment session (and intent);
/// a cancelled or expired order gets its intent cancelled.
///
/// A payment can succeed for an order that expired or was cancelled a moment
/// before (the customer paid at the provider as the order closed). Both events
/// come here, in their commit order for that order, and whichever is handled
/// second sees both facts: a succeeded payment of a closed order is refunded.
/// The rule is the payments service's, so it holds when orders run elsewhere.
pub(crate) struct PaymentsOnOrders {
    pub(crate) sessions: EntityHandle<PaymentSessionKind>,
    pub(crate) orders: Arc<dyn OrderDesk>,
}

#[async_trait]
impl EventSubscriber for PaymentsOnOrders {
    fn name(&self) -> &str {
        "payments"
    }

    async fn handle(&self, event: &StoredEvent, payload: &DomainEvent) -> Result<(), DomainError> {
        let order = subject_order(event)?;
        let closed_as = match payload {
            DomainEvent::OrderCreated(_) => None,
            DomainEvent::OrderCancelled(_) => Some(OrderStatus::Cancelled),
            DomainEvent::OrderExpired(_) => Some(OrderStatus::Expired),
            // Paid: is the order still open? (The orders service makes it paid.)
            _ => match self.orders.order(order).await?.status {
                status @ (OrderStatus::Cancelled | OrderStatus::Expired) => {
                    let reason = paid_too_late(status);
                    tracing::warn!(%order, %reason);
                    return self
                        .sessions
                        .call(order, |reply| PaymentSessionMessage::Refund {
                            reason: reason.clone(),
                            reply,
                        })
                        .await?
                        .map(|_| ());
                }
                _ => return Ok(()),
            },
        };
        let outcome = match closed_as {
            None => self
                .sessions
                // The session reads the order back: the event's copy may be old (a
                // replayed dead letter whose order has closed since).
                .call(order, |reply| PaymentSessionMessage::Start {
                    order: None,
                    reply,
                })
                .await
                .and_then(|started| started.map(|_| ())),
            Some(closed_as) => self
                .sessions
                .call(order, |reply| PaymentSessionMessage::Cancel {
                    closed_as,
                    reply,
                })
                .await
                .and_then(|cancelled| cancelled.map(|_| ())),
        };
        match outcome {
            // The order moved on before its session started: nothing to pay.
            Ok(()) | Err(DomainError::Conflict { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// The order an event is about (its subject).
pub(crate) fn subject_order(event: &StoredEvent) -> Result<OrderId, DomainError> {
    event.event.subject.parse().map(OrderId).map_err(|_| {
        DomainError::invalid(
            "subject",
            format!("event {} has no order subject", event.event.id),
        )
    })
}
