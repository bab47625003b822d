//! Test harness: the real `pazar` binary on a random port, against a fresh
//! database per test (a temporary SQLite file, or a new PostgreSQL database).

#![allow(dead_code)]

pub mod kafka;
pub mod smtp;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
fn postgres_server() -> String {
    std::env::var("PAZAR_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

pub const ADMIN_EMAIL: &str = "admin@pazar.test";
pub const ADMIN_PASSWORD: &str = "admin-password";

/// A running server and what it runs on.
pub struct TestServer {
    pub base: String,
    pub backend: Backend,
    pub database_url: String,
    pub client: reqwest::Client,
    child: Option<Child>,
    data_dir: tempfile::TempDir,
    postgres_db: Option<String>,
    env: Vec<(String, String)>,
}

/// A `pazar serve` spawned but not yet listening.
pub struct Starting {
    pub child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

/// A response: status, content type and JSON body (Null when empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts a problem+json response with this status; returns the body.
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert!(
            self.content_type.starts_with("application/problem+json"),
            "content type {:?}, body {}",
            self.content_type,
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:pazar:problem:")),
            "{}",
            self.body
        );
        &self.body
    }

    /// Asserts the status and returns the body.
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        &self.body
    }
}

impl TestServer {
    /// A server on a fresh database, with an admin account created by the CLI.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// Like [`start`](Self::start), with extra environment variables for `serve`.
    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let (database_url, postgres_db) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", data_dir.path().join("pazar.db").display()),
                None,
            ),
            Backend::Postgres => {
                let name = format!("pazar_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin =
                    sqlx::PgConnection::connect(&format!("{}/postgres", postgres_server()))
                        .await
                        .expect("PostgreSQL must listen on 127.0.0.1:5432 (see .ci/run)");
                sqlx::query(&format!("create database {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                (format!("{}/{name}", postgres_server()), Some(name))
            }
        };
        let mut server = Self {
            base: String::new(),
            backend,
            database_url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            child: None,
            data_dir,
            postgres_db,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let created = server
            .cli(&[
                "admin",
                "create",
                "--email",
                ADMIN_EMAIL,
                "--password",
                ADMIN_PASSWORD,
            ])
            .await;
        assert!(created.status.success(), "admin create failed: {created:?}");
        server.launch().await;
        server
    }

    /// Runs a `pazar` subcommand against this server's database.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_pazar"))
            .args(args)
            .env("PAZAR_DATA_DIR", self.data_dir.path())
            .env("DATABASE_URL", &self.database_url)
            .env("PAZAR_LOG", "warn")
            .env("PAZAR_CONFIG", self.data_dir.path().join("absent.toml"))
            .output()
            .await
            .expect("run pazar")
    }

    async fn launch(&mut self) {
        let starting = self.spawn();
        self.adopt(starting).await;
    }

    /// Starts `pazar serve` without waiting for it to listen (a standby waits for
    /// its role leases before it does).
    pub fn spawn(&self) -> Starting {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pazar"))
            .arg("serve")
            .env("PAZAR_BIND", "127.0.0.1:0")
            .env("PAZAR_DATA_DIR", self.data_dir.path())
            .env("DATABASE_URL", &self.database_url)
            .env("PAZAR_LOG", "warn")
            .env("PAZAR_CONFIG", self.data_dir.path().join("absent.toml"))
            // A restart after SIGKILL waits for the killed process's role leases
            // (PostgreSQL) to lapse: keep that short.
            .env("PAZAR_LEASE_TTL", "2s")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn pazar serve");
        let stdout = child.stdout.take().unwrap();
        Starting {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Waits (up to 60 s) for a spawned server to announce its address, and makes
    /// it this server's process.
    pub async fn adopt(&mut self, starting: Starting) {
        let Starting { child, mut lines } = starting;
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("server did not announce its address within 60 s")
            .expect("read stdout")
            .expect("server exited before listening");
        let address = line
            .strip_prefix("pazar listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        self.base = address.trim().to_owned();
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    /// Another process on this server's database (its own data directory), with
    /// `env` on top of this one's; not started. Finishing it leaves the database.
    pub fn sibling(&self, env: &[(&str, &str)]) -> TestServer {
        let mut all = self.env.clone();
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        TestServer {
            base: String::new(),
            backend: self.backend,
            database_url: self.database_url.clone(),
            client: self.client.clone(),
            child: None,
            data_dir: tempfile::tempdir().expect("temp dir"),
            postgres_db: None,
            env: all,
        }
    }

    /// Starts a sibling and waits for it to listen.
    pub async fn start_sibling(&self, env: &[(&str, &str)]) -> TestServer {
        let mut sibling = self.sibling(env);
        sibling.launch().await;
        sibling
    }

    /// Waits for the process to exit by itself (up to `within`); its status.
    pub async fn exits_within(&mut self, within: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("a running process");
        let status = tokio::time::timeout(within, child.wait())
            .await
            .unwrap_or_else(|_| panic!("the server did not exit within {within:?}"))
            .expect("wait");
        self.child = None;
        status
    }

    /// SIGKILLs the server process and waits for it to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("SIGKILL");
            child.wait().await.expect("wait for killed server");
        }
    }

    /// Starts the server again on the same database and data directory.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.launch().await;
    }

    /// The server's data directory (SQLite file, key, `mail/`).
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// The server process id (for tests that signal it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Stops the server and removes its database.
    pub async fn finish(mut self) {
        self.kill().await;
        if let Some(name) = self.postgres_db.take() {
            if let Ok(mut admin) =
                sqlx::PgConnection::connect(&format!("{}/postgres", postgres_server())).await
            {
                let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                    .execute(&mut admin)
                    .await;
            }
        }
    }

    /// Sends a request; `token` becomes a bearer header, `body` JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send_built(request).await
    }

    /// Sends a raw body with a content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send_built(request).await
    }

    /// Sends a request built by the caller (custom headers, raw bodies).
    pub async fn send_built(&self, request: reqwest::RequestBuilder) -> Reply {
        Self::reply(request.send().await.expect("request")).await
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::DELETE, path, token, None).await
    }

    /// Logs in; returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        reply.ok(200)["access_token"].as_str().unwrap().to_owned()
    }

    /// The admin's token.
    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Registers a customer; returns the token.
    pub async fn customer_token(&self, email: &str) -> String {
        let reply = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": "customer-password", "name": "Customer"}),
            )
            .await;
        reply.ok(201)["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a product as admin; returns its JSON.
    pub async fn create_product(&self, admin: &str, sku: &str, stock: i64) -> Value {
        self.post(
            "/api/v1/products",
            Some(admin),
            json!({"name": format!("Product {sku}"), "description": "test", "sku": sku,
                   "price": {"amount": 1250, "currency": "EUR"}, "stock": stock}),
        )
        .await
        .ok(201)
        .clone()
    }
}

/// A customer with a pending order for `quantity` units of a product of stock 10.
pub async fn pending_order(
    server: &TestServer,
    email: &str,
    quantity: i64,
) -> (String, Value, Value) {
    let admin = server.admin_token().await;
    let product = server
        .create_product(&admin, &format!("P-{}", email.replace(['@', '.'], "-")), 10)
        .await;
    let token = server.customer_token(email).await;
    server
        .post(
            "/api/v1/cart/items",
            Some(&token),
            json!({"product_id": product["id"], "quantity": quantity}),
        )
        .await
        .ok(200);
    let order = server
        .post("/api/v1/orders", Some(&token), json!({}))
        .await
        .ok(201)
        .clone();
    (token, product, order)
}

/// Starts (or finds) the order's payment: 201, or 200 when the payment service
/// already made it on `orders.created`.
pub async fn start_payment(server: &TestServer, token: &str, order: &Value) -> Value {
    let id = order["id"].as_str().unwrap();
    let started = server
        .post(
            &format!("/api/v1/orders/{id}/payment"),
            Some(token),
            json!({}),
        )
        .await;
    assert!(
        matches!(started.status.as_u16(), 200 | 201),
        "{}",
        started.body
    );
    started.body.clone()
}

/// Confirms a payment with the local provider, as the payment page does.
pub async fn pay_locally(server: &TestServer, secret: &str, number: &str) -> Reply {
    server
        .post(
            "/api/v1/payments/local/confirm",
            None,
            json!({"client_secret": secret, "card_number": number, "exp_month": 12, "exp_year": 2099, "cvc": "123"}),
        )
        .await
}

/// Polls the order until it has `status` (30 s deadline: the suite runs many
/// servers at once on two cores); returns it.
pub async fn order_status_becomes(
    server: &TestServer,
    token: &str,
    order: &Value,
    status: &str,
) -> Value {
    let id = order["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let current = server
            .get(&format!("/api/v1/orders/{id}"), Some(token))
            .await;
        if current.ok(200)["status"] == status {
            return current.body.clone();
        }
        assert!(
            Instant::now() < deadline,
            "order never became {status}: {}",
            current.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The product's public stock figures.
pub async fn stock(server: &TestServer, product: &Value) -> Value {
    let id = product["id"].as_str().unwrap();
    server
        .get(&format!("/api/v1/products/{id}"), None)
        .await
        .ok(200)["stock"]
        .clone()
}

/// Defines `sqlite::NAME` and `postgres::NAME` tests that call `NAME(Backend)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A live-cart WebSocket of a test client.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The live-cart URL of `server`, with `query` (e.g. `?access_token=…`).
pub fn ws_url(server: &TestServer, query: &str) -> String {
    format!(
        "{}/api/v1/cart/live{query}",
        server.base.replacen("http://", "ws://", 1)
    )
}

/// Opens a live-cart socket with the token in the Authorization header.
pub async fn open_with_header(server: &TestServer, token: &str) -> Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = ws_url(server, "").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// Opens a live-cart socket with the token as a query parameter (as browsers must).
pub async fn open_with_query(server: &TestServer, token: &str) -> Socket {
    tokio_tungstenite::connect_async(ws_url(server, &format!("?access_token={token}")))
        .await
        .unwrap()
        .0
}

/// The next snapshot on the socket (pings skipped), waiting at most 10 s.
pub async fn next_snapshot(socket: &mut Socket) -> Value {
    use futures_util::StreamExt;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a snapshot within 10 s")
            .expect("socket open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}
