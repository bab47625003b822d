//! The catalog service: products, their stock (one `ProductStock` actor per
//! product, the only writer of its stock), stock adjustments and holds.
//!
//! - [`service`]: its rules and commands: [`Catalog`] (products: validation,
//!   rows, `catalog.product_upserted` events; reads through the [`views`] cache)
//!   and [`Inventory`] (adjustments, manual holds, sales, retiring a product);
//! - [`stock`]: the `ProductStock(product_id)` actor; [`kind`]: its entity kind
//!   and the actors seen as the order flow's `StockGateway`;
//! - [`store`]: its store port, [`ProductStore`]; [`search`]: its search
//!   port, `SearchIndex` (adapters in `pazar-search`); [`indexer`]: the
//!   subscriber that keeps the index in step with the catalog's events;
//! - [`routes`]: its HTTP routes (`/api/v1/products…`, admin holds);
//!   [`internal`]: its internal API (stock holds for an orders service in another
//!   process) and that API's client;
//! - [`start`]: wires it into a process.
//!
//! The products' published model (`Product`, `ProductView`, `StockLevels`) lives in
//! the shared kernel (`pazar-actors`), because the order flow reads it and the
//! store writer commits stock changes in the same group commits as orders.

pub mod inbound;
pub mod indexer;
pub mod internal;
pub mod kind;
pub mod routes;
pub mod search;
pub mod service;
pub mod stock;
pub mod store;
pub mod views;

pub use kind::{ProductStockKind, StockActors};
pub use service::{
    Catalog, Inventory, NewProduct, ProductPage, ProductPatch, ProductQuery, SearchPage,
};
pub use store::ProductStore;
pub use views::ProductViews;

use pazar_actors::{DomainError, EventSignal, Listeners, StoreWriter};
use pazar_supervisor::{EntityHandle, EntityPolicy, TaskSupervisor};
use ractor::ActorCell;
use std::sync::Arc;
use std::time::Duration;

/// What the service needs from the process that runs it.
pub struct Dependencies<'a> {
    /// Products and stock rows.
    pub store: Arc<dyn ProductStore>,
    /// Commits stock changes (group commit).
    pub writer: StoreWriter,
    /// Raised after the service's own commits (products' events).
    pub signal: EventSignal,
    /// How ProductStock actors are supervised.
    pub policy: EntityPolicy,
    /// The supervisor its entity supervisor is linked to.
    pub root: ActorCell,
    /// Runs its hold sweeper.
    pub tasks: &'a TaskSupervisor,
    /// How often lapsed manual holds are looked for.
    pub sweep_every: Duration,
    /// Where its subscribers (the search indexer) are added.
    pub listeners: &'a Listeners,
    /// Product search, if this process keeps an index.
    pub search: Option<SearchSetup>,
}

/// The search index and where the shop's events stand, to tell at start
/// whether the index must be rebuilt.
pub struct SearchSetup {
    /// The index.
    pub index: Arc<dyn search::SearchIndex>,
    /// How far the indexer's subscription says it has applied events (its
    /// outbox cursor; 0 over Kafka, whose offsets are not outbox positions).
    pub applied: i64,
    /// The newest outbox position now: a rebuild stands at it.
    pub head: i64,
}

/// The started service.
#[derive(Clone)]
pub struct Started {
    /// Products.
    pub catalog: Catalog,
    /// Stock commands.
    pub inventory: Inventory,
}

/// Starts the service: the ProductStock entity supervisor, the products' service
/// over one committed-views cache, and the hold sweeper (which releases manual
/// holds past their `expires_at`).
pub async fn start(deps: Dependencies<'_>) -> Result<Started, DomainError> {
    let views = Arc::new(ProductViews::default());
    let actors = EntityHandle::start(
        ProductStockKind {
            store: deps.store.clone(),
            writer: deps.writer,
            views: views.clone(),
        },
        deps.policy,
        deps.root,
    )
    .await?;
    let inventory = Inventory::new(actors, deps.store.clone());
    {
        let (inventory, every) = (inventory.clone(), deps.sweep_every);
        deps.tasks.keep_running("hold_sweeper", move || {
            service::sweep_lapsed_holds(inventory.clone(), every)
        });
    }
    let mut catalog = Catalog::new(deps.store, views, deps.signal);
    if let Some(setup) = deps.search {
        catalog = catalog.with_search(setup.index.clone());
        let (indexer, run) = indexer::SearchIndexer::new(setup.index.clone(), inventory.clone());
        deps.listeners.add(Arc::new(indexer));
        backfill_if_behind(&catalog, &setup, &run).await?;
        deps.tasks.keep_running(indexer::NAME, move || run.run());
    }
    Ok(Started { catalog, inventory })
}

/// Rebuilds the index from the store, in the background, when it has lost
/// what the indexer's cursor says it applied (deleted or restored from an old
/// copy), is empty while the catalog is not, or was left with accepted
/// changes uncommitted (the last process died).
async fn backfill_if_behind(
    catalog: &Catalog,
    setup: &SearchSetup,
    indexer: &indexer::IndexerLoop,
) -> Result<(), DomainError> {
    let status = setup.index.status().await?;
    let empty = status.documents == 0 && catalog.has_products().await?;
    if status.position >= setup.applied && !empty && !status.interrupted {
        return Ok(());
    }
    tracing::info!(
        documents = status.documents,
        position = status.position,
        interrupted = status.interrupted,
        applied = setup.applied,
        "the search index is behind the catalog; rebuilding it from the store"
    );
    indexer.rebuilding(true).await;
    let (catalog, head, indexer) = (catalog.clone(), setup.head, indexer.clone());
    tokio::spawn(async move {
        match catalog.reindex(head, Arc::new(|_, _| {})).await {
            Ok(count) => {
                tracing::info!(count, "the search index is rebuilt");
                indexer.rebuilding(false).await;
            }
            // The marker stays (if there was one): the next start tries again.
            Err(error) => tracing::error!(%error, "rebuilding the search index failed"),
        }
    });
    Ok(())
}
