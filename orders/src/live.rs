//! `LiveCarts`: who is watching which cart, and pushing snapshots to them.
//!
//! A WebSocket subscribes for its user and gets a bounded queue of snapshots. The
//! Cart actor publishes after every change; the catalog watcher publishes when a
//! product in a watched cart changed in a way the customer must see (price, name,
//! deletion, or availability falling below the quantity). Publishing never waits:
//! a socket whose queue is full is too slow and is dropped, so a stuck client can
//! never hold up a cart actor.

use crate::cart::CartSnapshot;
use pazar_actors::{ProductId, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc;

/// Snapshots a slow socket may have queued before it is dropped.
const QUEUE: usize = 16;

struct Watcher {
    id: u64,
    sender: mpsc::Sender<CartSnapshot>,
    /// Why the hub dropped it, read by its socket to say so when closing.
    closed: Arc<OnceLock<&'static str>>,
}

/// Why a socket was closed when the oldest of too many was dropped.
pub const REPLACED: &str = "too many live carts open for this user; the oldest was closed";
/// Why a socket was closed when it could not keep up.
pub const TOO_SLOW: &str = "the connection did not keep up with the cart's changes";

#[derive(Default)]
struct Watched {
    watchers: Vec<Watcher>,
    /// The last snapshot pushed, to tell a material change from noise.
    last: Option<CartSnapshot>,
}

/// The registry of live cart watchers.
pub struct LiveCarts {
    carts: Mutex<HashMap<UserId, Watched>>,
    next_id: AtomicU64,
    /// Sockets one user may hold; a new one closes the oldest.
    max_per_user: usize,
}

/// Live sockets one user may hold unless configured otherwise.
pub const DEFAULT_SOCKETS_PER_USER: usize = 5;

impl Default for LiveCarts {
    fn default() -> Self {
        Self::new(DEFAULT_SOCKETS_PER_USER)
    }
}

/// One socket's subscription; dropping it unsubscribes.
pub struct CartSubscription {
    /// Snapshots, oldest first; `None` once the hub dropped this subscriber.
    pub receiver: mpsc::Receiver<CartSnapshot>,
    user: UserId,
    id: u64,
    hub: Arc<LiveCarts>,
    closed: Arc<OnceLock<&'static str>>,
}

impl CartSubscription {
    /// Why the hub dropped this subscriber ([`REPLACED`], [`TOO_SLOW`]), once
    /// `receiver` has ended.
    pub fn close_reason(&self) -> Option<&'static str> {
        self.closed.get().copied()
    }
}

impl Watcher {
    /// Records why, before the watcher (and with it its sender) is dropped.
    fn say_closed(&self, reason: &'static str) {
        let _ = self.closed.set(reason);
    }
}

impl Drop for CartSubscription {
    fn drop(&mut self) {
        let mut carts = self.hub.carts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(watched) = carts.get_mut(&self.user) {
            watched.watchers.retain(|w| w.id != self.id);
            if watched.watchers.is_empty() {
                carts.remove(&self.user);
            }
        }
    }
}

/// The parts of a snapshot a customer must be told about: availability counts
/// only through each line's status.
fn material(snapshot: &CartSnapshot) -> impl PartialEq + '_ {
    let lines: Vec<_> = snapshot
        .items
        .iter()
        .map(|l| {
            (
                l.product_id,
                l.quantity,
                l.status,
                l.unit_price,
                l.name.as_deref(),
            )
        })
        .collect();
    (lines, snapshot.total)
}

impl LiveCarts {
    /// A hub allowing `max_per_user` sockets per user (at least one).
    pub fn new(max_per_user: usize) -> Self {
        Self {
            carts: Mutex::default(),
            next_id: AtomicU64::new(0),
            max_per_user: max_per_user.max(1),
        }
    }

    /// Starts watching `user`'s cart; if the user already has the most sockets
    /// allowed, the oldest is dropped (its socket closes, saying [`REPLACED`]).
    pub fn subscribe(self: &Arc<Self>, user: UserId) -> CartSubscription {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let closed = Arc::new(OnceLock::new());
        let mut carts = self.carts.lock().unwrap_or_else(|e| e.into_inner());
        let watchers = &mut carts.entry(user).or_default().watchers;
        while watchers.len() >= self.max_per_user {
            tracing::info!(%user, "closing the oldest live cart socket of a user with too many");
            watchers.remove(0).say_closed(REPLACED);
        }
        watchers.push(Watcher {
            id,
            sender,
            closed: closed.clone(),
        });
        drop(carts);
        CartSubscription {
            receiver,
            user,
            id,
            hub: self.clone(),
            closed,
        }
    }

    /// True when someone watches `user`'s cart.
    pub fn is_watched(&self, user: UserId) -> bool {
        self.carts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&user)
    }

    /// Pushes `snapshot` to every watcher of `user` (after a change of the cart).
    pub fn publish(&self, user: UserId, snapshot: &CartSnapshot) {
        self.push(user, snapshot, false);
    }

    /// Pushes `snapshot` only if it differs materially from the last one pushed
    /// (after a catalog change).
    pub fn publish_if_changed(&self, user: UserId, snapshot: &CartSnapshot) {
        self.push(user, snapshot, true);
    }

    fn push(&self, user: UserId, snapshot: &CartSnapshot, only_if_changed: bool) {
        let mut carts = self.carts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(watched) = carts.get_mut(&user) else {
            return;
        };
        if only_if_changed
            && watched
                .last
                .as_ref()
                .is_some_and(|last| material(last) == material(snapshot))
        {
            return;
        }
        watched.last = Some(snapshot.clone());
        watched
            .watchers
            .retain(|watcher| match watcher.sender.try_send(snapshot.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::info!(%user, "dropping a live cart socket that does not keep up");
                    watcher.say_closed(TOO_SLOW);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        if watched.watchers.is_empty() {
            carts.remove(&user);
        }
    }

    /// Records the snapshot a new watcher starts from.
    pub fn seen(&self, user: UserId, snapshot: &CartSnapshot) {
        if let Some(watched) = self
            .carts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&user)
        {
            watched.last = Some(snapshot.clone());
        }
    }

    /// Watched users whose last snapshot has a line of `product`.
    pub fn watchers_of(&self, product: ProductId) -> Vec<UserId> {
        self.carts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, watched)| {
                watched
                    .last
                    .as_ref()
                    .is_some_and(|s| s.items.iter().any(|l| l.product_id == product))
            })
            .map(|(user, _)| *user)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cart::{CartLine, LineStatus};
    use pazar_actors::Money;

    fn snapshot(product: ProductId, available: i64, status: LineStatus) -> CartSnapshot {
        let price = Money::price(100, "EUR").unwrap();
        CartSnapshot {
            items: vec![CartLine {
                product_id: product,
                name: Some("Mug".into()),
                sku: Some("MUG".into()),
                quantity: 2,
                unit_price: Some(price),
                line_total: Some(Money {
                    amount: 200,
                    ..price
                }),
                available,
                status,
            }],
            total: Money {
                amount: 200,
                ..price
            },
        }
    }

    #[tokio::test]
    async fn a_user_over_the_socket_limit_loses_the_oldest() {
        let hub = Arc::new(LiveCarts::new(2));
        let user = UserId::new();
        let mut oldest = hub.subscribe(user);
        let mut second = hub.subscribe(user);
        let mut newest = hub.subscribe(user);
        assert!(
            oldest.receiver.recv().await.is_none(),
            "the oldest stays open"
        );
        assert_eq!(oldest.close_reason(), Some(REPLACED));
        hub.publish(user, &snapshot(ProductId::new(), 1, LineStatus::Ok));
        assert!(second.receiver.recv().await.is_some());
        assert!(newest.receiver.recv().await.is_some());
        assert_eq!(second.close_reason(), None);
        // Another user's sockets are not counted against this one.
        let _other = hub.subscribe(UserId::new());
        hub.publish(user, &snapshot(ProductId::new(), 2, LineStatus::Ok));
        assert!(second.receiver.recv().await.is_some());
    }

    #[tokio::test]
    async fn watchers_get_changes_and_slow_ones_are_dropped() {
        let hub = Arc::new(LiveCarts::default());
        let (user, product) = (UserId::new(), ProductId::new());
        let mut fast = hub.subscribe(user);
        let mut slow = hub.subscribe(user);
        hub.seen(user, &snapshot(product, 10, LineStatus::Ok));
        assert_eq!(hub.watchers_of(product), vec![user]);
        // Availability alone is noise; a status change is news.
        hub.publish_if_changed(user, &snapshot(product, 9, LineStatus::Ok));
        assert!(fast.receiver.try_recv().is_err());
        hub.publish_if_changed(user, &snapshot(product, 1, LineStatus::InsufficientStock));
        assert_eq!(fast.receiver.try_recv().unwrap().items[0].available, 1);
        // The slow socket never reads: once its queue is full the hub drops it (its
        // queue ends after what it had), while the fast one keeps getting snapshots.
        for _ in 0..QUEUE + 2 {
            hub.publish(user, &snapshot(product, 1, LineStatus::InsufficientStock));
            assert!(fast.receiver.try_recv().is_ok());
        }
        let mut queued = 0;
        while slow.receiver.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, QUEUE);
        assert!(matches!(
            slow.receiver.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        hub.publish(user, &snapshot(product, 2, LineStatus::InsufficientStock));
        assert!(fast.receiver.try_recv().is_ok());
        assert_eq!(slow.close_reason(), Some(TOO_SLOW));
        drop(slow);
        assert!(hub.is_watched(user));
        drop(fast);
        assert!(!hub.is_watched(user));
    }
}
