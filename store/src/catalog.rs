//! The catalog service's products and stock rows (`ProductStore`), on either
//! database. Stock changes are committed by the store writer (`kernel.rs`).

use crate::db::{self, Pool, Row};
use crate::errors::corrupt;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::{
    Event, HoldSource, Money, OrderId, Product, ProductId, ProductView, Reservation, Sku,
    StockLevels, StockRecord, StoreError,
};
use pazar_catalog::{ProductPage, ProductQuery, ProductStore};
use uuid::Uuid;

/// The `products`, `product_stock` and `stock_reservations` tables.
pub struct Products {
    pub(crate) pool: Pool,
}

const COLUMNS: &str = "p.id, p.name, p.description, p.sku, p.price_amount, p.price_currency, \
     p.created_at, p.updated_at, s.on_hand, s.reserved";

fn product_from_row(row: &Row) -> Result<ProductView, StoreError> {
    let sku: String = row.get("sku")?;
    let currency: String = row.get("price_currency")?;
    Ok(ProductView {
        product: Product {
            id: ProductId(row.get::<Uuid>("id")?),
            name: row.get("name")?,
            description: row.get("description")?,
            sku: Sku::parse(&sku).map_err(|e| corrupt("sku", e))?,
            price: Money::price(row.get("price_amount")?, &currency)
                .map_err(|e| corrupt("price", e))?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
        },
        stock: StockLevels::new(row.get("on_hand")?, row.get("reserved")?),
    })
}

impl Products {
    /// Products whose name, SKU or description contains `$1` (any case), or all
    /// when `$1` is null.
    fn text_filter(&self) -> String {
        let like = match self.pool {
            // SQLite's `like` ignores ASCII case; PostgreSQL needs `ilike`.
            Pool::Sqlite(_) => "like",
            Pool::Postgres(_) => "ilike",
        };
        format!(
            "(cast($1 as text) is null or p.name {like} $1 escape '\\' \
             or p.sku {like} $1 escape '\\' or p.description {like} $1 escape '\\')"
        )
    }
}

#[async_trait]
impl ProductStore for Products {
    async fn insert_products(
        &self,
        products: &[(Product, i64)],
        events: &[Event],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (product, on_hand) in products {
            let (sku, currency) = (
                product.sku.as_str().to_owned(),
                product.price.currency.as_str().to_owned(),
            );
            db::sql(
                "insert into products (id, name, description, sku, price_amount, \
                 price_currency, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&product.id.0)
            .bind(&product.name)
            .bind(&product.description)
            .bind(&sku)
            .bind(&product.price.amount)
            .bind(&currency)
            .bind(&product.created_at)
            .bind(&product.updated_at)
            .execute_unique_in(tx.conn(), "products_sku")
            .await?;
            db::sql("insert into product_stock (product_id, on_hand, reserved) values ($1, $2, 0)")
                .bind(&product.id.0)
                .bind(on_hand)
                .execute_in(tx.conn())
                .await?;
        }
        crate::outbox::append(tx.conn(), events).await?;
        tx.commit().await
    }

    async fn update_product(&self, product: &Product, event: &Event) -> Result<(), StoreError> {
        let (sku, currency) = (
            product.sku.as_str().to_owned(),
            product.price.currency.as_str().to_owned(),
        );
        let mut tx = self.pool.begin().await?;
        let updated = db::sql(
            "update products set name = $2, description = $3, sku = $4, price_amount = $5, \
             price_currency = $6, updated_at = $7 where id = $1",
        )
        .bind(&product.id.0)
        .bind(&product.name)
        .bind(&product.description)
        .bind(&sku)
        .bind(&product.price.amount)
        .bind(&currency)
        .bind(&product.updated_at)
        .execute_unique_in(tx.conn(), "products_sku")
        .await?;
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        crate::outbox::append(tx.conn(), std::slice::from_ref(event)).await?;
        tx.commit().await
    }

    async fn product(&self, id: ProductId) -> Result<Option<ProductView>, StoreError> {
        let sql = format!(
            "select {COLUMNS} from products p join product_stock s on s.product_id = p.id \
             where p.id = $1"
        );
        let row = db::sql(&sql).bind(&id.0).fetch_optional(&self.pool).await?;
        row.as_ref().map(product_from_row).transpose()
    }

    async fn product_id_by_sku(&self, sku: &str) -> Result<Option<ProductId>, StoreError> {
        let sku = sku.to_owned();
        db::sql("select id from products where sku = $1")
            .bind(&sku)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.get("id").map(ProductId))
            .transpose()
    }

    async fn list_products(&self, query: &ProductQuery) -> Result<ProductPage, StoreError> {
        let pattern = query.text.as_deref().map(crate::like_pattern);
        let filter = self.text_filter();
        let sql = format!(
            "select {COLUMNS} from products p join product_stock s on s.product_id = p.id \
             where {filter} order by p.created_at, p.id limit $2 offset $3"
        );
        let rows = db::sql(&sql)
            .bind(&pattern)
            .bind(&query.limit)
            .bind(&query.offset)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(product_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let count = format!("select count(*) as total from products p where {filter}");
        let total: i64 = db::sql(&count)
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?
            .get("total")?;
        Ok(ProductPage { items, total })
    }

    async fn products_after(
        &self,
        after: Option<ProductId>,
        limit: i64,
    ) -> Result<Vec<ProductView>, StoreError> {
        let sql = format!(
            "select {COLUMNS} from products p join product_stock s on s.product_id = p.id \
             where p.id > $1 order by p.id limit $2"
        );
        // Every product id is above the nil UUID.
        let after = after.map_or(Uuid::nil(), |product| product.0);
        let rows = db::sql(&sql)
            .bind(&after)
            .bind(&limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(product_from_row).collect()
    }

    async fn stock_returned(&self, product: ProductId, order: OrderId) -> Result<bool, StoreError> {
        Ok(db::sql(
            "select 1 as returned from stock_adjustments where product_id = $1 and order_id = $2",
        )
        .bind(&product.0)
        .bind(&order.0)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    async fn load_stock(&self, id: ProductId) -> Result<Option<StockRecord>, StoreError> {
        let Some(row) = db::sql("select on_hand from product_stock where product_id = $1")
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let on_hand: i64 = row.get("on_hand")?;
        let rows = db::sql(
            "select order_id, quantity, expires_at, source from stock_reservations \
             where product_id = $1 order by order_id",
        )
        .bind(&id.0)
        .fetch_all(&self.pool)
        .await?;
        let reservations = rows
            .iter()
            .map(|row| {
                Ok(Reservation {
                    order_id: OrderId(row.get::<Uuid>("order_id")?),
                    quantity: row.get("quantity")?,
                    expires_at: row.get("expires_at")?,
                    source: match row.get::<String>("source")?.as_str() {
                        "checkout" => HoldSource::Checkout,
                        _ => HoldSource::Manual,
                    },
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(StockRecord {
            on_hand,
            reservations,
        }))
    }

    async fn expired_manual_holds(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(ProductId, OrderId)>, StoreError> {
        let rows = db::sql(
            "select r.product_id, r.order_id from stock_reservations r \
             where r.source = 'manual' and r.expires_at <= $1 order by r.expires_at limit $2",
        )
        .bind(&now)
        .bind(&limit)
        .fetch_all(&self.pool)
        .await?;
        hold_pairs(&rows)
    }
}

/// `(product, order)` of stock reservation rows.
pub(crate) fn hold_pairs(rows: &[Row]) -> Result<Vec<(ProductId, OrderId)>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok((
                ProductId(row.get::<Uuid>("product_id")?),
                OrderId(row.get::<Uuid>("order_id")?),
            ))
        })
        .collect()
}
