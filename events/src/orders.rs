//! Events the orders service publishes: one per status an order enters, each
//! carrying the whole order as it stands after the move.

use crate::Money;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Stock is held until `expires_at`; waiting for payment.
    PendingPayment,
    /// Paid: the held stock was sold.
    Paid,
    /// Shipped.
    Fulfilled,
    /// Cancelled by the customer while pending; stock released.
    Cancelled,
    /// Not paid in time; stock released.
    Expired,
    /// Paid, then refunded; the stock went back on the shelf.
    Refunded,
}

/// One line of an order, priced at checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderLine {
    /// The product.
    pub product_id: Uuid,
    /// Its name at checkout.
    pub name: String,
    /// Its SKU at checkout.
    pub sku: String,
    /// Units bought.
    pub quantity: i64,
    /// Unit price at checkout.
    pub unit_price: Money,
}

/// One entry of an order's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusChange {
    /// The status entered.
    pub status: OrderStatus,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, when there is more to say than the status.
    pub reason: Option<String>,
}

/// An order as it stands after the move its event reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderSnapshot {
    /// The order (also the event's subject).
    pub id: Uuid,
    /// The customer.
    pub user_id: Uuid,
    /// The status just entered.
    pub status: OrderStatus,
    /// Lines in product-id order.
    pub lines: Vec<OrderLine>,
    /// Sum of the lines.
    pub total: Money,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// Until when the stock is held for payment.
    pub expires_at: DateTime<Utc>,
    /// Every status it has been in, oldest first.
    pub history: Vec<StatusChange>,
}

/// `orders.created`: checkout placed the order; its stock is held until it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct OrderCreated(pub OrderSnapshot);

/// `orders.paid`: its payment succeeded and its held stock was sold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct OrderPaid(pub OrderSnapshot);

/// `orders.fulfilled`: shipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct OrderFulfilled(pub OrderSnapshot);

/// `orders.cancelled`: the customer cancelled it while pending; stock released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct OrderCancelled(pub OrderSnapshot);

/// `orders.expired`: not paid in time; stock released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct OrderExpired(pub OrderSnapshot);

/// `orders.refunded`: paid, then refunded; the stock is back on the shelf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct OrderRefunded(pub OrderSnapshot);
