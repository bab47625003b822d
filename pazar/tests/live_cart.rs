//! The live cart WebSocket against the real server, on both databases: every open
//! socket of a user gets each change, other users' sockets get nothing of it, and
//! catalog changes that matter (a new price) are pushed too.

mod common;

use common::{next_snapshot, open_with_header, open_with_query, ws_url, Backend, TestServer};
use serde_json::json;

on_both_databases!(
    every_socket_of_a_user_sees_each_change_and_no_one_else_does,
    price_changes_reach_an_open_socket,
    sockets_without_a_valid_token_are_refused,
);

async fn every_socket_of_a_user_sees_each_change_and_no_one_else_does(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let ada = server.customer_token("ada@example.com").await;
    let bob = server.customer_token("bob@example.com").await;
    let product = server.create_product(&admin, "LIVE", 10).await;

    let mut tab = open_with_header(&server, &ada).await;
    let mut phone = open_with_query(&server, &ada).await;
    let mut bobs = open_with_header(&server, &bob).await;
    for socket in [&mut tab, &mut phone, &mut bobs] {
        assert_eq!(next_snapshot(socket).await["items"], json!([]));
    }

    // A change over REST reaches both of Ada's sockets.
    server
        .post(
            "/api/v1/cart/items",
            Some(&ada),
            json!({"product_id": product["id"], "quantity": 2}),
        )
        .await
        .ok(200);
    for socket in [&mut tab, &mut phone] {
        let snapshot = next_snapshot(socket).await;
        assert_eq!(snapshot["items"][0]["quantity"], 2);
        assert_eq!(
            snapshot["total"],
            json!({"amount": 2500, "currency": "EUR"})
        );
    }
    // Bob's socket got nothing of it: its next snapshot is Bob's own change.
    server
        .post(
            "/api/v1/cart/items",
            Some(&bob),
            json!({"product_id": product["id"], "quantity": 5}),
        )
        .await
        .ok(200);
    assert_eq!(next_snapshot(&mut bobs).await["items"][0]["quantity"], 5);
    // ... and Ada's sockets nothing of Bob's: their next is Ada's removal.
    let id = product["id"].as_str().unwrap();
    server
        .delete(&format!("/api/v1/cart/items/{id}"), Some(&ada))
        .await
        .ok(200);
    for socket in [&mut tab, &mut phone] {
        assert_eq!(next_snapshot(socket).await["items"], json!([]));
    }
    server.finish().await;
}

async fn price_changes_reach_an_open_socket(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let ada = server.customer_token("ada@example.com").await;
    let product = server.create_product(&admin, "PRICEY", 10).await;
    let id = product["id"].as_str().unwrap();
    server
        .post(
            "/api/v1/cart/items",
            Some(&ada),
            json!({"product_id": id, "quantity": 3}),
        )
        .await
        .ok(200);
    let mut socket = open_with_header(&server, &ada).await;
    assert_eq!(
        next_snapshot(&mut socket).await["items"][0]["unit_price"]["amount"],
        1250
    );

    server
        .patch(
            &format!("/api/v1/products/{id}"),
            Some(&admin),
            json!({"price": {"amount": 999}}),
        )
        .await
        .ok(200);
    let snapshot = next_snapshot(&mut socket).await;
    assert_eq!(snapshot["items"][0]["unit_price"]["amount"], 999);
    assert_eq!(snapshot["total"]["amount"], 2997);

    // Stock falling below the cart's quantity flags the line.
    server
        .post(
            &format!("/api/v1/products/{id}/stock-adjustments"),
            Some(&admin),
            json!({"delta": -8}),
        )
        .await
        .ok(200);
    let snapshot = next_snapshot(&mut socket).await;
    assert_eq!(snapshot["items"][0]["status"], "insufficient_stock");
    assert_eq!(snapshot["items"][0]["available"], 2);
    server.finish().await;
}

async fn sockets_without_a_valid_token_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    for query in ["", "?access_token=not-a-token"] {
        let refused = tokio_tungstenite::connect_async(ws_url(&server, query)).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401)
            }
            other => panic!("expected a 401 refusal, got {other:?}"),
        }
    }
    server.finish().await;
}
