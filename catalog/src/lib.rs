//! The catalog service: products, their stock (one `ProductStock` actor per
//! product, the only writer of its stock), stock adjustments and holds.
//!
//! - [`service`]: its rules and commands: [`Catalog`] (products: validation,
//!   rows, `catalog.product_upserted` events; reads through the [`views`] cache)
//!   and [`Inventory`] (adjustments, manual holds, sales, retiring a product);
//! - [`stock`]: the `ProductStock(product_id)` actor; [`kind`]: its entity kind
//!   and the actors seen as the order flow's `StockGateway`;
//! - [`store`]: its store port, [`ProductStore`];
//! - [`routes`]: its HTTP routes (`/api/v1/products…`, admin holds);
//!   [`internal`]: its internal API (stock holds for an orders service in another
//!   process) and that API's client;
//! - [`start`]: wires it into a process.
//!
//! The products' published model (`Product`, `ProductView`, `StockLevels`) lives in
//! the shared kernel (`pazar-actors`), because the order flow reads it and the
//! store writer commits stock changes in the same group commits as orders.

pub mod inbound;
pub mod internal;
pub mod kind;
pub mod routes;
pub mod search;
pub mod service;
pub mod stock;
pub mod store;
pub mod views;

pub use kind::{ProductStockKind, StockActors};
pub use service::{Catalog, Inventory, NewProduct, ProductPage, ProductPatch, ProductQuery};
pub use store::ProductStore;
pub use views::ProductViews;

use pazar_actors::{DomainError, EventSignal, StoreWriter};
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
    Ok(Started {
        catalog: Catalog::new(deps.store, views, deps.signal),
        inventory,
    })
}
