//! Events through Kafka — outbox → relay → broker → consumer group → subscriber —
//! beside the embedded delivery (each subscriber reading the shared outbox), in
//! one run, both on PostgreSQL with the shop in this process.
//!
//! The events are `catalog.stock_changed`, one per stock adjustment of 100
//! products, handled by the orders role's `live-carts` subscriber (the event's
//! whole path, without a socket to push to). Two phases per transport:
//!
//! - **latency**: adjustments paced at `--rate` per second for `--seconds`; the
//!   subscriber's lag from each event's writing to its handling, p50/p99;
//! - **throughput**: `--burst` adjustments from 64 tasks at once; events per
//!   second from the first adjustment until the subscriber has handled all.
//!
//! Needs the tansu broker (`PAZAR_TEST_TANSU`, as `.ci/run` exports it).

use clap::Parser;
use pazar_actors::ProductId;
use pazar_app::{Shop, ShopConfig};
use pazar_bench::BenchDb;
use pazar_catalog::NewProduct;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Adjustments per second in the latency phase.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Length of the latency phase.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Adjustments in the throughput phase.
    #[arg(long, default_value_t = 20_000)]
    burst: usize,
}

struct Figures {
    p50_ms: f64,
    p99_ms: f64,
    samples: usize,
    events_per_second: f64,
    events: i64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    println!(
        "events through Kafka vs the shared outbox: catalog.stock_changed → live-carts, \
         {}/s for {} s, then a burst of {}",
        args.rate, args.seconds, args.burst
    );
    let broker = pazar_kafka_bridge::tansu::Tansu::start()
        .await
        .expect("tansu (PAZAR_TEST_TANSU)");
    let outbox_db = BenchDb::postgres().await;
    let outbox = run(&outbox_db, None, &args).await;
    let kafka_db = BenchDb::postgres().await;
    let kafka = run(
        &kafka_db,
        Some(pazar_kafka_bridge::KafkaSettings::new(&broker.address)),
        &args,
    )
    .await;
    for (name, figures) in [("shared outbox", &outbox), ("Kafka (tansu)", &kafka)] {
        println!(
            "{name:<16} lag p50 {:>7.2} ms  p99 {:>7.2} ms  ({} events at {}/s)   burst: {:>7.0} events/s ({} events)",
            figures.p50_ms,
            figures.p99_ms,
            figures.samples,
            args.rate,
            figures.events_per_second,
            figures.events
        );
    }
    println!(
        "ratio Kafka/outbox: throughput {:.2}x, p99 lag {:.2}x (target: p99 < 100 ms at 1,000 events/s)",
        kafka.events_per_second / outbox.events_per_second,
        kafka.p99_ms / outbox.p99_ms
    );
    outbox_db.drop_database().await;
    kafka_db.drop_database().await;
}

async fn run(
    db: &BenchDb,
    kafka: Option<pazar_kafka_bridge::KafkaSettings>,
    args: &Args,
) -> Figures {
    let with_kafka = kafka.is_some();
    let shop = Shop::start(
        db.store().await,
        ShopConfig {
            kafka,
            ..ShopConfig::default()
        },
    )
    .await
    .expect("shop");
    let products = create_products(&shop).await;
    // Everything so far (the products' events) delivered, then measure afresh.
    let mut delivered = Delivered::default();
    delivered.wait_all(&shop, with_kafka).await;
    shop.events.lags().clear();

    // Latency: adjustments at a steady rate.
    let mut tick = tokio::time::interval(Duration::from_secs(1) / args.rate as u32);
    let mut adjustments = Vec::new();
    for n in 0..(args.rate * args.seconds) as usize {
        tick.tick().await;
        let (shop, product) = (shop.clone(), products[n % products.len()]);
        adjustments.push(tokio::spawn(async move {
            shop.inventory()
                .adjust_stock(product, 1, "bench")
                .await
                .expect("adjust")
        }));
    }
    for adjustment in adjustments {
        adjustment.await.unwrap();
    }
    delivered.wait_all(&shop, with_kafka).await;
    let lag = shop
        .events
        .lags()
        .summary()
        .into_iter()
        .find(|lag| lag.subscriber == "live-carts")
        .expect("live-carts lags");

    // Throughput: a burst from 64 tasks.
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (shop, products, next, burst) =
                (shop.clone(), products.clone(), next.clone(), args.burst);
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= burst {
                        return;
                    }
                    shop.inventory()
                        .adjust_stock(products[n % products.len()], 1, "bench")
                        .await
                        .expect("adjust");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let events = delivered.wait_all(&shop, with_kafka).await;
    let elapsed = started.elapsed();
    shop.shutdown().await;
    Figures {
        p50_ms: lag.p50_ms,
        p99_ms: lag.p99_ms,
        samples: lag.samples,
        events_per_second: events as f64 / elapsed.as_secs_f64(),
        events,
    }
}

async fn create_products(shop: &Shop) -> Vec<ProductId> {
    let new: Vec<NewProduct> = (0..100)
        .map(|i| NewProduct {
            name: format!("Bench {i}"),
            description: "bench".into(),
            sku: format!("BENCH-{i}"),
            price_amount: 1250,
            price_currency: "EUR".into(),
            stock: 1_000_000,
        })
        .collect();
    shop.catalog()
        .create_many(new)
        .await
        .expect("products")
        .into_iter()
        .map(|view| view.product.id)
        .collect()
}

/// How far the `live-carts` subscriber has got, by its transport's counter.
#[derive(Default)]
struct Delivered {
    /// The outbox head when last caught up.
    head: i64,
    /// The orders group's handled count when last caught up (Kafka).
    handled: u64,
}

impl Delivered {
    /// Waits until every event written so far is handled by `live-carts`; the
    /// number of events since the last wait.
    async fn wait_all(&mut self, shop: &Shop, with_kafka: bool) -> i64 {
        let (head, _) = shop.events.progress().await.expect("progress");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let reached = if with_kafka {
                // Every event since the last wait is one `live-carts` handles,
                // and the only one its group (`pazar.orders`) handles.
                let snapshot = shop.snapshot(0).await;
                let handled = snapshot
                    .consumers
                    .iter()
                    .find(|group| group.group == "pazar.orders")
                    .map_or(0, |group| group.handled);
                (handled - self.handled >= (head - self.head) as u64).then_some(handled)
            } else {
                let (_, cursors) = shop.events.progress().await.expect("progress");
                cursors
                    .iter()
                    .find(|(name, _)| name == "live-carts")
                    .is_some_and(|(_, cursor)| *cursor >= head)
                    .then_some(0)
            };
            if let Some(handled) = reached {
                let events = head - self.head;
                self.head = head;
                self.handled = handled;
                return events;
            }
            assert!(Instant::now() < deadline, "delivery did not catch up");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
