//! The ProductStock entity kind, and the ProductStock actors seen as the order
//! flow's [`StockGateway`].

use crate::stock::{ProductStock, ProductStockArgs, ProductStockMessage};
use crate::store::ProductStore;
use crate::views::ProductViews;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::order::StockGateway;
use pazar_actors::{DomainError, HoldSource, OrderId, ProductId, StockLevels, StoreWriter};
use pazar_supervisor::{EntityHandle, EntityKind};
use std::sync::Arc;

/// ProductStock entities: one actor per product id.
pub struct ProductStockKind {
    pub(crate) store: Arc<dyn ProductStore>,
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

    async fn return_sold(
        &self,
        product: ProductId,
        order: OrderId,
        quantity: i64,
    ) -> Result<StockLevels, DomainError> {
        self.0
            .call(product, |reply| ProductStockMessage::Return {
                order_id: order,
                quantity,
                reply,
            })
            .await?
    }
}
