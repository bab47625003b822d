//! `/api/v1/admin`: supervision inspection and the outbox (admin only).

use super::health::Tag;
use crate::AppState;

use pazar_actors::DomainError;
use pazar_http::auth::BearerAuth;
use pazar_http::error::problem;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::OpenApi;
use std::sync::Arc;

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
}
