//! The catalog's search port: what product search needs from an index, whichever
//! engine holds it (tantivy embedded under the data directory by default,
//! Elasticsearch by config; both adapters live in `pazar-search`).
//!
//! The index is a **projection** of the catalog: the [`indexer`](crate::indexer)
//! keeps it in step from the catalog's events, and a search answers with product
//! ids in order; the catalog then reads each product with its *current* stock,
//! so a result never shows a stale "in stock".

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::{DomainError, Product, ProductId, StockLevels};

/// What the index holds of one product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchDoc {
    /// The product.
    pub product_id: ProductId,
    /// Display name (searched, boosted).
    pub name: String,
    /// Free text (searched).
    pub description: String,
    /// SKU (searched exactly and by prefix).
    pub sku: String,
    /// Unit price in minor units.
    pub price: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Units that can still be sold.
    pub available: i64,
    /// When it was created (sort "newest").
    pub created_at: DateTime<Utc>,
}

impl SearchDoc {
    /// The document of `product` with `levels`.
    pub fn of(product: &Product, levels: StockLevels) -> Self {
        Self {
            product_id: product.id,
            name: product.name.clone(),
            description: product.description.clone(),
            sku: product.sku.as_str().to_owned(),
            price: product.price.amount,
            currency: product.price.currency.as_str().to_owned(),
            available: levels.available,
            created_at: product.created_at,
        }
    }
}

/// One change to the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchChange {
    /// A new or changed product.
    Upsert(SearchDoc),
    /// Only its stock changed: the text is not analysed again (where the
    /// engine can update a field alone).
    Stock {
        /// The product.
        product_id: ProductId,
        /// Units that can still be sold.
        available: i64,
    },
    /// The product is gone.
    Delete(ProductId),
}

/// How results are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SearchSort {
    /// Best match first (the default with text; without text, newest first).
    #[default]
    Relevance,
    /// Cheapest first.
    PriceAsc,
    /// Dearest first.
    PriceDesc,
    /// Newest first.
    Newest,
    /// Most units available first.
    Availability,
}

impl SearchSort {
    /// Reads `relevance|price_asc|price_desc|newest|availability`.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        Ok(match text {
            "relevance" => Self::Relevance,
            "price_asc" => Self::PriceAsc,
            "price_desc" => Self::PriceDesc,
            "newest" => Self::Newest,
            "availability" => Self::Availability,
            _ => {
                return Err(DomainError::invalid(
                    "sort",
                    "must be relevance, price_asc, price_desc, newest or availability",
                ))
            }
        })
    }
}

/// A search: text, filters, order and page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Words to look for (typos tolerated, the last word as a prefix); none lists.
    pub text: Option<String>,
    /// Lowest price, minor units, inclusive (above `max_price`: nothing matches).
    pub min_price: Option<i64>,
    /// Highest price, minor units, inclusive.
    pub max_price: Option<i64>,
    /// Only this currency.
    pub currency: Option<String>,
    /// Only products with (`true`) or without (`false`) units available.
    pub in_stock: Option<bool>,
    /// Order.
    pub sort: SearchSort,
    /// Page size.
    pub limit: usize,
    /// Results to skip when there is no cursor (a cursor stays stable while
    /// products are added; an offset does not).
    pub offset: usize,
    /// Where the previous page ended (opaque to clients).
    pub cursor: Option<String>,
}

impl SearchQuery {
    /// A search from a listing's parameters: `listing` (text and page, checked
    /// already), a price range, a currency, stock, an order and a cursor; a
    /// bad one is refused naming it.
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        listing: crate::ProductQuery,
        min_price: Option<i64>,
        max_price: Option<i64>,
        currency: Option<String>,
        in_stock: Option<bool>,
        sort: Option<&str>,
        cursor: Option<String>,
    ) -> Result<Self, DomainError> {
        if min_price.is_some_and(|price| price < 0) {
            return Err(DomainError::invalid("min_price", "must be zero or more"));
        }
        // A range whose max is below its min matches nothing (it is not an
        // error: each bound alone is valid, as the schema says).
        let currency = currency
            .map(|code| {
                pazar_actors::Currency::parse(&code)
                    .map(|currency| currency.as_str().to_owned())
                    .map_err(|_| DomainError::invalid("currency", "must be an ISO 4217 code"))
            })
            .transpose()?;
        Ok(Self {
            text: listing.text,
            min_price,
            max_price,
            currency,
            in_stock,
            sort: sort.map(SearchSort::parse).transpose()?.unwrap_or_default(),
            limit: listing.limit as usize,
            offset: listing.offset as usize,
            cursor: cursor.filter(|cursor| !cursor.is_empty()),
        })
    }
}

/// Counts over everything a search matched (not only its page).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facets {
    /// Per price band, how many matched.
    pub price_bands: Vec<PriceBand>,
    /// How many matched with units available.
    pub in_stock: u64,
    /// How many matched with none.
    pub sold_out: u64,
}

/// A price band and its count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceBand {
    /// Lowest price, minor units, inclusive.
    pub from: i64,
    /// Highest price, exclusive; none for the last band.
    pub to: Option<i64>,
    /// Products in it.
    pub count: u64,
}

/// The price bands facets count, in minor units: under 10, 10–50, 50–100,
/// 100–500, 500 and above (in the currency's major unit).
pub const PRICE_BANDS: [(i64, Option<i64>); 5] = [
    (0, Some(1_000)),
    (1_000, Some(5_000)),
    (5_000, Some(10_000)),
    (10_000, Some(50_000)),
    (50_000, None),
];

/// Where the next page of a listing starts, the same for every engine:
/// `c1.<offset>.<created_before>.<view>` — results read so far, the creation
/// time (µs) of the first page, and the engine's point-in-time view (a tantivy
/// searcher generation, an Elasticsearch point in time; `-` for none). Every
/// string of that shape is a cursor (the API's pattern says so): a view the
/// engine no longer has is read as the current index without the products
/// created after the first page, so no page shifts either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchCursor {
    /// Results on the pages before.
    pub offset: usize,
    /// Only products created before this (µs since the epoch) when the view is gone.
    pub created_before: i64,
    /// The engine's view, opaque here (letters, digits, `_`, `-`, `~`).
    pub view: String,
}

/// The deepest a cursor pages (five digits): listings stop offering a next
/// page past it.
const MAX_CURSOR_OFFSET: usize = 99_999;

/// The API's pattern of a cursor: every match parses.
pub const CURSOR_PATTERN: &str = r"^c1\.[0-9]{1,5}\.-?[0-9]{1,18}\.[A-Za-z0-9_~-]{1,4096}$";

impl SearchCursor {
    /// Whether a listing that has read `read` of `total` results, the last page
    /// `page` long where `limit` were asked, offers a next page — only within
    /// the depth a cursor can name.
    pub fn has_next(page: usize, limit: usize, read: usize, total: u64) -> bool {
        page == limit.max(1) && (read as u64) < total && read <= MAX_CURSOR_OFFSET
    }

    /// The cursor of the page after `read` results, in `view`; the first
    /// page's creation time carries over from `previous` (now, on the first page).
    pub fn next(previous: Option<&SearchCursor>, read: usize, view: String) -> String {
        SearchCursor {
            offset: read,
            created_before: previous.map_or_else(
                || chrono::Utc::now().timestamp_micros(),
                |c| c.created_before,
            ),
            view,
        }
        .to_string()
    }

    /// Reads a cursor; `Invalid` naming `cursor` when it is not one.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::invalid("cursor", "is not a cursor this server gave");
        let mut parts = text.strip_prefix("c1.").ok_or_else(bad)?.splitn(3, '.');
        let offset = parts.next().ok_or_else(bad)?;
        let created_before = parts.next().ok_or_else(bad)?;
        let view = parts.next().ok_or_else(bad)?;
        let fits = |part: &str, most: usize| !part.is_empty() && part.len() <= most;
        if !fits(offset, 5)
            || !offset.bytes().all(|b| b.is_ascii_digit())
            || !fits(view, 4096)
            || !view
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'~' || b == b'-')
        {
            return Err(bad());
        }
        Ok(Self {
            offset: offset.parse().map_err(|_| bad())?,
            created_before: created_before.parse().map_err(|_| bad())?,
            view: view.to_owned(),
        })
    }
}

impl std::fmt::Display for SearchCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "c1.{}.{}.{}",
            self.offset, self.created_before, self.view
        )
    }
}

/// The words of a query as both engines' analyzers cut them: lower-cased runs
/// of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// One result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchHit {
    /// The product.
    pub product_id: ProductId,
    /// The matched text with the matching words in `<b>…</b>` (HTML-escaped
    /// otherwise), when the search had text.
    pub highlight: Option<String>,
}

/// A page of results.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchResults {
    /// In order.
    pub hits: Vec<SearchHit>,
    /// How many matched in all.
    pub total: u64,
    /// Counts over all matches.
    pub facets: Facets,
    /// Where the next page starts; none on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_wrote_and_refuses_anything_else() {
        let cursor = SearchCursor {
            offset: 40,
            created_before: -5,
            view: "pit_x~3d-1".into(),
        };
        assert_eq!(SearchCursor::parse(&cursor.to_string()).unwrap(), cursor);
        // The API declares the same shape, so every cursor it lets through parses.
        assert!(include_str!("routes.rs").contains(&format!("pattern = r\"{CURSOR_PATTERN}\"")));
        for bad in [
            "",
            "c1.",
            "c1.1.2",
            "c1.a.2.3",
            "c1.1.x.3",
            "c1.1.2.a.b",
            "t1.1.2.3",
            "c1.123456.2.3",
        ] {
            assert!(SearchCursor::parse(bad).is_err(), "{bad}");
        }
    }
}

/// What the index says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexStatus {
    /// `tantivy` or `elasticsearch`.
    pub backend: &'static str,
    /// Products in it.
    pub documents: u64,
    /// The position (outbox `seq`) of the last event it applied, as it stored it.
    pub position: i64,
    /// Whether the last process to use it died with changes it had accepted
    /// but not committed ([`SearchIndex::unsettled`] without the settling
    /// [`SearchIndex::apply`]): then it must be rebuilt.
    pub interrupted: bool,
    /// When its last full rebuild finished, if any.
    pub last_reindex: Option<DateTime<Utc>>,
}

/// A product search index. Its errors are `DomainError::Unavailable` (the
/// engine failed or cannot be reached) and `DomainError::Invalid` naming the
/// `cursor` (one it did not give).
#[async_trait]
pub trait SearchIndex: Send + Sync + 'static {
    /// Records, durably, that changes were accepted and are not committed yet
    /// (before their events are acknowledged): if the process dies before a
    /// settling [`apply`](Self::apply), the next start finds the index
    /// `interrupted`.
    async fn unsettled(&self) -> Result<(), DomainError>;

    /// Applies `changes` in order and stores `position` with them (one commit):
    /// once this returns they are searchable. `settled`: no accepted change is
    /// left uncommitted (clears what [`unsettled`](Self::unsettled) recorded).
    async fn apply(
        &self,
        changes: &[SearchChange],
        position: i64,
        settled: bool,
    ) -> Result<(), DomainError>;

    /// One page of results.
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, DomainError>;

    /// Up to `limit` product names completing `prefix` (search-as-you-type).
    async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<String>, DomainError>;

    /// Documents, stored position, last rebuild.
    async fn status(&self) -> Result<IndexStatus, DomainError>;

    /// Starts keeping the changes applied from now on, for a
    /// [`rebuild`](Self::rebuild) whose documents are read after this call:
    /// they are applied again to the new index before it is swapped in, so a
    /// change that lands between the read and the swap is not lost.
    async fn begin_rebuild(&self);

    /// Replaces the whole index with `docs` (built aside, then swapped in while
    /// searches keep being answered from the old one), at `position`;
    /// `progress` is told how many documents are in so far. Read `docs` after
    /// [`begin_rebuild`](Self::begin_rebuild).
    async fn rebuild(
        &self,
        docs: Vec<SearchDoc>,
        position: i64,
        progress: std::sync::Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(), DomainError>;
}

impl std::fmt::Debug for dyn SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchIndex")
    }
}
