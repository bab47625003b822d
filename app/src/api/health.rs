//! Liveness and readiness.

use crate::AppState;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use std::time::Duration;

/// Liveness and readiness probes.
pub struct HealthApi {
    /// Shared state.
    pub state: Arc<AppState>,
}

/// Probe answer.
#[derive(Object)]
pub struct Status {
    /// `ok`, or what is wrong.
    pub status: String,
    /// With Kafka (`KAFKA_BROKERS`): `reachable`, or why the brokers are not. An
    /// unreachable broker does not make the process unready: the outbox keeps
    /// the events, and the consumers resume from their committed offsets.
    #[oai(skip_serializing_if_is_none)]
    pub kafka: Option<String>,
}

/// Readiness answer.
#[derive(ApiResponse)]
pub enum Readiness {
    /// The store answers and the supervision tree runs.
    #[oai(status = 200)]
    Ready(Json<Status>),
    /// Not ready; the body says why.
    #[oai(status = 503)]
    NotReady(Json<Status>),
}

#[OpenApi(tag = "Tag::Health")]
impl HealthApi {
    /// The process is up.
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Json<Status> {
        Json(Status {
            status: "ok".into(),
            kafka: None,
        })
    }

    /// The process can serve: the store is reachable and no supervisor gave up.
    #[oai(path = "/ready", method = "get")]
    async fn ready(&self) -> Readiness {
        let kafka = self
            .state
            .shop
            .kafka_reachable(Duration::from_secs(1))
            .await
            .map(|reachable| match reachable {
                Ok(()) => "reachable".to_owned(),
                Err(error) => format!("unreachable: {error}"),
            });
        if !self.state.shop.is_healthy() {
            return Readiness::NotReady(Json(Status {
                status: "the supervision tree has failed".into(),
                kafka,
            }));
        }
        match self.state.shop.store.ping().await {
            Ok(()) => Readiness::Ready(Json(Status {
                status: "ok".into(),
                kafka,
            })),
            Err(error) => {
                tracing::warn!(%error, "readiness: store unreachable");
                Readiness::NotReady(Json(Status {
                    status: "the store is unreachable".into(),
                    kafka,
                }))
            }
        }
    }
}

pub use pazar_http::openapi::Tag;
