//! Product search through the real server (tantivy under the data directory),
//! on SQLite and PostgreSQL: none of the failures commerce platforms' users
//! report — a new product searchable within a second, a sold-out one out of
//! `in_stock=true` within a second of the sale and never shown as in stock, a
//! deleted one gone, an index deleted on disk (or left with uncommitted
//! changes by a killed process) rebuilt at start, bad parameters named.

mod common;

use common::{pending_order, Backend, TestServer, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

on_both_databases!(
    a_change_is_searchable_within_a_second,
    bad_search_parameters_are_named,
    an_index_lost_on_disk_or_interrupted_is_rebuilt_at_start,
    admins_see_the_index_and_reindex_it,
);

/// Searches until `holds` is true of the answer (5 s deadline); how long it took.
async fn until_search(
    server: &TestServer,
    query: &str,
    holds: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        let reply = server.get(&format!("/api/v1/products?{query}"), None).await;
        let body = reply.ok(200).clone();
        if holds(&body) {
            return (body, start.elapsed());
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "?{query} never held: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn skus(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["sku"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_change_is_searchable_within_a_second(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    // New: found by a typo within a second.
    server
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"name": "Espresso Machine", "description": "Pump, 15 bar", "sku": "ESP-1",
                   "price": {"amount": 59900, "currency": "EUR"}, "stock": 3}),
        )
        .await
        .ok(201);
    let (found, took) = until_search(&server, "q=espreso", |body| body["total"] == 1).await;
    assert!(took < Duration::from_secs(1), "searchable after {took:?}");
    let item = &found["items"][0];
    assert_eq!(item["sku"], "ESP-1");
    assert_eq!(item["stock"]["available"], 3);
    assert_eq!(found["facets"]["in_stock"], 1);
    let suggestions = server.get("/api/v1/products/suggest?q=espr", None).await;
    assert_eq!(
        suggestions.ok(200)["suggestions"],
        json!(["Espresso Machine"])
    );

    // Sold out by a sale (a checkout holding all 10 units): out of
    // `in_stock=true` within a second, and its stock is never shown stale.
    let (_token, product, _order) = pending_order(&server, "buyer@example.com", 10).await;
    let sku = product["sku"].as_str().unwrap().to_owned();
    let listed = server.get("/api/v1/products?in_stock=false", None).await;
    for item in listed.ok(200)["items"].as_array().unwrap() {
        assert_eq!(item["stock"]["available"], 0, "{item}");
    }
    let (_, took) = until_search(&server, "in_stock=true", |body| !skus(body).contains(&sku)).await;
    assert!(
        took < Duration::from_secs(1),
        "still in stock after {took:?}"
    );
    let (sold_out, _) =
        until_search(&server, "in_stock=false", |body| skus(body).contains(&sku)).await;
    assert_eq!(sold_out["facets"]["sold_out"], 1);

    // Deleted: gone.
    let id = found["items"][0]["id"].as_str().unwrap().to_owned();
    server
        .delete(&format!("/api/v1/products/{id}"), Some(&admin))
        .await;
    until_search(&server, "q=espresso", |body| body["total"] == 0).await;
    server.finish().await;
}

async fn bad_search_parameters_are_named(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (query, field, status) in [
        ("sort=cheapest", "sort", 422),
        ("currency=EURO", "currency", 422),
        ("min_price=-1", "min_price", 422),
        ("cursor=not-a-cursor", "cursor", 422),
        ("in_stock=maybe", "in_stock", 400),
        ("limit=101", "limit", 422),
    ] {
        let reply = server.get(&format!("/api/v1/products?{query}"), None).await;
        assert_eq!(reply.problem(status)["field"], field, "?{query}");
    }
    // A reversed price range is no error: it matches nothing.
    let reversed = server
        .get("/api/v1/products?min_price=500&max_price=100", None)
        .await;
    assert_eq!(reversed.ok(200)["total"], 0);
    let empty = server.get("/api/v1/products/suggest?q=", None).await;
    assert_eq!(empty.problem(422)["field"], "q");
    server.finish().await;
}

async fn an_index_lost_on_disk_or_interrupted_is_rebuilt_at_start(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    for i in 0..25 {
        server.create_product(&admin, &format!("KEEP-{i}"), 1).await;
    }
    until_search(&server, "limit=1", |body| body["total"] == 25).await;
    // The index folder is deleted while the server is down: rebuilt at start.
    server.kill().await;
    std::fs::remove_dir_all(server.data_dir().join("search")).unwrap();
    server.restart().await;
    let (found, _) = until_search(&server, "q=keep", |body| body["total"] == 25).await;
    assert_eq!(found["total"], 25);
    // A process killed with accepted changes not yet committed leaves its
    // marker: the next start rebuilds, then clears it.
    server.kill().await;
    std::fs::write(server.data_dir().join("search/UNSETTLED"), b"").unwrap();
    server.restart().await;
    let admin = server.admin_token().await;
    let status = loop {
        let status = server
            .get("/api/v1/admin/search", Some(&admin))
            .await
            .ok(200)
            .clone();
        if !status["last_reindex"].is_null() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status["documents"], 25);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.data_dir().join("search/UNSETTLED").exists() {
        assert!(Instant::now() < deadline, "the marker was never cleared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.finish().await;
}

async fn admins_see_the_index_and_reindex_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    for i in 0..5 {
        server.create_product(&admin, &format!("IDX-{i}"), 2).await;
    }
    until_search(&server, "q=idx", |body| body["total"] == 5).await;
    let customer = server.customer_token("nosy@example.com").await;
    server
        .get("/api/v1/admin/search", Some(&customer))
        .await
        .problem(403);
    let status = server.get("/api/v1/admin/search", Some(&admin)).await;
    let status = status.ok(200);
    assert_eq!(status["backend"], "tantivy");
    assert_eq!(status["documents"], 5);
    assert_eq!(status["lag_events"], 0);
    assert!(status["last_applied_position"].as_i64().unwrap() > 0);
    let started = server
        .post("/api/v1/admin/search/reindex", Some(&admin), json!({}))
        .await;
    assert_eq!(started.status.as_u16(), 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = server.get("/api/v1/admin/search", Some(&admin)).await;
        let status = status.ok(200);
        if !status["last_reindex"].is_null() && status["reindexing"] == false {
            assert_eq!(status["documents"], 5);
            break;
        }
        assert!(Instant::now() < deadline, "the reindex never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Still answering, with everything.
    until_search(&server, "q=idx", |body| body["total"] == 5).await;
    let first_reindex = server
        .get("/api/v1/admin/search", Some(&admin))
        .await
        .ok(200)["last_reindex"]
        .clone();

    // The same from the command line, signed in as the admin: it waits for
    // the swap and says what it did.
    let cli = server
        .cli(&[
            "search",
            "reindex",
            "--server",
            &server.base,
            "--email",
            ADMIN_EMAIL,
            "--password",
            ADMIN_PASSWORD,
        ])
        .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&cli.stdout),
        String::from_utf8_lossy(&cli.stderr),
    );
    assert!(cli.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("reindexed 5 products into tantivy"),
        "{stdout}"
    );
    let status = server.get("/api/v1/admin/search", Some(&admin)).await;
    let status = status.ok(200);
    assert_ne!(
        status["last_reindex"], first_reindex,
        "a new index was swapped in"
    );
    assert_eq!(status["last_reindex_error"], Value::Null);
    // Without an administrator it is refused, saying why.
    let refused = server
        .cli(&[
            "search",
            "reindex",
            "--server",
            &server.base,
            "--token",
            &customer,
        ])
        .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("403"), "{stderr}");
    let anonymous = server
        .cli(&["search", "reindex", "--server", &server.base])
        .await;
    assert!(!anonymous.status.success());
    assert!(
        String::from_utf8_lossy(&anonymous.stderr).contains("an administrator is needed"),
        "{anonymous:?}"
    );
    server.finish().await;
}

/// `pazar serve` with `ELASTICSEARCH_URL` set uses Elasticsearch (the adapter
/// itself is tested against a recording server in `search/tests`): one that
/// cannot be reached stops the start with an error naming it, and so does a
/// malformed index name — nothing falls back to the embedded index silently.
#[tokio::test]
async fn an_elasticsearch_that_cannot_be_used_stops_the_start_saying_why() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    for (env, says) in [
        (
            vec![("ELASTICSEARCH_URL", url.as_str())],
            "elasticsearch: error sending request",
        ),
        (
            vec![
                ("ELASTICSEARCH_URL", url.as_str()),
                ("ELASTICSEARCH_INDEX", "Products"),
            ],
            "ELASTICSEARCH_INDEX must be lower-case",
        ),
        (
            vec![
                ("ELASTICSEARCH_URL", url.as_str()),
                ("ELASTICSEARCH_USERNAME", "elastic"),
            ],
            "ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD go together",
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_pazar"))
            .arg("serve")
            .env("PAZAR_BIND", "127.0.0.1:0")
            .env("PAZAR_DATA_DIR", data.path())
            .env("PAZAR_LOG", "warn")
            .env("PAZAR_CONFIG", data.path().join("absent.toml"))
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("pazar serve should stop by itself")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?} started");
        assert!(stderr.contains(says), "{env:?}: {stderr}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening"),
            "{env:?} listened"
        );
    }
}
