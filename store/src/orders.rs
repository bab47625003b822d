//! The orders service's carts and order reads (`OrderStore`), on either database.
//! New orders and their transitions are committed by the store writer (`kernel.rs`).

use crate::db::{self, Pool, Row};
use crate::errors::corrupt;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::{
    Money, Order, OrderId, OrderLine, OrderPage, OrderStatus, Page, ProductId, StatusChange,
    StoreError, UserId,
};
use pazar_orders::OrderStore;
use uuid::Uuid;

/// The `cart_lines`, `orders`, `order_lines` and `order_history` tables.
pub struct Orders {
    pub(crate) pool: Pool,
}

fn status_of(raw: &str) -> Result<OrderStatus, StoreError> {
    OrderStatus::parse(raw).ok_or_else(|| corrupt("order status", raw))
}

fn line_from_row(row: &Row) -> Result<OrderLine, StoreError> {
    let currency: String = row.get("currency")?;
    Ok(OrderLine {
        product_id: ProductId(row.get::<Uuid>("product_id")?),
        name: row.get("name")?,
        sku: row.get("sku")?,
        quantity: row.get("quantity")?,
        unit_price: Money::price(row.get("unit_amount")?, &currency)
            .map_err(|e| corrupt("order line price", e))?,
    })
}

fn change_from_row(row: &Row) -> Result<StatusChange, StoreError> {
    Ok(StatusChange {
        status: status_of(&row.get::<String>("status")?)?,
        at: row.get("at")?,
        reason: row.get("reason")?,
    })
}

fn ids(rows: &[Row], column: &str) -> Result<Vec<Uuid>, StoreError> {
    rows.iter().map(|row| row.get::<Uuid>(column)).collect()
}

impl Orders {
    /// The orders with these ids, in this order (those that exist).
    async fn orders_by_ids(&self, ids: Vec<Uuid>) -> Result<Vec<Order>, StoreError> {
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(order) = self.order(OrderId(id)).await? {
                orders.push(order);
            }
        }
        Ok(orders)
    }
}

#[async_trait]
impl OrderStore for Orders {
    async fn load_cart(&self, user: UserId) -> Result<Vec<(ProductId, i64)>, StoreError> {
        let rows = db::sql(
            "select product_id, quantity from cart_lines where user_id = $1 \
             order by added_at, product_id",
        )
        .bind(&user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    ProductId(row.get::<Uuid>("product_id")?),
                    row.get("quantity")?,
                ))
            })
            .collect()
    }

    async fn set_cart_line(
        &self,
        user: UserId,
        product: ProductId,
        quantity: i64,
    ) -> Result<(), StoreError> {
        let now = pazar_actors::now();
        db::sql(
            "insert into cart_lines (user_id, product_id, quantity, added_at) \
             values ($1, $2, $3, $4) on conflict (user_id, product_id) \
             do update set quantity = excluded.quantity",
        )
        .bind(&user.0)
        .bind(&product.0)
        .bind(&quantity)
        .bind(&now)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    async fn remove_cart_line(&self, user: UserId, product: ProductId) -> Result<(), StoreError> {
        db::sql("delete from cart_lines where user_id = $1 and product_id = $2")
            .bind(&user.0)
            .bind(&product.0)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn clear_cart(&self, user: UserId) -> Result<(), StoreError> {
        db::sql("delete from cart_lines where user_id = $1")
            .bind(&user.0)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let Some(row) = db::sql("select * from orders where id = $1")
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let lines = db::sql("select * from order_lines where order_id = $1 order by position")
            .bind(&id.0)
            .fetch_all(&self.pool)
            .await?;
        let history = db::sql("select * from order_history where order_id = $1 order by position")
            .bind(&id.0)
            .fetch_all(&self.pool)
            .await?;
        let currency: String = row.get("total_currency")?;
        Ok(Some(Order {
            id,
            user_id: UserId(row.get::<Uuid>("user_id")?),
            status: status_of(&row.get::<String>("status")?)?,
            total: Money::total(row.get("total_amount")?, &currency)
                .map_err(|e| corrupt("order total", e))?,
            created_at: row.get("created_at")?,
            expires_at: row.get("expires_at")?,
            idempotency_key: row.get("idempotency_key")?,
            lines: lines.iter().map(line_from_row).collect::<Result<_, _>>()?,
            history: history
                .iter()
                .map(change_from_row)
                .collect::<Result<_, _>>()?,
        }))
    }

    async fn order_by_idempotency_key(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<Order>, StoreError> {
        let key = key.to_owned();
        let row = db::sql("select id from orders where user_id = $1 and idempotency_key = $2")
            .bind(&user.0)
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => self.order(OrderId(row.get("id")?)).await,
            None => Ok(None),
        }
    }

    async fn orders_of_user(&self, user: UserId, page: Page) -> Result<OrderPage, StoreError> {
        let total: i64 = db::sql("select count(*) as total from orders where user_id = $1")
            .bind(&user.0)
            .fetch_one(&self.pool)
            .await?
            .get("total")?;
        let rows = db::sql(
            "select id from orders where user_id = $1 \
             order by created_at desc, id desc limit $2 offset $3",
        )
        .bind(&user.0)
        .bind(&page.limit)
        .bind(&page.offset)
        .fetch_all(&self.pool)
        .await?;
        let orders = self.orders_by_ids(ids(&rows, "id")?).await?;
        Ok(OrderPage { orders, total })
    }

    async fn orders_with_status(
        &self,
        status: Option<OrderStatus>,
        page: Page,
    ) -> Result<OrderPage, StoreError> {
        let status = status.map(|status| status.as_str().to_owned());
        let total: i64 = db::sql(
            "select count(*) as total from orders \
             where (cast($1 as text) is null or status = $1)",
        )
        .bind(&status)
        .fetch_one(&self.pool)
        .await?
        .get("total")?;
        let rows = db::sql(
            "select id from orders where (cast($1 as text) is null or status = $1) \
             order by created_at desc, id desc limit $2 offset $3",
        )
        .bind(&status)
        .bind(&page.limit)
        .bind(&page.offset)
        .fetch_all(&self.pool)
        .await?;
        let orders = self.orders_by_ids(ids(&rows, "id")?).await?;
        Ok(OrderPage { orders, total })
    }

    async fn due_orders(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OrderId>, StoreError> {
        let rows = db::sql(
            "select id from orders where status = 'pending_payment' and expires_at <= $1 \
             order by expires_at limit $2",
        )
        .bind(&now)
        .bind(&limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids(&rows, "id")?.into_iter().map(OrderId).collect())
    }

    async fn order_exists(&self, id: OrderId) -> Result<bool, StoreError> {
        let row = db::sql("select id from orders where id = $1")
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn orphan_checkout_holds(
        &self,
        limit: i64,
    ) -> Result<Vec<(ProductId, OrderId)>, StoreError> {
        let rows = db::sql(
            "select r.product_id, r.order_id from stock_reservations r \
             where r.source = 'checkout' \
             and not exists (select 1 from orders o where o.id = r.order_id) \
             order by r.order_id limit $1",
        )
        .bind(&limit)
        .fetch_all(&self.pool)
        .await?;
        crate::catalog::hold_pairs(&rows)
    }
}
