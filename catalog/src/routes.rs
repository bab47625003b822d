//! `/api/v1/products`: the catalog, and stock adjustments by admins.

use crate::search::{Facets, SearchQuery};
use crate::service::{Catalog, Inventory, NewProduct, ProductPatch, ProductQuery};
use chrono::{DateTime, Duration, Utc};
use pazar_actors::{DomainError, OrderId, ProductId, ProductView, StockLevels};
use pazar_http::auth::BearerAuth;
use pazar_http::error::problem;
use pazar_http::openapi::{RenderedJson, Tag};
use pazar_http::params::{JsonBody, MoneyDto, UuidParam};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

/// Catalog operations.
pub struct ProductApi {
    /// Products.
    pub catalog: Catalog,
    /// Stock commands.
    pub inventory: Inventory,
}

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
            price: product.price.into(),
            stock: view.stock.into(),
            created_at: product.created_at,
            updated_at: product.updated_at,
        }
    }
}

/// A manual hold of stock for an order (checkout does this itself once orders exist).
#[derive(Object, Deserialize)]
pub struct ReservationRequest {
    /// The order the units are held for (a new id when absent).
    #[oai(nullable)]
    pub order_id: Option<Uuid>,
    /// Units, 1 to 1,000,000.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
    pub quantity: i64,
    /// How long the hold lasts, in seconds (default 900, at most 30 days).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "2592000")))]
    pub ttl_seconds: Option<i64>,
}

/// A hold that was taken.
#[derive(Object)]
pub struct ReservationDto {
    /// The order.
    pub order_id: Uuid,
    /// Units held.
    pub quantity: i64,
    /// When the hold lapses.
    pub expires_at: DateTime<Utc>,
    /// The product's stock after the hold.
    pub stock: StockDto,
}

/// Answer of a reservation.
#[derive(ApiResponse)]
pub enum Reserved {
    /// The units are held (durably).
    #[oai(status = 201)]
    Created(Json<ReservationDto>),
}

/// A page of products.
#[derive(Object)]
pub struct ProductPageDto {
    /// The products on this page, each with its current stock.
    pub items: Vec<SearchItemDto>,
    /// How many products match in all.
    pub total: i64,
    /// Counts over every match: price bands, in stock, sold out.
    #[oai(skip_serializing_if_is_none)]
    pub facets: Option<FacetsDto>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// A product in a list, with the text it matched.
#[derive(Object)]
pub struct SearchItemDto {
    /// The product.
    #[oai(flatten)]
    pub product: ProductDto,
    /// The matched name or description, matching words in `<b>…</b>` (the rest
    /// HTML-escaped); only when searched with `q`.
    #[oai(skip_serializing_if_is_none)]
    pub highlight: Option<String>,
}

/// Counts over every match of a search.
#[derive(Object)]
pub struct FacetsDto {
    /// Per price band (minor units), how many match with the other filters.
    pub price_bands: Vec<PriceBandDto>,
    /// How many match with units available (the other filters applied).
    pub in_stock: u64,
    /// How many match with none.
    pub sold_out: u64,
}

/// A price band.
#[derive(Object)]
pub struct PriceBandDto {
    /// Lowest price, minor units, inclusive.
    pub from: i64,
    /// Highest price, exclusive; absent for the last band.
    #[oai(skip_serializing_if_is_none)]
    pub to: Option<i64>,
    /// Products in it.
    pub count: u64,
}

impl From<Facets> for FacetsDto {
    fn from(facets: Facets) -> Self {
        Self {
            price_bands: facets
                .price_bands
                .into_iter()
                .map(|band| PriceBandDto {
                    from: band.from,
                    to: band.to,
                    count: band.count,
                })
                .collect(),
            in_stock: facets.in_stock,
            sold_out: facets.sold_out,
        }
    }
}

/// Completions for a search box.
#[derive(Object)]
pub struct SuggestionsDto {
    /// Up to 8 product names, best first.
    pub suggestions: Vec<String>,
}

/// A new product.
#[derive(Object, Deserialize)]
pub struct CreateProductRequest {
    /// Display name, 1-200 characters.
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    pub name: String,
    /// Description (may be empty; line breaks and tabs allowed), at most 5000 characters.
    #[serde(default)]
    #[oai(
        default,
        validator(
            max_length = 5000,
            pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
        )
    )]
    pub description: String,
    /// Unique SKU: 1-64 letters, digits, `-`, `_`, `.`.
    #[oai(validator(
        max_length = 64,
        pattern = r"^[^\S\u0000-\u001F\u007F-\u009F]*[A-Za-z0-9._-]{1,64}[^\S\u0000-\u001F\u007F-\u009F]*$"
    ))]
    pub sku: String,
    /// Unit price.
    pub price: PriceRequest,
    /// Initial units on hand (default 0), at most 1,000,000,000.
    #[serde(default)]
    #[oai(
        default,
        validator(minimum(value = "0"), maximum(value = "1000000000"))
    )]
    pub stock: i64,
}

/// A price as an admin sets it.
#[derive(Object, Deserialize)]
pub struct PriceRequest {
    /// Integer minor units (cents), 0 to 1,000,000,000,000.
    #[oai(validator(minimum(value = "0"), maximum(value = "1000000000000")))]
    pub amount: i64,
    /// ISO 4217 code, e.g. `EUR`.
    #[oai(validator(max_length = 3, pattern = r"^[A-Za-z]{3}$"))]
    pub currency: String,
}

/// Price fields of a patch.
#[derive(Object, Deserialize)]
pub struct PricePatch {
    /// New amount in minor units, 0 to 1,000,000,000,000.
    #[oai(
        nullable,
        validator(minimum(value = "0"), maximum(value = "1000000000000"))
    )]
    pub amount: Option<i64>,
    /// New currency.
    #[oai(nullable, validator(max_length = 3, pattern = r"^[A-Za-z]{3}$"))]
    pub currency: Option<String>,
}

/// A partial update: absent fields stay as they are.
#[derive(Object, Deserialize)]
pub struct UpdateProductRequest {
    /// New name, 1-200 characters.
    #[oai(
        nullable,
        validator(
            max_length = 200,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub name: Option<String>,
    /// New description, at most 5000 characters.
    #[oai(
        nullable,
        validator(
            max_length = 5000,
            pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
        )
    )]
    pub description: Option<String>,
    /// New SKU.
    #[oai(
        nullable,
        validator(
            max_length = 64,
            pattern = r"^[^\S\u0000-\u001F\u007F-\u009F]*[A-Za-z0-9._-]{1,64}[^\S\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub sku: Option<String>,
    /// New price (either part may be given alone).
    #[oai(nullable)]
    pub price: Option<PricePatch>,
}

/// A restock or correction.
#[derive(Object, Deserialize)]
pub struct StockAdjustmentRequest {
    /// Added to `on_hand`; negative removes units. Not zero; at most 1,000,000,000 either way.
    #[oai(validator(minimum(value = "-1000000000"), maximum(value = "1000000000")))]
    pub delta: i64,
    /// Why (kept in the adjustment log), at most 500 characters.
    #[serde(default)]
    #[oai(
        default,
        validator(max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")
    )]
    pub reason: String,
}

/// Answer of a creation.
#[derive(ApiResponse)]
pub enum ProductCreated {
    /// Created.
    #[oai(status = 201)]
    Created(Json<ProductDto>),
}

/// Answer of a deletion.
#[derive(ApiResponse)]
pub enum ProductDeleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(tag = "Tag::Catalog")]
impl ProductApi {
    /// Search and list products. With `q`, the best matches first: every
    /// word must match the name (boosted) or description, typos tolerated (one
    /// edit from 4 letters, two from 8), the last word also as a prefix; or `q`
    /// is a SKU, exactly or its start. Without `q`, newest first. Filters:
    /// price range (minor units), currency, `in_stock`; `sort`: relevance,
    /// price_asc, price_desc, newest, availability. Page with `cursor` (from
    /// the previous page's `next_cursor`: stable while products are added) or
    /// `offset`. Every item carries its current stock.
    #[oai(path = "/api/v1/products", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        #[oai(validator(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))] q: Query<
            Option<String>,
        >,
        #[oai(validator(minimum(value = "0")))] min_price: Query<Option<i64>>,
        #[oai(validator(minimum(value = "0")))] max_price: Query<Option<i64>>,
        #[oai(validator(pattern = r"^[A-Z]{3}$"))] currency: Query<Option<String>>,
        in_stock: Query<Option<bool>>,
        #[oai(validator(pattern = r"^(relevance|price_asc|price_desc|newest|availability)$"))]
        sort: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<i64>>,
        #[oai(validator(minimum(value = "0"), maximum(value = "10000")))] offset: Query<
            Option<i64>,
        >,
        // `search::CURSOR_PATTERN` (a test keeps the two equal).
        #[oai(validator(pattern = r"^c1\.[0-9]{1,5}\.-?[0-9]{1,18}\.[A-Za-z0-9_~-]{1,4096}$"))]
        cursor: Query<Option<String>>,
    ) -> poem::Result<Json<ProductPageDto>> {
        let query = ProductQuery::parse(q.0, limit.0, offset.0).map_err(problem)?;
        if self.catalog.search_index().is_none() {
            // No index in this process: the store's plain listing.
            let page = self.catalog.list(&query).await.map_err(problem)?;
            return Ok(Json(ProductPageDto {
                items: page
                    .items
                    .into_iter()
                    .map(|view| SearchItemDto {
                        product: view.into(),
                        highlight: None,
                    })
                    .collect(),
                total: page.total,
                facets: None,
                next_cursor: None,
            }));
        }
        let search = SearchQuery::parse(
            query,
            min_price.0,
            max_price.0,
            currency.0,
            in_stock.0,
            sort.0.as_deref(),
            cursor.0,
        )
        .map_err(problem)?;
        let page = self.catalog.search(&search).await.map_err(problem)?;
        Ok(Json(ProductPageDto {
            items: page
                .items
                .into_iter()
                .map(|(view, highlight)| SearchItemDto {
                    product: view.into(),
                    highlight,
                })
                .collect(),
            total: page.total as i64,
            facets: Some(page.facets.into()),
            next_cursor: page.next_cursor,
        }))
    }

    /// Up to 8 product names completing `q`, for a search box.
    #[oai(path = "/api/v1/products/suggest", method = "get")]
    async fn suggest(
        &self,
        #[oai(validator(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
        ))]
        q: Query<String>,
    ) -> poem::Result<Json<SuggestionsDto>> {
        let suggestions = self.catalog.suggest(&q.0, 8).await.map_err(problem)?;
        Ok(Json(SuggestionsDto { suggestions }))
    }

    /// One product with its stock.
    #[oai(path = "/api/v1/products/:id", method = "get")]
    async fn get(&self, id: Path<UuidParam>) -> poem::Result<RenderedJson<ProductDto>> {
        let body = self
            .catalog
            .rendered(ProductId(id.0.parse("id")?), |view| {
                RenderedJson::render(&ProductDto::from(view.clone())).into_bytes()
            })
            .await
            .map_err(problem)?;
        Ok(RenderedJson::from_rendered(body))
    }

    /// Create a product (admin).
    #[oai(path = "/api/v1/products", method = "post")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: JsonBody<CreateProductRequest>,
    ) -> poem::Result<ProductCreated> {
        auth.0.require_admin()?;
        let request = body.0;
        let view = self
            .catalog
            .create(NewProduct {
                name: request.name,
                description: request.description,
                sku: request.sku,
                price_amount: request.price.amount,
                price_currency: request.price.currency,
                stock: request.stock,
            })
            .await
            .map_err(problem)?;
        Ok(ProductCreated::Created(Json(view.into())))
    }

    /// Change catalog fields of a product (admin).
    #[oai(path = "/api/v1/products/:id", method = "patch")]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<UuidParam>,
        body: JsonBody<UpdateProductRequest>,
    ) -> poem::Result<Json<ProductDto>> {
        auth.0.require_admin()?;
        let request = body.0;
        let (price_amount, price_currency) = match request.price {
            Some(price) => (price.amount, price.currency),
            None => (None, None),
        };
        let patch = ProductPatch {
            name: request.name,
            description: request.description,
            sku: request.sku,
            price_amount,
            price_currency,
        };
        let view = self
            .catalog
            .update(ProductId(id.0.parse("id")?), patch)
            .await
            .map_err(problem)?;
        Ok(Json(view.into()))
    }

    /// Delete a product (admin); refused with 409 while it has open reservations.
    #[oai(path = "/api/v1/products/:id", method = "delete")]
    async fn delete(&self, auth: BearerAuth, id: Path<UuidParam>) -> poem::Result<ProductDeleted> {
        auth.0.require_admin()?;
        self.inventory
            .delete_product(ProductId(id.0.parse("id")?))
            .await
            .map_err(problem)?;
        Ok(ProductDeleted::NoContent)
    }

    /// Restock or correct a product's stock (admin); 409 if on_hand would fall below reserved.
    #[oai(path = "/api/v1/products/:id/stock-adjustments", method = "post")]
    async fn adjust_stock(
        &self,
        auth: BearerAuth,
        id: Path<UuidParam>,
        body: JsonBody<StockAdjustmentRequest>,
    ) -> poem::Result<Json<StockDto>> {
        auth.0.require_admin()?;
        let levels = self
            .inventory
            .adjust_stock(ProductId(id.0.parse("id")?), body.0.delta, &body.0.reason)
            .await
            .map_err(problem)?;
        Ok(Json(levels.into()))
    }
}

/// Manual stock holds (admin only).
pub struct StockHoldsApi {
    /// Stock commands.
    pub inventory: Inventory,
}

#[OpenApi(tag = "Tag::Admin")]
impl StockHoldsApi {
    /// Hold units of a product for an order.
    #[oai(path = "/api/v1/admin/products/:id/reservations", method = "post")]
    async fn reserve(
        &self,
        auth: BearerAuth,
        id: Path<UuidParam>,
        body: JsonBody<ReservationRequest>,
    ) -> poem::Result<Reserved> {
        auth.0.require_admin()?;
        let request = body.0;
        let ttl = request.ttl_seconds.unwrap_or(900);
        if !(1..=30 * 24 * 3600).contains(&ttl) {
            return Err(problem(DomainError::invalid(
                "ttl_seconds",
                "must be between 1 and 2592000",
            ))
            .into());
        }
        let order_id = request.order_id.map(OrderId).unwrap_or_default();
        let expires_at = pazar_actors::now() + Duration::seconds(ttl);
        let levels = self
            .inventory
            .reserve(
                ProductId(id.0.parse("id")?),
                order_id,
                request.quantity,
                expires_at,
            )
            .await
            .map_err(problem)?;
        Ok(Reserved::Created(Json(ReservationDto {
            order_id: order_id.0,
            quantity: request.quantity,
            expires_at,
            stock: levels.into(),
        })))
    }

    /// Release an order's hold on a product.
    #[oai(
        path = "/api/v1/admin/products/:id/reservations/:order_id",
        method = "delete"
    )]
    async fn release(
        &self,
        auth: BearerAuth,
        id: Path<UuidParam>,
        order_id: Path<UuidParam>,
    ) -> poem::Result<Json<StockDto>> {
        auth.0.require_admin()?;
        let levels = self
            .inventory
            .release(
                ProductId(id.0.parse("id")?),
                OrderId(order_id.0.parse("order_id")?),
            )
            .await
            .map_err(problem)?;
        Ok(Json(levels.into()))
    }

    /// Turn an order's hold into a sale (on_hand decreases).
    #[oai(
        path = "/api/v1/admin/products/:id/reservations/:order_id/commit",
        method = "post"
    )]
    async fn commit(
        &self,
        auth: BearerAuth,
        id: Path<UuidParam>,
        order_id: Path<UuidParam>,
    ) -> poem::Result<Json<StockDto>> {
        auth.0.require_admin()?;
        let levels = self
            .inventory
            .commit(
                ProductId(id.0.parse("id")?),
                OrderId(order_id.0.parse("order_id")?),
            )
            .await
            .map_err(problem)?;
        Ok(Json(levels.into()))
    }
}
