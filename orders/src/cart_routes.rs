//! `/api/v1/cart`: the caller's cart.

use crate::cart::{CartSnapshot, LineStatus};
use crate::Orders;
use pazar_actors::{Money, ProductId};
use pazar_http::auth::BearerAuth;
use pazar_http::error::problem;
use pazar_http::openapi::Tag;
use pazar_http::params::{JsonBody, MoneyDto, UuidParam};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

/// Cart operations; each works on the cart of the token's user.
pub struct CartApi {
    /// The service.
    pub orders: Orders,
}

/// One line of the cart, at the product's current price.
#[derive(Object)]
pub struct CartLineDto {
    /// The product.
    pub product_id: Uuid,
    /// Its name (null once the product was deleted).
    #[oai(nullable)]
    pub name: Option<String>,
    /// Units in the cart.
    pub quantity: i64,
    /// Current unit price (null once deleted).
    #[oai(nullable)]
    pub unit_price: Option<MoneyDto>,
    /// `unit_price × quantity`.
    #[oai(nullable)]
    pub line_total: Option<MoneyDto>,
    /// Units available right now.
    pub available: i64,
    /// `ok`, `insufficient_stock` (fewer available than wanted) or `unavailable` (deleted).
    pub status: String,
}

/// The cart.
#[derive(Object)]
pub struct CartDto {
    /// Lines in the order they were added.
    pub items: Vec<CartLineDto>,
    /// Sum of the line totals.
    pub total: MoneyDto,
}

fn money(money: Money) -> MoneyDto {
    MoneyDto {
        amount: money.amount,
        currency: money.currency.to_string(),
    }
}

impl From<CartSnapshot> for CartDto {
    fn from(cart: CartSnapshot) -> Self {
        Self {
            items: cart
                .items
                .into_iter()
                .map(|line| CartLineDto {
                    product_id: line.product_id.0,
                    name: line.name,
                    quantity: line.quantity,
                    unit_price: line.unit_price.map(money),
                    line_total: line.line_total.map(money),
                    available: line.available,
                    status: match line.status {
                        LineStatus::Ok => "ok",
                        LineStatus::InsufficientStock => "insufficient_stock",
                        LineStatus::Unavailable => "unavailable",
                    }
                    .to_owned(),
                })
                .collect(),
            total: money(cart.total),
        }
    }
}

/// Units of a product to add.
#[derive(Object, Deserialize)]
pub struct AddToCartRequest {
    /// The product.
    pub product_id: Uuid,
    /// Units to add to what the cart holds (1 to 1,000,000; the line may hold at most 1,000,000).
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
    pub quantity: i64,
}

/// A new quantity for a line.
#[derive(Object, Deserialize)]
pub struct UpdateCartLineRequest {
    /// Units (1 to 1,000,000; remove the line with DELETE).
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
    pub quantity: i64,
}

#[OpenApi(tag = "Tag::Cart")]
impl CartApi {
    /// The caller's cart.
    #[oai(path = "/api/v1/cart", method = "get")]
    async fn get(&self, auth: BearerAuth) -> poem::Result<Json<CartDto>> {
        let cart = self.orders.cart(auth.0.user_id()?).await.map_err(problem)?;
        Ok(Json(cart.into()))
    }

    /// Add units of a product (404 unknown product, 409 more than available).
    #[oai(path = "/api/v1/cart/items", method = "post")]
    async fn add(
        &self,
        auth: BearerAuth,
        body: JsonBody<AddToCartRequest>,
    ) -> poem::Result<Json<CartDto>> {
        let cart = self
            .orders
            .add_to_cart(
                auth.0.user_id()?,
                ProductId(body.0.product_id),
                body.0.quantity,
            )
            .await
            .map_err(problem)?;
        Ok(Json(cart.into()))
    }

    /// Set the quantity of a line.
    #[oai(path = "/api/v1/cart/items/:product_id", method = "patch")]
    async fn update(
        &self,
        auth: BearerAuth,
        product_id: Path<UuidParam>,
        body: JsonBody<UpdateCartLineRequest>,
    ) -> poem::Result<Json<CartDto>> {
        let cart = self
            .orders
            .update_cart_line(
                auth.0.user_id()?,
                ProductId(product_id.0.parse("product_id")?),
                body.0.quantity,
            )
            .await
            .map_err(problem)?;
        Ok(Json(cart.into()))
    }

    /// Remove a line.
    #[oai(path = "/api/v1/cart/items/:product_id", method = "delete")]
    async fn remove(
        &self,
        auth: BearerAuth,
        product_id: Path<UuidParam>,
    ) -> poem::Result<Json<CartDto>> {
        let cart = self
            .orders
            .remove_cart_line(
                auth.0.user_id()?,
                ProductId(product_id.0.parse("product_id")?),
            )
            .await
            .map_err(problem)?;
        Ok(Json(cart.into()))
    }
}
