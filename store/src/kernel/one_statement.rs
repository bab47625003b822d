//! PostgreSQL: a group commit of stock changes and events as one statement.
//!
//! The general path ([`super::Kernel::commit_batch`]) runs a batch as a
//! transaction of one statement per kind of write: for a batch of reservations
//! that is BEGIN, the reservations' INSERT, the stock UPDATE, the outbox head's
//! UPDATE, the events' INSERT and COMMIT, six round trips while the hot
//! product's row and the outbox head stay locked, so batches run strictly one
//! after another. Here the same writes are data-modifying CTEs of one statement,
//! committed on its own: one round trip. Its rows come as arrays (`unnest`), so
//! its text depends only on which kinds of write the batch has, and PostgreSQL
//! plans it once per connection whatever the batch's size.
//!
//! The parts of one statement share one snapshot and cannot see each other's
//! rows, so only batches whose writes do not depend on each other take this
//! path: reservations taken, released and committed (never the same hold twice),
//! new orders (their rows, lines and first history entries, and their users'
//! carts emptied), new payment sessions, events, and the Kafka bridge's
//! records. A new order's lines
//! do refer to its row written by another part: PostgreSQL checks foreign keys
//! at the end of the statement, when every part's rows exist. Anything else
//! (transitions, payment updates, adjustments, returns, retirements), and a batch the
//! fence stops or the database refuses for its data or timing, takes the
//! general path, which then reports exactly what it reports today.
//!
//! A flash sale's checkouts are such batches: the holds, then the orders. As
//! one statement an order batch is one round trip with one plan per connection,
//! where the general path is eight (nine with leases), each multi-row
//! statement a new text, parsed and planned anew, for every batch size.

use pazar_actors::{
    Event, Order, OrderLine, PaymentSession, StatusChange, StockChange, StoreError, WriteSet,
};
use sqlx::postgres::PgArguments;
use sqlx::{Arguments as _, PgPool, Postgres};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use uuid::Uuid;

/// What became of the batch.
pub(super) enum Outcome {
    /// Committed.
    Committed,
    /// Not committed: the general path must run it (a write this statement does
    /// not take, a refusal for the batch's data or timing, or a lease whose
    /// epoch moved on).
    Declined,
}

/// Commits `writes` and `events` as one statement when they allow it.
/// `held` are the role leases the batch is fenced by.
pub(super) async fn commit(
    pool: &PgPool,
    held: &[(String, i64)],
    writes: &WriteSet<'_>,
    events: &[Event],
) -> Result<Outcome, StoreError> {
    if !(writes.transitions.is_empty() && writes.payments.is_empty()) {
        return Ok(Outcome::Declined);
    }
    let Some(stock) = Stock::of(writes.stock) else {
        return Ok(Outcome::Declined);
    };
    let mut statement = Builder::default();
    let gate = if held.is_empty() {
        "true".to_owned()
    } else {
        let roles: Vec<&str> = held.iter().map(|(role, _)| role.as_str()).collect();
        let epochs: Vec<i64> = held.iter().map(|(_, epoch)| *epoch).collect();
        let (roles, epochs) = (statement.bind(roles), statement.bind(epochs));
        // The share lock makes a take-over wait for this batch, as on the general path.
        statement.part(
            "fence",
            format!(
                "select l.role from role_leases l \
                 join unnest({roles}::text[], {epochs}::int8[]) as h (role, epoch) \
                 on l.role = h.role and l.epoch = h.epoch for share of l"
            ),
        );
        format!("(select count(*) from fence) = {}", held.len())
    };
    if !stock.inserts.is_empty() {
        let products = statement.bind(column(&stock.inserts, |r| r.0));
        let orders = statement.bind(column(&stock.inserts, |r| r.1));
        let quantities = statement.bind(column(&stock.inserts, |r| r.2));
        let expiries = statement.bind(column(&stock.inserts, |r| r.3));
        let sources = statement.bind(column(&stock.inserts, |r| r.4));
        statement.part(
            "reserved",
            format!(
                "insert into stock_reservations \
                 (product_id, order_id, quantity, expires_at, source) \
                 select * from unnest({products}::uuid[], {orders}::uuid[], {quantities}::int8[], \
                 {expiries}::timestamptz[], {sources}::text[]) where {gate}"
            ),
        );
    }
    if !stock.deletes.is_empty() {
        let products = statement.bind(column(&stock.deletes, |r| r.0));
        let orders = statement.bind(column(&stock.deletes, |r| r.1));
        statement.part(
            "released",
            format!(
                "delete from stock_reservations r \
                 using unnest({products}::uuid[], {orders}::uuid[]) as d (product_id, order_id) \
                 where r.product_id = d.product_id and r.order_id = d.order_id and {gate}"
            ),
        );
    }
    let net: Vec<(Uuid, i64, i64)> = stock
        .net
        .iter()
        .filter(|(_, (on_hand, reserved))| *on_hand != 0 || *reserved != 0)
        .map(|(product, (on_hand, reserved))| (*product, *on_hand, *reserved))
        .collect();
    if !net.is_empty() {
        let products = statement.bind(column(&net, |r| r.0));
        let on_hand = statement.bind(column(&net, |r| r.1));
        let reserved = statement.bind(column(&net, |r| r.2));
        statement.part(
            "stock",
            format!(
                "update product_stock s \
                 set on_hand = s.on_hand + d.on_hand, reserved = s.reserved + d.reserved \
                 from unnest({products}::uuid[], {on_hand}::int8[], {reserved}::int8[]) \
                 as d (product_id, on_hand, reserved) \
                 where s.product_id = d.product_id and {gate}"
            ),
        );
    }
    if !writes.orders.is_empty() {
        orders(&mut statement, writes.orders, &gate);
    }
    if !writes.opened.is_empty() {
        sessions(&mut statement, writes.opened, &gate);
    }
    if !events.is_empty() {
        let count = statement.bind(events.len() as i64);
        let ids = statement.bind(column(events, |e| e.id));
        let kinds = statement.bind(column(events, |e| e.kind.as_str()));
        let subjects = statement.bind(column(events, |e| e.subject.as_str()));
        let times = statement.bind(column(events, |e| e.time));
        let sources = statement.bind(column(events, |e| e.source.as_str()));
        let versions = statement.bind(column(events, |e| e.version));
        let data = statement.bind(column(events, |e| e.data.to_string()));
        let traceparents = statement.bind(column(events, |e| e.traceparent.as_deref()));
        // The head's row lock orders event-writing transactions, as in `outbox::append`.
        statement.part(
            "head",
            format!(
                "update outbox_head set last_seq = last_seq + {count} \
                 where id = 1 and {gate} returning last_seq"
            ),
        );
        statement.part(
            "appended",
            format!(
                "insert into outbox_events \
                 (seq, id, type, subject, time, source, version, data, traceparent) \
                 select head.last_seq - {count} + e.n, e.id, e.type, e.subject, e.time, \
                 e.source, e.version, e.data, e.traceparent \
                 from head, unnest({ids}::uuid[], {kinds}::text[], {subjects}::text[], \
                 {times}::timestamptz[], {sources}::text[], {versions}::int4[], \
                 {data}::text[], {traceparents}::text[]) with ordinality \
                 as e (id, type, subject, time, source, version, data, traceparent, n)"
            ),
        );
    }
    if !writes.handled.is_empty() {
        let subscribers = statement.bind(column(writes.handled, |h| h.subscriber.as_str()));
        let messages = statement.bind(column(writes.handled, |h| h.message));
        statement.part(
            "handled",
            format!(
                "insert into processed_events (subscriber, event_id) \
                 select * from unnest({subscribers}::text[], {messages}::uuid[]) where {gate} \
                 on conflict (subscriber, event_id) do nothing"
            ),
        );
    }
    if statement.unencodable {
        return Ok(Outcome::Declined);
    }
    match statement.run(pool, &gate).await {
        Ok(true) => Ok(Outcome::Committed),
        // Fenced: nothing was written; the general path names the role.
        Ok(false) => Ok(Outcome::Declined),
        // Refused for its data (a constraint, a value PostgreSQL will not store) or
        // its timing (a deadlock): nothing was written, and the general path finds
        // and reports the write at fault. Any other refusal (this statement's own
        // text, say) is an error, so a mistake here cannot hide behind the fallback.
        Err(sqlx::Error::Database(error))
            if error.code().is_some_and(|code| {
                ["22", "23", "40"]
                    .iter()
                    .any(|class| code.starts_with(class))
            }) =>
        {
            Ok(Outcome::Declined)
        }
        Err(error) => Err(crate::errors::other(error)),
    }
}

/// A batch's stock changes as this statement writes them.
struct Stock {
    /// Reservations taken: product, order, quantity, expiry, source.
    inserts: Vec<(Uuid, Uuid, i64, chrono::DateTime<chrono::Utc>, &'static str)>,
    /// Reservations released or committed: product, order.
    deletes: Vec<(Uuid, Uuid)>,
    /// Per product, the net change of (on_hand, reserved).
    net: HashMap<Uuid, (i64, i64)>,
}

impl Stock {
    /// The batch's stock changes, or `None` when they include a change this path
    /// does not take, or touch one hold twice (taken and released, say).
    fn of(changes: &[StockChange]) -> Option<Stock> {
        let mut stock = Stock {
            inserts: Vec::new(),
            deletes: Vec::new(),
            net: HashMap::new(),
        };
        let mut holds = HashSet::new();
        for change in changes {
            match change {
                StockChange::Reserve {
                    product_id,
                    reservation,
                } => {
                    if !holds.insert((product_id.0, reservation.order_id.0)) {
                        return None;
                    }
                    stock.inserts.push((
                        product_id.0,
                        reservation.order_id.0,
                        reservation.quantity,
                        reservation.expires_at,
                        reservation.source.as_str(),
                    ));
                    stock.net.entry(product_id.0).or_default().1 += reservation.quantity;
                }
                StockChange::Release {
                    product_id,
                    order_id,
                    quantity,
                }
                | StockChange::Commit {
                    product_id,
                    order_id,
                    quantity,
                } => {
                    if !holds.insert((product_id.0, order_id.0)) {
                        return None;
                    }
                    stock.deletes.push((product_id.0, order_id.0));
                    let net = stock.net.entry(product_id.0).or_default();
                    if let StockChange::Commit { .. } = change {
                        // Sold: the units leave the shelf too.
                        net.0 -= quantity;
                    }
                    net.1 -= quantity;
                }
                StockChange::Adjust { .. }
                | StockChange::Return { .. }
                | StockChange::Retire { .. } => return None,
            }
        }
        Some(stock)
    }
}

/// New orders: their rows, lines and history, and their users' carts emptied
/// (as `insert_orders` does on the general path).
fn orders(statement: &mut Builder, orders: &[Order], gate: &str) {
    let ids = statement.bind(column(orders, |o| o.id.0));
    let users = statement.bind(column(orders, |o| o.user_id.0));
    let statuses = statement.bind(column(orders, |o| o.status.as_str()));
    let amounts = statement.bind(column(orders, |o| o.total.amount));
    let currencies = statement.bind(column(orders, |o| o.total.currency.as_str()));
    let created = statement.bind(column(orders, |o| o.created_at));
    let expires = statement.bind(column(orders, |o| o.expires_at));
    let keys = statement.bind(column(orders, |o| o.idempotency_key.as_deref()));
    statement.part(
        "ordered",
        format!(
            "insert into orders (id, user_id, status, total_amount, total_currency, \
             created_at, expires_at, idempotency_key) \
             select * from unnest({ids}::uuid[], {users}::uuid[], {statuses}::text[], \
             {amounts}::int8[], {currencies}::text[], {created}::timestamptz[], \
             {expires}::timestamptz[], {keys}::text[]) where {gate}"
        ),
    );
    let lines: Vec<(uuid::Uuid, i32, &OrderLine)> = numbered(orders, |o| o.lines.as_slice());
    let order_ids = statement.bind(column(&lines, |l| l.0));
    let positions = statement.bind(column(&lines, |l| l.1));
    let products = statement.bind(column(&lines, |l| l.2.product_id.0));
    let names = statement.bind(column(&lines, |l| l.2.name.as_str()));
    let skus = statement.bind(column(&lines, |l| l.2.sku.as_str()));
    let quantities = statement.bind(column(&lines, |l| l.2.quantity));
    let prices = statement.bind(column(&lines, |l| l.2.unit_price.amount));
    let currencies = statement.bind(column(&lines, |l| l.2.unit_price.currency.as_str()));
    statement.part(
        "lined",
        format!(
            "insert into order_lines (order_id, position, product_id, name, sku, quantity, \
             unit_amount, currency) \
             select * from unnest({order_ids}::uuid[], {positions}::int4[], {products}::uuid[], \
             {names}::text[], {skus}::text[], {quantities}::int8[], {prices}::int8[], \
             {currencies}::text[]) where {gate}"
        ),
    );
    let history: Vec<(uuid::Uuid, i32, &StatusChange)> = numbered(orders, |o| o.history.as_slice());
    let order_ids = statement.bind(column(&history, |h| h.0));
    let positions = statement.bind(column(&history, |h| h.1));
    let statuses = statement.bind(column(&history, |h| h.2.status.as_str()));
    let times = statement.bind(column(&history, |h| h.2.at));
    let reasons = statement.bind(column(&history, |h| h.2.reason.as_deref()));
    statement.part(
        "recorded",
        format!(
            "insert into order_history (order_id, position, status, at, reason) \
             select * from unnest({order_ids}::uuid[], {positions}::int4[], {statuses}::text[], \
             {times}::timestamptz[], {reasons}::text[]) where {gate}"
        ),
    );
    statement.part(
        "emptied",
        format!("delete from cart_lines where user_id = any({users}::uuid[]) and {gate}"),
    );
}

/// New payment sessions (as `insert_payment_sessions` writes them on the
/// general path).
fn sessions(statement: &mut Builder, sessions: &[PaymentSession], gate: &str) {
    let orders = statement.bind(column(sessions, |s| s.order_id.0));
    let providers = statement.bind(column(sessions, |s| s.provider.as_str()));
    let intents = statement.bind(column(sessions, |s| s.intent_id.as_str()));
    let secrets = statement.bind(column(sessions, |s| s.client_secret.as_str()));
    let statuses = statement.bind(column(sessions, |s| s.status.as_str()));
    let amounts = statement.bind(column(sessions, |s| s.amount.amount));
    let currencies = statement.bind(column(sessions, |s| s.amount.currency.as_str()));
    let errors = statement.bind(column(sessions, |s| s.last_error.as_deref()));
    let created = statement.bind(column(sessions, |s| s.created_at));
    let updated = statement.bind(column(sessions, |s| s.updated_at));
    statement.part(
        "opened",
        format!(
            "insert into payment_sessions (order_id, provider, intent_id, client_secret, \
             status, amount, currency, last_error, created_at, updated_at) \
             select * from unnest({orders}::uuid[], {providers}::text[], {intents}::text[], \
             {secrets}::text[], {statuses}::text[], {amounts}::int8[], {currencies}::text[], \
             {errors}::text[], {created}::timestamptz[], {updated}::timestamptz[]) where {gate}"
        ),
    );
}

/// Each order's `items` with the order's id and the item's position in it.
fn numbered<'o, T>(
    orders: &'o [Order],
    items: impl Fn(&'o Order) -> &'o [T],
) -> Vec<(uuid::Uuid, i32, &'o T)> {
    orders
        .iter()
        .flat_map(|order| {
            items(order)
                .iter()
                .enumerate()
                .map(move |(position, item)| (order.id.0, position as i32, item))
        })
        .collect()
}

/// One column of `rows`, to bind as an array.
fn column<'r, R, T>(rows: &'r [R], field: impl Fn(&'r R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

/// The statement being built: its CTEs and their parameters.
#[derive(Default)]
struct Builder {
    parts: String,
    arguments: PgArguments,
    count: usize,
    /// A value could not be encoded (too large for the protocol).
    unencodable: bool,
}

impl Builder {
    /// Binds `value` as the next parameter; its placeholder.
    fn bind<'q, T>(&mut self, value: T) -> String
    where
        T: sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + 'q,
    {
        // Encoding fails only for a value too large for the protocol: the batch
        // then takes the general path, which reports it.
        self.unencodable |= self.arguments.add(value).is_err();
        self.count += 1;
        format!("${}", self.count)
    }

    /// Adds the CTE `name as (sql)`.
    fn part(&mut self, name: &str, sql: String) {
        let joiner = if self.parts.is_empty() { "with " } else { ", " };
        let _ = write!(self.parts, "{joiner}{name} as ({sql})");
    }

    /// Runs it as one statement (its own transaction); whether `gate` held.
    async fn run(self, pool: &PgPool, gate: &str) -> Result<bool, sqlx::Error> {
        let sql = format!("{} select {gate} as ok", self.parts);
        let row = sqlx::query_with(&sql, self.arguments)
            .fetch_one(pool)
            .await?;
        sqlx::Row::try_get(&row, "ok")
    }
}
