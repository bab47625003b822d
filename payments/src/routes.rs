//! Payments: start or read an order's payment, and the local provider's card
//! confirmation (what Stripe.js does against Stripe, for the embedded default).

use crate::local::Card;
use crate::Payments;
use pazar_actors::payments::PaymentSession;
use pazar_actors::OrderId;
use pazar_http::auth::BearerAuth;
use pazar_http::error::problem;
use pazar_http::openapi::Tag;
use pazar_http::params::{JsonBody, MoneyDto, UuidParam};
use pazar_orders::routes::OrderDto;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

/// Payment operations.
pub struct PaymentApi {
    /// The service.
    pub payments: Payments,
}

/// An order's payment.
#[derive(Object)]
pub struct PaymentDto {
    /// The order.
    pub order_id: Uuid,
    /// `local` or `stripe`.
    pub provider: String,
    /// `requires_payment`, `processing`, `succeeded`, `failed`, `cancelled` or `refunded`.
    pub status: String,
    /// The order's stored total: what is charged.
    pub amount: MoneyDto,
    /// What the payment page confirms with.
    pub client_secret: String,
    /// Stripe's publishable key (null for the local provider).
    #[oai(nullable)]
    pub publishable_key: Option<String>,
    /// Where the payment page loads Stripe.js from (null for the local provider).
    #[oai(nullable)]
    pub js_url: Option<String>,
    /// Why the last attempt failed.
    #[oai(nullable)]
    pub last_error: Option<String>,
}

impl PaymentDto {
    fn new(session: PaymentSession, payments: &Payments) -> Self {
        Self {
            order_id: session.order_id.0,
            provider: session.provider,
            status: session.status.as_str().to_owned(),
            amount: session.amount.into(),
            client_secret: session.client_secret,
            publishable_key: payments.publishable_key(),
            js_url: payments.js_url(),
            last_error: session.last_error,
        }
    }
}

/// Answer of starting a payment.
#[derive(ApiResponse)]
pub enum PaymentStarted {
    /// The payment was created now.
    #[oai(status = 201)]
    Created(Json<PaymentDto>),
    /// The payment already existed.
    #[oai(status = 200)]
    Existing(Json<PaymentDto>),
}

/// A card, as typed on the local provider's payment page.
#[derive(Object, Deserialize)]
pub struct LocalConfirmRequest {
    /// The payment's client secret.
    #[oai(validator(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))]
    pub client_secret: String,
    /// Card number (spaces allowed).
    #[oai(validator(max_length = 32, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))]
    pub card_number: String,
    /// Expiry month, 1-12.
    #[oai(validator(minimum(value = "1"), maximum(value = "12")))]
    pub exp_month: u32,
    /// Expiry year (2 or 4 digits).
    #[oai(validator(minimum(value = "0"), maximum(value = "9999")))]
    pub exp_year: u32,
    /// Security code, 3 or 4 digits.
    #[oai(validator(max_length = 4, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))]
    pub cvc: String,
}

/// The outcome of a confirmation.
#[derive(Object)]
pub struct LocalConfirmDto {
    /// The payment's status after the attempt.
    pub status: String,
    /// Why it failed, if it did.
    #[oai(nullable)]
    pub last_error: Option<String>,
}

#[OpenApi(tag = "Tag::Payments")]
impl PaymentApi {
    /// Start paying the caller's pending order (409 when paid, cancelled or expired).
    #[oai(path = "/api/v1/orders/:id/payment", method = "post")]
    async fn start(&self, auth: BearerAuth, id: Path<UuidParam>) -> poem::Result<PaymentStarted> {
        let (session, created) = self
            .payments
            .start_payment(auth.0.user_id()?, OrderId(id.0.parse("id")?))
            .await
            .map_err(problem)?;
        let dto = PaymentDto::new(session, &self.payments);
        Ok(if created {
            PaymentStarted::Created(Json(dto))
        } else {
            PaymentStarted::Existing(Json(dto))
        })
    }

    /// The payment of the caller's order.
    #[oai(path = "/api/v1/orders/:id/payment", method = "get")]
    async fn get(&self, auth: BearerAuth, id: Path<UuidParam>) -> poem::Result<Json<PaymentDto>> {
        let session = self
            .payments
            .payment_of(auth.0.user_id()?, OrderId(id.0.parse("id")?))
            .await
            .map_err(problem)?;
        Ok(Json(PaymentDto::new(session, &self.payments)))
    }

    /// Pay with a card at the local provider (404 when the provider is Stripe).
    /// Test cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined,
    /// 4000 0000 0000 9995 has insufficient funds.
    #[oai(path = "/api/v1/payments/local/confirm", method = "post")]
    async fn confirm_local(
        &self,
        body: JsonBody<LocalConfirmRequest>,
    ) -> poem::Result<Json<LocalConfirmDto>> {
        let request = body.0;
        let card = Card {
            number: request.card_number,
            exp_month: request.exp_month,
            exp_year: request.exp_year,
            cvc: request.cvc,
        };
        let session = self
            .payments
            .confirm_local_payment(&request.client_secret, &card)
            .await
            .map_err(problem)?;
        Ok(Json(LocalConfirmDto {
            status: session.status.as_str().to_owned(),
            last_error: session.last_error,
        }))
    }
}

/// An admin's refund of an order. It lives with payments (the money goes back
/// first), under the orders' path and tag where an admin looks for it.
pub struct RefundApi {
    /// The service.
    pub payments: Payments,
}

#[OpenApi(tag = "Tag::Orders")]
impl RefundApi {
    /// Refund a paid order (admin): the money goes back at the provider, the stock
    /// back on the shelf; 409 unless paid.
    #[oai(path = "/api/v1/admin/orders/:id/refund", method = "post")]
    async fn refund(&self, auth: BearerAuth, id: Path<UuidParam>) -> poem::Result<Json<OrderDto>> {
        auth.0.require_admin()?;
        let order = self
            .payments
            .refund_order(OrderId(id.0.parse("id")?))
            .await
            .map_err(problem)?;
        Ok(Json(order.try_into()?))
    }
}
