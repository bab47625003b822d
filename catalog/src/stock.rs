//! `ProductStock(product_id)`: the one actor that changes a product's stock.
//!
//! It owns `on_hand` and the open reservations (`order_id → quantity, expires_at`);
//! `available = on_hand − Σ reserved`. Every message is checked against memory,
//! applied there, and written through the [`StoreWriter`]; the reply is sent from
//! the writer's completion, i.e. only after the change is committed. Because one
//! actor handles one message at a time, two callers can never both take the last
//! unit: stock is never negative and never oversold.
//!
//! If a write fails to commit (the writer isolates it: the rest of its batch
//! commits), its caller gets the error and the actor reloads its state from the
//! store, dropping the provisional change.

use crate::store::ProductStore;
use crate::views::ProductViews;
use chrono::{DateTime, Utc};
use pazar_actors::store_writer::Write;
use pazar_actors::{
    DomainError, Handled, HoldSource, OrderId, ProductId, Reservation, StockChange, StockLevels,
    StoreError, StoreWriter,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A second hold for an order that holds a different quantity.
pub(crate) const RESERVATION_EXISTS: &str = "reservation_exists";
/// An adjustment that would leave less on hand than is held.
pub(crate) const BELOW_RESERVED: &str = "below_reserved";
/// Retiring a product that still holds units for orders.
pub(crate) const OPEN_RESERVATIONS: &str = "open_reservations";
/// Every conflict the ProductStock actor answers (the internal API's client
/// reads them back).
pub(crate) const CONFLICTS: [&str; 3] = [RESERVATION_EXISTS, BELOW_RESERVED, OPEN_RESERVATIONS];

/// What every stock-changing message answers: the levels after the change.
pub type StockReply = RpcReplyPort<Result<StockLevels, DomainError>>;

/// The messages a ProductStock actor understands.
pub enum ProductStockMessage {
    /// Hold `quantity` units for `order_id`. Repeating the same reservation is a no-op.
    Reserve {
        /// The order the units are for.
        order_id: OrderId,
        /// Units, at least 1.
        quantity: i64,
        /// When the hold lapses.
        expires_at: DateTime<Utc>,
        /// Who takes it.
        source: HoldSource,
        /// Answered after the commit.
        reply: StockReply,
    },
    /// Drop the hold of `order_id`.
    Release {
        /// The order.
        order_id: OrderId,
        /// Answered after the commit.
        reply: StockReply,
    },
    /// The order is paid: its held units leave `on_hand`.
    Commit {
        /// The order.
        order_id: OrderId,
        /// Answered after the commit.
        reply: StockReply,
    },
    /// Restock (`delta > 0`) or correct (`delta < 0`) `on_hand`; never below what is reserved.
    Adjust {
        /// Change to `on_hand`.
        delta: i64,
        /// Why, for the adjustment log.
        reason: String,
        /// The Kafka bridge's record of the message this applies, committed
        /// with the adjustment.
        handled: Option<Handled>,
        /// Answered after the commit.
        reply: StockReply,
    },
    /// Set `on_hand` to a count (a warehouse's stocktake); refused below what
    /// is reserved, a no-op when it already is that count.
    SetOnHand {
        /// The new `on_hand`.
        on_hand: i64,
        /// Why, for the adjustment log.
        reason: String,
        /// The Kafka bridge's record of the message this applies, committed
        /// with the adjustment.
        handled: Option<Handled>,
        /// Answered after the commit.
        reply: StockReply,
    },
    /// Put the sold units of a refunded order back on the shelf; once per
    /// order: a repeat answers the levels and adds nothing.
    Return {
        /// The refunded order.
        order_id: OrderId,
        /// Units it bought of this product.
        quantity: i64,
        /// Answered after the commit.
        reply: StockReply,
    },
    /// Current levels.
    Get {
        /// Answered at once from memory.
        reply: RpcReplyPort<StockLevels>,
    },
    /// Delete the product; refused while reservations are open. The actor stops afterwards.
    Retire {
        /// Answered after the commit.
        reply: RpcReplyPort<Result<(), DomainError>>,
    },
    /// Sent by a write completion when a batch failed: reload from the store.
    WriteFailed,
    /// Panics inside the handler (only built for supervision tests).
    #[cfg(feature = "fault-injection")]
    Panic {
        /// Never answered: the panic drops it, which is what the test observes.
        reply: RpcReplyPort<()>,
    },
}

/// What a ProductStock actor is started with.
pub struct ProductStockArgs {
    /// The product whose stock this actor owns.
    pub product_id: ProductId,
    /// Where the state is loaded from.
    pub store: Arc<dyn ProductStore>,
    /// Where changes are written.
    pub writer: StoreWriter,
    /// Told of every committed change, for cached product reads.
    pub views: Arc<ProductViews>,
}

/// The actor's in-memory state: the store's state plus changes not yet committed.
pub struct ProductStockState {
    product_id: ProductId,
    on_hand: i64,
    reservations: HashMap<OrderId, Reservation>,
    /// Σ of `reservations` quantities, kept so `available` is O(1).
    reserved: i64,
    /// Orders whose units this actor put back (committed or on their way); the
    /// store answers for the others.
    returned: HashSet<OrderId>,
    /// Set once a Retire was accepted: every later message gets NotFound.
    retired: bool,
    store: Arc<dyn ProductStore>,
    writer: StoreWriter,
    views: Arc<ProductViews>,
}

impl ProductStockState {
    fn levels(&self) -> StockLevels {
        StockLevels::new(self.on_hand, self.reserved)
    }

    async fn load(&mut self) -> Result<(), DomainError> {
        // Writes queued by a predecessor (or by this actor before a failure) first.
        self.writer.flush().await?;
        let record = self
            .store
            .load_stock(self.product_id)
            .await?
            .ok_or(DomainError::NotFound { what: "product" })?;
        self.on_hand = record.on_hand;
        self.reserved = record.reservations.iter().map(|r| r.quantity).sum();
        self.reservations = record
            .reservations
            .into_iter()
            .map(|r| (r.order_id, r))
            .collect();
        // A return that failed is not one: the store says which were.
        self.returned.clear();
        Ok(())
    }

    /// Makes `on_hand` this count (an adjustment or a stocktake), logged as the
    /// difference; refused below what is reserved, answered at once when it
    /// already is.
    async fn set_on_hand(
        &mut self,
        myself: &ActorRef<ProductStockMessage>,
        product_id: ProductId,
        on_hand: i64,
        reason: String,
        handled: Option<Handled>,
        reply: StockReply,
    ) {
        if on_hand < self.reserved {
            let _ = reply.send(Err(DomainError::conflict(
                BELOW_RESERVED,
                format!(
                    "on_hand would become {on_hand}, below the {} units reserved",
                    self.reserved
                ),
            )));
            return;
        }
        let delta = on_hand - self.on_hand;
        if delta == 0 {
            let _ = reply.send(Ok(self.levels()));
            return;
        }
        self.on_hand = on_hand;
        let change = StockChange::Adjust {
            product_id,
            delta,
            reason,
        };
        self.write_then_reply(myself, change, handled, reply).await;
    }

    /// Hands `change` (with `handled`, the record of the message it applies)
    /// to the writer; the caller is answered once it is committed.
    async fn write_then_reply(
        &self,
        myself: &ActorRef<ProductStockMessage>,
        change: StockChange,
        handled: Option<Handled>,
        reply: StockReply,
    ) {
        let levels = self.levels();
        let me = myself.clone();
        let (views, product_id) = (self.views.clone(), self.product_id);
        let on_done = Box::new(move |outcome: Result<(), StoreError>| match outcome {
            Ok(()) => {
                // Committed: publish to the read cache before answering.
                views.stock_committed(product_id, levels);
                let _ = reply.send(Ok(levels));
            }
            Err(error) => {
                let _ = me.cast(ProductStockMessage::WriteFailed);
                let _ = reply.send(Err(error.into()));
            }
        });
        let write = Write::Stock { change, levels };
        if let Err(error) = self.writer.submit_handled(write, handled, on_done).await {
            // The writer is gone: the completion (and with it the reply port) was
            // dropped, so the caller already sees an error. Nothing was written.
            tracing::error!(product_id = %self.product_id, %error, "stock write not submitted");
        }
    }
}

/// The actor itself: behaviour only, all state lives in [`ProductStockState`].
pub struct ProductStock;

impl Actor for ProductStock {
    type Msg = ProductStockMessage;
    type State = ProductStockState;
    type Arguments = ProductStockArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ProductStockArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = ProductStockState {
            product_id: args.product_id,
            on_hand: 0,
            reservations: HashMap::new(),
            reserved: 0,
            returned: HashSet::new(),
            retired: false,
            store: args.store,
            writer: args.writer,
            views: args.views,
        };
        state.load().await?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let product_id = state.product_id;
        match message {
            ProductStockMessage::Get { reply } => {
                let _ = reply.send(state.levels());
            }
            ProductStockMessage::WriteFailed => {
                if let Err(error) = state.load().await {
                    // Could not even reload: stop, the supervisor restarts us from the store.
                    return Err(Box::new(error));
                }
                // Writes of the batch after the failed one committed and published
                // levels that counted it; the store's levels replace them.
                state.views.stock_committed(product_id, state.levels());
            }
            _ if state.retired => reply_not_found(message),
            ProductStockMessage::Reserve {
                order_id,
                quantity,
                expires_at,
                source,
                reply,
            } => {
                if quantity < 1 {
                    let _ = reply.send(Err(DomainError::invalid("quantity", "must be at least 1")));
                    return Ok(());
                }
                if let Some(existing) = state.reservations.get(&order_id) {
                    let answer = if existing.quantity == quantity {
                        Ok(state.levels())
                    } else {
                        Err(DomainError::conflict(
                            RESERVATION_EXISTS,
                            format!("order {order_id} already holds {} units", existing.quantity),
                        ))
                    };
                    let _ = reply.send(answer);
                    return Ok(());
                }
                let available = state.levels().available;
                if quantity > available {
                    let _ = reply.send(Err(DomainError::InsufficientStock {
                        product_id,
                        requested: quantity,
                        available,
                    }));
                    return Ok(());
                }
                let reservation = Reservation {
                    order_id,
                    quantity,
                    expires_at,
                    source,
                };
                state.reserved += quantity;
                state.reservations.insert(order_id, reservation.clone());
                let change = StockChange::Reserve {
                    product_id,
                    reservation,
                };
                state.write_then_reply(&myself, change, None, reply).await;
            }
            ProductStockMessage::Release { order_id, reply } => {
                let Some(held) = state.reservations.remove(&order_id) else {
                    let _ = reply.send(Err(DomainError::NotFound {
                        what: "reservation",
                    }));
                    return Ok(());
                };
                state.reserved -= held.quantity;
                let change = StockChange::Release {
                    product_id,
                    order_id,
                    quantity: held.quantity,
                };
                state.write_then_reply(&myself, change, None, reply).await;
            }
            ProductStockMessage::Commit { order_id, reply } => {
                let Some(held) = state.reservations.remove(&order_id) else {
                    let _ = reply.send(Err(DomainError::NotFound {
                        what: "reservation",
                    }));
                    return Ok(());
                };
                state.reserved -= held.quantity;
                state.on_hand -= held.quantity;
                let change = StockChange::Commit {
                    product_id,
                    order_id,
                    quantity: held.quantity,
                };
                state.write_then_reply(&myself, change, None, reply).await;
            }
            ProductStockMessage::Adjust {
                delta,
                reason,
                handled,
                reply,
            } => {
                if delta == 0 {
                    let _ = reply.send(Err(DomainError::invalid("delta", "must not be zero")));
                    return Ok(());
                }
                let Some(on_hand) = state.on_hand.checked_add(delta) else {
                    let _ = reply.send(Err(DomainError::invalid("delta", "is out of range")));
                    return Ok(());
                };
                state
                    .set_on_hand(&myself, product_id, on_hand, reason, handled, reply)
                    .await;
            }
            ProductStockMessage::Return {
                order_id,
                quantity,
                reply,
            } => {
                if quantity < 1 {
                    let _ = reply.send(Err(DomainError::invalid("quantity", "must be at least 1")));
                    return Ok(());
                }
                let returned = state.returned.contains(&order_id)
                    || match state.store.stock_returned(product_id, order_id).await {
                        Ok(returned) => returned,
                        Err(error) => {
                            let _ = reply.send(Err(error.into()));
                            return Ok(());
                        }
                    };
                if returned {
                    state.returned.insert(order_id);
                    let _ = reply.send(Ok(state.levels()));
                    return Ok(());
                }
                let Some(on_hand) = state.on_hand.checked_add(quantity) else {
                    let _ = reply.send(Err(DomainError::invalid("quantity", "is out of range")));
                    return Ok(());
                };
                state.on_hand = on_hand;
                state.returned.insert(order_id);
                let change = StockChange::Return {
                    product_id,
                    order_id,
                    quantity,
                };
                state.write_then_reply(&myself, change, None, reply).await;
            }
            ProductStockMessage::SetOnHand {
                on_hand,
                reason,
                handled,
                reply,
            } => {
                if on_hand < 0 {
                    let _ = reply.send(Err(DomainError::invalid(
                        "set_on_hand",
                        "must not be negative",
                    )));
                    return Ok(());
                }
                state
                    .set_on_hand(&myself, product_id, on_hand, reason, handled, reply)
                    .await;
            }
            ProductStockMessage::Retire { reply } => {
                if !state.reservations.is_empty() {
                    let _ = reply.send(Err(DomainError::conflict(
                        OPEN_RESERVATIONS,
                        format!(
                            "the product has {} open reservations",
                            state.reservations.len()
                        ),
                    )));
                    return Ok(());
                }
                state.retired = true;
                let me = myself.clone();
                let views = state.views.clone();
                let on_done = Box::new(move |outcome: Result<(), StoreError>| match outcome {
                    Ok(()) => {
                        views.removed(product_id);
                        let _ = reply.send(Ok(()));
                        // Drain, not stop: messages already queued are answered
                        // (NotFound, since retired) instead of being dropped.
                        let _ = me.drain();
                    }
                    Err(error) => {
                        let _ = me.cast(ProductStockMessage::WriteFailed);
                        let _ = reply.send(Err(error.into()));
                    }
                });
                state
                    .writer
                    .submit(
                        Write::Stock {
                            change: StockChange::Retire { product_id },
                            levels: state.levels(),
                        },
                        on_done,
                    )
                    .await?;
            }
            #[cfg(feature = "fault-injection")]
            ProductStockMessage::Panic { reply } => {
                let _keep_until_panic = reply;
                panic!("fault injection: ProductStock({product_id}) told to panic");
            }
        }
        Ok(())
    }
}

/// Answers a message sent to a retired product's actor.
fn reply_not_found(message: ProductStockMessage) {
    let not_found = || DomainError::NotFound { what: "product" };
    match message {
        ProductStockMessage::Reserve { reply, .. }
        | ProductStockMessage::Release { reply, .. }
        | ProductStockMessage::Commit { reply, .. }
        | ProductStockMessage::Adjust { reply, .. }
        | ProductStockMessage::Return { reply, .. } => {
            let _ = reply.send(Err(not_found()));
        }
        ProductStockMessage::Retire { reply } => {
            let _ = reply.send(Err(not_found()));
        }
        _ => {}
    }
}
