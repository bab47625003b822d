//! Reservations per second on one hot product through its ProductStock actor, with
//! the reply sent only after the reservation is committed (group commit), from N
//! concurrent callers, on SQLite and PostgreSQL — beside the same reservations done
//! as plain row-lock transactions on the same PostgreSQL:
//! `UPDATE … SET reserved = reserved + 1 WHERE id = $1 AND on_hand - reserved >= 1`.
//!
//! `cargo run --release -p pazar-bench --bin reservations -- --callers 64 --seconds 10`

use clap::Parser;

/// The same allocator as the `pazar` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: pazar_allocator::Allocator = pazar_allocator::Allocator {};
use pazar_actors::OrderId;
use pazar_app::{Shop, ShopConfig};
use pazar_bench::{BenchDb, Measurement};
use pazar_catalog::NewProduct;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    callers: usize,
    /// Seconds each run lasts.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

const STOCK: i64 = 1_000_000_000;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let duration = Duration::from_secs(args.seconds);
    println!(
        "reservations on one hot product, {} callers, {} s per run",
        args.callers, args.seconds
    );

    let sqlite = BenchDb::sqlite();
    let on_sqlite = through_actor(&sqlite, args.callers, duration).await;
    println!("pazar actor, SQLite      {}", on_sqlite.summary());

    let postgres = BenchDb::postgres().await;
    let on_postgres = through_actor(&postgres, args.callers, duration).await;
    println!("pazar actor, PostgreSQL  {}", on_postgres.summary());

    let plain = plain_row_lock(&postgres.url, args.callers, duration).await;
    println!("plain UPDATE, PostgreSQL {}", plain.summary());

    println!(
        "ratio pazar/plain on PostgreSQL: {:.1}x (target >= 25x); SQLite/plain PostgreSQL: {:.1}x",
        on_postgres.per_second() / plain.per_second(),
        on_sqlite.per_second() / plain.per_second()
    );
    sqlite.drop_database().await;
    postgres.drop_database().await;
}

async fn through_actor(db: &BenchDb, callers: usize, duration: Duration) -> Measurement {
    let stores = db.store().await;
    let store = stores.products.clone();
    let shop = Shop::start(stores, ShopConfig::default())
        .await
        .expect("shop");
    let product = shop
        .catalog()
        .create(NewProduct {
            name: "Hot product".into(),
            description: String::new(),
            sku: "HOT".into(),
            price_amount: 100,
            price_currency: "EUR".into(),
            stock: STOCK,
        })
        .await
        .expect("product")
        .product
        .id;
    let expires_at = chrono::Utc::now() + chrono::Duration::hours(1);
    // Warm-up: spawn the actor.
    shop.inventory()
        .reserve(product, OrderId::new(), 1, expires_at)
        .await
        .expect("warm-up reservation");
    let measured = run(callers, duration, move |_| {
        let shop = shop.clone();
        async move {
            shop.inventory()
                .reserve(product, OrderId::new(), 1, expires_at)
                .await
                .expect("reservation");
        }
    })
    .await;
    // Every acknowledged reservation is in the store.
    let record = store.load_stock(product).await.unwrap().unwrap();
    assert_eq!(record.reservations.len(), measured.operations + 1);
    measured
}

async fn plain_row_lock(url: &str, callers: usize, duration: Duration) -> Measurement {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(callers as u32)
        .connect(url)
        .await
        .expect("pool");
    sqlx::query(
        "create table plain_stock (id uuid primary key, on_hand bigint not null, reserved bigint not null)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let id = uuid::Uuid::now_v7();
    sqlx::query("insert into plain_stock values ($1, $2, 0)")
        .bind(id)
        .bind(STOCK)
        .execute(&pool)
        .await
        .unwrap();
    run(callers, duration, move |_| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let done = sqlx::query(
                "update plain_stock set reserved = reserved + 1 where id = $1 and on_hand - reserved >= 1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
            assert_eq!(done.rows_affected(), 1);
            tx.commit().await.unwrap();
        }
    })
    .await
}

/// Runs `operation` in a loop from `callers` tasks for `duration`.
async fn run<F, Fut>(callers: usize, duration: Duration, operation: F) -> Measurement
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let operation = operation.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let begun = Instant::now();
                    operation(caller).await;
                    latencies.push(begun.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("caller"));
    }
    Measurement::new(latencies, started.elapsed())
}
