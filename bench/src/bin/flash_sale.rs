//! A flash sale over HTTP: N concurrent clients, each with 1 unit of one hot
//! product in its cart, check out at once; the product has stock for half of them.
//! Prints checkouts/s, p50/p99 latency and the oversell count, on SQLite and on
//! PostgreSQL, beside the same checkout (reserve + insert order + outbox row) done
//! as plain PostgreSQL row-lock transactions from the same number of tasks.
//! Pazar runs as `pazar serve` does by default: the notifier queues an "order
//! received" mail per order and the mailroom writes it as an `.eml` file.
//! On PostgreSQL it also runs split: the catalog (with users) and the orders
//! (with payments and notifications) as two `pazar serve --roles …` processes,
//! checkout holding stock through the catalog's internal API; and all-in-one
//! with events through Kafka (a tansu broker, `PAZAR_TEST_TANSU`): checkout
//! never waits on Kafka, and paying waits for `payments.succeeded` to come back
//! through it to the orders role.
//!
//! `cargo build --release -p pazar && cargo run --release -p pazar-bench --bin flash_sale -- --clients 256 --rounds 5`
//! (`--only postgres` runs one side alone; see [`perf_ctl`] to profile it).

use clap::Parser;
use pazar_app::{Shop, ShopConfig};
use pazar_bench::{
    pay_locally, payment_secret, serve_in_process, BenchDb, Measurement, RoleProcess,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The same allocator as the `pazar` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: pazar_allocator::Allocator = pazar_allocator::Allocator {};

#[derive(Parser)]
struct Args {
    /// Concurrent clients (each checks out once per round).
    #[arg(long, default_value_t = 256)]
    clients: usize,
    /// Rounds, each on a fresh hot product.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Rounds run first on each side and not counted: the clients' connections
    /// (HTTP to pazar, the pool's to PostgreSQL) are opened, and statements
    /// prepared, in these, so both sides are measured warm.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Run only this side (to profile it alone); no ratio.
    #[arg(long, value_enum)]
    only: Option<Side>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Side {
    Sqlite,
    Postgres,
    Kafka,
    Split,
    Plain,
}

/// A side's rounds: the first `warmup` are not counted.
struct Rounds {
    warmup: usize,
    warm: Sale,
    counted: Sale,
}

impl Rounds {
    fn new(warmup: usize) -> Self {
        Self {
            warmup,
            warm: Sale::new(),
            counted: Sale::new(),
        }
    }

    /// Where round `round` adds up.
    fn of(&mut self, round: usize) -> &mut Sale {
        if round < self.warmup {
            &mut self.warm
        } else {
            &mut self.counted
        }
    }
}

/// One side's totals over all rounds.
struct Sale {
    latencies: Vec<Duration>,
    busy: Duration,
    sold: i64,
    stock: i64,
    oversold: i64,
    /// Per round: from the end of the sale until every sold order read back paid,
    /// each buyer confirming its payment as soon as its session exists.
    paid_after: Vec<Duration>,
}

impl Sale {
    fn new() -> Self {
        Self {
            latencies: Vec::new(),
            busy: Duration::ZERO,
            paid_after: Vec::new(),
            sold: 0,
            stock: 0,
            oversold: 0,
        }
    }

    fn print(&self, label: &str) -> f64 {
        if !self.paid_after.is_empty() {
            let rounds: Vec<String> = self
                .paid_after
                .iter()
                .map(|after| format!("{:.0}", after.as_secs_f64() * 1e3))
                .collect();
            println!(
                "{label:<26} every sold order paid {} ms after its round's sale (confirmed as soon as its payment exists)",
                rounds.join(" / ")
            );
        }
        let attempts = Measurement::new(self.latencies.clone(), self.busy);
        let per_second = self.sold as f64 / self.busy.as_secs_f64();
        println!(
            "{label:<26} {per_second:>8.0} checkouts/s  {:>8.0} attempts/s  p50 {:>7.1} ms  p99 {:>7.1} ms  sold {}/{}  oversold {}",
            attempts.per_second(),
            attempts.quantile(0.5).as_secs_f64() * 1e3,
            attempts.quantile(0.99).as_secs_f64() * 1e3,
            self.sold,
            self.stock,
            self.oversold
        );
        per_second
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    println!(
        "flash sale: {} clients check out 1 unit each of a product with stock {}, {} rounds (after {} not counted)",
        args.clients,
        args.clients / 2,
        args.rounds,
        args.warmup
    );
    if let Some(side) = args.only {
        only(side, &args).await;
        return;
    }
    let sqlite = BenchDb::sqlite();
    let on_sqlite = through_pazar(&sqlite, &args, None).await;
    let postgres = BenchDb::postgres().await;
    let on_postgres = through_pazar(&postgres, &args, None).await;
    // The same sale with events through Kafka (tansu, `PAZAR_TEST_TANSU`).
    let broker = pazar_kafka_bridge::tansu::Tansu::start()
        .await
        .expect("tansu (PAZAR_TEST_TANSU)");
    let kafka_db = BenchDb::postgres().await;
    let on_kafka = through_pazar(
        &kafka_db,
        &args,
        Some(pazar_kafka_bridge::KafkaSettings::new(&broker.address)),
    )
    .await;
    let split_db = BenchDb::postgres().await;
    let split = through_split_roles(&split_db, &args).await;
    let plain = plain_transactions(&postgres.url, &args).await;
    let sqlite_rate = on_sqlite.print("pazar HTTP, SQLite");
    let postgres_rate = on_postgres.print("pazar HTTP, PostgreSQL");
    let kafka_rate = on_kafka.print("pazar HTTP, PG + Kafka");
    let split_rate = split.print("pazar split roles, PG");
    let plain_rate = plain.print("plain row locks, PostgreSQL");
    println!(
        "ratio pazar/plain on PostgreSQL: {:.1}x, SQLite/plain: {:.1}x (target >= 5x, p99 < 100 ms, 0 oversold)",
        postgres_rate / plain_rate,
        sqlite_rate / plain_rate
    );
    println!(
        "ratio split roles (catalog | orders processes)/plain: {:.1}x (target >= 2x); split/all-in-one: {:.2}",
        split_rate / plain_rate,
        split_rate / postgres_rate
    );
    println!(
        "ratio with events through Kafka/plain: {:.1}x (target >= 3x); Kafka/outbox: {:.2}",
        kafka_rate / plain_rate,
        kafka_rate / postgres_rate
    );
    sqlite.drop_database().await;
    kafka_db.drop_database().await;
    postgres.drop_database().await;
    split_db.drop_database().await;
}

/// One side alone, printed without a ratio.
async fn only(side: Side, args: &Args) {
    let db = match side {
        Side::Sqlite => BenchDb::sqlite(),
        _ => BenchDb::postgres().await,
    };
    let (sale, label) = match side {
        Side::Sqlite => (through_pazar(&db, args, None).await, "pazar HTTP, SQLite"),
        Side::Postgres => (
            through_pazar(&db, args, None).await,
            "pazar HTTP, PostgreSQL",
        ),
        Side::Kafka => {
            let broker = pazar_kafka_bridge::tansu::Tansu::start()
                .await
                .expect("tansu (PAZAR_TEST_TANSU)");
            let kafka = pazar_kafka_bridge::KafkaSettings::new(&broker.address);
            (
                through_pazar(&db, args, Some(kafka)).await,
                "pazar HTTP, PG + Kafka",
            )
        }
        Side::Split => (
            through_split_roles(&db, args).await,
            "pazar split roles, PG",
        ),
        Side::Plain => (
            plain_transactions(&db.url, args).await,
            "plain row locks, PostgreSQL",
        ),
    };
    sale.print(label);
    db.drop_database().await;
}

/// Where each service answers.
struct Endpoints {
    users: String,
    catalog: String,
    orders: String,
}

/// How a payer learns its order is paid.
#[derive(Clone)]
enum PaidCheck {
    /// Read in this process (all-in-one).
    Shop(Box<Shop>),
    /// `GET /api/v1/orders/{id}` at the orders process.
    Http,
}

async fn through_pazar(
    db: &BenchDb,
    args: &Args,
    kafka: Option<pazar_kafka_bridge::KafkaSettings>,
) -> Sale {
    let (mail, _mail_dir) = pazar_bench::file_mail();
    let shop = Shop::start(
        db.store().await,
        ShopConfig {
            mail: Some(mail),
            kafka,
            ..ShopConfig::default()
        },
    )
    .await
    .expect("shop");
    let admin = shop
        .accounts
        .register(
            pazar_users::NewUser::parse(
                "admin@bench.test",
                "admin-password",
                "Admin",
                pazar_actors::Role::Admin,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let (base, issuer, _keys) = serve_in_process(shop.clone()).await;
    let admin_token = issuer.issue(admin.id, admin.role).unwrap();
    let endpoints = Endpoints {
        users: base.clone(),
        catalog: base.clone(),
        orders: base,
    };
    sell(
        &endpoints,
        &admin_token,
        PaidCheck::Shop(Box::new(shop)),
        args,
    )
    .await
}

/// The same sale with the catalog (and users) in one `pazar serve` process and
/// the orders (with payments and notifications) in another.
async fn through_split_roles(db: &BenchDb, args: &Args) -> Sale {
    const JWT: &str = "flash-sale-bench-signing-key-0123456789abcdef";
    const INTERNAL: &str = "flash-sale-bench-internal-secret-0123456789";
    pazar_bench::create_admin(&db.url, "admin@bench.test", "admin-password").await;
    let shared = [
        ("PAZAR_JWT_SECRET", JWT),
        ("PAZAR_INTERNAL_TOKEN", INTERNAL),
    ];
    let mut env = shared.to_vec();
    env.push(("PAZAR_ROLES", "catalog,users"));
    let catalog = RoleProcess::start(&db.url, &env).await;
    let mut env = shared.to_vec();
    env.push(("PAZAR_ROLES", "orders,payments,notifications"));
    env.push(("PAZAR_CATALOG_URL", &catalog.base));
    let orders = RoleProcess::start(&db.url, &env).await;
    let client = reqwest::Client::new();
    let login = pazar_bench::post_json(
        &client,
        &format!("{}/api/v1/auth/login", catalog.base),
        None,
        &json!({"email": "admin@bench.test", "password": "admin-password"}),
    )
    .await;
    let admin_token = login["access_token"].as_str().unwrap().to_owned();
    let endpoints = Endpoints {
        users: catalog.base.clone(),
        catalog: catalog.base.clone(),
        orders: orders.base.clone(),
    };
    let sale = sell(&endpoints, &admin_token, PaidCheck::Http, args).await;
    orders.kill().await;
    catalog.kill().await;
    sale
}

async fn sell(endpoints: &Endpoints, admin_token: &str, paid: PaidCheck, args: &Args) -> Sale {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .unwrap();

    // The buyers register once (argon2 is deliberately slow; not part of the sale).
    let mut buyers = Vec::new();
    for i in 0..args.clients {
        let email = format!("buyer{i}@bench.test");
        buyers.push(pazar_bench::register(&client, &endpoints.users, &email).await);
    }

    let mut sales = Rounds::new(args.warmup);
    for round in 0..args.warmup + args.rounds {
        let sale = sales.of(round);
        let stock = (args.clients / 2) as i64;
        let product = pazar_bench::post_json(
            &client,
            &format!("{}/api/v1/products", endpoints.catalog),
            Some(admin_token),
            &json!({"name": "Hot", "sku": format!("HOT-{round}"), "price": {"amount": 999, "currency": "EUR"}, "stock": stock}),
        )
        .await;
        for token in &buyers {
            let added = client
                .post(format!("{}/api/v1/cart/items", endpoints.orders))
                .bearer_auth(token)
                .json(&json!({"product_id": product["id"], "quantity": 1}))
                .send()
                .await
                .unwrap();
            assert!(added.status().is_success());
        }
        perf_ctl("enable");
        let started = Instant::now();
        let checkouts: Vec<_> = buyers
            .iter()
            .map(|token| {
                let (client, base, token) =
                    (client.clone(), endpoints.orders.clone(), token.clone());
                tokio::spawn(async move {
                    let begun = Instant::now();
                    let response = client
                        .post(format!("{base}/api/v1/orders"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    let body = response.bytes().await.unwrap_or_default();
                    let order = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|order| order["id"].as_str().map(str::to_owned));
                    (token, status, order, begun.elapsed())
                })
            })
            .collect();
        let mut sold = 0;
        let mut losers = Vec::new();
        let mut winners = Vec::new();
        for checkout in checkouts {
            let (token, status, order, latency) = checkout.await.unwrap();
            if status == 201 {
                winners.push((token.clone(), order.expect("a placed order has an id")));
            }
            assert!(status == 201 || status == 409, "unexpected status {status}");
            sold += i64::from(status == 201);
            if status == 409 {
                losers.push(token);
            }
            sale.latencies.push(latency);
        }
        sale.busy += started.elapsed();
        perf_ctl("disable");
        sale.paid_after
            .push(pay_all(&client, &endpoints.orders, &paid, winners).await);
        let id = product["id"].as_str().unwrap();
        // Buyers who lost empty their cart for the next round (not timed).
        for token in losers {
            let emptied = client
                .delete(format!("{}/api/v1/cart/items/{id}", endpoints.orders))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert!(emptied.status().is_success());
        }
        let after: Value = client
            .get(format!("{}/api/v1/products/{id}", endpoints.catalog))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // Every sold order is paid by now: its unit left the shelf.
        let reserved = after["stock"]["reserved"].as_i64().unwrap();
        let shipped = stock - after["stock"]["on_hand"].as_i64().unwrap();
        sale.sold += sold;
        sale.stock += stock;
        sale.oversold += (sold - stock).max(0) + (shipped - stock).max(0);
        assert_eq!(
            (reserved, shipped),
            (0, sold),
            "every sale sold exactly its unit"
        );
    }
    sales.counted
}

/// Each winner confirms its payment (4242…) as soon as its session exists; returns
/// how long after the sale every one of their orders read back `paid`.
async fn pay_all(
    client: &reqwest::Client,
    base: &str,
    paid: &PaidCheck,
    winners: Vec<(String, String)>,
) -> Duration {
    let sale_ended = Instant::now();
    let deadline = sale_ended + Duration::from_secs(120);
    let payers: Vec<_> = winners
        .into_iter()
        .map(|(token, order)| {
            let (client, base, paid) = (client.clone(), base.to_owned(), paid.clone());
            tokio::spawn(async move {
                let every = Duration::from_millis(5);
                let secret = payment_secret(&client, &base, &token, &order, every, deadline).await;
                pay_locally(&client, &base, &secret).await;
                let id = pazar_actors::OrderId(order.parse().unwrap());
                loop {
                    let is_paid = match &paid {
                        PaidCheck::Shop(shop) => {
                            shop.orders().order(id).await.expect("order").status
                                == pazar_actors::OrderStatus::Paid
                        }
                        PaidCheck::Http => {
                            let read_back: Value = client
                                .get(format!("{base}/api/v1/orders/{order}"))
                                .bearer_auth(&token)
                                .send()
                                .await
                                .expect("GET order")
                                .json()
                                .await
                                .expect("order JSON");
                            read_back["status"] == "paid"
                        }
                    };
                    if is_paid {
                        return Instant::now();
                    }
                    assert!(
                        Instant::now() < deadline,
                        "order {order} never read back paid"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    let mut last = sale_ended;
    for payer in payers {
        last = last.max(payer.await.unwrap());
    }
    last - sale_ended
}

async fn plain_transactions(url: &str, args: &Args) -> Sale {
    // PostgreSQL allows 100 connections by default: the tasks share 64.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(64)
        .connect(url)
        .await
        .expect("pool");
    for ddl in [
        "create table plain_stock (id uuid primary key, on_hand bigint not null, reserved bigint not null)",
        "create table plain_orders (id uuid primary key, user_id uuid not null, product_id uuid not null, quantity bigint not null, created_at timestamptz not null)",
        "create table plain_outbox (seq bigserial primary key, id uuid not null, type text not null, data text not null)",
    ] {
        sqlx::query(ddl).execute(&pool).await.unwrap();
    }
    let mut sales = Rounds::new(args.warmup);
    for round in 0..args.warmup + args.rounds {
        let sale = sales.of(round);
        let stock = (args.clients / 2) as i64;
        let product = uuid::Uuid::now_v7();
        sqlx::query("insert into plain_stock values ($1, $2, 0)")
            .bind(product)
            .bind(stock)
            .execute(&pool)
            .await
            .unwrap();
        let started = Instant::now();
        let checkouts: Vec<_> = (0..args.clients)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let begun = Instant::now();
                    let mut tx = pool.begin().await.unwrap();
                    let taken = sqlx::query(
                        "update plain_stock set reserved = reserved + 1 where id = $1 and on_hand - reserved >= 1",
                    )
                    .bind(product)
                    .execute(&mut *tx)
                    .await
                    .unwrap()
                    .rows_affected()
                        == 1;
                    if taken {
                        let order = uuid::Uuid::now_v7();
                        sqlx::query("insert into plain_orders values ($1, $2, $3, 1, now())")
                            .bind(order)
                            .bind(uuid::Uuid::now_v7())
                            .bind(product)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                        sqlx::query("insert into plain_outbox (id, type, data) values ($1, 'orders.created', $2)")
                            .bind(uuid::Uuid::now_v7())
                            .bind(json!({"order_id": order, "product_id": product}).to_string())
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                    } else {
                        tx.rollback().await.unwrap();
                    }
                    (taken, begun.elapsed())
                })
            })
            .collect();
        let mut sold = 0;
        for checkout in checkouts {
            let (taken, latency) = checkout.await.unwrap();
            sold += i64::from(taken);
            sale.latencies.push(latency);
        }
        sale.busy += started.elapsed();
        sale.sold += sold;
        sale.stock += stock;
        sale.oversold += (sold - stock).max(0);
    }
    sales.counted
}

/// Profiles the sales alone: with `FLASH_PERF_CTL` naming the control FIFO of
/// `perf record -D -1 --control fifo:<path>`, perf samples only while a round's
/// checkouts run (`enable`, then `disable` when the last is answered).
fn perf_ctl(command: &str) {
    use std::io::Write;
    if let Some(path) = std::env::var_os("FLASH_PERF_CTL") {
        let mut fifo = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        writeln!(fifo, "{command}").unwrap();
    }
}
