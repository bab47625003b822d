-- payment reconciliation (sqlite). never edit once applied: add a new migration instead.

-- when reconciliation last asked the provider about an open session; a session is
-- asked again only `reconcile_after` later, however long its customer takes.
alter table payment_sessions add column checked_at text;
create index payment_sessions_open on payment_sessions (coalesce(checked_at, updated_at))
    where status in ('requires_payment', 'processing', 'failed');
