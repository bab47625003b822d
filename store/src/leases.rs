//! Role leases (`role_leases`, PostgreSQL) and the fence they put on the
//! kernel's group commits.
//!
//! A lease row per entity-hosting role: its holder, an epoch raised by every
//! take-over, and when it lapses. Taking a lease records its epoch in the
//! process's [`Fence`]; every batch the kernel commits first reads each held
//! role's row `FOR SHARE` and refuses the batch ([`StoreError::Fenced`]) when the
//! epoch has moved on. The share lock also makes a take-over wait for a batch in
//! flight, so the successor loads state that includes it.
//!
//! SQLite runs every role in one process and has no leases.

use crate::db::{self, Pool, Tx};
use async_trait::async_trait;
use pazar_actors::{RoleLeases, StoreError};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The leases this process holds, with their epochs: what its batches are
/// fenced by. Empty (no check) until a lease is taken.
#[derive(Clone, Default)]
pub(crate) struct Fence(Arc<RwLock<Vec<(String, i64)>>>);

impl Fence {
    fn hold(&self, role: &str, epoch: i64) {
        let mut held = self.0.write().unwrap_or_else(|e| e.into_inner());
        held.retain(|(r, _)| r != role);
        held.push((role.to_owned(), epoch));
    }

    pub(crate) fn held(&self) -> Vec<(String, i64)> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Refuses the transaction's batch unless every held lease still has its epoch.
    pub(crate) async fn check(&self, tx: &mut Tx) -> Result<(), StoreError> {
        for (role, epoch) in self.held() {
            let row = db::sql("select epoch from role_leases where role = $1 for share")
                .bind(&role)
                .fetch_optional_in(tx.conn())
                .await?;
            let current: Option<i64> = row.map(|r| r.get("epoch")).transpose()?;
            if current != Some(epoch) {
                return Err(StoreError::Fenced { role });
            }
        }
        Ok(())
    }
}

/// The lease rows, over the general pool.
pub(crate) struct Leases {
    pub(crate) pool: Pool,
    pub(crate) fence: Fence,
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl RoleLeases for Leases {
    async fn acquire(
        &self,
        role: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<i64>, StoreError> {
        let row = db::sql(
            "insert into role_leases (role, holder, epoch, expires_at) \
             values ($1, $2, 1, now() + $3::float8 * interval '1 millisecond') \
             on conflict (role) do update \
             set holder = excluded.holder, epoch = role_leases.epoch + 1, \
                 expires_at = excluded.expires_at \
             where role_leases.expires_at < now() \
             returning epoch",
        )
        .bind(&role.to_owned())
        .bind(&holder.to_owned())
        .bind(&millis(ttl))
        .fetch_optional(&self.pool)
        .await?;
        let epoch: Option<i64> = row.map(|r| r.get("epoch")).transpose()?;
        if let Some(epoch) = epoch {
            self.fence.hold(role, epoch);
        }
        Ok(epoch)
    }

    async fn renew(
        &self,
        role: &str,
        holder: &str,
        epoch: i64,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let renewed = db::sql(
            "update role_leases set expires_at = now() + $4::float8 * interval '1 millisecond' \
             where role = $1 and holder = $2 and epoch = $3 and expires_at >= now()",
        )
        .bind(&role.to_owned())
        .bind(&holder.to_owned())
        .bind(&epoch)
        .bind(&millis(ttl))
        .execute(&self.pool)
        .await?;
        Ok(renewed == 1)
    }

    async fn release(&self, role: &str, holder: &str, epoch: i64) -> Result<(), StoreError> {
        db::sql(
            "update role_leases set expires_at = now() - interval '1 second' \
             where role = $1 and holder = $2 and epoch = $3",
        )
        .bind(&role.to_owned())
        .bind(&holder.to_owned())
        .bind(&epoch)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
