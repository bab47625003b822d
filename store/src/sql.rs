//! The SQL of the ports not yet cut per service, written once and instantiated
//! per database, and the error mapping every module shares.
//!
//! `impl_store!(Type, Database)` implements [`pazar_actors::Store`] for a struct
//! with a `pool` field. Placeholders are `$N`, which SQLite and PostgreSQL both
//! accept.

use pazar_actors::error::Cause;
use pazar_actors::StoreError;

/// Maps a driver error to the port's error; a unique violation becomes a conflict
/// on `constraint`.
pub(crate) fn store_error(error: sqlx::Error, constraint: &str) -> StoreError {
    match &error {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            constraint: constraint.to_owned(),
        },
        sqlx::Error::Database(_) => StoreError::Rejected(Cause::new(error)),
        _ => StoreError::Other(Cause::new(error)),
    }
}

/// For errors where no unique constraint is expected.
pub(crate) fn other(error: sqlx::Error) -> StoreError {
    store_error(error, "")
}

/// A stored value that does not parse: the database holds something Pazar never wrote.
pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Other(Cause::message(format!(
        "corrupt {what} in the store: {error}"
    )))
}

macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        mod store_impl {
            use super::*;
            use crate::sql::{corrupt, other, store_error};
            use async_trait::async_trait;
            use chrono::Utc;
            use pazar_actors::{
                Event, Order, OrderId, OrderLine, OrderStatus, ProductId, Reservation,
                StatusChange, StockChange, OrderTransition, WriteSet, Store, StoreError,
                StoredEvent,
            };
            use pazar_actors::PaymentSession;
            use sqlx::Row;
            use std::collections::HashMap;
            use uuid::Uuid;


            #[async_trait]
            impl Store for $store {
                async fn ping(&self) -> Result<(), StoreError> {
                    sqlx::query("select 1")
                        .execute(&self.pool)
                        .await
                        .map(|_| ())
                        .map_err(other)
                }

                async fn commit_batch(
                    &self,
                    writes: &WriteSet<'_>,
                    events: &[Event],
                ) -> Result<(), StoreError> {
                    // Per product, the net change of (on_hand, reserved) over the batch:
                    // one UPDATE per product however many reservations the batch holds.
                    let mut net: HashMap<ProductId, (i64, i64)> = HashMap::new();
                    let mut tx = self.writer.begin().await.map_err(other)?;
                    // Consecutive reservations (the hot-product case) become one
                    // multi-row INSERT, consecutive releases and commits one DELETE;
                    // order relative to other changes is kept.
                    let mut inserts: Vec<(ProductId, &Reservation)> = Vec::new();
                    let mut deletes: Vec<(ProductId, OrderId)> = Vec::new();
                    for change in writes.stock {
                        let removes = matches!(
                            change,
                            StockChange::Release { .. } | StockChange::Commit { .. }
                        );
                        if !matches!(change, StockChange::Reserve { .. }) {
                            insert_reservations(&mut tx, &mut inserts).await?;
                        }
                        if !removes {
                            delete_reservations(&mut tx, &mut deletes).await?;
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
                                sqlx::query(
                                    "insert into stock_adjustments \
                                     (product_id, delta, reason, created_at) \
                                     values ($1, $2, $3, $4)",
                                )
                                .bind(product_id.0)
                                .bind(delta)
                                .bind(reason)
                                .bind(Utc::now())
                                .execute(&mut *tx)
                                .await
                                .map_err(other)?;
                                net.entry(*product_id).or_default().0 += delta;
                            }
                            StockChange::Retire { product_id } => {
                                sqlx::query("delete from products where id = $1")
                                    .bind(product_id.0)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(other)?;
                                net.remove(product_id);
                            }
                        }
                    }
                    insert_reservations(&mut tx, &mut inserts).await?;
                    delete_reservations(&mut tx, &mut deletes).await?;
                    for (product_id, (on_hand, reserved)) in net {
                        if on_hand == 0 && reserved == 0 {
                            continue;
                        }
                        sqlx::query(
                            "update product_stock set on_hand = on_hand + $2, \
                             reserved = reserved + $3 where product_id = $1",
                        )
                        .bind(product_id.0)
                        .bind(on_hand)
                        .bind(reserved)
                        .execute(&mut *tx)
                        .await
                        .map_err(other)?;
                    }
                    insert_orders(&mut tx, writes.orders).await?;
                    transition_orders(&mut tx, writes.transitions).await?;
                    for session in writes.payments {
                        update_payment_session(&mut tx, session).await?;
                    }
                    insert_events(&mut tx, events).await?;
                    tx.commit().await.map_err(other)
                }

                async fn events_after(
                    &self,
                    after: i64,
                    limit: i64,
                ) -> Result<Vec<StoredEvent>, StoreError> {
                    let rows = sqlx::query(
                        "select seq, id, type, subject, time, source, version, data \
                         from outbox_events where seq > $1 order by seq limit $2",
                    )
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(other)?;
                    rows.iter()
                        .map(|row| {
                            let data: String = row.try_get("data").map_err(other)?;
                            Ok(StoredEvent {
                                seq: row.try_get("seq").map_err(other)?,
                                event: Event {
                                    id: row.try_get("id").map_err(other)?,
                                    kind: row.try_get("type").map_err(other)?,
                                    subject: row.try_get("subject").map_err(other)?,
                                    time: row.try_get("time").map_err(other)?,
                                    source: row.try_get("source").map_err(other)?,
                                    version: row.try_get("version").map_err(other)?,
                                    data: serde_json::from_str(&data)
                                        .map_err(|e| corrupt("event data", e))?,
                                },
                            })
                        })
                        .collect()
                }

                async fn last_event_seq(&self) -> Result<i64, StoreError> {
                    sqlx::query_scalar("select last_seq from outbox_head where id = 1")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(other)
                }

                async fn event_cursor(&self, subscriber: &str) -> Result<i64, StoreError> {
                    let seq: Option<i64> = sqlx::query_scalar(
                        "select last_seq from event_cursors where subscriber = $1",
                    )
                    .bind(subscriber)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(other)?;
                    Ok(seq.unwrap_or(0))
                }

                async fn save_event_cursor(
                    &self,
                    subscriber: &str,
                    seq: i64,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "insert into event_cursors (subscriber, last_seq) values ($1, $2) \
                         on conflict (subscriber) do update set last_seq = excluded.last_seq",
                    )
                    .bind(subscriber)
                    .bind(seq)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(other)
                }
            }

            /// Inserts orders with their lines and history and empties their users'
            /// carts: four statements however many orders the batch holds.
            async fn insert_orders(
                tx: &mut sqlx::Transaction<'static, $db>,
                orders: &[Order],
            ) -> Result<(), StoreError> {
                // At most 8 parameters a row; SQLite allows 32766 per statement.
                const ROWS_PER_STATEMENT: usize = 1000;
                for chunk in orders.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "insert into orders (id, user_id, status, total_amount, total_currency, \
                         created_at, expires_at, idempotency_key) ",
                    );
                    insert.push_values(chunk, |mut row, order| {
                        row.push_bind(order.id.0)
                            .push_bind(order.user_id.0)
                            .push_bind(order.status.as_str())
                            .push_bind(order.total.amount)
                            .push_bind(order.total.currency.as_str())
                            .push_bind(order.created_at)
                            .push_bind(order.expires_at)
                            .push_bind(order.idempotency_key.clone());
                    });
                    insert
                        .build()
                        .execute(&mut **tx)
                        .await
                        .map_err(|e| store_error(e, "orders_idempotency"))?;
                    let mut delete =
                        sqlx::QueryBuilder::<$db>::new("delete from cart_lines where user_id in (");
                    let mut users = delete.separated(", ");
                    for order in chunk {
                        users.push_bind(order.user_id.0);
                    }
                    delete.push(")");
                    delete.build().execute(&mut **tx).await.map_err(other)?;
                }
                let lines: Vec<(OrderId, usize, &OrderLine)> = orders
                    .iter()
                    .flat_map(|order| {
                        order.lines.iter().enumerate().map(|(i, line)| (order.id, i, line))
                    })
                    .collect();
                for chunk in lines.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "insert into order_lines (order_id, position, product_id, name, sku, \
                         quantity, unit_amount, currency) ",
                    );
                    insert.push_values(chunk, |mut row, (order, position, line)| {
                        row.push_bind(order.0)
                            .push_bind(*position as i32)
                            .push_bind(line.product_id.0)
                            .push_bind(line.name.clone())
                            .push_bind(line.sku.clone())
                            .push_bind(line.quantity)
                            .push_bind(line.unit_price.amount)
                            .push_bind(line.unit_price.currency.as_str());
                    });
                    insert.build().execute(&mut **tx).await.map_err(other)?;
                }
                let history: Vec<(OrderId, usize, &StatusChange)> = orders
                    .iter()
                    .flat_map(|order| {
                        order.history.iter().enumerate().map(|(i, change)| (order.id, i, change))
                    })
                    .collect();
                for chunk in history.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "insert into order_history (order_id, position, status, at, reason) ",
                    );
                    insert.push_values(chunk, |mut row, (order, position, change)| {
                        row.push_bind(order.0)
                            .push_bind(*position as i32)
                            .push_bind(change.status.as_str())
                            .push_bind(change.at)
                            .push_bind(change.reason.clone());
                    });
                    insert.build().execute(&mut **tx).await.map_err(other)?;
                }
                Ok(())
            }

            /// Moves each order to its transition's status and appends the history
            /// entries, inside `tx`: one UPDATE per (from, to) pair and one INSERT,
            /// however many orders. `Conflict` if any order is no longer in `from`.
            async fn transition_orders(
                tx: &mut sqlx::Transaction<'static, $db>,
                transitions: &[OrderTransition],
            ) -> Result<(), StoreError> {
                // 1 parameter a row; SQLite allows 32766 per statement.
                const ROWS_PER_STATEMENT: usize = 1000;
                let mut moves: Vec<((OrderStatus, OrderStatus), Vec<Uuid>)> = Vec::new();
                for transition in transitions {
                    let pair = (transition.from, transition.change.status);
                    match moves.iter_mut().find(|(seen, _)| *seen == pair) {
                        Some((_, ids)) => ids.push(transition.order_id.0),
                        None => moves.push((pair, vec![transition.order_id.0])),
                    }
                }
                for ((from, to), ids) in &moves {
                    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                        let mut update = sqlx::QueryBuilder::<$db>::new("update orders set status = ");
                        update
                            .push_bind(to.as_str())
                            .push(" where status = ")
                            .push_bind(from.as_str())
                            .push(" and id in (");
                        let mut ids = update.separated(", ");
                        for id in chunk {
                            ids.push_bind(*id);
                        }
                        update.push(")");
                        let done = update.build().execute(&mut **tx).await.map_err(other)?;
                        if done.rows_affected() != chunk.len() as u64 {
                            return Err(StoreError::Conflict {
                                constraint: "orders_status".into(),
                            });
                        }
                    }
                }
                // 5 parameters a row.
                for chunk in transitions.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "insert into order_history (order_id, position, status, at, reason) ",
                    );
                    insert.push_values(chunk, |mut row, transition| {
                        row.push_bind(transition.order_id.0)
                            .push_bind(transition.position as i32)
                            .push_bind(transition.change.status.as_str())
                            .push_bind(transition.change.at)
                            .push_bind(transition.change.reason.clone());
                    });
                    insert.build().execute(&mut **tx).await.map_err(other)?;
                }
                Ok(())
            }

            /// Stores a payment session's new status, error and `updated_at` inside `tx`.
            async fn update_payment_session(
                tx: &mut sqlx::Transaction<'static, $db>,
                session: &PaymentSession,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "update payment_sessions set status = $2, last_error = $3, \
                     updated_at = $4 where order_id = $1",
                )
                .bind(session.order_id.0)
                .bind(session.status.as_str())
                .bind(session.last_error.as_deref())
                .bind(session.updated_at)
                .execute(&mut **tx)
                .await
                .map(|_| ())
                .map_err(other)
            }

            /// Appends `events` to the outbox inside `tx` (see `outbox.rs`).
            async fn insert_events(
                tx: &mut sqlx::Transaction<'static, $db>,
                events: &[Event],
            ) -> Result<(), StoreError> {
                use crate::db::AsConn;
                crate::outbox::append(tx.conn(), events).await
            }

            /// Inserts and empties `pending` with as few statements as possible.
            async fn insert_reservations(
                tx: &mut sqlx::Transaction<'static, $db>,
                pending: &mut Vec<(ProductId, &Reservation)>,
            ) -> Result<(), StoreError> {
                // 5 parameters a row; SQLite allows 32766 per statement.
                const ROWS_PER_STATEMENT: usize = 1000;
                for rows in pending.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "insert into stock_reservations \
                         (product_id, order_id, quantity, expires_at, source) ",
                    );
                    insert.push_values(rows, |mut row, (product_id, reservation)| {
                        row.push_bind(product_id.0)
                            .push_bind(reservation.order_id.0)
                            .push_bind(reservation.quantity)
                            .push_bind(reservation.expires_at)
                            .push_bind(reservation.source.as_str());
                    });
                    insert.build().execute(&mut **tx).await.map_err(other)?;
                }
                pending.clear();
                Ok(())
            }

            /// Deletes the reservations `pending` names (one DELETE) and clears it.
            async fn delete_reservations(
                tx: &mut sqlx::Transaction<'static, $db>,
                pending: &mut Vec<(ProductId, OrderId)>,
            ) -> Result<(), StoreError> {
                // 2 parameters a row; SQLite allows 32766 per statement.
                const ROWS_PER_STATEMENT: usize = 1000;
                for rows in pending.chunks(ROWS_PER_STATEMENT) {
                    let mut delete = sqlx::QueryBuilder::<$db>::new(
                        "delete from stock_reservations where (product_id, order_id) in (values ",
                    );
                    let mut pairs = delete.separated(", ");
                    for (product_id, order_id) in rows {
                        pairs.push("(");
                        pairs.push_bind_unseparated(product_id.0);
                        pairs.push_unseparated(", ");
                        pairs.push_bind_unseparated(order_id.0);
                        pairs.push_unseparated(")");
                    }
                    delete.push(")");
                    delete.build().execute(&mut **tx).await.map_err(other)?;
                }
                pending.clear();
                Ok(())
            }
        }
    };
}

pub(crate) use impl_store;
