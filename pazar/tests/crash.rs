//! Concurrency and crash safety over HTTP: no oversell under 200 concurrent
//! reservations, and what was acknowledged survives a SIGKILL of the server.

mod common;

use common::{Backend, TestServer};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

on_both_databases!(
    concurrent_reservations_never_oversell_and_survive_sigkill,
    acknowledged_reservations_survive_a_sigkill_mid_burst,
    checkouts_survive_a_sigkill_mid_burst,
);

async fn concurrent_reservations_never_oversell_and_survive_sigkill(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let product = server.create_product(&admin, "HOT-1", 50).await;
    let id = product["id"].as_str().unwrap().to_owned();

    let server = Arc::new(server);
    let attempts: Vec<_> = (0..200)
        .map(|_| {
            let server = server.clone();
            let admin = admin.clone();
            let id = id.clone();
            tokio::spawn(async move {
                server
                    .post(
                        &format!("/api/v1/admin/products/{id}/reservations"),
                        Some(&admin),
                        json!({"quantity": 1}),
                    )
                    .await
            })
        })
        .collect();
    let (mut taken, mut refused) = (0, 0);
    for attempt in attempts {
        let reply = attempt.await.unwrap();
        match reply.status.as_u16() {
            201 => taken += 1,
            409 => {
                assert_eq!(
                    reply.problem(409)["type"],
                    "urn:pazar:problem:insufficient-stock"
                );
                refused += 1;
            }
            other => panic!("unexpected status {other}: {}", reply.body),
        }
    }
    assert_eq!((taken, refused), (50, 150));
    let stock = json!({"on_hand": 50, "reserved": 50, "available": 0});
    let before = server.get(&format!("/api/v1/products/{id}"), None).await;
    assert_eq!(before.ok(200)["stock"], stock);

    // Kill -9 and start again on the same database: the same figures.
    let mut server = Arc::into_inner(server).expect("all requests finished");
    server.restart().await;
    let after = server.get(&format!("/api/v1/products/{id}"), None).await;
    assert_eq!(after.ok(200)["stock"], stock);
    // And the restarted actor enforces them.
    let admin = server.admin_token().await;
    server
        .post(
            &format!("/api/v1/admin/products/{id}/reservations"),
            Some(&admin),
            json!({"quantity": 1}),
        )
        .await
        .problem(409);
    server.finish().await;
}

async fn acknowledged_reservations_survive_a_sigkill_mid_burst(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let product = server.create_product(&admin, "HOT-2", 1000).await;
    let id = product["id"].as_str().unwrap().to_owned();

    // 400 reservations from 16 clients; the server is killed once 100 are acknowledged.
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let base = server.base.clone();
    let client = server.client.clone();
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (client, base, admin, id) =
                (client.clone(), base.clone(), admin.clone(), id.clone());
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    let sent = client
                        .post(format!("{base}/api/v1/admin/products/{id}/reservations"))
                        .bearer_auth(&admin)
                        .json(&json!({"quantity": 1}))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().as_u16() == 201 => {
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(response) => panic!("unexpected status {}", response.status()),
                        Err(_) => return, // the server is gone
                    }
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acknowledged.load(Ordering::SeqCst) < 100 {
        assert!(std::time::Instant::now() < deadline, "burst too slow");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    server.kill().await;
    for client in clients {
        client.await.unwrap();
    }
    let acked = acknowledged.load(Ordering::SeqCst);

    server.restart().await;
    let after = server.get(&format!("/api/v1/products/{id}"), None).await;
    let stock = &after.ok(200)["stock"];
    let reserved = stock["reserved"].as_u64().unwrap() as usize;
    // Every acknowledged hold is there; at most the 16 in flight were committed unanswered.
    assert!(
        reserved >= acked,
        "reserved {reserved} < acknowledged {acked}"
    );
    assert!(
        reserved <= acked + 16,
        "reserved {reserved} > acknowledged {acked} + 16"
    );
    assert_eq!(stock["on_hand"], 1000);
    assert_eq!(
        stock["available"].as_u64().unwrap() as usize,
        1000 - reserved
    );
    server.finish().await;
}

async fn checkouts_survive_a_sigkill_mid_burst(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let kettle = server.create_product(&admin, "KETTLE", 1000).await;
    let mug = server.create_product(&admin, "MUG", 500).await;

    // 60 buyers with carts of one or two products.
    let mut buyers = Vec::new();
    for i in 0..60 {
        let token = server
            .customer_token(&format!("buyer{i}@example.com"))
            .await;
        server
            .post(
                "/api/v1/cart/items",
                Some(&token),
                json!({"product_id": kettle["id"], "quantity": 1 + i % 3}),
            )
            .await
            .ok(200);
        if i % 2 == 0 {
            server
                .post(
                    "/api/v1/cart/items",
                    Some(&token),
                    json!({"product_id": mug["id"], "quantity": 2}),
                )
                .await
                .ok(200);
        }
        buyers.push(token);
    }

    // All check out at once; the server is killed once 15 orders are acknowledged.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (base, client) = (server.base.clone(), server.client.clone());
    let checkouts: Vec<_> = buyers
        .iter()
        .cloned()
        .map(|token| {
            let (base, client, acknowledged) = (base.clone(), client.clone(), acknowledged.clone());
            tokio::spawn(async move {
                let response = client
                    .post(format!("{base}/api/v1/orders"))
                    .bearer_auth(&token)
                    .send()
                    .await;
                if let Ok(response) = response {
                    if response.status().as_u16() == 201 {
                        if let Ok(order) = response.json::<serde_json::Value>().await {
                            acknowledged.lock().unwrap().push((token, order));
                        }
                    }
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 15 {
        assert!(std::time::Instant::now() < deadline, "checkouts too slow");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    server.kill().await;
    for checkout in checkouts {
        checkout.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    server.restart().await;
    // Every acknowledged order is there, as it was answered.
    for (token, order) in &acknowledged {
        let id = order["id"].as_str().unwrap();
        let stored = server
            .get(&format!("/api/v1/orders/{id}"), Some(token))
            .await;
        assert_eq!(stored.ok(200)["status"], "pending_payment");
        assert_eq!(stored.body["items"], order["items"]);
    }
    // Stock is conserved: nothing sold, and exactly the pending orders' lines are held
    // (holds of checkouts cut short by the kill were given back at start).
    let admin = server.admin_token().await;
    let pending = server
        .get(
            "/api/v1/admin/orders?status=pending_payment&limit=100",
            Some(&admin),
        )
        .await;
    let pending = pending.ok(200)["items"].as_array().unwrap().clone();
    assert!(pending.len() >= acknowledged.len());
    for product in [&kettle, &mug] {
        let id = product["id"].as_str().unwrap();
        let held: i64 = pending
            .iter()
            .flat_map(|order| order["items"].as_array().unwrap().iter())
            .filter(|line| line["product_id"] == product["id"])
            .map(|line| line["quantity"].as_i64().unwrap())
            .sum();
        let stock = server
            .get(&format!("/api/v1/products/{id}"), None)
            .await
            .ok(200)["stock"]
            .clone();
        assert_eq!(stock["on_hand"], product["stock"]["on_hand"]);
        assert_eq!(
            stock["reserved"].as_i64().unwrap(),
            held,
            "{}",
            product["sku"]
        );
    }
    // Every event committed before the kill reaches the in-process subscribers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = server
            .get("/api/v1/admin/events?limit=1", Some(&admin))
            .await;
        let page = page.ok(200);
        if page["subscribers"]["live-carts"] == page["head"] {
            assert!(page["head"].as_i64().unwrap() >= 60 + 2 + acknowledged.len() as i64);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events not delivered: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.finish().await;
}
