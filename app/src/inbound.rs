//! The catalog's inbound stock topic read by the Kafka bridge: the adapter
//! between the bridge's `InboundHandler` and the catalog's `Adjustment`.

use pazar_actors::DomainError;
use pazar_catalog::inbound::Adjustment;
use pazar_catalog::Inventory;
use pazar_kafka_bridge::{InboundError, InboundHandler};

/// Applies `{prefix}.inbound.stock` messages through the ProductStock actors.
pub struct InboundStock(pub Inventory);

/// Its name and topic, as the routing table lists them.
const NAME: &str = "inbound-stock";
const TOPIC: &str = "inbound.stock";

#[async_trait::async_trait]
impl InboundHandler for InboundStock {
    fn name(&self) -> &str {
        NAME
    }

    fn topic(&self) -> &str {
        TOPIC
    }

    fn dedup_id(&self, payload: &[u8]) -> Result<uuid::Uuid, String> {
        Adjustment::parse(payload)
            .map(|adjustment| adjustment.dedup_id())
            .map_err(|error| error.to_string())
    }

    async fn handle(&self, payload: &[u8]) -> Result<(), InboundError> {
        let adjustment =
            Adjustment::parse(payload).map_err(|e| InboundError::Refused(e.to_string()))?;
        match adjustment.apply(&self.0).await {
            Ok(_) => Ok(()),
            // A rule said no (an unknown product, fewer units than reserved):
            // it would say so again.
            Err(
                error @ (DomainError::Invalid { .. }
                | DomainError::NotFound { .. }
                | DomainError::Conflict { .. }),
            ) => Err(InboundError::Refused(error.to_string())),
            Err(error) => Err(InboundError::Failed {
                transient: matches!(error, DomainError::Unavailable(_)),
                message: error.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use pazar_events::routing::INBOUND;

    /// The adapter reads the topic the routing table gives the catalog role,
    /// under the handler name it lists.
    #[test]
    fn the_adapter_is_the_routing_tables_inbound_stock_route() {
        let route = INBOUND
            .iter()
            .find(|route| route.handler == super::NAME)
            .expect("routed");
        assert_eq!(route.topic, super::TOPIC);
        assert_eq!(route.role, crate::roles::Service::Catalog.as_str());
    }
}
