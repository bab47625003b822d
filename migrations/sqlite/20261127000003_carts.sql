-- carts (sqlite). never edit once applied: add a new migration instead.

-- one row per product in a user's cart; written only by that user's Cart actor.
create table cart_lines (
    user_id    blob not null references users (id) on delete cascade,
    product_id blob not null,
    quantity   integer not null check (quantity > 0),
    added_at   text not null,
    primary key (user_id, product_id)
);
