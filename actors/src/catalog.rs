//! The catalog: products, their validation, and the read side of stock.
//!
//! Catalog fields (name, price, …) are plain rows changed through [`Catalog`];
//! stock is owned by each product's [`crate::product_stock::ProductStock`] actor.

use crate::events::{Event, EventSignal};
use crate::{DomainError, Money, ProductId, ProductViews, Store, StoreError};
use chrono::{DateTime, Utc};
use pazar_events::catalog as events;
use serde::Serialize;
use std::sync::Arc;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

/// What an admin sends to create a product, already parsed.
#[derive(Clone, Debug)]
pub struct NewProduct {
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// SKU (raw, validated by [`Catalog::create`]).
    pub sku: String,
    /// Price amount in minor units.
    pub price_amount: i64,
    /// Price currency code.
    pub price_currency: String,
    /// Initial units on hand.
    pub stock: i64,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProductPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New SKU.
    pub sku: Option<String>,
    /// New price amount.
    pub price_amount: Option<i64>,
    /// New price currency.
    pub price_currency: Option<String>,
}

/// A listing request.
#[derive(Clone, Debug)]
pub struct ProductQuery {
    /// Case-insensitive text matched against name, description and SKU.
    pub text: Option<String>,
    /// Page size, 1..=100.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

impl ProductQuery {
    /// The largest page a client may ask for.
    pub const MAX_LIMIT: i64 = 100;

    /// Validates paging parameters (defaults: 20, 0).
    pub fn parse(
        text: Option<String>,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Self, DomainError> {
        let limit = limit.unwrap_or(20);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(DomainError::invalid("limit", "must be between 1 and 100"));
        }
        let offset = offset.unwrap_or(0);
        if offset < 0 {
            return Err(DomainError::invalid("offset", "must be zero or more"));
        }
        let text = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        Ok(Self {
            text,
            limit,
            offset,
        })
    }
}

/// One page of a listing.
#[derive(Clone, Debug)]
pub struct ProductPage {
    /// The products on this page.
    pub items: Vec<ProductView>,
    /// How many products match the query in all.
    pub total: i64,
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

/// `catalog.product_upserted`: the catalog fields (and, for a new product, its stock).
pub fn product_upserted_event(product: &Product, initial_stock: Option<i64>) -> Event {
    let payload = events::ProductUpserted {
        product_id: product.id.0,
        name: product.name.clone(),
        description: product.description.clone(),
        sku: product.sku.as_str().to_owned(),
        price: product.price.into(),
        created_at: product.created_at,
        updated_at: product.updated_at,
        stock: initial_stock.map(|on_hand| StockLevels::new(on_hand, 0).into()),
    };
    Event::of(product.id, &payload)
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

fn parse_name(raw: &str) -> Result<String, DomainError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(DomainError::invalid("name", "must be 1-200 characters"));
    }
    Ok(name.to_owned())
}

fn parse_description(raw: &str) -> Result<String, DomainError> {
    if raw.chars().count() > 10_000 {
        return Err(DomainError::invalid(
            "description",
            "must be at most 10000 characters",
        ));
    }
    Ok(raw.to_owned())
}

fn sku_conflict(err: StoreError, sku: &Sku) -> DomainError {
    match err {
        StoreError::Conflict { .. } => DomainError::conflict(
            "duplicate_sku",
            format!("a product with SKU {} already exists", sku.as_str()),
        ),
        StoreError::NotFound => DomainError::NotFound { what: "product" },
        other => other.into(),
    }
}

/// Creates, changes and reads catalog entries.
#[derive(Clone)]
pub struct Catalog {
    store: Arc<dyn Store>,
    /// Committed views for single-product reads; shared with the stock actors.
    views: Arc<ProductViews>,
    /// Raised after a commit that wrote events.
    signal: EventSignal,
}

impl Catalog {
    /// A catalog over a store, caching single-product reads in `views` and raising
    /// `signal` after writing events.
    pub fn new(store: Arc<dyn Store>, views: Arc<ProductViews>, signal: EventSignal) -> Self {
        Self {
            store,
            views,
            signal,
        }
    }

    /// Validates and stores a new product with its initial stock.
    pub async fn create(&self, new: NewProduct) -> Result<ProductView, DomainError> {
        let mut created = self.create_many(vec![new]).await?;
        Ok(created.remove(0))
    }

    /// Validates and stores several products in one transaction (all or nothing).
    pub async fn create_many(&self, new: Vec<NewProduct>) -> Result<Vec<ProductView>, DomainError> {
        let now = crate::now();
        let mut rows = Vec::with_capacity(new.len());
        for new in new {
            if new.stock < 0 {
                return Err(DomainError::invalid("stock", "must be zero or more"));
            }
            let product = Product {
                id: ProductId::new(),
                name: parse_name(&new.name)?,
                description: parse_description(&new.description)?,
                sku: Sku::parse(&new.sku)?,
                price: Money::price(new.price_amount, &new.price_currency)?,
                created_at: now,
                updated_at: now,
            };
            rows.push((product, new.stock));
        }
        let events: Vec<Event> = rows
            .iter()
            .map(|(product, on_hand)| product_upserted_event(product, Some(*on_hand)))
            .collect();
        if let Err(error) = self.store.insert_products(&rows, &events).await {
            return Err(match rows.as_slice() {
                [(only, _)] => sku_conflict(error, &only.sku),
                _ => match error {
                    StoreError::Conflict { .. } => {
                        DomainError::conflict("duplicate_sku", "one of the SKUs already exists")
                    }
                    other => other.into(),
                },
            });
        }
        self.signal.committed();
        Ok(rows
            .into_iter()
            .map(|(product, on_hand)| ProductView {
                product,
                stock: StockLevels::new(on_hand, 0),
            })
            .collect())
    }

    /// Applies a partial update to a product's catalog fields.
    pub async fn update(
        &self,
        id: ProductId,
        patch: ProductPatch,
    ) -> Result<ProductView, DomainError> {
        let mut view = self.get(id).await?;
        let product = &mut view.product;
        if let Some(name) = patch.name {
            product.name = parse_name(&name)?;
        }
        if let Some(description) = patch.description {
            product.description = parse_description(&description)?;
        }
        if let Some(sku) = patch.sku {
            product.sku = Sku::parse(&sku)?;
        }
        let amount = patch.price_amount.unwrap_or(product.price.amount);
        let currency = patch
            .price_currency
            .unwrap_or_else(|| product.price.currency.to_string());
        product.price = Money::price(amount, &currency)?;
        product.updated_at = crate::now();
        self.store
            .update_product(product, &product_upserted_event(product, None))
            .await
            .map_err(|e| sku_conflict(e, &product.sku))?;
        self.views.product_committed(product);
        self.signal.committed();
        Ok(view)
    }

    /// One product with its committed stock (from memory when cached).
    pub async fn get(&self, id: ProductId) -> Result<ProductView, DomainError> {
        if let Some(view) = self.views.get(id) {
            return Ok(view);
        }
        let ticket = self.views.begin_read();
        let view = self
            .store
            .product(id)
            .await?
            .ok_or(DomainError::NotFound { what: "product" })?;
        self.views.fill(ticket, view.clone());
        Ok(view)
    }

    /// A page of products.
    pub async fn list(&self, query: &ProductQuery) -> Result<ProductPage, DomainError> {
        Ok(self.store.list_products(query).await?)
    }
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

    #[test]
    fn paging_rules() {
        assert!(ProductQuery::parse(None, Some(0), None).is_err());
        assert!(ProductQuery::parse(None, Some(101), None).is_err());
        assert!(ProductQuery::parse(None, None, Some(-1)).is_err());
        let q = ProductQuery::parse(Some("  ".into()), None, None).unwrap();
        assert_eq!((q.text, q.limit, q.offset), (None, 20, 0));
    }
}
