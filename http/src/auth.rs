//! Access tokens: HS256 JWTs with pinned algorithm, `exp`, `iss` and `aud`.
//!
//! The signing key comes from `PAZAR_JWT_SECRET`, or is generated once and kept
//! (mode 0600) in the data directory, so tokens survive a restart. A token carries
//! the user's id and role; [`BearerAuth`] verifies it on every protected operation.

use crate::error::ApiError;
use async_trait::async_trait;
use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pazar_actors::{DomainError, Role, UserId};
use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The issuer every token names and every check requires.
pub const ISSUER: &str = "pazar";
/// The audience every token names and every check requires.
pub const AUDIENCE: &str = "pazar-api";

/// How tokens are made.
#[derive(Clone)]
pub struct TokenConfig {
    /// The HMAC key (at least 32 bytes).
    pub secret: Vec<u8>,
    /// How long an access token is valid.
    pub ttl: Duration,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("secret", &"[redacted]")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl TokenConfig {
    /// Uses `configured` when given (it must be at least 32 bytes), else the key
    /// file `jwt.key` in `data_dir`, creating it with 64 random bytes on first use.
    pub fn load_or_generate(
        configured: Option<&str>,
        data_dir: &Path,
        ttl: Duration,
    ) -> std::io::Result<Self> {
        let secret = match configured {
            Some(secret) if secret.len() >= 32 => secret.as_bytes().to_vec(),
            Some(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "PAZAR_JWT_SECRET must be at least 32 bytes",
                ))
            }
            None => key_file(&data_dir.join("jwt.key"))?,
        };
        Ok(Self { secret, ttl })
    }
}

fn key_file(path: &Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(key) if key.len() >= 32 => return Ok(key),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is shorter than 32 bytes", path.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let mut key = vec![0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, &key)?;
            file.sync_all()?;
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(e) => Err(e),
    }
}

/// The claims of a Pazar access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// `customer` or `admin`.
    pub role: Role,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Always [`ISSUER`].
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
}

impl Claims {
    /// The user the token was issued to.
    pub fn user_id(&self) -> Result<UserId, ApiError> {
        self.sub
            .parse()
            .map(UserId)
            .map_err(|_| ApiError::unauthorized("the token's subject is not a user id"))
    }

    /// Refuses non-admins with 403.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Customer => Err(ApiError::forbidden("this operation needs the admin role")),
        }
    }
}

/// Signs and verifies access tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    validation: Arc<Validation>,
    ttl: Duration,
}

impl TokenIssuer {
    /// An issuer for a key.
    pub fn new(config: &TokenConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: Arc::new(EncodingKey::from_secret(&config.secret)),
            decoding: Arc::new(DecodingKey::from_secret(&config.secret)),
            validation: Arc::new(validation),
            ttl: config.ttl,
        }
    }

    /// Seconds an access token lives.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl.as_secs() as i64
    }

    /// A signed token for `user`.
    pub fn issue(&self, user: UserId, role: Role) -> Result<String, ApiError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.to_string(),
            role,
            iat: now,
            exp: now + self.ttl_seconds(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|error| {
            tracing::error!(%error, "could not sign a token");
            ApiError::internal()
        })
    }

    /// The claims of a valid token; any defect is a 401.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                let detail = match error.kind() {
                    ErrorKind::ExpiredSignature => "the access token has expired",
                    ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => {
                        "the access token was not issued for this API"
                    }
                    ErrorKind::InvalidAlgorithm => "the access token uses a refused algorithm",
                    _ => "the access token is invalid",
                };
                ApiError::unauthorized(detail)
            })
    }
}

/// A verified bearer token: put it in an operation's arguments to require login.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub Claims);

async fn check_bearer(request: &Request, bearer: Bearer) -> poem::Result<Claims> {
    let authenticator = request
        .data::<Arc<Authenticator>>()
        .ok_or_else(ApiError::internal)?;
    Ok(authenticator.authenticate(&bearer.token).await?)
}

/// Where the current role of a token's user comes from (the users service).
#[async_trait]
pub trait RoleSource: Send + Sync + 'static {
    /// The user's role now; `None` if the user no longer exists.
    async fn current_role(&self, user: UserId) -> Result<Option<Role>, DomainError>;
}

/// Checks bearer tokens for every service's routes: the app puts one in the
/// request data (`EndpointExt::data`), and [`BearerAuth`] uses it.
pub struct Authenticator {
    /// Issues and verifies access tokens.
    pub tokens: TokenIssuer,
    principals: Principals,
    roles: Arc<dyn RoleSource>,
}

impl Authenticator {
    /// Verifies with `tokens`, and asks `roles` for current roles (cached for
    /// [`PRINCIPAL_TTL`]).
    pub fn new(tokens: TokenIssuer, roles: Arc<dyn RoleSource>) -> Self {
        Self {
            tokens,
            principals: Principals::new(PRINCIPAL_TTL),
            roles,
        }
    }

    /// Verifies `token` and brings its role up to date: a token whose user no
    /// longer exists is a 401, and the role is the user's current one (a demoted
    /// admin loses admin rights within [`PRINCIPAL_TTL`], not when the token expires).
    pub async fn authenticate(&self, token: &str) -> Result<Claims, ApiError> {
        let mut claims = self.tokens.verify(token)?;
        let user = claims.user_id()?;
        claims.role = self.principals.role(user, &*self.roles).await?;
        Ok(claims)
    }
}

/// How long a user's current role is cached before the store is asked again.
pub const PRINCIPAL_TTL: Duration = Duration::from_secs(5);
/// Cached users above this are forgotten all at once (a bound, not an LRU).
const PRINCIPALS_MAX: usize = 100_000;

/// Users' current roles (`None`: no such user), each cached for a short time so
/// that an authenticated request costs a map lookup, not a query.
struct Principals {
    ttl: Duration,
    cache: dashmap::DashMap<UserId, (Option<Role>, std::time::Instant)>,
}

impl Principals {
    /// A cache whose entries live `ttl`.
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            cache: dashmap::DashMap::new(),
        }
    }

    /// The user's current role; 401 if the user no longer exists.
    async fn role(&self, user: UserId, roles: &dyn RoleSource) -> Result<Role, ApiError> {
        let cached = self
            .cache
            .get(&user)
            .filter(|entry| entry.1.elapsed() < self.ttl)
            .map(|entry| entry.0);
        let role = match cached {
            Some(role) => role,
            None => {
                let role = roles.current_role(user).await?;
                if self.cache.len() >= PRINCIPALS_MAX {
                    self.cache.clear();
                }
                self.cache.insert(user, (role, std::time::Instant::now()));
                role
            }
        };
        role.ok_or_else(|| ApiError::unauthorized("the token's user no longer exists"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(secret: &[u8], ttl: Duration) -> TokenIssuer {
        TokenIssuer::new(&TokenConfig {
            secret: secret.to_vec(),
            ttl,
        })
    }

    /// A customer's id and role.
    struct User {
        id: UserId,
        role: Role,
    }

    fn user() -> User {
        User {
            id: UserId::new(),
            role: Role::Customer,
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_other_keys() {
        let tokens = issuer(&[7; 32], Duration::from_secs(60));
        let user = user();
        let claims = tokens
            .verify(&tokens.issue(user.id, user.role).unwrap())
            .unwrap();
        assert_eq!(claims.user_id().unwrap(), user.id);
        let other = issuer(&[8; 32], Duration::from_secs(60));
        assert_eq!(
            other
                .verify(&tokens.issue(user.id, user.role).unwrap())
                .unwrap_err()
                .status,
            401
        );
    }

    #[test]
    fn expired_and_unsigned_tokens_are_rejected() {
        let tokens = issuer(&[7; 32], Duration::from_secs(60));
        let now = Utc::now().timestamp();
        let expired = Claims {
            sub: UserId::new().to_string(),
            role: Role::Admin,
            iat: now - 120,
            exp: now - 60,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        let token = encode(
            &Header::new(Algorithm::HS256),
            &expired,
            &EncodingKey::from_secret(&[7; 32]),
        )
        .unwrap();
        assert!(tokens
            .verify(&token)
            .unwrap_err()
            .detail
            .contains("expired"));
        // alg=none: header {"alg":"none"} with the same claims and no signature.
        let fresh = Claims {
            exp: now + 60,
            ..expired
        };
        let body = serde_json::to_vec(&fresh).unwrap();
        use std::fmt::Write;
        let b64 = |bytes: &[u8]| {
            let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let n = chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
                for i in 0..=chunk.len() {
                    let _ = out.write_char(table[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        };
        let unsigned = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(&body));
        assert_eq!(tokens.verify(&unsigned).unwrap_err().status, 401);
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("pazar-key-{}", UserId::new()));
        let first = TokenConfig::load_or_generate(None, &dir, Duration::from_secs(1)).unwrap();
        let second = TokenConfig::load_or_generate(None, &dir, Duration::from_secs(1)).unwrap();
        assert_eq!(first.secret, second.secret);
        assert_eq!(first.secret.len(), 64);
        assert!(
            TokenConfig::load_or_generate(Some("short"), &dir, Duration::from_secs(1)).is_err()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
