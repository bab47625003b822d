//! The entity kinds the tree supervises: how each kind's actor is named, spawned
//! and given its state, and the ProductStock actors seen as the order flow's
//! [`StockGateway`](pazar_actors::order::StockGateway).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::cart::{Cart, CartArgs};
use pazar_actors::order::{CheckoutsInProgress, OrderActor, OrderArgs, StockGateway};
use pazar_actors::product_stock::{ProductStock, ProductStockArgs, ProductStockMessage};
use pazar_actors::{
    Catalog, Currency, DomainError, HoldSource, LiveCarts, OrderId, ProductId, ProductViews,
    StockLevels, Store, StoreWriter, UserId,
};
use pazar_supervisor::entity::{EntityHandle, EntityKind};
use std::sync::Arc;
use std::time::Duration;

/// ProductStock entities: one actor per product id.
pub struct ProductStockKind {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) writer: StoreWriter,
    pub(crate) views: Arc<ProductViews>,
}

impl EntityKind for ProductStockKind {
    type Key = ProductId;
    type Actor = ProductStock;
    const NAME: &'static str = "product_stock";

    fn actor(&self) -> ProductStock {
        ProductStock
    }

    fn arguments(&self, product_id: ProductId) -> ProductStockArgs {
        ProductStockArgs {
            product_id,
            store: self.store.clone(),
            writer: self.writer.clone(),
            views: self.views.clone(),
        }
    }
}

/// The ProductStock actors as the order flow's [`StockGateway`].
#[derive(Clone)]
pub struct StockActors(pub EntityHandle<ProductStockKind>);

#[async_trait]
impl StockGateway for StockActors {
    async fn reserve(
        &self,
        product: ProductId,
        order: OrderId,
        quantity: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<StockLevels, DomainError> {
        self.0
            .call(product, |reply| ProductStockMessage::Reserve {
                order_id: order,
                quantity,
                expires_at,
                source: HoldSource::Checkout,
                reply,
            })
            .await?
    }

    async fn release(
        &self,
        product: ProductId,
        order: OrderId,
    ) -> Result<StockLevels, DomainError> {
        self.0
            .call(product, |reply| ProductStockMessage::Release {
                order_id: order,
                reply,
            })
            .await?
    }

    async fn commit(&self, product: ProductId, order: OrderId) -> Result<StockLevels, DomainError> {
        self.0
            .call(product, |reply| ProductStockMessage::Commit {
                order_id: order,
                reply,
            })
            .await?
    }

    async fn restock(
        &self,
        product: ProductId,
        quantity: i64,
        reason: &str,
    ) -> Result<StockLevels, DomainError> {
        self.0
            .call(product, |reply| ProductStockMessage::Adjust {
                delta: quantity,
                reason: reason.to_owned(),
                reply,
            })
            .await?
    }
}

/// Cart entities: one actor per user id.
pub struct CartKind {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) catalog: Catalog,
    pub(crate) currency: Currency,
    pub(crate) stock: Arc<dyn StockGateway>,
    pub(crate) order_ttl: Duration,
    pub(crate) writer: StoreWriter,
    pub(crate) checkouts: Arc<CheckoutsInProgress>,
    pub(crate) live: Arc<LiveCarts>,
}

/// Order entities: one actor per order id.
pub struct OrderKind {
    pub(crate) store: Arc<dyn Store>,
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

/// The Order actors as the payments service's [`OrderDesk`](pazar_payments::OrderDesk).
pub struct OrderActors(pub EntityHandle<OrderKind>);

#[async_trait]
impl pazar_payments::OrderDesk for OrderActors {
    async fn order(&self, id: OrderId) -> Result<pazar_actors::Order, DomainError> {
        self.0
            .call(id, |reply| pazar_actors::order::OrderMessage::Get { reply })
            .await
    }

    async fn mark_refunded(&self, id: OrderId) -> Result<pazar_actors::Order, DomainError> {
        self.0
            .call(id, |reply| pazar_actors::order::OrderMessage::Refund {
                reply,
            })
            .await?
    }
}
