//! Problem responses (RFC 9457): the one place where errors become HTTP.
//!
//! Domain errors, poem's own errors (unparseable JSON, unknown route, body too
//! large) and auth failures all end up as `application/problem+json` with a
//! stable `type`. Internal failures are logged with their detail and answered
//! with a generic 500 that reveals nothing.

use pazar_actors::{DomainError, StoreError};
use poem::error::ResponseError;
use poem::http::{header, StatusCode};
use poem::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error on its way to the client.
#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    /// Stable identifier of the kind of problem, e.g. `urn:pazar:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the kind.
    pub title: &'static str,
    /// The HTTP status, repeated in the body.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// The offending input field, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Extra machine-readable members (e.g. `available` for a stock conflict).
    #[serde(flatten)]
    pub extra: Box<serde_json::Map<String, serde_json::Value>>,
    /// Seconds the client should wait before retrying (`Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A problem of kind `slug` with `status`.
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: format!("urn:pazar:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            extra: Box::default(),
            retry_after: None,
        }
    }

    /// Names the offending field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400: the request could not be read (bad JSON, wrong type, missing field).
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            detail,
        )
    }

    /// 401: no valid access token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    /// 403: authenticated, but the role does not allow this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 500: something broke on our side; the detail stays in the log.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "something went wrong on our side; it has been logged",
        )
    }

    fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait.as_secs().max(1));
        self
    }

    fn extra(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.status, self.detail)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn as_response(&self) -> Response {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut response = Response::builder()
            .status(self.status())
            .header(header::CONTENT_TYPE, PROBLEM_JSON)
            .body(body);
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = seconds.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Invalid { field, message } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid input",
                format!("{field} {message}"),
            )
            .with_field(field),
            DomainError::NotFound { what } => Self::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("{what} not found"),
            ),
            DomainError::Conflict { reason, message } => {
                Self::new(StatusCode::CONFLICT, "conflict", "Conflict", message)
                    .extra("reason", reason)
            }
            DomainError::InsufficientStock {
                product_id,
                requested,
                available,
            } => Self::new(
                StatusCode::CONFLICT,
                "insufficient-stock",
                "Not enough stock",
                format!("requested {requested}, only {available} available"),
            )
            .extra("product_id", product_id.to_string())
            .extra("requested", requested)
            .extra("available", available),
            DomainError::LinesUnavailable(lines) => Self::new(
                StatusCode::CONFLICT,
                "lines-unavailable",
                "Not enough stock",
                format!(
                    "{} cart lines cannot be reserved; nothing was reserved",
                    lines.len()
                ),
            )
            .extra(
                "unavailable",
                serde_json::to_value(&lines).unwrap_or(serde_json::Value::Null),
            ),
            DomainError::InvalidCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "Invalid credentials",
                "e-mail or password is wrong",
            ),
            DomainError::Throttled { retry_after } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-attempts",
                "Too many attempts",
                format!(
                    "too many failed logins; retry in {} s",
                    retry_after.as_secs().max(1)
                ),
            )
            .retry_after(retry_after),
            DomainError::Unavailable(detail) => {
                tracing::warn!(%detail, "service unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Temporarily unavailable",
                    detail,
                )
                .retry_after(Duration::from_secs(1))
            }
            DomainError::Store(StoreError::Interrupted) => {
                tracing::warn!("a write was interrupted by a store writer restart");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Temporarily unavailable",
                    "the write was interrupted; try again",
                )
                .retry_after(Duration::from_secs(1))
            }
            DomainError::Store(StoreError::Fenced { role }) => {
                tracing::error!(%role, "a write was fenced: another process holds the role now");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Temporarily unavailable",
                    format!("the {role} role has moved to another process; try again"),
                )
                .retry_after(Duration::from_secs(1))
            }
            DomainError::Store(StoreError::NotFound) => {
                Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", "not found")
            }
            DomainError::Store(StoreError::Conflict { constraint }) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                format!("conflicts with an existing record ({constraint})"),
            ),
            DomainError::Render { template, message } => {
                tracing::error!(%template, %message, "a mail template failed");
                Self::internal()
            }
            DomainError::Store(StoreError::Rejected(cause) | StoreError::Other(cause)) => {
                tracing::error!(detail = %cause, "store failure");
                Self::internal()
            }
        }
    }
}

/// Shorthand for handlers: `.map_err(problem)?`.
pub fn problem(error: DomainError) -> ApiError {
    error.into()
}

/// Turns any error that reached the top of the stack into a problem response.
pub fn into_problem_response(error: poem::Error) -> Response {
    if let Some(api) = error.downcast_ref::<ApiError>() {
        return api.as_response();
    }
    if let Some(param) = error.downcast_ref::<poem_openapi::error::ParseParamError>() {
        // A value that parses but breaks a declared bound is a 422, like a body's.
        if let Some(rule) = param.reason.strip_prefix("verification failed. ") {
            return ApiError::from(DomainError::invalid(
                param.name,
                format!("must satisfy {rule}"),
            ))
            .as_response();
        }
        return ApiError::malformed(format!("parameter {}: {}", param.name, param.reason))
            .with_field(param.name)
            .as_response();
    }
    let status = error.status();
    let detail = error.to_string();
    let problem = match status {
        StatusCode::UNAUTHORIZED => {
            ApiError::unauthorized("a valid bearer access token is required")
        }
        StatusCode::NOT_FOUND => ApiError::new(status, "not-found", "Not found", detail),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new(status, "method-not-allowed", "Method not allowed", detail)
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "payload-too-large", "Payload too large", detail)
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        ),
        s if s.is_client_error() => ApiError::malformed(detail),
        _ => {
            tracing::error!(%status, %detail, "unhandled error");
            ApiError::internal()
        }
    };
    problem.into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.as_response()
    }
}

/// Finds the field a serde error message names in backticks (``missing field `email` ``).
pub(crate) fn field_in(reason: &str) -> Option<String> {
    let start = reason.find('`')? + 1;
    let end = start + reason[start..].find('`')?;
    Some(reason[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_field_names_are_found() {
        assert_eq!(
            field_in("missing field `email` at line 1").as_deref(),
            Some("email")
        );
        assert_eq!(field_in("expected a string"), None);
    }

    #[test]
    fn store_failures_reveal_nothing() {
        let problem = ApiError::from(DomainError::Store(StoreError::Other(
            pazar_actors::error::Cause::message("password=hunter2"),
        )));
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("hunter2"));
    }
}
