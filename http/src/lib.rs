//! What every service's HTTP routes share (poem + poem-openapi): bearer JWT
//! authentication ([`auth`], with the current role from a [`auth::RoleSource`]),
//! problem+json errors mapped from domain errors in exactly one place ([`error`]),
//! request inputs that name the offending field ([`params`], [`validate`]),
//! metrics, the client address behind trusted proxies, the silent-connection
//! timeout, the OpenAPI document's shared parts ([`openapi`]), the internal API's
//! shared secret ([`internal`]), W3C trace context ([`trace`]) and its export over
//! OTLP ([`otlp`]), and the built storefront ([`frontend`]). The services'
//! routes and the app that assembles them live elsewhere (`app/`); nothing here
//! knows a service.

pub mod auth;
pub mod client_address;
pub mod connection;
pub mod error;
pub mod frontend;
pub mod internal;
pub mod metrics;
pub mod openapi;
pub mod otlp;
pub mod params;
pub mod validate;

/// W3C trace context, shared with the kernel (the store writer stamps it on events).
pub use pazar_actors::trace;

pub use auth::{Authenticator, BearerAuth, RoleSource, TokenConfig, TokenIssuer};
pub use error::ApiError;
