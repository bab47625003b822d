//! Events the catalog publishes: product data and stock levels.

use crate::Money;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A product's stock as customers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StockLevels {
    /// Units physically in stock.
    pub on_hand: i64,
    /// Units held by open reservations (orders awaiting payment).
    pub reserved: i64,
    /// `on_hand - reserved`: what can still be bought.
    pub available: i64,
}

/// `catalog.product_upserted`: a product was created or its catalog fields changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProductUpserted {
    /// The product (also the event's subject).
    pub product_id: Uuid,
    /// Display name.
    pub name: String,
    /// Free text for the product page.
    pub description: String,
    /// Unique stock-keeping unit.
    pub sku: String,
    /// Unit price.
    pub price: Money,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a catalog field last changed.
    pub updated_at: DateTime<Utc>,
    /// Its initial stock, on creation only (later changes are `catalog.stock_changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<StockLevels>,
}

/// `catalog.stock_changed`: a product's levels after a committed change (a
/// reservation, a release, a sale, an adjustment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StockChanged {
    /// The product (also the event's subject).
    pub product_id: Uuid,
    /// The levels after the change.
    #[serde(flatten)]
    pub levels: StockLevels,
}

/// `catalog.product_deleted`: the product is gone from the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductDeleted {
    /// The product (also the event's subject).
    pub product_id: Uuid,
}
