//! The PostgreSQL backend, chosen when `DATABASE_URL` starts with `postgres://`.

use crate::StoreOpenError;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::Duration;

/// Pazar's store on PostgreSQL.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database named by a `postgres:` URL.
    pub async fn connect(url: &str) -> Result<Self, StoreOpenError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            // No ping before each use: it is a round trip on every query. A dead
            // connection fails its query and is dropped; the next one reconnects.
            .test_before_acquire(false)
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// Applies `migrations/postgres`; returns how many migrations were new.
    pub async fn migrate(&self) -> Result<usize, StoreOpenError> {
        let migrator = sqlx::migrate!("../migrations/postgres");
        let before = applied(&self.pool).await;
        migrator.run(&self.pool).await?;
        Ok(applied(&self.pool).await.saturating_sub(before))
    }
}

async fn applied(pool: &PgPool) -> usize {
    sqlx::query_scalar::<_, i64>("select count(*) from _sqlx_migrations")
        .fetch_one(pool)
        .await
        .map(|n| n as usize)
        .unwrap_or(0)
}

crate::sql::impl_store!(PostgresStore, sqlx::Postgres, "ilike");
