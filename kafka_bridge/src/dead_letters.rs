//! Dead letters: messages a consumer group could not deliver.
//!
//! A message that cannot be read (not JSON, not an event envelope, an unknown
//! type or version, a payload that does not match its schema) or whose handler
//! keeps failing past its attempts is **posted** here: kept in the store (the
//! `dead_letters` table, listed at `GET /api/v1/admin/dead-letters`) and
//! produced to `{prefix}.dlq` with its key, value and headers, plus headers
//! naming where it came from and why (`dlq.topic`, `dlq.partition`,
//! `dlq.offset`, `dlq.error`, `dlq.attempts`, `dlq.group`, `dlq.subscriber`).
//! Only then does the consumer move past it. Both steps are retried until they
//! succeed: a dead letter is never lost on the way.
//!
//! **Replay** (`POST /api/v1/admin/dead-letters/{id}/replay`) produces the
//! message again to its topic, with its key and original headers. Subscribers
//! that handled it before skip it (their processed-events record); the one that
//! failed gets it again.

use crate::{producer, KafkaError, KafkaSettings, SharedProducer};
use pazar_actors::{now, BridgeLedger, DeadLetter, DomainError};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The prefix of the headers a dead letter gains on the dead-letter topic.
const DLQ_HEADER: &str = "dlq.";

/// Posts dead letters and replays them.
pub struct DeadLetterOffice {
    ledger: Arc<dyn BridgeLedger>,
    producer: SharedProducer,
    settings: KafkaSettings,
}

impl DeadLetterOffice {
    /// An office producing to `settings.brokers` and keeping letters in `ledger`.
    pub fn new(settings: KafkaSettings, ledger: Arc<dyn BridgeLedger>) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: producer(&settings)?,
            ledger,
            settings,
        })
    }

    /// Keeps `message` as a dead letter of `group` (and `subscriber`, when one
    /// failed) and produces it to the dead-letter topic; returns once both are
    /// done, retrying while the store or the broker is unavailable.
    pub async fn post(
        &self,
        group: &str,
        subscriber: Option<&str>,
        message: &OwnedMessage,
        error: &str,
        attempts: u32,
    ) -> DeadLetter {
        let headers: Vec<(String, String)> = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| {
                        (
                            header.key.to_owned(),
                            String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let letter = DeadLetter {
            id: Uuid::now_v7(),
            group: group.to_owned(),
            subscriber: subscriber.map(str::to_owned),
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            payload: String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
            headers,
            error: error.to_owned(),
            attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
            created_at: now(),
            replayed_at: None,
        };
        tracing::warn!(
            group,
            subscriber,
            topic = %letter.topic,
            partition = letter.partition,
            offset = letter.offset,
            error,
            attempts,
            "dead letter"
        );
        self.until_done("record a dead letter", || async {
            self.ledger
                .add_dead_letter(&letter)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        let position = [
            ("topic", letter.topic.clone()),
            ("partition", letter.partition.to_string()),
            ("offset", letter.offset.to_string()),
            ("error", letter.error.clone()),
            ("attempts", letter.attempts.to_string()),
            ("group", letter.group.clone()),
            ("subscriber", letter.subscriber.clone().unwrap_or_default()),
        ];
        let mut headers = letter.headers.clone();
        headers.extend(
            position
                .into_iter()
                .map(|(name, value)| (format!("{DLQ_HEADER}{name}"), value)),
        );
        let topic = self.settings.dead_letter_topic();
        self.until_done("produce a dead letter", || {
            self.produce(&topic, letter.key.as_deref(), &letter.payload, &headers)
        })
        .await;
        letter
    }

    /// Feeds dead letter `id` back to its topic, with its key and original
    /// headers, and records when.
    pub async fn replay(&self, id: Uuid) -> Result<DeadLetter, DomainError> {
        let mut letter = self
            .ledger
            .dead_letter(id)
            .await?
            .ok_or(DomainError::NotFound {
                what: "dead letter",
            })?;
        let original: Vec<(String, String)> = letter
            .headers
            .iter()
            .filter(|(name, _)| !name.starts_with(DLQ_HEADER))
            .cloned()
            .collect();
        self.produce(
            &letter.topic,
            letter.key.as_deref(),
            &letter.payload,
            &original,
        )
        .await
        .map_err(DomainError::Unavailable)?;
        let at = now();
        self.ledger.mark_replayed(id, at).await?;
        letter.replayed_at = Some(at);
        Ok(letter)
    }

    /// Whether the brokers answer a metadata request within `timeout`.
    pub async fn broker_reachable(&self, timeout: Duration) -> Result<(), String> {
        crate::reachable(self.producer.clone(), timeout).await
    }

    /// Dead letters, newest first.
    pub async fn list(&self, limit: i64, offset: i64) -> Result<Vec<DeadLetter>, DomainError> {
        Ok(self.ledger.dead_letters(limit, offset).await?)
    }

    async fn produce(
        &self,
        topic: &str,
        key: Option<&str>,
        payload: &str,
        headers: &[(String, String)],
    ) -> Result<(), String> {
        let headers = headers
            .iter()
            .fold(OwnedHeaders::new(), |all, (name, value)| {
                all.insert(Header {
                    key: name,
                    value: Some(value.as_str()),
                })
            });
        let mut record = FutureRecord::to(topic).payload(payload).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        self.producer
            .send(record, self.settings.delivery_timeout)
            .await
            .map(|_| ())
            .map_err(|(error, _)| format!("producing to {topic}: {error}"))
    }

    /// Runs `step` until it succeeds, waiting longer after each failure.
    async fn until_done<F, Fut>(&self, what: &str, step: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let mut delay = self.settings.retry_backoff;
        while let Err(error) = step().await {
            tracing::warn!(%error, "cannot {what}; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.settings.max_backoff.max(Duration::from_millis(1)));
        }
    }
}
