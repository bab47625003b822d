//! The OpenAPI document as served: poem-openapi's generated document, plus the
//! error side every operation shares.
//!
//! Handlers return `poem::Result`, and every error leaves through one mapping
//! (`error.rs`) as `application/problem+json`; poem-openapi does not see those
//! answers. So the document gets a `Problem` schema and, on every operation, a
//! `default` response with it: what a client must expect besides the listed
//! successes. Swagger UI at `/docs` shows the same document.

use poem::web::Html;
use poem::{handler, Endpoint, EndpointExt, IntoResponse, Route};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::ToJSON;
use poem_openapi::ApiResponse;
use serde_json::{json, Value};
use std::marker::PhantomData;

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

/// A JSON body of `T` written once and sent many times: the same bytes and the
/// same document entry as poem-openapi's `Json<T>`, without building `T` and its
/// `serde_json::Value` again for every request (a cached product's page).
pub struct RenderedJson<T> {
    body: bytes::Bytes,
    of: PhantomData<fn() -> T>,
}

impl<T: ToJSON> RenderedJson<T> {
    /// `value` as `Json(value)` would write it.
    pub fn render(value: &T) -> Self {
        let body = serde_json::to_vec(&value.to_json()).unwrap_or_default();
        Self {
            body: body.into(),
            of: PhantomData,
        }
    }
}

impl<T> RenderedJson<T> {
    /// Bytes that [`RenderedJson::render`] made of a `T` earlier (a cache's copy).
    pub fn from_rendered(body: bytes::Bytes) -> Self {
        Self {
            body,
            of: PhantomData,
        }
    }

    /// The bytes sent, to keep.
    pub fn into_bytes(self) -> bytes::Bytes {
        self.body
    }
}

impl<T: poem_openapi::types::Type> Payload for RenderedJson<T> {
    const CONTENT_TYPE: &'static str = <Json<T> as Payload>::CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for RenderedJson<T> {
    fn into_response(self) -> poem::Response {
        let mut response = poem::Response::from(poem::Body::from_bytes(self.body));
        response.headers_mut().insert(
            poem::http::header::CONTENT_TYPE,
            poem::http::HeaderValue::from_static("application/json; charset=utf-8"),
        );
        response
    }
}

impl<T: ToJSON> ApiResponse for RenderedJson<T> {
    fn meta() -> MetaResponses {
        <Json<T> as ApiResponse>::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
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

/// An API's operations as routes to mount beside the others, instead of nesting
/// poem-openapi's own router: a request is matched once, and its URI is not
/// rewritten for a nest. Each path comes once, with all its methods (a 405 for
/// the others, as poem-openapi's router answers). The document still describes
/// them: build it from [`DocumentOf`].
pub fn operations<T: poem_openapi::OpenApi>(
    api: T,
) -> impl Iterator<Item = (String, impl Endpoint<Output = poem::Response>)> {
    let mut table = std::collections::HashMap::new();
    api.add_routes(&mut table);
    table.into_iter().map(|(path, methods)| {
        let methods = methods
            .into_iter()
            .fold(poem::RouteMethod::new(), |route, (method, endpoint)| {
                route.method(method, endpoint)
            });
        (path, methods.before(with_query))
    })
}

/// What poem-openapi's router does before an operation: parse the query once
/// into the request, where the operations' `Query` parameters read it.
async fn with_query(mut request: poem::Request) -> poem::Result<poem::Request> {
    let query: Vec<(String, String)> = request.params().unwrap_or_default();
    request
        .extensions_mut()
        .insert(poem_openapi::__private::UrlQuery(query));
    Ok(request)
}

/// The OpenAPI document of `T` without its routes (they are mounted by
/// [`operations`]).
pub struct DocumentOf<T>(PhantomData<fn() -> T>);

impl<T> DocumentOf<T> {
    /// The document of `api`'s type.
    pub fn of(_api: &T) -> Self {
        Self(PhantomData)
    }
}

impl<T: poem_openapi::OpenApi> poem_openapi::OpenApi for DocumentOf<T> {
    fn meta() -> Vec<poem_openapi::registry::MetaApi> {
        T::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn add_routes(
        self,
        _route_table: &mut std::collections::HashMap<
            String,
            std::collections::HashMap<poem::http::Method, poem::endpoint::BoxEndpoint<'static>>,
        >,
    ) {
    }
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

    #[derive(poem_openapi::Object, Clone)]
    struct Kettle {
        name: String,
        price: i64,
        tags: Vec<String>,
    }

    #[tokio::test]
    async fn a_rendered_body_is_what_json_sends_with_the_same_document_entry() {
        let kettle = Kettle {
            name: "Copper \"Kettle\" é".into(),
            price: 4999,
            tags: vec!["kitchen".into()],
        };
        let json = Json(kettle.clone()).into_response();
        let rendered = RenderedJson::render(&kettle).into_response();
        assert_eq!(rendered.status(), json.status());
        assert_eq!(rendered.content_type(), json.content_type());
        assert_eq!(
            rendered.into_body().into_vec().await.unwrap(),
            json.into_body().into_vec().await.unwrap()
        );
        let (document, cached) = (
            <Json<Kettle> as ApiResponse>::meta(),
            <RenderedJson<Kettle> as ApiResponse>::meta(),
        );
        assert_eq!(cached.responses[0].content, document.responses[0].content);
        assert_eq!(cached.responses[0].status, Some(200));
    }

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
