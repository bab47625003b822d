//! `/api/v1/products`: the catalog, and stock adjustments by admins.

use super::health::Tag;
use super::{JsonBody, ProductDto, StockDto, UuidParam};
use crate::AppState;
use pazar_actors::{NewProduct, ProductId, ProductPatch, ProductQuery};
use pazar_http::auth::BearerAuth;
use pazar_http::error::problem;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use std::sync::Arc;

/// Catalog operations.
pub struct ProductApi {
    /// Shared state.
    pub state: Arc<AppState>,
}

/// A page of products.
#[derive(Object)]
pub struct ProductPageDto {
    /// The products on this page.
    pub items: Vec<ProductDto>,
    /// How many products match in all.
    pub total: i64,
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
    /// List products, optionally filtered by text in name, description or SKU.
    #[oai(path = "/api/v1/products", method = "get")]
    async fn list(
        &self,
        #[oai(validator(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))] q: Query<
            Option<String>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<i64>>,
        #[oai(validator(minimum(value = "0")))] offset: Query<Option<i64>>,
    ) -> poem::Result<Json<ProductPageDto>> {
        let query = ProductQuery::parse(q.0, limit.0, offset.0).map_err(problem)?;
        let page = self
            .state
            .shop
            .catalog
            .list(&query)
            .await
            .map_err(problem)?;
        Ok(Json(ProductPageDto {
            items: page.items.into_iter().map(ProductDto::from).collect(),
            total: page.total,
        }))
    }

    /// One product with its stock.
    #[oai(path = "/api/v1/products/:id", method = "get")]
    async fn get(&self, id: Path<UuidParam>) -> poem::Result<Json<ProductDto>> {
        let view = self
            .state
            .shop
            .catalog
            .get(ProductId(id.0.parse("id")?))
            .await
            .map_err(problem)?;
        Ok(Json(view.into()))
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
            .state
            .shop
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
            .state
            .shop
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
        self.state
            .shop
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
            .state
            .shop
            .adjust_stock(ProductId(id.0.parse("id")?), body.0.delta, &body.0.reason)
            .await
            .map_err(problem)?;
        Ok(Json(levels.into()))
    }
}
