-- orders (postgresql). never edit once applied: add a new migration instead.

-- one row per order; its status changes only through its Order actor.
create table orders (
    id              uuid primary key,
    user_id         uuid not null references users (id),
    status          text not null check (status in
                        ('pending_payment', 'paid', 'fulfilled', 'cancelled', 'expired', 'refunded')),
    total_amount    bigint not null,
    total_currency  text not null,
    created_at      timestamptz not null,
    expires_at      timestamptz not null,
    -- the client's Idempotency-Key of the checkout that made it
    idempotency_key text
);
create unique index orders_idempotency on orders (user_id, idempotency_key);
create index orders_user on orders (user_id, created_at);
create index orders_due on orders (status, expires_at);

-- what was bought, at the price of the moment of checkout.
create table order_lines (
    order_id    uuid not null references orders (id) on delete cascade,
    position    integer not null,
    product_id  uuid not null,
    name        text not null,
    sku         text not null,
    quantity    bigint not null check (quantity > 0),
    unit_amount bigint not null,
    currency    text not null,
    primary key (order_id, position)
);

-- every status an order has been in, with when and why.
create table order_history (
    order_id uuid not null references orders (id) on delete cascade,
    position integer not null,
    status   text not null,
    at       timestamptz not null,
    reason   text,
    primary key (order_id, position)
);

-- who took a hold: 'checkout' (a cart on its way to an order) or 'manual' (an
-- admin). after a crash, checkout holds whose order was never stored are released.
alter table stock_reservations add column source text not null default 'manual'
    check (source in ('checkout', 'manual'));
create index stock_reservations_checkout on stock_reservations (order_id)
    where source = 'checkout';
create index stock_reservations_manual on stock_reservations (expires_at)
    where source = 'manual';
