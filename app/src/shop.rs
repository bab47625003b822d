//! The root of the tree and the [`Shop`] facade the HTTP layer talks to.

use pazar_actors::events::DeliveryPolicy;
use pazar_actors::order::StockGateway;
use pazar_actors::store_writer::StoreWriterConfig;
use pazar_actors::{Currency, DomainError, EventBus, EventSignal, Store, StoreWriter};
use pazar_catalog::{Catalog, Inventory, StockActors};
use pazar_notifications::{MailConfig, Notifications};
use pazar_orders::Orders;
use pazar_payments::{PaymentProvider, Payments};
use pazar_store::Stores;
use pazar_supervisor::entity::EntityPolicy;
use pazar_supervisor::snapshot::TreeSnapshot;
use pazar_supervisor::tasks::{TaskPolicy, TaskSupervisor};
use pazar_users::{Accounts, LoginThrottlePolicy};
use ractor::{Actor, ActorProcessingErr, ActorRef, ActorStatus, SupervisionEvent};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Settings of the whole tree.
#[derive(Clone, Debug)]
pub struct ShopConfig {
    /// How ProductStock actors are supervised.
    pub stock_policy: EntityPolicy,
    /// How Cart actors are supervised.
    pub cart_policy: EntityPolicy,
    /// How Order actors are supervised.
    pub order_policy: EntityPolicy,
    /// How long a checkout holds stock for payment.
    pub order_ttl: Duration,
    /// How often the sweeper looks for expired orders and lapsed holds.
    pub sweep_every: Duration,
    /// The currency of an empty cart.
    pub currency: Currency,
    /// Login throttling.
    pub login_throttle: LoginThrottlePolicy,
    /// Group-commit writer tuning.
    pub writer: StoreWriterConfig,
    /// Outbox delivery to in-process subscribers.
    pub delivery: DeliveryPolicy,
    /// How PaymentSession actors are supervised.
    pub payment_policy: EntityPolicy,
    /// A session in `processing` this long is checked at the provider (its webhook
    /// may never come).
    pub reconcile_after: Duration,
    /// The payment provider; `None` is the embedded local simulator.
    pub payment_provider: Option<Arc<dyn PaymentProvider>>,
    /// E-mail notifications; `None` sends none.
    pub mail: Option<MailConfig>,
    /// Live-cart sockets one user may hold; a new one closes the oldest.
    pub live_sockets_per_user: usize,
    /// How the loops (store writer, deliveries, sweeper, reconciler, mailroom) are
    /// restarted after a panic.
    pub task_policy: TaskPolicy,
}

impl Default for ShopConfig {
    fn default() -> Self {
        Self {
            stock_policy: EntityPolicy::default(),
            cart_policy: EntityPolicy::default(),
            order_policy: EntityPolicy::default(),
            order_ttl: Duration::from_secs(15 * 60),
            sweep_every: Duration::from_secs(1),
            currency: Currency::parse("EUR").expect("EUR is a currency"),
            login_throttle: LoginThrottlePolicy::default(),
            writer: StoreWriterConfig::default(),
            delivery: DeliveryPolicy::default(),
            payment_policy: EntityPolicy::default(),
            reconcile_after: Duration::from_secs(10 * 60),
            payment_provider: None,
            mail: None,
            live_sockets_per_user: pazar_orders::live::DEFAULT_SOCKETS_PER_USER,
            task_policy: TaskPolicy::default(),
        }
    }
}

/// The root actor: it only watches its children. When a child supervisor gives
/// up (escalates), the root records it and stops, and the process should exit so
/// that its service manager restarts it cleanly.
struct ShopRoot;

struct RootState {
    failed: watch::Sender<Option<String>>,
}

impl Actor for ShopRoot {
    type Msg = ();
    type State = RootState;
    type Arguments = watch::Sender<Option<String>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        failed: Self::Arguments,
    ) -> Result<RootState, ActorProcessingErr> {
        Ok(RootState { failed })
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(_, error) => {
                tracing::error!(%error, "a supervisor escalated: the supervision tree stops");
                let _ = state.failed.send(Some(error.to_string()));
                myself.stop_children(Some("root stopping".into()));
                myself.stop(Some("escalation".into()));
            }
            SupervisionEvent::ActorTerminated(_, _, reason) => {
                tracing::debug!(?reason, "a supervisor stopped");
            }
            _ => {}
        }
        Ok(())
    }
}

/// Everything the HTTP layer needs: the services and the supervised entities.
#[derive(Clone)]
pub struct Shop {
    /// The store, for readiness checks.
    pub store: Arc<dyn Store>,
    /// Users and logins.
    pub accounts: Accounts,
    /// Catalog reads and catalog-field changes.
    pub catalog: Catalog,
    /// Stock commands (adjustments, holds, sales, retiring a product).
    pub inventory: Inventory,
    /// The orders service (carts, checkout, orders).
    pub orders: Orders,
    /// The payments service.
    pub payments: Payments,
    /// The outbox and its delivery to subscribers.
    pub events: EventBus,
    /// The notifications service (the mail queue).
    pub notifications: Notifications,
    root: ActorRef<()>,
    failed: watch::Receiver<Option<String>>,
    tasks: TaskSupervisor,
    started_at: Instant,
    stopped: Arc<AtomicBool>,
}

impl Shop {
    /// Builds the tree on migrated stores.
    pub async fn start(stores: Stores, config: ShopConfig) -> Result<Self, DomainError> {
        let store = stores.kernel;
        let signal = EventSignal::default();
        let events = EventBus::new(store.clone(), signal.clone(), config.delivery);
        let stopped = Arc::new(AtomicBool::new(false));
        let tasks = TaskSupervisor::new(config.task_policy, stopped.clone());
        let (writer, writer_loop) = StoreWriter::new(store.clone(), config.writer, signal.clone());
        tasks.keep_running("store_writer", move || writer_loop.run());
        let (failed_tx, failed) = watch::channel(None);
        let (root, _) = Actor::spawn(None, ShopRoot, failed_tx)
            .await
            .map_err(|e| DomainError::Unavailable(format!("root supervisor: {e}")))?;
        let pazar_catalog::Started { catalog, inventory } =
            pazar_catalog::start(pazar_catalog::Dependencies {
                store: stores.products,
                writer: writer.clone(),
                signal: signal.clone(),
                policy: config.stock_policy,
                root: root.get_cell(),
                tasks: &tasks,
                sweep_every: config.sweep_every,
            })
            .await?;
        let gateway: Arc<dyn StockGateway> = Arc::new(StockActors(inventory.actors().clone()));
        let orders = pazar_orders::start(pazar_orders::Dependencies {
            store: stores.orders.clone(),
            catalog: Arc::new(catalog.clone()),
            views: catalog.views().clone(),
            stock: gateway,
            writer: writer.clone(),
            events: &events,
            tasks: &tasks,
            root: root.get_cell(),
            cart_policy: config.cart_policy,
            order_policy: config.order_policy,
            currency: config.currency,
            order_ttl: config.order_ttl,
            live_sockets_per_user: config.live_sockets_per_user,
        })
        .await?;
        let payments = pazar_payments::start(pazar_payments::Dependencies {
            store: stores.payments,
            orders: Arc::new(orders.desk()),
            provider: config.payment_provider.clone(),
            writer: writer.clone(),
            events: &events,
            tasks: &tasks,
            root: root.get_cell(),
            policy: config.payment_policy,
            reconcile_after: config.reconcile_after,
            reconcile_every: config.sweep_every,
        })
        .await?;
        orders.follow_payments(&events, &tasks, payments.clone());
        let accounts = Accounts::new(stores.users, config.login_throttle, signal)?;
        let notifications = pazar_notifications::start(
            pazar_notifications::Dependencies {
                mails: stores.mails,
                reads: stores.orders,
                users: accounts.clone(),
                events: &events,
                tasks: &tasks,
                stopped: stopped.clone(),
                poll: config.sweep_every,
            },
            config.mail.clone(),
        );
        orders.start_sweeper(&tasks, config.sweep_every).await?;
        Ok(Self {
            accounts,
            catalog,
            inventory,
            orders,
            payments,
            events,
            store,
            root,
            failed,
            started_at: Instant::now(),
            stopped,
            notifications,
            tasks,
        })
    }

    /// Resolves when the tree has given up (a supervisor escalated), with the reason.
    pub async fn failure(&self) -> String {
        let mut failed = self.failed.clone();
        loop {
            if let Some(reason) = failed.borrow_and_update().clone() {
                return reason;
            }
            if failed.changed().await.is_err() {
                return "the supervision tree stopped".into();
            }
        }
    }

    /// True while the tree runs.
    pub fn is_healthy(&self) -> bool {
        self.failed.borrow().is_none()
            && self.tasks.failure().is_none()
            && !self.stopped.load(Ordering::Relaxed)
            && matches!(self.root.get_status(), ActorStatus::Running)
    }

    /// Stops every actor (their state is already in the store).
    pub async fn shutdown(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let _ = self
            .root
            .stop_children_and_wait(
                Some("shutdown".into()),
                Some(std::time::Duration::from_secs(10)),
            )
            .await;
        self.root.stop(Some("shutdown".into()));
    }

    /// The inspection snapshot, listing at most `limit` actors per kind.
    pub async fn snapshot(&self, limit: usize) -> TreeSnapshot {
        TreeSnapshot {
            status: if self.is_healthy() {
                "running"
            } else {
                "failed"
            }
            .to_owned(),
            uptime_seconds: self.started_at.elapsed().as_secs_f64(),
            supervisors: vec![
                self.inventory.actors().snapshot(limit).await,
                self.orders.cart_actors().snapshot(limit).await,
                self.orders.order_actors().snapshot(limit).await,
                self.payments.sessions().snapshot(limit).await,
            ],
            tasks: self.tasks.snapshot(),
        }
    }
}
