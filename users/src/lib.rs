//! The users service: accounts (registration, argon2id passwords, login
//! throttling per account and per client address) and the access tokens the
//! other services accept.
//!
//! - [`accounts`]: its rules and its application service, [`Accounts`];
//! - [`store`]: its store port, [`UserStore`] (accounts and login attempts);
//! - [`routes`]: its HTTP routes (`/api/v1/auth/…`);
//! - [`CurrentRoles`]: what `pazar-http`'s token check asks for a user's role now.
//!
//! It has no subscribers and no loops; it publishes `users.registered`.

pub mod accounts;
pub mod routes;
pub mod store;

pub use accounts::{Accounts, Email, LoginThrottlePolicy, NewUser, Password, User};
pub use store::{UserRecord, UserStore};

use async_trait::async_trait;
use pazar_actors::{DomainError, Role, UserId};
use pazar_http::auth::RoleSource;

/// Users' current roles, from the accounts: a demoted admin loses admin rights,
/// and a deleted user's tokens stop working, before the tokens expire.
pub struct CurrentRoles(pub Accounts);

#[async_trait]
impl RoleSource for CurrentRoles {
    async fn current_role(&self, user: UserId) -> Result<Option<Role>, DomainError> {
        match self.0.user(user).await {
            Ok(found) => Ok(Some(found.role)),
            Err(DomainError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}
