//! A pool of either database, so that an aggregate's SQL is written once, as
//! plain functions (no macro): statements use `$N` placeholders, which SQLite and
//! PostgreSQL both accept, and bind values both drivers encode.
//!
//! ```ignore
//! let rows = db::sql("select id from mails where status = $1")
//!     .bind(&"queued")
//!     .fetch_all(&pool)
//!     .await?;
//! let id: Uuid = rows[0].get("id")?;
//! ```

use crate::errors::{other, store_error};
use pazar_actors::StoreError;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};

/// The general pool of the store's database.
#[derive(Clone)]
pub(crate) enum Pool {
    /// The embedded default.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

impl Pool {
    /// Starts a transaction.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        match self {
            Pool::Sqlite(pool) => pool.begin().await.map(Tx::Sqlite),
            Pool::Postgres(pool) => pool.begin().await.map(Tx::Postgres),
        }
        .map_err(other)
    }
}

/// A transaction of either database.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Its connection, to run statements in it.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(tx) => Conn::Sqlite(tx),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    /// Commits it.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
        .map_err(other)
    }
}

/// A connection of either database (a transaction's, or one from a pool).
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Conn<'_> {
    /// The same connection for one more statement.
    pub(crate) fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(conn) => Conn::Sqlite(conn),
            Conn::Postgres(conn) => Conn::Postgres(conn),
        }
    }
}

/// A value both drivers can bind (owned text: `String`, not `&str`, whose SQLite
/// encoding is tied to one lifetime).
pub(crate) trait Param: Sync {
    fn bind_sqlite<'q>(
        &'q self,
        query: Query<'q, Sqlite, SqliteArguments<'q>>,
    ) -> Query<'q, Sqlite, SqliteArguments<'q>>;
    fn bind_postgres<'q>(
        &'q self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments>;
}

impl<T> Param for T
where
    T: for<'q> sqlx::Encode<'q, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'q> sqlx::Encode<'q, Postgres>
        + sqlx::Type<Postgres>
        + Sync,
{
    fn bind_sqlite<'q>(
        &'q self,
        query: Query<'q, Sqlite, SqliteArguments<'q>>,
    ) -> Query<'q, Sqlite, SqliteArguments<'q>> {
        query.bind(self)
    }

    fn bind_postgres<'q>(
        &'q self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        query.bind(self)
    }
}

/// A statement and its parameters, run on either database.
pub(crate) struct Statement<'q> {
    sql: &'q str,
    params: Vec<&'q dyn Param>,
}

/// The text SQLite runs for `sql`. When its placeholders are `$1, $2, …` in
/// order, each once (every multi-row statement built with [`rows`] and [`list`]),
/// they become anonymous `?`: SQLite finds a named parameter by a linear scan of
/// the statement's names, so binding a large batch by name was quadratic (a
/// 5-column insert of 64 reservations binds 320 names; the profile showed
/// `sqlite3_bind_parameter_name` at 4% of the process).
pub(crate) fn sqlite_sql(sql: &str) -> std::borrow::Cow<'_, str> {
    let mut positional = String::with_capacity(sql.len());
    let mut next = 1;
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        let digits = rest[at + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if rest[at + 1..at + 1 + digits].parse::<usize>() != Ok(next) {
            return std::borrow::Cow::Borrowed(sql);
        }
        positional.push_str(&rest[..at]);
        positional.push('?');
        rest = &rest[at + 1 + digits..];
        next += 1;
    }
    if next == 1 {
        return std::borrow::Cow::Borrowed(sql);
    }
    positional.push_str(rest);
    std::borrow::Cow::Owned(positional)
}

/// `count` rows of `width` placeholders each, numbered from `$1`, for a
/// multi-row `values` list: `rows(2, 2)` is `($1, $2), ($3, $4)`.
pub(crate) fn rows(count: usize, width: usize) -> String {
    (0..count)
        .map(|row| format!("({})", list(width, row * width + 1)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `count` placeholders numbered from `$first`: `list(3, 2)` is `$2, $3, $4`.
pub(crate) fn list(count: usize, first: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A statement with `$N` placeholders.
pub(crate) fn sql(sql: &str) -> Statement<'_> {
    Statement {
        sql,
        params: Vec::new(),
    }
}

impl<'q> Statement<'q> {
    /// Binds the next placeholder.
    pub(crate) fn bind(mut self, value: &'q dyn Param) -> Self {
        self.params.push(value);
        self
    }

    /// Binds the next placeholders, one row of a multi-row statement.
    pub(crate) fn bind_all<const N: usize>(mut self, values: [&'q dyn Param; N]) -> Self {
        self.params.extend(values);
        self
    }

    /// The query for SQLite over `sql` (this statement's text, or its positional
    /// form from [`sqlite_sql`]).
    fn sqlite<'s>(&'s self, sql: &'s str) -> Query<'s, Sqlite, SqliteArguments<'s>> {
        self.params
            .iter()
            .fold(sqlx::query(sql), |query, param| param.bind_sqlite(query))
    }

    fn postgres(&self) -> Query<'_, Postgres, PgArguments> {
        self.params
            .iter()
            .fold(sqlx::query(self.sql), |query, param| {
                param.bind_postgres(query)
            })
    }

    /// Runs it on a pool or a connection; the number of rows it changed.
    async fn run(self, on: On<'_>) -> Result<u64, sqlx::Error> {
        let changed = match on {
            On::Pool(Pool::Sqlite(pool)) => self
                .sqlite(&sqlite_sql(self.sql))
                .execute(pool)
                .await?
                .rows_affected(),
            On::Pool(Pool::Postgres(pool)) => self.postgres().execute(pool).await?.rows_affected(),
            On::Conn(Conn::Sqlite(conn)) => self
                .sqlite(&sqlite_sql(self.sql))
                .execute(conn)
                .await?
                .rows_affected(),
            On::Conn(Conn::Postgres(conn)) => self.postgres().execute(conn).await?.rows_affected(),
        };
        Ok(changed)
    }

    /// Runs it; the number of rows it changed.
    pub(crate) async fn execute(self, pool: &Pool) -> Result<u64, StoreError> {
        self.run(On::Pool(pool)).await.map_err(other)
    }

    /// Runs it on `conn`; the number of rows it changed.
    pub(crate) async fn execute_in(self, conn: Conn<'_>) -> Result<u64, StoreError> {
        self.run(On::Conn(conn)).await.map_err(other)
    }

    /// Runs it on `conn`; a unique violation is `Conflict { constraint }`.
    pub(crate) async fn execute_unique_in(
        self,
        conn: Conn<'_>,
        constraint: &str,
    ) -> Result<u64, StoreError> {
        self.run(On::Conn(conn))
            .await
            .map_err(|error| store_error(error, constraint))
    }

    /// Runs it on `conn`; the one row it returns.
    pub(crate) async fn fetch_one_in(self, conn: Conn<'_>) -> Result<Row, StoreError> {
        match conn {
            Conn::Sqlite(conn) => self
                .sqlite(&sqlite_sql(self.sql))
                .fetch_one(conn)
                .await
                .map(Row::Sqlite),
            Conn::Postgres(conn) => self.postgres().fetch_one(conn).await.map(Row::Postgres),
        }
        .map_err(other)
    }

    /// Runs it on `conn`; the row it returns, if any.
    pub(crate) async fn fetch_optional_in(self, conn: Conn<'_>) -> Result<Option<Row>, StoreError> {
        match conn {
            Conn::Sqlite(conn) => self
                .sqlite(&sqlite_sql(self.sql))
                .fetch_optional(conn)
                .await
                .map(|row| row.map(Row::Sqlite)),
            Conn::Postgres(conn) => self
                .postgres()
                .fetch_optional(conn)
                .await
                .map(|row| row.map(Row::Postgres)),
        }
        .map_err(other)
    }

    /// Every row it returns.
    pub(crate) async fn fetch_all(self, pool: &Pool) -> Result<Vec<Row>, StoreError> {
        match pool {
            Pool::Sqlite(pool) => self
                .sqlite(&sqlite_sql(self.sql))
                .fetch_all(pool)
                .await
                .map(|rows| rows.into_iter().map(Row::Sqlite).collect()),
            Pool::Postgres(pool) => self
                .postgres()
                .fetch_all(pool)
                .await
                .map(|rows| rows.into_iter().map(Row::Postgres).collect()),
        }
        .map_err(other)
    }

    /// The one row it returns.
    pub(crate) async fn fetch_one(self, pool: &Pool) -> Result<Row, StoreError> {
        match pool {
            Pool::Sqlite(pool) => self
                .sqlite(&sqlite_sql(self.sql))
                .fetch_one(pool)
                .await
                .map(Row::Sqlite),
            Pool::Postgres(pool) => self.postgres().fetch_one(pool).await.map(Row::Postgres),
        }
        .map_err(other)
    }

    /// The row it returns, if any.
    pub(crate) async fn fetch_optional(self, pool: &Pool) -> Result<Option<Row>, StoreError> {
        match pool {
            Pool::Sqlite(pool) => self
                .sqlite(&sqlite_sql(self.sql))
                .fetch_optional(pool)
                .await
                .map(|row| row.map(Row::Sqlite)),
            Pool::Postgres(pool) => self
                .postgres()
                .fetch_optional(pool)
                .await
                .map(|row| row.map(Row::Postgres)),
        }
        .map_err(other)
    }
}

/// Where a statement runs.
enum On<'a> {
    Pool(&'a Pool),
    Conn(Conn<'a>),
}

/// A row of either database.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl Row {
    /// The value of `column`.
    pub(crate) fn get<T>(&self, column: &str) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, Sqlite>
            + sqlx::Type<Sqlite>
            + for<'r> sqlx::Decode<'r, Postgres>
            + sqlx::Type<Postgres>,
    {
        use sqlx::Row as _;
        match self {
            Row::Sqlite(row) => row.try_get(column),
            Row::Postgres(row) => row.try_get(column),
        }
        .map_err(other)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_gets_anonymous_placeholders_only_when_they_are_in_order() {
        assert_eq!(
            super::sqlite_sql("values ($1, $2), ($3, $4)"),
            "values (?, ?), (?, ?)"
        );
        // A reused or out-of-order placeholder keeps its number.
        let reused = "where (cast($1 as text) is null or status = $1) limit $2";
        assert_eq!(super::sqlite_sql(reused), reused);
        let reordered = "set status = $2 where id = $1";
        assert_eq!(super::sqlite_sql(reordered), reordered);
        assert_eq!(super::sqlite_sql("select 1"), "select 1");
    }

    #[test]
    fn placeholders_are_numbered_across_rows() {
        assert_eq!(super::rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::list(3, 2), "$2, $3, $4");
        assert_eq!(super::rows(0, 3), "");
    }
}
