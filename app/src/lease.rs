//! The process's hold on its entity-hosting roles (catalog, orders, payments).
//!
//! On PostgreSQL, before a process hosts a role's entity actors it takes the
//! role's lease ([`take`]); while another process holds it, this one waits as a
//! standby (it has not started the role, and `pazar serve` has not opened its
//! port, so a gateway sends it nothing). The active process renews every third of
//! the lease's life ([`HeldLeases::keep`]); a standby takes over once a lease
//! lapses, within one lease life of the holder dying. Every take raises the
//! role's epoch, which fences the store's group commits: a holder that was
//! paused past its lease finds its writes refused, and its next renewal tells
//! it that it has lost the role, which stops its supervision tree.

use crate::roles::{Roles, Service};
use pazar_actors::{DomainError, RoleLeases};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One lease taken.
#[derive(Clone, Debug)]
struct Held {
    role: Service,
    epoch: i64,
}

/// The leases this process holds.
pub struct HeldLeases {
    leases: Arc<dyn RoleLeases>,
    holder: String,
    held: Vec<Held>,
    ttl: Duration,
}

/// Takes the lease of every entity-hosting role in `roles`, waiting as a standby
/// while another process holds one.
pub async fn take(
    leases: Arc<dyn RoleLeases>,
    roles: Roles,
    ttl: Duration,
) -> Result<HeldLeases, DomainError> {
    let holder = format!("pid{}-{}", std::process::id(), uuid::Uuid::now_v7());
    let mut held = Vec::new();
    for role in roles.services().filter(|r| r.hosts_entities()) {
        let mut waiting_since: Option<Instant> = None;
        loop {
            if let Some(epoch) = leases.acquire(role.as_str(), &holder, ttl).await? {
                if let Some(since) = waiting_since {
                    tracing::info!(%role, epoch, waited = ?since.elapsed(), "took over the role");
                } else {
                    tracing::info!(%role, epoch, "holding the role");
                }
                held.push(Held { role, epoch });
                break;
            }
            if waiting_since.is_none() {
                tracing::info!(%role, "standby: another process holds the role; waiting for its lease to lapse");
                waiting_since = Some(Instant::now());
            }
            tokio::time::sleep((ttl / 5).max(Duration::from_millis(50))).await;
        }
    }
    Ok(HeldLeases {
        leases,
        holder,
        held,
        ttl,
    })
}

impl HeldLeases {
    /// The roles held, with their epochs (`catalog@3`), for logs and the snapshot.
    pub fn describe(&self) -> String {
        let held: Vec<String> = self
            .held
            .iter()
            .map(|h| format!("{}@{}", h.role, h.epoch))
            .collect();
        held.join(",")
    }

    /// Renews the leases every third of their life until one is lost; returns why.
    /// A renewal that cannot reach the store is retried until the lease would have
    /// lapsed: past that, another process may hold the role.
    pub async fn keep(&self) -> String {
        let every = self.ttl / 3;
        let mut renewed_at = Instant::now();
        loop {
            tokio::time::sleep(every).await;
            pazar_actors::faults::point("leases");
            let started = Instant::now();
            let mut unreachable = None;
            for held in &self.held {
                match self
                    .leases
                    .renew(held.role.as_str(), &self.holder, held.epoch, self.ttl)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        return format!(
                            "lost the lease of the {} role (epoch {}): another process has taken it over",
                            held.role, held.epoch
                        )
                    }
                    Err(error) => unreachable = Some(error),
                }
            }
            match unreachable {
                None => renewed_at = started,
                Some(error) if renewed_at.elapsed() >= self.ttl => {
                    return format!(
                        "could not renew the role leases for {:?} ({error}): another process may hold them now",
                        self.ttl
                    )
                }
                Some(error) => tracing::warn!(%error, "could not renew the role leases; retrying"),
            }
        }
    }

    /// Gives every lease up (at shutdown), so a standby takes over at once.
    pub async fn release(&self) {
        for held in &self.held {
            if let Err(error) = self
                .leases
                .release(held.role.as_str(), &self.holder, held.epoch)
                .await
            {
                tracing::warn!(role = %held.role, %error, "could not release the role lease; it will lapse");
            }
        }
    }
}
