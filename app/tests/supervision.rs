//! Supervision against a real store: passivation reloads state, a panicking
//! entity is restarted from the store while its caller gets an error at once,
//! the restart limit escalates, and concurrent reservations never oversell.
//! Each test runs on SQLite and on PostgreSQL.

use async_trait::async_trait;
use chrono::Utc;
use pazar_actors::{DomainError, OrderId, ProductId, StockLevels, Store};
use pazar_actors::{DomainEvent, EventSubscriber, EventType, StoredEvent};
use pazar_app::{Shop, ShopConfig};
use pazar_catalog::stock::ProductStockMessage;
use pazar_catalog::NewProduct;
use pazar_supervisor::EntityPolicy;
use sqlx::Connection;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated store of its own: a temporary SQLite file or a new PostgreSQL database.
struct TestStore {
    url: String,
    stores: pazar_store::Stores,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
    postgres_db: Option<String>,
}

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

impl TestStore {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (url, postgres_db) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("t.db").display()),
                None,
            ),
            Backend::Postgres => {
                let name = format!("pazar_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&format!("{POSTGRES}/postgres"))
                    .await
                    .expect("PostgreSQL on 127.0.0.1:5432");
                sqlx::query(&format!("create database {name}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                (format!("{POSTGRES}/{name}"), Some(name))
            }
        };
        let stores = pazar_store::connect_and_migrate(&url).await.unwrap();
        Self {
            url,
            store: stores.kernel.clone(),
            stores,
            _dir: dir,
            postgres_db,
        }
    }

    async fn finish(self) {
        drop(self.store);
        drop(self.stores);
        if let Some(name) = self.postgres_db {
            let mut admin = sqlx::PgConnection::connect(&format!("{POSTGRES}/postgres"))
                .await
                .unwrap();
            let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                .execute(&mut admin)
                .await;
        }
    }
}

fn policy(idle: Duration, max_restarts: u32) -> ShopConfig {
    ShopConfig {
        stock_policy: EntityPolicy {
            idle_timeout: idle,
            call_timeout: Duration::from_secs(5),
            max_restarts,
            restart_window: Duration::from_secs(60),
        },
        ..ShopConfig::default()
    }
}

async fn product(shop: &Shop, sku: &str, stock: i64) -> ProductId {
    shop.catalog()
        .create(NewProduct {
            name: format!("Product {sku}"),
            description: String::new(),
            sku: sku.into(),
            price_amount: 100,
            price_currency: "EUR".into(),
            stock,
        })
        .await
        .unwrap()
        .product
        .id
}

/// A registered customer.
async fn customer(shop: &Shop, email: &str) -> pazar_users::User {
    let new = pazar_users::NewUser::parse(
        email,
        "password-1",
        "Customer",
        pazar_actors::Role::Customer,
    )
    .unwrap();
    shop.accounts.register(new).await.unwrap()
}

/// A card the local provider accepts.
fn good_card() -> pazar_payments::local::Card {
    pazar_payments::local::Card {
        number: "4242424242424242".into(),
        exp_month: 12,
        exp_year: 2099,
        cvc: "123".into(),
    }
}

/// Polls `condition` until it holds or `deadline` passes.
async fn eventually<F, Fut>(deadline: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn in_an_hour() -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::hours(1)
}

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await
                }
            )*
        }
    };
}

on_both_databases!(
    passivation_reloads_state_from_the_store,
    messages_racing_a_passivation_are_not_lost,
    a_panicking_actor_is_restarted_and_its_caller_gets_an_error,
    the_restart_limit_escalates_to_the_root,
    concurrent_reservations_never_oversell,
    a_retired_product_is_gone_for_good,
    events_reach_subscribers_in_order_and_resume_after_a_restart,
    a_stuck_subject_holds_up_only_its_own_events,
    a_paid_order_sells_its_stock_and_can_be_fulfilled,
    a_payment_that_lands_after_expiry_is_refunded_automatically,
    a_refund_tried_again_puts_each_line_back_once,
    a_payment_whose_news_went_missing_is_reconciled,
    a_panic_in_the_store_writer_loses_and_doubles_nothing,
    a_panic_in_the_payments_delivery_loses_and_doubles_nothing,
    a_panic_in_the_orders_delivery_loses_and_doubles_nothing,
    a_panic_in_the_notifier_delivery_loses_and_doubles_nothing,
    a_panic_in_the_sweeper_loses_and_doubles_nothing,
    a_panic_in_the_hold_sweeper_loses_and_doubles_nothing,
    a_panic_in_the_reconciler_loses_and_doubles_nothing,
    a_panic_in_the_mailroom_loses_and_doubles_nothing,
    a_loop_past_its_restart_limit_makes_the_shop_unready,
);

async fn passivation_reloads_state_from_the_store(backend: Backend) {
    let db = TestStore::new(backend).await;
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_millis(150), 10))
        .await
        .unwrap();
    let id = product(&shop, "P-1", 10).await;
    shop.inventory()
        .reserve(id, OrderId::new(), 3, in_an_hour())
        .await
        .unwrap();
    shop.inventory()
        .adjust_stock(id, 5, "delivery")
        .await
        .unwrap();
    assert_eq!(shop.inventory().actors().alive(), 1);

    eventually(
        Duration::from_secs(5),
        "the idle actor is passivated",
        || async { shop.inventory().actors().alive() == 0 },
    )
    .await;
    let snapshot = shop.inventory().actors().snapshot(10).await;
    assert_eq!(snapshot.passivated_total, 1);
    assert_eq!(snapshot.spawned_total, 1);

    // The next message starts a new actor, which loads what was committed.
    assert_eq!(
        shop.inventory().stock_levels(id).await.unwrap(),
        StockLevels::new(15, 3)
    );
    assert_eq!(
        shop.inventory().actors().snapshot(10).await.spawned_total,
        2
    );
    shop.shutdown().await;
    db.finish().await;
}

async fn messages_racing_a_passivation_are_not_lost(backend: Backend) {
    let db = TestStore::new(backend).await;
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_millis(20), 10))
        .await
        .unwrap();
    let id = product(&shop, "P-2", 100).await;
    // Calls spaced around the idle timeout keep meeting actors that are being
    // drained or have just stopped; every one must still be applied exactly once.
    for i in 0..30u64 {
        shop.inventory()
            .reserve(id, OrderId::new(), 1, in_an_hour())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5 + (i * 7) % 30)).await;
    }
    assert_eq!(
        shop.inventory().stock_levels(id).await.unwrap(),
        StockLevels::new(100, 30)
    );
    let record = db.stores.products.load_stock(id).await.unwrap().unwrap();
    assert_eq!(record.reservations.len(), 30);
    assert!(shop.inventory().actors().snapshot(1).await.passivated_total >= 3);
    shop.shutdown().await;
    db.finish().await;
}

async fn a_panicking_actor_is_restarted_and_its_caller_gets_an_error(backend: Backend) {
    let db = TestStore::new(backend).await;
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_secs(60), 10))
        .await
        .unwrap();
    let id = product(&shop, "P-3", 10).await;
    shop.inventory()
        .reserve(id, OrderId::new(), 4, in_an_hour())
        .await
        .unwrap();

    let started = Instant::now();
    let crashed = shop
        .inventory()
        .actors()
        .call(id, |reply| ProductStockMessage::Panic { reply })
        .await;
    assert!(
        matches!(crashed, Err(DomainError::Unavailable(_))),
        "{crashed:?}"
    );
    // An error at once, not after the 5 s call timeout.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    eventually(Duration::from_secs(5), "the actor is restarted", || async {
        shop.inventory().actors().snapshot(10).await.restarts_total == 1
            && shop.inventory().actors().alive() == 1
    })
    .await;
    let snapshot = shop.inventory().actors().snapshot(10).await;
    assert_eq!(snapshot.actors[0].restarts, 1);
    // The restarted actor has the committed state.
    assert_eq!(
        shop.inventory().stock_levels(id).await.unwrap(),
        StockLevels::new(10, 4)
    );
    shop.inventory()
        .reserve(id, OrderId::new(), 6, in_an_hour())
        .await
        .unwrap();
    assert!(matches!(
        shop.inventory()
            .reserve(id, OrderId::new(), 1, in_an_hour())
            .await,
        Err(DomainError::InsufficientStock { available: 0, .. })
    ));
    assert!(shop.is_healthy());
    shop.shutdown().await;
    db.finish().await;
}

async fn the_restart_limit_escalates_to_the_root(backend: Backend) {
    let db = TestStore::new(backend).await;
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_secs(60), 2))
        .await
        .unwrap();
    let id = product(&shop, "P-4", 1).await;
    for failure in 1..=3u64 {
        let crashed = shop
            .inventory()
            .actors()
            .call(id, |reply| ProductStockMessage::Panic { reply })
            .await;
        assert!(matches!(crashed, Err(DomainError::Unavailable(_))));
        if failure < 3 {
            // Within the limit: wait for the restart before the next crash.
            eventually(Duration::from_secs(5), "the actor is restarted", || async {
                shop.inventory().actors().snapshot(1).await.restarts_total == failure
                    && shop.inventory().actors().alive() == 1
            })
            .await;
        }
    }
    let reason = tokio::time::timeout(Duration::from_secs(5), shop.failure())
        .await
        .expect("the root learns of the escalation");
    assert!(reason.contains("product_stock"), "{reason}");
    assert!(!shop.is_healthy());
    assert!(!shop.inventory().actors().is_running());
    // Callers now fail fast instead of hanging.
    let started = Instant::now();
    assert!(matches!(
        shop.inventory().stock_levels(id).await,
        Err(DomainError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    db.finish().await;
}

async fn concurrent_reservations_never_oversell(backend: Backend) {
    let db = TestStore::new(backend).await;
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_secs(60), 10))
        .await
        .unwrap();
    let id = product(&shop, "P-5", 50).await;
    let attempts = (0..200).map(|_| {
        let shop = shop.clone();
        tokio::spawn(async move {
            shop.inventory()
                .reserve(id, OrderId::new(), 1, in_an_hour())
                .await
        })
    });
    let mut taken = 0;
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => taken += 1,
            Err(DomainError::InsufficientStock { .. }) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((taken, refused), (50, 150));
    let record = db.stores.products.load_stock(id).await.unwrap().unwrap();
    assert_eq!(record.on_hand, 50);
    assert_eq!(record.reservations.len(), 50);
    let view = shop.catalog().get(id).await.unwrap();
    assert_eq!(view.stock, StockLevels::new(50, 50));
    shop.shutdown().await;
    db.finish().await;
}

async fn a_retired_product_is_gone_for_good(backend: Backend) {
    let db = TestStore::new(backend).await;
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_secs(60), 10))
        .await
        .unwrap();
    let id = product(&shop, "P-6", 5).await;
    let order = OrderId::new();
    shop.inventory()
        .reserve(id, order, 1, in_an_hour())
        .await
        .unwrap();
    assert!(matches!(
        shop.inventory().delete_product(id).await,
        Err(DomainError::Conflict {
            reason: "open_reservations",
            ..
        })
    ));
    shop.inventory().release(id, order).await.unwrap();
    shop.inventory().delete_product(id).await.unwrap();
    eventually(
        Duration::from_secs(5),
        "the retired actor stops",
        || async { shop.inventory().actors().alive() == 0 },
    )
    .await;
    assert!(matches!(
        shop.inventory().stock_levels(id).await,
        Err(DomainError::NotFound { what: "product" })
    ));
    assert!(db.stores.products.load_stock(id).await.unwrap().is_none());
    shop.shutdown().await;
    db.finish().await;
}

/// Records what it is given; fails the first delivery of every third event.
struct Recorder {
    seen: Mutex<Vec<(i64, String, String)>>,
    failed_once: Mutex<std::collections::HashSet<i64>>,
}

impl Recorder {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            seen: Mutex::new(Vec::new()),
            failed_once: Mutex::new(Default::default()),
        })
    }

    fn seqs(&self) -> Vec<i64> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(seq, _, _)| *seq)
            .collect()
    }
}

#[async_trait]
impl EventSubscriber for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    fn wants(&self, kind: EventType) -> bool {
        kind.as_str().starts_with("catalog.")
    }

    async fn handle(&self, event: &StoredEvent, _: &DomainEvent) -> Result<(), DomainError> {
        if event.seq % 3 == 0 && self.failed_once.lock().unwrap().insert(event.seq) {
            return Err(DomainError::Unavailable("transient failure".into()));
        }
        self.seen.lock().unwrap().push((
            event.seq,
            event.event.kind.clone(),
            event.event.subject.clone(),
        ));
        Ok(())
    }
}

async fn events_reach_subscribers_in_order_and_resume_after_a_restart(backend: Backend) {
    let db = TestStore::new(backend).await;
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_secs(60), 10))
        .await
        .unwrap();
    let recorder = Recorder::new();
    let delivery = shop.events.subscribe(recorder.clone());
    let id = product(&shop, "E-1", 100).await;
    let reservations = (0..20).map(|_| {
        let shop = shop.clone();
        tokio::spawn(async move {
            shop.inventory()
                .reserve(id, OrderId::new(), 1, in_an_hour())
                .await
        })
    });
    for reservation in reservations {
        reservation.await.unwrap().unwrap();
    }
    customer(&shop, "u@example.com").await;
    let outbox = db.store.events_after(0, 1000).await.unwrap();
    let catalog: Vec<i64> = outbox
        .iter()
        .filter(|e| e.event.kind.starts_with("catalog."))
        .map(|e| e.seq)
        .collect();
    let last = outbox.last().unwrap().seq;
    eventually(
        Duration::from_secs(10),
        "every catalog event is delivered",
        || async { recorder.seqs().len() >= catalog.len() },
    )
    .await;
    // Exactly the catalog events, once each, in commit order, retries included.
    assert_eq!(recorder.seqs(), catalog);
    assert!(recorder.failed_once.lock().unwrap().len() >= 2);
    // The reservations' events end with the final levels.
    let final_levels = outbox
        .iter()
        .rev()
        .find(|e| e.event.kind == "catalog.stock_changed")
        .unwrap();
    assert_eq!(final_levels.event.data["reserved"], 20);
    eventually(Duration::from_secs(10), "the cursor is saved", || async {
        db.store.event_cursor("recorder").await.unwrap() == last
    })
    .await;
    delivery.abort();
    shop.shutdown().await;

    // While nobody listens, more events are committed; a new process resumes
    // after the saved cursor and gets exactly those.
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_secs(60), 10))
        .await
        .unwrap();
    shop.inventory()
        .adjust_stock(id, 5, "delivery")
        .await
        .unwrap();
    product(&shop, "E-2", 1).await;
    let recorder = Recorder::new();
    let delivery = shop.events.subscribe(recorder.clone());
    let expected: Vec<i64> = db
        .store
        .events_after(last, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(expected.len(), 2);
    eventually(
        Duration::from_secs(10),
        "the new events are delivered",
        || async { recorder.seqs().len() >= 2 },
    )
    .await;
    assert_eq!(recorder.seqs(), expected);
    delivery.abort();
    shop.shutdown().await;
    db.finish().await;
}

async fn a_paid_order_sells_its_stock_and_can_be_fulfilled(backend: Backend) {
    let db = TestStore::new(backend).await;
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_secs(60), 10))
        .await
        .unwrap();
    let id = product(&shop, "PAY-1", 10).await;
    let buyer = customer(&shop, "p@example.com").await;
    shop.orders().add_to_cart(buyer.id, id, 4).await.unwrap();
    let (order, created) = shop.orders().checkout(buyer.id, None).await.unwrap();
    assert!(created);
    assert_eq!(
        shop.inventory().stock_levels(id).await.unwrap(),
        StockLevels::new(10, 4)
    );

    // Fulfilment needs payment first.
    assert!(matches!(
        shop.orders().fulfil_order(order.id).await,
        Err(DomainError::Conflict {
            reason: "invalid_transition",
            ..
        })
    ));
    let paid = shop.orders().mark_order_paid(order.id).await.unwrap();
    assert_eq!(paid.status, pazar_actors::OrderStatus::Paid);
    // The held units left the shop; paying again is refused and sells nothing more.
    assert_eq!(
        shop.inventory().stock_levels(id).await.unwrap(),
        StockLevels::new(6, 0)
    );
    assert!(shop.orders().mark_order_paid(order.id).await.is_err());
    assert_eq!(
        shop.inventory().stock_levels(id).await.unwrap(),
        StockLevels::new(6, 0)
    );
    // A paid order cannot be cancelled.
    assert!(shop
        .orders()
        .cancel_order(buyer.id, order.id)
        .await
        .is_err());
    let fulfilled = shop.orders().fulfil_order(order.id).await.unwrap();
    let statuses: Vec<_> = fulfilled
        .history
        .iter()
        .map(|c| c.status.as_str())
        .collect();
    assert_eq!(statuses, ["pending_payment", "paid", "fulfilled"]);
    // Stored as answered, with its events.
    assert_eq!(
        db.stores.orders.order(order.id).await.unwrap().unwrap(),
        fulfilled
    );
    let kinds: Vec<String> = db
        .store
        .events_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.subject == order.id.to_string())
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(kinds, ["orders.created", "orders.paid", "orders.fulfilled"]);
    shop.shutdown().await;
    db.finish().await;
}

async fn a_payment_that_lands_after_expiry_is_refunded_automatically(backend: Backend) {
    let db = TestStore::new(backend).await;
    let mut config = policy(Duration::from_secs(60), 10);
    config.order_ttl = Duration::from_millis(300);
    config.sweep_every = Duration::from_millis(50);
    let shop = Shop::start(db.stores.clone(), config).await.unwrap();
    let id = product(&shop, "LATE-1", 5).await;
    let buyer = customer(&shop, "late@example.com").await;
    shop.orders().add_to_cart(buyer.id, id, 2).await.unwrap();
    let (order, _) = shop.orders().checkout(buyer.id, None).await.unwrap();
    let (session, _) = shop
        .payments()
        .start_payment(buyer.id, order.id)
        .await
        .unwrap();
    // The customer pays at the provider, but the news has not reached Pazar yet
    // (a webhook in flight) when the order expires.
    let local = shop.payments().local().cloned().unwrap();
    let card = good_card();
    local.confirm(&session.client_secret, &card).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the payment is refunded",
        || async {
            matches!(
                shop.payments().session(order.id).await,
                Ok(Some(s)) if s.status == pazar_actors::PaymentStatus::Refunded
            )
        },
    )
    .await;
    // The order stayed expired, its stock released and not sold.
    assert_eq!(
        shop.orders().order(order.id).await.unwrap().status,
        pazar_actors::OrderStatus::Expired
    );
    assert_eq!(
        shop.inventory().stock_levels(id).await.unwrap(),
        StockLevels::new(5, 0)
    );
    let refund = db
        .store
        .events_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event.kind == "payments.refunded")
        .expect("payments.refunded was written");
    assert!(refund.event.data["reason"]
        .as_str()
        .unwrap()
        .contains("expired"));
    shop.shutdown().await;
    db.finish().await;
}

async fn a_refund_tried_again_puts_each_line_back_once(backend: Backend) {
    use pazar_actors::order::StockGateway;
    let db = TestStore::new(backend).await;
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_secs(60), 10))
        .await
        .unwrap();
    let kettle = product(&shop, "RET-1", 10).await;
    let mug = product(&shop, "RET-2", 10).await;
    let buyer = customer(&shop, "ret@example.com").await;
    shop.orders()
        .add_to_cart(buyer.id, kettle, 2)
        .await
        .unwrap();
    shop.orders().add_to_cart(buyer.id, mug, 3).await.unwrap();
    let (order, _) = shop.orders().checkout(buyer.id, None).await.unwrap();
    shop.orders().mark_order_paid(order.id).await.unwrap();
    let shop = &shop;
    let levels = |id| async move { shop.inventory().stock_levels(id).await.unwrap() };
    assert_eq!(levels(kettle).await, StockLevels::new(8, 0));
    assert_eq!(levels(mug).await, StockLevels::new(7, 0));

    // A first refund attempt put the kettles back, then died before the order
    // became refunded (a crash, or the mug's catalog unreachable).
    let stock = pazar_catalog::StockActors(shop.inventory().actors().clone());
    stock.return_sold(kettle, order.id, 2).await.unwrap();
    assert_eq!(levels(kettle).await, StockLevels::new(10, 0));

    // The refund is tried again: every line goes back once, the kettles not twice.
    let refunded = shop.orders().desk().mark_refunded(order.id).await.unwrap();
    assert_eq!(refunded.status, pazar_actors::OrderStatus::Refunded);
    assert_eq!(levels(kettle).await, StockLevels::new(10, 0));
    assert_eq!(levels(mug).await, StockLevels::new(10, 0));
    shop.shutdown().await;

    // After a restart the actors know it from the store.
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_secs(60), 10))
        .await
        .unwrap();
    let stock = pazar_catalog::StockActors(shop.inventory().actors().clone());
    let again = stock.return_sold(mug, order.id, 3).await.unwrap();
    assert_eq!(again, StockLevels::new(10, 0));

    // An orders role in another process returns through the internal API, and
    // retries there too (a lost answer): the same once-per-order return.
    let token = pazar_http::internal::InternalToken::new(&"t".repeat(32)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let routes = pazar_catalog::internal::routes(Arc::new(stock), token.clone());
    let server = tokio::spawn(
        poem::Server::new(poem::listener::TcpListener::bind(address.to_string()))
            .run(poem::Route::new().nest("/internal/v1", routes)),
    );
    let remote = pazar_catalog::internal::RemoteStock::new(
        &format!("http://{address}"),
        token,
        Duration::from_secs(5),
    )
    .unwrap();
    let mut remote_again = Err(DomainError::Unavailable("not yet listening".into()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while remote_again.is_err() && Instant::now() < deadline {
        remote_again = remote.return_sold(kettle, order.id, 2).await;
    }
    assert_eq!(remote_again.unwrap(), StockLevels::new(10, 0));
    server.abort();
    assert_eq!(
        shop.inventory().stock_levels(mug).await.unwrap(),
        StockLevels::new(10, 0)
    );
    shop.shutdown().await;
    db.finish().await;
}

async fn a_payment_whose_news_went_missing_is_reconciled(backend: Backend) {
    let db = TestStore::new(backend).await;
    let mut config = policy(Duration::from_secs(60), 10);
    config.reconcile_after = Duration::from_millis(200);
    config.sweep_every = Duration::from_millis(50);
    let shop = Shop::start(db.stores.clone(), config).await.unwrap();
    let id = product(&shop, "REC-1", 5).await;
    let buyer = customer(&shop, "rec@example.com").await;
    shop.orders().add_to_cart(buyer.id, id, 1).await.unwrap();
    let (order, _) = shop.orders().checkout(buyer.id, None).await.unwrap();
    let (session, _) = shop
        .payments()
        .start_payment(buyer.id, order.id)
        .await
        .unwrap();
    // The provider said "processing" ...
    let processing = pazar_actors::ProviderIntent {
        id: session.intent_id.clone(),
        client_secret: session.client_secret.clone(),
        status: pazar_actors::payments::IntentStatus::Processing,
        last_error: None,
    };
    let now_processing = shop.payments().provider_news(processing).await.unwrap();
    assert_eq!(
        now_processing.status,
        pazar_actors::PaymentStatus::Processing
    );
    // ... then succeeded, but that news never arrives.
    let card = good_card();
    shop.payments()
        .local()
        .cloned()
        .unwrap()
        .confirm(&session.client_secret, &card)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "reconciliation makes the order paid",
        || async {
            shop.orders().order(order.id).await.unwrap().status == pazar_actors::OrderStatus::Paid
        },
    )
    .await;
    assert_eq!(
        shop.inventory().stock_levels(id).await.unwrap(),
        StockLevels::new(4, 0)
    );
    shop.shutdown().await;
    db.finish().await;
}

/// Holds the first product's upsert until another product's has been handled.
struct Holder {
    first: Mutex<Option<String>>,
    release: tokio::sync::watch::Sender<bool>,
    handled: Mutex<Vec<String>>,
}

#[async_trait]
impl EventSubscriber for Holder {
    fn name(&self) -> &str {
        "holder"
    }

    fn wants(&self, kind: EventType) -> bool {
        kind == EventType::ProductUpserted
    }

    async fn handle(&self, event: &StoredEvent, _: &DomainEvent) -> Result<(), DomainError> {
        let subject = event.event.subject.clone();
        let held = self.first.lock().unwrap().as_deref() == Some(subject.as_str());
        if held {
            let mut released = self.release.subscribe();
            let _ = released.wait_for(|released| *released).await;
        }
        self.handled.lock().unwrap().push(subject);
        Ok(())
    }
}

/// Delivery keeps each subject's events in order but does not make every other
/// subject wait behind a slow one (it handled one event at a time, so a stuck
/// `orders` handler once kept every paid order "pending payment"); the saved
/// cursor never passes the stuck event.
async fn a_stuck_subject_holds_up_only_its_own_events(backend: Backend) {
    let db = TestStore::new(backend).await;
    let shop = Shop::start(db.stores.clone(), policy(Duration::from_secs(60), 10))
        .await
        .unwrap();
    let holder = Arc::new(Holder {
        first: Mutex::new(None),
        release: tokio::sync::watch::channel(false).0,
        handled: Mutex::new(Vec::new()),
    });
    let stuck = product(&shop, "STUCK", 1).await;
    *holder.first.lock().unwrap() = Some(stuck.to_string());
    // Eight more: the chance that all share the stuck one's lane (of 64) is nil.
    let mut others = Vec::new();
    for i in 0..8 {
        others.push(product(&shop, &format!("FREE-{i}"), 1).await.to_string());
    }
    let stuck_seq = db
        .store
        .events_after(0, 1000)
        .await
        .unwrap()
        .iter()
        .find(|e| e.event.subject == stuck.to_string())
        .unwrap()
        .seq;
    let delivery = shop.events.subscribe(holder.clone());
    eventually(
        Duration::from_secs(10),
        "another product's event is handled while the first is stuck",
        || async {
            let handled = holder.handled.lock().unwrap();
            others.iter().any(|other| handled.contains(other))
        },
    )
    .await;
    assert!(!holder.handled.lock().unwrap().contains(&stuck.to_string()));
    assert!(
        db.store.event_cursor("holder").await.unwrap() < stuck_seq,
        "the cursor never passes an event that is not done"
    );
    holder.release.send(true).unwrap();
    let last = db.store.last_event_seq().await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the cursor reaches the head",
        || async { db.store.event_cursor("holder").await.unwrap() == last },
    )
    .await;
    let handled = holder.handled.lock().unwrap().clone();
    assert_eq!(handled.len(), 9, "each upsert once: {handled:?}");
    delivery.abort();
    shop.shutdown().await;
}

/// Renders a mail as its kind; enough for counting mails.
struct KindOnly;

impl pazar_notifications::mail::MailRenderer for KindOnly {
    fn render(
        &self,
        notice: &pazar_notifications::mail::Notice,
    ) -> Result<pazar_notifications::mail::RenderedMail, DomainError> {
        Ok(pazar_notifications::mail::RenderedMail {
            subject: notice.kind.as_str().to_owned(),
            text: String::new(),
            html: String::new(),
        })
    }
}

/// Records every mail handed to it (the SMTP path is tested in `pazar/tests/mail.rs`).
#[derive(Default)]
struct Outbox(Mutex<Vec<uuid::Uuid>>);

#[async_trait]
impl pazar_notifications::mail::MailTransport for Outbox {
    async fn send(
        &self,
        mail: &pazar_notifications::mail::QueuedMail,
    ) -> Result<(), pazar_notifications::mail::SendFailure> {
        self.0.lock().unwrap().push(mail.id);
        Ok(())
    }
}

/// Retries a call the way a client retries a 503: a write interrupted by a
/// store writer restart, or an actor that did not answer, is tried again.
async fn until_available<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DomainError>>,
{
    let start = Instant::now();
    loop {
        match call().await {
            Ok(value) => return value,
            Err(
                DomainError::Unavailable(_)
                | DomainError::Store(pazar_actors::StoreError::Interrupted),
            ) if start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(error) => panic!("{error}"),
        }
    }
}

/// The whole flow with one panic injected into the loop `task` once events are
/// in flight: a customer checks out and pays, a manual hold lapses, mails go
/// out. Afterwards the order is paid exactly once, the stock adds up, the hold
/// is gone, every mail was queued and sent once, and the loop was restarted once.
async fn a_panic_in_a_loop_loses_and_doubles_nothing(backend: Backend, task: &str) {
    let db = TestStore::new(backend).await;
    let sent = Arc::new(Outbox::default());
    let mut config = policy(Duration::from_secs(60), 10);
    config.sweep_every = Duration::from_millis(50);
    config.reconcile_after = Duration::ZERO;
    config.task_policy = pazar_supervisor::TaskPolicy {
        pause: Duration::from_millis(10),
        ..pazar_supervisor::TaskPolicy::default()
    };
    config.mail = Some(pazar_app::MailConfig {
        renderer: Arc::new(KindOnly),
        transport: sent.clone(),
        max_attempts: 3,
        retry_base: Duration::from_millis(10),
        retry_max: Duration::from_millis(100),
    });
    let shop = Shop::start(db.stores.clone(), config).await.unwrap();
    let id = product(&shop, "LOOP-1", 10).await;
    let buyer = customer(&shop, "loop@example.com").await;
    shop.orders().add_to_cart(buyer.id, id, 3).await.unwrap();
    let (order, _) = shop.orders().checkout(buyer.id, None).await.unwrap();
    let hold = OrderId::new();
    shop.inventory()
        .reserve(
            id,
            hold,
            2,
            Utc::now() + chrono::Duration::milliseconds(300),
        )
        .await
        .unwrap();

    pazar_actors::faults::arm(task, 1);
    let (session, _) = until_available(|| shop.payments().start_payment(buyer.id, order.id)).await;
    let card = good_card();
    until_available(|| {
        shop.payments()
            .confirm_local_payment(&session.client_secret, &card)
    })
    .await;

    eventually(
        Duration::from_secs(10),
        "the injected panic fired",
        || async { pazar_actors::faults::armed(task) == 0 },
    )
    .await;
    eventually(Duration::from_secs(10), "the order is paid", || async {
        matches!(shop.orders().order(order.id).await, Ok(o) if o.status == pazar_actors::OrderStatus::Paid)
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "the lapsed hold is released",
        || async { shop.inventory().stock_levels(id).await.ok() == Some(StockLevels::new(7, 0)) },
    )
    .await;
    // welcome, order received, payment receipt: each queued and sent once.
    eventually(Duration::from_secs(10), "three mails are sent", || async {
        let mails = shop
            .notifications()
            .mails(
                None,
                pazar_actors::Page {
                    limit: 100,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        mails.len() == 3
            && mails
                .iter()
                .all(|m| m.status == pazar_notifications::mail::MailStatus::Sent)
    })
    .await;
    let mut kinds: Vec<_> = shop
        .notifications()
        .mails(
            None,
            pazar_actors::Page {
                limit: 100,
                offset: 0,
            },
        )
        .await
        .unwrap()
        .iter()
        .map(|m| m.kind.as_str())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["order_received", "payment_receipt", "welcome"]);
    let mut sends = sent.0.lock().unwrap().clone();
    sends.sort();
    sends.dedup();
    assert_eq!(sends.len(), 3, "a mail was sent twice");
    assert_eq!(sent.0.lock().unwrap().len(), 3, "a mail was sent twice");
    // Paid once: one event each, and the sold units left the shop once.
    let kinds: Vec<String> = db
        .store
        .events_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.subject == order.id.to_string())
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(
        kinds,
        ["orders.created", "payments.succeeded", "orders.paid"]
    );
    // The fault fires as its loop passes the point, possibly after the flow above
    // is done; the supervisor counts the restart once it has seen the panic.
    eventually(Duration::from_secs(10), "the loop is restarted", || async {
        let loops = shop.snapshot(10).await.tasks;
        loops.iter().any(|t| t.name == task && t.restarts > 0)
    })
    .await;
    let loops = shop.snapshot(10).await.tasks;
    let restarted = loops.iter().find(|t| t.name == task).unwrap();
    assert_eq!(
        (restarted.restarts, restarted.state.as_str()),
        (1, "running")
    );
    assert!(restarted
        .last_panic
        .as_deref()
        .unwrap()
        .contains("injected fault"));
    assert!(loops
        .iter()
        .filter(|t| t.name != task)
        .all(|t| t.restarts == 0));
    assert!(shop.is_healthy());
    shop.shutdown().await;
    db.finish().await;
}

async fn a_panic_in_the_store_writer_loses_and_doubles_nothing(backend: Backend) {
    a_panic_in_a_loop_loses_and_doubles_nothing(backend, "store_writer").await
}

async fn a_panic_in_the_payments_delivery_loses_and_doubles_nothing(backend: Backend) {
    a_panic_in_a_loop_loses_and_doubles_nothing(backend, "delivery:payments").await
}

async fn a_panic_in_the_orders_delivery_loses_and_doubles_nothing(backend: Backend) {
    a_panic_in_a_loop_loses_and_doubles_nothing(backend, "delivery:orders").await
}

async fn a_panic_in_the_notifier_delivery_loses_and_doubles_nothing(backend: Backend) {
    a_panic_in_a_loop_loses_and_doubles_nothing(backend, "delivery:notifier").await
}

async fn a_panic_in_the_sweeper_loses_and_doubles_nothing(backend: Backend) {
    a_panic_in_a_loop_loses_and_doubles_nothing(backend, "sweeper").await
}

async fn a_panic_in_the_hold_sweeper_loses_and_doubles_nothing(backend: Backend) {
    a_panic_in_a_loop_loses_and_doubles_nothing(backend, "hold_sweeper").await
}

async fn a_panic_in_the_reconciler_loses_and_doubles_nothing(backend: Backend) {
    a_panic_in_a_loop_loses_and_doubles_nothing(backend, "payment_reconciler").await
}

async fn a_panic_in_the_mailroom_loses_and_doubles_nothing(backend: Backend) {
    a_panic_in_a_loop_loses_and_doubles_nothing(backend, "mailroom").await
}

/// A loop that keeps panicking is given up after its restart limit, and the shop
/// says it is not healthy (what `/ready` answers 503 on).
async fn a_loop_past_its_restart_limit_makes_the_shop_unready(backend: Backend) {
    let db = TestStore::new(backend).await;
    let mut config = policy(Duration::from_secs(60), 10);
    config.sweep_every = Duration::from_millis(10);
    config.task_policy = pazar_supervisor::TaskPolicy {
        max_restarts: 3,
        window: Duration::from_secs(60),
        pause: Duration::from_millis(1),
    };
    let shop = Shop::start(db.stores.clone(), config).await.unwrap();
    assert!(shop.is_healthy());
    pazar_actors::faults::arm("sweeper", 1000);
    eventually(Duration::from_secs(10), "the shop is unhealthy", || async {
        !shop.is_healthy()
    })
    .await;
    let snapshot = shop.snapshot(10).await;
    assert_eq!(snapshot.status, "failed");
    let sweeper = snapshot.tasks.iter().find(|t| t.name == "sweeper").unwrap();
    assert_eq!((sweeper.state.as_str(), sweeper.restarts), ("failed", 3));
    // Given up means not run again: the armed panics stop being used.
    let left = pazar_actors::faults::armed("sweeper");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(pazar_actors::faults::armed("sweeper"), left);
    shop.shutdown().await;
    db.finish().await;
}

/// A process paused past its lease (here: the lease made to lapse) finds its
/// writes refused once a successor holds the role, the successor sees none of
/// them, and the old process learns it has lost the role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_under_a_lapsed_lease_is_fenced() {
    let db = TestStore::new(Backend::Postgres).await;
    let mut config = policy(Duration::from_secs(60), 10);
    config.roles = "catalog".parse().unwrap();
    config.lease_ttl = Some(Duration::from_secs(3));
    let old = Shop::start(db.stores.clone(), config.clone())
        .await
        .unwrap();
    assert_eq!(old.leases().as_deref(), Some("catalog@1"));
    let id = product(&old, "FENCE-1", 10).await;
    old.inventory().adjust_stock(id, 1, "ok").await.unwrap();

    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("update role_leases set expires_at = now() - interval '1 second'")
        .execute(&mut admin)
        .await
        .unwrap();
    let successor = pazar_store::connect(&db.url).await.unwrap();
    let new = Shop::start(successor, config).await.unwrap();
    assert_eq!(new.leases().as_deref(), Some("catalog@2"));

    let stale = old.inventory().adjust_stock(id, -5, "stale").await;
    assert!(
        matches!(&stale, Err(pazar_actors::DomainError::Store(pazar_actors::StoreError::Fenced { role })) if role == "catalog"),
        "{stale:?}"
    );
    // A reservation (on PostgreSQL one statement, its writes gated on the lease)
    // is fenced the same way.
    let expires_at = chrono::Utc::now() + chrono::Duration::hours(1);
    let stale = old
        .inventory()
        .reserve(id, pazar_actors::OrderId::new(), 1, expires_at)
        .await;
    assert!(
        matches!(&stale, Err(pazar_actors::DomainError::Store(pazar_actors::StoreError::Fenced { role })) if role == "catalog"),
        "{stale:?}"
    );
    assert_eq!(
        new.inventory().stock_levels(id).await.unwrap(),
        StockLevels::new(11, 0)
    );
    new.inventory()
        .adjust_stock(id, 2, "new holder")
        .await
        .unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(10), old.failure())
        .await
        .expect("the old holder learns it lost the role");
    assert!(
        lost.contains("lost the lease of the catalog role"),
        "{lost}"
    );
    assert!(!old.is_healthy());
    old.shutdown().await;
    // Its shutdown gave nothing back that is not its own.
    assert_eq!(new.leases().as_deref(), Some("catalog@2"));
    assert_eq!(
        new.inventory().stock_levels(id).await.unwrap(),
        StockLevels::new(13, 0)
    );
    let epoch: i64 = sqlx::query_scalar("select epoch from role_leases where role = 'catalog'")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(epoch, 2);
    new.shutdown().await;
    db.finish().await;
}

/// The mailroom is stateless work that may run in several processes at once:
/// each mail is claimed by one of them and sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailrooms_in_two_processes_send_each_mail_once() {
    let db = TestStore::new(Backend::Postgres).await;
    let sent = Arc::new(Outbox::default());
    let mut config = policy(Duration::from_secs(60), 10);
    config.sweep_every = Duration::from_millis(20);
    config.mail = Some(pazar_app::MailConfig {
        renderer: Arc::new(KindOnly),
        transport: sent.clone(),
        max_attempts: 3,
        retry_base: Duration::from_millis(10),
        retry_max: Duration::from_millis(100),
    });
    config.roles = "users,notifications".parse().unwrap();
    let first = Shop::start(db.stores.clone(), config.clone())
        .await
        .unwrap();
    let second = Shop::start(pazar_store::connect(&db.url).await.unwrap(), config)
        .await
        .unwrap();
    for i in 0..40 {
        let shop = if i % 2 == 0 { &first } else { &second };
        customer(shop, &format!("twice-{i}@example.com")).await;
    }
    eventually(
        Duration::from_secs(20),
        "the queue has 40 sent mails",
        || async {
            let sent = first
                .notifications()
                .mails(
                    Some(pazar_notifications::mail::MailStatus::Sent),
                    pazar_actors::Page {
                        limit: 100,
                        offset: 0,
                    },
                )
                .await
                .unwrap();
            sent.len() == 40
        },
    )
    .await;
    // A mail is sent before it is marked sent, and only its claimant sends it.
    let mut sends = sent.0.lock().unwrap().clone();
    assert_eq!(sends.len(), 40, "a mail was sent twice");
    sends.sort();
    sends.dedup();
    assert_eq!(sends.len(), 40);
    first.shutdown().await;
    second.shutdown().await;
    db.finish().await;
}

/// Runs a Kafka test with a deadline of its own: a broker that stops answering
/// fails the test instead of hanging it.
async fn with_deadline<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(180), test)
        .await
        .expect("the test finished within 180 s");
}

/// The snapshot of consumer group `group`.
async fn consumer_group(shop: &Shop, group: &str) -> pazar_supervisor::snapshot::ConsumerSnapshot {
    shop.snapshot(0)
        .await
        .consumers
        .into_iter()
        .find(|snapshot| snapshot.group == group)
        .expect("the group is running")
}

/// A shop on PostgreSQL whose events travel through a tansu broker of its own.
async fn kafka_shop() -> (
    pazar_kafka_bridge::tansu::Tansu,
    TestStore,
    pazar_kafka_bridge::KafkaSettings,
    Shop,
) {
    let broker = pazar_kafka_bridge::tansu::Tansu::start().await.unwrap();
    let db = TestStore::new(Backend::Postgres).await;
    let settings = pazar_kafka_bridge::KafkaSettings::new(&broker.address);
    let config = ShopConfig {
        kafka: Some(settings.clone()),
        ..policy(Duration::from_secs(60), 10)
    };
    let shop = Shop::start(db.stores.clone(), config).await.unwrap();
    (broker, db, settings, shop)
}

/// A Kafka consumer whose read loop dies is restarted by the bridge's
/// supervisor and resumes from its group's committed offsets: the message it
/// died on is read again and handled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_consumer_that_dies_is_restarted_and_resumes_from_committed_offsets() {
    with_deadline(async {
        let (_broker, db, _settings, shop) = kafka_shop().await;
        let id = product(&shop, "KAFKA-1", 10).await;
        let pay = |email: &'static str| {
            let shop = shop.clone();
            async move {
                let buyer = customer(&shop, email).await;
                shop.orders().add_to_cart(buyer.id, id, 1).await.unwrap();
                let (order, _) = shop.orders().checkout(buyer.id, None).await.unwrap();
                let (session, _) =
                    until_available(|| shop.payments().start_payment(buyer.id, order.id)).await;
                shop.payments()
                    .confirm_local_payment(&session.client_secret, &good_card())
                    .await
                    .unwrap();
                order.id
            }
        };
        let is_paid = |order| {
            let shop = shop.clone();
            async move {
                shop.orders().order(order).await.unwrap().status == pazar_actors::OrderStatus::Paid
            }
        };
        let first = pay("first@example.com").await;
        eventually(Duration::from_secs(60), "the first order is paid", || {
            is_paid(first)
        })
        .await;
        // The orders group's read loop dies on the next message it reads.
        pazar_actors::faults::arm("consumer:pazar.orders", 1);
        let second = pay("second@example.com").await;
        eventually(Duration::from_secs(60), "the second order is paid", || {
            is_paid(second)
        })
        .await;
        assert_eq!(pazar_actors::faults::armed("consumer:pazar.orders"), 0);
        let group = consumer_group(&shop, "pazar.orders").await;
        assert_eq!(group.restarts, 1, "{group:?}");
        assert!(
            group
                .last_error
                .as_deref()
                .is_some_and(|error| error.contains("panicked")),
            "{group:?}"
        );
        assert_eq!(group.state, "running");
        let history = shop.orders().order(second).await.unwrap().history;
        assert_eq!(
            history
                .iter()
                .filter(|change| change.status.as_str() == "paid")
                .count(),
            1
        );
        shop.shutdown().await;
        db.finish().await;
    })
    .await;
}

/// A consumer that dies after a message's write committed but before the
/// bridge recorded the message reads it again after its restart, and finds the
/// record the write committed with it: a warehouse's delta is applied once.
/// (Were the record written only afterwards, the product would get the
/// delivery twice.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_read_again_after_its_write_committed_is_not_applied_twice() {
    with_deadline(async {
        let (_broker, db, settings, shop) = kafka_shop().await;
        let id = product(&shop, "WH-1", 10).await;
        // The catalog group's lane dies between the adjustment's commit and
        // the bridge's own record of the message.
        pazar_actors::faults::arm("handled:pazar.catalog", 1);
        let adjustment =
            br#"{"source_id":"wh-delivery-1","sku":"WH-1","delta":5,"reason":"delivery 1"}"#;
        pazar_kafka_bridge::produce_all(
            &settings,
            &settings.inbound_topic("inbound.stock"),
            &[("WH-1".to_owned(), adjustment.to_vec())],
        )
        .await
        .unwrap();
        eventually(
            Duration::from_secs(60),
            "the catalog group restarted and skipped the message it had applied",
            || async {
                let group = consumer_group(&shop, "pazar.catalog").await;
                group.restarts == 1 && group.duplicates_skipped == 1
            },
        )
        .await;
        assert_eq!(pazar_actors::faults::armed("handled:pazar.catalog"), 0);
        let levels = shop.inventory().stock_levels(id).await.unwrap();
        assert_eq!(levels.on_hand, 15, "{levels:?}");
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let logged: i64 = sqlx::query_scalar(
            "select count(*) from stock_adjustments where reason = 'delivery 1'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(logged, 1);
        drop(conn);
        shop.shutdown().await;
        db.finish().await;
    })
    .await;
}
