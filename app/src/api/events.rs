//! The published event schemas: the contract of what Pazar's services tell each
//! other (the outbox today, Kafka topics next).

use super::health::Tag;
use poem_openapi::payload::Json;
use poem_openapi::OpenApi;

/// The event contract.
pub struct EventsApi;

#[OpenApi(tag = "Tag::Events")]
impl EventsApi {
    /// The JSON Schema of the event envelope and of every event type's payload at
    /// its current version (the same document as `events/schemas.json`).
    #[oai(path = "/api/v1/events/schemas", method = "get")]
    async fn schemas(&self) -> Json<serde_json::Value> {
        Json(pazar_events::schemas())
    }
}
