//! The supervision tree: who starts, watches, restarts and stops Pazar's actors.
//!
//! ```text
//! root (ShopRoot)
//! ├── catalog: EntitySupervisor<ProductStockKind> ── ProductStock(product_id) …  (on demand)
//! ├── orders:  EntitySupervisor<CartKind> ── Cart(user_id) …                    (on demand)
//! ├── orders:  EntitySupervisor<OrderKind> ── Order(order_id) …                 (on demand)
//! └── payments: EntitySupervisor<PaymentSessionKind> ── PaymentSession(order_id) …
//! tasks (TaskSupervisor): store_writer (group commit), delivery:<subscriber>
//! (one per outbox subscriber), sweeper (expires due orders, releases lapsed
//! orphan holds), payment_reconciler, mailroom (sends the mails the `notifier`
//! subscriber queues)
//! ```
//!
//! The [`TaskSupervisor`](tasks::TaskSupervisor) runs each loop, restarts it after
//! a panic (counted, with the panic's message, in the inspection snapshot), and
//! gives it up past its restart limit, which makes the shop unhealthy (`/ready` 503).
//!
//! An [`EntitySupervisor`](entity::EntitySupervisor) keeps a registry key → actor,
//! spawns an entity actor on its first message (the actor loads its state from
//! the store), passivates it after an idle time, restarts it after a panic with its
//! state reloaded, and escalates to the root past a restart-intensity limit. Callers
//! go through an [`EntityHandle`](entity::EntityHandle), which puts a timeout on
//! every call and turns a dead actor into an immediate error, never a hang.
//!
//! [`Shop`] builds the whole tree and is what the HTTP layer holds.

mod background;
pub mod entity;
pub mod kinds;
pub mod notifier;
pub mod shop;
pub mod snapshot;
mod subscribers;
pub mod tasks;

pub use entity::{EntityHandle, EntityKind, EntityPolicy};
pub use kinds::{CartKind, OrderKind, PaymentSessionKind, ProductStockKind, StockActors};
pub use notifier::MailConfig;
pub use shop::{Shop, ShopConfig};
pub use snapshot::{ActorSnapshot, KindSnapshot, TaskSnapshot, TreeSnapshot};
pub use tasks::{TaskPolicy, TaskSupervisor};
