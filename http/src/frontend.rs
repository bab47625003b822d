//! The storefront (React, `frontend/`), built into the binary and served at
//! `/`: `/assets/…` by name (content-hashed, so cached for good), every page
//! path (`/`, `/products/{id}`, `/cart`, `/orders/{id}`, `/pay/{order_id}`,
//! `/admin/{section}`, …)
//! the app's `index.html`, which routes in the browser. A reload or a link from
//! an e-mail lands on the right page.

use poem::http::{header, StatusCode};
use poem::web::{Data, Path};
use poem::{handler, Response};

include!(concat!(env!("OUT_DIR"), "/frontend.rs"));

/// The page paths the app answers (poem route patterns).
pub const PAGES: &[&str] = &[
    "/",
    "/products/:id",
    "/cart",
    "/orders",
    "/orders/:id",
    "/pay/:id",
    "/signin",
    "/signup",
    "/admin",
    "/admin/:section",
];

fn file(name: &str) -> Option<&'static [u8]> {
    FILES
        .iter()
        .find(|(path, _)| *path == name)
        .map(|(_, bytes)| *bytes)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The pages' Content-Security-Policy: scripts, styles and connections from
/// this origin only — and, when the shop takes cards through Stripe, what
/// Stripe.js needs (its script's origin, its frames, Stripe's API).
#[derive(Clone, Debug)]
pub struct PagePolicy(String);

impl PagePolicy {
    /// The policy, allowing Stripe.js from `stripe_js` when given.
    pub fn new(stripe_js: Option<&str>) -> Self {
        let (mut script, mut frame, mut connect, mut img) = (
            String::from("'self'"),
            String::from("'none'"),
            String::from("'self'"),
            String::from("'self' data:"),
        );
        if let Some(origin) = stripe_js.and_then(origin_of) {
            script = format!("'self' {origin}");
            frame = format!("{origin} https://js.stripe.com https://hooks.stripe.com");
            connect = format!("'self' {origin} https://api.stripe.com");
            img = String::from("'self' data: https://*.stripe.com");
        }
        Self(format!(
            "default-src 'self'; script-src {script}; style-src 'self'; img-src {img}; \
             connect-src {connect}; frame-src {frame}; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'self'"
        ))
    }

    /// The header's value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for PagePolicy {
    fn default() -> Self {
        Self::new(None)
    }
}

/// `scheme://host[:port]` of an http(s) URL.
fn origin_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = url.len() - rest.len() + rest.find('/').unwrap_or(rest.len());
    let origin = &url[..end];
    // Nothing that could end the directive or start another.
    (!origin.contains([';', ' ', ',', '\'', '"'])).then_some(origin)
}

/// A page: the app, which routes by the URL.
#[handler]
pub fn page(Data(policy): Data<&PagePolicy>) -> Response {
    match file("index.html") {
        Some(html) => Response::builder()
            .content_type(content_type("index.html"))
            .header(header::CACHE_CONTROL, "no-cache")
            .header(header::CONTENT_SECURITY_POLICY, policy.as_str())
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::REFERRER_POLICY, "same-origin")
            .body(html),
        None => Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .content_type("text/plain; charset=utf-8")
            .body(
                "This pazar was built without its storefront: run `npm ci && npm run build` \
                 in frontend/ and build pazar again. The API is at /api/v1 (see /docs).",
            ),
    }
}

/// A built asset by name; 404 for anything else.
#[handler]
pub fn asset(Path(name): Path<String>) -> Response {
    let name = format!("assets/{name}");
    match file(&name) {
        Some(bytes) => Response::builder()
            .content_type(content_type(&name))
            .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .body(bytes),
        None => Response::builder().status(StatusCode::NOT_FOUND).finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_js_is_allowed_only_from_its_own_origin() {
        let plain = PagePolicy::default();
        assert!(plain.as_str().contains("script-src 'self';"));
        assert!(plain.as_str().contains("frame-src 'none';"));
        let stripe = PagePolicy::new(Some("http://127.0.0.1:8421/js.stripe.com/v3/"));
        assert!(stripe
            .as_str()
            .contains("script-src 'self' http://127.0.0.1:8421;"));
        assert!(stripe
            .as_str()
            .contains("connect-src 'self' http://127.0.0.1:8421 https://api.stripe.com;"));
        assert_eq!(
            origin_of("https://js.stripe.com/v3/"),
            Some("https://js.stripe.com")
        );
        assert_eq!(
            origin_of("https://js.stripe.com"),
            Some("https://js.stripe.com")
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("https://a.test;script-src *"), None);
    }

    #[test]
    fn types_follow_the_extension() {
        assert_eq!(
            content_type("assets/index-1a2b.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x.unknown"), "application/octet-stream");
    }
}
