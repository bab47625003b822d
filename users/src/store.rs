//! The users service's store port: accounts and login attempts. Each backend of
//! `pazar-store` implements it (`store/src/users.rs`).

use crate::accounts::{Email, User};
use async_trait::async_trait;
use pazar_actors::{Event, StoreError, UserId};

/// A user as stored, with the password hash that must never leave the service.
#[derive(Clone, Debug)]
pub struct UserRecord {
    /// The public part.
    pub user: User,
    /// The argon2id PHC string.
    pub password_hash: String,
}

/// Accounts and login attempts.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Stores a new user and its event (`users.registered`) in one transaction;
    /// `Conflict { constraint: "users_email" }` if the e-mail is taken.
    async fn insert_user(&self, user: &UserRecord, event: &Event) -> Result<(), StoreError>;
    /// Finds a user (with hash) by normalised e-mail.
    async fn user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, StoreError>;
    /// Finds a user by id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// Counts one login attempt under `key`, atomically (one statement): concurrent
    /// attempts each get a distinct count. A window opens with a key's first
    /// attempt at `now_ms`; an attempt after `window_ms` opens a new one. Returns
    /// the attempts in the window, this one included, and when the window opened.
    async fn take_login_attempt(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<(i64, i64), StoreError>;
    /// Gives back one attempt under `key` (the login succeeded).
    async fn return_login_attempt(&self, key: &str) -> Result<(), StoreError>;
    /// Forgets the attempts under `key` (a successful login clears its account).
    async fn clear_login_attempts(&self, key: &str) -> Result<(), StoreError>;
    /// Forgets every window that opened before `before_ms`.
    async fn forget_login_attempts(&self, before_ms: i64) -> Result<(), StoreError>;
}
