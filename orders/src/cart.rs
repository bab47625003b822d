//! `Cart(user_id)`: the one actor that changes a user's cart.
//!
//! It owns the cart's lines (`product_id → quantity`), loaded from the store when it
//! starts and written back before it answers. Adding checks that the product exists
//! and that the quantity wanted is available right now; the snapshot it answers with
//! shows each product's current name, price and availability, so a line whose
//! product ran short or was deleted is visible as such.

use crate::live::LiveCarts;
use crate::order::{release_all, CheckoutsInProgress};
use crate::store::OrderStore;
use pazar_actors::order::{Order, OrderLine, OrderStatus, Shortage, StatusChange, StockGateway};
use pazar_actors::store_writer::{StoreWriter, Write};
use pazar_actors::{Currency, DomainError, Money, OrderId, ProductCatalog, ProductId, UserId};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The most units one cart line (and one hold) may hold.
pub const MAX_QUANTITY: i64 = Money::MAX_QUANTITY;

/// What every cart message answers with.
pub type CartReply = RpcReplyPort<Result<CartSnapshot, DomainError>>;

/// How a line stands against the catalog right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// In the catalog with enough available stock.
    Ok,
    /// Fewer units available than the line's quantity.
    InsufficientStock,
    /// The product was deleted from the catalog.
    Unavailable,
}

/// One line of a cart, priced at the product's current price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CartLine {
    /// The product.
    pub product_id: ProductId,
    /// Its current name (`None` once deleted).
    pub name: Option<String>,
    /// Its SKU (`None` once deleted).
    pub sku: Option<String>,
    /// Units wanted.
    pub quantity: i64,
    /// Current unit price (`None` once deleted).
    pub unit_price: Option<Money>,
    /// `unit_price × quantity`.
    pub line_total: Option<Money>,
    /// Units available right now.
    pub available: i64,
    /// Whether the line can be bought as it is.
    pub status: LineStatus,
}

/// A cart as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CartSnapshot {
    /// The lines, in the order they were added.
    pub items: Vec<CartLine>,
    /// Sum of the line totals of products still in the catalog.
    pub total: Money,
}

/// The messages a Cart actor understands.
pub enum CartMessage {
    /// Add `quantity` units (on top of what the cart already holds).
    Add {
        /// The product.
        product_id: ProductId,
        /// Units to add, at least 1.
        quantity: i64,
        /// Answered after the change is stored.
        reply: CartReply,
    },
    /// Set a line's quantity.
    Update {
        /// The product (must be in the cart).
        product_id: ProductId,
        /// The new quantity, at least 1.
        quantity: i64,
        /// Answered after the change is stored.
        reply: CartReply,
    },
    /// Remove a line (no error if it is not there).
    Remove {
        /// The product.
        product_id: ProductId,
        /// Answered after the change is stored.
        reply: CartReply,
    },
    /// The current snapshot.
    Get {
        /// Answered at once.
        reply: CartReply,
    },
    /// Empty the cart.
    Clear {
        /// Answered after the change is stored.
        reply: CartReply,
    },
    /// Reserve every line and turn the cart into a `pending_payment` order.
    Checkout {
        /// The client's Idempotency-Key: a repeated checkout returns the same order.
        idempotency_key: Option<String>,
        /// The caller's trace: the stock holds (through the catalog's internal
        /// API when it runs elsewhere) carry it on.
        trace: Option<pazar_http::trace::TraceContext>,
        /// The order, and whether it was created now (false: found by its key).
        reply: RpcReplyPort<Result<(Order, bool), DomainError>>,
    },
}

/// What a Cart actor is started with.
pub struct CartArgs {
    /// Whose cart.
    pub user_id: UserId,
    /// Where lines are loaded from and written to.
    pub store: Arc<dyn OrderStore>,
    /// Product names, prices and availability.
    pub catalog: Arc<dyn ProductCatalog>,
    /// The currency of an empty cart's total.
    pub currency: Currency,
    /// The ProductStock actors, for checkout.
    pub stock: Arc<dyn StockGateway>,
    /// How long a checkout holds stock for payment.
    pub order_ttl: Duration,
    /// Commits new orders (group commit, with their events).
    pub writer: StoreWriter,
    /// The checkouts running in this process.
    pub checkouts: Arc<CheckoutsInProgress>,
    /// Open WebSockets watching carts.
    pub live: Arc<LiveCarts>,
}

/// The actor's state.
pub struct CartState {
    user_id: UserId,
    /// `(product, quantity)` in the order added.
    lines: Vec<(ProductId, i64)>,
    store: Arc<dyn OrderStore>,
    catalog: Arc<dyn ProductCatalog>,
    currency: Currency,
    stock: Arc<dyn StockGateway>,
    order_ttl: Duration,
    writer: StoreWriter,
    checkouts: Arc<CheckoutsInProgress>,
    live: Arc<LiveCarts>,
}

impl CartState {
    fn quantity(&self, product_id: ProductId) -> Option<i64> {
        self.lines
            .iter()
            .find(|(id, _)| *id == product_id)
            .map(|(_, quantity)| *quantity)
    }

    /// Checks that `quantity` units of `product_id` are available and priced in the
    /// cart's currency.
    async fn check_available(
        &self,
        product_id: ProductId,
        quantity: i64,
    ) -> Result<(), DomainError> {
        if quantity < 1 {
            return Err(DomainError::invalid("quantity", "must be at least 1"));
        }
        // A request's own quantity is bounded at the edge; beyond the bound here
        // is what the line already holds plus the request: the cart's state.
        if quantity > MAX_QUANTITY {
            return Err(DomainError::conflict(
                "line_limit",
                format!(
                    "a cart line holds at most {MAX_QUANTITY} units; the line of product \
                     {product_id} would hold {quantity}"
                ),
            ));
        }
        let view = self.catalog.get(product_id).await?;
        if quantity > view.stock.available {
            return Err(DomainError::InsufficientStock {
                product_id,
                requested: quantity,
                available: view.stock.available,
            });
        }
        let snapshot = self.snapshot().await?;
        // The cart's total with the new quantity must be an amount, not an overflow.
        let total = snapshot
            .items
            .iter()
            .filter(|line| line.product_id != product_id)
            .filter_map(|line| line.line_total)
            .try_fold(0i64, |total, line| total.checked_add(line.amount))
            .zip(view.product.price.times(quantity))
            .and_then(|(others, line)| others.checked_add(line.amount));
        if total.is_none() {
            return Err(DomainError::conflict(
                "amount_overflow",
                format!(
                    "{quantity} units of product {product_id} would make the cart's total \
                     larger than the largest amount"
                ),
            ));
        }
        let other_currency = snapshot.items.iter().find_map(|line| {
            line.unit_price.filter(|price| {
                line.product_id != product_id && price.currency != view.product.price.currency
            })
        });
        if let Some(price) = other_currency {
            return Err(DomainError::conflict(
                "currency_mismatch",
                format!(
                    "the cart is in {}, the product is priced in {}",
                    price.currency, view.product.price.currency
                ),
            ));
        }
        Ok(())
    }

    async fn set(&mut self, product_id: ProductId, quantity: i64) -> Result<(), DomainError> {
        self.store
            .set_cart_line(self.user_id, product_id, quantity)
            .await?;
        match self.lines.iter_mut().find(|(id, _)| *id == product_id) {
            Some(line) => line.1 = quantity,
            None => self.lines.push((product_id, quantity)),
        }
        Ok(())
    }

    /// Checkout: reserve every line in product-id order; if any cannot be reserved,
    /// release those taken and report every short line; else commit the order (with
    /// its `orders.created` event and the emptied cart) through the store writer.
    async fn checkout(
        &mut self,
        idempotency_key: Option<String>,
    ) -> Result<(Order, bool), DomainError> {
        if let Some(key) = &idempotency_key {
            if let Some(order) = self
                .store
                .order_by_idempotency_key(self.user_id, key)
                .await?
            {
                return Ok((order, false));
            }
        }
        let mut cart = self.snapshot().await?;
        if cart.items.is_empty() {
            // The request is fine; the cart's state is not: a conflict.
            return Err(DomainError::conflict(
                "empty_cart",
                "the cart is empty: add items before checking out",
            ));
        }
        // Refuse at once what the committed stock already cannot cover (a sold-out
        // flash sale then costs no write at all).
        let short: Vec<Shortage> = cart
            .items
            .iter()
            .filter(|line| line.status != LineStatus::Ok)
            .map(|line| Shortage {
                product_id: line.product_id,
                requested: line.quantity,
                available: line.available,
            })
            .collect();
        if !short.is_empty() {
            return Err(DomainError::LinesUnavailable(short));
        }
        cart.items.sort_by_key(|line| line.product_id);
        let order_id = OrderId::new();
        self.checkouts.start(order_id);
        let placed = self.place(order_id, &cart, idempotency_key).await;
        self.checkouts.finish(order_id);
        let order = placed?;
        self.lines.clear();
        Ok((order, true))
    }

    async fn place(
        &self,
        order_id: OrderId,
        cart: &CartSnapshot,
        idempotency_key: Option<String>,
    ) -> Result<Order, DomainError> {
        let created_at = pazar_actors::now();
        let ttl = chrono::Duration::from_std(self.order_ttl)
            .map_err(|_| DomainError::invalid("order_ttl", "is too long"))?;
        let expires_at = created_at + ttl;
        let mut taken = Vec::new();
        let mut short = Vec::new();
        for line in &cart.items {
            let shortage = |available| Shortage {
                product_id: line.product_id,
                requested: line.quantity,
                available,
            };
            match self
                .stock
                .reserve(line.product_id, order_id, line.quantity, expires_at)
                .await
            {
                Ok(_) => taken.push(line.product_id),
                Err(DomainError::InsufficientStock { available, .. }) => {
                    short.push(shortage(available))
                }
                Err(DomainError::NotFound { .. }) => short.push(shortage(0)),
                Err(other) => {
                    release_all(&*self.stock, order_id, &taken).await?;
                    return Err(other);
                }
            }
        }
        if !short.is_empty() {
            release_all(&*self.stock, order_id, &taken).await?;
            return Err(DomainError::LinesUnavailable(short));
        }
        let lines: Vec<OrderLine> = cart
            .items
            .iter()
            .map(|line| OrderLine {
                product_id: line.product_id,
                name: line.name.clone().unwrap_or_default(),
                sku: line.sku.clone().unwrap_or_default(),
                quantity: line.quantity,
                // Every line here is priced: deleted products were refused above.
                unit_price: line.unit_price.unwrap_or(Money {
                    amount: 0,
                    currency: cart.total.currency,
                }),
            })
            .collect();
        let order = Order {
            id: order_id,
            user_id: self.user_id,
            status: OrderStatus::PendingPayment,
            lines,
            total: cart.total,
            created_at,
            expires_at,
            history: vec![StatusChange {
                status: OrderStatus::PendingPayment,
                at: created_at,
                reason: None,
            }],
            idempotency_key,
        };
        let outcome = self
            .writer
            .write(Write::CreateOrder(Box::new(order.clone())))
            .await;
        if let Err(error) = outcome {
            // Nothing was stored: give the stock back (the sweeper would, as orphans).
            let _ = release_all(&*self.stock, order_id, &taken).await;
            return Err(error);
        }
        Ok(order)
    }

    /// Tells the cart's live watchers about a changed cart.
    fn announce(&self, outcome: &Result<CartSnapshot, DomainError>) {
        if let Ok(snapshot) = outcome {
            self.live.publish(self.user_id, snapshot);
        }
    }

    /// The lines priced at the catalog's current, committed state.
    pub async fn snapshot(&self) -> Result<CartSnapshot, DomainError> {
        let mut items = Vec::with_capacity(self.lines.len());
        let mut total = Money {
            amount: 0,
            currency: self.currency,
        };
        for (index, (product_id, quantity)) in self.lines.iter().enumerate() {
            let line = match self.catalog.get(*product_id).await {
                Ok(view) => {
                    let price = view.product.price;
                    // One currency per cart (adding enforces it): the lines'.
                    total.currency = price.currency;
                    // Prices changed since the lines were added can overflow: that is
                    // an error naming the line, never a capped total.
                    let line_total = price.times(*quantity);
                    let new_total = line_total.and_then(|line| line.plus(total));
                    let (Some(line_total), Some(new_total)) = (line_total, new_total) else {
                        return Err(DomainError::conflict(
                            "amount_overflow",
                            format!(
                                "the cart's total is larger than the largest amount from \
                                 line {index} (product {product_id}) on"
                            ),
                        ));
                    };
                    total = new_total;
                    CartLine {
                        product_id: *product_id,
                        name: Some(view.product.name),
                        sku: Some(view.product.sku.as_str().to_owned()),
                        quantity: *quantity,
                        unit_price: Some(price),
                        line_total: Some(line_total),
                        available: view.stock.available,
                        status: if *quantity > view.stock.available {
                            LineStatus::InsufficientStock
                        } else {
                            LineStatus::Ok
                        },
                    }
                }
                Err(DomainError::NotFound { .. }) => CartLine {
                    product_id: *product_id,
                    name: None,
                    sku: None,
                    quantity: *quantity,
                    unit_price: None,
                    line_total: None,
                    available: 0,
                    status: LineStatus::Unavailable,
                },
                Err(other) => return Err(other),
            };
            items.push(line);
        }
        Ok(CartSnapshot { items, total })
    }
}

/// The actor: behaviour only.
pub struct Cart;

impl Actor for Cart {
    type Msg = CartMessage;
    type State = CartState;
    type Arguments = CartArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<CartMessage>,
        args: CartArgs,
    ) -> Result<CartState, ActorProcessingErr> {
        let lines = args.store.load_cart(args.user_id).await?;
        Ok(CartState {
            user_id: args.user_id,
            lines,
            store: args.store,
            catalog: args.catalog,
            currency: args.currency,
            stock: args.stock,
            order_ttl: args.order_ttl,
            writer: args.writer,
            checkouts: args.checkouts,
            live: args.live,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<CartMessage>,
        message: CartMessage,
        state: &mut CartState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CartMessage::Add {
                product_id,
                quantity,
                reply,
            } => {
                let outcome = async {
                    if quantity < 1 {
                        return Err(DomainError::invalid("quantity", "must be at least 1"));
                    }
                    // An overflowing sum is over the line's maximum too.
                    let wanted = state
                        .quantity(product_id)
                        .unwrap_or(0)
                        .checked_add(quantity)
                        .unwrap_or(i64::MAX);
                    state.check_available(product_id, wanted).await?;
                    state.set(product_id, wanted).await?;
                    state.snapshot().await
                }
                .await;
                state.announce(&outcome);
                let _ = reply.send(outcome);
            }
            CartMessage::Update {
                product_id,
                quantity,
                reply,
            } => {
                let outcome = async {
                    if state.quantity(product_id).is_none() {
                        return Err(DomainError::NotFound { what: "cart line" });
                    }
                    state.check_available(product_id, quantity).await?;
                    state.set(product_id, quantity).await?;
                    state.snapshot().await
                }
                .await;
                state.announce(&outcome);
                let _ = reply.send(outcome);
            }
            CartMessage::Remove { product_id, reply } => {
                let outcome = async {
                    if state.quantity(product_id).is_some() {
                        state
                            .store
                            .remove_cart_line(state.user_id, product_id)
                            .await?;
                        state.lines.retain(|(id, _)| *id != product_id);
                    }
                    state.snapshot().await
                }
                .await;
                state.announce(&outcome);
                let _ = reply.send(outcome);
            }
            CartMessage::Get { reply } => {
                let _ = reply.send(state.snapshot().await);
            }
            CartMessage::Checkout {
                idempotency_key,
                trace,
                reply,
            } => {
                let outcome = match trace {
                    Some(trace) => {
                        pazar_http::trace::scope(trace, state.checkout(idempotency_key)).await
                    }
                    None => state.checkout(idempotency_key).await,
                };
                if matches!(outcome, Ok((_, true))) && state.live.is_watched(state.user_id) {
                    let emptied = state.snapshot().await;
                    state.announce(&emptied);
                }
                let _ = reply.send(outcome);
            }
            CartMessage::Clear { reply } => {
                let outcome = async {
                    state.store.clear_cart(state.user_id).await?;
                    state.lines.clear();
                    state.snapshot().await
                }
                .await;
                state.announce(&outcome);
                let _ = reply.send(outcome);
            }
        }
        Ok(())
    }
}
