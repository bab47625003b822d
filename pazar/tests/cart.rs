//! Carts over HTTP on both databases: lines, prices, availability, errors,
//! isolation between users, and persistence across a SIGKILL.

mod common;

use common::{Backend, TestServer};
use serde_json::json;

on_both_databases!(
    cart_lines_prices_and_errors,
    carts_are_private_and_survive_sigkill
);

async fn cart_lines_prices_and_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let ada = server.customer_token("ada@example.com").await;
    let kettle = server.create_product(&admin, "KETTLE", 5).await;
    let kettle_id = kettle["id"].as_str().unwrap().to_owned();
    let mug = server
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"name": "Mug", "sku": "MUG", "price": {"amount": 350, "currency": "EUR"}, "stock": 10}),
        )
        .await
        .ok(201)
        .clone();
    let mug_id = mug["id"].as_str().unwrap().to_owned();

    // Empty at first.
    let empty = server.get("/api/v1/cart", Some(&ada)).await;
    assert_eq!(
        empty.ok(200).clone(),
        json!({"items": [], "total": {"amount": 0, "currency": "EUR"}})
    );

    // Adding adds to what is there.
    server
        .post(
            "/api/v1/cart/items",
            Some(&ada),
            json!({"product_id": kettle_id, "quantity": 2}),
        )
        .await
        .ok(200);
    let cart = server
        .post(
            "/api/v1/cart/items",
            Some(&ada),
            json!({"product_id": kettle_id, "quantity": 1}),
        )
        .await;
    let line = &cart.ok(200)["items"][0];
    assert_eq!(line["quantity"], 3);
    assert_eq!(line["name"], "Product KETTLE");
    assert_eq!(
        line["unit_price"],
        json!({"amount": 1250, "currency": "EUR"})
    );
    assert_eq!(
        line["line_total"],
        json!({"amount": 3750, "currency": "EUR"})
    );
    assert_eq!(line["available"], 5);
    assert_eq!(line["status"], "ok");
    let cart = server
        .post(
            "/api/v1/cart/items",
            Some(&ada),
            json!({"product_id": mug_id, "quantity": 4}),
        )
        .await;
    assert_eq!(
        cart.ok(200)["total"],
        json!({"amount": 3750 + 1400, "currency": "EUR"})
    );
    assert_eq!(cart.body["items"][1]["product_id"], mug_id);

    // Errors: unknown product, bad quantity, more than available, bad ids.
    let unknown = uuid::Uuid::now_v7();
    server
        .post(
            "/api/v1/cart/items",
            Some(&ada),
            json!({"product_id": unknown, "quantity": 1}),
        )
        .await
        .problem(404);
    let zero = server
        .post(
            "/api/v1/cart/items",
            Some(&ada),
            json!({"product_id": kettle_id, "quantity": 0}),
        )
        .await;
    assert_eq!(zero.problem(422)["field"], "quantity");
    let too_many = server
        .post(
            "/api/v1/cart/items",
            Some(&ada),
            json!({"product_id": kettle_id, "quantity": 3}),
        )
        .await;
    assert_eq!(too_many.problem(409)["available"], 5);
    assert_eq!(too_many.body["requested"], 6);
    let bad_id = server
        .post(
            "/api/v1/cart/items",
            Some(&ada),
            json!({"product_id": "nope", "quantity": 1}),
        )
        .await;
    assert_eq!(bad_id.problem(400)["field"], "product_id");
    server.get("/api/v1/cart", None).await.problem(401);

    // A product priced in another currency cannot join this cart.
    let dollars = server
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"name": "Hat", "sku": "HAT", "price": {"amount": 900, "currency": "USD"}, "stock": 3}),
        )
        .await
        .ok(201)
        .clone();
    let mismatch = server
        .post(
            "/api/v1/cart/items",
            Some(&ada),
            json!({"product_id": dollars["id"], "quantity": 1}),
        )
        .await;
    assert_eq!(mismatch.problem(409)["reason"], "currency_mismatch");

    // Update and remove.
    let updated = server
        .patch(
            &format!("/api/v1/cart/items/{mug_id}"),
            Some(&ada),
            json!({"quantity": 10}),
        )
        .await;
    assert_eq!(updated.ok(200)["items"][1]["quantity"], 10);
    server
        .patch(
            &format!("/api/v1/cart/items/{mug_id}"),
            Some(&ada),
            json!({"quantity": 11}),
        )
        .await
        .problem(409);
    server
        .patch(
            &format!("/api/v1/cart/items/{unknown}"),
            Some(&ada),
            json!({"quantity": 1}),
        )
        .await
        .problem(404);
    let bad_path = server
        .patch("/api/v1/cart/items/xyz", Some(&ada), json!({"quantity": 1}))
        .await;
    assert_eq!(bad_path.problem(400)["field"], "product_id");
    let removed = server
        .delete(&format!("/api/v1/cart/items/{mug_id}"), Some(&ada))
        .await;
    assert_eq!(removed.ok(200)["items"].as_array().unwrap().len(), 1);
    // Removing again is harmless.
    server
        .delete(&format!("/api/v1/cart/items/{mug_id}"), Some(&ada))
        .await
        .ok(200);

    // The cart follows the catalog: stock drops below the line, price changes, deletion.
    server
        .post(
            &format!("/api/v1/products/{kettle_id}/stock-adjustments"),
            Some(&admin),
            json!({"delta": -3}),
        )
        .await
        .ok(200);
    server
        .patch(
            &format!("/api/v1/products/{kettle_id}"),
            Some(&admin),
            json!({"price": {"amount": 1000}}),
        )
        .await
        .ok(200);
    let cart = server.get("/api/v1/cart", Some(&ada)).await;
    let line = &cart.ok(200)["items"][0];
    assert_eq!(line["status"], "insufficient_stock");
    assert_eq!(line["available"], 2);
    assert_eq!(
        line["line_total"],
        json!({"amount": 3000, "currency": "EUR"})
    );
    assert_eq!(
        server
            .delete(&format!("/api/v1/products/{kettle_id}"), Some(&admin))
            .await
            .status
            .as_u16(),
        204
    );
    let cart = server.get("/api/v1/cart", Some(&ada)).await;
    let line = &cart.ok(200)["items"][0];
    assert_eq!(line["status"], "unavailable");
    assert_eq!(line["name"], json!(null));
    assert_eq!(cart.body["total"]["amount"], 0);
    server.finish().await;
}

async fn carts_are_private_and_survive_sigkill(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let ada = server.customer_token("ada@example.com").await;
    let bob = server.customer_token("bob@example.com").await;
    let product = server.create_product(&admin, "P", 10).await;
    let id = product["id"].as_str().unwrap().to_owned();
    server
        .post(
            "/api/v1/cart/items",
            Some(&ada),
            json!({"product_id": id, "quantity": 2}),
        )
        .await
        .ok(200);
    server
        .post(
            "/api/v1/cart/items",
            Some(&bob),
            json!({"product_id": id, "quantity": 7}),
        )
        .await
        .ok(200);
    assert_eq!(
        server.get("/api/v1/cart", Some(&ada)).await.ok(200)["items"][0]["quantity"],
        2
    );
    assert_eq!(
        server.get("/api/v1/cart", Some(&bob)).await.ok(200)["items"][0]["quantity"],
        7
    );

    server.restart().await;
    // Tokens stay valid (the key is kept in the data directory) and carts are back.
    assert_eq!(
        server.get("/api/v1/cart", Some(&ada)).await.ok(200)["items"][0]["quantity"],
        2
    );
    assert_eq!(
        server.get("/api/v1/cart", Some(&bob)).await.ok(200)["items"][0]["quantity"],
        7
    );
    server.finish().await;
}
