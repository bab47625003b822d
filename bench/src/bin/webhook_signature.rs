//! What one Stripe webhook request costs when its `Stripe-Signature` header is
//! stuffed with 256 KiB of `v1=` candidates (no credentials needed to send it),
//! beside a genuinely signed request with the same body, over HTTP in this
//! process. Before the fix every candidate cost an HMAC over the whole body; now
//! the header is bounded and the HMAC computed once.
//!
//! `cargo run --release -p pazar-bench --bin webhook_signature -- --body-kib 1 --requests 20`

use clap::Parser;

/// The same allocator as the `pazar` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: pazar_allocator::Allocator = pazar_allocator::Allocator {};
use pazar_app::{Shop, ShopConfig};
use pazar_bench::{BenchDb, Measurement};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Size of the event body in KiB.
    #[arg(long, default_value_t = 1)]
    body_kib: usize,
    /// Requests of each kind, one at a time.
    #[arg(long, default_value_t = 20)]
    requests: usize,
    /// Size of the stuffed header in KiB.
    #[arg(long, default_value_t = 256)]
    header_kib: usize,
}

const SECRET: &str = "whsec_bench";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let db = BenchDb::sqlite();
    let shop = Shop::start(db.store().await, ShopConfig::default())
        .await
        .expect("shop");
    let keys = tempfile::tempdir().expect("temp dir");
    let tokens =
        pazar_http::TokenConfig::load_or_generate(None, keys.path(), Duration::from_secs(3600))
            .expect("signing key");
    let state = Arc::new(pazar_app::AppState::new(
        shop,
        pazar_http::TokenIssuer::new(&tokens),
    ));
    let (bound, address) = tokio::sync::oneshot::channel();
    tokio::spawn(pazar_app::serve(
        "127.0.0.1:0",
        state,
        pazar_app::HttpConfig {
            max_body_bytes: 2 * 1024 * 1024,
            stripe_webhook_secret: Some(pazar_payments::webhooks::WebhookSecret(SECRET.into())),
            ..pazar_app::HttpConfig::default()
        },
        move |addr| {
            let _ = bound.send(addr);
        },
        std::future::pending(),
    ));
    let url = format!(
        "http://{}/api/v1/webhooks/stripe",
        address.await.expect("bound")
    );
    let body = format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(args.body_kib * 1024)
    );
    let client = reqwest::Client::new();
    let send = |header: String| {
        let request = client
            .post(&url)
            .header("stripe-signature", header)
            .header("content-type", "application/json")
            .body(body.clone());
        async move {
            let started = Instant::now();
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            response.bytes().await.expect("body");
            (started.elapsed(), status)
        }
    };
    let signed =
        || pazar_payments::signature::sign(body.as_bytes(), SECRET, chrono::Utc::now().timestamp());
    // What an attacker without the secret sends: a fresh timestamp and nothing but
    // wrong candidates, so every one of them must be tried.
    let stuffed = || {
        let padding = ",v1=00".repeat(args.header_kib * 1024 / 6);
        format!("t={}{padding}", chrono::Utc::now().timestamp())
    };
    println!(
        "Stripe webhook, {} KiB body, {} requests of each kind, one at a time",
        args.body_kib, args.requests
    );
    let mut genuine = Vec::new();
    let mut attacks = Vec::new();
    let started = Instant::now();
    for _ in 0..args.requests {
        let (took, status) = send(signed()).await;
        assert_eq!(status, 200, "a genuine delivery is accepted");
        genuine.push(took);
    }
    let genuine = Measurement::new(genuine, started.elapsed());
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..args.requests {
        let (took, status) = send(stuffed()).await;
        statuses.push(status);
        attacks.push(took);
    }
    let attacks = Measurement::new(attacks, started.elapsed());
    println!("signed, normal header       {}", genuine.summary());
    println!(
        "{} KiB of v1= candidates     {}   (answered {:?})",
        args.header_kib,
        attacks.summary(),
        statuses.first()
    );
    println!(
        "ratio stuffed/normal (p50): {:.2}x",
        attacks.quantile(0.5).as_secs_f64() / genuine.quantile(0.5).as_secs_f64()
    );
}
