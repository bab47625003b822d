//! Products as the other services see them: the catalog's published model
//! (product, SKU, stock levels), the port through which the order flow reads it,
//! and the stock events the store writer writes. The catalog service itself
//! (products' rules, the ProductStock actors) is the `catalog/` slice.

use crate::events::Event;
use crate::{DomainError, Money, ProductId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_events::catalog as events;
use serde::Serialize;

/// A stock-keeping unit: 1–64 letters, digits, `-`, `_` or `.`; unique in the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Sku(String);

impl Sku {
    /// Parses a SKU.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let sku = raw.trim();
        let ok = !sku.is_empty()
            && sku.len() <= 64
            && sku
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(sku.to_owned()))
        } else {
            Err(DomainError::invalid(
                "sku",
                "must be 1-64 characters of letters, digits, '-', '_' or '.'",
            ))
        }
    }

    /// The SKU as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A product's catalog fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// Its id, also the key of its stock actor.
    pub id: ProductId,
    /// Display name.
    pub name: String,
    /// Free text shown on the product page.
    pub description: String,
    /// Unique stock-keeping unit.
    pub sku: Sku,
    /// Unit price.
    pub price: Money,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a catalog field last changed.
    pub updated_at: DateTime<Utc>,
}

/// Stock as clients see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StockLevels {
    /// Units physically in stock.
    pub on_hand: i64,
    /// Units held by open reservations.
    pub reserved: i64,
    /// `on_hand - reserved`: what can still be reserved.
    pub available: i64,
}

impl StockLevels {
    /// Levels from the two stored quantities.
    pub fn new(on_hand: i64, reserved: i64) -> Self {
        Self {
            on_hand,
            reserved,
            available: on_hand - reserved,
        }
    }
}

/// A product with its committed stock levels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductView {
    /// Catalog fields.
    pub product: Product,
    /// Stock levels as committed in the store.
    pub stock: StockLevels,
}

impl From<StockLevels> for events::StockLevels {
    fn from(levels: StockLevels) -> Self {
        Self {
            on_hand: levels.on_hand,
            reserved: levels.reserved,
            available: levels.available,
        }
    }
}

/// `catalog.stock_changed`: a product's levels after a committed change.
pub fn stock_changed_event(product_id: ProductId, levels: StockLevels) -> Event {
    let payload = events::StockChanged {
        product_id: product_id.0,
        levels: levels.into(),
    };
    Event::of(product_id, &payload)
}

/// `catalog.product_deleted`.
pub fn product_deleted_event(product_id: ProductId) -> Event {
    let payload = events::ProductDeleted {
        product_id: product_id.0,
    };
    Event::of(product_id, &payload)
}

/// How the order flow reads the catalog (carts price their lines with it).
#[async_trait]
pub trait ProductCatalog: Send + Sync + 'static {
    /// A product with its committed stock; `NotFound` if there is none.
    async fn get(&self, id: ProductId) -> Result<ProductView, DomainError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_rules() {
        assert!(Sku::parse("ABC-1_2.3").is_ok());
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("has space").is_err());
        assert!(Sku::parse(&"x".repeat(65)).is_err());
    }
}
