//! The operations of the API, one module per area, plus the JSON shapes they share.

pub mod admin;
pub mod events;
pub mod health;

pub use pazar_http::params::{status_filter, JsonBody, MoneyDto, UuidParam};
