//! `Order(order_id)`: the one actor that moves an order between statuses. A move
//! that gives stock back (cancel, expire) first releases the order's holds at each
//! ProductStock actor, in product-id order, and only then stores the new status, its
//! history entry and its event (through the store writer). Releasing is idempotent
//! (a hold already gone counts as released), so a crash between the two steps is
//! repaired by simply doing the move again.

use crate::store::OrderStore;
use pazar_actors::order::StockGateway;
use pazar_actors::store_writer::{StoreWriter, Write};
use pazar_actors::{
    DomainError, Handled, Order, OrderId, OrderStatus, OrderTransition, ProductId, StatusChange,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;

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
        /// The Kafka bridge's record of the event this applies, stored with
        /// the transition.
        handled: Option<Handled>,
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
        /// The Kafka bridge's record of the event this applies, stored with
        /// the transition.
        handled: Option<Handled>,
        /// Answered once stored.
        reply: RpcReplyPort<Result<Order, DomainError>>,
    },
}

/// What an Order actor is started with.
pub struct OrderArgs {
    /// Which order.
    pub order_id: OrderId,
    /// Where it is loaded from and stored.
    pub store: Arc<dyn OrderStore>,
    /// The ProductStock actors.
    pub stock: Arc<dyn StockGateway>,
    /// Commits the order's transitions (group commit).
    pub writer: StoreWriter,
    /// The order as its checkout has just committed it: the actor starts from
    /// it instead of loading it.
    pub created: Option<Order>,
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

    /// Stores the move to `status` with its history entry and event (and
    /// `handled`, the record of the message that asked for it, if any).
    async fn enter(
        &mut self,
        status: OrderStatus,
        reason: Option<String>,
        handled: Option<Handled>,
    ) -> Result<Order, DomainError> {
        let from = self.order.status;
        let mut next = self.order.clone();
        next.status = status;
        next.history.push(StatusChange {
            status,
            at: pazar_actors::now(),
            reason,
        });
        let transition = OrderTransition {
            order_id: next.id,
            from,
            change: next.history.last().cloned().expect("just pushed"),
            position: next.history.len() as i64 - 1,
        };
        let write = Write::Transition {
            transition,
            event: Box::new(next.event()),
        };
        self.writer.write_handled(write, handled).await?;
        self.order = next;
        Ok(self.order.clone())
    }

    async fn give_stock_back(&self) -> Result<(), DomainError> {
        let products: Vec<ProductId> = self.order.lines.iter().map(|l| l.product_id).collect();
        release_all(&*self.stock, self.order.id, &products).await
    }

    /// Moves to `wanted` if the rules allow it from where the order is;
    /// `handled` is the record of the message that asked, stored with the move.
    async fn transition(
        &mut self,
        wanted: OrderStatus,
        handled: Option<Handled>,
    ) -> Result<Order, DomainError> {
        use OrderStatus::*;
        match (self.order.status, wanted) {
            (PendingPayment, Cancelled) => {
                self.give_stock_back().await?;
                self.enter(Cancelled, Some("cancelled by the customer".into()), handled)
                    .await
            }
            (PendingPayment, Expired) => {
                if self.order.expires_at > chrono::Utc::now() {
                    return Err(DomainError::conflict(
                        "not_due",
                        "the order has not expired yet",
                    ));
                }
                self.give_stock_back().await?;
                self.enter(Expired, Some("not paid before expires_at".into()), handled)
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
                self.enter(Paid, None, handled).await
            }
            (Paid, Fulfilled) => self.enter(Fulfilled, None, handled).await,
            // The admin's call and the `payments.refunded` event both ask for it.
            (Refunded, Refunded) => Ok(self.order.clone()),
            (Paid, Refunded) => {
                // Each line's return is once per order, so a refund that failed or
                // crashed half-way and is tried again puts no unit back twice.
                for line in &self.order.lines {
                    match self
                        .stock
                        .return_sold(line.product_id, self.order.id, line.quantity)
                        .await
                    {
                        // A deleted product has no shelf to go back to.
                        Ok(_) | Err(DomainError::NotFound { .. }) => {}
                        Err(other) => return Err(other),
                    }
                }
                self.enter(Refunded, Some("refunded by an admin".into()), handled)
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
        let order = match args.created {
            Some(order) if order.id == args.order_id => order,
            _ => args
                .store
                .order(args.order_id)
                .await?
                .ok_or(DomainError::NotFound { what: "order" })?,
        };
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
                let _ = reply.send(state.transition(OrderStatus::Cancelled, None).await);
            }
            OrderMessage::Expire { reply } => {
                let _ = reply.send(state.transition(OrderStatus::Expired, None).await);
            }
            OrderMessage::MarkPaid { handled, reply } => {
                let _ = reply.send(state.transition(OrderStatus::Paid, handled).await);
            }
            OrderMessage::Fulfil { reply } => {
                let _ = reply.send(state.transition(OrderStatus::Fulfilled, None).await);
            }
            OrderMessage::Refund { handled, reply } => {
                let _ = reply.send(state.transition(OrderStatus::Refunded, handled).await);
            }
        }
        Ok(())
    }
}
