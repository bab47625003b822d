-- login throttling (sqlite). never edit once applied: add a new migration instead.

-- one row per failed login and key (`account:<email>` or `address:<ip>`); rows older
-- than the throttling window are deleted as new failures arrive.
create table login_failures (
    key text not null,
    at  text not null
);
create index login_failures_key on login_failures (key, at);
create index login_failures_at on login_failures (at);
