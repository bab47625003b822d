-- e-mail notifications (postgres). never edit once applied: add a new migration instead.

-- the mail queue: one row per (event, recipient), so a redelivered event queues nothing.
create table mails (
    id              uuid primary key,
    event_id        uuid not null,
    -- welcome, order_received, payment_receipt, payment_failed, order_closed, refund_confirmation
    kind            text not null,
    recipient       text not null,
    subject         text not null,
    body_text       text not null,
    body_html       text not null,
    status          text not null check (status in ('queued', 'sent', 'failed')),
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null,
    last_error      text,
    created_at      timestamptz not null,
    sent_at         timestamptz
);
create unique index mails_event_recipient on mails (event_id, recipient);
create index mails_due on mails (next_attempt_at) where status = 'queued';
create index mails_status on mails (status, created_at);
