//! The tree's background loops: the sweeper (expiry and lapsed holds), orphan-hold
//! release at start, and payment reconciliation. The task supervisor (`tasks.rs`)
//! runs them and starts them again after a panic.

use crate::kinds::{OrderKind, PaymentSessionKind};
use chrono::Utc;
use pazar_actors::order::{release_all, CheckoutsInProgress, OrderMessage, StockGateway};
use pazar_actors::payments::{PaymentProvider, PaymentSessionMessage};
use pazar_actors::{DomainError, Store};
use pazar_supervisor::entity::EntityHandle;
use std::sync::Arc;
use std::time::Duration;

/// Gives back checkout holds whose order does not exist and whose checkout is
/// not running in this process (it died between reserving and storing its order).
pub(crate) async fn release_orphan_holds(
    store: &dyn Store,
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
/// actors, which release the stock), releases orphan checkout holds, and releases
/// manual holds past their `expires_at`.
pub(crate) async fn sweep(
    store: Arc<dyn Store>,
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
        match store.expired_manual_holds(now, 500).await {
            Ok(holds) => {
                for (product, order) in holds {
                    if let Err(error) = release_all(&*stock, order, &[product]).await {
                        tracing::warn!(%product, %order, %error, "could not release a lapsed hold");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "sweeper cannot read lapsed holds"),
        }
    }
}

/// Reconciliation: asks the provider about open sessions (waiting, failed or
/// processing) that neither changed nor were checked for
/// longer than `after` (a webhook that never came) and applies what it says.
pub(crate) async fn reconcile(
    store: Arc<dyn Store>,
    sessions: EntityHandle<PaymentSessionKind>,
    provider: Arc<dyn PaymentProvider>,
    after: Duration,
    every: Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    loop {
        ticks.tick().await;
        if !sessions.is_running() {
            return;
        }
        pazar_actors::faults::point("payment_reconciler");
        let stuck = match store.stuck_payment_sessions(Utc::now() - after, 100).await {
            Ok(stuck) => stuck,
            Err(error) => {
                tracing::warn!(%error, "reconciliation cannot read stuck sessions");
                continue;
            }
        };
        for order in stuck {
            let session = sessions
                .call(order, |reply| PaymentSessionMessage::Get { reply })
                .await;
            let Ok(Some(session)) = session else { continue };
            let news = match provider.retrieve(&session.intent_id).await {
                Ok(intent) => intent,
                Err(error) => {
                    tracing::warn!(%order, %error, "reconciliation cannot reach the provider");
                    continue;
                }
            };
            let updated = sessions
                .call(order, |reply| PaymentSessionMessage::Update {
                    intent: news.clone(),
                    reply,
                })
                .await
                .and_then(|outcome| outcome);
            match updated {
                Ok(after) if after.status != session.status => {
                    tracing::info!(%order, status = after.status.as_str(), "reconciled a payment whose news was lost")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%order, %error, "reconciliation failed"),
            }
            if let Err(error) = store.mark_payment_session_checked(order, Utc::now()).await {
                tracing::warn!(%order, %error, "reconciliation cannot record its check");
            }
        }
    }
}
