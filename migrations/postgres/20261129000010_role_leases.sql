-- One row per entity-hosting role (catalog, orders, payments) when roles run in
-- separate processes: who is active, under which epoch, until when. A standby
-- takes a lapsed lease and raises the epoch; the group commit refuses batches
-- written under an older one (store/src/leases.rs).
create table role_leases (
    role text primary key,
    holder text not null,
    epoch bigint not null,
    expires_at timestamptz not null
);
