//! The shared kernel's store (`pazar_actors::Store`): the store writer's group
//! commit, and the outbox's reads and subscribers' cursors, on either database.
//!
//! A group commit applies, in one transaction: the batch's stock changes
//! (consecutive reservations as one multi-row INSERT, consecutive releases and
//! commits as one DELETE, one UPDATE per product with its net change), its new
//! orders (four multi-row statements), its order transitions (one UPDATE per
//! status pair and one history INSERT), its new payment sessions (one multi-row
//! INSERT) and payment sessions' updates, all
//! their events, and the Kafka bridge's records of the messages they apply.
//! On PostgreSQL a batch of holds, new orders and events alone (the hot path
//! of reservations and checkouts) is first tried as one statement
//! ([`one_statement`]).

mod one_statement;

use crate::db::{self, Param, Pool, Tx};
use crate::errors::corrupt;
use async_trait::async_trait;
use pazar_actors::{
    Event, Order, OrderId, OrderStatus, OrderTransition, PaymentSession, ProductId, Reservation,
    StockChange, Store, StoreError, StoredEvent, WriteSet,
};
use std::collections::HashMap;
use uuid::Uuid;

/// SQLite allows 32766 parameters per statement; the widest row here has 10.
const ROWS_PER_STATEMENT: usize = 1000;

/// The kernel's tables: the outbox, its head, the cursors; and, for the group
/// commit, every table an entity actor writes.
pub struct Kernel {
    /// The general pool (reads).
    pub(crate) pool: Pool,
    /// The store writer's own connection: a group commit never waits for a
    /// connection behind subscribers' and requests' queries.
    pub(crate) writer: Pool,
    /// The role leases this process holds: every batch checks their epochs.
    pub(crate) fence: crate::leases::Fence,
}

#[async_trait]
impl Store for Kernel {
    async fn ping(&self) -> Result<(), StoreError> {
        db::sql("select 1").execute(&self.pool).await.map(|_| ())
    }

    async fn commit_batch(
        &self,
        writes: &WriteSet<'_>,
        events: &[Event],
    ) -> Result<(), StoreError> {
        if let Pool::Postgres(writer) = &self.writer {
            let held = self.fence.held();
            if let one_statement::Outcome::Committed =
                one_statement::commit(writer, &held, writes, events).await?
            {
                return Ok(());
            }
        }
        let mut tx = self.writer.begin().await?;
        self.fence.check(&mut tx).await?;
        apply_stock(&mut tx, writes.stock).await?;
        insert_orders(&mut tx, writes.orders).await?;
        transition_orders(&mut tx, writes.transitions).await?;
        insert_payment_sessions(&mut tx, writes.opened).await?;
        for session in writes.payments {
            update_payment_session(&mut tx, session).await?;
        }
        crate::outbox::append(tx.conn(), events).await?;
        crate::bridge::record_handled(tx.conn(), writes.handled).await?;
        tx.commit().await
    }

    async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = db::sql(
            "select seq, id, type, subject, time, source, version, data, traceparent \
             from outbox_events where seq > $1 order by seq limit $2",
        )
        .bind(&after)
        .bind(&limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let data: String = row.get("data")?;
                Ok(StoredEvent {
                    seq: row.get("seq")?,
                    event: Event {
                        id: row.get("id")?,
                        kind: row.get("type")?,
                        subject: row.get("subject")?,
                        time: row.get("time")?,
                        source: row.get("source")?,
                        version: row.get("version")?,
                        data: serde_json::from_str(&data).map_err(|e| corrupt("event data", e))?,
                        traceparent: row.get("traceparent")?,
                    },
                })
            })
            .collect()
    }

    async fn last_event_seq(&self) -> Result<i64, StoreError> {
        db::sql("select last_seq from outbox_head where id = 1")
            .fetch_one(&self.pool)
            .await?
            .get("last_seq")
    }

    async fn event_cursor(&self, subscriber: &str) -> Result<i64, StoreError> {
        let subscriber = subscriber.to_owned();
        match db::sql("select last_seq from event_cursors where subscriber = $1")
            .bind(&subscriber)
            .fetch_optional(&self.pool)
            .await?
        {
            Some(row) => row.get("last_seq"),
            None => Ok(0),
        }
    }

    async fn save_event_cursor(&self, subscriber: &str, seq: i64) -> Result<(), StoreError> {
        let subscriber = subscriber.to_owned();
        db::sql(
            "insert into event_cursors (subscriber, last_seq) values ($1, $2) \
             on conflict (subscriber) do update set last_seq = excluded.last_seq",
        )
        .bind(&subscriber)
        .bind(&seq)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }
}

/// The batch's stock changes, in order, with as few statements as possible.
async fn apply_stock(tx: &mut Tx, changes: &[StockChange]) -> Result<(), StoreError> {
    // Per product, the net change of (on_hand, reserved) over the batch: one
    // UPDATE per product however many reservations the batch holds.
    let mut net: HashMap<ProductId, (i64, i64)> = HashMap::new();
    // Consecutive reservations (the hot-product case) become one multi-row
    // INSERT, consecutive releases and commits one DELETE; order relative to
    // other changes is kept.
    let mut inserts: Vec<(ProductId, &Reservation)> = Vec::new();
    let mut deletes: Vec<(ProductId, OrderId)> = Vec::new();
    for change in changes {
        let removes = matches!(
            change,
            StockChange::Release { .. } | StockChange::Commit { .. }
        );
        if !matches!(change, StockChange::Reserve { .. }) {
            insert_reservations(tx, &mut inserts).await?;
        }
        if !removes {
            delete_reservations(tx, &mut deletes).await?;
        }
        match change {
            StockChange::Reserve {
                product_id,
                reservation,
            } => {
                inserts.push((*product_id, reservation));
                net.entry(*product_id).or_default().1 += reservation.quantity;
            }
            StockChange::Release {
                product_id,
                order_id,
                quantity,
            } => {
                deletes.push((*product_id, *order_id));
                net.entry(*product_id).or_default().1 -= quantity;
            }
            StockChange::Commit {
                product_id,
                order_id,
                quantity,
            } => {
                deletes.push((*product_id, *order_id));
                let entry = net.entry(*product_id).or_default();
                entry.0 -= quantity;
                entry.1 -= quantity;
            }
            StockChange::Adjust {
                product_id,
                delta,
                reason,
            } => {
                let now = pazar_actors::now();
                db::sql(
                    "insert into stock_adjustments (product_id, delta, reason, created_at) \
                     values ($1, $2, $3, $4)",
                )
                .bind(&product_id.0)
                .bind(delta)
                .bind(reason)
                .bind(&now)
                .execute_in(tx.conn())
                .await?;
                net.entry(*product_id).or_default().0 += delta;
            }
            StockChange::Return {
                product_id,
                order_id,
                quantity,
            } => {
                // The unique (product_id, order_id) refuses a second return.
                db::sql(
                    "insert into stock_adjustments \
                     (product_id, delta, reason, created_at, order_id) \
                     values ($1, $2, $3, $4, $5)",
                )
                .bind(&product_id.0)
                .bind(quantity)
                .bind(&format!("refund of order {order_id}"))
                .bind(&pazar_actors::now())
                .bind(&order_id.0)
                .execute_in(tx.conn())
                .await?;
                net.entry(*product_id).or_default().0 += quantity;
            }
            StockChange::Retire { product_id } => {
                db::sql("delete from products where id = $1")
                    .bind(&product_id.0)
                    .execute_in(tx.conn())
                    .await?;
                net.remove(product_id);
            }
        }
    }
    insert_reservations(tx, &mut inserts).await?;
    delete_reservations(tx, &mut deletes).await?;
    for (product_id, (on_hand, reserved)) in net {
        if on_hand == 0 && reserved == 0 {
            continue;
        }
        db::sql(
            "update product_stock set on_hand = on_hand + $2, reserved = reserved + $3 \
             where product_id = $1",
        )
        .bind(&product_id.0)
        .bind(&on_hand)
        .bind(&reserved)
        .execute_in(tx.conn())
        .await?;
    }
    Ok(())
}

/// Inserts and empties `pending`.
async fn insert_reservations(
    tx: &mut Tx,
    pending: &mut Vec<(ProductId, &Reservation)>,
) -> Result<(), StoreError> {
    for rows in pending.chunks(ROWS_PER_STATEMENT) {
        let sources: Vec<String> = rows
            .iter()
            .map(|(_, reservation)| reservation.source.as_str().to_owned())
            .collect();
        let sql = format!(
            "insert into stock_reservations (product_id, order_id, quantity, expires_at, source) \
             values {}",
            db::rows(rows.len(), 5)
        );
        let mut insert = db::sql(&sql);
        for ((product_id, reservation), source) in rows.iter().zip(&sources) {
            let values: [&dyn Param; 5] = [
                &product_id.0,
                &reservation.order_id.0,
                &reservation.quantity,
                &reservation.expires_at,
                source,
            ];
            insert = insert.bind_all(values);
        }
        insert.execute_in(tx.conn()).await?;
    }
    pending.clear();
    Ok(())
}

/// Deletes the reservations `pending` names (one DELETE) and clears it.
async fn delete_reservations(
    tx: &mut Tx,
    pending: &mut Vec<(ProductId, OrderId)>,
) -> Result<(), StoreError> {
    for rows in pending.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "delete from stock_reservations where (product_id, order_id) in (values {})",
            db::rows(rows.len(), 2)
        );
        let mut delete = db::sql(&sql);
        for (product_id, order_id) in rows {
            delete = delete.bind(&product_id.0).bind(&order_id.0);
        }
        delete.execute_in(tx.conn()).await?;
    }
    pending.clear();
    Ok(())
}

/// Inserts orders with their lines and history and empties their users' carts:
/// four statements however many orders the batch holds.
async fn insert_orders(tx: &mut Tx, orders: &[Order]) -> Result<(), StoreError> {
    for chunk in orders.chunks(ROWS_PER_STATEMENT) {
        let texts: Vec<[String; 2]> = chunk
            .iter()
            .map(|order| {
                [
                    order.status.as_str().to_owned(),
                    order.total.currency.as_str().to_owned(),
                ]
            })
            .collect();
        let sql = format!(
            "insert into orders (id, user_id, status, total_amount, total_currency, created_at, \
             expires_at, idempotency_key) values {}",
            db::rows(chunk.len(), 8)
        );
        let mut insert = db::sql(&sql);
        for (order, [status, currency]) in chunk.iter().zip(&texts) {
            let values: [&dyn Param; 8] = [
                &order.id.0,
                &order.user_id.0,
                status,
                &order.total.amount,
                currency,
                &order.created_at,
                &order.expires_at,
                &order.idempotency_key,
            ];
            insert = insert.bind_all(values);
        }
        insert
            .execute_unique_in(tx.conn(), "orders_idempotency")
            .await?;
        let sql = format!(
            "delete from cart_lines where user_id in ({})",
            db::list(chunk.len(), 1)
        );
        let mut delete = db::sql(&sql);
        for order in chunk {
            delete = delete.bind(&order.user_id.0);
        }
        delete.execute_in(tx.conn()).await?;
    }
    let lines: Vec<(Uuid, i32, &pazar_actors::OrderLine, String)> = orders
        .iter()
        .flat_map(|order| {
            order.lines.iter().enumerate().map(|(i, line)| {
                let currency = line.unit_price.currency.as_str().to_owned();
                (order.id.0, i as i32, line, currency)
            })
        })
        .collect();
    for chunk in lines.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "insert into order_lines (order_id, position, product_id, name, sku, quantity, \
             unit_amount, currency) values {}",
            db::rows(chunk.len(), 8)
        );
        let mut insert = db::sql(&sql);
        for (order, position, line, currency) in chunk {
            let values: [&dyn Param; 8] = [
                order,
                position,
                &line.product_id.0,
                &line.name,
                &line.sku,
                &line.quantity,
                &line.unit_price.amount,
                currency,
            ];
            insert = insert.bind_all(values);
        }
        insert.execute_in(tx.conn()).await?;
    }
    let history: Vec<HistoryRow> = orders
        .iter()
        .flat_map(|order| {
            order
                .history
                .iter()
                .enumerate()
                .map(|(i, change)| HistoryRow {
                    order: order.id.0,
                    position: i as i32,
                    status: change.status.as_str().to_owned(),
                    at: change.at,
                    reason: change.reason.clone(),
                })
        })
        .collect();
    insert_history(tx, &history).await
}

/// A row of `order_history`.
struct HistoryRow {
    order: Uuid,
    position: i32,
    status: String,
    at: chrono::DateTime<chrono::Utc>,
    reason: Option<String>,
}

async fn insert_history(tx: &mut Tx, rows: &[HistoryRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "insert into order_history (order_id, position, status, at, reason) values {}",
            db::rows(chunk.len(), 5)
        );
        let mut insert = db::sql(&sql);
        for row in chunk {
            let values: [&dyn Param; 5] =
                [&row.order, &row.position, &row.status, &row.at, &row.reason];
            insert = insert.bind_all(values);
        }
        insert.execute_in(tx.conn()).await?;
    }
    Ok(())
}

/// Moves each order to its transition's status and appends the history entries:
/// one UPDATE per (from, to) pair and one INSERT, however many orders.
/// `Conflict` if any order is no longer in `from`.
async fn transition_orders(tx: &mut Tx, transitions: &[OrderTransition]) -> Result<(), StoreError> {
    let mut moves: Vec<((OrderStatus, OrderStatus), Vec<Uuid>)> = Vec::new();
    for transition in transitions {
        let pair = (transition.from, transition.change.status);
        match moves.iter_mut().find(|(seen, _)| *seen == pair) {
            Some((_, ids)) => ids.push(transition.order_id.0),
            None => moves.push((pair, vec![transition.order_id.0])),
        }
    }
    for ((from, to), ids) in &moves {
        let (to, from) = (to.as_str().to_owned(), from.as_str().to_owned());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "update orders set status = $1 where status = $2 and id in ({})",
                db::list(chunk.len(), 3)
            );
            let mut update = db::sql(&sql).bind(&to).bind(&from);
            for id in chunk {
                update = update.bind(id);
            }
            if update.execute_in(tx.conn()).await? != chunk.len() as u64 {
                return Err(StoreError::Conflict {
                    constraint: "orders_status".into(),
                });
            }
        }
    }
    let history: Vec<HistoryRow> = transitions
        .iter()
        .map(|transition| HistoryRow {
            order: transition.order_id.0,
            position: transition.position as i32,
            status: transition.change.status.as_str().to_owned(),
            at: transition.change.at,
            reason: transition.change.reason.clone(),
        })
        .collect();
    insert_history(tx, &history).await
}

/// Stores new payment sessions: one multi-row INSERT. `Conflict` if an order
/// has a session.
async fn insert_payment_sessions(
    tx: &mut Tx,
    sessions: &[PaymentSession],
) -> Result<(), StoreError> {
    for chunk in sessions.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "insert into payment_sessions (order_id, provider, intent_id, client_secret, \
             status, amount, currency, last_error, created_at, updated_at) values {}",
            db::rows(chunk.len(), 10)
        );
        // Owned text: a bound value must outlive the statement.
        let labels: Vec<(String, String)> = chunk
            .iter()
            .map(|s| {
                (
                    s.status.as_str().to_owned(),
                    s.amount.currency.as_str().to_owned(),
                )
            })
            .collect();
        let mut insert = db::sql(&sql);
        for (session, (status, currency)) in chunk.iter().zip(&labels) {
            let values: [&dyn Param; 10] = [
                &session.order_id.0,
                &session.provider,
                &session.intent_id,
                &session.client_secret,
                status,
                &session.amount.amount,
                currency,
                &session.last_error,
                &session.created_at,
                &session.updated_at,
            ];
            insert = insert.bind_all(values);
        }
        insert
            .execute_unique_in(tx.conn(), "payment_sessions_pkey")
            .await?;
    }
    Ok(())
}

/// Stores a payment session's new status, error and `updated_at`.
async fn update_payment_session(tx: &mut Tx, session: &PaymentSession) -> Result<(), StoreError> {
    let status = session.status.as_str().to_owned();
    db::sql(
        "update payment_sessions set status = $2, last_error = $3, updated_at = $4 \
         where order_id = $1",
    )
    .bind(&session.order_id.0)
    .bind(&status)
    .bind(&session.last_error)
    .bind(&session.updated_at)
    .execute_in(tx.conn())
    .await
    .map(|_| ())
}
