//! The **relay**: the outbox's events produced to Kafka, one topic per service.
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
//!   other, and a broker outage is waited out with backoff, never dropped.

use crate::{producer, KafkaError, KafkaSettings, SharedProducer};
use async_trait::async_trait;
use pazar_actors::{DomainError, DomainEvent, EventSubscriber, EventType, StoredEvent};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureRecord, Producer};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// The outbox relay: an outbox subscriber that produces every event to Kafka.
pub struct KafkaRelay {
    /// Replaced by a fresh one after a fatal error (an idempotent producer whose
    /// messages timed out may be fenced by the broker for good).
    producer: RwLock<SharedProducer>,
    /// When the producer was last replaced: at most once a second, so a broker
    /// that fences each new producer too does not start a storm of them.
    renewed_at: Mutex<Option<Instant>>,
    settings: KafkaSettings,
}

impl KafkaRelay {
    /// A relay to `settings.brokers`.
    pub fn new(settings: KafkaSettings) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: RwLock::new(producer(&settings)?),
            renewed_at: Mutex::new(None),
            settings,
        })
    }

    /// Whether the brokers answer a metadata request within `timeout`.
    pub async fn broker_reachable(&self, timeout: Duration) -> Result<(), String> {
        crate::reachable(self.current(), timeout).await
    }

    fn current(&self) -> SharedProducer {
        self.producer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After a fatal producer error, starts over with a fresh producer (a new
    /// producer id): the failed event is retried by its delivery, and one that
    /// did reach the broker before is a repeat its consumers drop by event id.
    fn renew_if_fatal(&self, failed: &SharedProducer, error: &rdkafka::error::KafkaError) {
        let fatal = failed.client().fatal_error().is_some()
            || matches!(
                error.rdkafka_error_code(),
                Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch)
            );
        if !fatal {
            return;
        }
        {
            let mut renewed_at = self.renewed_at.lock().unwrap_or_else(|e| e.into_inner());
            if renewed_at.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *renewed_at = Some(Instant::now());
        }
        let mut current = self.producer.write().unwrap_or_else(|e| e.into_inner());
        // Another lane may have renewed it already.
        if !std::ptr::eq(current.client().native_ptr(), failed.client().native_ptr()) {
            return;
        }
        match producer(&self.settings) {
            Ok(fresh) => {
                tracing::warn!(%error, "the Kafka producer failed for good; starting a new one");
                // The retired producer closes off the runtime once its last
                // send lets go of it.
                *current = fresh;
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
