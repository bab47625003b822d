//! The store writer: group commit for every entity actor of a store (stock
//! changes and the orders checkouts create).
//!
//! An entity actor validates a message against its memory, applies it there, and
//! [`submit`](StoreWriter::submit)s the durable change with a completion that
//! answers the caller. The writer takes everything queued, commits it in **one**
//! transaction, and only then runs the completions. While one commit runs the next
//! batch gathers, so batches grow with load and stay at one write when it is quiet.
//!
//! The queue is bounded: when the store falls behind, `submit` waits for room, and
//! callers see that wait through their call timeout rather than through unbounded
//! memory growth.

use crate::events::{Event, EventSignal};
use crate::{DomainError, Order, ProductId, StockChange, StockLevels, Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Runs once the write it belongs to is committed (`Ok`) or has failed (`Err`).
pub type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send + 'static>;

/// One durable change the writer commits for an entity actor.
pub enum Write {
    /// A stock change of a ProductStock actor.
    Stock {
        /// The change.
        change: StockChange,
        /// The product's levels once it is applied, for its event.
        levels: StockLevels,
    },
    /// A checkout's new order (its `orders.created` event is written with it and
    /// its user's cart is emptied).
    CreateOrder(Box<Order>),
}

enum Command {
    Write {
        write: Write,
        on_done: Completion,
    },
    /// Answered once every write queued before it is committed (or failed).
    Barrier(oneshot::Sender<()>),
}

/// Tuning of the writer.
#[derive(Clone, Copy, Debug)]
pub struct StoreWriterConfig {
    /// Writes that may wait in the queue before `submit` waits for room.
    pub queue_capacity: usize,
    /// The most writes committed in one transaction.
    pub max_batch: usize,
}

impl Default for StoreWriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 8192,
            max_batch: 512,
        }
    }
}

/// A cheap, clonable handle to the store's one writer task.
#[derive(Clone)]
pub struct StoreWriter {
    queue: mpsc::Sender<Command>,
}

impl StoreWriter {
    /// Starts the writer task; `signal` is raised after every commit (each writes
    /// events). The task ends when every handle is dropped.
    pub fn start(
        store: Arc<dyn Store>,
        config: StoreWriterConfig,
        signal: EventSignal,
    ) -> (Self, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let task = tokio::spawn(run(store, receiver, config.max_batch.max(1), signal));
        (Self { queue }, task)
    }

    /// Queues a write; `on_done` runs after its transaction commits or fails.
    pub async fn submit(&self, write: Write, on_done: Completion) -> Result<(), DomainError> {
        self.queue
            .send(Command::Write { write, on_done })
            .await
            .map_err(|_| DomainError::Unavailable("the store writer has stopped".into()))
    }

    /// Waits until everything submitted before this call has been committed or failed.
    ///
    /// An entity actor calls this before loading its state, so a restarted actor
    /// never reads the store while its predecessor's last writes are still queued.
    pub async fn flush(&self) -> Result<(), DomainError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Command::Barrier(done))
            .await
            .map_err(|_| DomainError::Unavailable("the store writer has stopped".into()))?;
        wait.await
            .map_err(|_| DomainError::Unavailable("the store writer has stopped".into()))
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<Command>,
    max_batch: usize,
    signal: EventSignal,
) {
    let mut commands = Vec::with_capacity(max_batch);
    while receiver.recv_many(&mut commands, max_batch).await > 0 {
        let mut changes = Vec::with_capacity(commands.len());
        let mut levels = Vec::with_capacity(commands.len());
        let mut orders = Vec::new();
        let mut completions = Vec::with_capacity(commands.len());
        let mut barriers = Vec::new();
        for command in commands.drain(..) {
            match command {
                Command::Write { write, on_done } => {
                    match write {
                        Write::Stock {
                            change,
                            levels: after,
                        } => {
                            changes.push(change);
                            levels.push(after);
                        }
                        Write::CreateOrder(order) => orders.push(*order),
                    }
                    completions.push(on_done);
                }
                Command::Barrier(done) => barriers.push(done),
            }
        }
        if !completions.is_empty() {
            let mut events = batch_events(&changes, &levels);
            events.extend(orders.iter().map(Order::event));
            let outcome = store.commit_batch(&changes, &orders, &events).await;
            match &outcome {
                Ok(()) => {
                    tracing::trace!(writes = completions.len(), "batch committed");
                    signal.committed();
                }
                Err(error) => {
                    tracing::error!(%error, writes = completions.len(), "batch failed to commit")
                }
            }
            for on_done in completions {
                on_done(outcome.clone());
            }
        }
        for done in barriers {
            let _ = done.send(());
        }
    }
}

/// One event per product touched by the batch: `catalog.stock_changed` with its
/// levels after the batch, or `catalog.product_deleted` if it was retired.
fn batch_events(changes: &[StockChange], levels: &[StockLevels]) -> Vec<Event> {
    let mut order: Vec<ProductId> = Vec::new();
    let mut last: HashMap<ProductId, Option<StockLevels>> = HashMap::new();
    for (change, after) in changes.iter().zip(levels) {
        let (product_id, outcome) = match change {
            StockChange::Retire { product_id } => (*product_id, None),
            StockChange::Reserve { product_id, .. }
            | StockChange::Release { product_id, .. }
            | StockChange::Commit { product_id, .. }
            | StockChange::Adjust { product_id, .. } => (*product_id, Some(*after)),
        };
        if last.insert(product_id, outcome).is_none() {
            order.push(product_id);
        }
    }
    order
        .into_iter()
        .map(|product_id| match last[&product_id] {
            Some(levels) => crate::catalog::stock_changed_event(product_id, levels),
            None => crate::catalog::product_deleted_event(product_id),
        })
        .collect()
}
