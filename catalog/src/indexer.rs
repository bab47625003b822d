//! The search indexer: the subscriber that keeps the search index in step with
//! the catalog (`catalog.product_upserted`, `catalog.product_deleted`,
//! `catalog.stock_changed`), from the outbox or from Kafka alike.
//!
//! Each event becomes one [`SearchChange`], accepted into the indexer's
//! pending changes — one per product, a newer change merged into an older one
//! (a stock change into a pending upsert) — and its handling ends there: a
//! hot product's stream of stock changes never waits for index commits one by
//! one. The indexer's loop commits what is pending every [`COMMIT_EVERY`], so
//! a change is searchable well within a second. A stock-only event updates the
//! product's availability without its text.
//!
//! Accepting before committing is made safe by the index's `unsettled` marker:
//! written (durably) before the first change of a round is acknowledged,
//! cleared by the commit of the round (nothing is accepted while it runs). A
//! process that dies in between leaves it, and the next start rebuilds the
//! index from the store.

use crate::search::{SearchChange, SearchDoc, SearchIndex};
use crate::service::Inventory;
use async_trait::async_trait;
use pazar_actors::{
    DomainError, DomainEvent, EventSubscriber, Money, Product, ProductId, Sku, StockLevels,
    StoredEvent,
};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The subscriber's name (its cursor, its processed-events record).
pub const NAME: &str = "search-indexer";

/// How often pending changes are committed.
pub const COMMIT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Changes accepted and not yet committed.
#[derive(Default)]
struct Pending {
    /// Per product, its latest change (merged).
    changes: HashMap<ProductId, SearchChange>,
    /// The highest position among them.
    position: i64,
    /// The index has been told changes are unsettled.
    marked: bool,
    /// A rebuild the marker asks for has not finished: no commit settles.
    rebuilding: bool,
}

impl Pending {
    /// Adds `change`, merged with what is pending for its product.
    fn add(&mut self, change: SearchChange) {
        let product = match &change {
            SearchChange::Upsert(doc) => doc.product_id,
            SearchChange::Stock { product_id, .. } | SearchChange::Delete(product_id) => {
                *product_id
            }
        };
        let merged = match (self.changes.remove(&product), change) {
            // A stock change keeps a pending upsert's text.
            (Some(SearchChange::Upsert(mut doc)), SearchChange::Stock { available, .. }) => {
                doc.available = available;
                SearchChange::Upsert(doc)
            }
            (_, newer) => newer,
        };
        self.changes.insert(product, merged);
    }
}

/// The indexer: the subscriber's handle on its pending changes.
pub struct SearchIndexer {
    pending: Arc<Mutex<Pending>>,
    index: Arc<dyn SearchIndex>,
    inventory: Inventory,
}

/// The indexer's loop, run (and after a panic run again) by a task supervisor.
#[derive(Clone)]
pub struct IndexerLoop {
    index: Arc<dyn SearchIndex>,
    pending: Arc<Mutex<Pending>>,
}

impl SearchIndexer {
    /// The subscriber over `index`, and its loop (not yet running). `inventory`
    /// gives a changed product's current stock when its event has none.
    pub fn new(index: Arc<dyn SearchIndex>, inventory: Inventory) -> (Self, IndexerLoop) {
        let pending = Arc::new(Mutex::new(Pending::default()));
        (
            Self {
                pending: pending.clone(),
                index: index.clone(),
                inventory,
            },
            IndexerLoop { index, pending },
        )
    }

    async fn change_of(&self, payload: &DomainEvent) -> Result<Option<SearchChange>, DomainError> {
        Ok(Some(match payload {
            DomainEvent::ProductUpserted(upserted) => {
                let product = Product {
                    id: ProductId(upserted.product_id),
                    name: upserted.name.clone(),
                    description: upserted.description.clone(),
                    sku: Sku::parse(&upserted.sku)?,
                    price: Money::price(upserted.price.amount, &upserted.price.currency)?,
                    created_at: upserted.created_at,
                    updated_at: upserted.updated_at,
                };
                let levels = match upserted.stock {
                    Some(levels) => StockLevels::new(levels.on_hand, levels.reserved),
                    // A change of catalog fields: the stock is what it is now.
                    None => match self.inventory.stock_levels(product.id).await {
                        Ok(levels) => levels,
                        // Deleted since: its deletion follows.
                        Err(DomainError::NotFound { .. }) => return Ok(None),
                        Err(error) => return Err(error),
                    },
                };
                SearchChange::Upsert(SearchDoc::of(&product, levels))
            }
            DomainEvent::StockChanged(changed) => SearchChange::Stock {
                product_id: ProductId(changed.product_id),
                available: changed.levels.available,
            },
            DomainEvent::ProductDeleted(deleted) => {
                SearchChange::Delete(ProductId(deleted.product_id))
            }
            _ => return Ok(None),
        }))
    }
}

#[async_trait]
impl EventSubscriber for SearchIndexer {
    fn name(&self) -> &str {
        NAME
    }

    async fn handle(&self, event: &StoredEvent, payload: &DomainEvent) -> Result<(), DomainError> {
        let Some(change) = self.change_of(payload).await? else {
            return Ok(());
        };
        let mut pending = self.pending.lock().await;
        if !pending.marked {
            self.index.unsettled().await?;
            pending.marked = true;
        }
        pending.add(change);
        pending.position = pending.position.max(event.seq);
        Ok(())
    }
}

impl IndexerLoop {
    /// While `on`, the index is being rebuilt because its marker said changes
    /// were lost: commits leave the marker in place (a crash before the
    /// rebuild ends rebuilds again). Turned off, the next commit clears it.
    pub async fn rebuilding(&self, on: bool) {
        let mut pending = self.pending.lock().await;
        pending.rebuilding = on;
        if !on {
            pending.marked = true;
        }
    }

    /// One run: every [`COMMIT_EVERY`], commits what is pending (a failed
    /// commit's changes stay pending).
    pub fn run(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move {
            let mut every = tokio::time::interval(COMMIT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                pazar_actors::faults::point("search_indexer");
                // The lock is held through the commit: nothing is accepted
                // meanwhile, so the commit settles everything (one commit a
                // round; a handler waits at most one commit for the lock).
                let mut pending = this.pending.lock().await;
                let settles = !pending.rebuilding;
                if pending.changes.is_empty() && !(pending.marked && settles) {
                    continue;
                }
                let changes: Vec<SearchChange> =
                    pending.changes.drain().map(|(_, change)| change).collect();
                match this.index.apply(&changes, pending.position, settles).await {
                    Ok(()) => pending.marked &= !settles,
                    Err(error) => {
                        tracing::warn!(%error, changes = changes.len(), "search index commit failed; retrying");
                        for change in changes {
                            pending.add(change);
                        }
                    }
                }
            }
        }
    }
}
