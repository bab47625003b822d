//! The store: every store port implemented with sqlx for SQLite and PostgreSQL.
//!
//! All of Pazar's SQL lives in this crate, and both backends share it, because
//! sqlx decodes the same Rust types (`Uuid`, `DateTime<Utc>`, `i64`) on both; what
//! differs — connection options and migrations in `sqlite.rs` and `postgres.rs`,
//! the case-insensitive `LIKE` in `catalog.rs`. The backend is chosen once, from the URL
//! scheme, by [`connect`], which returns [`Stores`]: one port per service.
//!
//! One plain module per port, each written once for both databases over `db.rs`
//! (a pool of either database): `catalog.rs` (`ProductStore`), `orders.rs`
//! (`OrderStore`), `users.rs` (`UserStore`), `payments.rs` (`PaymentStore`),
//! `mail.rs` (`MailStore`), `bridge.rs` (`BridgeLedger`: the Kafka bridge's
//! processed events and dead letters), and `kernel.rs` (`pazar_actors::Store`: the group
//! commit and the outbox), with `outbox.rs` appending events inside any port's
//! transaction and `errors.rs` mapping driver errors.

mod bridge;
mod catalog;
mod db;
mod errors;
mod kernel;
mod leases;
mod mail;
mod orders;
mod outbox;
mod payments;
mod postgres;
mod sqlite;
mod users;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use pazar_actors::{BridgeLedger, RoleLeases, Store};
use pazar_catalog::ProductStore;
use pazar_notifications::MailStore;
use pazar_orders::OrderStore;
use pazar_payments::PaymentStore;
use pazar_users::UserStore;
use std::sync::Arc;

/// Why the store could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum StoreOpenError {
    /// The URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL scheme in {0:?}: use sqlite:// or postgres://")]
    UnsupportedScheme(String),
    /// The database could not be reached or created.
    #[error("cannot open the database: {0}")]
    Connect(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Every store port of one database, for the process to hand to its services.
#[derive(Clone)]
pub struct Stores {
    /// The shared kernel's store: the group commit and the outbox.
    pub kernel: Arc<dyn Store>,
    /// The notifications service's mail queue.
    pub mails: Arc<dyn MailStore>,
    /// The users service's accounts and login attempts.
    pub users: Arc<dyn UserStore>,
    /// The payments service's sessions and local intents.
    pub payments: Arc<dyn PaymentStore>,
    /// The catalog service's products and stock rows.
    pub products: Arc<dyn ProductStore>,
    /// The orders service's carts and orders.
    pub orders: Arc<dyn OrderStore>,
    /// Role leases, which fence the kernel's batches (PostgreSQL only: SQLite
    /// runs every role in one process).
    pub leases: Option<Arc<dyn RoleLeases>>,
    /// The Kafka bridge's records: processed events and dead letters.
    pub bridge: Arc<dyn BridgeLedger>,
}

impl Stores {
    /// Every port over one database: the kernel's store, and the services'
    /// ports over its general pool.
    fn new(kernel: Arc<dyn Store>, pool: db::Pool, leases: Option<Arc<dyn RoleLeases>>) -> Self {
        Self {
            kernel,
            leases,
            mails: Arc::new(mail::Mails { pool: pool.clone() }),
            users: Arc::new(users::Users { pool: pool.clone() }),
            payments: Arc::new(payments::Payments { pool: pool.clone() }),
            products: Arc::new(catalog::Products { pool: pool.clone() }),
            bridge: Arc::new(bridge::Ledger { pool: pool.clone() }),
            orders: Arc::new(orders::Orders { pool }),
        }
    }

    fn sqlite(store: SqliteStore) -> Self {
        let kernel = kernel::Kernel {
            pool: db::Pool::Sqlite(store.pool.clone()),
            writer: db::Pool::Sqlite(store.writer),
            fence: leases::Fence::default(),
        };
        Self::new(Arc::new(kernel), db::Pool::Sqlite(store.pool), None)
    }

    fn postgres(store: PostgresStore) -> Self {
        let fence = leases::Fence::default();
        let kernel = kernel::Kernel {
            pool: db::Pool::Postgres(store.pool.clone()),
            writer: db::Pool::Postgres(store.writer),
            fence: fence.clone(),
        };
        let leases = leases::Leases {
            pool: db::Pool::Postgres(store.pool.clone()),
            fence,
        };
        Self::new(
            Arc::new(kernel),
            db::Pool::Postgres(store.pool),
            Some(Arc::new(leases)),
        )
    }
}

/// Query connections a PostgreSQL store opens at most, unless told otherwise
/// (`PAZAR_DB_POOL_SIZE`); the store writer has one more of its own.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// Opens the store named by `url`, creating a SQLite file (and its folder) if missing.
/// Migrations are not run: call [`migrate`] (or [`connect_and_migrate`]).
pub async fn connect(url: &str) -> Result<Stores, StoreOpenError> {
    Ok(match Backend::of(url)? {
        Backend::Sqlite => Stores::sqlite(SqliteStore::connect(url).await?),
        Backend::Postgres => {
            Stores::postgres(PostgresStore::connect(url, DEFAULT_POOL_SIZE).await?)
        }
    })
}

/// Opens the store and brings its schema up to date.
pub async fn connect_and_migrate(url: &str) -> Result<Stores, StoreOpenError> {
    connect_and_migrate_with(url, DEFAULT_POOL_SIZE).await
}

/// [`connect_and_migrate`] with at most `pool_size` query connections on
/// PostgreSQL (processes of split roles share one server's connection limit).
pub async fn connect_and_migrate_with(url: &str, pool_size: u32) -> Result<Stores, StoreOpenError> {
    Ok(match Backend::of(url)? {
        Backend::Sqlite => {
            let store = SqliteStore::connect(url).await?;
            store.migrate().await?;
            Stores::sqlite(store)
        }
        Backend::Postgres => {
            let store = PostgresStore::connect(url, pool_size).await?;
            store.migrate().await?;
            Stores::postgres(store)
        }
    })
}

/// Runs the migrations of the database named by `url`; returns how many were applied.
pub async fn migrate(url: &str) -> Result<usize, StoreOpenError> {
    match Backend::of(url)? {
        Backend::Sqlite => SqliteStore::connect(url).await?.migrate().await,
        Backend::Postgres => {
            PostgresStore::connect(url, DEFAULT_POOL_SIZE)
                .await?
                .migrate()
                .await
        }
    }
}

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:` — the embedded default.
    Sqlite,
    /// `postgres:` or `postgresql:`.
    Postgres,
}

impl Backend {
    /// The backend for a URL.
    pub fn of(url: &str) -> Result<Self, StoreOpenError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(StoreOpenError::UnsupportedScheme(redact(url)))
        }
    }
}

/// A URL with any password replaced, safe to log.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &url[..scheme_end], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a `LIKE` pattern.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/pazar"),
            "postgres://app:***@db:5432/pazar"
        );
        assert_eq!(redact("sqlite://data/pazar.db"), "sqlite://data/pazar.db");
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_off"), "%50\\%\\_off%");
    }

    #[test]
    fn backend_from_scheme() {
        assert_eq!(Backend::of("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("postgresql://h/db").unwrap(), Backend::Postgres);
        assert!(Backend::of("mysql://h/db").is_err());
    }
}
