//! The SQLite backend: the embedded default, one file under the data directory.

use crate::StoreOpenError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

/// Pazar's store on a SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// The store writer's own connection: a group commit never waits for a
    /// connection behind subscribers' and requests' queries.
    pub(crate) writer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file named by a `sqlite:` URL.
    ///
    /// WAL journal with `synchronous = FULL`: a commit is on disk before it returns,
    /// so an answered request survives a crash or power loss.
    pub async fn connect(url: &str) -> Result<Self, StoreOpenError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(folder) = options.get_filename().parent() {
            if !folder.as_os_str().is_empty() {
                std::fs::create_dir_all(folder).map_err(sqlx::Error::Io)?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Self { pool, writer })
    }

    /// Applies `migrations/sqlite`; returns how many migrations were new.
    pub async fn migrate(&self) -> Result<usize, StoreOpenError> {
        let migrator = sqlx::migrate!("../migrations/sqlite");
        let before = applied(&self.pool).await;
        migrator.run(&self.pool).await?;
        Ok(applied(&self.pool).await.saturating_sub(before))
    }
}

async fn applied(pool: &SqlitePool) -> usize {
    sqlx::query_scalar::<_, i64>("select count(*) from _sqlx_migrations")
        .fetch_one(pool)
        .await
        .map(|n| n as usize)
        .unwrap_or(0)
}
