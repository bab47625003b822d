//! Pazar's generic supervision machinery, knowing no service.
//!
//! - An [`EntitySupervisor`](entity::EntitySupervisor) keeps a registry key → actor,
//!   spawns an entity actor on its first message (the actor loads its state from
//!   the store), passivates it after an idle time, restarts it after a panic with
//!   its state reloaded, and escalates to its parent past a restart-intensity
//!   limit. Callers go through an [`EntityHandle`](entity::EntityHandle), which
//!   puts a timeout on every call and turns a dead actor into an immediate error,
//!   never a hang.
//! - The [`TaskSupervisor`](tasks::TaskSupervisor) runs each loop (store writer,
//!   event deliveries, sweepers, mailrooms), restarts it after a panic (counted,
//!   with the panic's message, in the inspection snapshot), and gives it up past
//!   its restart limit, which makes the process unhealthy (`/ready` 503).
//! - [`snapshot`]: what `GET /api/v1/admin/supervisor` shows.
//!
//! The services' entity kinds and the process's root live in `app/`.

pub mod entity;
pub mod snapshot;
pub mod tasks;

pub use entity::{EntityHandle, EntityKind, EntityPolicy};
pub use snapshot::{
    ActorSnapshot, ConsumerSnapshot, KindSnapshot, PartitionSnapshot, TaskSnapshot, TreeSnapshot,
};
pub use tasks::{TaskPolicy, TaskSupervisor};
