//! The e-mail service: a `notifier` outbox subscriber that queues mails, and the
//! mailroom loop that sends them.
//!
//! The subscriber composes the notice an event calls for, renders it and queues it
//! in the store under (event id, recipient); a redelivered event finds its mail
//! already queued and queues nothing. Its cursor moves only after the mail is
//! stored, so a crash loses no mail. The mailroom sends due mails one by one: a
//! success is recorded as `sent`; a permanent refusal (SMTP 5xx) as `failed` at
//! once; a transient failure is retried after `retry_base · 2^attempts` (capped at
//! `retry_max`) until `max_attempts`, then `failed`. Admins list failed mails and
//! queue them again. A crash between the server's acceptance and the `sent`
//! record sends that one mail again after the restart, with the same Message-ID.

use crate::mail::{compose, MailRenderer, MailStatus, MailTransport, QueuedMail};
use crate::store::MailStore;
use async_trait::async_trait;
use chrono::Utc;
use pazar_actors::{DomainError, DomainEvent, EventSubscriber, Page, StoredEvent};
use pazar_orders::OrderStore;
use pazar_users::Accounts;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// How mail is rendered, sent and retried.
#[derive(Clone)]
pub struct MailConfig {
    /// Templates.
    pub renderer: Arc<dyn MailRenderer>,
    /// SMTP or files.
    pub transport: Arc<dyn MailTransport>,
    /// Send attempts before a mail is `failed`.
    pub max_attempts: i32,
    /// The first retry waits this long; each next one twice as long.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("max_attempts", &self.max_attempts)
            .field("retry_base", &self.retry_base)
            .field("retry_max", &self.retry_max)
            .finish_non_exhaustive()
    }
}

impl MailConfig {
    /// The wait after the `attempts`-th failed attempt.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let doubling = 2u32.saturating_pow(attempts.saturating_sub(1).clamp(0, 30) as u32);
        self.retry_base.saturating_mul(doubling).min(self.retry_max)
    }
}

/// The `notifier` subscriber: events in, queued mails out.
pub(crate) struct Notifier {
    /// The mail queue.
    pub(crate) mails: Arc<dyn MailStore>,
    /// Where orders are read (their lines).
    pub(crate) reads: Arc<dyn OrderStore>,
    /// Where recipients are found.
    pub(crate) users: Accounts,
    pub(crate) renderer: Arc<dyn MailRenderer>,
    pub(crate) mailroom: Arc<Notify>,
}

#[async_trait]
impl EventSubscriber for Notifier {
    fn name(&self) -> &str {
        "notifier"
    }

    async fn handle(&self, event: &StoredEvent, payload: &DomainEvent) -> Result<(), DomainError> {
        let Some(notice) = compose(&*self.reads, &self.users, event, payload).await? else {
            return Ok(());
        };
        let rendered = self.renderer.render(&notice)?;
        let queued = self
            .mails
            .enqueue_mail(&QueuedMail::new(&notice, rendered))
            .await?;
        if queued {
            self.mailroom.notify_one();
        }
        Ok(())
    }
}

/// How long the mailroom holds the mails it claimed: longer than sending a batch
/// takes, so no other process's mailroom sends them too; a mailroom that dies
/// leaves its claimed mails to be sent this long after.
const CLAIM: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Sends due mails until the shop stops; woken by new mail or every `poll`.
pub(crate) async fn mailroom(
    store: Arc<dyn MailStore>,
    config: MailConfig,
    wake: Arc<Notify>,
    stopped: Arc<AtomicBool>,
    poll: Duration,
) {
    loop {
        if stopped.load(Ordering::Relaxed) {
            return;
        }
        pazar_actors::faults::point("mailroom");
        let now = Utc::now();
        let due = match store.claim_due_mails(now, 50, now + CLAIM).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "the mailroom cannot read the queue");
                Vec::new()
            }
        };
        let full_batch = due.len() == 50;
        for mail in due {
            if stopped.load(Ordering::Relaxed) {
                return;
            }
            let outcome = deliver(&config, mail).await;
            if let Err(error) = store.update_mail(&outcome).await {
                tracing::warn!(mail = %outcome.id, %error, "the mailroom cannot record a send");
            }
        }
        if !full_batch {
            let _ = tokio::time::timeout(poll, wake.notified()).await;
        }
    }
}

/// One attempt; returns the mail as it stands afterwards.
async fn deliver(config: &MailConfig, mut mail: QueuedMail) -> QueuedMail {
    mail.attempts += 1;
    match config.transport.send(&mail).await {
        Ok(()) => {
            mail.status = MailStatus::Sent;
            mail.sent_at = Some(Utc::now());
            mail.last_error = None;
            tracing::debug!(mail = %mail.id, kind = mail.kind.as_str(), "mail sent");
        }
        Err(failure) => {
            mail.last_error = Some(failure.message.clone());
            if failure.permanent || mail.attempts >= config.max_attempts {
                mail.status = MailStatus::Failed;
                tracing::warn!(mail = %mail.id, attempts = mail.attempts, error = %failure.message, "mail failed");
            } else {
                let wait = config.backoff(mail.attempts);
                mail.next_attempt_at =
                    Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                tracing::info!(mail = %mail.id, attempts = mail.attempts, ?wait, error = %failure.message, "mail will be retried");
            }
        }
    }
    mail
}

/// Admin views of the queue.
pub(crate) async fn list(
    store: &dyn MailStore,
    status: Option<MailStatus>,
    page: Page,
) -> Result<Vec<QueuedMail>, DomainError> {
    Ok(store.mails(status, page).await?)
}

/// Queues a failed mail again, with a fresh set of attempts.
pub(crate) async fn retry(
    store: &dyn MailStore,
    wake: &Notify,
    id: Uuid,
) -> Result<QueuedMail, DomainError> {
    let mut mail = store
        .mail(id)
        .await?
        .ok_or(DomainError::NotFound { what: "mail" })?;
    if mail.status != MailStatus::Failed {
        return Err(DomainError::conflict(
            "mail_not_failed",
            format!(
                "the mail is {}; only failed mails are retried",
                mail.status.as_str()
            ),
        ));
    }
    mail.status = MailStatus::Queued;
    mail.attempts = 0;
    mail.next_attempt_at = Utc::now();
    store.update_mail(&mail).await?;
    wake.notify_one();
    Ok(mail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{Notice, RenderedMail, SendFailure};

    struct Never;
    impl MailRenderer for Never {
        fn render(&self, _: &Notice) -> Result<RenderedMail, DomainError> {
            Err(DomainError::invalid("unused", "unused"))
        }
    }
    #[async_trait]
    impl MailTransport for Never {
        async fn send(&self, _: &QueuedMail) -> Result<(), SendFailure> {
            Err(SendFailure {
                permanent: false,
                message: "unused".into(),
            })
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = MailConfig {
            renderer: Arc::new(Never),
            transport: Arc::new(Never),
            max_attempts: 10,
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
        };
        let waits: Vec<u128> = (1..=6).map(|n| config.backoff(n).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
    }
}
