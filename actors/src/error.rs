//! The domain's one error enum, and the store port's error.
//!
//! The HTTP layer maps [`DomainError`] to problem responses in exactly one place;
//! nothing here knows about status codes.

use crate::ProductId;
use std::sync::Arc;
use std::time::Duration;

/// The error a store's driver reported, kept whole (so `source()` chains reach
/// it) and cheap to clone. Two are equal when they say the same.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    /// Keeps `error`.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// A cause that is only a message (a value the store holds that Pazar
    /// never wrote, a test's failure).
    pub fn message(message: impl Into<String>) -> Self {
        Self(Arc::new(Message(message.into())))
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Cause {}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

/// What a store backend can report. Backends map their driver errors into these.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated; `constraint` names which one (e.g. `users_email`).
    #[error("conflict on {constraint}")]
    Conflict {
        /// The name of the violated unique constraint or index.
        constraint: String,
    },
    /// The database refused the statement (a constraint, a value it cannot store):
    /// the data is at fault, not the connection, so other writes can still succeed.
    /// Logged, never shown to clients.
    #[error("the database refused a write: {0}")]
    Rejected(#[source] Cause),
    /// The store writer stopped (its run panicked and is being restarted, or the
    /// shop is shutting down) before it knew whether the write committed. The
    /// caller may try again; an entity actor reloads its state from the store.
    #[error("the store writer stopped before the write's outcome was known")]
    Interrupted,
    /// The batch was refused because this process no longer holds the lease of
    /// `role`: another process has taken the role over (this one was paused or cut
    /// off), and its stale writes must not land.
    #[error("this process no longer holds the lease of the {role} role")]
    Fenced {
        /// The role whose epoch moved on.
        role: String,
    },
    /// Anything else: connection lost, disk full, a bug. Logged, never shown to clients.
    #[error("store failure: {0}")]
    Other(#[source] Cause),
}

/// Everything that can go wrong in the domain, in terms a client could act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DomainError {
    /// A field of the input is well-formed but not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The JSON path of the offending field, e.g. `price.amount`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The thing asked for does not exist (or is not visible to the caller).
    #[error("{what} not found")]
    NotFound {
        /// What kind of thing, e.g. `product`.
        what: &'static str,
    },
    /// The request contradicts the current state (duplicate, stock rule, …).
    #[error("{message}")]
    Conflict {
        /// Which rule, as a stable machine-readable name (e.g. `duplicate_sku`).
        reason: &'static str,
        /// A human-readable explanation.
        message: String,
    },
    /// Not enough available stock to reserve the requested quantity.
    #[error("product {product_id}: requested {requested}, only {available} available")]
    InsufficientStock {
        /// The product that is short.
        product_id: ProductId,
        /// How many units were asked for.
        requested: i64,
        /// How many units are available right now.
        available: i64,
    },
    /// Checkout could not reserve these lines; nothing stays reserved.
    #[error("{} cart lines cannot be reserved", .0.len())]
    LinesUnavailable(Vec<crate::order::Shortage>),
    /// E-mail and password do not match an account.
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// Too many failed attempts; try again after `retry_after`.
    #[error("too many failed attempts")]
    Throttled {
        /// How long until another attempt will be considered.
        retry_after: Duration,
    },
    /// An actor or the store writer did not answer in time, or died while answering.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A mail template failed to render: a bug in the template, never the
    /// client's doing. Logged, never shown to clients.
    #[error("rendering the {template} template: {message}")]
    Render {
        /// The template's file name.
        template: String,
        /// What the template engine said.
        message: String,
    },
    /// The store failed in a way the client cannot fix.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DomainError {
    /// Shorthand for [`DomainError::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`DomainError::Conflict`].
    pub fn conflict(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            reason,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection reset")]
    struct Driver;

    /// A store failure keeps the driver's error as its source, so a log (or a
    /// caller) can walk the chain to it.
    #[test]
    fn a_store_error_keeps_its_source() {
        let error = DomainError::Store(StoreError::Other(Cause::new(Driver)));
        let mut chain = std::iter::successors(std::error::Error::source(&error), |e| e.source());
        assert!(chain.any(|cause| cause.downcast_ref::<Driver>().is_some()));
        assert_eq!(error.to_string(), "store failure: connection reset");
    }
}
