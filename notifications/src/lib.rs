//! The notifications service (the seed's e-mail service): which event tells whom
//! what, the mail queue, the templates, and the mailroom that sends.
//!
//! - [`mail`]: the rules — which event sends which mail to whom ([`mail::compose`]),
//!   the queue's records, and the two ports the service needs (render a notice,
//!   send a mail);
//! - [`store`]: its store port, [`MailStore`] (the mail queue);
//! - [`notifier`]: its event subscriber (`notifier`: events in, queued mails out)
//!   and its loop (the mailroom: due mails out, retried with backoff);
//! - [`adapters`]: the templates (minijinja) and the transports (SMTP, `.eml` files);
//! - [`routes`]: its HTTP routes (`/api/v1/admin/emails`);
//! - [`start`]: wires them into a process.
//!
//! It reads orders (order lines) through the orders service's store port and
//! users (recipients) through the users service; it writes nothing but its queue.

pub mod adapters;
pub mod mail;
pub mod notifier;
pub mod routes;
pub mod store;

pub use notifier::MailConfig;
pub use store::MailStore;

use mail::{MailStatus, QueuedMail};
use pazar_actors::{DomainError, Listeners, Page};
use pazar_orders::OrderStore;
use pazar_supervisor::TaskSupervisor;
use pazar_users::Accounts;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// The service's commands and queries (what its routes call).
#[derive(Clone)]
pub struct Notifications {
    mails: Arc<dyn MailStore>,
    mailroom: Arc<Notify>,
}

/// What the service needs from the process that runs it.
pub struct Dependencies<'a> {
    /// The mail queue.
    pub mails: Arc<dyn MailStore>,
    /// Where orders are read.
    pub reads: Arc<dyn OrderStore>,
    /// The users service (recipients).
    pub users: Accounts,
    /// Where the `notifier` goes (the process feeds it from the outbox or Kafka).
    pub listeners: &'a Listeners,
    /// Runs the mailroom.
    pub tasks: &'a TaskSupervisor,
    /// Set when the process stops.
    pub stopped: Arc<AtomicBool>,
    /// How often the mailroom looks for due mails when nothing wakes it.
    pub poll: Duration,
}

/// Starts the service: with `config`, the `notifier` subscriber and the mailroom
/// loop under the task supervisor; without, only the queue's queries (no mail is
/// composed or sent).
pub fn start(deps: Dependencies<'_>, config: Option<MailConfig>) -> Notifications {
    let mailroom = Arc::new(Notify::new());
    if let Some(config) = config {
        deps.listeners.add(Arc::new(notifier::Notifier {
            mails: deps.mails.clone(),
            reads: deps.reads,
            users: deps.users,
            renderer: config.renderer.clone(),
            mailroom: mailroom.clone(),
        }));
        let (mails, bell, stopped, poll) = (
            deps.mails.clone(),
            mailroom.clone(),
            deps.stopped,
            deps.poll,
        );
        deps.tasks.keep_running("mailroom", move || {
            notifier::mailroom(
                mails.clone(),
                config.clone(),
                bell.clone(),
                stopped.clone(),
                poll,
            )
        });
    }
    Notifications {
        mails: deps.mails,
        mailroom,
    }
}

impl Notifications {
    /// Mails, newest first, optionally only those with `status` (admin).
    pub async fn mails(
        &self,
        status: Option<MailStatus>,
        page: Page,
    ) -> Result<Vec<QueuedMail>, DomainError> {
        notifier::list(&*self.mails, status, page).await
    }

    /// Queues a failed mail again (admin); Conflict unless it failed.
    pub async fn retry_mail(&self, id: Uuid) -> Result<QueuedMail, DomainError> {
        notifier::retry(&*self.mails, &self.mailroom, id).await
    }
}
