//! The storefront (React, `frontend/`), built into the binary and served at
//! `/`: `/assets/…` by name (content-hashed, so cached for good), every page
//! path (`/`, `/products/{id}`, `/cart`, `/orders/{id}`, `/pay/{order_id}`,
//! `/admin/{section}`, …)
//! the app's `index.html`, which routes in the browser. A reload or a link from
//! an e-mail lands on the right page.

use poem::http::{header, StatusCode};
use poem::web::Path;
use poem::{handler, Response};

include!(concat!(env!("OUT_DIR"), "/frontend.rs"));

/// The page paths the app answers (poem route patterns), besides `/`.
pub const PAGES: &[&str] = &[
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

/// Scripts, styles and connections from this origin only.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'";

/// A page: the app, which routes by the URL.
#[handler]
pub fn page() -> Response {
    match file("index.html") {
        Some(html) => Response::builder()
            .content_type(content_type("index.html"))
            .header(header::CACHE_CONTROL, "no-cache")
            .header(header::CONTENT_SECURITY_POLICY, POLICY)
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
    fn types_follow_the_extension() {
        assert_eq!(
            content_type("assets/index-1a2b.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x.unknown"), "application/octet-stream");
    }
}
