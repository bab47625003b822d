//! The notifications service's store port: the mail queue. Each backend of
//! `pazar-store` implements it (`store/src/mail.rs`).

use crate::mail::{MailStatus, QueuedMail};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::{Page, StoreError};
use uuid::Uuid;

/// The mail queue.
#[async_trait]
pub trait MailStore: Send + Sync + 'static {
    /// Queues a mail; `false` (and nothing stored) when a mail for the same event
    /// and recipient is queued already (a redelivered event).
    async fn enqueue_mail(&self, mail: &QueuedMail) -> Result<bool, StoreError>;
    /// Claims up to `limit` queued mails whose `next_attempt_at` has come: their
    /// `next_attempt_at` moves to `claim_until`, so the mailroom of another
    /// process does not take them too (one that dies holding a claim leaves its
    /// mails to be retried after it). Oldest first.
    async fn claim_due_mails(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        claim_until: DateTime<Utc>,
    ) -> Result<Vec<QueuedMail>, StoreError>;
    /// Stores a mail's new status, attempts, next attempt and error.
    async fn update_mail(&self, mail: &QueuedMail) -> Result<(), StoreError>;
    /// One mail.
    async fn mail(&self, id: Uuid) -> Result<Option<QueuedMail>, StoreError>;
    /// Mails, newest first, optionally only those with `status`.
    async fn mails(
        &self,
        status: Option<MailStatus>,
        page: Page,
    ) -> Result<Vec<QueuedMail>, StoreError>;
}
