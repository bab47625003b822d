-- pazar foundation schema (sqlite). never edit once applied: add a new migration instead.
-- ids are uuids stored as 16-byte blobs; times are rfc 3339 text in utc.

-- one row per account. email is stored normalised (trimmed, lower case).
create table users (
    id            blob primary key not null,
    email         text not null,
    name          text not null,
    role          text not null check (role in ('customer', 'admin')),
    -- argon2id phc string; never leaves the store except to be verified
    password_hash text not null,
    created_at    text not null
);
create unique index users_email on users (email);

-- catalog fields of a product. stock lives in product_stock.
create table products (
    id             blob primary key not null,
    name           text not null,
    description    text not null,
    sku            text not null,
    price_amount   integer not null check (price_amount >= 0),
    price_currency text not null check (length(price_currency) = 3),
    created_at     text not null,
    updated_at     text not null
);
create unique index products_sku on products (sku);

-- written only by the product's ProductStock actor (through the store writer).
-- reserved is the sum of the product's stock_reservations, kept here so that a
-- listing needs no aggregate and the database itself refuses an oversell.
create table product_stock (
    product_id blob primary key not null references products (id) on delete cascade,
    on_hand    integer not null,
    reserved   integer not null default 0,
    check (reserved >= 0 and on_hand >= reserved)
);

-- units held for an order until it is paid, cancelled or expires.
create table stock_reservations (
    product_id blob not null references product_stock (product_id) on delete cascade,
    order_id   blob not null,
    quantity   integer not null check (quantity > 0),
    expires_at text not null,
    primary key (product_id, order_id)
);

-- every manual change of on_hand, kept for audit (outlives a deleted product).
create table stock_adjustments (
    id         integer primary key autoincrement,
    product_id blob not null,
    delta      integer not null,
    reason     text not null,
    created_at text not null
);
create index stock_adjustments_product on stock_adjustments (product_id);
