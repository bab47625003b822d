//! Reconciliation: the loop that makes up for provider news that never came (a
//! lost webhook).

use crate::provider::PaymentProvider;
use crate::session::{PaymentSessionKind, PaymentSessionMessage};
use crate::store::PaymentStore;
use chrono::Utc;
use pazar_supervisor::EntityHandle;
use std::sync::Arc;
use std::time::Duration;

/// Reconciliation: asks the provider about open sessions (waiting, failed or
/// processing) that neither changed nor were checked for
/// longer than `after` (a webhook that never came) and applies what it says.
pub(crate) async fn reconcile(
    store: Arc<dyn PaymentStore>,
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
