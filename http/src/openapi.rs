//! The OpenAPI document as served: poem-openapi's generated document, plus the
//! error side every operation shares.
//!
//! Handlers return `poem::Result`, and every error leaves through one mapping
//! (`error.rs`) as `application/problem+json`; poem-openapi does not see those
//! answers. So the document gets a `Problem` schema and, on every operation, a
//! `default` response with it: what a client must expect besides the listed
//! successes. Swagger UI at `/docs` shows the same document.

use poem::web::Html;
use poem::{handler, Endpoint, EndpointExt, Route};
use serde_json::{json, Value};

/// Operation groups in the OpenAPI document.
#[derive(poem_openapi::Tags)]
pub enum Tag {
    /// Probes.
    Health,
    /// Registration, login, the current user.
    Auth,
    /// Products and stock.
    Catalog,
    /// The caller's cart.
    Cart,
    /// Checkout and orders.
    Orders,
    /// Paying for orders.
    Payments,
    /// Shop administration.
    Admin,
    /// The schemas of the events the services publish.
    Events,
}

/// The generated document with the shared problem response added.
pub fn with_problems(generated: &str) -> String {
    let Ok(mut document) = serde_json::from_str::<Value>(generated) else {
        return generated.to_owned();
    };
    document["components"]["schemas"]["Problem"] = problem_schema();
    // Rules poem-openapi's validators cannot express, added to their fields.
    for (schema, property, rule) in REFINEMENTS {
        let field = &mut document["components"]["schemas"][schema]["properties"][property];
        if let (Some(field), Ok(Value::Object(rule))) =
            (field.as_object_mut(), serde_json::from_str::<Value>(rule))
        {
            field.extend(rule);
        }
    }
    if let Some(paths) = document["paths"].as_object_mut() {
        for operations in paths.values_mut() {
            let Some(operations) = operations.as_object_mut() else {
                continue;
            };
            for operation in operations.values_mut() {
                let Some(responses) = operation["responses"].as_object_mut() else {
                    continue;
                };
                responses.entry("default").or_insert_with(default_response);
            }
        }
    }
    document.to_string()
}

/// (schema, property, JSON members added to the property's schema).
const REFINEMENTS: &[(&str, &str, &str)] = &[
    // A stock adjustment of zero is refused (422): there is nothing to log.
    (
        "StockAdjustmentRequest",
        "delta",
        r#"{"not": {"enum": [0]}}"#,
    ),
    // The address rule (`Email::parse`) is stricter than a regular expression can say
    // without look-ahead (64 characters before the `@`); the format names it.
    ("RegisterRequest", "email", r#"{"format": "email"}"#),
];

/// RFC 9457 problem details as Pazar writes them.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details. Client mistakes are 4xx and name the offending `field`; other members (e.g. `unavailable`, `available`) depend on the `type`.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "description": "stable kind, e.g. `urn:pazar:problem:validation`"},
            "title": {"type": "string"},
            "status": {"type": "integer", "format": "uint16"},
            "detail": {"type": "string", "description": "what happened this time"},
            "field": {"type": "string", "description": "the offending input: a JSON path in the body, or a parameter or header name"}
        },
        "additionalProperties": true
    })
}

fn default_response() -> Value {
    json!({
        "description": "A problem: 400 malformed input, 401 no or bad token, 403 not allowed, 404 not found (also another user's resource), 409 conflict with the current state, 413 body too large, 422 invalid field, 429 throttled (Retry-After), 503 temporarily unavailable.",
        "content": {
            "application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}
            }
        }
    })
}

/// `/openapi.json` and the Swagger UI at `/docs`, both with the completed document.
pub fn endpoints(generated: String, swagger_html: String) -> (impl Endpoint, impl Endpoint) {
    let document = with_problems(&generated);
    // The UI page embeds the document verbatim; swap in the completed one.
    let page = swagger_html.replacen(&generated, &document, 1);
    let spec = spec_handler.data(document);
    let docs = Route::new().at("/", ui_handler.data(page));
    (spec, docs)
}

/// The methods each path of the API answers, for the `Allow` header of a 405.
#[derive(Clone, Debug, Default)]
pub struct AllowedMethods {
    /// Path templates split in segments (`{id}` matches any one), and their methods.
    routes: Vec<(Vec<String>, Vec<String>)>,
}

impl AllowedMethods {
    /// The operations of an OpenAPI `document`, plus `extra` routes outside it.
    pub fn from_document(document: &str, extra: &[(&str, &str)]) -> Self {
        let mut allowed = Self::default();
        if let Ok(document) = serde_json::from_str::<Value>(document) {
            for (path, operations) in document["paths"].as_object().into_iter().flatten() {
                for method in operations.as_object().into_iter().flatten().map(|(m, _)| m) {
                    allowed.add(path, method);
                }
            }
        }
        for (path, method) in extra {
            allowed.add(path, method);
        }
        allowed
    }

    fn add(&mut self, path: &str, method: &str) {
        let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
        let method = method.to_ascii_uppercase();
        match self.routes.iter_mut().find(|(known, _)| *known == segments) {
            Some((_, methods)) => methods.push(method),
            None => self.routes.push((segments, vec![method])),
        }
    }

    /// The first route whose template matches `path` segment by segment, where
    /// `fits(template part, path segment)` says whether a segment matches a part.
    fn find(
        &self,
        path: &str,
        fits: impl Fn(&str, &str) -> bool,
    ) -> Option<&(Vec<String>, Vec<String>)> {
        let segments: Vec<&str> = path.split('/').collect();
        self.routes.iter().find(|(template, _)| {
            template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(part, segment)| fits(part, segment))
        })
    }

    /// The document's template (`/api/v1/products/{id}`) of a route pattern as
    /// poem registered it (`/api/v1/products/:param0`), if the document has it.
    pub fn template_of(&self, pattern: &str) -> Option<String> {
        self.find(pattern, |part, segment| {
            match (is_variable(part), segment.starts_with([':', '*'])) {
                (false, false) => part == segment,
                (variable, parameter) => variable && parameter,
            }
        })
        .map(|(template, _)| template.join("/"))
    }

    /// `GET, POST` for a request path, if the API knows the path.
    pub fn for_path(&self, path: &str) -> Option<String> {
        self.find(path, |part, segment| is_variable(part) || part == segment)
            .map(|(_, methods)| {
                let mut methods = methods.clone();
                methods.sort();
                methods.join(", ")
            })
    }
}

/// A template's `{name}` segment.
fn is_variable(part: &str) -> bool {
    part.starts_with('{') && part.ends_with('}')
}

#[handler]
fn spec_handler(document: poem::web::Data<&String>) -> poem::Response {
    poem::Response::builder()
        .content_type("application/json; charset=utf-8")
        .body(document.0.clone())
}

#[handler]
fn ui_handler(page: poem::web::Data<&String>) -> Html<String> {
    Html(page.0.clone())
}

/// An API of a role this process may not run: its operations are always in the
/// document (every process serves the whole shop's document), its routes only
/// when the role runs here.
pub struct Maybe<T>(pub Option<T>);

impl<T: poem_openapi::OpenApi> poem_openapi::OpenApi for Maybe<T> {
    fn meta() -> Vec<poem_openapi::registry::MetaApi> {
        T::meta()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }

    fn add_routes(
        self,
        route_table: &mut std::collections::HashMap<
            String,
            std::collections::HashMap<poem::http::Method, poem::endpoint::BoxEndpoint<'static>>,
        >,
    ) {
        if let Some(api) = self.0 {
            api.add_routes(route_table);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_methods_come_from_the_document() {
        let document = json!({"paths": {
            "/api/v1/products": {"get": {}, "post": {}},
            "/api/v1/products/{id}": {"get": {}, "patch": {}, "delete": {}}
        }})
        .to_string();
        let allowed = AllowedMethods::from_document(&document, &[("/metrics", "get")]);
        assert_eq!(allowed.for_path("/api/v1/products").unwrap(), "GET, POST");
        assert_eq!(
            allowed.for_path("/api/v1/products/0190").unwrap(),
            "DELETE, GET, PATCH"
        );
        assert_eq!(allowed.for_path("/metrics").unwrap(), "GET");
        assert_eq!(allowed.for_path("/api/v1/products/0190/x"), None);
        // poem's pattern of a route, as the document writes it.
        assert_eq!(
            allowed.template_of("/api/v1/products/:param0").unwrap(),
            "/api/v1/products/{id}"
        );
        assert_eq!(
            allowed.template_of("/api/v1/products").unwrap(),
            "/api/v1/products"
        );
        // A parameter is not a literal segment, and a literal is not a parameter.
        assert_eq!(allowed.template_of("/api/v1/:param0"), None);
        assert_eq!(allowed.template_of("/api/v1/products/0190"), None);
    }

    #[test]
    fn every_operation_gets_the_problem_response() {
        let generated = json!({
            "openapi": "3.0.0",
            "paths": {"/a": {"get": {"responses": {"200": {"description": "ok"}}},
                             "post": {"responses": {"201": {"description": "made"}}}}},
            "components": {"schemas": {}}
        })
        .to_string();
        let document: Value = serde_json::from_str(&with_problems(&generated)).unwrap();
        for method in ["get", "post"] {
            assert_eq!(
                document["paths"]["/a"][method]["responses"]["default"]["content"]
                    ["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem"
            );
        }
        assert_eq!(
            document["components"]["schemas"]["Problem"]["required"][0],
            "type"
        );
    }
}
