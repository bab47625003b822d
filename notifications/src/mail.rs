//! E-mail notifications: which event tells whom what, the mail queue's records, and
//! the two ports the notifier needs (render a notice, send a mail).
//!
//! The notifier turns an event into a [`Notice`] ([`compose`]), renders it, and
//! queues the mail in the store under the event's id and the recipient — a unique
//! pair, so a redelivered event queues nothing new. Delivery is a separate loop
//! that sends queued mails, retries transient failures with exponential backoff,
//! and gives up (status `failed`, visible to admins) after the configured attempts
//! or at once on a permanent refusal. Nothing here blocks an entity actor.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::{DomainError, DomainEvent, EventType, Money, Order, OrderId, StoredEvent};
use pazar_orders::OrderStore;
use pazar_users::Accounts;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// What a mail is about; one per notifying event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// `users.registered`.
    Welcome,
    /// `orders.created`: lines, total, and the link to pay before it expires.
    OrderReceived,
    /// `payments.succeeded`.
    PaymentReceipt,
    /// `payments.failed`: the reason and the link to try again.
    PaymentFailed,
    /// `orders.expired` / `orders.cancelled`: the stock went back.
    OrderClosed,
    /// `payments.refunded`.
    RefundConfirmation,
}

impl MailKind {
    /// Every kind (for the template registry).
    pub const ALL: [MailKind; 6] = [
        Self::Welcome,
        Self::OrderReceived,
        Self::PaymentReceipt,
        Self::PaymentFailed,
        Self::OrderClosed,
        Self::RefundConfirmation,
    ];

    /// The stored name, also the template's base name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Welcome => "welcome",
            Self::OrderReceived => "order_received",
            Self::PaymentReceipt => "payment_receipt",
            Self::PaymentFailed => "payment_failed",
            Self::OrderClosed => "order_closed",
            Self::RefundConfirmation => "refund_confirmation",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    /// The mail an event type sends, if any.
    pub fn for_event(event_type: EventType) -> Option<Self> {
        Some(match event_type {
            EventType::UserRegistered => Self::Welcome,
            EventType::OrderCreated => Self::OrderReceived,
            EventType::PaymentSucceeded => Self::PaymentReceipt,
            EventType::PaymentFailed => Self::PaymentFailed,
            EventType::OrderExpired | EventType::OrderCancelled => Self::OrderClosed,
            EventType::PaymentRefunded => Self::RefundConfirmation,
            _ => return None,
        })
    }
}

/// What to tell whom: the input of a template.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// The event it comes from (the deduplication key, with the recipient).
    pub event_id: Uuid,
    /// Which mail.
    pub kind: MailKind,
    /// The recipient's address.
    pub to: String,
    /// The recipient's name.
    pub name: String,
    /// The figures the template shows (money already formatted for people).
    pub context: Value,
}

/// A rendered mail: subject, and both parts of a multipart/alternative body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedMail {
    /// The subject line.
    pub subject: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part (user-provided text escaped).
    pub html: String,
}

/// Where a queued mail stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailStatus {
    /// Waiting to be sent (again, after `next_attempt_at`).
    Queued,
    /// Accepted by the transport.
    Sent,
    /// Given up; an admin can retry it.
    Failed,
}

impl MailStatus {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name (or a client's filter).
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "queued" => Self::Queued,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A mail in the store's queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueuedMail {
    /// Its id (also the `Message-ID`, so a resend after a crash is recognisable).
    pub id: Uuid,
    /// The event it tells about.
    pub event_id: Uuid,
    /// Which mail.
    pub kind: MailKind,
    /// The recipient's address.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// The text/plain part.
    #[serde(skip)]
    pub text: String,
    /// The text/html part.
    #[serde(skip)]
    pub html: String,
    /// Where it stands.
    pub status: MailStatus,
    /// Send attempts so far.
    pub attempts: i32,
    /// Not sent before this.
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When the transport accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

impl QueuedMail {
    /// A mail for `notice`, ready to send now.
    pub fn new(notice: &Notice, rendered: RenderedMail) -> Self {
        let now = pazar_actors::now();
        Self {
            id: Uuid::now_v7(),
            event_id: notice.event_id,
            kind: notice.kind,
            recipient: notice.to.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            status: MailStatus::Queued,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            sent_at: None,
        }
    }
}

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendFailure {
    /// A permanent refusal (SMTP 5xx): retrying will not help.
    pub permanent: bool,
    /// What the transport said.
    pub message: String,
}

/// Turns a notice into a mail (templates).
pub trait MailRenderer: Send + Sync + 'static {
    /// Renders both parts and the subject.
    fn render(&self, notice: &Notice) -> Result<RenderedMail, DomainError>;
}

/// Sends a mail (SMTP, or files in the embedded default).
#[async_trait]
pub trait MailTransport: Send + Sync + 'static {
    /// Hands the mail over; `Ok` when the server (or the disk) accepted it.
    async fn send(&self, mail: &QueuedMail) -> Result<(), SendFailure>;
}

/// The notice an event calls for; `None` for events that send no mail, or whose
/// recipient no longer exists.
pub async fn compose(
    store: &dyn OrderStore,
    users: &Accounts,
    stored: &StoredEvent,
    payload: &DomainEvent,
) -> Result<Option<Notice>, DomainError> {
    let Some(kind) = MailKind::for_event(payload.event_type()) else {
        return Ok(None);
    };
    let notice = |to: String, name: String, context: Value| Notice {
        event_id: stored.event.id,
        kind,
        to,
        name,
        context,
    };
    // Every mail but the welcome is about an order: an order event carries the
    // order as its move left it (what the mail tells), a payment event the
    // order's id, the amount and why.
    let (order_id, payment) = match payload {
        DomainEvent::UserRegistered(user) => {
            return Ok(Some(notice(
                user.email.clone(),
                user.name.clone(),
                json!({ "name": user.name }),
            )));
        }
        DomainEvent::OrderCreated(pazar_events::orders::OrderCreated(order))
        | DomainEvent::OrderCancelled(pazar_events::orders::OrderCancelled(order))
        | DomainEvent::OrderExpired(pazar_events::orders::OrderExpired(order)) => {
            match Order::from_snapshot(order) {
                Ok(order) => return about(order, None, users, notice).await,
                // A currency this version cannot read: the stored order.
                Err(_) => (order.id, None),
            }
        }
        DomainEvent::PaymentSucceeded(pazar_events::payments::PaymentSucceeded(payment))
        | DomainEvent::PaymentFailed(pazar_events::payments::PaymentFailed(payment))
        | DomainEvent::PaymentRefunded(pazar_events::payments::PaymentRefunded(payment)) => {
            (payment.order_id, Some(payment))
        }
        _ => return Ok(None),
    };
    let Some(order) = store.order(OrderId(order_id)).await? else {
        return Ok(None);
    };
    about(order, payment, users, notice).await
}

/// The notice about `order` (and the payment, for a payment's mail), to its
/// customer; `None` if they no longer exist.
async fn about(
    order: Order,
    payment: Option<&pazar_events::payments::PaymentSnapshot>,
    users: &Accounts,
    notice: impl FnOnce(String, String, Value) -> Notice,
) -> Result<Option<Notice>, DomainError> {
    let user = match users.user(order.user_id).await {
        Ok(user) => user,
        Err(DomainError::NotFound { .. }) => return Ok(None),
        Err(other) => return Err(other),
    };
    let lines: Vec<Value> = order
        .lines
        .iter()
        .map(|line| {
            let line_total = Money {
                amount: line.unit_price.amount * line.quantity,
                currency: line.unit_price.currency,
            };
            json!({
                "name": line.name,
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": line.unit_price.display(),
                "total": line_total.display(),
            })
        })
        .collect();
    let amount = payment
        .map(|payment| Money {
            amount: payment.amount.amount,
            currency: order.total.currency,
        })
        .unwrap_or(order.total);
    let reason =
        payment.and_then(|payment| payment.last_error.as_ref().or(payment.reason.as_ref()));
    let context = json!({
        "name": user.name,
        "order_id": order.id,
        "lines": lines,
        "total": order.total.display(),
        "amount": amount.display(),
        "expires_at": order.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        "status": order.status.as_str(),
        "reason": reason,
    });
    Ok(Some(notice(
        user.email.as_str().to_owned(),
        user.name.clone(),
        context,
    )))
}

#[cfg(test)]
mod tests {
    use super::MailKind;
    use pazar_actors::EventType;
    use pazar_events::routing;

    /// The routing table sends the notifier exactly the events it has a mail for.
    #[test]
    fn the_notifier_is_routed_every_event_it_mails_and_no_other() {
        for kind in EventType::ALL {
            assert_eq!(
                routing::reacts("notifier", *kind),
                MailKind::for_event(*kind).is_some(),
                "{kind}"
            );
        }
    }
}
