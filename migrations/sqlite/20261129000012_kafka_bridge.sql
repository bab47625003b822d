-- the kafka bridge's records (sqlite). never edit once applied: add a new migration instead.

-- the events each subscriber has processed from kafka: a redelivered message
-- (after a crash, a rebalance or a relay retry) finds its row and changes nothing.
create table processed_events (
    subscriber   text not null,
    event_id     blob not null,
    processed_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    primary key (subscriber, event_id)
);

-- messages a consumer group gave up on (unreadable, or failing past its retries),
-- also produced to the dead-letter topic; an operator lists and replays them.
create table dead_letters (
    id              blob primary key not null,
    consumer_group  text not null,
    subscriber      text,
    topic           text not null,
    kafka_partition integer not null,
    kafka_offset    integer not null,
    message_key     text,
    payload         text not null,
    -- json array of [name, value] pairs
    headers         text not null,
    error           text not null,
    attempts        integer not null,
    created_at      text not null,
    replayed_at     text
);
create index dead_letters_created on dead_letters (created_at);
