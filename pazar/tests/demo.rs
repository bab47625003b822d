//! `pazar serve --demo`: a first run fills an empty shop with a demo catalog
//! and an administrator whose password it prints; a second run adds nothing.

use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts `pazar serve --demo` on `data`; its address and what it said on stderr
/// before listening.
async fn start(data: &std::path::Path) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pazar"))
        .args(["serve", "--demo"])
        .env("PAZAR_BIND", "127.0.0.1:0")
        .env("PAZAR_DATA_DIR", data)
        .env("PAZAR_LOG", "warn")
        .env("PAZAR_CONFIG", data.join("absent.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
        .await
        .expect("listening within 60 s")
        .unwrap()
        .expect("a line");
    let base = line
        .strip_prefix("pazar listening on ")
        .unwrap()
        .trim()
        .to_owned();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let said = tokio::time::timeout(Duration::from_secs(5), stderr.next_line())
        .await
        .expect("the demo says what it did")
        .unwrap()
        .unwrap_or_default();
    (child, base, said)
}

#[tokio::test]
async fn a_first_demo_run_fills_the_shop_and_prints_an_admin_login() {
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (mut first, base, said) = start(data.path()).await;
    let password = said
        .split("admin@pazar.localhost / ")
        .nth(1)
        .unwrap_or_else(|| panic!("no login in {said:?}"))
        .trim()
        .to_owned();
    // Searchable once the indexer has applied their events.
    let products = listing_once_indexed(&http, &base, 12).await;
    assert!(
        products["facets"]["sold_out"].as_u64().unwrap() >= 1,
        "a sold-out product shows the state"
    );
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "admin@pazar.localhost", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(login["user"]["role"], "admin", "{login}");
    // The storefront is there too.
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<div id=\"root\">"));
    first.kill().await.unwrap();

    // Again on the same data: nothing added, no new password.
    let (_second, base, said) = start(data.path()).await;
    assert!(said.contains("has products already"), "{said}");
    let products = listing_once_indexed(&http, &base, 12).await;
    assert_eq!(products["items"].as_array().unwrap().len(), 12);
}

/// The product list once it holds `count` products (10 s deadline).
async fn listing_once_indexed(http: &reqwest::Client, base: &str, count: u64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let products: Value = http
            .get(format!("{base}/api/v1/products?limit=100"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if products["total"] == count {
            return products;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {count}: {products}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
