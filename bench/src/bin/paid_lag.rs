//! How long a customer who has paid is told "pending payment": N orders are placed
//! over HTTP, then their N local payments are confirmed over HTTP from concurrent
//! workers, and the time until every order reads back `paid` is measured — above
//! all how long after the last confirm the last order turns paid. Printed beside
//! the checkout rate of the same run (the rate the subscriber path must sustain),
//! on SQLite and on PostgreSQL. Pazar runs as `pazar serve` does by default, with
//! the notifier queueing mails and the mailroom writing them.
//!
//! `cargo run --release -p pazar-bench --bin paid_lag -- --orders 600 --workers 32`

use clap::Parser;
use pazar_actors::events::DeliveryPolicy;
use pazar_actors::order::OrderStatus;
use pazar_actors::{EventType, OrderId};
use pazar_app::{Shop, ShopConfig};
use pazar_bench::{pay_locally, payment_secret, serve_in_process, BenchDb};
use pazar_catalog::NewProduct;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The same allocator as the `pazar` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: pazar_allocator::Allocator = pazar_allocator::Allocator {};

#[derive(Parser)]
struct Args {
    /// Orders placed and paid.
    #[arg(long, default_value_t = 600)]
    orders: usize,
    /// Concurrent HTTP workers, for placing orders and for confirming payments.
    #[arg(long, default_value_t = 32)]
    workers: usize,
    /// Products the orders spread over (one unit of one product per order).
    #[arg(long, default_value_t = 8)]
    products: usize,
    /// Delivery lanes per subscriber (1 handles one event at a time, as before lanes).
    #[arg(long)]
    lanes: Option<usize>,
}

/// One database's figures.
struct Run {
    checkout: Duration,
    /// After the last checkout, until every order's payment session was found.
    sessions: Duration,
    confirm: Duration,
    paid_at_last_confirm: usize,
    lag_after_last_confirm: Duration,
    /// Each order's time from its confirm returning to reading back paid, sorted.
    lags: Vec<Duration>,
    all_paid_after_first_confirm: Duration,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    println!(
        "paid lag: {} orders placed by {} workers, then their payments confirmed by {} workers",
        args.orders, args.workers, args.workers
    );
    let sqlite = BenchDb::sqlite();
    let on_sqlite = run(&sqlite, &args).await;
    let postgres = BenchDb::postgres().await;
    let on_postgres = run(&postgres, &args).await;
    for (label, run) in [("SQLite", on_sqlite), ("PostgreSQL", on_postgres)] {
        let n = args.orders as f64;
        println!(
            "{label:<11} checkout {:>6.0}/s   sessions ready {:>5.0} ms later   confirms {:>6.0}/s   paid {:>6.0}/s   paid when the last confirm returned {:>4}/{}   all paid {:>7.1} ms after the last confirm (target <= 250 ms)   per order p50 {:>6.1} ms  p99 {:>6.1} ms",
            n / run.checkout.as_secs_f64(),
            run.sessions.as_secs_f64() * 1e3,
            n / run.confirm.as_secs_f64(),
            n / run.all_paid_after_first_confirm.as_secs_f64(),
            run.paid_at_last_confirm,
            args.orders,
            run.lag_after_last_confirm.as_secs_f64() * 1e3,
            run.lags[run.lags.len() / 2].as_secs_f64() * 1e3,
            run.lags[run.lags.len() * 99 / 100].as_secs_f64() * 1e3,
        );
    }
    sqlite.drop_database().await;
    postgres.drop_database().await;
}

async fn run(db: &BenchDb, args: &Args) -> Run {
    let (mail, _mail_dir) = pazar_bench::file_mail();
    let shop = Shop::start(
        db.store().await,
        ShopConfig {
            mail: Some(mail),
            delivery: DeliveryPolicy {
                lanes: args.lanes.unwrap_or(DeliveryPolicy::default().lanes),
                ..DeliveryPolicy::default()
            },
            ..ShopConfig::default()
        },
    )
    .await
    .expect("shop");
    let mut products = Vec::new();
    for i in 0..args.products {
        let created = shop
            .catalog()
            .create(NewProduct {
                name: format!("Product {i}"),
                description: String::new(),
                sku: format!("PAID-{i}"),
                price_amount: 1250,
                price_currency: "EUR".into(),
                stock: 1_000_000,
            })
            .await
            .expect("product");
        products.push(created.product.id.to_string());
    }
    let (base, _issuer, _keys) = serve_in_process(shop.clone()).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.workers * 2)
        .build()
        .unwrap();

    // One buyer per worker, registered before the clock starts (argon2 is slow on purpose).
    let buyers: Vec<String> =
        join_all(
            (0..args.workers).map(|i| {
                let (client, base) = (client.clone(), base.clone());
                async move {
                    pazar_bench::register(&client, &base, &format!("payer{i}@bench.test")).await
                }
            }),
        )
        .await;

    // Checkout: each buyer puts one unit in its cart and places the order, again and again.
    let per_buyer = args.orders.div_ceil(args.workers);
    let started = Instant::now();
    let placed: Vec<Vec<(String, OrderId)>> =
        join_all(buyers.iter().enumerate().map(|(b, token)| {
            let (client, base, token, products) = (
                client.clone(),
                base.clone(),
                token.clone(),
                products.clone(),
            );
            let count = per_buyer.min(args.orders.saturating_sub(b * per_buyer));
            async move {
                let mut orders = Vec::new();
                for i in 0..count {
                    let product = &products[(b + i) % products.len()];
                    let added = client
                        .post(format!("{base}/api/v1/cart/items"))
                        .bearer_auth(&token)
                        .json(&json!({"product_id": product, "quantity": 1}))
                        .send()
                        .await
                        .unwrap();
                    assert!(
                        added.status().is_success(),
                        "add to cart: {}",
                        added.status()
                    );
                    let order: Value = client
                        .post(format!("{base}/api/v1/orders"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let id = order["id"].as_str().expect("an order").parse().unwrap();
                    orders.push((token.clone(), OrderId(id)));
                }
                orders
            }
        }))
        .await;
    let checkout = started.elapsed();
    let orders: Vec<(String, OrderId)> = placed.into_iter().flatten().collect();
    assert_eq!(orders.len(), args.orders);

    // The payment service starts each order's session when it hears of the order.
    let sessions_started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    let secrets: Vec<String> = join_all(orders.iter().map(|(token, order)| {
        let (client, base, token, order) = (client.clone(), base.clone(), token.clone(), *order);
        async move {
            let order = order.to_string();
            let every = Duration::from_millis(20);
            payment_secret(&client, &base, &token, &order, every, deadline).await
        }
    }))
    .await;
    let sessions = sessions_started.elapsed();

    // Confirm every payment from the workers; a watcher reads each confirmed order
    // back until it is paid.
    let (confirmed_tx, confirmed) = tokio::sync::mpsc::unbounded_channel();
    let confirms_done = Arc::new(tokio::sync::OnceCell::new());
    let watcher = tokio::spawn(watch_until_paid(
        shop.clone(),
        confirmed,
        orders.len(),
        confirms_done.clone(),
    ));
    let queue: VecDeque<(String, OrderId)> = secrets
        .into_iter()
        .zip(orders.iter().map(|(_, order)| *order))
        .collect();
    let queue = Arc::new(Mutex::new(queue));
    let first_confirm = Instant::now();
    join_all((0..args.workers).map(|_| {
        let (client, base, queue, confirmed) = (
            client.clone(),
            base.clone(),
            queue.clone(),
            confirmed_tx.clone(),
        );
        async move {
            loop {
                let Some((secret, order)) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                pay_locally(&client, &base, &secret).await;
                let _ = confirmed.send((order, Instant::now()));
            }
        }
    }))
    .await;
    let last_confirm = Instant::now();
    confirms_done.set(last_confirm).unwrap();
    let (paid_at_last_confirm, all_paid, mut lags) = watcher.await.unwrap();
    lags.sort_unstable();
    shop.shutdown().await;
    Run {
        checkout,
        sessions,
        confirm: last_confirm - first_confirm,
        paid_at_last_confirm,
        lag_after_last_confirm: all_paid.saturating_duration_since(last_confirm),
        lags,
        all_paid_after_first_confirm: all_paid - first_confirm,
    }
}

/// Follows the outbox for `orders.paid` (an order reads back `paid` as soon as
/// its transition is committed, which is when its event is in the outbox) until
/// every confirmed order is paid, then reads each order back to check. Returns how
/// many were paid when the last confirm returned, when the last one was paid, and
/// each order's lag from its confirm returning to its paid event being readable.
async fn watch_until_paid(
    shop: Shop,
    mut confirmed: tokio::sync::mpsc::UnboundedReceiver<(OrderId, Instant)>,
    total: usize,
    confirms_done: Arc<tokio::sync::OnceCell<Instant>>,
) -> (usize, Instant, Vec<Duration>) {
    let mut confirmed_at: HashMap<OrderId, Instant> = HashMap::new();
    let mut paid_at: HashMap<OrderId, Instant> = HashMap::new();
    let mut paid_at_last_confirm = None;
    let (mut seq, _) = shop.events.progress().await.expect("outbox head");
    let deadline = Instant::now() + Duration::from_secs(300);
    while paid_at.len() < total || confirmed_at.len() < total {
        if paid_at_last_confirm.is_none() && confirms_done.get().is_some() {
            paid_at_last_confirm = Some(paid_at.len());
        }
        while let Ok((order, at)) = confirmed.try_recv() {
            confirmed_at.insert(order, at);
        }
        let events = shop.events.events_after(seq, 1000).await.expect("outbox");
        let now = Instant::now();
        for event in &events {
            seq = event.seq;
            if event.event.event_type() == Some(EventType::OrderPaid) {
                let order = OrderId(event.event.subject.parse().expect("an order id"));
                paid_at.entry(order).or_insert(now);
            }
        }
        assert!(
            now < deadline,
            "{} orders never paid",
            total - paid_at.len()
        );
        if events.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    for order in confirmed_at.keys() {
        let read_back = shop.orders().order(*order).await.expect("order");
        assert_eq!(read_back.status, OrderStatus::Paid, "order {order}");
    }
    let lags = paid_at
        .iter()
        .map(|(order, paid)| paid.saturating_duration_since(confirmed_at[order]))
        .collect();
    let last_paid = paid_at.values().max().copied().expect("orders");
    (paid_at_last_confirm.unwrap_or(total), last_paid, lags)
}

/// Runs the futures concurrently and returns their outputs in order.
async fn join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}
