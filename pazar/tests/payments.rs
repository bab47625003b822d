//! Paying with the local provider over HTTP, on both databases: success, declines,
//! bad cards, retries, stock sold exactly once, ownership, and a restart between
//! checkout and payment.

mod common;

use common::{
    order_status_becomes, pay_locally, pending_order, start_payment, stock, Backend, TestServer,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

on_both_databases!(
    a_card_payment_makes_the_order_paid_and_sells_the_stock_once,
    declines_and_bad_cards_then_a_success,
    only_the_owner_pays_and_only_pending_orders,
    the_flow_survives_a_restart_between_checkout_and_payment,
    an_admin_refund_returns_the_money_and_the_stock,
    stripe_webhooks_are_verified_and_harmless_when_repeated,
);

const GOOD: &str = "4242 4242 4242 4242";

async fn a_card_payment_makes_the_order_paid_and_sells_the_stock_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (token, product, order) = pending_order(&server, "ada@example.com", 3).await;
    let id = order["id"].as_str().unwrap();

    let payment = start_payment(&server, &token, &order).await;
    assert_eq!(payment["provider"], "local");
    assert_eq!(payment["status"], "requires_payment");
    assert_eq!(payment["amount"], order["total"]);
    assert_eq!(payment["publishable_key"], Value::Null);
    let secret = payment["client_secret"].as_str().unwrap().to_owned();
    // Asking again gives the same payment.
    let again = server
        .post(
            &format!("/api/v1/orders/{id}/payment"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(again.ok(200)["client_secret"], secret.as_str());

    let paid = pay_locally(&server, &secret, GOOD).await;
    assert_eq!(
        paid.ok(200).clone(),
        json!({"status": "succeeded", "last_error": null})
    );
    let order = order_status_becomes(&server, &token, &order, "paid").await;
    assert_eq!(order["history"].as_array().unwrap().len(), 2);
    assert_eq!(
        stock(&server, &product).await,
        json!({"on_hand": 7, "reserved": 0, "available": 7})
    );

    // Paying again changes nothing: the stock is sold exactly once.
    assert_eq!(
        pay_locally(&server, &secret, GOOD).await.ok(200)["status"],
        "succeeded"
    );
    assert_eq!(
        server
            .get(&format!("/api/v1/orders/{id}/payment"), Some(&token))
            .await
            .ok(200)["status"],
        "succeeded"
    );
    assert_eq!(stock(&server, &product).await["on_hand"], 7);
    // A paid order cannot be paid again.
    server
        .post(
            &format!("/api/v1/orders/{id}/payment"),
            Some(&token),
            json!({}),
        )
        .await
        .problem(409);

    let admin = server.admin_token().await;
    let events = server
        .get("/api/v1/admin/events?limit=1000", Some(&admin))
        .await;
    let kinds: Vec<&str> = events.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == id)
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["orders.created", "payments.succeeded", "orders.paid"]
    );
    server.finish().await;
}

async fn declines_and_bad_cards_then_a_success(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (token, product, order) = pending_order(&server, "bob@example.com", 2).await;
    let id = order["id"].as_str().unwrap();
    let payment = start_payment(&server, &token, &order).await;
    let secret = payment["client_secret"].as_str().unwrap().to_owned();

    let declined = pay_locally(&server, &secret, "4000 0000 0000 0002").await;
    assert_eq!(declined.ok(200)["status"], "failed");
    assert!(declined.body["last_error"]
        .as_str()
        .unwrap()
        .starts_with("card_declined"));
    let broke = pay_locally(&server, &secret, "4000000000009995").await;
    assert!(broke.ok(200)["last_error"]
        .as_str()
        .unwrap()
        .starts_with("insufficient_funds"));
    let recorded = server
        .get(&format!("/api/v1/orders/{id}/payment"), Some(&token))
        .await;
    assert_eq!(recorded.ok(200)["status"], "failed");
    assert!(recorded.body["last_error"]
        .as_str()
        .unwrap()
        .starts_with("insufficient_funds"));
    let current = server
        .get(&format!("/api/v1/orders/{id}"), Some(&token))
        .await;
    assert_eq!(current.ok(200)["status"], "pending_payment");

    // Malformed cards are refused before any attempt, naming the field.
    assert_eq!(
        pay_locally(&server, &secret, "4242 4242 4242 4241")
            .await
            .problem(422)["field"],
        "card_number"
    );
    let expired = server
        .post(
            "/api/v1/payments/local/confirm",
            None,
            json!({"client_secret": secret, "card_number": GOOD, "exp_month": 1, "exp_year": 2020, "cvc": "123"}),
        )
        .await;
    assert_eq!(expired.problem(422)["field"], "exp_year");
    let bad_cvc = server
        .post(
            "/api/v1/payments/local/confirm",
            None,
            json!({"client_secret": secret, "card_number": GOOD, "exp_month": 1, "exp_year": 2099, "cvc": "12"}),
        )
        .await;
    assert_eq!(bad_cvc.problem(422)["field"], "cvc");
    assert_eq!(stock(&server, &product).await["reserved"], 2);

    // Another card works.
    assert_eq!(
        pay_locally(&server, &secret, GOOD).await.ok(200)["status"],
        "succeeded"
    );
    order_status_becomes(&server, &token, &order, "paid").await;
    assert_eq!(
        stock(&server, &product).await,
        json!({"on_hand": 8, "reserved": 0, "available": 8})
    );
    server.finish().await;
}

async fn only_the_owner_pays_and_only_pending_orders(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (token, _product, order) = pending_order(&server, "cy@example.com", 1).await;
    let id = order["id"].as_str().unwrap();
    let other = server.customer_token("eve@example.com").await;
    server
        .post(
            &format!("/api/v1/orders/{id}/payment"),
            Some(&other),
            json!({}),
        )
        .await
        .problem(404);
    server
        .get(&format!("/api/v1/orders/{id}/payment"), Some(&other))
        .await
        .problem(404);
    server
        .post(&format!("/api/v1/orders/{id}/payment"), None, json!({}))
        .await
        .problem(401);
    pay_locally(&server, "pi_local_nope_secret_nope", GOOD)
        .await
        .problem(404);

    // Cancelling the order cancels its payment; it can no longer be paid.
    let secret = server
        .post(
            &format!("/api/v1/orders/{id}/payment"),
            Some(&token),
            json!({}),
        )
        .await
        .body["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&token),
            json!({}),
        )
        .await
        .ok(200);
    server
        .post(
            &format!("/api/v1/orders/{id}/payment"),
            Some(&token),
            json!({}),
        )
        .await
        .problem(409);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let payment = server
            .get(&format!("/api/v1/orders/{id}/payment"), Some(&token))
            .await;
        if payment.ok(200)["status"] == "cancelled" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "payment not cancelled: {}",
            payment.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pay_locally(&server, &secret, GOOD).await.problem(409);
    server.finish().await;
}

async fn the_flow_survives_a_restart_between_checkout_and_payment(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let (token, product, order) = pending_order(&server, "dee@example.com", 4).await;
    server.restart().await;
    let payment = start_payment(&server, &token, &order).await;
    let secret = payment["client_secret"].as_str().unwrap().to_owned();
    server.restart().await;
    assert_eq!(
        pay_locally(&server, &secret, GOOD).await.ok(200)["status"],
        "succeeded"
    );
    order_status_becomes(&server, &token, &order, "paid").await;
    assert_eq!(
        stock(&server, &product).await,
        json!({"on_hand": 6, "reserved": 0, "available": 6})
    );
    server.finish().await;
}

async fn an_admin_refund_returns_the_money_and_the_stock(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let (token, product, order) = pending_order(&server, "fay@example.com", 3).await;
    let id = order["id"].as_str().unwrap();
    // Not paid yet: nothing to refund.
    server
        .post(
            &format!("/api/v1/admin/orders/{id}/refund"),
            Some(&admin),
            json!({}),
        )
        .await
        .problem(409);
    let payment = start_payment(&server, &token, &order).await;
    let secret = payment["client_secret"].as_str().unwrap().to_owned();
    pay_locally(&server, &secret, GOOD).await.ok(200);
    order_status_becomes(&server, &token, &order, "paid").await;
    assert_eq!(stock(&server, &product).await["on_hand"], 7);

    server
        .post(
            &format!("/api/v1/admin/orders/{id}/refund"),
            Some(&token),
            json!({}),
        )
        .await
        .problem(403);
    let refunded = server
        .post(
            &format!("/api/v1/admin/orders/{id}/refund"),
            Some(&admin),
            json!({}),
        )
        .await;
    let refunded = refunded.ok(200);
    assert_eq!(refunded["status"], "refunded");
    let statuses: Vec<&str> = refunded["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending_payment", "paid", "refunded"]);
    assert_eq!(
        stock(&server, &product).await,
        json!({"on_hand": 10, "reserved": 0, "available": 10})
    );
    assert_eq!(
        server
            .get(&format!("/api/v1/orders/{id}/payment"), Some(&token))
            .await
            .ok(200)["status"],
        "refunded"
    );
    // Once is enough.
    server
        .post(
            &format!("/api/v1/admin/orders/{id}/refund"),
            Some(&admin),
            json!({}),
        )
        .await
        .problem(409);
    pay_locally(&server, &secret, GOOD).await.problem(409);
    let events = server
        .get("/api/v1/admin/events?limit=1000", Some(&admin))
        .await;
    let kinds: Vec<&str> = events.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == id)
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "orders.created",
            "payments.succeeded",
            "orders.paid",
            "payments.refunded",
            "orders.refunded"
        ]
    );
    server.finish().await;
}

async fn webhook(server: &TestServer, payload: &str, signature: Option<String>) -> common::Reply {
    let mut request = server
        .client
        .post(format!("{}/api/v1/webhooks/stripe", server.base))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    server.send_built(request).await
}

async fn stripe_webhooks_are_verified_and_harmless_when_repeated(backend: Backend) {
    const SECRET: &str = "whsec_pazar_test";
    let server = TestServer::start_with(backend, &[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
    let (token, product, order) = pending_order(&server, "gus@example.com", 2).await;
    let id = order["id"].as_str().unwrap();
    let payment = start_payment(&server, &token, &order).await;
    let secret = payment["client_secret"].as_str().unwrap().to_owned();
    let intent = secret.split("_secret_").next().unwrap().to_owned();
    let event = |kind: &str, object: Value| {
        json!({"id": format!("evt_{kind}"), "type": kind, "data": {"object": object}}).to_string()
    };
    let succeeded = event(
        "payment_intent.succeeded",
        json!({"id": intent, "status": "succeeded"}),
    );
    let failed = event(
        "payment_intent.payment_failed",
        json!({"id": intent, "status": "requires_payment_method",
               "last_payment_error": {"code": "card_declined", "message": "Your card was declined."}}),
    );
    let now = chrono::Utc::now().timestamp();
    let sign = |payload: &str, key: &str, at: i64| {
        pazar_payments::signature::sign(payload.as_bytes(), key, at)
    };

    // Refused: missing, tampered, wrong secret, stale. Nothing changes.
    assert_eq!(
        webhook(&server, &succeeded, None).await.problem(400)["field"],
        "Stripe-Signature"
    );
    let tampered = succeeded.replace("succeeded\"}", "succeeded\",\"x\":1}");
    webhook(&server, &tampered, Some(sign(&succeeded, SECRET, now)))
        .await
        .problem(400);
    webhook(
        &server,
        &succeeded,
        Some(sign(&succeeded, "whsec_wrong", now)),
    )
    .await
    .problem(400);
    webhook(
        &server,
        &succeeded,
        Some(sign(&succeeded, SECRET, now - 600)),
    )
    .await
    .problem(400);
    assert_eq!(
        server
            .get(&format!("/api/v1/orders/{id}/payment"), Some(&token))
            .await
            .ok(200)["status"],
        "requires_payment"
    );
    assert_eq!(
        server
            .get(&format!("/api/v1/orders/{id}"), Some(&token))
            .await
            .ok(200)["status"],
        "pending_payment"
    );

    // A decline, then the success.
    let declined = webhook(&server, &failed, Some(sign(&failed, SECRET, now))).await;
    assert_eq!(declined.ok(200)["status"], "failed");
    let recorded = server
        .get(&format!("/api/v1/orders/{id}/payment"), Some(&token))
        .await;
    assert_eq!(
        recorded.ok(200)["last_error"],
        "card_declined: Your card was declined."
    );
    let paid = webhook(&server, &succeeded, Some(sign(&succeeded, SECRET, now))).await;
    assert_eq!(paid.ok(200)["status"], "succeeded");
    order_status_becomes(&server, &token, &order, "paid").await;

    // Duplicates and late, out-of-order news change nothing.
    assert_eq!(
        webhook(&server, &succeeded, Some(sign(&succeeded, SECRET, now)))
            .await
            .ok(200)["status"],
        "succeeded"
    );
    assert_eq!(
        webhook(&server, &failed, Some(sign(&failed, SECRET, now)))
            .await
            .ok(200)["status"],
        "succeeded"
    );
    let unknown = event("payment_intent.succeeded", json!({"id": "pi_someone_else"}));
    assert_eq!(
        webhook(&server, &unknown, Some(sign(&unknown, SECRET, now)))
            .await
            .ok(200)["handled"],
        false
    );
    let other_type = event("customer.created", json!({"id": "cus_1"}));
    assert_eq!(
        webhook(&server, &other_type, Some(sign(&other_type, SECRET, now)))
            .await
            .ok(200)["handled"],
        false
    );
    assert_eq!(
        stock(&server, &product).await,
        json!({"on_hand": 8, "reserved": 0, "available": 8})
    );
    server.finish().await;
}
