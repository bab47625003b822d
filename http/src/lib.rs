//! Pazar's HTTP layer: poem + poem-openapi.
//!
//! Handlers are thin: they extract and parse the request, make one call into the
//! [`Shop`] (an actor call with a timeout, or a service call), and map the reply to
//! JSON. Every error leaves through [`error::ApiError`] as `application/problem+json`,
//! mapped from domain errors in exactly one place. Authentication is a bearer JWT
//! ([`auth`]); authorisation is checked per operation.

pub mod api;
pub mod auth;
pub mod error;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod server;
pub mod stripe_signature;
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
}

impl AppState {
    /// State for a shop and a token issuer.
    pub fn new(shop: Shop, tokens: TokenIssuer) -> Self {
        Self {
            shop,
            tokens,
            metrics: metrics::Metrics::default(),
        }
    }
}
