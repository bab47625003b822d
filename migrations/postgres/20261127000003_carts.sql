-- carts (postgresql). never edit once applied: add a new migration instead.

-- one row per product in a user's cart; written only by that user's Cart actor.
create table cart_lines (
    user_id    uuid not null references users (id) on delete cascade,
    product_id uuid not null,
    quantity   bigint not null check (quantity > 0),
    added_at   timestamptz not null,
    primary key (user_id, product_id)
);
