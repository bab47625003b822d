//! Roles: which of the five services a process runs (`pazar serve --roles …`,
//! `PAZAR_ROLES`), and which role answers which public path.
//!
//! The default `all` runs every service in one process. Split roles share one
//! PostgreSQL: events cross through the shared outbox (each subscriber reads it
//! with its own cursor, in the process that runs its role), checkout reaches the
//! catalog's stock through the internal API, and everything else is read from the
//! shared store.

use std::fmt;
use std::str::FromStr;

/// One of the services a process can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// Products, their stock (ProductStock actors), adjustments and holds.
    Catalog,
    /// Carts, checkout, orders and their expiry.
    Orders,
    /// Accounts, logins, tokens.
    Users,
    /// Payment sessions, providers, webhooks, reconciliation, refunds.
    Payments,
    /// The mail queue and the mailroom.
    Notifications,
}

impl Service {
    /// Every service, in start order.
    pub const ALL: [Service; 5] = [
        Service::Catalog,
        Service::Orders,
        Service::Users,
        Service::Payments,
        Service::Notifications,
    ];

    /// The role's name, as `--roles` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Catalog => "catalog",
            Service::Orders => "orders",
            Service::Users => "users",
            Service::Payments => "payments",
            Service::Notifications => "notifications",
        }
    }

    /// Whether the role hosts entity actors, and so may be active in one process
    /// at a time only (the others are stateless and may run in many).
    pub fn hosts_entities(self) -> bool {
        matches!(self, Service::Catalog | Service::Orders | Service::Payments)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles one process runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    /// Every service in one process: the embedded default.
    pub const fn all() -> Self {
        Roles(0b1_1111)
    }

    /// Exactly these services.
    pub fn of(services: &[Service]) -> Self {
        Roles(services.iter().fold(0, |bits, s| bits | s.bit()))
    }

    /// Whether this process runs `service`.
    pub fn runs(self, service: Service) -> bool {
        self.0 & service.bit() != 0
    }

    /// Whether this process runs every service.
    pub fn is_all(self) -> bool {
        self == Roles::all()
    }

    /// The services run here, in start order.
    pub fn services(self) -> impl Iterator<Item = Service> {
        Service::ALL.into_iter().filter(move |s| self.runs(*s))
    }
}

impl Default for Roles {
    fn default() -> Self {
        Roles::all()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("all");
        }
        let names: Vec<&str> = self.services().map(Service::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Roles({self})")
    }
}

impl FromStr for Roles {
    type Err = String;

    /// `all`, or a comma-separated list of role names.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut roles = Roles(0);
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "all" {
                roles = Roles::all();
                continue;
            }
            let service = Service::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown role `{name}`: roles are all, catalog, orders, users, \
                         payments and notifications"
                    )
                })?;
            roles.0 |= service.bit();
        }
        if roles.0 == 0 {
            return Err("name at least one role (or `all`)".into());
        }
        Ok(roles)
    }
}

/// The role that answers a public path; `None` for what every process answers
/// (health, readiness, metrics, the supervision snapshot, the documentation).
///
/// The gateway's configuration (`deploy/nginx.conf`) routes by the same table;
/// a test checks the two agree for every path of the OpenAPI document.
pub fn owner_of(path: &str) -> Option<Service> {
    let rest = path.strip_prefix("/api/v1/")?;
    let mut segments = rest.split('/');
    let first = segments.next()?;
    match first {
        "auth" => Some(Service::Users),
        "products" => Some(Service::Catalog),
        "cart" => Some(Service::Orders),
        "payments" | "webhooks" => Some(Service::Payments),
        // `/api/v1/orders/{id}/payment` is the payments service's.
        "orders" => match (segments.next(), segments.next()) {
            (Some(_), Some("payment")) => Some(Service::Payments),
            _ => Some(Service::Orders),
        },
        "admin" => match segments.next()? {
            "products" => Some(Service::Catalog),
            "emails" => Some(Service::Notifications),
            // `/api/v1/admin/orders/{id}/refund`: the money goes back first.
            "orders" => match (segments.next(), segments.next()) {
                (Some(_), Some("refund")) => Some(Service::Payments),
                _ => Some(Service::Orders),
            },
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print() {
        assert!("all".parse::<Roles>().unwrap().is_all());
        let two: Roles = "catalog, orders".parse().unwrap();
        assert!(two.runs(Service::Catalog) && two.runs(Service::Orders));
        assert!(!two.runs(Service::Users));
        assert_eq!(two.to_string(), "catalog,orders");
        let every: Roles = "users,notifications,payments,orders,catalog"
            .parse()
            .unwrap();
        assert!(every.is_all());
        let error = "catalog,shipping".parse::<Roles>().unwrap_err();
        assert!(error.contains("`shipping`"), "{error}");
        assert!(" , ".parse::<Roles>().is_err());
    }

    #[test]
    fn every_public_path_has_its_owner() {
        let cases = [
            ("/api/v1/auth/login", Some(Service::Users)),
            ("/api/v1/products", Some(Service::Catalog)),
            (
                "/api/v1/products/x/stock-adjustments",
                Some(Service::Catalog),
            ),
            (
                "/api/v1/admin/products/x/reservations",
                Some(Service::Catalog),
            ),
            ("/api/v1/cart/live", Some(Service::Orders)),
            ("/api/v1/orders", Some(Service::Orders)),
            ("/api/v1/orders/x/cancel", Some(Service::Orders)),
            ("/api/v1/orders/x/payment", Some(Service::Payments)),
            ("/api/v1/payments/local/confirm", Some(Service::Payments)),
            ("/api/v1/webhooks/stripe", Some(Service::Payments)),
            ("/api/v1/admin/orders", Some(Service::Orders)),
            ("/api/v1/admin/orders/x/fulfil", Some(Service::Orders)),
            ("/api/v1/admin/orders/x/refund", Some(Service::Payments)),
            ("/api/v1/admin/emails/x/retry", Some(Service::Notifications)),
            ("/api/v1/admin/supervisor", None),
            ("/api/v1/events/schemas", None),
            ("/ready", None),
            ("/metrics", None),
        ];
        for (path, owner) in cases {
            assert_eq!(owner_of(path), owner, "{path}");
        }
    }
}
