//! Checkout and the order lifecycle over HTTP, on both databases: reservation
//! all-or-nothing, idempotency, cancel and expiry giving stock back, authorisation,
//! the checkout race, and the events each step writes.

mod common;

use common::{stock, Backend, Reply, TestServer};

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

on_both_databases!(
    checkout_places_an_order_and_empties_the_cart,
    a_short_line_fails_the_whole_checkout_and_holds_nothing,
    the_same_idempotency_key_gives_the_same_order,
    cancel_gives_the_stock_back,
    unpaid_orders_expire_and_give_the_stock_back,
    two_hundred_buyers_fifty_units,
);

async fn add(server: &TestServer, token: &str, product: &Value, quantity: i64) {
    server
        .post(
            "/api/v1/cart/items",
            Some(token),
            json!({"product_id": product["id"], "quantity": quantity}),
        )
        .await
        .ok(200);
}

async fn checkout(server: &TestServer, token: &str, key: Option<&str>) -> Reply {
    let mut request = server
        .client
        .post(format!("{}/api/v1/orders", server.base))
        .bearer_auth(token);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    server.send_built(request).await
}

async fn event_types(server: &TestServer, admin: &str) -> Vec<String> {
    let page = server
        .get("/api/v1/admin/events?limit=1000", Some(admin))
        .await;
    page.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn checkout_places_an_order_and_empties_the_cart(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let ada = server.customer_token("ada@example.com").await;
    let bob = server.customer_token("bob@example.com").await;
    let kettle = server.create_product(&admin, "KETTLE", 5).await;
    let mug = server.create_product(&admin, "MUG", 8).await;

    // An empty cart cannot be checked out.
    checkout(&server, &ada, None).await.problem(409);

    add(&server, &ada, &mug, 3).await;
    add(&server, &ada, &kettle, 2).await;
    let placed = checkout(&server, &ada, None).await;
    let order = placed.ok(201).clone();
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(
        order["total"],
        json!({"amount": 5 * 1250, "currency": "EUR"})
    );
    let items = order["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    // Lines come in product-id order, the order reservations were taken in.
    let mut ids: Vec<&str> = items
        .iter()
        .map(|i| i["product_id"].as_str().unwrap())
        .collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort();
        s
    };
    assert_eq!(ids, sorted);
    ids.clear();
    assert_eq!(order["history"].as_array().unwrap().len(), 1);
    assert_eq!(order["history"][0]["status"], "pending_payment");
    let created: chrono::DateTime<chrono::Utc> =
        order["created_at"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        order["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_seconds(), 15 * 60);

    // Stock is held, the cart is empty.
    assert_eq!(
        stock(&server, &kettle).await,
        json!({"on_hand": 5, "reserved": 2, "available": 3})
    );
    assert_eq!(
        stock(&server, &mug).await,
        json!({"on_hand": 8, "reserved": 3, "available": 5})
    );
    assert_eq!(
        server.get("/api/v1/cart", Some(&ada)).await.ok(200)["items"],
        json!([])
    );

    // The owner sees it; another customer does not; the admin lists it.
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        server
            .get(&format!("/api/v1/orders/{id}"), Some(&ada))
            .await
            .ok(200)["id"],
        id
    );
    server
        .get(&format!("/api/v1/orders/{id}"), Some(&bob))
        .await
        .problem(404);
    server
        .get(
            &format!("/api/v1/orders/{}", uuid::Uuid::now_v7()),
            Some(&ada),
        )
        .await
        .problem(404);
    assert_eq!(
        server.get("/api/v1/orders", Some(&ada)).await.ok(200)["items"][0]["id"],
        id
    );
    let bobs = server.get("/api/v1/orders", Some(&bob)).await;
    assert_eq!(bobs.ok(200)["items"], json!([]));
    assert_eq!(bobs.body["total"], 0);
    assert_eq!(
        server.get("/api/v1/orders", Some(&ada)).await.ok(200)["total"],
        1
    );
    let pending = server
        .get("/api/v1/admin/orders?status=pending_payment", Some(&admin))
        .await;
    assert_eq!(pending.ok(200)["items"][0]["id"], id);
    let none = server
        .get("/api/v1/admin/orders?status=paid", Some(&admin))
        .await;
    assert_eq!(none.ok(200)["items"], json!([]));
    let bad = server
        .get("/api/v1/admin/orders?status=lost", Some(&admin))
        .await;
    assert_eq!(bad.problem(422)["field"], "status");
    server
        .get("/api/v1/admin/orders", Some(&ada))
        .await
        .problem(403);
    // Fulfilment needs a paid order.
    server
        .post(
            &format!("/api/v1/admin/orders/{id}/fulfil"),
            Some(&admin),
            json!({}),
        )
        .await
        .problem(409);

    // orders.created was written with the order.
    let events = event_types(&server, &admin).await;
    assert_eq!(events.iter().filter(|t| *t == "orders.created").count(), 1);
    server.finish().await;
}

async fn a_short_line_fails_the_whole_checkout_and_holds_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let ada = server.customer_token("ada@example.com").await;
    let plenty = server.create_product(&admin, "PLENTY", 10).await;
    let scarce = server.create_product(&admin, "SCARCE", 3).await;
    let gone = server.create_product(&admin, "GONE", 3).await;
    add(&server, &ada, &plenty, 4).await;
    add(&server, &ada, &scarce, 3).await;
    add(&server, &ada, &gone, 1).await;
    // Someone else takes the scarce units; the third product is deleted.
    let scarce_id = scarce["id"].as_str().unwrap();
    server
        .post(
            &format!("/api/v1/admin/products/{scarce_id}/reservations"),
            Some(&admin),
            json!({"quantity": 2}),
        )
        .await
        .ok(201);
    let gone_id = gone["id"].as_str().unwrap();
    assert_eq!(
        server
            .delete(&format!("/api/v1/products/{gone_id}"), Some(&admin))
            .await
            .status
            .as_u16(),
        204
    );

    let refused = checkout(&server, &ada, None).await;
    let problem = refused.problem(409);
    let mut unavailable = problem["unavailable"].as_array().unwrap().clone();
    unavailable.sort_by_key(|line| line["product_id"].as_str().unwrap().to_owned());
    let mut expected = vec![
        json!({"product_id": scarce_id, "requested": 3, "available": 1}),
        json!({"product_id": gone_id, "requested": 1, "available": 0}),
    ];
    expected.sort_by_key(|line| line["product_id"].as_str().unwrap().to_owned());
    assert_eq!(unavailable, expected);
    // Nothing stays reserved for the failed checkout, the cart is kept, no order exists.
    assert_eq!(stock(&server, &plenty).await["reserved"], 0);
    assert_eq!(stock(&server, &scarce).await["reserved"], 2);
    assert_eq!(
        server.get("/api/v1/cart", Some(&ada)).await.ok(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        server.get("/api/v1/orders", Some(&ada)).await.ok(200)["items"],
        json!([])
    );
    server.finish().await;
}

async fn the_same_idempotency_key_gives_the_same_order(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let ada = server.customer_token("ada@example.com").await;
    let product = server.create_product(&admin, "P", 10).await;
    add(&server, &ada, &product, 2).await;
    let first = checkout(&server, &ada, Some("checkout-42")).await;
    let first_id = first.ok(201)["id"].clone();
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = checkout(&server, &ada, Some("checkout-42")).await;
    assert_eq!(again.ok(201)["id"], first_id);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(
        server.get("/api/v1/orders", Some(&ada)).await.ok(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(stock(&server, &product).await["reserved"], 2);
    // Another key with an empty cart is a new checkout: refused.
    checkout(&server, &ada, Some("checkout-43"))
        .await
        .problem(409);
    server.finish().await;
}

async fn cancel_gives_the_stock_back(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let ada = server.customer_token("ada@example.com").await;
    let bob = server.customer_token("bob@example.com").await;
    let product = server.create_product(&admin, "P", 10).await;
    add(&server, &ada, &product, 4).await;
    let order = checkout(&server, &ada, None).await.ok(201).clone();
    let id = order["id"].as_str().unwrap();
    assert_eq!(stock(&server, &product).await["reserved"], 4);

    server
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&bob),
            json!({}),
        )
        .await
        .problem(404);
    let cancelled = server
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&ada),
            json!({}),
        )
        .await;
    let cancelled = cancelled.ok(200);
    assert_eq!(cancelled["status"], "cancelled");
    let history: Vec<&str> = cancelled["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["pending_payment", "cancelled"]);
    assert_eq!(
        stock(&server, &product).await,
        json!({"on_hand": 10, "reserved": 0, "available": 10})
    );
    server
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&ada),
            json!({}),
        )
        .await
        .problem(409);
    let events = event_types(&server, &admin).await;
    assert!(events.contains(&"orders.cancelled".to_owned()));
    server.finish().await;
}

async fn unpaid_orders_expire_and_give_the_stock_back(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        &[("PAZAR_ORDER_TTL", "1s"), ("PAZAR_SWEEP_INTERVAL", "100ms")],
    )
    .await;
    let admin = server.admin_token().await;
    let ada = server.customer_token("ada@example.com").await;
    let product = server.create_product(&admin, "P", 10).await;
    add(&server, &ada, &product, 3).await;
    let order = checkout(&server, &ada, None).await.ok(201).clone();
    let id = order["id"].as_str().unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let current = server
            .get(&format!("/api/v1/orders/{id}"), Some(&ada))
            .await;
        if current.ok(200)["status"] == "expired" {
            let last = current.body["history"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .clone();
            assert_eq!(last["status"], "expired");
            break;
        }
        assert!(Instant::now() < deadline, "the order did not expire");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stock(&server, &product).await,
        json!({"on_hand": 10, "reserved": 0, "available": 10})
    );
    assert!(event_types(&server, &admin)
        .await
        .contains(&"orders.expired".to_owned()));
    // An expired order cannot be cancelled.
    server
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&ada),
            json!({}),
        )
        .await
        .problem(409);
    server.finish().await;
}

async fn two_hundred_buyers_fifty_units(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let product = server.create_product(&admin, "HOT", 50).await;
    let server = Arc::new(server);
    // Every buyer fills a cart first (all fit: nothing is reserved yet) ...
    let carts: Vec<_> = (0..200)
        .map(|i| {
            let server = server.clone();
            let product = product.clone();
            tokio::spawn(async move {
                let token = server
                    .customer_token(&format!("buyer{i}@example.com"))
                    .await;
                add(&server, &token, &product, 1).await;
                token
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for cart in carts {
        tokens.push(cart.await.unwrap());
    }
    // ... then all check out at once.
    let buyers: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let server = server.clone();
            tokio::spawn(async move { checkout(&server, &token, None).await })
        })
        .collect();
    let (mut placed, mut refused) = (0, 0);
    for buyer in buyers {
        let reply = buyer.await.unwrap();
        match reply.status.as_u16() {
            201 => placed += 1,
            409 => {
                assert_eq!(reply.problem(409)["unavailable"][0]["available"], 0);
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert_eq!((placed, refused), (50, 150));
    assert_eq!(
        stock(&server, &product).await,
        json!({"on_hand": 50, "reserved": 50, "available": 0})
    );
    let pending = server
        .get(
            "/api/v1/admin/orders?status=pending_payment&limit=100",
            Some(&admin),
        )
        .await;
    assert_eq!(pending.ok(200)["items"].as_array().unwrap().len(), 50);
    assert_eq!(pending.body["total"], 50);
    // Paging: 20 by default, the rest after an offset, limits validated; the
    // total counts the whole listing on every page.
    let first = server.get("/api/v1/admin/orders", Some(&admin)).await;
    assert_eq!(first.ok(200)["items"].as_array().unwrap().len(), 20);
    assert_eq!(first.body["total"], 50);
    let rest = server
        .get("/api/v1/admin/orders?limit=20&offset=40", Some(&admin))
        .await;
    assert_eq!(rest.ok(200)["total"], 50);
    let rest = rest.body["items"].as_array().unwrap().clone();
    assert_eq!(rest.len(), 10);
    assert!(!first.body["items"].as_array().unwrap().contains(&rest[0]));
    let zero = server
        .get("/api/v1/admin/orders?limit=0", Some(&admin))
        .await;
    assert_eq!(zero.problem(422)["field"], "limit");
    let negative = server
        .get("/api/v1/admin/orders?offset=-1", Some(&admin))
        .await;
    assert_eq!(negative.problem(422)["field"], "offset");
    Arc::into_inner(server).unwrap().finish().await;
}
