//! The tree's background tasks: the sweeper (expiry and lapsed holds), orphan-hold
//! release at start, and payment reconciliation; and [`BackgroundTasks`], which
//! keeps such tasks running: a task that panics is started again (after a second)
//! and its restarts are counted for the inspection snapshot.

use crate::entity::EntityHandle;
use crate::kinds::{OrderKind, PaymentSessionKind};
use crate::snapshot::TaskSnapshot;
use chrono::Utc;
use pazar_actors::order::{release_all, CheckoutsInProgress, OrderMessage, StockGateway};
use pazar_actors::payments::{PaymentProvider, PaymentSessionMessage};
use pazar_actors::{DomainError, Store};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A task's name and its restart counter.
type TaskEntry = (&'static str, Arc<AtomicU32>);

/// The long-running tasks of the tree, each restarted if it panics.
#[derive(Clone, Default)]
pub(crate) struct BackgroundTasks {
    tasks: Arc<Mutex<Vec<TaskEntry>>>,
}

impl BackgroundTasks {
    /// Runs `start()` until it returns (the shop stopped) or `stopped` is set; a
    /// panic is logged, counted, and followed by a fresh `start()` a second later.
    pub(crate) fn keep_running<F, Fut>(
        &self,
        name: &'static str,
        stopped: Arc<AtomicBool>,
        start: F,
    ) where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let restarts = Arc::new(AtomicU32::new(0));
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((name, restarts.clone()));
        tokio::spawn(async move {
            loop {
                match tokio::spawn(start()).await {
                    Err(error) if error.is_panic() && !stopped.load(Ordering::Relaxed) => {
                        restarts.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(task = name, "background task panicked; restarting it");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    _ => return,
                }
            }
        });
    }

    /// Each task and how often it was restarted.
    pub(crate) fn snapshot(&self) -> Vec<TaskSnapshot> {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(name, restarts)| TaskSnapshot {
                name: (*name).to_owned(),
                restarts: restarts.load(Ordering::Relaxed),
            })
            .collect()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_started_again_and_counted() {
        let tasks = BackgroundTasks::default();
        let runs = Arc::new(AtomicU32::new(0));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let done = Arc::new(Mutex::new(Some(done_tx)));
        let counter = runs.clone();
        tasks.keep_running("flaky", Arc::new(AtomicBool::new(false)), move || {
            let counter = counter.clone();
            let done = done.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("first run fails");
                }
                if let Some(tx) = done.lock().unwrap().take() {
                    let _ = tx.send(());
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), done_rx)
            .await
            .expect("the task ran again within 10 s")
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let snapshot = tasks.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].name, "flaky");
        assert_eq!(snapshot[0].restarts, 1);
    }
}
