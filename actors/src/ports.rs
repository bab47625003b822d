//! The ports: what the domain needs from the outside world, as traits.
//!
//! `pazar-store` implements [`Store`] for SQLite and PostgreSQL. Only entity actors
//! (through the [`crate::StoreWriter`]) change stock rows, orders and payment
//! sessions; services read through their own ports.

use crate::events::{Event, Handled, StoredEvent};
use crate::order::{Order, OrderStatus, StatusChange};
use crate::payments::PaymentSession;
use crate::{OrderId, ProductId, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Units of one product held for one order until it is paid, cancelled or expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The order the units are held for.
    pub order_id: OrderId,
    /// How many units.
    pub quantity: i64,
    /// When the hold lapses unless the order is paid (enforced by the order sweeper).
    pub expires_at: DateTime<Utc>,
    /// Who took it.
    pub source: HoldSource,
}

/// Who took a hold of stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldSource {
    /// A checkout, for the order of the same id (released if that order never appears).
    Checkout,
    /// An administrator, by hand (lapses at `expires_at`).
    Manual,
}

impl HoldSource {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Checkout => "checkout",
            Self::Manual => "manual",
        }
    }
}

/// The durable state of one product's stock: what its ProductStock actor loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockRecord {
    /// Units physically in stock (including reserved ones).
    pub on_hand: i64,
    /// Open reservations.
    pub reservations: Vec<Reservation>,
}

/// An order's move from one status to the next, written by the store writer with
/// its history entry and its event.
#[derive(Clone, Debug)]
pub struct OrderTransition {
    /// Which order.
    pub order_id: OrderId,
    /// The status it must still be in; otherwise the write fails with `Conflict`.
    pub from: OrderStatus,
    /// The status entered, when and why.
    pub change: StatusChange,
    /// The history entry's position (0 is the order's creation).
    pub position: i64,
}

/// What one group commit of the store writer writes, kind by kind, each in
/// submission order.
#[derive(Clone, Copy, Debug)]
pub struct WriteSet<'a> {
    /// Stock changes.
    pub stock: &'a [StockChange],
    /// New orders.
    pub orders: &'a [Order],
    /// Orders' status transitions.
    pub transitions: &'a [OrderTransition],
    /// New payment sessions.
    pub opened: &'a [PaymentSession],
    /// Payment sessions' new status, error and `updated_at`.
    pub payments: &'a [PaymentSession],
    /// The Kafka bridge's records of the messages these writes apply.
    pub handled: &'a [Handled],
}

/// One durable change to a product's stock, written by the store writer.
#[derive(Clone, Debug)]
pub enum StockChange {
    /// Hold units for an order.
    Reserve {
        /// The product.
        product_id: ProductId,
        /// The new hold.
        reservation: Reservation,
    },
    /// Drop an order's hold.
    Release {
        /// The product.
        product_id: ProductId,
        /// The order whose hold is dropped.
        order_id: OrderId,
        /// The units the hold was for.
        quantity: i64,
    },
    /// The order was paid: the held units leave the shop.
    Commit {
        /// The product.
        product_id: ProductId,
        /// The order whose hold becomes a sale.
        order_id: OrderId,
        /// The units sold (subtracted from `on_hand`).
        quantity: i64,
    },
    /// Restock or correction of `on_hand`.
    Adjust {
        /// The product.
        product_id: ProductId,
        /// Added to `on_hand` (negative removes).
        delta: i64,
        /// Why, kept in the adjustment log.
        reason: String,
    },
    /// Sold units of an order come back on the shelf (its refund): at most once
    /// per product and order, which the store's unique key holds to.
    Return {
        /// The product.
        product_id: ProductId,
        /// The refunded order.
        order_id: OrderId,
        /// Units added back to `on_hand`.
        quantity: i64,
    },
    /// The product is deleted from the catalog.
    Retire {
        /// The product.
        product_id: ProductId,
    },
}

/// The shared kernel's store: the group commit and the outbox. Each service's own
/// data goes through its slice's port (`ProductStore`, `OrderStore`,
/// `PaymentStore`, `UserStore`, `MailStore`); `pazar-store` implements them all,
/// for SQLite and PostgreSQL.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Applies a store writer's batch — stock changes, then new orders (each also
    /// empties its user's cart), then order transitions (`Conflict` if an order is
    /// no longer in the transition's `from`), then new payment sessions
    /// (`Conflict` if an order has one), then payment session updates, then
    /// the events, then the records of the messages they apply (a record already
    /// there is left as it is) — in one transaction: all or nothing.
    async fn commit_batch(&self, writes: &WriteSet<'_>, events: &[Event])
        -> Result<(), StoreError>;

    /// Outbox events with `seq` greater than `after`, in `seq` (commit) order.
    async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError>;
    /// The `seq` of the newest outbox event (0 when empty).
    async fn last_event_seq(&self) -> Result<i64, StoreError>;

    /// The last `seq` a subscriber finished (0 for a new subscriber).
    async fn event_cursor(&self, subscriber: &str) -> Result<i64, StoreError>;
    /// Remembers how far a subscriber got.
    async fn save_event_cursor(&self, subscriber: &str, seq: i64) -> Result<(), StoreError>;
}

/// Leases of the entity-hosting roles (catalog, orders, payments): the one
/// process active for a role holds its lease and renews it; another waits as a
/// standby and takes it when it lapses. Each take raises the role's **epoch**,
/// and the store refuses a batch written under an older epoch
/// ([`StoreError::Fenced`]), so a process that was paused past its lease cannot
/// overwrite what its successor wrote.
#[async_trait]
pub trait RoleLeases: Send + Sync + 'static {
    /// Takes `role` for `holder` if it is free or lapsed: the new epoch, or `None`
    /// while another holder's lease runs. From then on this store's batches are
    /// fenced by that epoch.
    async fn acquire(
        &self,
        role: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<i64>, StoreError>;
    /// Extends the lease; `false` when it is no longer this holder's at `epoch`.
    async fn renew(
        &self,
        role: &str,
        holder: &str,
        epoch: i64,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up (at shutdown), so a standby takes over at once.
    async fn release(&self, role: &str, holder: &str, epoch: i64) -> Result<(), StoreError>;
}

/// A message the Kafka bridge could not deliver, kept for an operator: what it
/// was, where it came from and why it failed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DeadLetter {
    /// Its id (UUIDv7: time-ordered).
    pub id: uuid::Uuid,
    /// The consumer group that gave up on it.
    pub group: String,
    /// The subscriber that failed, when one did (none when the message could
    /// not be read at all).
    pub subscriber: Option<String>,
    /// Where it was read.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, as text.
    pub key: Option<String>,
    /// Its value, as text (lossy where it was not UTF-8).
    pub payload: String,
    /// Its headers, as text.
    pub headers: Vec<(String, String)>,
    /// The last error.
    pub error: String,
    /// How many attempts were made.
    pub attempts: i32,
    /// When it was given up on.
    pub created_at: DateTime<Utc>,
    /// When an operator last fed it back, if ever.
    pub replayed_at: Option<DateTime<Utc>>,
}

/// What the Kafka bridge keeps in the store: which events each subscriber has
/// processed (so a redelivered message changes nothing) and the dead letters.
#[async_trait]
pub trait BridgeLedger: Send + Sync + 'static {
    /// Whether `subscriber` has processed the event `event`.
    async fn processed(&self, subscriber: &str, event: uuid::Uuid) -> Result<bool, StoreError>;
    /// Records that `subscriber` has processed `event` (again is harmless).
    async fn mark_processed(&self, subscriber: &str, event: uuid::Uuid) -> Result<(), StoreError>;
    /// Keeps a dead letter.
    async fn add_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError>;
    /// Dead letters, newest first.
    async fn dead_letters(&self, limit: i64, offset: i64) -> Result<Vec<DeadLetter>, StoreError>;
    /// One dead letter.
    async fn dead_letter(&self, id: uuid::Uuid) -> Result<Option<DeadLetter>, StoreError>;
    /// Records that `id` was fed back at `at`.
    async fn mark_replayed(&self, id: uuid::Uuid, at: DateTime<Utc>) -> Result<(), StoreError>;
}
