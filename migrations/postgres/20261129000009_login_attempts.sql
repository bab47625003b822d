-- Login throttling as one counter row per key (account or client address), taken
-- atomically *before* the password is checked, so concurrent guesses cannot all
-- pass a limit that was read before any of them was recorded. A window starts
-- with a key's first attempt and lasts the policy's window; times are epoch ms.
drop table login_failures;

create table login_attempts (
    key             text primary key,
    window_start_ms bigint not null,
    attempts        bigint not null
);
create index login_attempts_window on login_attempts (window_start_ms);
