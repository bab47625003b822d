//! The PostgreSQL backend, chosen when `DATABASE_URL` starts with `postgres://`.

use crate::StoreOpenError;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::Duration;

/// Pazar's store on PostgreSQL.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    /// The store writer's own connection: a group commit never waits for a
    /// connection behind subscribers' and requests' queries.
    pub(crate) writer: PgPool,
}

impl PostgresStore {
    /// Connects to the database named by a `postgres:` URL, with at most
    /// `pool_size` connections for queries (and one for the store writer).
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, StoreOpenError> {
        // No ping before each use: it is a round trip on every query. A dead
        // connection fails its query and is dropped; the next one reconnects.
        let options = |connections| {
            PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
        };
        let pool = options(pool_size.max(2)).connect(url).await?;
        let writer = options(1).connect(url).await?;
        Ok(Self { pool, writer })
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
