-- payments (postgres). never edit once applied: add a new migration instead.

-- one payment session per order; changed only by the order's PaymentSession actor.
create table payment_sessions (
    order_id      uuid primary key references orders (id),
    -- 'local' or 'stripe'
    provider      text not null,
    -- the provider's payment intent
    intent_id     text not null,
    client_secret text not null,
    status        text not null check (status in
                      ('requires_payment', 'processing', 'succeeded', 'failed', 'cancelled', 'refunded')),
    amount        bigint not null,
    currency      text not null,
    -- why the last attempt failed (declined, insufficient funds, ...)
    last_error    text,
    created_at    timestamptz not null,
    updated_at    timestamptz not null
);
create unique index payment_sessions_intent on payment_sessions (intent_id);

-- the local payment simulator's intents (the embedded stand-in for stripe).
create table local_payment_intents (
    id            text primary key,
    -- one intent per order: the order id is the idempotency key
    order_id      uuid not null,
    amount        bigint not null,
    currency      text not null,
    client_secret text not null,
    status        text not null,
    last_error    text,
    created_at    timestamptz not null
);
create unique index local_payment_intents_order on local_payment_intents (order_id);
create unique index local_payment_intents_secret on local_payment_intents (client_secret);
