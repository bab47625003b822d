//! Users: registration, login with argon2id, and login throttling.
//!
//! Tokens are issued by the routes and checked by `pazar-http`; this module
//! decides *who* someone is.
//! Password hashing is CPU-heavy, so it runs on the blocking pool, never on an
//! async worker thread.

use crate::store::{UserRecord, UserStore};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use chrono::{DateTime, Utc};
use pazar_actors::{DomainError, Event, EventSignal, Role, StoreError, UserId};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// A normalised (trimmed, lower-case) e-mail address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Parses an address: `local@domain` in ASCII, at most 254 characters. The
    /// local part (1-64) is dot-separated atoms of letters, digits and
    /// ``!#$%&'*+/=?^_`{|}~-``; the domain is two or more labels of letters, digits
    /// and inner hyphens (1-63 each). That is a subset of what every mail server
    /// and the mailer accept, so an address taken here can always be written to.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && match email.split_once('@') {
                Some((local, domain)) => valid_local_part(local) && valid_domain(domain),
                None => false,
            };
        if valid {
            Ok(Self(email))
        } else {
            Err(DomainError::invalid(
                "email",
                "must be an e-mail address such as ada@example.com",
            ))
        }
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_local_part(local: &str) -> bool {
    let atom = |atom: &str| {
        !atom.is_empty()
            && atom
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b))
    };
    local.len() <= 64 && local.split('.').all(atom)
}

fn valid_domain(domain: &str) -> bool {
    let label = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    domain.split('.').count() >= 2 && domain.split('.').all(label)
}

/// A password accepted for a new account: 8 to 128 characters.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Checks the length rules.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let chars = raw.chars().count();
        if !(8..=128).contains(&chars) {
            return Err(DomainError::invalid(
                "password",
                "must be between 8 and 128 characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A registered user, without secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Id, the JWT subject.
    pub id: UserId,
    /// Normalised e-mail, unique.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// A registration, parsed.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// E-mail.
    pub email: Email,
    /// Password to hash.
    pub password: Password,
    /// Display name (1-100 characters).
    pub name: String,
    /// Role to give.
    pub role: Role,
}

impl NewUser {
    /// Parses raw registration input; the first invalid field is reported.
    pub fn parse(email: &str, password: &str, name: &str, role: Role) -> Result<Self, DomainError> {
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(DomainError::invalid("name", "must be 1-100 characters"));
        }
        Ok(Self {
            email,
            password,
            name: name.to_owned(),
            role,
        })
    }
}

/// How many failed logins are tolerated before attempts are refused for a while.
#[derive(Clone, Copy, Debug)]
pub struct LoginThrottlePolicy {
    /// Login attempts per account within `window` (a success clears them) before
    /// that account is locked.
    pub max_failures_per_account: usize,
    /// Attempts from one client address within `window` (a success gives its
    /// attempt back) before it is locked.
    pub max_failures_per_address: usize,
    /// The window attempts are counted in, from a key's first attempt.
    pub window: Duration,
}

impl Default for LoginThrottlePolicy {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Login attempts counted per account and per client address in the store (they
/// survive a restart and are shared by every process on the database). An attempt
/// is *taken* atomically before the password is checked, so any number of
/// concurrent guesses gets at most the limit checked; a success gives the
/// address's attempt back and clears the account's.
struct LoginThrottle {
    policy: LoginThrottlePolicy,
    store: Arc<dyn UserStore>,
}

impl LoginThrottle {
    /// The keys an attempt counts against, the address first: a throttled address
    /// then costs the account nothing.
    fn limits(&self, email: &str, address: &str) -> [(String, usize); 2] {
        [
            (
                format!("address:{address}"),
                self.policy.max_failures_per_address,
            ),
            (
                format!("account:{email}"),
                self.policy.max_failures_per_account,
            ),
        ]
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.policy.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// Takes one attempt under each key, or refuses with the time until the
    /// exhausted key's window closes.
    async fn take(&self, email: &str, address: &str) -> Result<(), DomainError> {
        let now_ms = pazar_actors::now().timestamp_millis();
        let window_ms = self.window_ms();
        for (key, limit) in self.limits(email, address) {
            let (attempts, opened_ms) = self
                .store
                .take_login_attempt(&key, now_ms, window_ms)
                .await?;
            if attempts > limit as i64 {
                let wait_ms = opened_ms.saturating_add(window_ms).saturating_sub(now_ms);
                let retry_after = Duration::from_millis(wait_ms.max(1) as u64);
                return Err(DomainError::Throttled { retry_after });
            }
        }
        Ok(())
    }

    /// A wrong password: the attempts stay counted; lapsed windows are dropped.
    async fn failed(&self) -> Result<(), DomainError> {
        let now_ms = pazar_actors::now().timestamp_millis();
        Ok(self
            .store
            .forget_login_attempts(now_ms.saturating_sub(self.window_ms()))
            .await?)
    }

    async fn succeeded(&self, email: &str, address: &str) -> Result<(), DomainError> {
        let [(address_key, _), (account_key, _)] = self.limits(email, address);
        self.store.return_login_attempt(&address_key).await?;
        Ok(self.store.clear_login_attempts(&account_key).await?)
    }
}

/// Registers users and checks their passwords.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn UserStore>,
    throttle: Arc<LoginThrottle>,
    /// A real hash of a random password, verified when the e-mail is unknown so
    /// that a login takes as long for a missing account as for a wrong password.
    decoy_hash: Arc<String>,
    /// Raised after a registration (which writes `users.registered`).
    signal: EventSignal,
    /// Password hashing may use at most half the cores: a burst of sign-ups and
    /// logins queues here instead of starving carts and checkouts of CPU.
    hashing: Arc<tokio::sync::Semaphore>,
}

impl Accounts {
    /// Accounts over a store, raising `signal` after writing events.
    pub fn new(
        store: Arc<dyn UserStore>,
        policy: LoginThrottlePolicy,
        signal: EventSignal,
    ) -> Result<Self, DomainError> {
        let decoy_hash = hash_password(&format!("decoy-{}", UserId::new()))?;
        Ok(Self {
            throttle: Arc::new(LoginThrottle {
                policy,
                store: store.clone(),
            }),
            store,
            decoy_hash: Arc::new(decoy_hash),
            signal,
            hashing: Arc::new(tokio::sync::Semaphore::new(hashing_slots())),
        })
    }

    /// Runs an argon2 computation on the blocking pool, within the hashing slots.
    async fn hash_work<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let _slot = self
            .hashing
            .acquire()
            .await
            .map_err(|_| DomainError::Unavailable("password hashing stopped".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| DomainError::Unavailable(format!("password hashing failed: {e}")))
    }

    /// Creates an account; `Conflict(duplicate_email)` when the address is taken.
    pub async fn register(&self, new: NewUser) -> Result<User, DomainError> {
        let password = new.password.0.clone();
        let password_hash = self.hash_work(move || hash_password(&password)).await??;
        let user = User {
            id: UserId::new(),
            email: new.email,
            name: new.name,
            role: new.role,
            created_at: pazar_actors::now(),
        };
        let record = UserRecord {
            user: user.clone(),
            password_hash,
        };
        let event = Event::of(
            user.id,
            &pazar_events::users::UserRegistered {
                user_id: user.id.0,
                email: user.email.as_str().to_owned(),
                name: user.name.clone(),
                role: match user.role {
                    Role::Customer => pazar_events::users::Role::Customer,
                    Role::Admin => pazar_events::users::Role::Admin,
                },
            },
        );
        match self.store.insert_user(&record, &event).await {
            Ok(()) => {
                self.signal.committed();
                Ok(user)
            }
            Err(StoreError::Conflict { .. }) => Err(DomainError::conflict(
                "duplicate_email",
                "an account with this e-mail already exists",
            )),
            Err(other) => Err(other.into()),
        }
    }

    /// Checks credentials. `address` is the client's network address, throttled too.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        address: &str,
    ) -> Result<User, DomainError> {
        let normalised = email.trim().to_lowercase();
        // Counted before the hash runs: concurrency cannot outrun the limit.
        self.throttle.take(&normalised, address).await?;
        let record = match Email::parse(&normalised) {
            Ok(email) => self.store.user_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = record
            .as_ref()
            .map(|r| r.password_hash.clone())
            .unwrap_or_else(|| self.decoy_hash.as_str().to_owned());
        let password = password.to_owned();
        let matches = self
            .hash_work(move || verify_password(&password, &hash))
            .await?;
        match record {
            Some(record) if matches => {
                self.throttle.succeeded(&normalised, address).await?;
                Ok(record.user)
            }
            _ => {
                self.throttle.failed().await?;
                Err(DomainError::InvalidCredentials)
            }
        }
    }

    /// The user with this id.
    pub async fn user(&self, id: UserId) -> Result<User, DomainError> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or(DomainError::NotFound { what: "user" })
    }
}

/// Half the cores, at least one.
fn hashing_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Hashes with argon2id and a random salt, giving a PHC string.
fn hash_password(password: &str) -> Result<String, DomainError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| DomainError::Unavailable(format!("password hashing failed: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_rules() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for good in [
            "o'brien+shop@mail.example.co.uk",
            "a_b-c.d@x-y.test",
            "1@2.io",
        ] {
            assert!(Email::parse(good).is_ok(), "{good} refused");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a b@example.com",
            "ada@example",
            "a\u{0}b@example.com",
            "<script>@x.test",
            "‹script›@x.test",
            "ada..b@example.com",
            ".ada@example.com",
            "ada@-example.com",
            "ada@exa_mple.com",
            "ada@example..com",
            "ada@b@example.com",
            "ada\n@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn password_rules() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("long enough").is_ok());
        assert_eq!(
            format!("{:?}", Password::parse("secret-password").unwrap()),
            "Password([redacted])"
        );
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
    }
}
