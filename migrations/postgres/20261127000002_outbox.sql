-- the transactional outbox (postgresql). never edit once applied: add a new migration instead.

-- every event, written in the transaction of the change it reports.
-- seq comes from outbox_head inside that transaction, so it increases in commit order
-- (a sequence would not: a later transaction can commit a higher value first).
create table outbox_events (
    seq     bigint primary key,
    id      uuid not null,
    type    text not null,
    subject text not null,
    time    timestamptz not null,
    source  text not null,
    version integer not null,
    -- the event's data as json text
    data    text not null
);
create unique index outbox_events_id on outbox_events (id);

-- the last seq handed out; its row lock serialises event-writing transactions.
create table outbox_head (
    id       integer primary key check (id = 1),
    last_seq bigint not null
);
insert into outbox_head (id, last_seq) values (1, 0);

-- how far each subscriber has read the outbox.
create table event_cursors (
    subscriber text primary key,
    last_seq   bigint not null
);
