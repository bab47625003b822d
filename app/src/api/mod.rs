//! The operations of the API, one module per area, plus the JSON shapes they share.

pub mod admin;
pub mod cart;
pub mod events;
pub mod health;
pub mod orders;
pub mod products;

use chrono::{DateTime, Utc};
use pazar_actors::{ProductView, StockLevels};
pub use pazar_http::params::{status_filter, JsonBody, MoneyDto, UuidParam};
use poem_openapi::Object;
use uuid::Uuid;

/// Stock levels of a product.
#[derive(Object, Clone, Debug)]
pub struct StockDto {
    /// Units in the warehouse, reserved ones included.
    pub on_hand: i64,
    /// Units held for unpaid orders.
    pub reserved: i64,
    /// `on_hand - reserved`.
    pub available: i64,
}

impl From<StockLevels> for StockDto {
    fn from(levels: StockLevels) -> Self {
        Self {
            on_hand: levels.on_hand,
            reserved: levels.reserved,
            available: levels.available,
        }
    }
}

/// A product as clients see it.
#[derive(Object, Clone, Debug)]
pub struct ProductDto {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Unique SKU.
    pub sku: String,
    /// Unit price.
    pub price: MoneyDto,
    /// Stock levels.
    pub stock: StockDto,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last catalog change.
    pub updated_at: DateTime<Utc>,
}

impl From<ProductView> for ProductDto {
    fn from(view: ProductView) -> Self {
        let product = view.product;
        Self {
            id: product.id.0,
            name: product.name,
            description: product.description,
            sku: product.sku.as_str().to_owned(),
            price: MoneyDto {
                amount: product.price.amount,
                currency: product.price.currency.to_string(),
            },
            stock: view.stock.into(),
            created_at: product.created_at,
            updated_at: product.updated_at,
        }
    }
}
