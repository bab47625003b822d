//! `GET /api/v1/products/{id}` requests per second over HTTP, beside a bare poem
//! handler returning a JSON object of the same size, both served from this
//! process and driven by the same client with the same concurrency. The bare
//! handler answers the same path (its own port), so the client's work, which
//! shares the two cores, is the same on both sides: only the servers differ.
//!
//! `cargo run --release -p pazar-bench --bin http_get -- --connections 32 --seconds 10`

use clap::Parser;

/// The same allocator as the `pazar` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: pazar_allocator::Allocator = pazar_allocator::Allocator {};
use pazar_app::{Shop, ShopConfig};
use pazar_bench::{serve_in_process, BenchDb, Measurement};
use pazar_catalog::NewProduct;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Json;
use poem::{get, handler, EndpointExt, Route, Server};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Alternating rounds the seconds are split into.
    #[arg(long, default_value_t = 8)]
    rounds: usize,
    /// Seconds each side is measured in all.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Load only this side, for all the seconds (to profile it alone); no ratio.
    #[arg(long, value_enum)]
    only: Option<Side>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Side {
    Bare,
    Pazar,
}

#[handler]
fn bare_product(body: poem::web::Data<&Arc<serde_json::Value>>) -> Json<serde_json::Value> {
    Json(serde_json::Value::clone(&body))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let duration = Duration::from_secs(args.seconds);
    let db = BenchDb::sqlite();
    let shop = Shop::start(db.store().await, ShopConfig::default())
        .await
        .expect("shop");
    let product = shop
        .catalog()
        .create(NewProduct {
            name: "Copper Kettle".into(),
            description: "Whistles when the water boils.".into(),
            sku: "KETTLE-1".into(),
            price_amount: 4999,
            price_currency: "EUR".into(),
            stock: 100,
        })
        .await
        .expect("product")
        .product
        .id;
    let (base, _issuer, _keys) = serve_in_process(shop).await;
    let pazar_url = format!("{base}/api/v1/products/{product}");

    let client = reqwest::Client::new();
    let body: serde_json::Value = client
        .get(&pazar_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let size = serde_json::to_vec(&body).unwrap().len();
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let bare_addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    let app = Route::new()
        .at("/api/v1/products/:id", get(bare_product))
        .data(Arc::new(body));
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    let bare_url = format!("http://{bare_addr}/api/v1/products/{product}");

    println!(
        "GET one product ({size} bytes of JSON), {} connections, {} s per run",
        args.connections, args.seconds
    );
    if let Some(side) = args.only {
        let url = match side {
            Side::Bare => &bare_url,
            Side::Pazar => &pazar_url,
        };
        println!("{}", load(url, args.connections, duration).await.summary());
        return;
    }
    // Warm both up, then measure them in alternating rounds, so that the drift of
    // a shared machine falls on both alike.
    load(&bare_url, args.connections, Duration::from_secs(1)).await;
    load(&pazar_url, args.connections, Duration::from_secs(1)).await;
    let round = duration / args.rounds.max(1) as u32;
    let (mut bare, mut pazar) = (Vec::new(), Vec::new());
    let mut ratios = Vec::new();
    for r in 0..args.rounds.max(1) {
        let (b, p) = if r % 2 == 0 {
            let b = load(&bare_url, args.connections, round).await;
            (b, load(&pazar_url, args.connections, round).await)
        } else {
            let p = load(&pazar_url, args.connections, round).await;
            (load(&bare_url, args.connections, round).await, p)
        };
        ratios.push(p.per_second() / b.per_second());
        bare.push(b);
        pazar.push(p);
    }
    let bare = Measurement::merge(bare);
    let pazar = Measurement::merge(pazar);
    println!("bare poem handler  {}", bare.summary());
    println!("pazar GET product  {}", pazar.summary());
    ratios.sort_by(f64::total_cmp);
    println!(
        "ratio pazar/bare: {:.2}x over all rounds, per round {:.2}x to {:.2}x (target >= 0.9x)",
        pazar.per_second() / bare.per_second(),
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

async fn load(url: &str, connections: usize, duration: Duration) -> Measurement {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let begun = Instant::now();
                    let response = client.get(&url).send().await.expect("request");
                    assert!(response.status().is_success());
                    response.bytes().await.expect("body");
                    latencies.push(begun.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    Measurement::new(latencies, started.elapsed())
}
