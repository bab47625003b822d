//! What a hostile client found, each as a test that failed before its fix: bad
//! text refused at the edge identically on both databases, bounds declared and
//! enforced, throttling that holds under concurrency, forwarded addresses only
//! from trusted proxies, tokens of deleted or demoted users, money that never
//! saturates, bounded sockets and connections, cheap webhook signatures.

mod common;

use common::{
    next_snapshot, open_with_header, order_status_becomes, pay_locally, start_payment, Backend,
    Socket, TestServer,
};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

on_both_databases!(
    control_characters_are_refused_at_the_edge_naming_the_field,
    declared_bounds_are_enforced_and_trailing_garbage_refused,
    parallel_wrong_guesses_check_at_most_the_limit,
    forwarded_addresses_count_only_from_trusted_proxies,
    tokens_of_deleted_or_demoted_users_lose_their_rights,
    money_overflow_is_an_error_never_a_capped_total,
    a_user_over_the_socket_limit_loses_the_oldest_with_a_reason,
    silent_connections_are_closed,
    oversized_stripe_signatures_are_refused_cheaply,
    method_not_allowed_says_what_is,
);

const NUL: &str = "a\u{0}b";

async fn control_characters_are_refused_at_the_edge_naming_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let customer = server.customer_token("cara@example.com").await;
    let product = server.create_product(&admin, "NUL-1", 5).await;
    let id = product["id"].as_str().unwrap();
    let path = |p: &str| format!("/api/v1/products/{id}{p}");
    let (admin, customer) = (admin.as_str(), customer.as_str());

    // Every endpoint where a NUL reached the database, and the field it names.
    let cases: Vec<(&str, String, Option<&str>, Value, &str)> = vec![
        (
            "POST",
            "/api/v1/auth/login".into(),
            None,
            json!({"email": format!("{NUL}@example.com"), "password": "whatever-pass"}),
            "email",
        ),
        (
            "POST",
            "/api/v1/auth/register".into(),
            None,
            json!({"email": format!("{NUL}@example.com"), "password": "long-enough", "name": "N"}),
            "email",
        ),
        (
            "POST",
            "/api/v1/auth/register".into(),
            None,
            json!({"email": "nul@example.com", "password": "long-enough", "name": NUL}),
            "name",
        ),
        (
            "POST",
            "/api/v1/products".into(),
            Some(admin),
            json!({"name": NUL, "sku": "NUL-2", "price": {"amount": 1, "currency": "EUR"}}),
            "name",
        ),
        (
            "POST",
            "/api/v1/products".into(),
            Some(admin),
            json!({"name": "n", "description": NUL, "sku": "NUL-3",
                "price": {"amount": 1, "currency": "EUR"}}),
            "description",
        ),
        ("PATCH", path(""), Some(admin), json!({"name": NUL}), "name"),
        (
            "PATCH",
            path(""),
            Some(admin),
            json!({"description": NUL}),
            "description",
        ),
        (
            "POST",
            path("/stock-adjustments"),
            Some(admin),
            json!({"delta": 1, "reason": NUL}),
            "reason",
        ),
        (
            "POST",
            "/api/v1/payments/local/confirm".into(),
            None,
            json!({"client_secret": NUL, "card_number": "4242424242424242",
                "exp_month": 12, "exp_year": 2099, "cvc": "123"}),
            "client_secret",
        ),
        (
            "PATCH",
            path(""),
            Some(admin),
            json!({"price": {"currency": "E\u{85}R"}}),
            "price.currency",
        ),
        (
            "POST",
            "/api/v1/cart/items".into(),
            Some(customer),
            json!({"product_id": id, "quantity": 0}),
            "quantity",
        ),
    ];
    for (method, path, token, body, field) in cases {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = server
            .send(method.clone(), &path, token, Some(body.clone()))
            .await;
        assert_eq!(reply.problem(422)["field"], field, "{method} {path} {body}");
    }
    // The query parameter too (it needs no login).
    let reply = server.get("/api/v1/products?q=%00", None).await;
    assert_eq!(reply.problem(422)["field"], "q");
    // Nothing was stored: the product is as it was, no account was made.
    let unchanged = server.get(&format!("/api/v1/products/{id}"), None).await;
    assert_eq!(unchanged.ok(200)["name"], product["name"]);
    assert_eq!(unchanged.body["stock"]["on_hand"], 5);
    server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "nul@example.com", "password": "long-enough"}),
        )
        .await
        .problem(401);

    // An address the mailer would refuse is refused at registration.
    for email in ["‹script›@x.test", "<script>@x.test", "a b@x.test"] {
        let reply = server
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": "long-enough", "name": "X"}),
            )
            .await;
        assert_eq!(reply.problem(422)["field"], "email", "{email}");
    }
    // Line breaks and tabs are fine where documented (description), not elsewhere.
    let multiline = server
        .post(
            "/api/v1/products",
            Some(admin),
            json!({"name": "Mug", "description": "Two lines:\n\tone\r\ntwo", "sku": "ML-1",
                   "price": {"amount": 100, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(multiline.ok(201)["description"], "Two lines:\n\tone\r\ntwo");
    let reply = server
        .post(
            "/api/v1/products",
            Some(admin),
            json!({"name": "Mug\nTwo", "sku": "ML-2", "price": {"amount": 100, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(reply.problem(422)["field"], "name");
    server.finish().await;
}

async fn declared_bounds_are_enforced_and_trailing_garbage_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let document = server.get("/openapi.json", None).await;
    let schemas = &document.ok(200)["components"]["schemas"];
    // The bounds are declared in the document ...
    assert_eq!(
        schemas["CreateProductRequest"]["properties"]["name"]["maxLength"],
        200
    );
    let number = |value: &Value| value.as_f64().unwrap();
    assert_eq!(
        number(&schemas["PriceRequest"]["properties"]["amount"]["maximum"]),
        1e12
    );
    assert_eq!(
        number(&schemas["AddToCartRequest"]["properties"]["quantity"]["minimum"]),
        1.0
    );
    assert_eq!(
        schemas["CartLineDto"]["properties"]["unit_price"]["nullable"],
        true
    );
    let list = &document.body["paths"]["/api/v1/products"]["get"]["parameters"];
    let limit = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(number(&limit["schema"]["maximum"]), 100.0);
    // ... and enforced with a 422 naming the field.
    let long_name = "n".repeat(201);
    let reply = server
        .post(
            "/api/v1/products",
            Some(&*admin),
            json!({"name": long_name, "sku": "B-1", "price": {"amount": 1, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(reply.problem(422)["field"], "name");
    let reply = server
        .post(
            "/api/v1/products",
            Some(&*admin),
            json!({"name": "n", "sku": "B-1", "price": {"amount": i64::MAX, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(reply.problem(422)["field"], "price.amount");
    let reply = server.get("/api/v1/products?limit=101", None).await;
    assert_eq!(reply.problem(422)["field"], "limit");
    // Header bounds too: a blank or over-long Idempotency-Key.
    let customer = server.customer_token("lee@example.com").await;
    for key in ["   ".to_owned(), "k".repeat(256)] {
        let request = server
            .client
            .post(format!("{}/api/v1/orders", server.base))
            .bearer_auth(&customer)
            .header("Idempotency-Key", key);
        let reply = server.send_built(request).await;
        assert_eq!(reply.problem(422)["field"], "Idempotency-Key");
    }
    // The longest name allowed is accepted (bounds in characters, not bytes).
    let reply = server
        .post(
            "/api/v1/products",
            Some(&*admin),
            json!({"name": "é".repeat(200), "sku": "B-2", "price": {"amount": 1, "currency": "EUR"}}),
        )
        .await;
    reply.ok(201);

    // A JSON value followed by anything else is not JSON: 400, nothing created.
    let body = br#"{"name": "n", "sku": "B-3", "price": {"amount": 1, "currency": "EUR"}}this is not json"#;
    server
        .send_raw(
            Method::POST,
            "/api/v1/products",
            Some(&*admin),
            "application/json",
            body.to_vec(),
        )
        .await
        .problem(400);
    let search = server.get("/api/v1/products?q=B-3", None).await;
    assert_eq!(search.ok(200)["total"], 0);
    server.finish().await;
}

async fn parallel_wrong_guesses_check_at_most_the_limit(backend: Backend) {
    let server = std::sync::Arc::new(TestServer::start(backend).await);
    server.customer_token("gina@example.com").await;
    let guesses = (0..100).map(|i| {
        let server = server.clone();
        tokio::spawn(async move {
            server
                .post(
                    "/api/v1/auth/login",
                    None,
                    json!({"email": "gina@example.com", "password": format!("guess-{i}")}),
                )
                .await
                .status
                .as_u16()
        })
    });
    let mut checked = 0;
    let mut throttled = 0;
    for guess in guesses {
        match guess.await.unwrap() {
            401 => checked += 1,
            429 => throttled += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // The account allows 5 attempts: no more were checked, whatever the race.
    assert!((1..=5).contains(&checked), "{checked} guesses were checked");
    assert_eq!(checked + throttled, 100);
    // The right password is refused too until the window closes.
    server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "gina@example.com", "password": "customer-password"}),
        )
        .await
        .problem(429);
    std::sync::Arc::into_inner(server).unwrap().finish().await;
}

async fn login_from(server: &TestServer, forwarded_for: &str, email: &str) -> u16 {
    let request = server
        .client
        .post(format!("{}/api/v1/auth/login", server.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": email, "password": "wrong-password"}));
    server.send_built(request).await.status.as_u16()
}

async fn forwarded_addresses_count_only_from_trusted_proxies(backend: Backend) {
    // The test client is the "proxy" on 127.0.0.1.
    let server = TestServer::start_with(
        backend,
        &[
            ("PAZAR_TRUSTED_PROXIES", "127.0.0.1/32, ::1"),
            ("PAZAR_LOGIN_MAX_PER_ADDRESS", "3"),
            ("PAZAR_LOGIN_MAX_FAILURES", "100"),
        ],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            login_from(&server, "203.0.113.7", "x@example.com").await,
            401
        );
    }
    assert_eq!(
        login_from(&server, "203.0.113.7", "y@example.com").await,
        429
    );
    // Another customer behind the same proxy is not locked out.
    assert_eq!(
        login_from(&server, "203.0.113.8", "x@example.com").await,
        401
    );
    // A client cannot escape by prepending an address: the proxy's hop counts.
    assert_eq!(
        login_from(&server, "198.51.100.1, 203.0.113.7", "x@example.com").await,
        429
    );
    server.finish().await;

    // Without trusted proxies the header is ignored: all count as 127.0.0.1.
    let server = TestServer::start_with(
        backend,
        &[
            ("PAZAR_LOGIN_MAX_PER_ADDRESS", "2"),
            ("PAZAR_LOGIN_MAX_FAILURES", "100"),
        ],
    )
    .await;
    assert_eq!(
        login_from(&server, "203.0.113.1", "x@example.com").await,
        401
    );
    assert_eq!(
        login_from(&server, "203.0.113.2", "x@example.com").await,
        401
    );
    assert_eq!(
        login_from(&server, "203.0.113.3", "x@example.com").await,
        429
    );
    server.finish().await;
}

/// Runs one statement on the server's database, as an operator would.
async fn sql(server: &TestServer, statement: &str) {
    match server.backend {
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(&server.database_url)
                .await
                .unwrap();
            sqlx::query(statement).execute(&mut db).await.unwrap();
        }
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(&server.database_url)
                .await
                .unwrap();
            sqlx::query(statement).execute(&mut db).await.unwrap();
        }
    }
}

async fn tokens_of_deleted_or_demoted_users_lose_their_rights(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let product = server.create_product(&admin, "DEL-1", 5).await;
    let token = server.customer_token("hank@example.com").await;
    sql(
        &server,
        "delete from users where email = 'hank@example.com'",
    )
    .await;
    // Was a 500 (a foreign-key failure); every authenticated route is a 401.
    let reply = server
        .post(
            "/api/v1/cart/items",
            Some(&*token),
            json!({"product_id": product["id"], "quantity": 1}),
        )
        .await;
    reply.problem(401);
    server.get("/api/v1/cart", Some(&*token)).await.problem(401);
    server
        .post("/api/v1/orders", Some(&*token), json!({}))
        .await
        .problem(401);

    // An admin demoted in the store loses admin rights within the cache's life.
    server
        .get("/api/v1/admin/orders", Some(&*admin))
        .await
        .ok(200);
    sql(
        &server,
        "update users set role = 'customer' where role = 'admin'",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = server
            .get("/api/v1/admin/orders", Some(&*admin))
            .await
            .status
            .as_u16();
        if status == 403 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            Instant::now() < deadline,
            "the demoted admin kept admin rights"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.finish().await;
}

async fn money_overflow_is_an_error_never_a_capped_total(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let customer = server.customer_token("ivy@example.com").await;
    const MAX_PRICE: i64 = 1_000_000_000_000;
    const MAX_QUANTITY: i64 = 1_000_000;
    // The attack: i64::MAX as a price is refused outright.
    let reply = server
        .post(
            "/api/v1/products",
            Some(&*admin),
            json!({"name": "Max", "sku": "MAX-0", "price": {"amount": i64::MAX, "currency": "EUR"},
                   "stock": 2}),
        )
        .await;
    assert_eq!(reply.problem(422)["field"], "price.amount");
    // At the bounds, nine full lines fit in an i64; the tenth would not.
    let mut ids = Vec::new();
    for i in 0..10 {
        let product = server
            .post(
                "/api/v1/products",
                Some(&*admin),
                json!({"name": format!("Dear {i}"), "sku": format!("MAX-{}", i + 1),
                       "price": {"amount": MAX_PRICE, "currency": "EUR"}, "stock": MAX_QUANTITY}),
            )
            .await;
        ids.push(product.ok(201)["id"].clone());
    }
    for id in &ids[..9] {
        server
            .post(
                "/api/v1/cart/items",
                Some(&*customer),
                json!({"product_id": id, "quantity": MAX_QUANTITY}),
            )
            .await
            .ok(200);
    }
    let reply = server
        .post(
            "/api/v1/cart/items",
            Some(&*customer),
            json!({"product_id": ids[9], "quantity": MAX_QUANTITY}),
        )
        .await;
    // The request is valid; the cart's state is what refuses it.
    assert!(reply.problem(409)["detail"]
        .as_str()
        .unwrap()
        .contains(ids[9].as_str().unwrap()));
    let cart = server.get("/api/v1/cart", Some(&*customer)).await;
    assert_eq!(cart.ok(200)["items"].as_array().unwrap().len(), 9);
    assert_eq!(cart.body["total"]["amount"], 9 * MAX_PRICE * MAX_QUANTITY);
    // More than a line may hold is refused, also when added in two steps.
    let reply = server
        .post(
            "/api/v1/cart/items",
            Some(&*customer),
            json!({"product_id": ids[0], "quantity": 1}),
        )
        .await;
    assert!(reply.problem(409)["detail"]
        .as_str()
        .unwrap()
        .contains("at most 1000000 units"));
    // The largest cart checks out, and its order (a total far above the dearest
    // price) reads back, lists, and is paid: a stored total is not a price.
    let order = server
        .post("/api/v1/orders", Some(&*customer), json!({}))
        .await
        .ok(201)
        .clone();
    assert_eq!(order["total"]["amount"], 9 * MAX_PRICE * MAX_QUANTITY);
    let id = order["id"].as_str().unwrap();
    let read = server
        .get(&format!("/api/v1/orders/{id}"), Some(&*customer))
        .await;
    assert_eq!(read.ok(200)["total"], order["total"]);
    let listed = server.get("/api/v1/orders", Some(&*customer)).await;
    assert_eq!(listed.ok(200)["items"][0]["total"], order["total"]);
    let listed = server.get("/api/v1/admin/orders", Some(&*admin)).await;
    assert_eq!(listed.ok(200)["items"][0]["id"], id);
    let payment = start_payment(&server, &customer, &order).await;
    assert_eq!(payment["amount"], order["total"]);
    let secret = payment["client_secret"].as_str().unwrap();
    pay_locally(&server, secret, "4242 4242 4242 4242")
        .await
        .ok(200);
    order_status_becomes(&server, &customer, &order, "paid").await;
    server.finish().await;
}

/// The reason of the close frame the socket gets within 10 s (skipping snapshots).
async fn close_reason(socket: &mut Socket) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a close frame within 10 s")
            .expect("a frame before the end")
            .expect("a valid frame");
        if let Message::Close(frame) = message {
            return frame.map(|f| f.reason.to_string()).unwrap_or_default();
        }
    }
}

async fn a_user_over_the_socket_limit_loses_the_oldest_with_a_reason(backend: Backend) {
    let server = TestServer::start_with(backend, &[("PAZAR_LIVE_SOCKETS_PER_USER", "2")]).await;
    let token = server.customer_token("jo@example.com").await;
    let mut first = open_with_header(&server, &token).await;
    let mut second = open_with_header(&server, &token).await;
    let _third = open_with_header(&server, &token).await;
    assert!(close_reason(&mut first).await.contains("oldest was closed"));
    // The second is still served: a change of the cart reaches it.
    let admin = server.admin_token().await;
    let product = server.create_product(&admin, "WS-1", 3).await;
    server
        .post(
            "/api/v1/cart/items",
            Some(&*token),
            json!({"product_id": product["id"], "quantity": 1}),
        )
        .await
        .ok(200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let message = tokio::time::timeout_at(deadline.into(), second.next())
            .await
            .expect("the second socket gets the change")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            let snapshot: Value = serde_json::from_str(&text).unwrap();
            if snapshot["items"].as_array().is_some_and(|i| !i.is_empty()) {
                break;
            }
        }
    }
    server.finish().await;
}

/// Reads until the server closes the connection; panics after 10 s.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the connection is still open after {limit:?}"),
        }
    }
}

async fn silent_connections_are_closed(backend: Backend) {
    let server = TestServer::start_with(backend, &[("PAZAR_IDLE_TIMEOUT", "1s")]).await;
    let address = server.base.trim_start_matches("http://").to_owned();
    // Connects and sends nothing.
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    // Starts a request head and never finishes it.
    let mut partial = tokio::net::TcpStream::connect(&address).await.unwrap();
    partial
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    closed_within(&mut silent, Duration::from_secs(10)).await;
    closed_within(&mut partial, Duration::from_secs(10)).await;
    // A live cart socket outlives the timeout: it is not an idle HTTP connection.
    let token = server.customer_token("kim@example.com").await;
    let mut socket = open_with_header(&server, &token).await;
    let first = next_snapshot(&mut socket).await;
    assert!(first["items"].as_array().unwrap().is_empty());
    // Longer than the timeout without reading: the server's pings keep it open.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let admin = server.admin_token().await;
    let product = server.create_product(&admin, "IDLE-1", 3).await;
    server
        .post(
            "/api/v1/cart/items",
            Some(&*token),
            json!({"product_id": product["id"], "quantity": 1}),
        )
        .await
        .ok(200);
    let next = next_snapshot(&mut socket).await;
    assert_eq!(next["items"][0]["quantity"], 1);
    server.finish().await;
}

async fn oversized_stripe_signatures_are_refused_cheaply(backend: Backend) {
    const SECRET: &str = "whsec_hardening";
    let server = TestServer::start_with(backend, &[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
    let payload = format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(1024 * 1000)
    );
    let now = chrono::Utc::now().timestamp();
    let signed = pazar_payments::signature::sign(payload.as_bytes(), SECRET, now);
    // The amplification: 256 KiB of `v1=` candidates over a 1 MB body.
    let crowded = format!("{signed}{}", ",v1=00".repeat(256 * 1024 / 6));
    let request = server
        .client
        .post(format!("{}/api/v1/webhooks/stripe", server.base))
        .header("stripe-signature", crowded)
        .header("content-type", "application/json")
        .body(payload.clone());
    let reply = server.send_built(request).await;
    assert_eq!(reply.problem(400)["field"], "Stripe-Signature");
    assert!(reply.body["detail"].as_str().unwrap().contains("malformed"));
    // The genuine signature over the same large body is accepted.
    let request = server
        .client
        .post(format!("{}/api/v1/webhooks/stripe", server.base))
        .header("stripe-signature", signed)
        .header("content-type", "application/json")
        .body(payload);
    assert_eq!(server.send_built(request).await.ok(200)["handled"], false);
    server.finish().await;
}

async fn method_not_allowed_says_what_is(backend: Backend) {
    let server = TestServer::start(backend).await;
    let reply = server
        .send(Method::DELETE, "/api/v1/products", None, None)
        .await;
    reply.problem(405);
    assert_eq!(reply.headers["allow"], "GET, POST");
    let reply = server
        .send(
            Method::PUT,
            "/api/v1/products/01900000-0000-7000-8000-000000000000",
            None,
            None,
        )
        .await;
    reply.problem(405);
    assert_eq!(reply.headers["allow"], "DELETE, GET, PATCH");
    server.finish().await;
}
