//! Resident memory with N ProductStock actors alive, and after they have all been
//! passivated, beside the process's baseline before any actor was started.
//!
//! `cargo run --release -p pazar-bench --bin memory -- --actors 100000`

use clap::Parser;

/// The same allocator as the `pazar` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: pazar_allocator::Allocator = pazar_allocator::Allocator {};
use pazar_app::{Shop, ShopConfig};
use pazar_bench::{resident_mib, BenchDb};
use pazar_catalog::NewProduct;
use pazar_supervisor::EntityPolicy;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// How many products (and so actors).
    #[arg(long, default_value_t = 100_000)]
    actors: usize,
    /// Idle time after which actors are passivated.
    #[arg(long, default_value_t = 5)]
    idle_seconds: u64,
}

fn main() {
    // Built like `pazar serve` builds its runtime, with the allocator's park hook.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(pazar_allocator::on_worker_park)
        .build()
        .expect("runtime")
        .block_on(measure(Args::parse()));
}

async fn measure(args: Args) {
    let db = BenchDb::sqlite();
    let shop = Shop::start(
        db.store().await,
        ShopConfig {
            stock_policy: EntityPolicy {
                idle_timeout: Duration::from_secs(args.idle_seconds),
                ..EntityPolicy::default()
            },
            ..ShopConfig::default()
        },
    )
    .await
    .expect("shop");

    // As `pazar serve` does: give memory back once many actors are gone.
    let alive = {
        let shop = shop.clone();
        move || shop.inventory().actors().alive()
    };
    pazar_allocator::spawn_reclaimer(alive, Duration::from_secs(1), 1000);

    let mut ids = Vec::with_capacity(args.actors);
    for chunk in 0..args.actors.div_ceil(1000) {
        let products = (chunk * 1000..((chunk + 1) * 1000).min(args.actors))
            .map(|i| NewProduct {
                name: format!("Product {i}"),
                description: String::new(),
                sku: format!("MEM-{i}"),
                price_amount: 100,
                price_currency: "EUR".into(),
                stock: 10,
            })
            .collect();
        let created = shop
            .catalog()
            .create_many(products)
            .await
            .expect("products");
        ids.extend(created.into_iter().map(|view| view.product.id));
    }
    let baseline = resident_mib();
    println!(
        "{} products stored; resident before any actor: {baseline:.0} MiB",
        ids.len()
    );

    let started = Instant::now();
    let workers = 8;
    let chunks: Vec<Vec<_>> = ids
        .chunks(ids.len().div_ceil(workers))
        .map(<[_]>::to_vec)
        .collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let shop = shop.clone();
            tokio::spawn(async move {
                for id in chunk {
                    shop.inventory()
                        .stock_levels(id)
                        .await
                        .expect("actor answers");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let alive = shop.inventory().actors().alive();
    let with_actors = resident_mib();
    println!(
        "{alive} actors alive after {:.1} s: resident {with_actors:.0} MiB (+{:.0} MiB, {:.2} KiB per actor; target < 1024 MiB)",
        started.elapsed().as_secs_f64(),
        with_actors - baseline,
        (with_actors - baseline) * 1024.0 / alive as f64
    );

    let deadline = Instant::now() + Duration::from_secs(args.idle_seconds * 4 + 120);
    while shop.inventory().actors().alive() > 0 {
        assert!(Instant::now() < deadline, "passivation did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The reclaimer runs every second; give it two rounds after the last stop.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = resident_mib();
    println!(
        "all passivated: resident {after:.0} MiB ({:+.0} MiB against the baseline of {baseline:.0} MiB)",
        after - baseline
    );
    shop.shutdown().await;
    db.drop_database().await;
}
