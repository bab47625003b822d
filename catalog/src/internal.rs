//! The catalog's internal API: stock holds for an orders service in another
//! process (roles split across processes). Both ends are here, so the wire is
//! defined once:
//!
//! | request | what it does |
//! | --- | --- |
//! | `PUT /internal/v1/stock/{product}/holds/{order}` `{quantity, expires_at}` | hold units for an order (a repeat is a no-op) |
//! | `DELETE /internal/v1/stock/{product}/holds/{order}` | drop the hold (a repeat is a no-op) |
//! | `POST /internal/v1/stock/{product}/holds/{order}/sale` | turn the hold into a sale (a repeat: 404 `reservation`) |
//! | `PUT /internal/v1/stock/{product}/returns/{order}` `{quantity}` | put an order's sold units back (its refund; a repeat is a no-op) |
//!
//! Every request carries `Authorization: Bearer <PAZAR_INTERNAL_TOKEN>` (401
//! otherwise, and nothing runs). Answers are the product's [`StockLevels`], or a
//! problem document that [`RemoteStock`] turns back into the same [`DomainError`]
//! the ProductStock actor gave, so the order flow cannot tell the two apart.
//! Holds are idempotent by order id, so a retry after a timeout cannot hold twice.
//! In one process none of this is used: the order flow calls the actors.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::order::StockGateway;
use pazar_actors::{DomainError, OrderId, ProductId, StockLevels};
use pazar_http::error::ApiError;
use pazar_http::internal::{require_token, InternalToken};
use pazar_http::trace;
use poem::http::StatusCode;
use poem::web::{Data, Json, Path};
use poem::{Endpoint, EndpointExt, Route};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Body of a hold.
#[derive(Serialize, Deserialize)]
struct HoldBody {
    quantity: i64,
    expires_at: DateTime<Utc>,
}

/// Body of a return.
#[derive(Serialize, Deserialize)]
struct ReturnBody {
    quantity: i64,
}

type Stock = Arc<dyn StockGateway>;

fn answer(result: Result<StockLevels, DomainError>) -> poem::Result<Json<StockLevels>> {
    result.map(Json).map_err(|e| ApiError::from(e).into())
}

#[poem::handler]
async fn hold(
    Path((product, order)): Path<(Uuid, Uuid)>,
    Data(stock): Data<&Stock>,
    Json(body): Json<HoldBody>,
) -> poem::Result<Json<StockLevels>> {
    answer(
        stock
            .reserve(
                ProductId(product),
                OrderId(order),
                body.quantity,
                body.expires_at,
            )
            .await,
    )
}

#[poem::handler]
async fn release(
    Path((product, order)): Path<(Uuid, Uuid)>,
    Data(stock): Data<&Stock>,
) -> poem::Result<Json<StockLevels>> {
    answer(stock.release(ProductId(product), OrderId(order)).await)
}

#[poem::handler]
async fn sale(
    Path((product, order)): Path<(Uuid, Uuid)>,
    Data(stock): Data<&Stock>,
) -> poem::Result<Json<StockLevels>> {
    answer(stock.commit(ProductId(product), OrderId(order)).await)
}

#[poem::handler]
async fn return_sold(
    Path((product, order)): Path<(Uuid, Uuid)>,
    Data(stock): Data<&Stock>,
    Json(body): Json<ReturnBody>,
) -> poem::Result<Json<StockLevels>> {
    answer(
        stock
            .return_sold(ProductId(product), OrderId(order), body.quantity)
            .await,
    )
}

/// The internal routes over this process's ProductStock actors, behind the token.
pub fn routes(stock: Stock, token: InternalToken) -> impl Endpoint {
    Route::new()
        .at(
            "/stock/:product/holds/:order",
            poem::put(hold).delete(release),
        )
        .at("/stock/:product/holds/:order/sale", poem::post(sale))
        .at("/stock/:product/returns/:order", poem::put(return_sold))
        .data(stock)
        .around(move |endpoint, request| require_token(endpoint, request, token.clone()))
}

/// The catalog's stock as an orders service in another process reaches it: the
/// order flow's [`StockGateway`] over the internal API.
///
/// It may know several catalog processes (the active one and its standbys): a
/// standby does not listen until it holds the role, so a request that cannot
/// connect to one tries the next, and the one that answered is tried first next
/// time.
pub struct RemoteStock {
    http: reqwest::Client,
    bases: Vec<String>,
    preferred: std::sync::atomic::AtomicUsize,
    token: InternalToken,
}

/// Attempts of an idempotent request (a hold, a release, a sale, a return) before its
/// error is the caller's.
const ATTEMPTS: u32 = 3;

impl RemoteStock {
    /// A client of the catalog at `bases`, comma-separated (e.g.
    /// `http://catalog:8080`, or an active process and its standby); each attempt
    /// gives up after `timeout`.
    pub fn new(bases: &str, token: InternalToken, timeout: Duration) -> Result<Self, DomainError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| DomainError::Unavailable(format!("internal HTTP client: {e}")))?;
        let bases: Vec<String> = bases
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|b| format!("{}/internal/v1", b.trim_end_matches('/')))
            .collect();
        if bases.is_empty() {
            return Err(DomainError::invalid(
                "PAZAR_CATALOG_URL",
                "names no address of the catalog",
            ));
        }
        Ok(Self {
            http,
            bases,
            preferred: Default::default(),
            token,
        })
    }

    /// Sends to the preferred catalog process, then to the others while they
    /// cannot be connected to. `route` is the path's template: its span's name.
    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        route: &'static str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        // A client span of the caller's trace: the catalog's server span is its child.
        let caller = trace::current();
        let span = caller.map(|caller| caller.child());
        let begun = trace::Span::now();
        let answer = self.send_to_any(method, path, body, span).await;
        if let (Some(caller), Some(span), true) = (caller, span, trace::exporting()) {
            let status = answer.as_ref().ok().map(|r| r.status().as_u16());
            trace::record(trace::Span {
                context: span,
                parent: Some(caller.span_id),
                name: format!("{method} /internal/v1{route}"),
                kind: trace::SpanKind::Client,
                start: begun,
                end: trace::Span::now(),
                failed: status.is_none_or(|s| s >= 500),
                status,
            });
        }
        answer
    }

    async fn send_to_any(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        span: Option<trace::TraceContext>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        use std::sync::atomic::Ordering;
        let first = self.preferred.load(Ordering::Relaxed);
        let mut outcome = None;
        for offset in 0..self.bases.len() {
            let index = (first + offset) % self.bases.len();
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.bases[index]))
                .header(reqwest::header::AUTHORIZATION, self.token.bearer());
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(span) = span {
                request = request.header("traceparent", span.header());
            }
            match request.send().await {
                Err(error) if error.is_connect() => outcome = Some(Err(error)),
                other => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return other;
                }
            }
        }
        outcome.expect("at least one catalog address")
    }

    /// Sends one request; `idempotent` ones are retried after a transport error
    /// or a 502/503/504, with a short backoff.
    async fn send(
        &self,
        method: Method,
        path: String,
        route: &'static str,
        body: Option<Value>,
        idempotent: bool,
    ) -> Result<StockLevels, DomainError> {
        let attempts = if idempotent { ATTEMPTS } else { 1 };
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let response = match self.send_once(&method, &path, route, body.as_ref()).await {
                Ok(response) => response,
                Err(error) => {
                    last = format!("the catalog did not answer: {error}");
                    continue;
                }
            };
            let status = response.status().as_u16();
            let value: Value = response
                .json()
                .await
                .map_err(|e| DomainError::Unavailable(format!("the catalog's answer: {e}")))?;
            if status == 200 {
                return serde_json::from_value(value)
                    .map_err(|e| DomainError::Unavailable(format!("the catalog's answer: {e}")));
            }
            let error = domain_error(StatusCode::from_u16(status).ok(), &value);
            match error {
                DomainError::Unavailable(detail) if matches!(status, 502..=504) => last = detail,
                other => return Err(other),
            }
        }
        Err(DomainError::Unavailable(last))
    }
}

/// A conflict's reason is a `&'static str` in [`DomainError`]: the ProductStock
/// actor's reasons are its `CONFLICTS`, anything else reads as `conflict`.
fn static_reason(reason: &str) -> &'static str {
    crate::stock::CONFLICTS
        .into_iter()
        .find(|known| *known == reason)
        .unwrap_or("conflict")
}

/// The catalog's problem document back into the error its actor gave.
fn domain_error(status: Option<StatusCode>, problem: &Value) -> DomainError {
    let text = |key: &str| problem[key].as_str().unwrap_or_default().to_owned();
    let kind = text("type");
    let kind = kind.strip_prefix("urn:pazar:problem:").unwrap_or(&kind);
    match kind {
        "not-found" if text("detail").starts_with("reservation") => DomainError::NotFound {
            what: "reservation",
        },
        "not-found" => DomainError::NotFound { what: "product" },
        "conflict" => DomainError::conflict(static_reason(&text("reason")), text("detail")),
        "insufficient-stock" => DomainError::InsufficientStock {
            product_id: text("product_id")
                .parse()
                .map(ProductId)
                .unwrap_or(ProductId(Uuid::nil())),
            requested: problem["requested"].as_i64().unwrap_or_default(),
            available: problem["available"].as_i64().unwrap_or_default(),
        },
        "validation" => {
            let field = text("field");
            let detail = text("detail");
            let message = detail
                .strip_prefix(&format!("{field} "))
                .unwrap_or(&detail)
                .to_owned();
            DomainError::Invalid { field, message }
        }
        _ => DomainError::Unavailable(format!(
            "the catalog answered {}: {}",
            status.map_or(0, |s| s.as_u16()),
            text("detail")
        )),
    }
}

#[async_trait]
impl StockGateway for RemoteStock {
    async fn reserve(
        &self,
        product: ProductId,
        order: OrderId,
        quantity: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<StockLevels, DomainError> {
        let body = serde_json::to_value(HoldBody {
            quantity,
            expires_at,
        })
        .ok();
        self.send(
            Method::PUT,
            format!("/stock/{product}/holds/{order}"),
            "/stock/{product}/holds/{order}",
            body,
            true,
        )
        .await
    }

    async fn release(
        &self,
        product: ProductId,
        order: OrderId,
    ) -> Result<StockLevels, DomainError> {
        self.send(
            Method::DELETE,
            format!("/stock/{product}/holds/{order}"),
            "/stock/{product}/holds/{order}",
            None,
            true,
        )
        .await
    }

    async fn commit(&self, product: ProductId, order: OrderId) -> Result<StockLevels, DomainError> {
        // A repeat after a lost answer finds no hold (404 `reservation`), which the
        // order flow already reads as "sold by an earlier attempt".
        self.send(
            Method::POST,
            format!("/stock/{product}/holds/{order}/sale"),
            "/stock/{product}/holds/{order}/sale",
            None,
            true,
        )
        .await
    }

    async fn return_sold(
        &self,
        product: ProductId,
        order: OrderId,
        quantity: i64,
    ) -> Result<StockLevels, DomainError> {
        // Once per order on the catalog's side, so a retry cannot return twice.
        let body = serde_json::to_value(ReturnBody { quantity }).ok();
        self.send(
            Method::PUT,
            format!("/stock/{product}/returns/{order}"),
            "/stock/{product}/returns/{order}",
            body,
            true,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the actor says comes back as what the actor said.
    #[test]
    fn problems_read_back_as_the_actors_errors() {
        let product = ProductId(Uuid::now_v7());
        let cases = [
            DomainError::NotFound { what: "product" },
            DomainError::NotFound {
                what: "reservation",
            },
            DomainError::conflict(crate::stock::RESERVATION_EXISTS, "order x holds 2 units"),
            DomainError::conflict(crate::stock::BELOW_RESERVED, "3 are held"),
            DomainError::conflict(crate::stock::OPEN_RESERVATIONS, "2 orders hold units"),
            DomainError::InsufficientStock {
                product_id: product,
                requested: 3,
                available: 1,
            },
            DomainError::invalid("quantity", "must be at least 1"),
        ];
        for error in cases {
            let expected = format!("{error:?}");
            let api = ApiError::from(error);
            let value = serde_json::to_value(&api).unwrap();
            let back = domain_error(StatusCode::from_u16(api.status).ok(), &value);
            assert_eq!(format!("{back:?}"), expected);
        }
    }
}
