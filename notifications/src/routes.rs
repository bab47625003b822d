//! `/api/v1/admin/emails`: the mail queue, failed mails, and retrying them (admin only).

use crate::mail::{MailStatus, QueuedMail};
use crate::Notifications;
use chrono::{DateTime, Utc};
use pazar_actors::Page;
use pazar_http::auth::BearerAuth;
use pazar_http::error::problem;
use pazar_http::openapi::Tag;
use pazar_http::params::{status_filter, UuidParam};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

/// The mail queue's routes.
pub struct EmailsApi {
    /// The service.
    pub notifications: Notifications,
}

/// A mail as the queue has it (the bodies are not shown).
#[derive(Object)]
pub struct EmailDto {
    /// Its id (also its Message-ID).
    pub id: Uuid,
    /// The event it tells about.
    pub event_id: Uuid,
    /// `welcome`, `order_received`, `payment_receipt`, `payment_failed`,
    /// `order_closed` or `refund_confirmation`.
    pub kind: String,
    /// The recipient.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    /// Send attempts so far.
    pub attempts: i32,
    /// Not sent before this (queued mails).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    #[oai(nullable)]
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it was accepted for delivery.
    #[oai(nullable)]
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<QueuedMail> for EmailDto {
    fn from(mail: QueuedMail) -> Self {
        Self {
            id: mail.id,
            event_id: mail.event_id,
            kind: mail.kind.as_str().to_owned(),
            recipient: mail.recipient,
            subject: mail.subject,
            status: mail.status.as_str().to_owned(),
            attempts: mail.attempts,
            next_attempt_at: mail.next_attempt_at,
            last_error: mail.last_error,
            created_at: mail.created_at,
            sent_at: mail.sent_at,
        }
    }
}

/// A page of mails.
#[derive(Object)]
pub struct EmailListDto {
    /// Newest first.
    pub items: Vec<EmailDto>,
}

#[OpenApi(tag = "Tag::Admin")]
impl EmailsApi {
    /// Mails, newest first, optionally of one status (`queued`, `sent`, `failed`;
    /// `limit` 1-100, default 20; `offset`).
    #[oai(path = "/api/v1/admin/emails", method = "get")]
    async fn list(
        &self,
        auth: BearerAuth,
        #[oai(validator(pattern = r"^(|queued|sent|failed)$"))] status: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<i64>>,
        #[oai(validator(minimum(value = "0")))] offset: Query<Option<i64>>,
    ) -> poem::Result<Json<EmailListDto>> {
        auth.0.require_admin()?;
        let page = Page::parse(limit.0, offset.0).map_err(problem)?;
        let status = status_filter(
            status.0.as_deref(),
            MailStatus::parse,
            "queued, sent or failed",
        )?;
        let mails = self
            .notifications
            .mails(status, page)
            .await
            .map_err(problem)?;
        Ok(Json(EmailListDto {
            items: mails.into_iter().map(EmailDto::from).collect(),
        }))
    }

    /// Queue a failed mail again with fresh attempts (409 unless it failed).
    #[oai(path = "/api/v1/admin/emails/:id/retry", method = "post")]
    async fn retry(&self, auth: BearerAuth, id: Path<UuidParam>) -> poem::Result<Json<EmailDto>> {
        auth.0.require_admin()?;
        let mail = self
            .notifications
            .retry_mail(id.0.parse("id")?)
            .await
            .map_err(problem)?;
        Ok(Json(mail.into()))
    }
}
