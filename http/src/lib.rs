//! Pazar's HTTP layer: poem + poem-openapi.
//!
//! Handlers are thin: they extract and parse the request, make one call into the
//! [`Shop`] (an actor call with a timeout, or a service call), and map the reply to
//! JSON. Every error leaves through [`error::ApiError`] as `application/problem+json`,
//! mapped from domain errors in exactly one place. Authentication is a bearer JWT
//! ([`auth`]); authorisation is checked per operation.

pub mod api;
pub mod auth;
pub mod client_address;
pub mod connection;
pub mod error;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod server;
pub mod stripe_signature;
pub mod validate;
pub mod webhooks;

pub use auth::{TokenConfig, TokenIssuer};
pub use error::ApiError;
pub use server::{app, serve, HttpConfig};

use pazar_supervisor::Shop;

/// What every handler can reach.
pub struct AppState {
    /// The services and supervised entities.
    pub shop: Shop,
    /// Issues and verifies access tokens.
    pub tokens: TokenIssuer,
    /// Request counters and latencies for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Users' current roles, cached briefly for token checks.
    pub principals: auth::Principals,
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers name the client.
    pub trusted_proxies: client_address::TrustedProxies,
}

impl AppState {
    /// State for a shop and a token issuer.
    pub fn new(shop: Shop, tokens: TokenIssuer) -> Self {
        Self {
            shop,
            tokens,
            metrics: metrics::Metrics::default(),
            principals: auth::Principals::new(auth::PRINCIPAL_TTL),
            trusted_proxies: client_address::TrustedProxies::default(),
        }
    }

    /// Trusts these proxies' forwarding headers (`PAZAR_TRUSTED_PROXIES`).
    pub fn with_trusted_proxies(mut self, proxies: client_address::TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }
}
