//! The orders service: carts (with their live view), checkout, orders and their
//! expiry.
//!
//! - [`cart`]: the `Cart(user_id)` actor (lines, pricing, checkout), and
//!   [`live`]: who watches which cart, fed by the actor and by catalog events;
//! - [`order`]: the `Order(order_id)` actor that moves an order between statuses;
//!   [`kinds`]: their entity kinds, and the Order actors as the payments service's
//!   `OrderDesk`;
//! - [`subscribers`]: its ears (`orders`: payments' results; `live-carts`: catalog
//!   changes);
//! - [`sweeper`]: expiry of unpaid orders and release of holds whose checkout
//!   died;
//! - [`store`]: its store port, [`OrderStore`];
//! - [`routes`], [`cart_routes`], [`socket`]: its HTTP routes and the live-cart
//!   WebSocket;
//! - [`Orders`]: its commands and queries (who may see or cancel which order);
//!   [`start`] wires it into a process.
//!
//! The order records (`Order`, `OrderStatus`, …) live in the shared kernel because
//! the store writer commits them with stock and payments; checkout reserves stock
//! through the kernel's `StockGateway` port (the catalog's ProductStock actors).

pub mod cart;
pub mod cart_routes;
pub mod kinds;
pub mod live;
pub mod order;
pub mod routes;
pub mod socket;
pub mod store;
mod subscribers;
mod sweeper;

pub use kinds::{CartKind, OrderActors, OrderKind};
pub use live::LiveCarts;
pub use store::OrderStore;

use cart::{CartMessage, CartSnapshot};
use order::{CheckoutsInProgress, OrderArgs, OrderMessage};
use pazar_actors::order::StockGateway;
use pazar_actors::{
    Currency, DomainError, Listeners, Order, OrderId, OrderPage, OrderStatus, Page, ProductCatalog,
    ProductId, StoreWriter, UserId,
};
use pazar_supervisor::entity::EntityKind;
use pazar_supervisor::{EntityHandle, EntityPolicy, TaskSupervisor};
use ractor::ActorCell;
use std::sync::Arc;
use std::time::Duration;

/// The service's commands and queries.
#[derive(Clone)]
pub struct Orders {
    carts: EntityHandle<CartKind>,
    orders: EntityHandle<OrderKind>,
    live: Arc<LiveCarts>,
    store: Arc<dyn OrderStore>,
    stock: Arc<dyn StockGateway>,
    checkouts: Arc<CheckoutsInProgress>,
}

/// What the service needs from the process that runs it.
pub struct Dependencies<'a> {
    /// Carts and orders.
    pub store: Arc<dyn OrderStore>,
    /// The catalog, as carts read it.
    pub catalog: Arc<dyn ProductCatalog>,
    /// Committed views to drop when a product changes (the catalog's cache).
    pub views: Arc<pazar_catalog::ProductViews>,
    /// Stock holds (the catalog's ProductStock actors).
    pub stock: Arc<dyn StockGateway>,
    /// Commits new orders and transitions (group commit).
    pub writer: StoreWriter,
    /// Where its subscribers go (the process feeds them from the outbox or Kafka).
    pub listeners: &'a Listeners,
    /// The supervisor its entity supervisors are linked to.
    pub root: ActorCell,
    /// How Cart actors are supervised.
    pub cart_policy: EntityPolicy,
    /// How Order actors are supervised.
    pub order_policy: EntityPolicy,
    /// The shop's currency (carts refuse others).
    pub currency: Currency,
    /// How long a checkout holds stock for payment.
    pub order_ttl: Duration,
    /// Live-cart sockets one user may hold; a new one closes the oldest.
    pub live_sockets_per_user: usize,
}

/// Starts the service's entity supervisors (carts, orders) and its subscribers
/// (`live-carts`: catalog changes; `orders`: payments' results).
/// [`Orders::start_sweeper`] starts the sweeper after releasing holds whose
/// checkout died before this process started.
pub async fn start(deps: Dependencies<'_>) -> Result<Orders, DomainError> {
    let live = Arc::new(LiveCarts::new(deps.live_sockets_per_user));
    let checkouts = Arc::new(CheckoutsInProgress::default());
    let carts = EntityHandle::start(
        CartKind {
            store: deps.store.clone(),
            catalog: deps.catalog,
            currency: deps.currency,
            stock: deps.stock.clone(),
            order_ttl: deps.order_ttl,
            writer: deps.writer.clone(),
            checkouts: checkouts.clone(),
            live: live.clone(),
        },
        deps.cart_policy,
        deps.root.clone(),
    )
    .await?;
    deps.listeners.add(Arc::new(subscribers::LiveCartWatcher {
        live: live.clone(),
        carts: carts.clone(),
        views: deps.views,
    }));
    let orders = EntityHandle::start(
        OrderKind {
            store: deps.store.clone(),
            stock: deps.stock.clone(),
            writer: deps.writer,
        },
        deps.order_policy,
        deps.root,
    )
    .await?;
    deps.listeners.add(Arc::new(subscribers::OrdersOnPayments {
        orders: orders.clone(),
    }));
    Ok(Orders {
        carts,
        orders,
        live,
        store: deps.store,
        stock: deps.stock,
        checkouts,
    })
}

impl Orders {
    /// Releases the holds of checkouts that died before this process started
    /// (none runs here yet), then runs the sweeper every `every`.
    pub async fn start_sweeper(
        &self,
        tasks: &TaskSupervisor,
        every: Duration,
    ) -> Result<(), DomainError> {
        sweeper::release_orphan_holds(&*self.store, &*self.stock, &self.checkouts).await?;
        let (store, orders, stock, checkouts) = (
            self.store.clone(),
            self.orders.clone(),
            self.stock.clone(),
            self.checkouts.clone(),
        );
        tasks.keep_running("sweeper", move || {
            sweeper::sweep(
                store.clone(),
                orders.clone(),
                stock.clone(),
                checkouts.clone(),
                every,
            )
        });
        Ok(())
    }

    /// The Order actors, for the payments service in the same process.
    pub fn desk(&self) -> OrderActors {
        OrderActors(self.orders.clone())
    }

    /// The Cart actors (inspection).
    pub fn cart_actors(&self) -> &EntityHandle<CartKind> {
        &self.carts
    }

    /// The Order actors (inspection).
    pub fn order_actors(&self) -> &EntityHandle<OrderKind> {
        &self.orders
    }

    /// Open WebSockets watching carts.
    pub fn live_carts(&self) -> &Arc<LiveCarts> {
        &self.live
    }

    /// A user's cart.
    pub async fn cart(&self, user: UserId) -> Result<CartSnapshot, DomainError> {
        self.carts
            .call(user, |reply| CartMessage::Get { reply })
            .await?
    }

    /// Adds units of a product to a user's cart.
    pub async fn add_to_cart(
        &self,
        user: UserId,
        product_id: ProductId,
        quantity: i64,
    ) -> Result<CartSnapshot, DomainError> {
        self.carts
            .call(user, |reply| CartMessage::Add {
                product_id,
                quantity,
                reply,
            })
            .await?
    }

    /// Sets the quantity of a line of a user's cart.
    pub async fn update_cart_line(
        &self,
        user: UserId,
        product_id: ProductId,
        quantity: i64,
    ) -> Result<CartSnapshot, DomainError> {
        self.carts
            .call(user, |reply| CartMessage::Update {
                product_id,
                quantity,
                reply,
            })
            .await?
    }

    /// Removes a line from a user's cart.
    pub async fn remove_cart_line(
        &self,
        user: UserId,
        product_id: ProductId,
    ) -> Result<CartSnapshot, DomainError> {
        self.carts
            .call(user, |reply| CartMessage::Remove { product_id, reply })
            .await?
    }

    /// Turns the user's cart into a `pending_payment` order; `false` when the
    /// idempotency key named an order made before.
    pub async fn checkout(
        &self,
        user: UserId,
        idempotency_key: Option<String>,
    ) -> Result<(Order, bool), DomainError> {
        let (order, created) = self
            .carts
            .call(user, |reply| CartMessage::Checkout {
                idempotency_key: idempotency_key.clone(),
                trace: pazar_http::trace::current(),
                reply,
            })
            .await??;
        if created {
            // Its Order actor is asked for it at once (the payment session, the
            // customer's next read): it starts from it rather than reading it back.
            let committed = order.clone();
            self.orders.adopt(order.id, move |kind| OrderArgs {
                created: Some(committed),
                ..kind.arguments(order.id)
            });
        }
        Ok((order, created))
    }

    /// An order as seen by `user`: another user's order does not exist for them.
    pub async fn order_of(&self, user: UserId, id: OrderId) -> Result<Order, DomainError> {
        let order = self.order(id).await?;
        if order.user_id != user {
            return Err(DomainError::NotFound { what: "order" });
        }
        Ok(order)
    }

    /// Any order (admin).
    pub async fn order(&self, id: OrderId) -> Result<Order, DomainError> {
        self.orders
            .call(id, |reply| OrderMessage::Get { reply })
            .await
    }

    /// A page of the user's orders, newest first.
    pub async fn orders_of(&self, user: UserId, page: Page) -> Result<OrderPage, DomainError> {
        Ok(self.store.orders_of_user(user, page).await?)
    }

    /// A page of everyone's orders (admin), optionally of one status.
    pub async fn all_orders(
        &self,
        status: Option<OrderStatus>,
        page: Page,
    ) -> Result<OrderPage, DomainError> {
        Ok(self.store.orders_with_status(status, page).await?)
    }

    /// The customer cancels their pending order; its stock is released.
    pub async fn cancel_order(&self, user: UserId, id: OrderId) -> Result<Order, DomainError> {
        self.order_of(user, id).await?;
        self.orders
            .call(id, |reply| OrderMessage::Cancel { reply })
            .await?
    }

    /// Payment succeeded: the order's held stock is sold.
    pub async fn mark_order_paid(&self, id: OrderId) -> Result<Order, DomainError> {
        self.orders
            .call(id, |reply| OrderMessage::MarkPaid {
                handled: None,
                reply,
            })
            .await?
    }

    /// An admin ships a paid order.
    pub async fn fulfil_order(&self, id: OrderId) -> Result<Order, DomainError> {
        self.orders
            .call(id, |reply| OrderMessage::Fulfil { reply })
            .await?
    }
}
