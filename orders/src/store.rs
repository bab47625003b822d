//! The orders service's store port: carts and order reads. Each backend of
//! `pazar-store` implements it (`store/src/orders.rs`). New orders and their
//! transitions are committed by the store writer (with the rest of a group
//! commit).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::{Order, OrderId, OrderPage, OrderStatus, Page, ProductId, StoreError, UserId};

/// Carts and orders.
#[async_trait]
pub trait OrderStore: Send + Sync + 'static {
    /// A user's cart lines (product, quantity), in the order they were added.
    async fn load_cart(&self, user: UserId) -> Result<Vec<(ProductId, i64)>, StoreError>;
    /// Sets a cart line's quantity (adding the line if new).
    async fn set_cart_line(
        &self,
        user: UserId,
        product: ProductId,
        quantity: i64,
    ) -> Result<(), StoreError>;
    /// Removes a cart line.
    async fn remove_cart_line(&self, user: UserId, product: ProductId) -> Result<(), StoreError>;
    /// Empties a cart.
    async fn clear_cart(&self, user: UserId) -> Result<(), StoreError>;
    /// An order with its lines and history.
    async fn order(&self, id: OrderId) -> Result<Option<Order>, StoreError>;
    /// The user's order made with this idempotency key.
    async fn order_by_idempotency_key(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<Order>, StoreError>;
    /// A page of a user's orders, newest first.
    async fn orders_of_user(&self, user: UserId, page: Page) -> Result<OrderPage, StoreError>;
    /// A page of the orders of any user, newest first, optionally with one status.
    async fn orders_with_status(
        &self,
        status: Option<OrderStatus>,
        page: Page,
    ) -> Result<OrderPage, StoreError>;
    /// Pending orders whose `expires_at` has come, oldest first.
    async fn due_orders(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OrderId>, StoreError>;
    /// Whether an order with this id was stored.
    async fn order_exists(&self, id: OrderId) -> Result<bool, StoreError>;
    /// Checkout holds whose order was never stored, as `(product, order)` pairs.
    async fn orphan_checkout_holds(
        &self,
        limit: i64,
    ) -> Result<Vec<(ProductId, OrderId)>, StoreError>;
}
