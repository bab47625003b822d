//! Who reacts to what: **the one routing table** of Pazar's events.
//!
//! Each [`Route`] names a subscriber, the role whose process runs it, the event
//! types it handles and what it does with them (the entity actor messages it
//! sends). Both transports read this table:
//!
//! - the embedded default, the shared outbox: each subscriber's delivery hands it
//!   the outbox events of its types (`EventSubscriber::wants` reads the table);
//! - Kafka (`KAFKA_BROKERS`): each role's consumer group, `{prefix}.{role}`,
//!   subscribes to the topics of its routes' types — an event type's topic is
//!   `{prefix}.{service}`, its first word (`orders.created` → `pazar.orders`) —
//!   and routes each `(topic, type)` to the subscribers listed here.
//!
//! A subscriber is the unit of idempotency: its name keys its outbox cursor and
//! its record of the events it has processed from Kafka. Where the effect is one
//! entity actor's write, that record is written in the write's transaction
//! (`pazar_actors::Handled`); each route's `effect` says how it is kept.

use crate::EventType;
use EventType::*;

/// One subscriber and the events it reacts to.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The subscriber's name.
    pub subscriber: &'static str,
    /// The role whose process runs it (its Kafka consumer group).
    pub role: &'static str,
    /// The event types it handles; it never sees others.
    pub events: &'static [EventType],
    /// What it does with them.
    pub effect: &'static str,
}

/// The routing table.
pub const ROUTES: &[Route] = &[
    Route {
        subscriber: "orders",
        role: "orders",
        events: &[PaymentSucceeded, PaymentRefunded],
        effect: "Order actor: MarkPaid (the held stock is sold) / Refund (units back on the \
                 shelf); the processed record commits with the order's transition",
    },
    Route {
        subscriber: "live-carts",
        role: "orders",
        events: &[StockChanged, ProductUpserted, ProductDeleted],
        effect: "Cart actors of users with a live cart open: Get, pushed to their sockets \
                 (no write)",
    },
    Route {
        subscriber: "search-indexer",
        role: "catalog",
        events: &[ProductUpserted, ProductDeleted, StockChanged],
        effect: "the search index: a product's document, its availability alone, or its removal \
                 (idempotent: each change sets the document as the event says)",
    },
    Route {
        subscriber: "payments",
        role: "payments",
        events: &[OrderCreated, OrderCancelled, OrderExpired, PaymentSucceeded],
        effect: "PaymentSession actor: Start / Cancel; Refund of a payment that came too \
                 late; idempotent by the order's one session (a provider's API cannot share \
                 a transaction, so the record follows)",
    },
    Route {
        subscriber: "notifier",
        role: "notifications",
        events: &[
            UserRegistered,
            OrderCreated,
            PaymentSucceeded,
            PaymentFailed,
            OrderExpired,
            OrderCancelled,
            PaymentRefunded,
        ],
        effect: "the mail queue: one mail per event and recipient (the queue's key makes \
                 a second insert a no-op)",
    },
];

/// A topic outside systems write to (not Pazar's events), and who reads it.
#[derive(Clone, Copy, Debug)]
pub struct InboundRoute {
    /// The topic, after the prefix (`{prefix}.inbound.stock`).
    pub topic: &'static str,
    /// The role whose consumer group reads it.
    pub role: &'static str,
    /// The handler's name: the key of its processed-messages record.
    pub handler: &'static str,
    /// What it does.
    pub effect: &'static str,
}

/// The inbound topics.
pub const INBOUND: &[InboundRoute] = &[InboundRoute {
    topic: "inbound.stock",
    role: "catalog",
    handler: "inbound-stock",
    effect: "ProductStock actor: Adjust (`delta`) / SetOnHand (`set_on_hand`), as the admin \
             endpoint does; deduplicated by the sender's `source_id`, whose record commits \
             with the adjustment",
}];

/// The route of `subscriber`, if it has one.
pub fn route(subscriber: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.subscriber == subscriber)
}

/// Whether `subscriber` reacts to events of type `kind`.
pub fn reacts(subscriber: &str, kind: EventType) -> bool {
    route(subscriber).is_some_and(|route| route.events.contains(&kind))
}

/// The service an event type belongs to (its topic's last word): `orders.created`
/// → `orders`.
pub fn service_of(kind: &str) -> &str {
    kind.split('.').next().unwrap_or(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_are_named_once_and_react_only_to_their_types() {
        for (index, route) in ROUTES.iter().enumerate() {
            assert!(
                ROUTES[index + 1..]
                    .iter()
                    .all(|other| other.subscriber != route.subscriber),
                "{} is routed twice",
                route.subscriber
            );
        }
        assert!(reacts("orders", PaymentSucceeded));
        assert!(!reacts("orders", OrderCreated));
        assert!(!reacts("nobody", OrderCreated));
        assert_eq!(service_of("payments.refunded"), "payments");
    }
}
