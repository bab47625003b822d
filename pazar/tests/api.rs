//! The HTTP contract, end to end: the real server on a random port, once on
//! SQLite and once on PostgreSQL, every endpoint's success and error paths.

mod common;

use common::{Backend, TestServer, ADMIN_EMAIL};
use reqwest::Method;
use serde_json::{json, Value};

on_both_databases!(
    registration_login_and_me,
    login_is_throttled_after_repeated_failures,
    malformed_and_oversized_bodies_are_client_errors,
    product_crud_and_its_errors,
    product_listing_filters_and_pages,
    stock_adjustments_and_reservations,
    authorization_by_role,
    supervisor_inspection_and_service_endpoints,
    every_change_writes_its_event_in_commit_order,
);

async fn registration_login_and_me(backend: Backend) {
    let server = TestServer::start(backend).await;

    // Register: 201 with the user and a bearer token.
    let reply = server
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": " Ada@Example.com ", "password": "lovelace-1843", "name": "Ada"}),
        )
        .await;
    let body = reply.ok(201);
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["role"], "customer");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    let token = body["access_token"].as_str().unwrap().to_owned();
    let id = body["user"]["id"].clone();

    // Duplicate e-mail (any case): 409.
    server
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "ADA@example.com", "password": "another-pass", "name": "Ada 2"}),
        )
        .await
        .problem(409);

    // Invalid e-mail and short password: 422 naming the field.
    let bad_email = server
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "not-an-email", "password": "long-enough", "name": "X"}),
        )
        .await;
    assert_eq!(bad_email.problem(422)["field"], "email");
    let short = server
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "bob@example.com", "password": "short", "name": "Bob"}),
        )
        .await;
    assert_eq!(short.problem(422)["field"], "password");

    // Login: 200 with token and user; wrong password and unknown user: 401.
    let login = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "lovelace-1843"}),
        )
        .await;
    assert_eq!(login.ok(200)["user"]["id"], id);
    assert!(login.body["access_token"].as_str().unwrap().len() > 20);
    server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "wrong-password"}),
        )
        .await
        .problem(401);
    server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": "whatever-pw"}),
        )
        .await
        .problem(401);

    // Me: with the token 200; without, or with a forged token, 401.
    let me = server.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(me.ok(200)["id"], id);
    assert_eq!(me.body["name"], "Ada");
    server.get("/api/v1/auth/me", None).await.problem(401);
    let forged = format!("{}x", &token[..token.len() - 1]);
    server
        .get("/api/v1/auth/me", Some(&forged))
        .await
        .problem(401);
    server
        .get("/api/v1/auth/me", Some("garbage"))
        .await
        .problem(401);

    server.finish().await;
}

async fn login_is_throttled_after_repeated_failures(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.customer_token("eve@example.com").await;
    for _ in 0..5 {
        server
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "eve@example.com", "password": "wrong-password"}),
            )
            .await
            .problem(401);
    }
    // Now even the right password is refused for a while, with Retry-After.
    let throttled = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "eve@example.com", "password": "customer-password"}),
        )
        .await;
    throttled.problem(429);
    let retry_after: u64 = throttled.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60);
    // The count is kept in the store: a restarted server still refuses.
    let mut server = server;
    server.kill().await;
    server.restart().await;
    server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "eve@example.com", "password": "customer-password"}),
        )
        .await
        .problem(429);
    // Another account is not affected.
    server.customer_token("frank@example.com").await;
    server.login("frank@example.com", "customer-password").await;
    server.finish().await;
}

async fn malformed_and_oversized_bodies_are_client_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;

    // Not JSON at all.
    server
        .send_raw(
            Method::POST,
            "/api/v1/auth/register",
            None,
            "application/json",
            b"{oops".to_vec(),
        )
        .await
        .problem(400);
    // A missing field is named.
    let missing = server
        .post(
            "/api/v1/auth/register",
            None,
            json!({"password": "long-enough", "name": "X"}),
        )
        .await;
    assert_eq!(missing.problem(400)["field"], "email");
    // A wrongly typed nested field is named by its path.
    let wrong_type = server
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"name": "T", "sku": "T-1", "price": {"amount": "ten", "currency": "EUR"}}),
        )
        .await;
    assert_eq!(wrong_type.problem(400)["field"], "price.amount");
    // A malformed id in the path is named.
    let bad_id = server.get("/api/v1/products/not-a-uuid", None).await;
    assert_eq!(bad_id.problem(400)["field"], "id");
    // Wrong content type.
    server
        .send_raw(
            Method::POST,
            "/api/v1/auth/login",
            None,
            "text/plain",
            b"hello".to_vec(),
        )
        .await
        .problem(415);
    // Over the 1 MiB default: 413, and nothing was created.
    let huge = "x".repeat(1024 * 1024 + 10);
    let too_large = server
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"name": "Huge", "sku": "HUGE-1", "description": huge,
                   "price": {"amount": 1, "currency": "EUR"}}),
        )
        .await;
    too_large.problem(413);
    let listing = server.get("/api/v1/products?q=HUGE", None).await;
    assert_eq!(listing.ok(200)["total"], 0);
    // Unknown route and wrong method are problems too.
    server.get("/api/v1/nothing-here", None).await.problem(404);
    server
        .send(Method::PUT, "/api/v1/auth/login", None, Some(json!({})))
        .await
        .problem(405);
    server.finish().await;
}

async fn product_crud_and_its_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;

    let created = server
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"name": "Copper Kettle", "description": "Whistles.", "sku": "KETTLE-1",
                   "price": {"amount": 4999, "currency": "eur"}, "stock": 12}),
        )
        .await;
    let product = created.ok(201).clone();
    assert_eq!(product["price"], json!({"amount": 4999, "currency": "EUR"}));
    assert_eq!(
        product["stock"],
        json!({"on_hand": 12, "reserved": 0, "available": 12})
    );
    let id = product["id"].as_str().unwrap().to_owned();

    // Read it back.
    let fetched = server.get(&format!("/api/v1/products/{id}"), None).await;
    assert_eq!(fetched.ok(200)["sku"], "KETTLE-1");
    assert_eq!(fetched.body["created_at"], product["created_at"]);

    // Duplicate SKU: 409. Invalid fields: 422 naming them.
    server
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"name": "Other", "sku": "KETTLE-1", "price": {"amount": 1, "currency": "EUR"}}),
        )
        .await
        .problem(409);
    for (body, field) in [
        (
            json!({"name": "", "sku": "A-1", "price": {"amount": 1, "currency": "EUR"}}),
            "name",
        ),
        (
            json!({"name": "A", "sku": "has space", "price": {"amount": 1, "currency": "EUR"}}),
            "sku",
        ),
        (
            json!({"name": "A", "sku": "A-2", "price": {"amount": -5, "currency": "EUR"}}),
            "price.amount",
        ),
        (
            json!({"name": "A", "sku": "A-3", "price": {"amount": 5, "currency": "EURO"}}),
            "price.currency",
        ),
        (
            json!({"name": "A", "sku": "A-4", "price": {"amount": 5, "currency": "EUR"}, "stock": -1}),
            "stock",
        ),
    ] {
        let reply = server.post("/api/v1/products", Some(&admin), body).await;
        assert_eq!(reply.problem(422)["field"], field);
    }

    // Patch a subset: only those fields change.
    let patched = server
        .patch(
            &format!("/api/v1/products/{id}"),
            Some(&admin),
            json!({"price": {"amount": 3999}, "name": "Copper Kettle XL"}),
        )
        .await;
    let patched = patched.ok(200);
    assert_eq!(patched["name"], "Copper Kettle XL");
    assert_eq!(patched["price"], json!({"amount": 3999, "currency": "EUR"}));
    assert_eq!(patched["description"], "Whistles.");
    assert_eq!(patched["stock"]["on_hand"], 12);
    assert_ne!(patched["updated_at"], product["updated_at"]);
    // Patch conflicts and errors.
    server.create_product(&admin, "OTHER-1", 1).await;
    server
        .patch(
            &format!("/api/v1/products/{id}"),
            Some(&admin),
            json!({"sku": "OTHER-1"}),
        )
        .await
        .problem(409);
    let unknown = uuid::Uuid::now_v7();
    server
        .patch(
            &format!("/api/v1/products/{unknown}"),
            Some(&admin),
            json!({"name": "X"}),
        )
        .await
        .problem(404);
    server
        .get(&format!("/api/v1/products/{unknown}"), None)
        .await
        .problem(404);

    // Delete: 204, then it is gone; deleting again is 404.
    let deleted = server
        .delete(&format!("/api/v1/products/{id}"), Some(&admin))
        .await;
    assert_eq!(deleted.status.as_u16(), 204);
    server
        .get(&format!("/api/v1/products/{id}"), None)
        .await
        .problem(404);
    server
        .delete(&format!("/api/v1/products/{id}"), Some(&admin))
        .await
        .problem(404);
    server
        .delete(&format!("/api/v1/products/{unknown}"), Some(&admin))
        .await
        .problem(404);
    // Its SKU is free again.
    server.create_product(&admin, "KETTLE-1", 0).await;
    server.finish().await;
}

async fn product_listing_filters_and_pages(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    for i in 0..7 {
        server.create_product(&admin, &format!("LIST-{i}"), i).await;
    }
    server
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"name": "Blue Teapot", "description": "Porcelain, 1 l", "sku": "TEA-POT",
                   "price": {"amount": 2500, "currency": "EUR"}}),
        )
        .await
        .ok(201);

    // The search index has them within a second (it commits every 100 ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let all = loop {
        let all = server.get("/api/v1/products", None).await;
        if all.ok(200)["total"] == 8 || std::time::Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(all.body["total"], 8);
    assert_eq!(all.body["items"].as_array().unwrap().len(), 8);

    // Without `q`, newest first.
    let page = server.get("/api/v1/products?limit=3&offset=3", None).await;
    let items = page.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(page.body["total"], 8);
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["sku"], "LIST-4");
    assert_eq!(items[2]["stock"]["on_hand"], 2);

    // Case-insensitive text search over name, description and SKU.
    let teapot = server.get("/api/v1/products?q=TEAPOT", None).await;
    assert_eq!(teapot.ok(200)["total"], 1);
    assert_eq!(teapot.body["items"][0]["sku"], "TEA-POT");
    let porcelain = server.get("/api/v1/products?q=porcelain", None).await;
    assert_eq!(porcelain.ok(200)["total"], 1);
    // Wildcards in the query are literal.
    let percent = server.get("/api/v1/products?q=%25", None).await;
    assert_eq!(percent.ok(200)["total"], 0);

    // Paging limits are validated.
    let zero = server.get("/api/v1/products?limit=0", None).await;
    assert_eq!(zero.problem(422)["field"], "limit");
    let negative = server.get("/api/v1/products?offset=-1", None).await;
    assert_eq!(negative.problem(422)["field"], "offset");
    let not_a_number = server.get("/api/v1/products?limit=ten", None).await;
    assert_eq!(not_a_number.problem(400)["field"], "limit");
    server.finish().await;
}

async fn stock_adjustments_and_reservations(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let product = server.create_product(&admin, "STOCK-1", 10).await;
    let id = product["id"].as_str().unwrap();

    // Restock.
    let adjusted = server
        .post(
            &format!("/api/v1/products/{id}/stock-adjustments"),
            Some(&admin),
            json!({"delta": 5, "reason": "delivery"}),
        )
        .await;
    assert_eq!(
        adjusted.ok(200).clone(),
        json!({"on_hand": 15, "reserved": 0, "available": 15})
    );
    // Read now, the product's page is rendered once and kept; every later
    // change must replace it (checked at the end).
    let shown = server.get(&format!("/api/v1/products/{id}"), None).await;
    assert_eq!(shown.ok(200)["stock"]["on_hand"], 15);

    // Hold 6 for an order.
    let order = uuid::Uuid::now_v7();
    let held = server
        .post(
            &format!("/api/v1/admin/products/{id}/reservations"),
            Some(&admin),
            json!({"order_id": order, "quantity": 6}),
        )
        .await;
    assert_eq!(
        held.ok(201)["stock"],
        json!({"on_hand": 15, "reserved": 6, "available": 9})
    );

    // More than available: 409 with the figures.
    let short = server
        .post(
            &format!("/api/v1/admin/products/{id}/reservations"),
            Some(&admin),
            json!({"quantity": 10}),
        )
        .await;
    let problem = short.problem(409);
    assert_eq!(problem["available"], 9);
    assert_eq!(problem["requested"], 10);

    // on_hand may not fall below what is reserved.
    server
        .post(
            &format!("/api/v1/products/{id}/stock-adjustments"),
            Some(&admin),
            json!({"delta": -10, "reason": "breakage"}),
        )
        .await
        .problem(409);
    let lowered = server
        .post(
            &format!("/api/v1/products/{id}/stock-adjustments"),
            Some(&admin),
            json!({"delta": -9, "reason": "breakage"}),
        )
        .await;
    assert_eq!(
        lowered.ok(200).clone(),
        json!({"on_hand": 6, "reserved": 6, "available": 0})
    );
    let zero = server
        .post(
            &format!("/api/v1/products/{id}/stock-adjustments"),
            Some(&admin),
            json!({"delta": 0}),
        )
        .await;
    assert_eq!(zero.problem(422)["field"], "delta");
    let unknown = uuid::Uuid::now_v7();
    server
        .post(
            &format!("/api/v1/products/{unknown}/stock-adjustments"),
            Some(&admin),
            json!({"delta": 1}),
        )
        .await
        .problem(404);

    // A product with open reservations cannot be deleted.
    server
        .delete(&format!("/api/v1/products/{id}"), Some(&admin))
        .await
        .problem(409);

    // Commit the hold: on_hand drops, the reservation is gone.
    let committed = server
        .post(
            &format!("/api/v1/admin/products/{id}/reservations/{order}/commit"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(
        committed.ok(200).clone(),
        json!({"on_hand": 0, "reserved": 0, "available": 0})
    );
    server
        .delete(
            &format!("/api/v1/admin/products/{id}/reservations/{order}"),
            Some(&admin),
        )
        .await
        .problem(404);

    // The committed levels are what the catalog shows.
    let shown = server.get(&format!("/api/v1/products/{id}"), None).await;
    assert_eq!(
        shown.ok(200)["stock"],
        json!({"on_hand": 0, "reserved": 0, "available": 0})
    );
    server.finish().await;
}

async fn authorization_by_role(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let customer = server.customer_token("carol@example.com").await;
    let product = server.create_product(&admin, "ROLE-1", 3).await;
    let id = product["id"].as_str().unwrap();
    let new_product = json!({"name": "X", "sku": "X-1", "price": {"amount": 1, "currency": "EUR"}});

    // Customers: 403 on every admin operation; anonymous: 401.
    for token in [Some(customer.as_str()), None] {
        let status = if token.is_some() { 403 } else { 401 };
        server
            .post("/api/v1/products", token, new_product.clone())
            .await
            .problem(status);
        server
            .patch(
                &format!("/api/v1/products/{id}"),
                token,
                json!({"name": "Y"}),
            )
            .await
            .problem(status);
        server
            .delete(&format!("/api/v1/products/{id}"), token)
            .await
            .problem(status);
        server
            .post(
                &format!("/api/v1/products/{id}/stock-adjustments"),
                token,
                json!({"delta": 1}),
            )
            .await
            .problem(status);
        server
            .get("/api/v1/admin/supervisor", token)
            .await
            .problem(status);
        server
            .post(
                &format!("/api/v1/admin/products/{id}/reservations"),
                token,
                json!({"quantity": 1}),
            )
            .await
            .problem(status);
    }
    // Nothing changed.
    let unchanged = server.get(&format!("/api/v1/products/{id}"), None).await;
    assert_eq!(unchanged.ok(200)["name"], product["name"]);
    assert_eq!(unchanged.body["stock"]["on_hand"], 3);
    // Reading the catalog needs no token.
    server.get("/api/v1/products", None).await.ok(200);
    // The CLI-made admin really is an admin.
    let me = server.get("/api/v1/auth/me", Some(&admin)).await;
    assert_eq!(me.ok(200)["role"], "admin");
    assert_eq!(me.body["email"], ADMIN_EMAIL);
    server.finish().await;
}

async fn supervisor_inspection_and_service_endpoints(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let product = server.create_product(&admin, "SUP-1", 3).await;
    let id = product["id"].as_str().unwrap();
    // Touch the stock actor.
    server
        .post(
            &format!("/api/v1/products/{id}/stock-adjustments"),
            Some(&admin),
            json!({"delta": 1}),
        )
        .await
        .ok(200);
    let tree = server.get("/api/v1/admin/supervisor", Some(&admin)).await;
    let tree = tree.ok(200);
    assert_eq!(tree["status"], "running");
    let stock = &tree["supervisors"][0];
    assert_eq!(stock["kind"], "product_stock");
    assert_eq!(stock["alive"], 1);
    assert_eq!(stock["actors"][0]["key"], id);
    assert_eq!(stock["actors"][0]["status"], "running");
    assert_eq!(stock["actors"][0]["restarts"], 0);
    let tasks: Vec<&str> = tree["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // Every loop of the process runs under the task supervisor; on PostgreSQL
    // the first keeps the role leases.
    assert_eq!(tree["roles"], "all");
    let tasks = match server.backend {
        Backend::Postgres => {
            assert_eq!(tree["leases"], "catalog@1,orders@1,payments@1");
            assert_eq!(tasks[0], "leases");
            &tasks[1..]
        }
        Backend::Sqlite => {
            assert_eq!(tree["leases"], Value::Null);
            &tasks[..]
        }
    };
    assert_eq!(
        tasks,
        [
            "store_writer",
            "hold_sweeper",
            "search-indexer",
            "payment_reconciler",
            "mailroom",
            "sweeper",
            // The subscribers, fed from the outbox (no KAFKA_BROKERS).
            "delivery:search-indexer",
            "delivery:live-carts",
            "delivery:orders",
            "delivery:payments",
            "delivery:notifier",
        ]
    );
    assert_eq!(tree["consumers"], json!([]));
    assert!(tree["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["restarts"] == 0 && t["state"] == "running" && t["last_panic"].is_null()));

    // Paths a client makes up are counted under the route they matched, or as
    // unmatched: however many there are, they add no series.
    for i in 0..5 {
        let bad_id = server
            .client
            .get(format!("{}/api/v1/products/made-up-{i}", server.base))
            .send()
            .await
            .unwrap();
        assert!(bad_id.status().is_client_error());
        let nowhere = server
            .client
            .get(format!("{}/api/v1/made-up-{i}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(nowhere.status().as_u16(), 404);
        let made_up_method = server
            .client
            .request(
                reqwest::Method::from_bytes(format!("MADE-UP-{i}").as_bytes()).unwrap(),
                format!("{}/api/v1/products", server.base),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(made_up_method.status().as_u16(), 405);
    }

    // Prometheus metrics: the adjustment above is counted under its route template.
    let metrics = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains(
        "pazar_http_requests_total{method=\"POST\",route=\"/api/v1/products/{id}/stock-adjustments\",status=\"200\"} 1"
    ), "{metrics}");
    assert!(
        metrics.contains("pazar_http_request_duration_seconds_count{route=\"/api/v1/products\"}")
    );
    assert!(!metrics.to_lowercase().contains("made-up"), "{metrics}");
    assert!(
        metrics.contains(
            "pazar_http_requests_total{method=\"other\",route=\"/api/v1/products\",status=\"405\"} 5"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/api/v1/products/{id}\",status=\"400\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "pazar_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 5"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("pazar_actors_alive{kind=\"product_stock\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("pazar_actor_restarts_total{kind=\"product_stock\"} 0"));

    server.get("/health", None).await.ok(200);
    assert_eq!(server.get("/ready", None).await.ok(200)["status"], "ok");
    let spec = server.get("/openapi.json", None).await;
    let paths = spec.ok(200)["paths"].as_object().unwrap().clone();
    // Every operation documents its problem answers.
    for (path, operations) in &paths {
        for (method, operation) in operations.as_object().unwrap() {
            assert_eq!(
                operation["responses"]["default"]["content"]["application/problem+json"]["schema"]
                    ["$ref"],
                "#/components/schemas/Problem",
                "{method} {path}"
            );
        }
    }
    assert_eq!(
        spec.body["components"]["schemas"]["Problem"]["properties"]["field"]["type"],
        "string"
    );
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/me",
        "/api/v1/products",
        "/api/v1/products/{id}",
        "/api/v1/products/{id}/stock-adjustments",
        "/api/v1/admin/supervisor",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    let docs = server
        .client
        .get(format!("{}/docs", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    let page = docs.text().await.unwrap();
    assert!(page.contains("swagger"));
    assert!(
        page.contains("application/problem+json"),
        "the UI shows the problem responses"
    );
    server.finish().await;
}

async fn every_change_writes_its_event_in_commit_order(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let customer = server.customer_token("dora@example.com").await;
    let product = server.create_product(&admin, "EVT-1", 5).await;
    let id = product["id"].as_str().unwrap();
    server
        .patch(
            &format!("/api/v1/products/{id}"),
            Some(&admin),
            json!({"name": "Renamed"}),
        )
        .await
        .ok(200);
    // A refused change writes nothing.
    server
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"name": "Dup", "sku": "EVT-1", "price": {"amount": 1, "currency": "EUR"}}),
        )
        .await
        .problem(409);
    server
        .post(
            &format!("/api/v1/products/{id}/stock-adjustments"),
            Some(&admin),
            json!({"delta": 3}),
        )
        .await
        .ok(200);
    let order = uuid::Uuid::now_v7();
    server
        .post(
            &format!("/api/v1/admin/products/{id}/reservations"),
            Some(&admin),
            json!({"order_id": order, "quantity": 2}),
        )
        .await
        .ok(201);
    server
        .delete(
            &format!("/api/v1/admin/products/{id}/reservations/{order}"),
            Some(&admin),
        )
        .await
        .ok(200);
    assert_eq!(
        server
            .delete(&format!("/api/v1/products/{id}"), Some(&admin))
            .await
            .status
            .as_u16(),
        204
    );

    let page = server
        .get("/api/v1/admin/events?limit=1000", Some(&admin))
        .await;
    let items = page.ok(200)["items"].as_array().unwrap().clone();
    let kinds: Vec<&str> = items.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "users.registered", // the admin, made by the CLI
            "users.registered",
            "catalog.product_upserted",
            "catalog.product_upserted",
            "catalog.stock_changed",
            "catalog.stock_changed",
            "catalog.stock_changed",
            "catalog.product_deleted",
        ]
    );
    // Gap-free commit order, unique ids, the envelope of the design.
    for (i, event) in items.iter().enumerate() {
        assert_eq!(event["seq"], i as u64 + 1);
        assert_eq!(event["source"], "pazar");
        assert_eq!(event["version"], 1);
        assert!(event["time"].as_str().is_some());
        assert_eq!(event["id"].as_str().unwrap().len(), 36);
    }
    let ids: std::collections::HashSet<_> = items.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(ids.len(), items.len());
    assert_eq!(items[1]["data"]["email"], "dora@example.com");
    assert_eq!(items[2]["subject"], id);
    assert_eq!(items[2]["data"]["stock"]["on_hand"], 5);
    assert_eq!(items[3]["data"]["name"], "Renamed");
    assert_eq!(
        items[4]["data"],
        json!({"product_id": id, "on_hand": 8, "reserved": 0, "available": 8})
    );
    assert_eq!(items[5]["data"]["reserved"], 2);
    assert_eq!(items[6]["data"]["reserved"], 0);
    assert_eq!(items[7]["data"], json!({"product_id": id}));

    // The published schemas are the checked-in file, and every event written
    // has the members its type's schema requires and no others.
    let schemas = server.get("/api/v1/events/schemas", None).await;
    let checked_in: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/schemas.json"
    )))
    .unwrap();
    assert_eq!(schemas.ok(200).clone(), checked_in);
    for event in &items {
        let schema = checked_in["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|schema| schema["type"] == event["type"])
            .unwrap_or_else(|| panic!("no schema for {}", event["type"]));
        assert_eq!(schema["version"], event["version"]);
        let data = event["data"].as_object().unwrap();
        for required in schema["data"]["required"].as_array().unwrap() {
            assert!(data.contains_key(required.as_str().unwrap()), "{event}");
        }
        for member in data.keys() {
            assert!(
                schema["data"]["properties"].get(member).is_some(),
                "{member} of {event} is not in its schema"
            );
        }
    }

    // Paging.
    let page = server
        .get("/api/v1/admin/events?after=6&limit=1", Some(&admin))
        .await;
    assert_eq!(page.ok(200)["items"][0]["seq"], 7);
    assert_eq!(page.body["next_after"], 7);
    let bad = server
        .get("/api/v1/admin/events?limit=0", Some(&admin))
        .await;
    assert_eq!(bad.problem(422)["field"], "limit");
    server
        .get("/api/v1/admin/events", Some(&customer))
        .await
        .problem(403);
    server.finish().await;
}
