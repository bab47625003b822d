//! The payments service's ears: a new order gets its payment session (and
//! intent); a cancelled or expired order gets its intent cancelled.

use crate::session::{PaymentSessionKind, PaymentSessionMessage};
use async_trait::async_trait;
use pazar_actors::{DomainError, DomainEvent, EventSubscriber, EventType, OrderId, StoredEvent};
use pazar_supervisor::EntityHandle;

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

/// The order an event is about (its subject).
pub(crate) fn subject_order(event: &StoredEvent) -> Result<OrderId, DomainError> {
    event.event.subject.parse().map(OrderId).map_err(|_| {
        DomainError::invalid(
            "subject",
            format!("event {} has no order subject", event.event.id),
        )
    })
}
