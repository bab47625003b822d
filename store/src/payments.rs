//! The payments service's sessions and the local provider's intents
//! (`PaymentStore`), on either database. Sessions are created and updated by the
//! store writer (`kernel.rs`, with the rest of a group commit).

use crate::db::{self, Pool, Row};
use crate::errors::corrupt;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::payments::{IntentStatus, PaymentSession, PaymentStatus, ProviderIntent};
use pazar_actors::{Money, OrderId, StoreError};
use pazar_payments::local::LocalIntent;
use pazar_payments::PaymentStore;
use uuid::Uuid;

/// The `payment_sessions` and `local_payment_intents` tables.
pub struct Payments {
    pub(crate) pool: Pool,
}

fn session_from_row(row: &Row) -> Result<PaymentSession, StoreError> {
    let status: String = row.get("status")?;
    let currency: String = row.get("currency")?;
    Ok(PaymentSession {
        order_id: OrderId(row.get::<Uuid>("order_id")?),
        provider: row.get("provider")?,
        intent_id: row.get("intent_id")?,
        client_secret: row.get("client_secret")?,
        status: PaymentStatus::parse(&status).ok_or_else(|| corrupt("payment status", &status))?,
        amount: Money::total(row.get("amount")?, &currency)
            .map_err(|e| corrupt("payment amount", e))?,
        last_error: row.get("last_error")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn local_intent_from_row(row: &Row) -> Result<LocalIntent, StoreError> {
    let status: String = row.get("status")?;
    let currency: String = row.get("currency")?;
    Ok(LocalIntent {
        intent: ProviderIntent {
            id: row.get("id")?,
            client_secret: row.get("client_secret")?,
            status: IntentStatus::parse(&status)
                .ok_or_else(|| corrupt("intent status", &status))?,
            last_error: row.get("last_error")?,
        },
        order_id: OrderId(row.get::<Uuid>("order_id")?),
        amount: Money::total(row.get("amount")?, &currency)
            .map_err(|e| corrupt("intent amount", e))?,
        created_at: row.get("created_at")?,
    })
}

impl Payments {
    async fn one_session(
        &self,
        sql: &str,
        key: &dyn db::Param,
    ) -> Result<Option<PaymentSession>, StoreError> {
        let row = db::sql(sql).bind(key).fetch_optional(&self.pool).await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn one_intent(
        &self,
        sql: &str,
        key: &dyn db::Param,
    ) -> Result<Option<LocalIntent>, StoreError> {
        let row = db::sql(sql).bind(key).fetch_optional(&self.pool).await?;
        row.as_ref().map(local_intent_from_row).transpose()
    }
}

#[async_trait]
impl PaymentStore for Payments {
    async fn payment_session(&self, order: OrderId) -> Result<Option<PaymentSession>, StoreError> {
        self.one_session(
            "select * from payment_sessions where order_id = $1",
            &order.0,
        )
        .await
    }

    async fn payment_session_by_intent(
        &self,
        intent_id: &str,
    ) -> Result<Option<PaymentSession>, StoreError> {
        let intent_id = intent_id.to_owned();
        self.one_session(
            "select * from payment_sessions where intent_id = $1",
            &intent_id,
        )
        .await
    }

    async fn stuck_payment_sessions(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OrderId>, StoreError> {
        let rows = db::sql(
            "select order_id from payment_sessions \
             where status in ('requires_payment', 'processing', 'failed') \
             and coalesce(checked_at, updated_at) < $1 \
             order by coalesce(checked_at, updated_at) limit $2",
        )
        .bind(&before)
        .bind(&limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.get::<Uuid>("order_id").map(OrderId))
            .collect()
    }

    async fn mark_payment_session_checked(
        &self,
        order: OrderId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        db::sql("update payment_sessions set checked_at = $1 where order_id = $2")
            .bind(&at)
            .bind(&order.0)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn local_intent_for_order(
        &self,
        order: OrderId,
    ) -> Result<Option<LocalIntent>, StoreError> {
        self.one_intent(
            "select * from local_payment_intents where order_id = $1",
            &order.0,
        )
        .await
    }

    async fn local_intent_by_secret(
        &self,
        secret: &str,
    ) -> Result<Option<LocalIntent>, StoreError> {
        let secret = secret.to_owned();
        self.one_intent(
            "select * from local_payment_intents where client_secret = $1",
            &secret,
        )
        .await
    }

    async fn local_intent(&self, id: &str) -> Result<Option<LocalIntent>, StoreError> {
        let id = id.to_owned();
        self.one_intent("select * from local_payment_intents where id = $1", &id)
            .await
    }

    async fn insert_local_intent(&self, local: &LocalIntent) -> Result<bool, StoreError> {
        let (currency, status) = (
            local.amount.currency.as_str().to_owned(),
            local.intent.status.as_str().to_owned(),
        );
        db::sql(
            "insert into local_payment_intents (id, order_id, amount, currency, client_secret, \
             status, last_error, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8) \
             on conflict (order_id) do nothing",
        )
        .bind(&local.intent.id)
        .bind(&local.order_id.0)
        .bind(&local.amount.amount)
        .bind(&currency)
        .bind(&local.intent.client_secret)
        .bind(&status)
        .bind(&local.intent.last_error)
        .bind(&local.created_at)
        .execute(&self.pool)
        .await
        .map(|inserted| inserted == 1)
    }

    async fn update_local_intent(&self, local: &LocalIntent) -> Result<(), StoreError> {
        let status = local.intent.status.as_str().to_owned();
        db::sql("update local_payment_intents set status = $2, last_error = $3 where id = $1")
            .bind(&local.intent.id)
            .bind(&status)
            .bind(&local.intent.last_error)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}
