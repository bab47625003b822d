//! The users service's accounts and login attempts (`UserStore`), on either
//! database.

use crate::db::{self, Pool, Row};
use crate::errors::corrupt;
use async_trait::async_trait;
use pazar_actors::{Event, Role, StoreError, UserId};
use pazar_users::{Email, User, UserRecord, UserStore};
use uuid::Uuid;

/// The `users` and `login_attempts` tables.
pub struct Users {
    pub(crate) pool: Pool,
}

fn user_from_row(row: &Row) -> Result<UserRecord, StoreError> {
    let role: String = row.get("role")?;
    let email: String = row.get("email")?;
    Ok(UserRecord {
        user: User {
            id: UserId(row.get::<Uuid>("id")?),
            email: Email::parse(&email).map_err(|e| corrupt("e-mail", e))?,
            name: row.get("name")?,
            role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
            created_at: row.get("created_at")?,
        },
        password_hash: row.get("password_hash")?,
    })
}

#[async_trait]
impl UserStore for Users {
    async fn insert_user(&self, record: &UserRecord, event: &Event) -> Result<(), StoreError> {
        let user = &record.user;
        let (email, role) = (
            user.email.as_str().to_owned(),
            user.role.as_str().to_owned(),
        );
        let mut tx = self.pool.begin().await?;
        db::sql(
            "insert into users (id, email, name, role, password_hash, created_at) \
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&user.id.0)
        .bind(&email)
        .bind(&user.name)
        .bind(&role)
        .bind(&record.password_hash)
        .bind(&user.created_at)
        .execute_unique_in(tx.conn(), "users_email")
        .await?;
        crate::outbox::append(tx.conn(), std::slice::from_ref(event)).await?;
        tx.commit().await
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, StoreError> {
        let email = email.as_str().to_owned();
        let row = db::sql("select * from users where email = $1")
            .bind(&email)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = db::sql("select * from users where id = $1")
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .as_ref()
            .map(user_from_row)
            .transpose()?
            .map(|record| record.user))
    }

    async fn take_login_attempt(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<(i64, i64), StoreError> {
        // Both SET expressions read the row as it was: a lapsed window restarts
        // at one attempt, else the count goes up by one.
        let (key, lapsed_ms) = (key.to_owned(), now_ms.saturating_sub(window_ms));
        let row = db::sql(
            "insert into login_attempts (key, window_start_ms, attempts) \
             values ($1, $2, 1) on conflict (key) do update set \
             attempts = case when login_attempts.window_start_ms <= $3 \
                 then 1 else login_attempts.attempts + 1 end, \
             window_start_ms = case when login_attempts.window_start_ms <= $3 \
                 then $2 else login_attempts.window_start_ms end \
             returning attempts, window_start_ms",
        )
        .bind(&key)
        .bind(&now_ms)
        .bind(&lapsed_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get("attempts")?, row.get("window_start_ms")?))
    }

    async fn return_login_attempt(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        db::sql("update login_attempts set attempts = attempts - 1 where key = $1 and attempts > 0")
            .bind(&key)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn clear_login_attempts(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        db::sql("delete from login_attempts where key = $1")
            .bind(&key)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn forget_login_attempts(&self, before_ms: i64) -> Result<(), StoreError> {
        db::sql("delete from login_attempts where window_start_ms < $1")
            .bind(&before_ms)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}
