//! Pazar's published language: the events its services tell each other.
//!
//! Every state change other services care about is written to the outbox as an
//! [`Event`]: a small envelope (id, type, subject, time, source, version) around a
//! typed payload. This crate is the contract of those payloads, kept apart from the
//! domain types so that an internal rename never changes what goes over the wire
//! (the outbox today, Kafka next):
//!
//! - one struct per event type, in the module of the service that publishes it
//!   ([`catalog`], [`users`], [`orders`], [`payments`]), each implementing
//!   [`Payload`] with its [`EventType`];
//! - [`EventType::version`], the version of each type's payload schema: a change
//!   that old readers cannot read raises it;
//! - [`DomainEvent::decode`], the one way to read an event: an unknown type, an
//!   unsupported version or a payload that does not match is an [`EventError`],
//!   so a consumer refuses it whole instead of acting on half of it;
//! - [`schemas`], the JSON Schema of the envelope and of every payload, generated
//!   from the types, served at `GET /api/v1/events/schemas` and checked in as
//!   `events/schemas.json` (a test fails when the two differ);
//! - [`routing`], the one table of who reacts to which event types.

pub mod catalog;
pub mod orders;
pub mod payments;
pub mod routing;
pub mod users;

use chrono::{DateTime, SubsecRound, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where events say they come from.
pub const SOURCE: &str = "pazar";

/// The current time at microsecond precision: what both databases store, so a
/// timestamp reads back exactly as it was written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The envelope of every event (CloudEvents-like), as stored in the outbox and
/// sent over the wire. `data` is the payload of `type` at `version`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Unique, time-ordered (UUIDv7); consumers deduplicate by it.
    pub id: Uuid,
    /// What happened, e.g. `orders.created`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The aggregate it happened to (its id); the Kafka key, so one subject's
    /// events stay in order.
    pub subject: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Who says so.
    pub source: String,
    /// Version of the `data` schema of this type.
    pub version: i32,
    /// The payload.
    pub data: serde_json::Value,
    /// The W3C trace context of the request that caused it, if it was traced:
    /// its handling, in whichever process, continues that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Event {
    /// The event carrying `payload`, about `subject`, at its type's current version.
    pub fn of<P: Payload>(subject: impl ToString, payload: &P) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind: P::TYPE.as_str().to_owned(),
            subject: subject.to_string(),
            time: now(),
            source: SOURCE.to_owned(),
            version: P::TYPE.version(),
            // Payloads are plain structs of strings, numbers and timestamps.
            data: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
            traceparent: None,
        }
    }

    /// Its type, if it is one this build knows.
    pub fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.kind)
    }
}

/// Implemented by the payload struct of each event type.
pub trait Payload: Serialize + DeserializeOwned + JsonSchema {
    /// The type whose payload this is.
    const TYPE: EventType;
}

/// Why an event cannot be read. The consumer refuses the event whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// This build knows no event of this type.
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    /// The type is known but not at this version.
    #[error("{kind} version {version} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// The event type.
        kind: EventType,
        /// The version the event says it is.
        version: i32,
        /// The version this build reads.
        supported: i32,
    },
    /// The payload does not match its type's schema.
    #[error("{kind} payload does not match its schema: {message}")]
    BadPayload {
        /// The event type.
        kind: EventType,
        /// What serde said (the field and what was wrong).
        message: String,
    },
}

macro_rules! event_types {
    ($($variant:ident = $name:literal, version $version:literal, $payload:ty;)*) => {
        /// Every event type Pazar publishes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $(
                #[doc = concat!("`", $name, "`: [`", stringify!($payload), "`].")]
                $variant,
            )*
        }

        impl EventType {
            /// All of them, in the order of the published schemas.
            pub const ALL: &'static [EventType] = &[$(Self::$variant),*];

            /// The type's name on the wire, e.g. `orders.created`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// The version of the payload schema this build writes and reads.
            pub fn version(self) -> i32 {
                match self {
                    $(Self::$variant => $version,)*
                }
            }

            /// The JSON Schema of the payload.
            pub fn schema(self) -> serde_json::Value {
                match self {
                    $(Self::$variant => schema_of::<$payload>(),)*
                }
            }
        }

        /// A decoded event payload: one variant per [`EventType`].
        #[derive(Clone, Debug, PartialEq)]
        pub enum DomainEvent {
            $(
                #[doc = concat!("`", $name, "`.")]
                $variant($payload),
            )*
        }

        impl DomainEvent {
            /// Reads the payload of `event`: its type must be known, its version the
            /// one this build reads, and its data must match the type's schema.
            pub fn decode(event: &Event) -> Result<Self, EventError> {
                let kind = EventType::parse(&event.kind)
                    .ok_or_else(|| EventError::UnknownType(event.kind.clone()))?;
                if event.version != kind.version() {
                    return Err(EventError::UnsupportedVersion {
                        kind,
                        version: event.version,
                        supported: kind.version(),
                    });
                }
                let bad = |error: serde_json::Error| EventError::BadPayload {
                    kind,
                    message: error.to_string(),
                };
                Ok(match kind {
                    $(EventType::$variant => {
                        Self::$variant(<$payload>::deserialize(&event.data).map_err(bad)?)
                    })*
                })
            }

            /// Its type.
            pub fn event_type(&self) -> EventType {
                match self {
                    $(Self::$variant(_) => EventType::$variant,)*
                }
            }
        }

        $(
            impl Payload for $payload {
                const TYPE: EventType = EventType::$variant;
            }

            impl From<$payload> for DomainEvent {
                fn from(payload: $payload) -> Self {
                    Self::$variant(payload)
                }
            }
        )*
    };
}

// The one list of event types: name on the wire, payload schema version, payload.
event_types! {
    ProductUpserted = "catalog.product_upserted", version 1, catalog::ProductUpserted;
    StockChanged = "catalog.stock_changed", version 1, catalog::StockChanged;
    ProductDeleted = "catalog.product_deleted", version 1, catalog::ProductDeleted;
    UserRegistered = "users.registered", version 1, users::UserRegistered;
    OrderCreated = "orders.created", version 1, orders::OrderCreated;
    OrderPaid = "orders.paid", version 1, orders::OrderPaid;
    OrderFulfilled = "orders.fulfilled", version 1, orders::OrderFulfilled;
    OrderCancelled = "orders.cancelled", version 1, orders::OrderCancelled;
    OrderExpired = "orders.expired", version 1, orders::OrderExpired;
    OrderRefunded = "orders.refunded", version 1, orders::OrderRefunded;
    PaymentSucceeded = "payments.succeeded", version 1, payments::PaymentSucceeded;
    PaymentFailed = "payments.failed", version 1, payments::PaymentFailed;
    PaymentCancelled = "payments.cancelled", version 1, payments::PaymentCancelled;
    PaymentRefunded = "payments.refunded", version 1, payments::PaymentRefunded;
}

impl EventType {
    /// The type named `raw`, if this build knows it.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.as_str() == raw)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of money in a currency's minor unit (cents for EUR).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Money {
    /// Minor units, e.g. 1999 for 19.99 EUR; never negative.
    #[schemars(range(min = 0))]
    pub amount: i64,
    /// ISO 4217 code, upper case, e.g. `EUR`.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
}

fn schema_of<T: JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(serde_json::Value::Null)
}

/// The published schemas: the envelope's, and each type's payload schema with
/// its version. Served at `GET /api/v1/events/schemas`; `events/schemas.json`
/// holds the same document.
pub fn schemas() -> serde_json::Value {
    let events: Vec<serde_json::Value> = EventType::ALL
        .iter()
        .map(|kind| {
            serde_json::json!({
                "type": kind.as_str(),
                "version": kind.version(),
                "data": kind.schema(),
            })
        })
        .collect();
    serde_json::json!({
        "description": "Pazar's events: every event is an envelope whose `data` is the payload \
                        of its `type` at its `version`. Consumers refuse an unknown type or version.",
        "envelope": schema_of::<Event>(),
        "events": events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_created() -> Event {
        let snapshot = orders::OrderSnapshot {
            id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            status: orders::OrderStatus::PendingPayment,
            lines: vec![orders::OrderLine {
                product_id: Uuid::now_v7(),
                name: "Mug".into(),
                sku: "MUG-1".into(),
                quantity: 2,
                unit_price: Money {
                    amount: 1250,
                    currency: "EUR".into(),
                },
            }],
            total: Money {
                amount: 2500,
                currency: "EUR".into(),
            },
            created_at: now(),
            expires_at: now(),
            history: vec![],
        };
        Event::of(snapshot.id, &orders::OrderCreated(snapshot))
    }

    #[test]
    fn an_event_reads_back_as_the_payload_it_was_made_from() {
        let event = order_created();
        assert_eq!(event.kind, "orders.created");
        assert_eq!(event.version, 1);
        let DomainEvent::OrderCreated(orders::OrderCreated(order)) =
            DomainEvent::decode(&event).unwrap()
        else {
            panic!("decoded as another type");
        };
        assert_eq!(order.lines[0].sku, "MUG-1");
        assert_eq!(event.data["status"], "pending_payment");
    }

    #[test]
    fn unknown_types_versions_and_payloads_are_refused_whole() {
        let mut event = order_created();
        event.kind = "orders.teleported".into();
        assert_eq!(
            DomainEvent::decode(&event),
            Err(EventError::UnknownType("orders.teleported".into()))
        );
        let mut event = order_created();
        event.version = 2;
        let error = DomainEvent::decode(&event).unwrap_err();
        assert_eq!(
            error.to_string(),
            "orders.created version 2 is not supported (this build reads version 1)"
        );
        let mut event = order_created();
        event.data["total"]["amount"] = serde_json::json!("a lot");
        let error = DomainEvent::decode(&event).unwrap_err();
        assert!(
            matches!(&error, EventError::BadPayload { kind: EventType::OrderCreated, message }
                if message.contains("invalid type")),
            "{error}"
        );
    }

    #[test]
    fn every_type_round_trips_its_name() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(EventType::ALL.len(), 14);
    }

    /// The checked-in `events/schemas.json` is what the code generates; run with
    /// `PAZAR_BLESS=1` to rewrite it after changing a payload (and raise that
    /// type's version if old readers could not read the new payload).
    #[test]
    fn the_published_schemas_file_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas.json");
        let generated = serde_json::to_string_pretty(&schemas()).unwrap() + "\n";
        if std::env::var_os("PAZAR_BLESS").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "events/schemas.json differs from the code: run \
             `PAZAR_BLESS=1 cargo test -p pazar-events` and review the diff"
        );
    }
}
