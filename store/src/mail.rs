//! The notifications service's mail queue (`MailStore`), on either database.

use crate::db::{self, Pool, Row};
use crate::errors::corrupt;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::{Page, StoreError};
use pazar_notifications::mail::{MailKind, MailStatus, QueuedMail};
use pazar_notifications::MailStore;
use uuid::Uuid;

/// The `mails` table.
pub struct Mails {
    pub(crate) pool: Pool,
}

const COLUMNS: &str = "id, event_id, kind, recipient, subject, body_text, body_html, status, \
     attempts, next_attempt_at, last_error, created_at, sent_at";

fn mail_from_row(row: &Row) -> Result<QueuedMail, StoreError> {
    let kind: String = row.get("kind")?;
    let status: String = row.get("status")?;
    Ok(QueuedMail {
        id: row.get("id")?,
        event_id: row.get("event_id")?,
        kind: MailKind::parse(&kind).ok_or_else(|| corrupt("mail kind", &kind))?,
        recipient: row.get("recipient")?,
        subject: row.get("subject")?,
        text: row.get("body_text")?,
        html: row.get("body_html")?,
        status: MailStatus::parse(&status).ok_or_else(|| corrupt("mail status", &status))?,
        attempts: row.get("attempts")?,
        next_attempt_at: row.get("next_attempt_at")?,
        last_error: row.get("last_error")?,
        created_at: row.get("created_at")?,
        sent_at: row.get("sent_at")?,
    })
}

#[async_trait]
impl MailStore for Mails {
    async fn enqueue_mail(&self, mail: &QueuedMail) -> Result<bool, StoreError> {
        let (kind, status) = (
            mail.kind.as_str().to_owned(),
            mail.status.as_str().to_owned(),
        );
        let inserted = db::sql(
            "insert into mails (id, event_id, kind, recipient, subject, body_text, body_html, \
             status, attempts, next_attempt_at, last_error, created_at, sent_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             on conflict (event_id, recipient) do nothing",
        )
        .bind(&mail.id)
        .bind(&mail.event_id)
        .bind(&kind)
        .bind(&mail.recipient)
        .bind(&mail.subject)
        .bind(&mail.text)
        .bind(&mail.html)
        .bind(&status)
        .bind(&mail.attempts)
        .bind(&mail.next_attempt_at)
        .bind(&mail.last_error)
        .bind(&mail.created_at)
        .bind(&mail.sent_at)
        .execute(&self.pool)
        .await?;
        Ok(inserted == 1)
    }

    async fn claim_due_mails(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        claim_until: DateTime<Utc>,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        // PostgreSQL: mailrooms of other processes skip the rows being claimed;
        // SQLite has one writer at a time, so its claims never overlap.
        let skip_locked = match self.pool {
            Pool::Postgres(_) => "for update skip locked",
            Pool::Sqlite(_) => "",
        };
        let sql = format!(
            "update mails set next_attempt_at = $3 where id in (\
                 select id from mails where status = 'queued' and next_attempt_at <= $1 \
                 order by next_attempt_at, id limit $2 {skip_locked}) \
             returning {COLUMNS}"
        );
        let rows = db::sql(&sql)
            .bind(&now)
            .bind(&limit)
            .bind(&claim_until)
            .fetch_all(&self.pool)
            .await?;
        let mut mails = rows
            .iter()
            .map(mail_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        mails.sort_by_key(|m| m.created_at);
        Ok(mails)
    }

    async fn update_mail(&self, mail: &QueuedMail) -> Result<(), StoreError> {
        let status = mail.status.as_str().to_owned();
        db::sql(
            "update mails set status = $1, attempts = $2, next_attempt_at = $3, \
             last_error = $4, sent_at = $5 where id = $6",
        )
        .bind(&status)
        .bind(&mail.attempts)
        .bind(&mail.next_attempt_at)
        .bind(&mail.last_error)
        .bind(&mail.sent_at)
        .bind(&mail.id)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    async fn mail(&self, id: Uuid) -> Result<Option<QueuedMail>, StoreError> {
        let sql = format!("select {COLUMNS} from mails where id = $1");
        let row = db::sql(&sql).bind(&id).fetch_optional(&self.pool).await?;
        row.as_ref().map(mail_from_row).transpose()
    }

    async fn mails(
        &self,
        status: Option<MailStatus>,
        page: Page,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        let sql = format!(
            "select {COLUMNS} from mails where (cast($1 as text) is null or status = $1) \
             order by created_at desc, id desc limit $2 offset $3"
        );
        let status = status.map(|status| status.as_str().to_owned());
        let rows = db::sql(&sql)
            .bind(&status)
            .bind(&page.limit)
            .bind(&page.offset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(mail_from_row).collect()
    }
}
