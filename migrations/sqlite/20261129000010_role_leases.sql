-- Kept in step with PostgreSQL's schema. SQLite runs every role in one process,
-- so it never takes a lease (store/src/leases.rs).
create table role_leases (
    role text primary key,
    holder text not null,
    epoch integer not null,
    expires_at text not null
);
