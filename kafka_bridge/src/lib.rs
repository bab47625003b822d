//! The Kafka bridge (rdkafka): Pazar's events between its roles over Kafka.
//!
//! When `KAFKA_BROKERS` is set, the outbox is no longer read by every subscriber:
//!
//! - the [`relay`] (in the process that runs the orders role) produces every
//!   outbox event to `{prefix}.{service}`, keyed by subject, and counts it sent
//!   only after the broker's acknowledgement;
//! - a [`bridge`] actor per role — its consumer group `{prefix}.{role}` — consumes
//!   the topics its subscribers need and hands each message to them as the
//!   routing table (`pazar_events::routing`) says, ordered per subject and
//!   concurrent across subjects, each subscriber at most once per event id (the
//!   store's processed-events record), committing a partition's offset only
//!   past messages every subscriber has finished;
//! - a message that cannot be read, or keeps failing, becomes a
//!   [`dead_letters`] entry: produced to `{prefix}.dlq`, kept in the store, and
//!   replayable by an operator.

pub mod bridge;
pub mod dead_letters;
pub mod relay;
pub mod tansu;

pub use bridge::{
    Bridge, ConsumerSnapshot, Group, InboundError, InboundHandler, PartitionSnapshot,
};
pub use dead_letters::DeadLetterOffice;
pub use relay::KafkaRelay;

use pazar_actors::EventType;
use pazar_events::routing;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, Producer};
use std::time::Duration;

/// How Pazar reaches Kafka.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// `host:port[,host:port…]` (`KAFKA_BROKERS`).
    pub brokers: String,
    /// Topic names start with this (`PAZAR_KAFKA_TOPIC_PREFIX`, default `pazar`).
    pub topic_prefix: String,
    /// Partitions of the topics Pazar creates (`PAZAR_KAFKA_PARTITIONS`).
    pub partitions: i32,
    /// How long one produce may wait for the broker before it is retried.
    pub delivery_timeout: Duration,
    /// A consumer silent this long is out of its group
    /// (`PAZAR_KAFKA_SESSION_TIMEOUT`, librdkafka's `session.timeout.ms`).
    pub session_timeout: Duration,
    /// The longest a consumer may go between two reads before it leaves its
    /// group (`PAZAR_KAFKA_MAX_POLL_INTERVAL`, `max.poll.interval.ms`). It also
    /// bounds how long a group's first join waits, so it is short by default.
    pub max_poll_interval: Duration,
    /// Attempts at a message before it becomes a dead letter
    /// (`PAZAR_KAFKA_MAX_ATTEMPTS`). A handler that says its store or a service
    /// it needs is unavailable is retried without limit: an outage is waited
    /// out, not dead-lettered.
    pub max_attempts: u32,
    /// The first retry delay, doubling up to [`max_backoff`](Self::max_backoff)
    /// (`PAZAR_KAFKA_RETRY_BACKOFF`).
    pub retry_backoff: Duration,
    /// The longest retry delay.
    pub max_backoff: Duration,
    /// How long a consumer's fetch may wait at the broker for new messages
    /// (`PAZAR_KAFKA_FETCH_WAIT`, librdkafka's `fetch.wait.max.ms`): the most an
    /// event waits on a broker that does not answer a fetch as soon as a
    /// message arrives.
    pub fetch_wait: Duration,
}

impl KafkaSettings {
    /// Settings for `brokers` with the defaults: prefix `pazar`, 3 partitions.
    pub fn new(brokers: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            topic_prefix: "pazar".to_owned(),
            partitions: 3,
            delivery_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(6),
            max_poll_interval: Duration::from_secs(10),
            max_attempts: 5,
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            fetch_wait: Duration::from_millis(10),
        }
    }

    /// The topic of an event type: `{prefix}.{service}`.
    pub fn topic_of(&self, kind: &str) -> String {
        format!("{}.{}", self.topic_prefix, routing::service_of(kind))
    }

    /// Every topic the relay produces to.
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = EventType::ALL
            .iter()
            .map(|kind| self.topic_of(kind.as_str()))
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// An inbound topic: `{prefix}.{name}` (`pazar.inbound.stock`).
    pub fn inbound_topic(&self, name: &str) -> String {
        format!("{}.{name}", self.topic_prefix)
    }

    /// Where dead letters go: `{prefix}.dlq`.
    pub fn dead_letter_topic(&self) -> String {
        format!("{}.dlq", self.topic_prefix)
    }

    /// The consumer group of a role: `{prefix}.{role}`.
    pub fn group_of(&self, role: &str) -> String {
        format!("{}.{role}", self.topic_prefix)
    }
}

/// What can go wrong setting Kafka up.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// librdkafka refused the configuration or the broker an admin request.
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// The broker refused to create a topic.
    #[error("kafka: creating topic {topic}: {code}")]
    Topic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
}

/// Creates the topics (the services', the dead letters' and the inbound ones)
/// where they do not exist yet.
pub async fn ensure_topics(settings: &KafkaSettings) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .create()?;
    let mut names = settings.topics();
    names.push(settings.dead_letter_topic());
    names.extend(
        routing::INBOUND
            .iter()
            .map(|route| settings.inbound_topic(route.topic)),
    );
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, settings.partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaError::Topic { topic, code }),
        }
    }
    Ok(())
}

/// Produces `messages` (key, value) to `topic` and waits until the broker has
/// acknowledged every one; the number produced.
pub async fn produce_all(
    settings: &KafkaSettings,
    topic: &str,
    messages: &[(String, Vec<u8>)],
) -> Result<usize, KafkaError> {
    let producer = producer(settings)?;
    let sends = messages.iter().map(|(key, value)| {
        producer.send(
            rdkafka::producer::FutureRecord::to(topic)
                .key(key.as_str())
                .payload(value.as_slice()),
            settings.delivery_timeout,
        )
    });
    for sent in futures_util::future::join_all(sends).await {
        sent.map_err(|(error, _)| KafkaError::Client(error))?;
    }
    Ok(messages.len())
}

/// Whether the brokers `producer` talks to answer a metadata request within
/// `timeout` (off the async runtime: the request blocks).
pub(crate) async fn reachable(producer: SharedProducer, timeout: Duration) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(None, timeout)
            .map(|_| ())
            .map_err(|error| error.to_string())
    })
    .await
    .map_err(|error| error.to_string())?
}

/// A Kafka client dropped on a thread of its own. Dropping a producer flushes
/// its queue and joins its thread; dropping a consumer leaves its group. Both
/// wait for the broker — on a runtime worker that would stall every task it
/// runs, and with the broker gone (a process shutting down after it) they may
/// never return, which would hang the runtime's shutdown. So the client's last
/// handle hands it to a detached thread, which the process's exit ends if it
/// is still waiting.
pub struct OffRuntime<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> OffRuntime<T> {
    /// Wraps `client`.
    pub fn new(client: T) -> Self {
        Self(Some(client))
    }
}

impl<T: Send + 'static> std::ops::Deref for OffRuntime<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_ref().expect("present until dropped")
    }
}

impl<T: Send + 'static> Drop for OffRuntime<T> {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            let spawned = std::thread::Builder::new()
                .name("kafka-close".into())
                .spawn(move || drop(client));
            if let Err(error) = spawned {
                tracing::warn!(%error, "no thread to close a Kafka client on; leaking it");
            }
        }
    }
}

/// A producer shared by its users, closed off the runtime when the last lets go.
pub(crate) type SharedProducer = std::sync::Arc<OffRuntime<FutureProducer>>;

/// An idempotent producer with `acks=all`.
pub(crate) fn producer(settings: &KafkaSettings) -> Result<SharedProducer, KafkaError> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            settings.delivery_timeout.as_millis().to_string(),
        )
        .set("linger.ms", "2")
        .create()?;
    Ok(std::sync::Arc::new(OffRuntime::new(producer)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use std::time::Instant;

    /// A consumer that joined its group is dropped at once, even when its
    /// broker is gone: closing it (which waits for the broker to hear it leave)
    /// happens on a thread of its own. Dropped on a runtime worker, it blocked
    /// that worker, and a test's runtime never finished shutting down.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consumer_whose_broker_is_gone_is_dropped_without_waiting() {
        let broker = crate::tansu::Tansu::start().await.unwrap();
        let settings = KafkaSettings::new(&broker.address);
        ensure_topics(&settings).await.unwrap();
        let topic = settings.topic_of("orders.created");
        let message = [("order-1".to_owned(), b"{}".to_vec())];
        produce_all(&settings, &topic, &message).await.unwrap();
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("group.id", "off-runtime-test")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("max.poll.interval.ms", "10000")
            .create()
            .unwrap();
        consumer.subscribe(&[&topic]).unwrap();
        let consumer = OffRuntime::new(consumer);
        // Reading a message means the consumer has joined its group.
        tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a message within 30 s")
            .unwrap();
        broker.stop().await;
        let dropping = Instant::now();
        drop(consumer);
        assert!(
            dropping.elapsed() < Duration::from_millis(100),
            "the drop took {:?}",
            dropping.elapsed()
        );
    }

    #[test]
    fn every_event_type_has_its_services_topic() {
        let settings = KafkaSettings::new("127.0.0.1:9092");
        assert_eq!(settings.topic_of("orders.created"), "pazar.orders");
        assert_eq!(
            settings.topics(),
            [
                "pazar.catalog",
                "pazar.orders",
                "pazar.payments",
                "pazar.users"
            ]
        );
    }
}
