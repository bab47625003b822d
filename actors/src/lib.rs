//! Pazar's shared kernel: what every service slice builds on, independent of how
//! it is stored or served.
//!
//! This crate holds the common types (ids, [`Role`], [`Money`]); the records the
//! store writer commits in one group commit across services (stock changes,
//! [`Order`]s and their transitions, [`PaymentSession`]s) and the products'
//! published model; the ports between services those records make possible
//! ([`ProductCatalog`], [`StockGateway`]); the outbox [`EventBus`] with its keyed
//! lanes; and the kernel's own port, [`Store`] (the group commit and the outbox).
//! The services themselves are the crates `catalog`, `orders`, `users`,
//! `payments` and `notifications`. There is no SQL, HTTP or Kafka here.
//!
//! Durability follows one rule: an entity actor applies a change to its memory,
//! hands the write to the shared [`StoreWriter`], and the caller is answered only
//! after the writer has committed that write (group commit, see `store_writer`).

pub mod catalog;
pub mod error;
pub mod events;
pub mod faults;
pub mod ids;
pub mod lanes;
pub mod money;
pub mod order;
pub mod payments;
pub mod ports;
pub mod store_writer;
pub mod trace;

pub use catalog::{Product, ProductCatalog, ProductView, Sku, StockLevels};
pub use error::{DomainError, StoreError};
pub use events::{
    AttemptError, DomainEvent, Event, EventBus, EventError, EventSignal, EventSubscriber,
    EventType, Handled, Listeners, StoredEvent,
};
pub use ids::{OrderId, ProductId, Role, UserId};
pub use money::{Currency, Money};
pub use order::{
    Order, OrderLine, OrderPage, OrderStatus, Page, Shortage, StatusChange, StockGateway,
};
pub use payments::{PaymentSession, PaymentStatus, ProviderIntent};
pub use ports::{
    BridgeLedger, DeadLetter, HoldSource, OrderTransition, Reservation, RoleLeases, StockChange,
    StockRecord, Store, WriteSet,
};
pub use store_writer::StoreWriter;

/// The current time at microsecond precision: what both databases store, so a
/// timestamp reads back exactly as it was answered.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    pazar_events::now()
}
