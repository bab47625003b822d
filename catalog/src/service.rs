//! The catalog service: products (their rules, their rows and events) and the
//! commands on stock, which go to each product's ProductStock actor.

use crate::kind::ProductStockKind;
use crate::search::{Facets, SearchDoc, SearchIndex, SearchQuery};
use crate::stock::ProductStockMessage;
use crate::store::ProductStore;
use crate::views::ProductViews;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::catalog::ProductCatalog;
use pazar_actors::{
    DomainError, Event, EventSignal, HoldSource, Money, OrderId, Product, ProductId, ProductView,
    Sku, StockLevels, StoreError,
};
use pazar_events::catalog as events;
use pazar_supervisor::EntityHandle;
use std::sync::Arc;

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
    store: Arc<dyn ProductStore>,
    /// Committed views for single-product reads; shared with the stock actors.
    views: Arc<ProductViews>,
    /// Raised after a commit that wrote events.
    signal: EventSignal,
    /// The search index, when this process has one (else lists read the store).
    search: Option<Arc<dyn SearchIndex>>,
}

/// A page of search results, each product with its current stock.
#[derive(Clone, Debug)]
pub struct SearchPage {
    /// The products, best first, each with the matched text highlighted (when
    /// the search had text).
    pub items: Vec<(ProductView, Option<String>)>,
    /// How many matched in all.
    pub total: u64,
    /// Counts over all matches.
    pub facets: Facets,
    /// Where the next page starts.
    pub next_cursor: Option<String>,
}

impl Catalog {
    /// A catalog over a store, caching single-product reads in `views` and raising
    /// `signal` after writing events.
    pub fn new(
        store: Arc<dyn ProductStore>,
        views: Arc<ProductViews>,
        signal: EventSignal,
    ) -> Self {
        Self {
            store,
            views,
            signal,
            search: None,
        }
    }

    /// The same catalog, listing and searching through `index`.
    pub fn with_search(mut self, index: Arc<dyn SearchIndex>) -> Self {
        self.search = Some(index);
        self
    }

    /// The search index, if this catalog has one.
    pub fn search_index(&self) -> Option<&Arc<dyn SearchIndex>> {
        self.search.as_ref()
    }

    /// A page of search results: ids from the index, each product read with
    /// its current stock (so a product that sold out since it was indexed never
    /// shows as in stock: asked for `in_stock`, it is left out).
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, DomainError> {
        let index = self
            .search
            .as_ref()
            .ok_or_else(|| DomainError::Unavailable("this process has no search index".into()))?;
        let results = index.search(query).await?;
        let mut items = Vec::with_capacity(results.hits.len());
        for hit in results.hits {
            let view = match self.get(hit.product_id).await {
                Ok(view) => view,
                // Deleted since it was indexed: its deletion is on its way.
                Err(DomainError::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
            if query
                .in_stock
                .is_some_and(|wanted| wanted != (view.stock.available > 0))
            {
                continue;
            }
            items.push((view, hit.highlight));
        }
        Ok(SearchPage {
            items,
            total: results.total,
            facets: results.facets,
            next_cursor: results.next_cursor,
        })
    }

    /// Completions for a search box.
    pub async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<String>, DomainError> {
        match &self.search {
            Some(index) => index.suggest(prefix, limit).await,
            None => Ok(Vec::new()),
        }
    }

    /// Rebuilds the search index from the store (all products with their
    /// stock), at `position` (the outbox position read before the products:
    /// events after it are applied again by the indexer, which is harmless).
    /// `progress` hears how many products are in so far, of how many.
    pub async fn reindex(
        &self,
        position: i64,
        progress: Arc<dyn Fn(u64, u64) + Send + Sync>,
    ) -> Result<u64, DomainError> {
        let index = self
            .search
            .as_ref()
            .ok_or_else(|| DomainError::Unavailable("this process has no search index".into()))?;
        // Changes applied from here on are replayed onto the rebuilt index.
        index.begin_rebuild().await;
        // Keyset pages: a product deleted meanwhile shifts nothing.
        let mut docs = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.products_after(after, 1_000).await?;
            docs.extend(
                page.iter()
                    .map(|view| SearchDoc::of(&view.product, view.stock)),
            );
            match page.last() {
                Some(last) if page.len() == 1_000 => after = Some(last.product.id),
                _ => break,
            }
        }
        let indexed = docs.len() as u64;
        progress(0, indexed);
        let progress = Arc::new(move |done| progress(done, indexed));
        index.rebuild(docs, position, progress).await?;
        Ok(indexed)
    }

    /// Validates and stores a new product with its initial stock.
    pub async fn create(&self, new: NewProduct) -> Result<ProductView, DomainError> {
        let mut created = self.create_many(vec![new]).await?;
        Ok(created.remove(0))
    }

    /// Validates and stores several products in one transaction (all or nothing).
    pub async fn create_many(&self, new: Vec<NewProduct>) -> Result<Vec<ProductView>, DomainError> {
        let now = pazar_actors::now();
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
        product.updated_at = pazar_actors::now();
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

    /// The product's committed view as `render` writes it: rendered once per
    /// change and then served as the same bytes (`GET /api/v1/products/{id}`).
    pub async fn rendered(
        &self,
        id: ProductId,
        render: impl Fn(&ProductView) -> bytes::Bytes,
    ) -> Result<bytes::Bytes, DomainError> {
        if let Some(body) = self.views.rendered(id, &render) {
            return Ok(body);
        }
        let view = self.get(id).await?;
        // Not cached when a change raced the read: render what was read.
        Ok(self
            .views
            .rendered(id, &render)
            .unwrap_or_else(|| render(&view)))
    }

    /// Whether the catalog has any product.
    pub async fn has_products(&self) -> Result<bool, DomainError> {
        let page = self
            .store
            .list_products(&ProductQuery {
                text: None,
                limit: 1,
                offset: 0,
            })
            .await?;
        Ok(page.total > 0)
    }

    /// A page of products, from the store (no index needed).
    pub async fn list(&self, query: &ProductQuery) -> Result<ProductPage, DomainError> {
        Ok(self.store.list_products(query).await?)
    }

    /// The committed views it caches (the live-cart watcher drops one when its
    /// product's event arrives).
    pub fn views(&self) -> &Arc<ProductViews> {
        &self.views
    }
}

#[async_trait]
impl ProductCatalog for Catalog {
    async fn get(&self, id: ProductId) -> Result<ProductView, DomainError> {
        Catalog::get(self, id).await
    }
}

/// Commands on stock (admins' adjustments and holds, retiring a product): each
/// goes to the product's ProductStock actor, the one writer of its stock.
#[derive(Clone)]
pub struct Inventory {
    actors: EntityHandle<ProductStockKind>,
    store: Arc<dyn ProductStore>,
}

impl Inventory {
    pub(crate) fn new(
        actors: EntityHandle<ProductStockKind>,
        store: Arc<dyn ProductStore>,
    ) -> Self {
        Self { actors, store }
    }

    /// The ProductStock actors (inspection).
    pub fn actors(&self) -> &EntityHandle<ProductStockKind> {
        &self.actors
    }

    /// A product's levels, as its actor has them.
    pub async fn stock_levels(&self, product: ProductId) -> Result<StockLevels, DomainError> {
        self.actors
            .call(product, |reply| ProductStockMessage::Get { reply })
            .await
    }

    /// Changes `on_hand` by `delta`; refused below what is reserved. Called
    /// for a message the Kafka bridge is handling, the message's record commits
    /// with the adjustment (so does [`set_on_hand`](Self::set_on_hand)'s).
    pub async fn adjust_stock(
        &self,
        product: ProductId,
        delta: i64,
        reason: &str,
    ) -> Result<StockLevels, DomainError> {
        let handled = pazar_actors::events::handled();
        self.actors
            .call(product, |reply| ProductStockMessage::Adjust {
                delta,
                reason: reason.to_owned(),
                handled: handled.clone(),
                reply,
            })
            .await?
    }

    /// Sets `on_hand` to a count; refused below what is reserved.
    pub async fn set_on_hand(
        &self,
        product: ProductId,
        on_hand: i64,
        reason: &str,
    ) -> Result<StockLevels, DomainError> {
        let handled = pazar_actors::events::handled();
        self.actors
            .call(product, |reply| ProductStockMessage::SetOnHand {
                on_hand,
                reason: reason.to_owned(),
                handled: handled.clone(),
                reply,
            })
            .await?
    }

    /// The product with this SKU.
    pub async fn product_by_sku(&self, sku: &Sku) -> Result<ProductId, DomainError> {
        self.store
            .product_id_by_sku(sku.as_str())
            .await?
            .ok_or(DomainError::NotFound { what: "product" })
    }

    /// Holds `quantity` units of a product by hand (an admin) until `expires_at`.
    pub async fn reserve(
        &self,
        product: ProductId,
        order_id: OrderId,
        quantity: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<StockLevels, DomainError> {
        self.actors
            .call(product, |reply| ProductStockMessage::Reserve {
                order_id,
                quantity,
                expires_at,
                source: HoldSource::Manual,
                reply,
            })
            .await?
    }

    /// Drops an order's hold on a product.
    pub async fn release(
        &self,
        product: ProductId,
        order_id: OrderId,
    ) -> Result<StockLevels, DomainError> {
        self.actors
            .call(product, |reply| ProductStockMessage::Release {
                order_id,
                reply,
            })
            .await?
    }

    /// Turns an order's hold into a sale.
    pub async fn commit(
        &self,
        product: ProductId,
        order_id: OrderId,
    ) -> Result<StockLevels, DomainError> {
        self.actors
            .call(product, |reply| ProductStockMessage::Commit {
                order_id,
                reply,
            })
            .await?
    }

    /// Deletes a product (refused while it has open reservations).
    pub async fn delete_product(&self, product: ProductId) -> Result<(), DomainError> {
        self.actors
            .call(product, |reply| ProductStockMessage::Retire { reply })
            .await?
    }

    /// Releases manual holds past their `expires_at` (at most `limit`); how many.
    pub async fn release_lapsed_holds(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<usize, DomainError> {
        let holds = self.store.expired_manual_holds(now, limit).await?;
        let mut released = 0;
        for (product, order) in holds {
            match self.release(product, order).await {
                Ok(_) | Err(DomainError::NotFound { .. }) => released += 1,
                Err(error) => {
                    tracing::warn!(%product, %order, %error, "could not release a lapsed hold")
                }
            }
        }
        Ok(released)
    }
}

/// The hold sweeper: releases manual holds past their `expires_at`, every `every`,
/// until the ProductStock supervisor stops.
pub(crate) async fn sweep_lapsed_holds(inventory: Inventory, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !inventory.actors.is_running() {
            return;
        }
        pazar_actors::faults::point("hold_sweeper");
        if let Err(error) = inventory
            .release_lapsed_holds(pazar_actors::now(), 500)
            .await
        {
            tracing::warn!(%error, "the hold sweeper cannot read lapsed holds");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_rules() {
        assert!(ProductQuery::parse(None, Some(0), None).is_err());
        assert!(ProductQuery::parse(None, Some(101), None).is_err());
        assert!(ProductQuery::parse(None, None, Some(-1)).is_err());
        let q = ProductQuery::parse(Some("  ".into()), None, None).unwrap();
        assert_eq!((q.text, q.limit, q.offset), (None, 20, 0));
    }
}
