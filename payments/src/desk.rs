//! The orders service as the payments service reaches it ([`OrderDesk`]): its
//! Order actors when orders run in this process, its stored orders when they run
//! in another (roles split across processes).

use crate::OrderDesk;
use async_trait::async_trait;
use pazar_actors::{DomainError, Order, OrderId, OrderStatus};
use pazar_orders::{OrderActors, OrderStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[async_trait]
impl OrderDesk for OrderActors {
    async fn order(&self, id: OrderId) -> Result<Order, DomainError> {
        OrderActors::order(self, id).await
    }

    async fn mark_refunded(&self, id: OrderId) -> Result<Order, DomainError> {
        OrderActors::mark_refunded(self, id).await
    }
}

/// Orders read from the shared store, for a process that does not run the orders
/// role. An order's stored state is what its actor committed (it replies only
/// after the commit), so a read here is never ahead of or behind a reply there
/// by more than the write in flight.
pub struct StoredOrders {
    /// The shared store.
    pub store: Arc<dyn OrderStore>,
    /// How long [`OrderDesk::mark_refunded`] waits for the orders role.
    pub wait: Duration,
}

/// How often a wait for the orders role looks at the store again.
const LOOK_EVERY: Duration = Duration::from_millis(25);

#[async_trait]
impl OrderDesk for StoredOrders {
    async fn order(&self, id: OrderId) -> Result<Order, DomainError> {
        self.store
            .order(id)
            .await?
            .ok_or(DomainError::NotFound { what: "order" })
    }

    /// The orders role marks the order refunded when it reads `payments.refunded`
    /// (which the refund has just written): this waits for that, up to `wait`.
    async fn mark_refunded(&self, id: OrderId) -> Result<Order, DomainError> {
        let deadline = Instant::now() + self.wait;
        loop {
            let order = self.order(id).await?;
            if order.status == OrderStatus::Refunded {
                return Ok(order);
            }
            if Instant::now() >= deadline {
                return Err(DomainError::Unavailable(format!(
                    "the money of order {id} is refunded, but the orders service has not \
                     marked the order refunded within {:?}; repeating the request is safe",
                    self.wait
                )));
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }
}
