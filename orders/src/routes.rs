//! `/api/v1/orders`: checkout and the caller's orders; admin order views.

use crate::Orders;
use chrono::{DateTime, Utc};
use pazar_actors::{Money, Order, OrderId, OrderStatus, Page};
use pazar_http::auth::BearerAuth;
use pazar_http::error::{problem, ApiError};
use pazar_http::openapi::Tag;
use pazar_http::params::{status_filter, MoneyDto, UuidParam};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

/// Checkout and orders.
pub struct OrderApi {
    /// The service.
    pub orders: Orders,
}

/// A line of an order, at the price of checkout.
#[derive(Object)]
pub struct OrderLineDto {
    /// The product.
    pub product_id: Uuid,
    /// Name at checkout.
    pub name: String,
    /// SKU at checkout.
    pub sku: String,
    /// Units.
    pub quantity: i64,
    /// Unit price at checkout.
    pub unit_price: MoneyDto,
    /// `unit_price × quantity`.
    pub line_total: MoneyDto,
}

/// One status an order has been in.
#[derive(Object)]
pub struct StatusChangeDto {
    /// The status entered.
    pub status: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, when there is more to say.
    #[oai(nullable)]
    pub reason: Option<String>,
}

/// An order.
#[derive(Object)]
pub struct OrderDto {
    /// Id.
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// `pending_payment`, `paid`, `fulfilled`, `cancelled`, `expired` or `refunded`.
    pub status: String,
    /// What was bought.
    pub items: Vec<OrderLineDto>,
    /// Sum of the lines.
    pub total: MoneyDto,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// Until when the stock is held for payment.
    pub expires_at: DateTime<Utc>,
    /// Every status, oldest first.
    pub history: Vec<StatusChangeDto>,
}

fn money(money: Money) -> MoneyDto {
    MoneyDto {
        amount: money.amount,
        currency: money.currency.to_string(),
    }
}

impl TryFrom<Order> for OrderDto {
    type Error = ApiError;

    /// Fails only if a line's total overflows, which checkout (whose cart total is
    /// checked) never lets into the store.
    fn try_from(order: Order) -> Result<Self, ApiError> {
        let overflow = || {
            tracing::error!(order_id = %order.id, "an order line's total overflows");
            ApiError::internal()
        };
        let items = order
            .lines
            .iter()
            .map(|line| {
                Ok(OrderLineDto {
                    product_id: line.product_id.0,
                    name: line.name.clone(),
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    line_total: money(line.unit_price.times(line.quantity).ok_or_else(overflow)?),
                    unit_price: money(line.unit_price),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(Self {
            id: order.id.0,
            user_id: order.user_id.0,
            status: order.status.as_str().to_owned(),
            items,
            total: money(order.total),
            created_at: order.created_at,
            expires_at: order.expires_at,
            history: order
                .history
                .into_iter()
                .map(|change| StatusChangeDto {
                    status: change.status.as_str().to_owned(),
                    at: change.at,
                    reason: change.reason,
                })
                .collect(),
        })
    }
}

/// A list of orders.
#[derive(Object)]
pub struct OrderListDto {
    /// Newest first.
    pub items: Vec<OrderDto>,
    /// Orders in the whole listing (every page).
    pub total: i64,
}

/// Answer of a checkout.
#[derive(ApiResponse)]
pub enum CheckedOut {
    /// The order was placed (or, with a repeated Idempotency-Key, had been).
    #[oai(status = 201)]
    Created(
        Json<OrderDto>,
        /// `true` when this is the answer to an earlier request with the same key.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
}

#[OpenApi(tag = "Tag::Orders")]
impl OrderApi {
    /// Check out the cart: reserve every line (409 listing `unavailable` lines, with
    /// nothing left reserved) and place a `pending_payment` order; the cart is emptied.
    #[oai(path = "/api/v1/orders", method = "post")]
    async fn checkout(
        &self,
        auth: BearerAuth,
        #[oai(name = "Idempotency-Key", validator(max_length = 255, pattern = r"\S"))]
        idempotency_key: Header<Option<String>>,
    ) -> poem::Result<CheckedOut> {
        // Its declared bounds (1-255 characters, not blank) are enforced by poem-openapi.
        let key = idempotency_key.0.map(|k| k.trim().to_owned());
        let (order, created) = self
            .orders
            .checkout(auth.0.user_id()?, key)
            .await
            .map_err(problem)?;
        let replayed = (!created).then(|| "true".to_owned());
        Ok(CheckedOut::Created(Json(order.try_into()?), replayed))
    }

    /// The caller's orders, newest first (`limit` 1-100, default 20; `offset`).
    #[oai(path = "/api/v1/orders", method = "get")]
    async fn list(
        &self,
        auth: BearerAuth,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<i64>>,
        #[oai(validator(minimum(value = "0")))] offset: Query<Option<i64>>,
    ) -> poem::Result<Json<OrderListDto>> {
        let page = Page::parse(limit.0, offset.0).map_err(problem)?;
        let orders = self
            .orders
            .orders_of(auth.0.user_id()?, page)
            .await
            .map_err(problem)?;
        Ok(Json(OrderListDto {
            items: orders
                .orders
                .into_iter()
                .map(OrderDto::try_from)
                .collect::<Result<_, _>>()?,
            total: orders.total,
        }))
    }

    /// One of the caller's orders (another user's order is 404).
    #[oai(path = "/api/v1/orders/:id", method = "get")]
    async fn get(&self, auth: BearerAuth, id: Path<UuidParam>) -> poem::Result<Json<OrderDto>> {
        let order = self
            .orders
            .order_of(auth.0.user_id()?, OrderId(id.0.parse("id")?))
            .await
            .map_err(problem)?;
        Ok(Json(order.try_into()?))
    }

    /// Cancel a pending order; its stock is released (409 if no longer pending).
    #[oai(path = "/api/v1/orders/:id/cancel", method = "post")]
    async fn cancel(&self, auth: BearerAuth, id: Path<UuidParam>) -> poem::Result<Json<OrderDto>> {
        let order = self
            .orders
            .cancel_order(auth.0.user_id()?, OrderId(id.0.parse("id")?))
            .await
            .map_err(problem)?;
        Ok(Json(order.try_into()?))
    }

    /// All orders, newest first, optionally of one status (admin; `limit` 1-100,
    /// default 20; `offset`).
    #[oai(path = "/api/v1/admin/orders", method = "get")]
    async fn all(
        &self,
        auth: BearerAuth,
        #[oai(validator(
            pattern = r"^(|pending_payment|paid|fulfilled|cancelled|expired|refunded)$"
        ))]
        status: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<i64>>,
        #[oai(validator(minimum(value = "0")))] offset: Query<Option<i64>>,
    ) -> poem::Result<Json<OrderListDto>> {
        auth.0.require_admin()?;
        let page = Page::parse(limit.0, offset.0).map_err(problem)?;
        let status = status_filter(
            status.0.as_deref(),
            OrderStatus::parse,
            "pending_payment, paid, fulfilled, cancelled, expired or refunded",
        )?;
        let orders = self
            .orders
            .all_orders(status, page)
            .await
            .map_err(problem)?;
        Ok(Json(OrderListDto {
            items: orders
                .orders
                .into_iter()
                .map(OrderDto::try_from)
                .collect::<Result<_, _>>()?,
            total: orders.total,
        }))
    }

    /// Mark a paid order as shipped (admin; 409 unless paid).
    #[oai(path = "/api/v1/admin/orders/:id/fulfil", method = "post")]
    async fn fulfil(&self, auth: BearerAuth, id: Path<UuidParam>) -> poem::Result<Json<OrderDto>> {
        auth.0.require_admin()?;
        let order = self
            .orders
            .fulfil_order(OrderId(id.0.parse("id")?))
            .await
            .map_err(problem)?;
        Ok(Json(order.try_into()?))
    }
}
