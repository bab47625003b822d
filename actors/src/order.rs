//! Orders: `pending_payment → paid → fulfilled`, or `cancelled` / `expired`, or
//! `paid → refunded`.
//!
//! `Order(order_id)` is the one actor that moves an order between statuses. A move
//! that gives stock back (cancel, expire) first releases the order's holds at each
//! ProductStock actor, in product-id order, and only then stores the new status, its
//! history entry and its event in one transaction. Releasing is idempotent (a hold
//! already gone counts as released), so a crash between the two steps is repaired
//! by simply doing the move again.

use crate::events::Event;
use crate::store_writer::{StoreWriter, Write};
use crate::{DomainError, Money, OrderId, OrderTransition, ProductId, StockLevels, Store, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_events::orders as events;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use std::sync::Arc;

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Stock is held until `expires_at`; waiting for payment.
    PendingPayment,
    /// Paid: the held stock was sold.
    Paid,
    /// Shipped.
    Fulfilled,
    /// Cancelled by the customer while pending; stock released.
    Cancelled,
    /// Not paid in time; stock released.
    Expired,
    /// Paid, then refunded by an admin; the stock went back on the shelf.
    Refunded,
}

impl OrderStatus {
    /// The stored and serialised name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Refunded => "refunded",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending_payment" => Self::PendingPayment,
            "paid" => Self::Paid,
            "fulfilled" => Self::Fulfilled,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            "refunded" => Self::Refunded,
            _ => return None,
        })
    }
}

/// One line of an order, priced at checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    /// The product.
    pub product_id: ProductId,
    /// Its name at checkout.
    pub name: String,
    /// Its SKU at checkout.
    pub sku: String,
    /// Units bought.
    pub quantity: i64,
    /// Unit price at checkout.
    pub unit_price: Money,
}

/// One entry of an order's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    /// The status entered.
    pub status: OrderStatus,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, when there is more to say than the status.
    pub reason: Option<String>,
}

/// An order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Order {
    /// Id.
    pub id: OrderId,
    /// Whose.
    pub user_id: UserId,
    /// Current status.
    pub status: OrderStatus,
    /// Lines in product-id order.
    pub lines: Vec<OrderLine>,
    /// Sum of the lines.
    pub total: Money,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// Until when the stock is held for payment.
    pub expires_at: DateTime<Utc>,
    /// Every status it has been in, oldest first.
    pub history: Vec<StatusChange>,
    /// The Idempotency-Key of the checkout that made it.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

impl Order {
    /// The order as its events carry it.
    pub fn snapshot(&self) -> events::OrderSnapshot {
        let status = |status: OrderStatus| match status {
            OrderStatus::PendingPayment => events::OrderStatus::PendingPayment,
            OrderStatus::Paid => events::OrderStatus::Paid,
            OrderStatus::Fulfilled => events::OrderStatus::Fulfilled,
            OrderStatus::Cancelled => events::OrderStatus::Cancelled,
            OrderStatus::Expired => events::OrderStatus::Expired,
            OrderStatus::Refunded => events::OrderStatus::Refunded,
        };
        events::OrderSnapshot {
            id: self.id.0,
            user_id: self.user_id.0,
            status: status(self.status),
            lines: self
                .lines
                .iter()
                .map(|line| events::OrderLine {
                    product_id: line.product_id.0,
                    name: line.name.clone(),
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    unit_price: line.unit_price.into(),
                })
                .collect(),
            total: self.total.into(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            history: self
                .history
                .iter()
                .map(|change| events::StatusChange {
                    status: status(change.status),
                    at: change.at,
                    reason: change.reason.clone(),
                })
                .collect(),
        }
    }

    /// The event for a move into the current status (`orders.<status>`).
    pub fn event(&self) -> Event {
        let snapshot = self.snapshot();
        match self.status {
            OrderStatus::PendingPayment => Event::of(self.id, &events::OrderCreated(snapshot)),
            OrderStatus::Paid => Event::of(self.id, &events::OrderPaid(snapshot)),
            OrderStatus::Fulfilled => Event::of(self.id, &events::OrderFulfilled(snapshot)),
            OrderStatus::Cancelled => Event::of(self.id, &events::OrderCancelled(snapshot)),
            OrderStatus::Expired => Event::of(self.id, &events::OrderExpired(snapshot)),
            OrderStatus::Refunded => Event::of(self.id, &events::OrderRefunded(snapshot)),
        }
    }
}

/// A page of orders and how many there are in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderPage {
    /// The page, newest first.
    pub orders: Vec<Order>,
    /// Orders matching the listing, on every page.
    pub total: i64,
}

/// Which slice of a listing to return (newest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// How many, 1..=100.
    pub limit: i64,
    /// How many to skip.
    pub offset: i64,
}

impl Page {
    /// Validates `limit` (default 20, at most 100) and `offset` (default 0).
    pub fn parse(limit: Option<i64>, offset: Option<i64>) -> Result<Self, DomainError> {
        let limit = limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(DomainError::invalid("limit", "must be between 1 and 100"));
        }
        let offset = offset.unwrap_or(0);
        if offset < 0 {
            return Err(DomainError::invalid("offset", "must be zero or more"));
        }
        Ok(Self { limit, offset })
    }
}

/// A line that could not be reserved at checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Shortage {
    /// The product.
    pub product_id: ProductId,
    /// Units wanted.
    pub requested: i64,
    /// Units available (0 for a deleted product).
    pub available: i64,
}

/// How orders reach product stock (implemented over the ProductStock actors).
#[async_trait]
pub trait StockGateway: Send + Sync + 'static {
    /// Holds units for an order.
    async fn reserve(
        &self,
        product: ProductId,
        order: OrderId,
        quantity: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<StockLevels, DomainError>;
    /// Drops an order's hold.
    async fn release(&self, product: ProductId, order: OrderId)
        -> Result<StockLevels, DomainError>;
    /// Turns an order's hold into a sale.
    async fn commit(&self, product: ProductId, order: OrderId) -> Result<StockLevels, DomainError>;
    /// Puts sold units back on the shelf (a refund).
    async fn restock(
        &self,
        product: ProductId,
        quantity: i64,
        reason: &str,
    ) -> Result<StockLevels, DomainError>;
}

/// The checkouts running in this process, between their first hold and the commit
/// of their order. Holds of a checkout that is neither running nor has an order are
/// orphans (the checkout died) and are released by the sweeper.
#[derive(Default)]
pub struct CheckoutsInProgress(std::sync::Mutex<std::collections::HashSet<OrderId>>);

impl CheckoutsInProgress {
    /// Marks a checkout as running.
    pub fn start(&self, order: OrderId) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(order);
    }

    /// Marks a checkout as over (its order committed, or its holds given back).
    pub fn finish(&self, order: OrderId) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&order);
    }

    /// Whether the checkout for `order` is running.
    pub fn is_running(&self, order: OrderId) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&order)
    }
}

/// Releases the holds of `lines` for `order`; a hold already gone counts as released.
pub async fn release_all(
    stock: &dyn StockGateway,
    order: OrderId,
    products: &[ProductId],
) -> Result<(), DomainError> {
    for product in products {
        match stock.release(*product, order).await {
            Ok(_) | Err(DomainError::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// The messages an Order actor understands.
pub enum OrderMessage {
    /// The order as it is.
    Get {
        /// Answered at once.
        reply: RpcReplyPort<Order>,
    },
    /// The customer cancels a pending order.
    Cancel {
        /// Answered once stored.
        reply: RpcReplyPort<Result<Order, DomainError>>,
    },
    /// The sweeper expires a pending order past `expires_at`.
    Expire {
        /// Answered once stored.
        reply: RpcReplyPort<Result<Order, DomainError>>,
    },
    /// Payment succeeded: the held stock is sold.
    MarkPaid {
        /// Answered once stored.
        reply: RpcReplyPort<Result<Order, DomainError>>,
    },
    /// An admin ships a paid order.
    Fulfil {
        /// Answered once stored.
        reply: RpcReplyPort<Result<Order, DomainError>>,
    },
    /// The payment of a paid order was refunded: its units go back on the shelf.
    Refund {
        /// Answered once stored.
        reply: RpcReplyPort<Result<Order, DomainError>>,
    },
}

/// What an Order actor is started with.
pub struct OrderArgs {
    /// Which order.
    pub order_id: OrderId,
    /// Where it is loaded from and stored.
    pub store: Arc<dyn Store>,
    /// The ProductStock actors.
    pub stock: Arc<dyn StockGateway>,
    /// Commits the order's transitions (group commit).
    pub writer: StoreWriter,
}

/// The actor's state.
pub struct OrderState {
    order: Order,
    stock: Arc<dyn StockGateway>,
    writer: StoreWriter,
}

impl OrderState {
    fn refuse(&self, wanted: OrderStatus) -> DomainError {
        DomainError::conflict(
            "invalid_transition",
            format!(
                "the order is {} and cannot become {}",
                self.order.status.as_str(),
                wanted.as_str()
            ),
        )
    }

    /// Stores the move to `status` with its history entry and event.
    async fn enter(
        &mut self,
        status: OrderStatus,
        reason: Option<String>,
    ) -> Result<Order, DomainError> {
        let from = self.order.status;
        let mut next = self.order.clone();
        next.status = status;
        next.history.push(StatusChange {
            status,
            at: crate::now(),
            reason,
        });
        let transition = OrderTransition {
            order_id: next.id,
            from,
            change: next.history.last().cloned().expect("just pushed"),
            position: next.history.len() as i64 - 1,
        };
        self.writer
            .write(Write::Transition {
                transition,
                event: Box::new(next.event()),
            })
            .await?;
        self.order = next;
        Ok(self.order.clone())
    }

    async fn give_stock_back(&self) -> Result<(), DomainError> {
        let products: Vec<ProductId> = self.order.lines.iter().map(|l| l.product_id).collect();
        release_all(&*self.stock, self.order.id, &products).await
    }

    async fn transition(&mut self, wanted: OrderStatus) -> Result<Order, DomainError> {
        use OrderStatus::*;
        match (self.order.status, wanted) {
            (PendingPayment, Cancelled) => {
                self.give_stock_back().await?;
                self.enter(Cancelled, Some("cancelled by the customer".into()))
                    .await
            }
            (PendingPayment, Expired) => {
                if self.order.expires_at > Utc::now() {
                    return Err(DomainError::conflict(
                        "not_due",
                        "the order has not expired yet",
                    ));
                }
                self.give_stock_back().await?;
                self.enter(Expired, Some("not paid before expires_at".into()))
                    .await
            }
            (PendingPayment, Paid) => {
                for line in &self.order.lines {
                    match self.stock.commit(line.product_id, self.order.id).await {
                        // Already committed by an earlier attempt that crashed before storing.
                        Ok(_) | Err(DomainError::NotFound { .. }) => {}
                        Err(other) => return Err(other),
                    }
                }
                self.enter(Paid, None).await
            }
            (Paid, Fulfilled) => self.enter(Fulfilled, None).await,
            (Paid, Refunded) => {
                let reason = format!("refund of order {}", self.order.id);
                for line in &self.order.lines {
                    self.stock
                        .restock(line.product_id, line.quantity, &reason)
                        .await?;
                }
                self.enter(Refunded, Some("refunded by an admin".into()))
                    .await
            }
            _ => Err(self.refuse(wanted)),
        }
    }
}

/// The actor: behaviour only.
pub struct OrderActor;

impl Actor for OrderActor {
    type Msg = OrderMessage;
    type State = OrderState;
    type Arguments = OrderArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<OrderMessage>,
        args: OrderArgs,
    ) -> Result<OrderState, ActorProcessingErr> {
        let order = args
            .store
            .order(args.order_id)
            .await?
            .ok_or(DomainError::NotFound { what: "order" })?;
        Ok(OrderState {
            order,
            stock: args.stock,
            writer: args.writer,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<OrderMessage>,
        message: OrderMessage,
        state: &mut OrderState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            OrderMessage::Get { reply } => {
                let _ = reply.send(state.order.clone());
            }
            OrderMessage::Cancel { reply } => {
                let _ = reply.send(state.transition(OrderStatus::Cancelled).await);
            }
            OrderMessage::Expire { reply } => {
                let _ = reply.send(state.transition(OrderStatus::Expired).await);
            }
            OrderMessage::MarkPaid { reply } => {
                let _ = reply.send(state.transition(OrderStatus::Paid).await);
            }
            OrderMessage::Fulfil { reply } => {
                let _ = reply.send(state.transition(OrderStatus::Fulfilled).await);
            }
            OrderMessage::Refund { reply } => {
                let _ = reply.send(state.transition(OrderStatus::Refunded).await);
            }
        }
        Ok(())
    }
}
