//! The catalog service's store port: products and their stock rows. Each
//! backend of `pazar-store` implements it (`store/src/catalog.rs`). Stock changes
//! are committed by the store writer (with the rest of a group commit).

use crate::service::{ProductPage, ProductQuery};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::{Event, OrderId, Product, ProductId, ProductView, StockRecord, StoreError};

/// Products and stock.
#[async_trait]
pub trait ProductStore: Send + Sync + 'static {
    /// Stores new products with their initial stock, and their events, in one
    /// transaction: all or nothing; `Conflict` on a duplicate SKU.
    async fn insert_products(
        &self,
        products: &[(Product, i64)],
        events: &[Event],
    ) -> Result<(), StoreError>;
    /// Replaces a product's catalog fields and writes its event; `NotFound` or
    /// `Conflict` (SKU).
    async fn update_product(&self, product: &Product, event: &Event) -> Result<(), StoreError>;
    /// A product with its committed stock levels.
    async fn product(&self, id: ProductId) -> Result<Option<ProductView>, StoreError>;
    /// The id of the product with this SKU, if there is one.
    async fn product_id_by_sku(&self, sku: &str) -> Result<Option<ProductId>, StoreError>;
    /// A page of products, filtered by a text query.
    async fn list_products(&self, query: &ProductQuery) -> Result<ProductPage, StoreError>;
    /// Up to `limit` products in id order after `after` (from the first when
    /// `None`): pages that neither skip nor repeat a product while others are
    /// added or deleted between them.
    async fn products_after(
        &self,
        after: Option<ProductId>,
        limit: i64,
    ) -> Result<Vec<ProductView>, StoreError>;
    /// The stock state a ProductStock actor starts from; `None` for an unknown product.
    async fn load_stock(&self, id: ProductId) -> Result<Option<StockRecord>, StoreError>;
    /// Whether the sold units of `order` were put back on `product`'s shelf (its
    /// refund's [`StockChange::Return`](pazar_actors::StockChange::Return)).
    async fn stock_returned(&self, product: ProductId, order: OrderId) -> Result<bool, StoreError>;
    /// Manual holds past their `expires_at`, as `(product, order)` pairs.
    async fn expired_manual_holds(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(ProductId, OrderId)>, StoreError>;
}
