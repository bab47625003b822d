//! The Kafka bridge (rdkafka). This first part is the **relay**: the outbox's
//! events produced to Kafka, one topic per service.
//!
//! - topic `{prefix}.{service}` (`pazar.catalog`, `pazar.orders`,
//!   `pazar.payments`, `pazar.users`) from the event type's first word;
//! - key: the event's subject, so one entity's events stay in order on one
//!   partition;
//! - value: the typed envelope as JSON; headers `type`, `version`, `id` (and
//!   `traceparent` when the event carries one);
//! - an idempotent producer with `acks=all`; the relay is an outbox subscriber,
//!   so an event counts as relayed (the subscriber's cursor moves past it) only
//!   after its delivery report, one subject's events are produced one after the
//!   other, and a broker outage is waited out with backoff, never dropped;
//! - topics are created at start where the broker allows it.
//!
//! Consumers (the bridge actors routing topics to actor messages), dead letters
//! and inbound stock come next (issue 13).

use async_trait::async_trait;
use pazar_actors::{DomainError, DomainEvent, EventSubscriber, EventType, StoredEvent};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::sync::RwLock;
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
}

impl KafkaSettings {
    /// Settings for `brokers` with the defaults: prefix `pazar`, 3 partitions.
    pub fn new(brokers: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            topic_prefix: "pazar".to_owned(),
            partitions: 3,
            delivery_timeout: Duration::from_secs(10),
        }
    }

    /// The topic of an event type: `{prefix}.{service}`.
    pub fn topic_of(&self, kind: &str) -> String {
        let service = kind.split('.').next().unwrap_or(kind);
        format!("{}.{service}", self.topic_prefix)
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

/// Creates the relay's topics where they do not exist yet.
pub async fn ensure_topics(settings: &KafkaSettings) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .create()?;
    let names = settings.topics();
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

/// The outbox relay: an outbox subscriber that produces every event to Kafka.
pub struct KafkaRelay {
    /// Replaced by a fresh one after a fatal error (an idempotent producer whose
    /// messages timed out may be fenced by the broker for good).
    producer: RwLock<FutureProducer>,
    settings: KafkaSettings,
}

/// An idempotent producer with `acks=all`.
fn producer(settings: &KafkaSettings) -> Result<FutureProducer, KafkaError> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            settings.delivery_timeout.as_millis().to_string(),
        )
        .set("linger.ms", "2")
        .create()?)
}

impl KafkaRelay {
    /// A relay to `settings.brokers`.
    pub fn new(settings: KafkaSettings) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: RwLock::new(producer(&settings)?),
            settings,
        })
    }

    /// Whether the brokers answer a metadata request within `timeout`.
    pub async fn broker_reachable(&self, timeout: Duration) -> Result<(), String> {
        let producer = self.current();
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

    fn current(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After a fatal producer error, starts over with a fresh producer (a new
    /// producer id): the failed event is retried by its delivery, and one that
    /// did reach the broker before is a repeat its consumers drop by event id.
    fn renew_if_fatal(&self, failed: &FutureProducer, error: &rdkafka::error::KafkaError) {
        let fatal = failed.client().fatal_error().is_some()
            || matches!(
                error.rdkafka_error_code(),
                Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch)
            );
        if !fatal {
            return;
        }
        match producer(&self.settings) {
            Ok(fresh) => {
                let mut current = self.producer.write().unwrap_or_else(|e| e.into_inner());
                // Another lane may have renewed it already.
                if std::ptr::eq(current.client().native_ptr(), failed.client().native_ptr()) {
                    tracing::warn!(%error, "the Kafka producer failed for good; starting a new one");
                    *current = fresh;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot start a new Kafka producer"),
        }
    }
}

#[async_trait]
impl EventSubscriber for KafkaRelay {
    fn name(&self) -> &str {
        "kafka-relay"
    }

    fn wants(&self, _kind: EventType) -> bool {
        true
    }

    async fn handle(&self, event: &StoredEvent, _: &DomainEvent) -> Result<(), DomainError> {
        let envelope = &event.event;
        let value = serde_json::to_vec(envelope).map_err(|e| {
            DomainError::Unavailable(format!("encoding event {}: {e}", envelope.id))
        })?;
        let id = envelope.id.to_string();
        let version = envelope.version.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "type",
                value: Some(envelope.kind.as_str()),
            })
            .insert(Header {
                key: "version",
                value: Some(version.as_str()),
            })
            .insert(Header {
                key: "id",
                value: Some(id.as_str()),
            });
        if let Some(traceparent) = &envelope.traceparent {
            headers = headers.insert(Header {
                key: "traceparent",
                value: Some(traceparent.as_str()),
            });
        }
        let topic = self.settings.topic_of(&envelope.kind);
        let record = FutureRecord::to(&topic)
            .key(envelope.subject.as_str())
            .payload(&value)
            .headers(headers);
        // Never waits for room longer than a delivery may take; a failure is
        // retried by the delivery with backoff, holding up only this subject.
        let producer = self.current();
        match producer.send(record, self.settings.delivery_timeout).await {
            Ok(_) => Ok(()),
            Err((error, _)) => {
                self.renew_if_fatal(&producer, &error);
                Err(DomainError::Unavailable(format!(
                    "producing event {} to {topic}: {error}",
                    envelope.id
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
