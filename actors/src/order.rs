//! Order records: `pending_payment → paid → fulfilled`, or `cancelled` /
//! `expired`, or `paid → refunded`; their events; and the stock port the order
//! flow reserves through. They are part of the shared kernel because the store
//! writer commits new orders and transitions in the same group commits as stock
//! and payments; the orders service (`orders/`) owns the actors and the rules.

use crate::events::Event;
use crate::{DomainError, Money, OrderId, ProductId, StockLevels, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_events::orders as events;
use serde::Serialize;

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
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
    /// Paid, then refunded by an admin; the stock went back on the shelf.
    Refunded,
}

impl OrderStatus {
    /// The stored and serialised name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Refunded => "refunded",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending_payment" => Self::PendingPayment,
            "paid" => Self::Paid,
            "fulfilled" => Self::Fulfilled,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            "refunded" => Self::Refunded,
            _ => return None,
        })
    }
}

/// One line of an order, priced at checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    /// The product.
    pub product_id: ProductId,
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    /// The status entered.
    pub status: OrderStatus,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, when there is more to say than the status.
    pub reason: Option<String>,
}

/// An order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Order {
    /// Id.
    pub id: OrderId,
    /// Whose.
    pub user_id: UserId,
    /// Current status.
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
    /// The Idempotency-Key of the checkout that made it.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

impl Order {
    /// The order as its events carry it.
    pub fn snapshot(&self) -> events::OrderSnapshot {
        let status = |status: OrderStatus| match status {
            OrderStatus::PendingPayment => events::OrderStatus::PendingPayment,
            OrderStatus::Paid => events::OrderStatus::Paid,
            OrderStatus::Fulfilled => events::OrderStatus::Fulfilled,
            OrderStatus::Cancelled => events::OrderStatus::Cancelled,
            OrderStatus::Expired => events::OrderStatus::Expired,
            OrderStatus::Refunded => events::OrderStatus::Refunded,
        };
        events::OrderSnapshot {
            id: self.id.0,
            user_id: self.user_id.0,
            status: status(self.status),
            lines: self
                .lines
                .iter()
                .map(|line| events::OrderLine {
                    product_id: line.product_id.0,
                    name: line.name.clone(),
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    unit_price: line.unit_price.into(),
                })
                .collect(),
            total: self.total.into(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            history: self
                .history
                .iter()
                .map(|change| events::StatusChange {
                    status: status(change.status),
                    at: change.at,
                    reason: change.reason.clone(),
                })
                .collect(),
        }
    }

    /// The order an event carries, as it stood after the event's move (the
    /// inverse of [`snapshot`](Self::snapshot); the idempotency key is not
    /// published). An error for a malformed currency code.
    pub fn from_snapshot(snapshot: &events::OrderSnapshot) -> Result<Order, DomainError> {
        let status = |status: events::OrderStatus| match status {
            events::OrderStatus::PendingPayment => OrderStatus::PendingPayment,
            events::OrderStatus::Paid => OrderStatus::Paid,
            events::OrderStatus::Fulfilled => OrderStatus::Fulfilled,
            events::OrderStatus::Cancelled => OrderStatus::Cancelled,
            events::OrderStatus::Expired => OrderStatus::Expired,
            events::OrderStatus::Refunded => OrderStatus::Refunded,
        };
        let lines = snapshot
            .lines
            .iter()
            .map(|line| {
                Ok(OrderLine {
                    product_id: ProductId(line.product_id),
                    name: line.name.clone(),
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    unit_price: Money::try_from(&line.unit_price)?,
                })
            })
            .collect::<Result<_, DomainError>>()?;
        Ok(Order {
            id: OrderId(snapshot.id),
            user_id: UserId(snapshot.user_id),
            status: status(snapshot.status),
            lines,
            total: Money::try_from(&snapshot.total)?,
            created_at: snapshot.created_at,
            expires_at: snapshot.expires_at,
            history: snapshot
                .history
                .iter()
                .map(|change| StatusChange {
                    status: status(change.status),
                    at: change.at,
                    reason: change.reason.clone(),
                })
                .collect(),
            idempotency_key: None,
        })
    }

    /// The event for a move into the current status (`orders.<status>`).
    pub fn event(&self) -> Event {
        let snapshot = self.snapshot();
        match self.status {
            OrderStatus::PendingPayment => Event::of(self.id, &events::OrderCreated(snapshot)),
            OrderStatus::Paid => Event::of(self.id, &events::OrderPaid(snapshot)),
            OrderStatus::Fulfilled => Event::of(self.id, &events::OrderFulfilled(snapshot)),
            OrderStatus::Cancelled => Event::of(self.id, &events::OrderCancelled(snapshot)),
            OrderStatus::Expired => Event::of(self.id, &events::OrderExpired(snapshot)),
            OrderStatus::Refunded => Event::of(self.id, &events::OrderRefunded(snapshot)),
        }
    }
}

/// A page of orders and how many there are in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderPage {
    /// The page, newest first.
    pub orders: Vec<Order>,
    /// Orders matching the listing, on every page.
    pub total: i64,
}

/// Which slice of a listing to return (newest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// How many, 1..=100.
    pub limit: i64,
    /// How many to skip.
    pub offset: i64,
}

impl Page {
    /// Validates `limit` (default 20, at most 100) and `offset` (default 0).
    pub fn parse(limit: Option<i64>, offset: Option<i64>) -> Result<Self, DomainError> {
        let limit = limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(DomainError::invalid("limit", "must be between 1 and 100"));
        }
        let offset = offset.unwrap_or(0);
        if offset < 0 {
            return Err(DomainError::invalid("offset", "must be zero or more"));
        }
        Ok(Self { limit, offset })
    }
}

/// A line that could not be reserved at checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Shortage {
    /// The product.
    pub product_id: ProductId,
    /// Units wanted.
    pub requested: i64,
    /// Units available (0 for a deleted product).
    pub available: i64,
}

/// How orders reach product stock (implemented over the ProductStock actors).
#[async_trait]
pub trait StockGateway: Send + Sync + 'static {
    /// Holds units for an order.
    async fn reserve(
        &self,
        product: ProductId,
        order: OrderId,
        quantity: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<StockLevels, DomainError>;
    /// Drops an order's hold.
    async fn release(&self, product: ProductId, order: OrderId)
        -> Result<StockLevels, DomainError>;
    /// Turns an order's hold into a sale.
    async fn commit(&self, product: ProductId, order: OrderId) -> Result<StockLevels, DomainError>;
    /// Puts an order's sold units back on the shelf (its refund); once per
    /// product and order, so a repeat (a retried refund) adds nothing.
    async fn return_sold(
        &self,
        product: ProductId,
        order: OrderId,
        quantity: i64,
    ) -> Result<StockLevels, DomainError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    /// What an event carries reads back as the order it was taken from.
    #[test]
    fn an_order_reads_back_from_its_snapshot() {
        let at = crate::now();
        let eur = Currency::parse("EUR").unwrap();
        let order = Order {
            id: OrderId::new(),
            user_id: UserId(uuid::Uuid::now_v7()),
            status: OrderStatus::Cancelled,
            lines: vec![OrderLine {
                product_id: ProductId(uuid::Uuid::now_v7()),
                name: "Mug".into(),
                sku: "MUG-1".into(),
                quantity: 2,
                unit_price: Money {
                    amount: 450,
                    currency: eur,
                },
            }],
            total: Money {
                amount: 900,
                currency: eur,
            },
            created_at: at,
            expires_at: at + chrono::Duration::minutes(15),
            history: vec![
                StatusChange {
                    status: OrderStatus::PendingPayment,
                    at,
                    reason: None,
                },
                StatusChange {
                    status: OrderStatus::Cancelled,
                    at,
                    reason: Some("changed my mind".into()),
                },
            ],
            idempotency_key: None,
        };
        assert_eq!(Order::from_snapshot(&order.snapshot()).unwrap(), order);
        let mut malformed = order.snapshot();
        malformed.total.currency = "EURO".into();
        assert!(Order::from_snapshot(&malformed).is_err());
    }
}
