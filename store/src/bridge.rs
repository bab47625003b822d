//! The Kafka bridge's records (`BridgeLedger`), on either database: the events
//! each subscriber has processed, and the dead letters.

use crate::db::{self, Conn, Param, Pool, Row};
use crate::errors::corrupt;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::{BridgeLedger, DeadLetter, Handled, StoreError};
use uuid::Uuid;

/// The `processed_events` and `dead_letters` tables.
pub struct Ledger {
    pub(crate) pool: Pool,
}

const COLUMNS: &str = "id, consumer_group, subscriber, topic, kafka_partition, kafka_offset, \
     message_key, payload, headers, error, attempts, created_at, replayed_at";

/// Records, in a group commit's transaction, the messages its writes apply
/// (one INSERT; a record already there stays as it is).
pub(crate) async fn record_handled(conn: Conn<'_>, handled: &[Handled]) -> Result<(), StoreError> {
    if handled.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "insert into processed_events (subscriber, event_id) values {} \
         on conflict (subscriber, event_id) do nothing",
        db::rows(handled.len(), 2)
    );
    let mut insert = db::sql(&sql);
    for record in handled {
        let values: [&dyn Param; 2] = [&record.subscriber, &record.message];
        insert = insert.bind_all(values);
    }
    insert.execute_in(conn).await.map(|_| ())
}

fn letter_from_row(row: &Row) -> Result<DeadLetter, StoreError> {
    let headers: String = row.get("headers")?;
    Ok(DeadLetter {
        id: row.get("id")?,
        group: row.get("consumer_group")?,
        subscriber: row.get("subscriber")?,
        topic: row.get("topic")?,
        partition: row.get("kafka_partition")?,
        offset: row.get("kafka_offset")?,
        key: row.get("message_key")?,
        payload: row.get("payload")?,
        headers: serde_json::from_str(&headers).map_err(|e| corrupt("dead letter headers", e))?,
        error: row.get("error")?,
        attempts: row.get("attempts")?,
        created_at: row.get("created_at")?,
        replayed_at: row.get("replayed_at")?,
    })
}

#[async_trait]
impl BridgeLedger for Ledger {
    async fn processed(&self, subscriber: &str, event: Uuid) -> Result<bool, StoreError> {
        let subscriber = subscriber.to_owned();
        Ok(
            db::sql("select 1 from processed_events where subscriber = $1 and event_id = $2")
                .bind(&subscriber)
                .bind(&event)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    async fn mark_processed(&self, subscriber: &str, event: Uuid) -> Result<(), StoreError> {
        let subscriber = subscriber.to_owned();
        db::sql(
            "insert into processed_events (subscriber, event_id) values ($1, $2) \
             on conflict (subscriber, event_id) do nothing",
        )
        .bind(&subscriber)
        .bind(&event)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    async fn add_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let headers = serde_json::to_string(&letter.headers).unwrap_or_else(|_| "[]".into());
        db::sql(&format!(
            "insert into dead_letters ({COLUMNS}) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             on conflict (id) do nothing"
        ))
        .bind(&letter.id)
        .bind(&letter.group)
        .bind(&letter.subscriber)
        .bind(&letter.topic)
        .bind(&letter.partition)
        .bind(&letter.offset)
        .bind(&letter.key)
        .bind(&letter.payload)
        .bind(&headers)
        .bind(&letter.error)
        .bind(&letter.attempts)
        .bind(&letter.created_at)
        .bind(&letter.replayed_at)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    async fn dead_letters(&self, limit: i64, offset: i64) -> Result<Vec<DeadLetter>, StoreError> {
        db::sql(&format!(
            "select {COLUMNS} from dead_letters order by created_at desc, id desc \
             limit $1 offset $2"
        ))
        .bind(&limit)
        .bind(&offset)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(letter_from_row)
        .collect()
    }

    async fn dead_letter(&self, id: Uuid) -> Result<Option<DeadLetter>, StoreError> {
        db::sql(&format!("select {COLUMNS} from dead_letters where id = $1"))
            .bind(&id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(letter_from_row)
            .transpose()
    }

    async fn mark_replayed(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        db::sql("update dead_letters set replayed_at = $1 where id = $2")
            .bind(&at)
            .bind(&id)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}
