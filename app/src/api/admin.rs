//! `/api/v1/admin`: supervision inspection, the outbox and the Kafka bridge's
//! dead letters (admin only).

use super::health::Tag;
use crate::AppState;

use chrono::{DateTime, Utc};
use pazar_actors::{DeadLetter, DomainError, Page};
use pazar_http::auth::BearerAuth;
use pazar_http::error::problem;
use pazar_http::params::UuidParam;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// The product search index.
#[derive(Object)]
pub struct SearchStatusDto {
    /// `tantivy` (embedded) or `elasticsearch`.
    pub backend: String,
    /// Products in the index.
    pub documents: u64,
    /// The outbox position of the last event it applied.
    pub last_applied_position: i64,
    /// Catalog events not yet applied (null over Kafka: see the catalog
    /// group's lag in the supervisor inspection).
    #[oai(nullable)]
    pub lag_events: Option<u64>,
    /// How long the oldest of them has waited, in seconds.
    #[oai(nullable)]
    pub lag_seconds: Option<f64>,
    /// When the last full rebuild finished.
    #[oai(nullable)]
    pub last_reindex: Option<DateTime<Utc>>,
    /// Whether a rebuild is running.
    pub reindexing: bool,
    /// Of the rebuild running: products in so far.
    #[oai(nullable)]
    pub reindex_done: Option<u64>,
    /// Of the rebuild running: products in all (0 while they are read).
    #[oai(nullable)]
    pub reindex_total: Option<u64>,
    /// Why the last rebuild an admin started failed, if it did.
    #[oai(nullable)]
    pub last_reindex_error: Option<String>,
}

/// Answer of a reindex request.
#[derive(poem_openapi::ApiResponse)]
pub enum ReindexStarted {
    /// The rebuild runs in the background.
    #[oai(status = 202)]
    Accepted,
}

/// A message a Kafka consumer group could not deliver.
#[derive(Object)]
pub struct DeadLetterDto {
    /// Its id.
    pub id: Uuid,
    /// The consumer group that gave up on it (`pazar.<role>`).
    pub group: String,
    /// The subscriber that failed; null when the message could not be read.
    #[oai(nullable)]
    pub subscriber: Option<String>,
    /// Where it was read.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    #[oai(nullable)]
    pub key: Option<String>,
    /// Its value, as text.
    pub payload: String,
    /// Its headers, as `[name, value]` pairs.
    pub headers: Vec<Vec<String>>,
    /// Why it was given up on.
    pub error: String,
    /// Attempts made.
    pub attempts: i32,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it was last replayed, if ever.
    #[oai(nullable)]
    pub replayed_at: Option<DateTime<Utc>>,
}

impl From<DeadLetter> for DeadLetterDto {
    fn from(letter: DeadLetter) -> Self {
        Self {
            id: letter.id,
            group: letter.group,
            subscriber: letter.subscriber,
            topic: letter.topic,
            partition: letter.partition,
            offset: letter.offset,
            key: letter.key,
            payload: letter.payload,
            headers: letter
                .headers
                .into_iter()
                .map(|(name, value)| vec![name, value])
                .collect(),
            error: letter.error,
            attempts: letter.attempts,
            created_at: letter.created_at,
            replayed_at: letter.replayed_at,
        }
    }
}

/// A page of dead letters.
#[derive(Object)]
pub struct DeadLetterListDto {
    /// Newest first.
    pub items: Vec<DeadLetterDto>,
}

/// Administration.
pub struct AdminApi {
    /// Shared state.
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "Tag::Admin")]
impl AdminApi {
    /// The supervision tree: supervisors, their actors, restarts, uptime.
    #[oai(path = "/api/v1/admin/supervisor", method = "get")]
    async fn supervisor(
        &self,
        auth: BearerAuth,
        #[oai(validator(minimum(value = "1"), maximum(value = "10000")))] limit: Query<Option<u32>>,
    ) -> poem::Result<Json<serde_json::Value>> {
        auth.0.require_admin()?;
        let limit = limit.0.unwrap_or(100).min(10_000) as usize;
        let snapshot = self.state.shop.snapshot(limit).await;
        Ok(Json(
            serde_json::to_value(snapshot).map_err(|_| pazar_http::ApiError::internal())?,
        ))
    }

    /// Outbox events after position `after`, in commit order (`limit` 1-1000), with
    /// the newest position (`head`) and each in-process subscriber's cursor.
    #[oai(path = "/api/v1/admin/events", method = "get")]
    async fn events(
        &self,
        auth: BearerAuth,
        #[oai(validator(minimum(value = "0")))] after: Query<Option<i64>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))] limit: Query<Option<i64>>,
    ) -> poem::Result<Json<serde_json::Value>> {
        auth.0.require_admin()?;
        let after = after.0.unwrap_or(0);
        if after < 0 {
            return Err(problem(DomainError::invalid("after", "must be zero or more")).into());
        }
        let limit = limit.0.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(
                problem(DomainError::invalid("limit", "must be between 1 and 1000")).into(),
            );
        }
        let events = self
            .state
            .shop
            .events
            .events_after(after, limit)
            .await
            .map_err(problem)?;
        let next_after = events.last().map(|e| e.seq).unwrap_or(after);
        let (head, cursors) = self.state.shop.events.progress().await.map_err(problem)?;
        let subscribers: serde_json::Map<String, serde_json::Value> = cursors
            .into_iter()
            .map(|(name, cursor)| (name, cursor.into()))
            .collect();
        Ok(Json(serde_json::json!({
            "items": events,
            "next_after": next_after,
            "head": head,
            "subscribers": subscribers,
        })))
    }

    /// Dead letters of the Kafka bridge, newest first (`limit` 1-100, default
    /// 20; `offset`): messages that could not be read or kept failing.
    #[oai(path = "/api/v1/admin/dead-letters", method = "get")]
    async fn dead_letters(
        &self,
        auth: BearerAuth,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<i64>>,
        #[oai(validator(minimum(value = "0")))] offset: Query<Option<i64>>,
    ) -> poem::Result<Json<DeadLetterListDto>> {
        auth.0.require_admin()?;
        let page = Page::parse(limit.0, offset.0).map_err(problem)?;
        let letters = self
            .state
            .shop
            .dead_letters()
            .list(page)
            .await
            .map_err(problem)?;
        Ok(Json(DeadLetterListDto {
            items: letters.into_iter().map(DeadLetterDto::from).collect(),
        }))
    }

    /// Feeds a dead letter back to its topic, with its key and original
    /// headers (409 when this process has no Kafka): subscribers that handled
    /// it before skip it, the one that failed gets it again.
    #[oai(path = "/api/v1/admin/dead-letters/:id/replay", method = "post")]
    async fn replay_dead_letter(
        &self,
        auth: BearerAuth,
        id: Path<UuidParam>,
    ) -> poem::Result<Json<DeadLetterDto>> {
        auth.0.require_admin()?;
        let letter = self
            .state
            .shop
            .dead_letters()
            .replay(id.0.parse("id")?)
            .await
            .map_err(problem)?;
        Ok(Json(letter.into()))
    }

    /// The product search index: backend, documents, the last event it
    /// applied, how far behind it is, the last reindex (409 in a process
    /// without the catalog's index).
    #[oai(path = "/api/v1/admin/search", method = "get")]
    async fn search_status(&self, auth: BearerAuth) -> poem::Result<Json<SearchStatusDto>> {
        auth.0.require_admin()?;
        let status = self.state.shop.search_status().await.map_err(problem)?;
        Ok(Json(SearchStatusDto {
            backend: status.backend.to_owned(),
            documents: status.documents,
            last_applied_position: status.position,
            lag_events: status.lag_events,
            lag_seconds: status.lag_seconds,
            last_reindex: status.last_reindex,
            reindexing: status.progress.is_some(),
            reindex_done: status.progress.map(|(done, _)| done),
            reindex_total: status.progress.map(|(_, total)| total),
            last_reindex_error: status.last_error,
        }))
    }

    /// Rebuilds the search index from the store in the background (searches
    /// keep being answered by the old index until the new one is swapped in):
    /// 202 when started, 409 while one runs.
    #[oai(path = "/api/v1/admin/search/reindex", method = "post")]
    async fn reindex(&self, auth: BearerAuth) -> poem::Result<ReindexStarted> {
        auth.0.require_admin()?;
        self.state.shop.start_reindex().await.map_err(problem)?;
        Ok(ReindexStarted::Accepted)
    }
}
