//! The orders service's sweeper: expiry of unpaid orders, and the release of
//! holds whose checkout died (also once at start). The task supervisor runs it
//! and starts it again after a panic.

use crate::kinds::OrderKind;
use crate::order::{release_all, CheckoutsInProgress, OrderMessage};
use crate::store::OrderStore;
use chrono::Utc;
use pazar_actors::order::StockGateway;
use pazar_actors::DomainError;
use pazar_supervisor::entity::EntityHandle;
use std::sync::Arc;
use std::time::Duration;

/// Gives back checkout holds whose order does not exist and whose checkout is
/// not running in this process (it died between reserving and storing its order).
pub(crate) async fn release_orphan_holds(
    store: &dyn OrderStore,
    stock: &dyn StockGateway,
    running: &CheckoutsInProgress,
) -> Result<(), DomainError> {
    for (product, order) in store.orphan_checkout_holds(1000).await? {
        // Check the order again after the running check: a checkout that finished in
        // between has stored its order, and its holds are not orphans.
        if running.is_running(order) || store.order_exists(order).await? {
            continue;
        }
        release_all(stock, order, &[product]).await?;
        tracing::info!(%order, %product, "released the hold of an unfinished checkout");
    }
    Ok(())
}

/// The sweeper: expires pending orders past `expires_at` (through their Order
/// actors, which release the stock), and releases orphan checkout holds.
pub(crate) async fn sweep(
    store: Arc<dyn OrderStore>,
    orders: EntityHandle<OrderKind>,
    stock: Arc<dyn StockGateway>,
    checkouts: Arc<CheckoutsInProgress>,
    every: Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !orders.is_running() {
            return;
        }
        pazar_actors::faults::point("sweeper");
        let now = Utc::now();
        match store.due_orders(now, 500).await {
            Ok(due) => {
                for id in due {
                    let expired = orders
                        .call(id, |reply| OrderMessage::Expire { reply })
                        .await
                        .and_then(|outcome| outcome);
                    if let Err(error) = expired {
                        tracing::warn!(order = %id, %error, "could not expire order; will retry");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "sweeper cannot read due orders"),
        }
        if let Err(error) = release_orphan_holds(&*store, &*stock, &checkouts).await {
            tracing::warn!(%error, "sweeper cannot release orphan checkout holds");
        }
    }
}
