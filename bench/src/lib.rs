//! Shared pieces of the benchmarks: fresh databases, latency statistics, and the
//! resident memory of this process. Every benchmark prints Pazar's figure beside
//! a baseline measured in the same run, and their ratio.

use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;

/// The PostgreSQL server benchmarks create their databases on.
pub fn postgres_server() -> String {
    std::env::var("PAZAR_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A database of its own for one benchmark, removed by [`BenchDb::drop_database`].
pub struct BenchDb {
    /// The URL to open.
    pub url: String,
    /// Kept so the SQLite file lives as long as the benchmark.
    _dir: tempfile::TempDir,
    postgres_name: Option<String>,
}

impl BenchDb {
    /// A temporary SQLite file.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self {
            url: format!("sqlite://{}", dir.path().join("bench.db").display()),
            _dir: dir,
            postgres_name: None,
        }
    }

    /// A new PostgreSQL database.
    pub async fn postgres() -> Self {
        let name = format!("pazar_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", postgres_server()))
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        sqlx::query(&format!("create database {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        Self {
            url: format!("{}/{name}", postgres_server()),
            _dir: tempfile::tempdir().expect("temp dir"),
            postgres_name: Some(name),
        }
    }

    /// The migrated Pazar stores on this database.
    pub async fn store(&self) -> pazar_store::Stores {
        pazar_store::connect_and_migrate(&self.url)
            .await
            .expect("open store")
    }

    /// Drops the PostgreSQL database (SQLite files go with the temp dir).
    pub async fn drop_database(self) {
        if let Some(name) = &self.postgres_name {
            if let Ok(mut admin) =
                sqlx::PgConnection::connect(&format!("{}/postgres", postgres_server())).await
            {
                let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                    .execute(&mut admin)
                    .await;
            }
        }
    }
}

/// Throughput and latency of one measured run.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Operations completed.
    pub operations: usize,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Latencies of the operations, sorted.
    pub latencies: Vec<Duration>,
}

impl Measurement {
    /// Builds a measurement from unsorted latencies.
    pub fn new(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        Self {
            operations: latencies.len(),
            elapsed,
            latencies,
        }
    }

    /// Several runs as one: their operations over their summed time.
    pub fn merge(runs: Vec<Measurement>) -> Self {
        let elapsed = runs.iter().map(|run| run.elapsed).sum();
        let latencies = runs.into_iter().flat_map(|run| run.latencies).collect();
        Self::new(latencies, elapsed)
    }

    /// Operations per second.
    pub fn per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0.0–1.0) of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[index]
    }

    /// One line: ops/s, p50, p99.
    pub fn summary(&self) -> String {
        format!(
            "{:>10.0} ops/s   p50 {:>8.2} ms   p99 {:>8.2} ms   ({} ops in {:.1} s)",
            self.per_second(),
            self.quantile(0.50).as_secs_f64() * 1e3,
            self.quantile(0.99).as_secs_f64() * 1e3,
            self.operations,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Resident set size of this process in MiB (Linux: `/proc/self/status`).
pub fn resident_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Serves `shop` over HTTP on a free loopback port in this process, with a fresh
/// signing key; returns the base URL and the token issuer (to mint test tokens).
pub async fn serve_in_process(
    shop: pazar_app::Shop,
) -> (String, pazar_http::TokenIssuer, tempfile::TempDir) {
    let keys = tempfile::tempdir().expect("temp dir");
    let config =
        pazar_http::TokenConfig::load_or_generate(None, keys.path(), Duration::from_secs(3600))
            .expect("signing key");
    let issuer = pazar_http::TokenIssuer::new(&config);
    let state = Arc::new(pazar_app::AppState::new(shop, issuer.clone()));
    let (bound, address) = tokio::sync::oneshot::channel();
    tokio::spawn(pazar_app::serve(
        "127.0.0.1:0",
        state,
        pazar_app::HttpConfig::default(),
        move |addr| {
            let _ = bound.send(addr);
        },
        std::future::pending(),
    ));
    let base = format!("http://{}", address.await.expect("server bound"));
    (base, issuer, keys)
}

/// Mail as `pazar serve` sends it by default: rendered from the templates and
/// written as one `.eml` file per mail into the returned temporary folder.
pub fn file_mail() -> (pazar_app::MailConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("mail folder");
    let mail = pazar_app::MailConfig {
        renderer: Arc::new(
            pazar_notifications::adapters::Templates::new("Bench", "http://bench.test")
                .expect("templates"),
        ),
        transport: Arc::new(
            pazar_notifications::adapters::LettreTransport::files(
                dir.path().to_owned(),
                "Bench <bench@bench.test>",
            )
            .expect("mail folder"),
        ),
        max_attempts: 8,
        retry_base: Duration::from_secs(1),
        retry_max: Duration::from_secs(60),
    };
    (mail, dir)
}

/// The client secret of an order's payment, polled every `every` until the
/// payments service has started the session (panics after `deadline`).
pub async fn payment_secret(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    order: &str,
    every: Duration,
    deadline: std::time::Instant,
) -> String {
    loop {
        let response = client
            .get(format!("{base}/api/v1/orders/{order}/payment"))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET payment");
        if response.status().is_success() {
            let session: serde_json::Value = response.json().await.expect("payment JSON");
            return session["client_secret"]
                .as_str()
                .expect("a client secret")
                .to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no payment session for {order}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Pays with the local provider's test card that succeeds; asserts it did.
pub async fn pay_locally(client: &reqwest::Client, base: &str, secret: &str) {
    let reply: serde_json::Value = client
        .post(format!("{base}/api/v1/payments/local/confirm"))
        .json(&serde_json::json!({
            "client_secret": secret,
            "card_number": "4242 4242 4242 4242",
            "exp_month": 12,
            "exp_year": 2040,
            "cvc": "123",
        }))
        .send()
        .await
        .expect("confirm")
        .json()
        .await
        .expect("confirm JSON");
    assert_eq!(reply["status"], "succeeded", "{reply}");
}

/// The `pazar` binary the split-role benchmarks run (`PAZAR_BIN`, default the
/// release build under `CARGO_TARGET_DIR` or `target/`): build it first with
/// `cargo build --release -p pazar`.
pub fn pazar_binary() -> std::path::PathBuf {
    if let Ok(path) = std::env::var("PAZAR_BIN") {
        return path.into();
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target")
            .display()
            .to_string()
    });
    let binary = std::path::Path::new(&target).join("release/pazar");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --release -p pazar` first (or set PAZAR_BIN)",
        binary.display()
    );
    binary
}

/// A `pazar serve` process with some roles, killed when dropped.
pub struct RoleProcess {
    /// Its base URL.
    pub base: String,
    child: tokio::process::Child,
    _data: tempfile::TempDir,
}

impl RoleProcess {
    /// Starts `pazar serve` on `database_url` with `env` (e.g. `PAZAR_ROLES`) and
    /// waits until it listens.
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let data = tempfile::tempdir().expect("data dir");
        let mut child = tokio::process::Command::new(pazar_binary())
            .arg("serve")
            .env("PAZAR_BIND", "127.0.0.1:0")
            .env("PAZAR_DATA_DIR", data.path())
            .env("DATABASE_URL", database_url)
            .env("PAZAR_LOG", "warn")
            .env("PAZAR_CONFIG", data.path().join("absent.toml"))
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn pazar serve");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("pazar serve did not listen within 120 s")
            .expect("stdout")
            .expect("pazar serve exited");
        let base = line
            .strip_prefix("pazar listening on ")
            .expect("the announcement")
            .trim()
            .to_owned();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            base,
            child,
            _data: data,
        }
    }

    /// The process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// SIGKILLs it and waits until it is gone.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Runs `pazar admin create` on `database_url`.
pub async fn create_admin(database_url: &str, email: &str, password: &str) {
    let data = tempfile::tempdir().expect("data dir");
    let output = tokio::process::Command::new(pazar_binary())
        .args(["admin", "create", "--email", email, "--password", password])
        .env("PAZAR_DATA_DIR", data.path())
        .env("DATABASE_URL", database_url)
        .env("PAZAR_LOG", "warn")
        .env("PAZAR_CONFIG", data.path().join("absent.toml"))
        .output()
        .await
        .expect("pazar admin create");
    assert!(output.status.success(), "{output:?}");
}

/// POSTs `body` as JSON (with `token` as bearer, if any); the answer's JSON.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> serde_json::Value {
    let mut request = client.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON answer")
}

/// Registers a customer; their access token.
pub async fn register(client: &reqwest::Client, base: &str, email: &str) -> String {
    let reply = post_json(
        client,
        &format!("{base}/api/v1/auth/register"),
        None,
        &serde_json::json!({"email": email, "password": "customer-password", "name": "Customer"}),
    )
    .await;
    reply["access_token"].as_str().expect("a token").to_owned()
}
