//! The orders service's entity kinds (carts and orders): how each kind's actor
//! is named, spawned and given its state; and the Order actors seen as the
//! payments service's `OrderDesk`.

use crate::cart::{Cart, CartArgs};
use crate::live::LiveCarts;
use crate::order::{CheckoutsInProgress, OrderActor, OrderArgs, OrderMessage};
use crate::store::OrderStore;
use pazar_actors::order::StockGateway;
use pazar_actors::{Currency, DomainError, Order, OrderId, ProductCatalog, StoreWriter, UserId};
use pazar_supervisor::entity::{EntityHandle, EntityKind};
use std::sync::Arc;
use std::time::Duration;

/// Cart entities: one actor per user id.
pub struct CartKind {
    pub(crate) store: Arc<dyn OrderStore>,
    pub(crate) catalog: Arc<dyn ProductCatalog>,
    pub(crate) currency: Currency,
    pub(crate) stock: Arc<dyn StockGateway>,
    pub(crate) order_ttl: Duration,
    pub(crate) writer: StoreWriter,
    pub(crate) checkouts: Arc<CheckoutsInProgress>,
    pub(crate) live: Arc<LiveCarts>,
}

/// Order entities: one actor per order id.
pub struct OrderKind {
    pub(crate) store: Arc<dyn OrderStore>,
    pub(crate) stock: Arc<dyn StockGateway>,
    pub(crate) writer: StoreWriter,
}

impl EntityKind for OrderKind {
    type Key = OrderId;
    type Actor = OrderActor;
    const NAME: &'static str = "order";

    fn actor(&self) -> OrderActor {
        OrderActor
    }

    fn arguments(&self, order_id: OrderId) -> OrderArgs {
        OrderArgs {
            order_id,
            store: self.store.clone(),
            stock: self.stock.clone(),
            writer: self.writer.clone(),
            created: None,
        }
    }
}

impl EntityKind for CartKind {
    type Key = UserId;
    type Actor = Cart;
    const NAME: &'static str = "cart";

    fn actor(&self) -> Cart {
        Cart
    }

    fn arguments(&self, user_id: UserId) -> CartArgs {
        CartArgs {
            user_id,
            store: self.store.clone(),
            catalog: self.catalog.clone(),
            currency: self.currency,
            stock: self.stock.clone(),
            order_ttl: self.order_ttl,
            writer: self.writer.clone(),
            checkouts: self.checkouts.clone(),
            live: self.live.clone(),
        }
    }
}

/// The Order actors, as another service in this process reaches them (the
/// payments service reads orders and marks them refunded through these).
#[derive(Clone)]
pub struct OrderActors(pub EntityHandle<OrderKind>);

impl OrderActors {
    /// The order as it stands; `NotFound` if there is none.
    pub async fn order(&self, id: OrderId) -> Result<Order, DomainError> {
        self.0.call(id, |reply| OrderMessage::Get { reply }).await
    }

    /// A refunded order's units go back on the shelf and it becomes `refunded`
    /// (a no-op when it is already).
    pub async fn mark_refunded(&self, id: OrderId) -> Result<Order, DomainError> {
        self.0
            .call(id, |reply| OrderMessage::Refund {
                handled: None,
                reply,
            })
            .await?
    }
}
