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

/// The generated document with the shared problem response added.
pub fn with_problems(generated: &str) -> String {
    let Ok(mut document) = serde_json::from_str::<Value>(generated) else {
        return generated.to_owned();
    };
    document["components"]["schemas"]["Problem"] = problem_schema();
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

#[cfg(test)]
mod tests {
    use super::*;

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
