//! How driver errors become the ports' errors, for every module of the store.

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
