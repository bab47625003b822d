//! The root of the tree and the [`Shop`] facade the HTTP layer talks to.

use crate::lease::{self, HeldLeases};
use crate::roles::{Roles, Service};
use pazar_actors::events::DeliveryPolicy;
use pazar_actors::order::StockGateway;
use pazar_actors::store_writer::StoreWriterConfig;
use pazar_actors::{
    BridgeLedger, Currency, DomainError, EventBus, EventSignal, EventSubscriber, Listeners, Store,
    StoreWriter,
};
use pazar_catalog::{Catalog, Inventory, ProductViews, StockActors};
use pazar_http::internal::InternalToken;
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
    /// The services this process runs (default: all).
    pub roles: Roles,
    /// Where the catalog role answers the internal API, for an orders role
    /// running without it (`PAZAR_CATALOG_URL`).
    pub catalog_url: Option<String>,
    /// The internal API's shared secret (`PAZAR_INTERNAL_TOKEN`): required when
    /// roles are split; it also enables the catalog's internal routes.
    pub internal_token: Option<InternalToken>,
    /// Take the entity-hosting roles' leases (life `PAZAR_LEASE_TTL`) before
    /// hosting them, waiting as a standby while another process holds one; `None`
    /// takes none. Only PostgreSQL has leases.
    pub lease_ttl: Option<Duration>,
    /// Export spans over OTLP/HTTP to this collector (`OTEL_EXPORTER_OTLP_ENDPOINT`)
    /// under this service name; `None` exports nothing.
    pub otlp: Option<(String, String)>,
    /// Events over Kafka (`KAFKA_BROKERS`): the outbox relayed to it from the
    /// process that hosts the orders role (one at a time, by its lease), and
    /// every role's subscribers fed from it by a consumer group per role; `None`
    /// delivers from the shared outbox (the embedded default).
    pub kafka: Option<pazar_kafka_bridge::KafkaSettings>,
    /// The product search index, opened once this process hosts the catalog
    /// (`pazar serve`: tantivy under `$PAZAR_DATA_DIR/search`, or Elasticsearch
    /// when `ELASTICSEARCH_URL` is set); `None` lists products from the store.
    pub search: Option<SearchBackend>,
}

/// Where the product search index is kept.
#[derive(Clone, Debug)]
pub enum SearchBackend {
    /// tantivy, embedded, in this folder.
    Embedded(std::path::PathBuf),
    /// An Elasticsearch cluster.
    Elasticsearch(pazar_search::ElasticSettings),
}

impl SearchBackend {
    /// Opens (creates where missing) the index.
    async fn open(&self) -> Result<Arc<dyn pazar_catalog::search::SearchIndex>, DomainError> {
        Ok(match self {
            Self::Embedded(folder) => Arc::new(pazar_search::TantivyIndex::open(folder)?),
            Self::Elasticsearch(settings) => {
                Arc::new(pazar_search::ElasticIndex::open(settings.clone()).await?)
            }
        })
    }
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
            roles: Roles::all(),
            catalog_url: None,
            internal_token: None,
            lease_ttl: None,
            otlp: None,
            kafka: None,
            search: None,
        }
    }
}

/// The root actor: it only watches its children. When a child supervisor gives
/// up (escalates), the root records it and stops, and the process should exit so
/// that its service manager restarts it cleanly.
struct ShopRoot;

struct RootState {
    failed: Arc<watch::Sender<Option<String>>>,
}

impl Actor for ShopRoot {
    type Msg = ();
    type State = RootState;
    type Arguments = Arc<watch::Sender<Option<String>>>;

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

/// Everything the HTTP layer needs: the services this process runs and the
/// supervised entities. A service whose role runs elsewhere is `None`.
#[derive(Clone)]
pub struct Shop {
    /// The roles this process runs.
    pub roles: Roles,
    /// The store, for readiness checks.
    pub store: Arc<dyn Store>,
    /// Users and logins (every process: it checks the role of a token's user).
    pub accounts: Accounts,
    /// The catalog service (products, stock): catalog role.
    pub catalog: Option<pazar_catalog::Started>,
    /// The orders service (carts, checkout, orders): orders role.
    pub orders: Option<Orders>,
    /// The payments service: payments role.
    pub payments: Option<Payments>,
    /// The outbox and its delivery to subscribers.
    pub events: EventBus,
    /// The notifications service (the mail queue): notifications role.
    pub notifications: Option<Notifications>,
    /// The role leases this process holds (PostgreSQL with `lease_ttl`).
    leases: Option<Arc<HeldLeases>>,
    /// The outbox relay to Kafka, when this process runs it.
    kafka_relay: Option<Arc<pazar_kafka_bridge::KafkaRelay>>,
    /// The consumer groups feeding this process's subscribers from Kafka.
    kafka_bridge: Option<pazar_kafka_bridge::Bridge>,
    /// Dead letters: kept in the store (listed by any process), replayed
    /// through Kafka when it is configured.
    dead_letters: DeadLetters,
    root: ActorRef<()>,
    failed: watch::Receiver<Option<String>>,
    tasks: TaskSupervisor,
    started_at: Instant,
    /// The search reindex started by an admin: running, how far, how it ended.
    reindex: Arc<Reindex>,
    stopped: Arc<AtomicBool>,
}

/// The search index as an admin sees it.
#[derive(Clone, Debug)]
pub struct SearchStatus {
    /// `tantivy` or `elasticsearch`.
    pub backend: &'static str,
    /// Products in the index.
    pub documents: u64,
    /// The outbox position of the last event it applied.
    pub position: i64,
    /// Catalog events written but not yet applied (outbox delivery; up to 1,000
    /// counted); none over Kafka, where the catalog group's lag says it.
    pub lag_events: Option<u64>,
    /// Since when the oldest of them waits, in seconds.
    pub lag_seconds: Option<f64>,
    /// When the last full rebuild finished.
    pub last_reindex: Option<chrono::DateTime<chrono::Utc>>,
    /// Of the rebuild running now (none when none runs): products in so far,
    /// and in all.
    pub progress: Option<(u64, u64)>,
    /// Why the last rebuild an admin started failed, if it did.
    pub last_error: Option<String>,
}

/// An admin's search reindex.
#[derive(Default)]
struct Reindex {
    running: AtomicBool,
    done: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

impl Shop {
    /// Builds the tree on migrated stores, with the services of `config.roles`.
    pub async fn start(stores: Stores, config: ShopConfig) -> Result<Self, DomainError> {
        let roles = config.roles;
        // The leases first: their epochs fence every write from here on.
        let leases = match (&stores.leases, config.lease_ttl) {
            (Some(leases), Some(ttl)) => {
                Some(Arc::new(lease::take(leases.clone(), roles, ttl).await?))
            }
            _ => None,
        };
        let store = stores.kernel;
        let signal = EventSignal::default();
        let events = EventBus::new(store.clone(), signal.clone(), config.delivery);
        let stopped = Arc::new(AtomicBool::new(false));
        let tasks = TaskSupervisor::new(config.task_policy, stopped.clone());
        let (failed_tx, failed) = watch::channel(None);
        let failed_tx = Arc::new(failed_tx);
        if let Some(held) = &leases {
            let (held, failed_tx) = (held.clone(), failed_tx.clone());
            tasks.keep_running("leases", move || {
                let (held, failed_tx) = (held.clone(), failed_tx.clone());
                async move {
                    let reason = held.keep().await;
                    tracing::error!(%reason, "this process no longer holds its roles");
                    let _ = failed_tx.send(Some(reason));
                }
            });
        }
        if let Some((endpoint, service)) = &config.otlp {
            if let Some(export) = pazar_http::otlp::start(endpoint, service) {
                tasks.keep_running("otlp_export", move || export.clone().run());
            }
        }
        let (writer, writer_loop) = StoreWriter::new(store.clone(), config.writer, signal.clone());
        tasks.keep_running("store_writer", move || writer_loop.run());
        let (root, _) = Actor::spawn(None, ShopRoot, failed_tx)
            .await
            .map_err(|e| DomainError::Unavailable(format!("root supervisor: {e}")))?;
        // Each service adds its subscribers here; the transport is chosen below.
        let (catalog_listeners, orders_listeners, payments_listeners, notifications_listeners) = (
            Listeners::default(),
            Listeners::default(),
            Listeners::default(),
            Listeners::default(),
        );
        let catalog = if roles.runs(Service::Catalog) {
            let search = match &config.search {
                Some(backend) => Some(pazar_catalog::SearchSetup {
                    index: backend.open().await?,
                    applied: match config.kafka {
                        Some(_) => 0,
                        None => store.event_cursor(pazar_catalog::indexer::NAME).await?,
                    },
                    head: store.last_event_seq().await?,
                }),
                None => None,
            };
            Some(
                pazar_catalog::start(pazar_catalog::Dependencies {
                    store: stores.products.clone(),
                    writer: writer.clone(),
                    signal: signal.clone(),
                    policy: config.stock_policy,
                    root: root.get_cell(),
                    tasks: &tasks,
                    sweep_every: config.sweep_every,
                    listeners: &catalog_listeners,
                    search,
                })
                .await?,
            )
        } else {
            None
        };
        let orders = if roles.runs(Service::Orders) {
            let (reader, stock) = match &catalog {
                Some(started) => (
                    started.catalog.clone(),
                    Arc::new(StockActors(started.inventory.actors().clone()))
                        as Arc<dyn StockGateway>,
                ),
                // The catalog runs in another process: products are read from the
                // shared store (the `live-carts` subscriber drops cached views when
                // a product changes there), stock is held through its internal API.
                None => (
                    Catalog::new(
                        stores.products.clone(),
                        Arc::new(ProductViews::default()),
                        signal.clone(),
                    ),
                    remote_stock(&config)?,
                ),
            };
            let orders = pazar_orders::start(pazar_orders::Dependencies {
                store: stores.orders.clone(),
                catalog: Arc::new(reader.clone()),
                views: reader.views().clone(),
                stock,
                writer: writer.clone(),
                listeners: &orders_listeners,
                root: root.get_cell(),
                cart_policy: config.cart_policy,
                order_policy: config.order_policy,
                currency: config.currency,
                order_ttl: config.order_ttl,
                live_sockets_per_user: config.live_sockets_per_user,
            })
            .await?;
            Some(orders)
        } else {
            None
        };
        let payments = if roles.runs(Service::Payments) {
            let desk: Arc<dyn pazar_payments::OrderDesk> = match &orders {
                Some(orders) => Arc::new(orders.desk()),
                None => Arc::new(pazar_payments::desk::StoredOrders {
                    store: stores.orders.clone(),
                    wait: config.payment_policy.call_timeout * 2,
                }),
            };
            Some(
                pazar_payments::start(pazar_payments::Dependencies {
                    store: stores.payments,
                    orders: desk,
                    provider: config.payment_provider.clone(),
                    writer: writer.clone(),
                    listeners: &payments_listeners,
                    tasks: &tasks,
                    root: root.get_cell(),
                    policy: config.payment_policy,
                    reconcile_after: config.reconcile_after,
                    reconcile_every: config.sweep_every,
                })
                .await?,
            )
        } else {
            None
        };
        let accounts = Accounts::new(stores.users, config.login_throttle, signal)?;
        let notifications = roles.runs(Service::Notifications).then(|| {
            pazar_notifications::start(
                pazar_notifications::Dependencies {
                    mails: stores.mails,
                    reads: stores.orders,
                    users: accounts.clone(),
                    listeners: &notifications_listeners,
                    tasks: &tasks,
                    stopped: stopped.clone(),
                    poll: config.sweep_every,
                },
                config.mail.clone(),
            )
        });
        if let Some(orders) = &orders {
            orders.start_sweeper(&tasks, config.sweep_every).await?;
        }
        let groups = [
            (Service::Catalog, catalog_listeners.take()),
            (Service::Orders, orders_listeners.take()),
            (Service::Payments, payments_listeners.take()),
            (Service::Notifications, notifications_listeners.take()),
        ];
        let (kafka_relay, kafka_bridge, dead_letters) = match &config.kafka {
            None => {
                for subscriber in groups.into_iter().flat_map(|(_, group)| group) {
                    deliver_from_outbox(&events, &tasks, subscriber);
                }
                let dead_letters = DeadLetters {
                    ledger: stores.bridge,
                    office: None,
                };
                (None, None, dead_letters)
            }
            Some(settings) => {
                let relay = roles
                    .runs(Service::Orders)
                    .then(|| start_relay(&events, &tasks, settings.clone()))
                    .transpose()?;
                let office = Arc::new(
                    pazar_kafka_bridge::DeadLetterOffice::new(
                        settings.clone(),
                        stores.bridge.clone(),
                    )
                    .map_err(|e| DomainError::invalid("KAFKA_BROKERS", e.to_string()))?,
                );
                let mut groups: Vec<pazar_kafka_bridge::Group> = groups
                    .into_iter()
                    .map(|(role, subscribers)| pazar_kafka_bridge::Group {
                        role: role.to_string(),
                        subscribers,
                        inbound: Vec::new(),
                    })
                    .collect();
                // Outside systems' stock adjustments, read by the catalog role.
                if let Some(catalog) = &catalog {
                    let inbound: Arc<dyn pazar_kafka_bridge::InboundHandler> =
                        Arc::new(crate::inbound::InboundStock(catalog.inventory.clone()));
                    match groups
                        .iter_mut()
                        .find(|group| group.role == Service::Catalog.as_str())
                    {
                        Some(group) => group.inbound.push(inbound),
                        None => groups.push(pazar_kafka_bridge::Group {
                            role: Service::Catalog.to_string(),
                            subscribers: Vec::new(),
                            inbound: vec![inbound],
                        }),
                    }
                }
                let bridge = pazar_kafka_bridge::Bridge::start(
                    settings,
                    stores.bridge.clone(),
                    office.clone(),
                    events.lags().clone(),
                    groups,
                    root.get_cell(),
                )
                .await
                .map_err(|e| DomainError::Unavailable(format!("the Kafka bridge: {e}")))?;
                let dead_letters = DeadLetters {
                    ledger: stores.bridge,
                    office: Some(office),
                };
                (relay, Some(bridge), dead_letters)
            }
        };
        Ok(Self {
            roles,
            accounts,
            catalog,
            orders,
            payments,
            events,
            store,
            leases,
            kafka_relay,
            kafka_bridge,
            dead_letters,
            root,
            failed,
            started_at: Instant::now(),
            reindex: Arc::default(),
            stopped,
            notifications,
            tasks,
        })
    }

    /// The catalog service; panics unless this process runs the catalog role (for
    /// the all-in-one default, tests and benchmarks).
    pub fn catalog(&self) -> &Catalog {
        &self.expect(&self.catalog, Service::Catalog).catalog
    }

    /// Stock commands; panics unless this process runs the catalog role.
    pub fn inventory(&self) -> &Inventory {
        &self.expect(&self.catalog, Service::Catalog).inventory
    }

    /// The orders service; panics unless this process runs the orders role.
    pub fn orders(&self) -> &Orders {
        self.expect(&self.orders, Service::Orders)
    }

    /// The payments service; panics unless this process runs the payments role.
    pub fn payments(&self) -> &Payments {
        self.expect(&self.payments, Service::Payments)
    }

    /// The notifications service; panics unless this process runs its role.
    pub fn notifications(&self) -> &Notifications {
        self.expect(&self.notifications, Service::Notifications)
    }

    fn expect<'a, T>(&self, service: &'a Option<T>, role: Service) -> &'a T {
        service.as_ref().unwrap_or_else(|| {
            panic!(
                "this process does not run the {role} role (it runs {})",
                self.roles
            )
        })
    }

    /// The outbox relay to Kafka, when this process runs it.
    pub fn kafka_relay(&self) -> Option<&Arc<pazar_kafka_bridge::KafkaRelay>> {
        self.kafka_relay.as_ref()
    }

    /// With Kafka: whether its brokers answer within `timeout`.
    pub async fn kafka_reachable(&self, timeout: Duration) -> Option<Result<(), String>> {
        match (&self.kafka_relay, &self.dead_letters.office) {
            (Some(relay), _) => Some(relay.broker_reachable(timeout).await),
            (None, Some(office)) => Some(office.broker_reachable(timeout).await),
            (None, None) => None,
        }
    }

    /// Dead letters of the Kafka bridge.
    pub fn dead_letters(&self) -> &DeadLetters {
        &self.dead_letters
    }

    /// The search index's state: its backend, documents, the last event it
    /// applied and how far behind the catalog's events it is.
    pub async fn search_status(&self) -> Result<SearchStatus, DomainError> {
        let index = self
            .catalog
            .as_ref()
            .and_then(|started| started.catalog.search_index())
            .ok_or_else(|| {
                DomainError::conflict("no_search_index", "this process keeps no search index")
            })?;
        let status = index.status().await?;
        // Over the outbox, the catalog events after the index's position (the
        // first 1,000 looked at); over Kafka the catalog group's lag says it.
        let (lag_events, lag_seconds) = if self.kafka_bridge.is_some() {
            (None, None)
        } else {
            let pending: Vec<_> = self
                .store
                .events_after(status.position, 1_000)
                .await?
                .into_iter()
                .filter(|event| event.event.kind.starts_with("catalog."))
                .collect();
            let oldest = pending.first().map(|event| {
                (pazar_actors::now() - event.event.time)
                    .to_std()
                    .unwrap_or_default()
                    .as_secs_f64()
            });
            (Some(pending.len() as u64), Some(oldest.unwrap_or(0.0)))
        };
        Ok(SearchStatus {
            backend: status.backend,
            documents: status.documents,
            position: status.position,
            lag_events,
            lag_seconds,
            last_reindex: status.last_reindex,
            progress: self.reindex.running.load(Ordering::SeqCst).then(|| {
                (
                    self.reindex.done.load(Ordering::Relaxed),
                    self.reindex.total.load(Ordering::Relaxed),
                )
            }),
            last_error: self
                .reindex
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        })
    }

    /// Starts rebuilding the search index from the store (the old index keeps
    /// answering until the new one is swapped in); `Conflict` while one runs.
    pub async fn start_reindex(&self) -> Result<(), DomainError> {
        let catalog = match &self.catalog {
            Some(started) if started.catalog.search_index().is_some() => started.catalog.clone(),
            _ => {
                return Err(DomainError::conflict(
                    "no_search_index",
                    "this process keeps no search index",
                ))
            }
        };
        let reindex = self.reindex.clone();
        if reindex.running.swap(true, Ordering::SeqCst) {
            return Err(DomainError::conflict(
                "reindexing",
                "a reindex is already running",
            ));
        }
        let position = match self.store.last_event_seq().await {
            Ok(position) => position,
            Err(error) => {
                reindex.running.store(false, Ordering::SeqCst);
                return Err(error.into());
            }
        };
        reindex.done.store(0, Ordering::Relaxed);
        reindex.total.store(0, Ordering::Relaxed);
        *reindex.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        tokio::spawn(async move {
            let progress = {
                let reindex = reindex.clone();
                Arc::new(move |done, total| {
                    reindex.done.store(done, Ordering::Relaxed);
                    reindex.total.store(total, Ordering::Relaxed);
                })
            };
            let outcome = catalog.reindex(position, progress).await;
            *reindex.last_error.lock().unwrap_or_else(|e| e.into_inner()) = match outcome {
                Ok(count) => {
                    tracing::info!(count, "the search index is rebuilt");
                    None
                }
                Err(error) => {
                    tracing::error!(%error, "rebuilding the search index failed");
                    Some(error.to_string())
                }
            };
            reindex.running.store(false, Ordering::SeqCst);
        });
        Ok(())
    }

    /// Entity actors alive in this process (all kinds).
    pub fn alive_actors(&self) -> usize {
        let mut alive = 0;
        if let Some(catalog) = &self.catalog {
            alive += catalog.inventory.actors().alive();
        }
        if let Some(orders) = &self.orders {
            alive += orders.cart_actors().alive() + orders.order_actors().alive();
        }
        if let Some(payments) = &self.payments {
            alive += payments.sessions().alive();
        }
        alive
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
        if let Some(leases) = &self.leases {
            leases.release().await;
        }
    }

    /// The leases held (`catalog@3,orders@1`), when this process takes leases.
    pub fn leases(&self) -> Option<String> {
        self.leases.as_ref().map(|held| held.describe())
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
            roles: self.roles.to_string(),
            leases: self.leases(),
            uptime_seconds: self.started_at.elapsed().as_secs_f64(),
            supervisors: {
                let mut supervisors = Vec::new();
                if let Some(catalog) = &self.catalog {
                    supervisors.push(catalog.inventory.actors().snapshot(limit).await);
                }
                if let Some(orders) = &self.orders {
                    supervisors.push(orders.cart_actors().snapshot(limit).await);
                    supervisors.push(orders.order_actors().snapshot(limit).await);
                }
                if let Some(payments) = &self.payments {
                    supervisors.push(payments.sessions().snapshot(limit).await);
                }
                supervisors
            },
            tasks: self.tasks.snapshot(),
            event_lag: self.events.lags().summary(),
            consumers: self
                .kafka_bridge
                .as_ref()
                .map(|bridge| bridge.snapshot())
                .unwrap_or_default(),
        }
    }
}

/// The catalog's stock over its internal API, for an orders role without it.
fn remote_stock(config: &ShopConfig) -> Result<Arc<dyn StockGateway>, DomainError> {
    let url = config.catalog_url.as_deref().ok_or_else(|| {
        DomainError::invalid(
            "PAZAR_CATALOG_URL",
            "is needed by the orders role when the catalog role runs in another process",
        )
    })?;
    let token = config.internal_token.clone().ok_or_else(|| {
        DomainError::invalid(
            "PAZAR_INTERNAL_TOKEN",
            "is needed by the orders role to reach the catalog's internal API",
        )
    })?;
    Ok(Arc::new(pazar_catalog::internal::RemoteStock::new(
        url,
        token,
        config.stock_policy.call_timeout,
    )?))
}

/// Feeds `subscriber` from the shared outbox, under the task supervisor.
fn deliver_from_outbox(
    events: &EventBus,
    tasks: &TaskSupervisor,
    subscriber: Arc<dyn EventSubscriber>,
) {
    let delivery = events.delivery(subscriber);
    tasks.keep_running(format!("delivery:{}", delivery.name()), move || {
        delivery.run()
    });
}

/// The Kafka bridge's dead letters: listed from the store, replayed through
/// Kafka.
#[derive(Clone)]
pub struct DeadLetters {
    ledger: Arc<dyn BridgeLedger>,
    office: Option<Arc<pazar_kafka_bridge::DeadLetterOffice>>,
}

impl DeadLetters {
    /// Dead letters, newest first.
    pub async fn list(
        &self,
        page: pazar_actors::Page,
    ) -> Result<Vec<pazar_actors::DeadLetter>, DomainError> {
        Ok(self.ledger.dead_letters(page.limit, page.offset).await?)
    }

    /// Feeds dead letter `id` back to its topic.
    pub async fn replay(&self, id: uuid::Uuid) -> Result<pazar_actors::DeadLetter, DomainError> {
        match &self.office {
            Some(office) => office.replay(id).await,
            None => Err(DomainError::Conflict {
                reason: "kafka_not_configured",
                message: "dead letters are replayed through Kafka, and this process has no \
                          KAFKA_BROKERS"
                    .into(),
            }),
        }
    }
}

/// The outbox relay to Kafka, under the task supervisor: it creates the topics
/// (retrying while the broker is unreachable), then delivers like any subscriber.
fn start_relay(
    events: &EventBus,
    tasks: &TaskSupervisor,
    settings: pazar_kafka_bridge::KafkaSettings,
) -> Result<Arc<pazar_kafka_bridge::KafkaRelay>, DomainError> {
    let relay = Arc::new(
        pazar_kafka_bridge::KafkaRelay::new(settings.clone())
            .map_err(|e| DomainError::invalid("KAFKA_BROKERS", e.to_string()))?,
    );
    let delivery = Arc::new(events.delivery(relay.clone()));
    tasks.keep_running("kafka_relay", move || {
        let (delivery, settings) = (delivery.clone(), settings.clone());
        async move {
            while let Err(error) = pazar_kafka_bridge::ensure_topics(&settings).await {
                tracing::warn!(%error, "cannot create the Kafka topics; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            delivery.run().await;
        }
    });
    Ok(relay)
}
