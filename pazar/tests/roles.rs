//! Roles split across processes on one PostgreSQL: what each process serves,
//! checkout through the catalog's internal API, the internal API's secret, and a
//! standby taking a role over from a paused holder whose late writes are fenced.

mod common;

use common::{Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const JWT_SECRET: &str = "split-roles-test-signing-key-0123456789abcdef";
const INTERNAL_TOKEN: &str = "split-roles-internal-secret-0123456789abcdef";

/// What every process of a split deployment shares.
fn split(roles: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PAZAR_ROLES", roles.to_owned()),
        ("PAZAR_JWT_SECRET", JWT_SECRET.to_owned()),
        ("PAZAR_INTERNAL_TOKEN", INTERNAL_TOKEN.to_owned()),
    ]
}

fn env<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `pazar serve` with these settings exits at once with an error naming `needle`.
async fn refused(backend: Backend, settings: &[(&str, &str)], needle: &str) {
    let server = TestServer::start(backend).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pazar"))
        .arg("serve")
        .env("PAZAR_BIND", "127.0.0.1:0")
        .env("PAZAR_DATA_DIR", server.data_dir())
        .env("DATABASE_URL", &server.database_url)
        .env("PAZAR_CONFIG", server.data_dir().join("absent.toml"))
        .envs(settings.iter().copied())
        .output()
        .await
        .expect("run pazar serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it started: {stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_roles_on_sqlite_are_refused() {
    refused(Backend::Sqlite, &env(&split("catalog")), "needs PostgreSQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_roles_without_a_signing_key_or_secret_are_refused() {
    refused(
        Backend::Postgres,
        &[
            ("PAZAR_ROLES", "orders"),
            ("PAZAR_INTERNAL_TOKEN", INTERNAL_TOKEN),
        ],
        "PAZAR_JWT_SECRET",
    )
    .await;
    refused(
        Backend::Postgres,
        &[("PAZAR_ROLES", "orders"), ("PAZAR_JWT_SECRET", JWT_SECRET)],
        "PAZAR_INTERNAL_TOKEN",
    )
    .await;
    refused(
        Backend::Postgres,
        &[("PAZAR_ROLES", "catalog,shipping")],
        "unknown role `shipping`",
    )
    .await;
}

/// The kinds of entity supervisors a process's snapshot lists.
async fn kinds(server: &TestServer, admin: &str) -> Vec<String> {
    let tree = server
        .get("/api/v1/admin/supervisor", Some(admin))
        .await
        .ok(200)
        .clone();
    tree["supervisors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_crosses_from_the_orders_process_to_the_catalog_process() {
    let catalog = TestServer::start_with(Backend::Postgres, &env(&split("catalog,users"))).await;
    let orders = catalog
        .start_sibling(&env(&[
            ("PAZAR_ROLES", "orders,payments,notifications".to_owned()),
            ("PAZAR_CATALOG_URL", catalog.base.clone()),
        ]))
        .await;
    let admin = catalog.admin_token().await;
    let product = catalog.create_product(&admin, "SPLIT-1", 5).await;
    let customer = catalog.customer_token("split@example.com").await;

    // Each process answers its own roles' paths, and names the role of others'.
    let elsewhere = catalog.get("/api/v1/cart", Some(&customer)).await;
    let problem = elsewhere.problem(404);
    assert_eq!(problem["role"], "orders", "{problem}");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("catalog,users"));
    let elsewhere = orders
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "x@example.com", "password": "whatever1"}),
        )
        .await;
    assert_eq!(elsewhere.problem(404)["role"], "users");
    let refund = orders
        .post(
            &format!("/api/v1/admin/orders/{}/refund", uuid::Uuid::nil()),
            Some(&admin),
            json!({}),
        )
        .await;
    refund.problem(404); // payments runs here: the order is what is missing
    assert_ne!(refund.body["role"], "payments");
    // Both serve the whole shop's document.
    for server in [&catalog, &orders] {
        let document = server.get("/openapi.json", None).await.ok(200).clone();
        assert!(document["paths"]["/api/v1/cart"].is_object());
        assert!(document["paths"]["/api/v1/products"].is_object());
    }

    // A token issued by the users role is good in the orders process.
    orders
        .post(
            "/api/v1/cart/items",
            Some(&customer),
            json!({"product_id": product["id"], "quantity": 2}),
        )
        .await
        .ok(200);
    let order = orders
        .post("/api/v1/orders", Some(&customer), json!({}))
        .await
        .ok(201)
        .clone();
    // The hold is the catalog process's: its actor has it.
    assert_eq!(
        common::stock(&catalog, &product).await,
        json!({"on_hand": 5, "reserved": 2, "available": 3})
    );
    // More than is left: the catalog's refusal comes back as the usual 409.
    let other = catalog.customer_token("split-2@example.com").await;
    orders
        .post(
            "/api/v1/cart/items",
            Some(&other),
            json!({"product_id": product["id"], "quantity": 4}),
        )
        .await
        .ok(200);
    let short = orders.post("/api/v1/orders", Some(&other), json!({})).await;
    let problem = short.problem(409);
    assert_eq!(problem["unavailable"][0]["available"], 3, "{problem}");

    let payment = common::start_payment(&orders, &customer, &order).await;
    let secret = payment["client_secret"].as_str().unwrap();
    common::pay_locally(&orders, secret, "4242424242424242")
        .await
        .ok(200);
    common::order_status_becomes(&orders, &customer, &order, "paid").await;
    // The sale reached the catalog process through the internal API.
    assert_eq!(
        common::stock(&catalog, &product).await,
        json!({"on_hand": 3, "reserved": 0, "available": 3})
    );
    // Entities live where their roles run.
    assert_eq!(kinds(&catalog, &admin).await, ["product_stock"]);
    assert_eq!(
        kinds(&orders, &admin).await,
        ["cart", "order", "payment_session"]
    );
    orders.finish().await;
    catalog.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_api_needs_the_secret_and_holds_once_per_order() {
    let catalog = TestServer::start_with(Backend::Postgres, &env(&split("catalog,users"))).await;
    let admin = catalog.admin_token().await;
    let product = catalog.create_product(&admin, "INT-1", 5).await;
    let order = uuid::Uuid::now_v7();
    let path = format!(
        "/internal/v1/stock/{}/holds/{order}",
        product["id"].as_str().unwrap()
    );
    let body = json!({"quantity": 2, "expires_at": "2099-01-01T00:00:00Z"});
    let hold = |token: Option<String>| {
        let mut request = catalog
            .client
            .request(Method::PUT, format!("{}{path}", catalog.base))
            .json(&body);
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        catalog.send_built(request)
    };
    hold(None).await.problem(401);
    hold(Some(format!("Bearer {}x", &INTERNAL_TOKEN[1..])))
        .await
        .problem(401);
    hold(Some(format!("Bearer {admin}"))).await.problem(401);
    // Nothing was held by the refused requests.
    assert_eq!(common::stock(&catalog, &product).await["reserved"], 0);
    let held = hold(Some(format!("Bearer {INTERNAL_TOKEN}"))).await;
    assert_eq!(held.ok(200)["reserved"], 2);
    // A retry (an answer lost to a timeout) holds nothing more.
    let again = hold(Some(format!("Bearer {INTERNAL_TOKEN}"))).await;
    assert_eq!(again.ok(200)["reserved"], 2);
    assert_eq!(common::stock(&catalog, &product).await["reserved"], 2);
    // The gateway-facing API does not know the internal paths' secret, and a
    // process without the catalog role has no internal API.
    let users = catalog.start_sibling(&[("PAZAR_ROLES", "users")]).await;
    let request = users
        .client
        .request(Method::PUT, format!("{}{path}", users.base))
        .header("authorization", format!("Bearer {INTERNAL_TOKEN}"))
        .json(&body);
    users.send_built(request).await.problem(404);
    users.finish().await;
    catalog.finish().await;
}

/// The catalog's stock figures as stored (what a successor process loads).
async fn stored_on_hand(server: &TestServer, product: &Value) -> i64 {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(&server.database_url)
        .await
        .unwrap();
    let id: uuid::Uuid = product["id"].as_str().unwrap().parse().unwrap();
    sqlx::query_scalar("select on_hand from product_stock where product_id = $1")
        .bind(id)
        .fetch_one(&mut db)
        .await
        .unwrap()
}

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_a_paused_catalog_whose_late_writes_are_fenced() {
    let mut active = TestServer::start_with(Backend::Postgres, &env(&split("catalog,users"))).await;
    let admin = active.admin_token().await;
    let product = active.create_product(&admin, "FENCE-1", 10).await;
    let id = product["id"].as_str().unwrap().to_owned();
    // The standby waits for the lease: it does not listen yet.
    let mut standby = active.sibling(&[]);
    let mut starting = standby.spawn();
    let early = tokio::time::timeout(Duration::from_millis(2500), starting.child.wait()).await;
    assert!(early.is_err(), "the standby exited: {early:?}");
    let tree = active
        .get("/api/v1/admin/supervisor", Some(&admin))
        .await
        .ok(200)
        .clone();
    assert_eq!(tree["leases"], "catalog@1", "{tree}");

    // The active process is paused (SIGSTOP): its lease lapses, the standby
    // takes the role within about one lease life (2 s here).
    let paused = active.pid().unwrap();
    signal(paused, "-STOP");
    let stopped_at = Instant::now();
    standby.adopt(starting).await;
    let took = stopped_at.elapsed();
    assert!(took < Duration::from_secs(10), "take-over took {took:?}");
    let tree = standby
        .get("/api/v1/admin/supervisor", Some(&admin))
        .await
        .ok(200)
        .clone();
    assert_eq!(tree["leases"], "catalog@2", "{tree}");
    // The new holder writes.
    standby
        .post(
            &format!("/api/v1/products/{id}/stock-adjustments"),
            Some(&admin),
            json!({"delta": 5, "reason": "restock"}),
        )
        .await
        .ok(200);
    assert_eq!(stored_on_hand(&standby, &product).await, 15);

    // The old holder wakes up and tries to write with its stale state: refused,
    // whether its store refuses the batch (503) or it has already stopped.
    signal(paused, "-CONT");
    let late = active
        .client
        .post(format!(
            "{}/api/v1/products/{id}/stock-adjustments",
            active.base
        ))
        .bearer_auth(&admin)
        .json(&json!({"delta": -10, "reason": "stale"}))
        .send()
        .await;
    if let Ok(response) = late {
        assert_eq!(response.status().as_u16(), 503);
    }
    // It learns it lost the role and exits; the store kept the new holder's figure.
    let status = active.exits_within(Duration::from_secs(15)).await;
    assert!(!status.success());
    assert_eq!(stored_on_hand(&standby, &product).await, 15);
    assert_eq!(
        common::stock(&standby, &product).await,
        json!({"on_hand": 15, "reserved": 0, "available": 15})
    );
    standby.finish().await;
    active.finish().await;
}

/// A minimal OTLP/HTTP collector: keeps the JSON body of every POST.
struct Collector {
    endpoint: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Collector {
    async fn start() -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let store = received.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut reader = BufReader::new(socket);
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(value) = lower.strip_prefix("content-length:") {
                                length = value.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).await.unwrap();
                        store
                            .lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap());
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                        reader.get_mut().write_all(answer).await.unwrap();
                    }
                });
            }
        });
        Self { endpoint, received }
    }

    /// (service, span) of every span received so far.
    fn spans(&self) -> Vec<(String, Value)> {
        let mut spans = Vec::new();
        for post in self.received.lock().unwrap().iter() {
            for resource in post["resourceSpans"].as_array().unwrap() {
                let service = resource["resource"]["attributes"][0]["value"]["stringValue"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                for scope in resource["scopeSpans"].as_array().unwrap() {
                    for span in scope["spans"].as_array().unwrap() {
                        spans.push((service.clone(), span.clone()));
                    }
                }
            }
        }
        spans
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_checkout_is_one_trace_across_the_processes() {
    let collector = Collector::start().await;
    let mut catalog_env = split("catalog,users,notifications");
    catalog_env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.clone()));
    let catalog = TestServer::start_with(Backend::Postgres, &env(&catalog_env)).await;
    let orders = catalog
        .start_sibling(&env(&[
            ("PAZAR_ROLES", "orders,payments".to_owned()),
            ("PAZAR_CATALOG_URL", catalog.base.clone()),
        ]))
        .await;
    let admin = catalog.admin_token().await;
    let product = catalog.create_product(&admin, "TRACE-1", 5).await;
    let customer = catalog.customer_token("trace@example.com").await;
    orders
        .post(
            "/api/v1/cart/items",
            Some(&customer),
            json!({"product_id": product["id"], "quantity": 1}),
        )
        .await
        .ok(200);
    // The client's trace: W3C's example trace id.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let request = orders
        .client
        .post(format!("{}/api/v1/orders", orders.base))
        .bearer_auth(&customer)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({}));
    orders.send_built(request).await.ok(201);

    // Both processes export their part of it: the checkout (orders), its call to
    // the catalog, and the catalog's answer, one the parent of the next; then the
    // `orders.created` it wrote, handled by the payments service (orders process)
    // and the notifier (catalog process).
    let deadline = Instant::now() + Duration::from_secs(15);
    let spans = loop {
        let spans: Vec<(String, Value)> = collector
            .spans()
            .into_iter()
            .filter(|(_, span)| span["traceId"] == trace)
            .collect();
        if spans.len() >= 5 {
            break spans;
        }
        assert!(Instant::now() < deadline, "spans of the trace: {spans:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let find = |name: &str, kind: u8| {
        spans
            .iter()
            .find(|(_, span)| {
                span["name"].as_str().unwrap().starts_with(name) && span["kind"] == kind
            })
            .unwrap_or_else(|| panic!("no span {name}: {spans:?}"))
    };
    let (service, checkout) = find("POST /api/v1/orders", 2);
    assert_eq!(service, "pazar-orders,payments", "{spans:#?}");
    assert_eq!(checkout["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(checkout["kind"], 2);
    let (service, call) = find("PUT /internal/v1/stock/", 3);
    assert_eq!(service, "pazar-orders,payments");
    assert_eq!(call["kind"], 3);
    assert_eq!(call["parentSpanId"], checkout["spanId"]);
    let answered: Vec<_> = spans
        .iter()
        .filter(|(service, span)| {
            service == "pazar-catalog,users,notifications" && span["kind"] == 2
        })
        .collect();
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0].1["parentSpanId"], call["spanId"]);
    assert!(answered[0].1["name"]
        .as_str()
        .unwrap()
        .starts_with("PUT /internal/v1/stock/{product}/holds/{order}"));
    let (service, paying) = find("orders.created → payments", 5);
    assert_eq!(service, "pazar-orders,payments");
    let (service, mailing) = find("orders.created → notifier", 5);
    assert_eq!(service, "pazar-catalog,users,notifications");
    // Both handled the event the checkout wrote: children of the same span.
    assert_eq!(paying["parentSpanId"], mailing["parentSpanId"]);
    // The event carries the trace in the outbox.
    let events = catalog
        .get("/api/v1/admin/events?limit=1000", Some(&admin))
        .await
        .ok(200)
        .clone();
    let created = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "orders.created")
        .expect("orders.created")
        .clone();
    let traceparent = created["traceparent"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    assert!(
        traceparent.starts_with(&format!("00-{trace}-")),
        "{traceparent}"
    );
    assert!(traceparent.ends_with(&format!("-{}-01", paying["parentSpanId"].as_str().unwrap())));
    orders.finish().await;
    catalog.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_stops_on_sigterm_while_it_waits() {
    let active = TestServer::start_with(Backend::Postgres, &env(&split("catalog"))).await;
    let standby = active.sibling(&[]);
    let mut starting = standby.spawn();
    // Still waiting for the lease after a while: it has not exited.
    let early = tokio::time::timeout(Duration::from_millis(1500), starting.child.wait()).await;
    assert!(early.is_err(), "the standby exited: {early:?}");
    signal(starting.child.id().unwrap(), "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), starting.child.wait())
        .await
        .expect("the standby stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    // The active process kept its role.
    let ready = active.get("/ready", None).await;
    ready.ok(200);
    active.finish().await;
}
