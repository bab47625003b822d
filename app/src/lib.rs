//! Pazar's composition root: the one place that knows every service.
//!
//! [`Shop`] wires the services into one process (their entity supervisors under
//! one root, their subscribers and loops under one task supervisor), and
//! [`app`] assembles their HTTP routes into one poem endpoint with the
//! cross-cutting middleware of `pazar-http`. The generic machinery this builds on
//! lives in `pazar-supervisor`; what every route shares lives in `pazar-http`.
//!
//! ```text
//! root (ShopRoot)
//! ├── catalog: EntitySupervisor<ProductStockKind> ── ProductStock(product_id) …  (on demand)
//! ├── orders:  EntitySupervisor<CartKind> ── Cart(user_id) …                    (on demand)
//! ├── orders:  EntitySupervisor<OrderKind> ── Order(order_id) …                 (on demand)
//! └── payments: EntitySupervisor<PaymentSessionKind> ── PaymentSession(order_id) …
//! tasks (TaskSupervisor): store_writer (group commit), hold_sweeper (catalog),
//! delivery:<subscriber> (one per outbox subscriber), payment_reconciler,
//! mailroom (notifications), sweeper (orders: expiry, holds of dead checkouts)
//! ```

pub mod api;
pub mod inbound;
pub mod lease;
pub mod roles;
pub mod server;
pub mod shop;

pub use pazar_notifications::MailConfig;
pub use roles::{Roles, Service};
pub use server::{app, serve, HttpConfig};
pub use shop::{SearchBackend, Shop, ShopConfig};

use pazar_http::auth::{Authenticator, TokenIssuer};
use std::sync::Arc;

/// What every handler can reach.
pub struct AppState {
    /// The services and supervised entities.
    pub shop: Shop,
    /// Verifies bearer tokens (and issues them, for the auth routes).
    pub auth: Arc<Authenticator>,
    /// Request counters and latencies for `/metrics`.
    pub metrics: pazar_http::metrics::Metrics,
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers name the client.
    pub trusted_proxies: pazar_http::client_address::TrustedProxies,
}

impl AppState {
    /// State for a shop and a token issuer.
    pub fn new(shop: Shop, tokens: TokenIssuer) -> Self {
        let roles = Arc::new(pazar_users::CurrentRoles(shop.accounts.clone()));
        Self {
            shop,
            auth: Arc::new(Authenticator::new(tokens, roles)),
            metrics: pazar_http::metrics::Metrics::default(),
            trusted_proxies: pazar_http::client_address::TrustedProxies::default(),
        }
    }

    /// Trusts these proxies' forwarding headers (`PAZAR_TRUSTED_PROXIES`).
    pub fn with_trusted_proxies(
        mut self,
        proxies: pazar_http::client_address::TrustedProxies,
    ) -> Self {
        self.trusted_proxies = proxies;
        self
    }
}
