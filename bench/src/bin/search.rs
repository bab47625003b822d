//! Product search on N products (default 100,000) in PostgreSQL with the
//! embedded tantivy index: how fast the indexer catches up on N creation
//! events, how fast a full reindex runs, the index's size on disk, and the
//! latency of 1,000 mixed searches (words, typos, prefixes, filters; each
//! product read back with its current stock, as the HTTP handler does) and of
//! 1,000 search-box suggestions — beside the same 1,000 searches as the store's
//! `ILIKE '%…%'` listing over the same products in the same run (what the
//! seed's stack and Spree's default do).
//!
//! `cargo run --release -p pazar-bench --bin search -- --products 100000`

use clap::Parser;

/// The same allocator as the `pazar` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: pazar_allocator::Allocator = pazar_allocator::Allocator {};
use pazar_app::{Shop, ShopConfig};
use pazar_bench::{BenchDb, Measurement};
use pazar_catalog::search::{SearchQuery, SearchSort};
use pazar_catalog::{NewProduct, ProductQuery};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Products seeded.
    #[arg(long, default_value_t = 100_000)]
    products: usize,
    /// Searches timed (each kind).
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
}

const COLOURS: [&str; 12] = [
    "red", "blue", "green", "black", "white", "silver", "golden", "purple", "orange", "yellow",
    "grey", "brown",
];
const MATERIALS: [&str; 10] = [
    "ceramic",
    "porcelain",
    "steel",
    "wooden",
    "bamboo",
    "leather",
    "cotton",
    "woollen",
    "plastic",
    "glass",
];
const THINGS: [&str; 20] = [
    "teapot", "kettle", "grinder", "espresso", "blender", "toaster", "mug", "saucepan", "skillet",
    "knife", "cutting", "scale", "lamp", "chair", "table", "blanket", "pillow", "backpack",
    "wallet", "umbrella",
];

/// The `i`th product: name, description, SKU, price.
fn product(i: usize) -> NewProduct {
    let (colour, material, thing) = (
        COLOURS[i % COLOURS.len()],
        MATERIALS[(i / 7) % MATERIALS.len()],
        THINGS[(i / 13) % THINGS.len()],
    );
    NewProduct {
        name: format!("{colour} {material} {thing} {i}"),
        description: format!(
            "A {material} {thing} in {colour}, model {i}; sturdy, easy to clean, made to last"
        ),
        sku: format!("SKU-{i:07}"),
        price_amount: 100 + ((i * 7919) % 100_000) as i64,
        price_currency: "EUR".into(),
        stock: (i % 5) as i64,
    }
}

/// The `i`th query of the mixed set: words, a typo, a prefix, a SKU, filters.
fn query(i: usize) -> SearchQuery {
    let (colour, material, thing) = (
        COLOURS[i % COLOURS.len()],
        MATERIALS[(i / 3) % MATERIALS.len()],
        THINGS[(i / 5) % THINGS.len()],
    );
    let mut query = SearchQuery {
        limit: 20,
        ..SearchQuery::default()
    };
    let text = match i % 6 {
        0 => format!("{colour} {thing}"),
        1 => format!("{material} {thing}"),
        // A typo: two letters swapped.
        2 => {
            let mut letters: Vec<char> = thing.chars().collect();
            letters.swap(1, 2);
            letters.into_iter().collect()
        }
        // Search-as-you-type.
        3 => format!("{colour} {}", &thing[..3]),
        4 => format!("sku-{:05}", i * 13 % 100_000),
        _ => {
            query.min_price = Some(1_000);
            query.max_price = Some(20_000);
            query.in_stock = Some(true);
            query.sort = SearchSort::PriceAsc;
            thing.to_owned()
        }
    };
    query.text = Some(text);
    query
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Runs `ask(0)`, `ask(1)`, … `ask(n - 1)` one after another: their latencies,
/// and how many found something.
async fn timed<F, Fut>(n: usize, mut ask: F) -> (Measurement, usize)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut latencies = Vec::with_capacity(n);
    let mut found = 0;
    let start = Instant::now();
    for i in 0..n {
        let asked = Instant::now();
        found += usize::from(ask(i).await);
        latencies.push(asked.elapsed());
    }
    (Measurement::new(latencies, start.elapsed()), found)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let db = BenchDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let search_dir = dir.path().join("search");
    let shop = Shop::start(
        db.store().await,
        ShopConfig {
            search: Some(pazar_app::SearchBackend::Embedded(search_dir.clone())),
            ..ShopConfig::default()
        },
    )
    .await
    .unwrap();
    let catalog = shop.catalog().clone();
    let index = catalog.search_index().unwrap().clone();
    println!("search on {} products, PostgreSQL", args.products);

    // Seed: the indexer hears every creation event and catches up.
    let seeding = Instant::now();
    let all: Vec<usize> = (0..args.products).collect();
    for chunk in all.chunks(1_000) {
        catalog
            .create_many(chunk.iter().map(|&i| product(i)).collect())
            .await
            .unwrap();
    }
    let seeded = seeding.elapsed();
    while index.status().await.unwrap().documents < args.products as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let caught_up = seeding.elapsed();
    println!(
        "indexer: {} creation events indexed {:.1} s after the first ({:.0} events/s; the store took {:.1} s to write them), {:.0} ms behind the last",
        args.products,
        caught_up.as_secs_f64(),
        args.products as f64 / caught_up.as_secs_f64(),
        seeded.as_secs_f64(),
        (caught_up - seeded).as_secs_f64() * 1000.0
    );

    let rebuilding = Instant::now();
    let count = catalog.reindex(0, Arc::new(|_, _| {})).await.unwrap();
    let rebuilt = rebuilding.elapsed();
    println!(
        "reindex: {count} products in {:.1} s ({:.0} products/s, store reads included)",
        rebuilt.as_secs_f64(),
        count as f64 / rebuilt.as_secs_f64()
    );
    println!(
        "index size on disk: {:.1} MiB",
        dir_size(&search_dir) as f64 / 1024.0 / 1024.0
    );

    // Warm the index's caches (the store's are warm from the reindex's reads).
    for i in 0..50 {
        let _ = catalog.search(&query(i)).await.unwrap();
    }
    let (searched, found) = timed(args.queries, |i| {
        let catalog = catalog.clone();
        async move { catalog.search(&query(i)).await.unwrap().total > 0 }
    })
    .await;
    println!(
        "pazar search (tantivy)     {}  ({found}/{} found something)",
        searched.summary(),
        args.queries
    );
    let (suggested, _) = timed(args.queries, |i| {
        let catalog = catalog.clone();
        async move {
            let words = query(i).text.unwrap_or_default();
            !catalog.suggest(&words, 8).await.unwrap().is_empty()
        }
    })
    .await;
    println!("pazar suggest (tantivy)    {}", suggested.summary());
    let (ilike, found) = timed(args.queries, |i| {
        let catalog = catalog.clone();
        async move {
            let listing = ProductQuery::parse(query(i).text, Some(20), Some(0)).unwrap();
            catalog.list(&listing).await.unwrap().total > 0
        }
    })
    .await;
    println!(
        "PostgreSQL ILIKE '%…%'     {}  ({found}/{} found something)",
        ilike.summary(),
        args.queries
    );
    println!(
        "ratio search/ILIKE: {:.1}x searches/s, p99 {:.1} ms vs {:.1} ms (targets: p99 < 20 ms, >= 10x); suggest p99 {:.1} ms (target < 20 ms)",
        searched.per_second() / ilike.per_second(),
        searched.quantile(0.99).as_secs_f64() * 1000.0,
        ilike.quantile(0.99).as_secs_f64() * 1000.0,
        suggested.quantile(0.99).as_secs_f64() * 1000.0,
    );
    shop.shutdown().await;
    db.drop_database().await;
}
