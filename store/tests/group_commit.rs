//! Group commit isolates failures: a write the database refuses fails alone, and
//! every other write of its batch commits and is answered with success — stock
//! changes, new orders and new payment sessions, on SQLite and PostgreSQL
//! alike. And the catalog's keyset pages, read while the writer deletes products;
//! and the local payment provider's one intent per order.

use pazar_actors::store_writer::{StoreWriterConfig, Write};
use pazar_actors::{
    EventSignal, HoldSource, Order, OrderId, OrderLine, OrderStatus, PaymentSession, PaymentStatus,
    ProductId, Reservation, StatusChange, StockChange, StockLevels, StoreError, StoreWriter,
    UserId,
};
use pazar_catalog::{Catalog, NewProduct, ProductViews};
use sqlx::Connection;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A migrated store on a fresh database; the temp dir keeps a SQLite file alive.
async fn fresh_store(postgres: bool) -> (pazar_store::Stores, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = if postgres {
        let server = std::env::var("PAZAR_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let name = format!("pazar_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .expect("PostgreSQL must listen on 127.0.0.1:5432 (see .ci/run)");
        sqlx::query(&format!("create database {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        format!("{server}/{name}")
    } else {
        format!("sqlite://{}", dir.path().join("pazar.db").display())
    };
    let stores = pazar_store::connect_and_migrate(&url).await.unwrap();
    (stores, dir)
}

/// 101 products with 10 units each.
async fn products(stores: &pazar_store::Stores) -> Vec<ProductId> {
    let catalog = Catalog::new(
        stores.products.clone(),
        Arc::new(ProductViews::default()),
        EventSignal::default(),
    );
    let new = (0..101)
        .map(|i| NewProduct {
            name: format!("Product {i}"),
            description: String::new(),
            sku: format!("SKU-{i}"),
            price_amount: 100,
            price_currency: "EUR".into(),
            stock: 10,
        })
        .collect();
    catalog
        .create_many(new)
        .await
        .unwrap()
        .into_iter()
        .map(|view| view.product.id)
        .collect()
}

fn adjust(product_id: ProductId, delta: i64, reason: &str) -> Write {
    Write::Stock {
        change: StockChange::Adjust {
            product_id,
            delta,
            reason: reason.into(),
        },
        levels: StockLevels::new(10 + delta, 0),
    }
}

/// A hold of `quantity` units for a new order, as a checkout takes it.
fn reserve(product_id: ProductId, quantity: i64) -> Write {
    hold(product_id, OrderId::new(), quantity)
}

/// A checkout's hold of `quantity` units for `order_id`, for an hour.
fn hold(product_id: ProductId, order_id: OrderId, quantity: i64) -> Write {
    Write::Stock {
        change: StockChange::Reserve {
            product_id,
            reservation: Reservation {
                order_id,
                quantity,
                expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
                source: HoldSource::Checkout,
            },
        },
        levels: StockLevels::new(10, quantity),
    }
}

/// What a batch of good writes does to a product of 10 units, and what it leaves.
#[derive(Clone, Copy)]
enum Good {
    /// Restock by 5: on hand 15.
    Restock,
    /// Hold 1 unit: 1 reservation. On PostgreSQL such a batch is one statement
    /// (`store/src/kernel/one_statement.rs`); refused, it falls back to the
    /// general path, which isolates the write at fault.
    Reserve,
}

impl Good {
    fn write(self, product_id: ProductId) -> Write {
        match self {
            Good::Restock => adjust(product_id, 5, "restock"),
            Good::Reserve => reserve(product_id, 1),
        }
    }

    fn done(self, stock: &pazar_actors::StockRecord) -> bool {
        match self {
            Good::Restock => stock.on_hand == 15 && stock.reservations.is_empty(),
            Good::Reserve => stock.on_hand == 10 && stock.reservations.len() == 1,
        }
    }
}

/// Submits `writes` back to back while the writer commits the first, so the
/// rest share batches; the failed ones, by position, once all are answered.
async fn submit_back_to_back(writer: &StoreWriter, writes: Vec<Write>) -> Vec<(usize, StoreError)> {
    let mut answers = Vec::new();
    for write in writes {
        let (done, answer) = oneshot::channel();
        writer
            .submit(
                write,
                Box::new(move |outcome| {
                    let _ = done.send(outcome);
                }),
            )
            .await
            .unwrap();
        answers.push(answer);
    }
    let mut failures = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        if let Err(error) = answer.await.unwrap() {
            failures.push((i, error));
        }
    }
    failures
}

async fn one_poisoned_write_fails_alone(
    postgres: bool,
    good: Good,
    poison: fn(ProductId) -> Write,
) {
    let (stores, _dir) = fresh_store(postgres).await;
    let ids = products(&stores).await;
    let store = stores.kernel.clone();
    let products = stores.products.clone();
    let (writer, _task) = StoreWriter::start(
        store.clone(),
        StoreWriterConfig::default(),
        EventSignal::default(),
    );
    let mut writes: Vec<Write> = ids[1..].iter().map(|id| good.write(*id)).collect();
    writes.insert(50, poison(ids[0]));
    let failures = submit_back_to_back(&writer, writes).await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, 50);
    assert!(matches!(failures[0].1, StoreError::Rejected(_)));
    for id in &ids[1..] {
        let stock = products.load_stock(*id).await.unwrap().unwrap();
        assert!(good.done(&stock), "a valid write of the batch was lost");
    }
    let poisoned = products.load_stock(ids[0]).await.unwrap().unwrap();
    assert_eq!(poisoned.on_hand, 10, "the refused write left a trace");
    assert!(
        poisoned.reservations.is_empty(),
        "the refused write left a trace"
    );
    // One event per committed product, none for the refused one.
    let events = store.events_after(0, 1000).await.unwrap();
    let stock_events: Vec<_> = events
        .iter()
        .filter(|e| e.event.kind == "catalog.stock_changed")
        .collect();
    assert_eq!(stock_events.len(), 100);
    assert!(stock_events
        .iter()
        .all(|e| e.event.subject != ids[0].to_string()));
}

/// A check constraint refuses it on both databases (`on_hand >= reserved`).
fn below_zero(product_id: ProductId) -> Write {
    adjust(product_id, -1_000, "too much")
}

/// More units held than there are: the same check constraint refuses it.
fn overdrawn(product_id: ProductId) -> Write {
    reserve(product_id, 1_000)
}

/// PostgreSQL refuses a NUL byte in text (SQLite stores it).
fn nul_reason(product_id: ProductId) -> Write {
    adjust(product_id, 1, "nul \u{0} byte")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refused_write_fails_alone() {
    one_poisoned_write_fails_alone(false, Good::Restock, below_zero).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refused_reservation_fails_alone() {
    one_poisoned_write_fails_alone(false, Good::Reserve, overdrawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refused_reservation_fails_alone() {
    one_poisoned_write_fails_alone(true, Good::Reserve, overdrawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refused_write_fails_alone() {
    one_poisoned_write_fails_alone(true, Good::Restock, below_zero).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nul_byte_write_fails_alone() {
    one_poisoned_write_fails_alone(true, Good::Restock, nul_reason).await;
}

/// A checkout's writes for `product`: its hold, then its order of 1 unit for `user`.
fn checkout(product_id: ProductId, user_id: UserId) -> (Write, Order) {
    // Microseconds, as both databases keep them.
    let at = pazar_actors::now();
    let eur = pazar_actors::Currency::parse("EUR").unwrap();
    let price = pazar_actors::Money {
        amount: 100,
        currency: eur,
    };
    let order = Order {
        id: OrderId::new(),
        user_id,
        status: OrderStatus::PendingPayment,
        lines: vec![OrderLine {
            product_id,
            name: "Product".into(),
            sku: "SKU".into(),
            quantity: 1,
            unit_price: price,
        }],
        total: price,
        created_at: at,
        expires_at: at + chrono::Duration::hours(1),
        history: vec![StatusChange {
            status: OrderStatus::PendingPayment,
            at,
            reason: None,
        }],
        idempotency_key: Some(format!("key-{product_id}")),
    };
    (hold(product_id, order.id, 1), order)
}

/// A registered customer.
async fn customer(stores: &pazar_store::Stores) -> UserId {
    let accounts = pazar_users::Accounts::new(
        stores.users.clone(),
        pazar_users::LoginThrottlePolicy::default(),
        EventSignal::default(),
    )
    .unwrap();
    accounts
        .register(
            pazar_users::NewUser::parse(
                "buyer@example.com",
                "a-long-password",
                "Buyer",
                pazar_actors::Role::Customer,
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .id
}

/// A batch of checkouts (holds and new orders; on PostgreSQL one statement) with
/// one order the database refuses, for a user who does not exist: that order
/// fails alone, and every other is stored whole — lines, history, its event —
/// with its customer's cart emptied.
async fn a_refused_order_fails_alone(postgres: bool) {
    let (stores, _dir) = fresh_store(postgres).await;
    let ids = products(&stores).await;
    let customer = customer(&stores).await;
    stores
        .orders
        .set_cart_line(customer, ids[1], 1)
        .await
        .unwrap();
    let (writer, _task) = StoreWriter::start(
        stores.kernel.clone(),
        StoreWriterConfig::default(),
        EventSignal::default(),
    );
    let mut writes = Vec::new();
    let mut orders = Vec::new();
    for (i, id) in ids[1..].iter().enumerate() {
        let user = if i == 50 { UserId::new() } else { customer };
        let (hold, order) = checkout(*id, user);
        writes.push(hold);
        writes.push(Write::CreateOrder(Box::new(order.clone())));
        orders.push(order);
    }
    let failures = submit_back_to_back(&writer, writes).await;
    assert_eq!(
        failures.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![101],
        "only the refused order fails: {failures:?}"
    );
    for (i, order) in orders.iter().enumerate() {
        let stored = stores.orders.order(order.id).await.unwrap();
        if i == 50 {
            assert_eq!(stored, None, "the refused order left a trace");
        } else {
            assert_eq!(
                stored.as_ref(),
                Some(order),
                "an order of the batch was lost"
            );
        }
    }
    assert!(stores.orders.load_cart(customer).await.unwrap().is_empty());
    let events = stores.kernel.events_after(0, 1000).await.unwrap();
    let created: Vec<_> = events
        .iter()
        .filter(|e| e.event.kind == "orders.created")
        .collect();
    assert_eq!(created.len(), 99);
    assert!(created
        .iter()
        .all(|e| e.event.subject != orders[50].id.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refused_order_fails_alone() {
    a_refused_order_fails_alone(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refused_order_fails_alone() {
    a_refused_order_fails_alone(true).await;
}

/// A new payment session for `order`, as its PaymentSession actor opens it.
fn session(order: &Order) -> PaymentSession {
    let at = pazar_actors::now();
    PaymentSession {
        order_id: order.id,
        provider: "local".into(),
        intent_id: format!("pi_{}", order.id),
        client_secret: format!("pi_{}_secret", order.id),
        status: PaymentStatus::RequiresPayment,
        amount: order.total,
        last_error: None,
        created_at: at,
        updated_at: at,
    }
}

/// Payment sessions opened together share a commit (on PostgreSQL one
/// statement): one for an order that has a session already fails alone, with
/// `Conflict`, and every other is stored as submitted.
async fn a_second_session_of_an_order_fails_alone(postgres: bool) {
    let (stores, _dir) = fresh_store(postgres).await;
    let ids = products(&stores).await;
    let customer = customer(&stores).await;
    let (writer, _task) = StoreWriter::start(
        stores.kernel.clone(),
        StoreWriterConfig::default(),
        EventSignal::default(),
    );
    let (mut writes, mut orders) = (Vec::new(), Vec::new());
    for id in &ids[1..] {
        let (hold, order) = checkout(*id, customer);
        writes.push(hold);
        writes.push(Write::CreateOrder(Box::new(order.clone())));
        orders.push(order);
    }
    assert!(submit_back_to_back(&writer, writes).await.is_empty());
    let first = session(&orders[50]);
    writer
        .write(Write::OpenPayment(Box::new(first.clone())))
        .await
        .unwrap();
    let sessions: Vec<PaymentSession> = orders.iter().map(session).collect();
    let writes = sessions
        .iter()
        .map(|s| Write::OpenPayment(Box::new(s.clone())))
        .collect();
    let failures = submit_back_to_back(&writer, writes).await;
    assert!(
        matches!(failures.as_slice(), [(50, StoreError::Conflict { constraint })]
            if constraint == "payment_sessions_pkey"),
        "only the order's second session fails, as a conflict: {failures:?}"
    );
    for (i, submitted) in sessions.iter().enumerate() {
        let stored = stores
            .payments
            .payment_session(submitted.order_id)
            .await
            .unwrap();
        let expected = if i == 50 { &first } else { submitted };
        assert_eq!(stored.as_ref(), Some(expected), "session {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_second_session_of_an_order_fails_alone() {
    a_second_session_of_an_order_fails_alone(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_second_session_of_an_order_fails_alone() {
    a_second_session_of_an_order_fails_alone(true).await;
}

/// The local provider creates one intent per order: asked again (a session
/// start tried again after a crash), it answers with the first.
async fn a_local_intent_is_created_once_per_order(postgres: bool) {
    use pazar_payments::PaymentProvider;
    let (stores, _dir) = fresh_store(postgres).await;
    let local = pazar_payments::local::LocalPayments::new(stores.payments.clone());
    let eur = pazar_actors::Currency::parse("EUR").unwrap();
    let amount = pazar_actors::Money {
        amount: 1250,
        currency: eur,
    };
    let (order, other) = (OrderId::new(), OrderId::new());
    let first = local.create_intent(order, amount).await.unwrap();
    let again = local.create_intent(order, amount).await.unwrap();
    assert_eq!(again, first);
    let theirs = local.create_intent(other, amount).await.unwrap();
    assert_ne!(theirs.id, first.id);
    let stored = stores.payments.local_intent_for_order(order).await.unwrap();
    assert_eq!(stored.map(|s| s.intent), Some(first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_local_intent_once_per_order() {
    a_local_intent_is_created_once_per_order(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_local_intent_once_per_order() {
    a_local_intent_is_created_once_per_order(true).await;
}

/// The catalog's keyset pages (a search reindex reads the store with them):
/// products deleted between two pages neither shift the next page nor make it
/// skip one — an offset page would skip as many as were deleted before it.
async fn keyset_pages_skip_nothing_when_products_go_between_them(postgres: bool) {
    let (stores, _dir) = fresh_store(postgres).await;
    let mut ids = products(&stores).await;
    ids.sort_by_key(|id| id.0);
    let (writer, _task) = StoreWriter::start(
        stores.kernel.clone(),
        StoreWriterConfig::default(),
        EventSignal::default(),
    );
    let page = |after| {
        let products = stores.products.clone();
        async move {
            products
                .products_after(after, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|view| view.product.id)
                .collect::<Vec<_>>()
        }
    };
    let first = page(None).await;
    assert_eq!(first, ids[..10]);
    // Three products of the first page are deleted.
    for gone in &ids[2..5] {
        writer
            .write(Write::Stock {
                change: StockChange::Retire { product_id: *gone },
                levels: StockLevels::new(10, 0),
            })
            .await
            .unwrap();
    }
    assert_eq!(page(first.last().copied()).await, ids[10..20]);
    let last = page(Some(ids[95])).await;
    assert_eq!(last, ids[96..], "the last page is short");
    assert!(page(Some(ids[100])).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keyset_pages_skip_nothing() {
    keyset_pages_skip_nothing_when_products_go_between_them(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keyset_pages_skip_nothing() {
    keyset_pages_skip_nothing_when_products_go_between_them(true).await;
}
