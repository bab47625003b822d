//! `/api/v1/auth`: register, login, me.

use crate::accounts::{Accounts, NewUser, User};
use pazar_actors::Role;
use pazar_http::auth::{Authenticator, BearerAuth};
use pazar_http::client_address::TrustedProxies;
use pazar_http::error::{problem, ApiError};
use pazar_http::openapi::Tag;
use pazar_http::params::JsonBody;
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use std::sync::Arc;
use uuid::Uuid;

/// Registration, login, and who am I.
pub struct AuthApi {
    /// The service.
    pub accounts: Accounts,
    /// Issues the tokens.
    pub auth: Arc<Authenticator>,
    /// Peers whose forwarding headers name the client (per-address throttling).
    pub trusted_proxies: TrustedProxies,
}

/// A user as clients see it.
#[derive(Object, Clone, Debug)]
pub struct UserDto {
    /// Id.
    pub id: Uuid,
    /// Normalised e-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `customer` or `admin`.
    pub role: String,
}

impl From<User> for UserDto {
    fn from(user: User) -> Self {
        Self {
            id: user.id.0,
            email: user.email.as_str().to_owned(),
            name: user.name,
            role: user.role.as_str().to_owned(),
        }
    }
}

/// A registration.
#[derive(Object, Deserialize)]
pub struct RegisterRequest {
    /// E-mail address (`format: email`); it becomes the login name. ASCII
    /// `local@domain`: the local part 1-64 dot-separated atoms of letters, digits and
    /// ``!#$%&'*+/=?^_`{|}~-``, the domain two or more labels of letters, digits and
    /// inner hyphens; at most 254 characters.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// 8 to 128 characters.
    #[oai(validator(
        min_length = 8,
        max_length = 128,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    pub password: String,
    /// Display name, 1-100 characters.
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    pub name: String,
}

/// A login.
#[derive(Object, Deserialize)]
pub struct LoginRequest {
    /// E-mail address.
    #[oai(validator(max_length = 254, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))]
    pub email: String,
    /// Password.
    #[oai(validator(max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))]
    pub password: String,
}

/// A user with a fresh access token.
#[derive(Object)]
pub struct SessionDto {
    /// The user.
    pub user: UserDto,
    /// JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// Answer of a registration.
#[derive(ApiResponse)]
pub enum Registered {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<SessionDto>),
}

impl AuthApi {
    fn session(&self, user: User) -> Result<SessionDto, ApiError> {
        Ok(SessionDto {
            access_token: self.auth.tokens.issue(user.id, user.role)?,
            token_type: "Bearer".into(),
            expires_in: self.auth.tokens.ttl_seconds(),
            user: user.into(),
        })
    }
}

#[OpenApi(tag = "Tag::Auth")]
impl AuthApi {
    /// Create a customer account and log in.
    #[oai(path = "/api/v1/auth/register", method = "post")]
    async fn register(&self, body: JsonBody<RegisterRequest>) -> poem::Result<Registered> {
        let request = body.0;
        let new = NewUser::parse(
            &request.email,
            &request.password,
            &request.name,
            Role::Customer,
        )
        .map_err(problem)?;
        let user = self.accounts.register(new).await.map_err(problem)?;
        Ok(Registered::Created(Json(self.session(user)?)))
    }

    /// Exchange e-mail and password for an access token.
    #[oai(path = "/api/v1/auth/login", method = "post")]
    async fn login(
        &self,
        request: &Request,
        body: JsonBody<LoginRequest>,
    ) -> poem::Result<Json<SessionDto>> {
        // Per-address throttling counts the client, not a proxy in front of it.
        let remote = request.remote_addr();
        let address = match remote.as_socket_addr() {
            Some(peer) => self
                .trusted_proxies
                .client(peer.ip(), request.headers())
                .to_string(),
            None => remote.to_string(),
        };
        let user = self
            .accounts
            .login(&body.0.email, &body.0.password, &address)
            .await
            .map_err(problem)?;
        Ok(Json(self.session(user)?))
    }

    /// The user the token belongs to.
    #[oai(path = "/api/v1/auth/me", method = "get")]
    async fn me(&self, auth: BearerAuth) -> poem::Result<Json<UserDto>> {
        let id = auth.0.user_id()?;
        match self.accounts.user(id).await {
            Ok(user) => Ok(Json(user.into())),
            Err(pazar_actors::DomainError::NotFound { .. }) => {
                Err(ApiError::unauthorized("the token's user no longer exists").into())
            }
            Err(other) => Err(problem(other).into()),
        }
    }
}
