//! `/api/v1/admin`: supervision inspection and manual stock holds (admin only).

use super::health::Tag;
use super::{JsonBody, StockDto, UuidParam};
use crate::AppState;
use chrono::{DateTime, Duration, Utc};
use pazar_actors::{DomainError, OrderId, ProductId};
use pazar_http::auth::BearerAuth;
use pazar_http::error::problem;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use std::sync::Arc;
use uuid::Uuid;

/// Administration.
pub struct AdminApi {
    /// Shared state.
    pub state: Arc<AppState>,
}

/// A manual hold of stock for an order (checkout does this itself once orders exist).
#[derive(Object, Deserialize)]
pub struct ReservationRequest {
    /// The order the units are held for (a new id when absent).
    #[oai(nullable)]
    pub order_id: Option<Uuid>,
    /// Units, 1 to 1,000,000.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
    pub quantity: i64,
    /// How long the hold lasts, in seconds (default 900, at most 30 days).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "2592000")))]
    pub ttl_seconds: Option<i64>,
}

/// A hold that was taken.
#[derive(Object)]
pub struct ReservationDto {
    /// The order.
    pub order_id: Uuid,
    /// Units held.
    pub quantity: i64,
    /// When the hold lapses.
    pub expires_at: DateTime<Utc>,
    /// The product's stock after the hold.
    pub stock: StockDto,
}

/// Answer of a reservation.
#[derive(ApiResponse)]
pub enum Reserved {
    /// The units are held (durably).
    #[oai(status = 201)]
    Created(Json<ReservationDto>),
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

    /// Hold units of a product for an order.
    #[oai(path = "/api/v1/admin/products/:id/reservations", method = "post")]
    async fn reserve(
        &self,
        auth: BearerAuth,
        id: Path<UuidParam>,
        body: JsonBody<ReservationRequest>,
    ) -> poem::Result<Reserved> {
        auth.0.require_admin()?;
        let request = body.0;
        let ttl = request.ttl_seconds.unwrap_or(900);
        if !(1..=30 * 24 * 3600).contains(&ttl) {
            return Err(problem(DomainError::invalid(
                "ttl_seconds",
                "must be between 1 and 2592000",
            ))
            .into());
        }
        let order_id = request.order_id.map(OrderId).unwrap_or_default();
        let expires_at = pazar_actors::now() + Duration::seconds(ttl);
        let levels = self
            .state
            .shop
            .reserve(
                ProductId(id.0.parse("id")?),
                order_id,
                request.quantity,
                expires_at,
            )
            .await
            .map_err(problem)?;
        Ok(Reserved::Created(Json(ReservationDto {
            order_id: order_id.0,
            quantity: request.quantity,
            expires_at,
            stock: levels.into(),
        })))
    }

    /// Release an order's hold on a product.
    #[oai(
        path = "/api/v1/admin/products/:id/reservations/:order_id",
        method = "delete"
    )]
    async fn release(
        &self,
        auth: BearerAuth,
        id: Path<UuidParam>,
        order_id: Path<UuidParam>,
    ) -> poem::Result<Json<StockDto>> {
        auth.0.require_admin()?;
        let levels = self
            .state
            .shop
            .release(
                ProductId(id.0.parse("id")?),
                OrderId(order_id.0.parse("order_id")?),
            )
            .await
            .map_err(problem)?;
        Ok(Json(levels.into()))
    }

    /// Turn an order's hold into a sale (on_hand decreases).
    #[oai(
        path = "/api/v1/admin/products/:id/reservations/:order_id/commit",
        method = "post"
    )]
    async fn commit(
        &self,
        auth: BearerAuth,
        id: Path<UuidParam>,
        order_id: Path<UuidParam>,
    ) -> poem::Result<Json<StockDto>> {
        auth.0.require_admin()?;
        let levels = self
            .state
            .shop
            .commit(
                ProductId(id.0.parse("id")?),
                OrderId(order_id.0.parse("order_id")?),
            )
            .await
            .map_err(problem)?;
        Ok(Json(levels.into()))
    }
}
