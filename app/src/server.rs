//! Assembling the routes and middleware, and running the server.

use crate::api::{admin::AdminApi, events::EventsApi, health::HealthApi};
use crate::roles::{owner_of, Roles, Service};
use crate::AppState;
use pazar_http::error::{into_problem_response, ApiError};
use pazar_http::internal::InternalToken;
use pazar_http::openapi::Maybe;
use pazar_http::trace::{self, TraceContext};
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Endpoint, EndpointExt, IntoResponse, PathPattern, Request, Response, Route, Server};
use poem_openapi::OpenApiService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// HTTP settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Largest accepted request body in bytes (413 above).
    pub max_body_bytes: usize,
    /// A connection silent this long is closed: an idle keep-alive, or one that
    /// never completes its request head (a live-cart WebSocket is pinged every
    /// half timeout, so it stays open).
    pub idle_timeout: Duration,
    /// The secret Stripe signs webhooks with; without it the webhook endpoint is 404.
    pub stripe_webhook_secret: Option<pazar_payments::webhooks::WebhookSecret>,
    /// The internal API's shared secret; without it `/internal/v1` is 404.
    pub internal_token: Option<InternalToken>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            idle_timeout: Duration::from_secs(15),
            stripe_webhook_secret: None,
            internal_token: None,
        }
    }
}

/// The whole application as one endpoint: API, OpenAPI document, Swagger UI,
/// and the storefront at `/`.
pub fn app(state: Arc<AppState>, config: HttpConfig) -> impl Endpoint {
    let shop = &state.shop;
    let apis = (
        HealthApi {
            state: state.clone(),
        },
        Maybe(
            shop.roles
                .runs(Service::Users)
                .then(|| pazar_users::routes::AuthApi {
                    accounts: shop.accounts.clone(),
                    auth: state.auth.clone(),
                    trusted_proxies: state.trusted_proxies.clone(),
                }),
        ),
        Maybe(
            shop.catalog
                .as_ref()
                .map(|c| pazar_catalog::routes::ProductApi {
                    catalog: c.catalog.clone(),
                    inventory: c.inventory.clone(),
                }),
        ),
        Maybe(
            shop.orders
                .as_ref()
                .map(|orders| pazar_orders::cart_routes::CartApi {
                    orders: orders.clone(),
                }),
        ),
        Maybe(
            shop.orders
                .as_ref()
                .map(|orders| pazar_orders::routes::OrderApi {
                    orders: orders.clone(),
                }),
        ),
        Maybe(
            shop.payments
                .as_ref()
                .map(|p| pazar_payments::routes::PaymentApi {
                    payments: p.clone(),
                }),
        ),
        Maybe(
            shop.payments
                .as_ref()
                .map(|p| pazar_payments::routes::RefundApi {
                    payments: p.clone(),
                }),
        ),
        AdminApi {
            state: state.clone(),
        },
        Maybe(
            shop.catalog
                .as_ref()
                .map(|c| pazar_catalog::routes::StockHoldsApi {
                    inventory: c.inventory.clone(),
                }),
        ),
        Maybe(
            shop.notifications
                .as_ref()
                .map(|n| pazar_notifications::routes::EmailsApi {
                    notifications: n.clone(),
                }),
        ),
        EventsApi,
    );
    let service = OpenApiService::new(
        pazar_http::openapi::DocumentOf::of(&apis),
        "Pazar",
        env!("CARGO_PKG_VERSION"),
    )
    .description("An e-commerce backend built as a supervised actor system.");
    let generated = service.spec();
    let allowed = Arc::new(pazar_http::openapi::AllowedMethods::from_document(
        &generated,
        &[
            ("/openapi.json", "get"),
            ("/metrics", "get"),
            ("/api/v1/cart/live", "get"),
            ("/api/v1/webhooks/stripe", "post"),
        ],
    ));
    let (spec, docs) = pazar_http::openapi::endpoints(generated, service.swagger_ui_html());
    let js_url = shop.payments.as_ref().and_then(|p| p.js_url());
    let policy = pazar_http::frontend::PagePolicy::new(js_url.as_deref());
    let mut routes = Route::new()
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .at("/metrics", poem::get(metrics).data(state.clone()))
        .at("/assets/*name", poem::get(pazar_http::frontend::asset));
    for (path, operation) in pazar_http::openapi::operations(apis) {
        routes = routes.at(path, operation);
    }
    for page in pazar_http::frontend::PAGES {
        routes = routes.at(
            *page,
            poem::get(pazar_http::frontend::page).data(policy.clone()),
        );
    }
    if let Some(orders) = &shop.orders {
        routes = routes.at(
            "/api/v1/cart/live",
            poem::get(pazar_orders::socket::live_cart)
                .data(pazar_orders::socket::PingEvery(config.idle_timeout / 2))
                .data(orders.clone()),
        );
    }
    if let Some(payments) = &shop.payments {
        routes = routes.at(
            "/api/v1/webhooks/stripe",
            poem::post(pazar_payments::webhooks::stripe_webhook)
                .data(config.stripe_webhook_secret.clone())
                .data(payments.clone()),
        );
    }
    if let (Some(catalog), Some(token)) = (&shop.catalog, &config.internal_token) {
        let stock = Arc::new(pazar_catalog::StockActors(
            catalog.inventory.actors().clone(),
        ));
        routes = routes.nest(
            "/internal/v1",
            pazar_catalog::internal::routes(stock, token.clone()),
        );
    }
    let front = Arc::new(Front {
        state: state.clone(),
        allowed,
        roles: shop.roles,
        max_body_bytes: config.max_body_bytes,
        answers: Default::default(),
    });
    // One layer around the routes (each layer is a future moved into its box on
    // every request), and one piece of request data: the bearer tokens' checker.
    routes
        .data(state.auth.clone())
        .around(move |endpoint, request| front.clone().call(endpoint, request))
}

/// What every request goes through, in this order: its trace and timing, the
/// `Allow` header of a 405, every error as problem+json, the body limit and
/// the role check.
struct Front {
    state: Arc<AppState>,
    allowed: Arc<pazar_http::openapi::AllowedMethods>,
    roles: Roles,
    max_body_bytes: usize,
    /// Each kind of answer seen so far, by route pattern (`None`: no route
    /// matched), method and status.
    answers: std::sync::RwLock<std::collections::HashMap<AnswerKind, Arc<Answer>>>,
}

/// An answer's route pattern (`None`: no route matched), method label and status.
type AnswerKind = (Option<Arc<str>>, &'static str, u16);

/// How one kind of answer is named in spans and counted in metrics.
struct Answer {
    /// The route's template; `None` when no route matched.
    route: Option<Arc<str>>,
    series: pazar_http::metrics::Series,
}

impl Front {
    /// Times the request and counts it by route and status. It runs in its trace
    /// (the caller's `traceparent`, or a new one): its log lines name the trace
    /// id, and the internal calls it makes carry it on.
    async fn call<E: Endpoint>(
        self: Arc<Self>,
        endpoint: Arc<E>,
        request: Request,
    ) -> poem::Result<Response> {
        use tracing::Instrument;
        let started = std::time::Instant::now();
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let caller = request
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse);
        let context = caller
            .map(|caller| caller.child())
            .unwrap_or_else(TraceContext::start);
        let span = tracing::info_span!("request", trace_id = %context.trace_id_hex(), %method, path = %uri.path());
        let begun = trace::Span::now();
        let response =
            trace::scope(context, self.answer(&endpoint, request).instrument(span)).await;
        let answer = self.answer_of(response.data::<PathPattern>(), &method, response.status());
        if trace::exporting() {
            trace::record(trace::Span {
                context,
                parent: caller.map(|caller| caller.span_id),
                name: format!(
                    "{method} {}",
                    answer.route.as_deref().unwrap_or("unmatched")
                ),
                kind: trace::SpanKind::Server,
                start: begun,
                end: trace::Span::now(),
                failed: response.status().is_server_error(),
                status: Some(response.status().as_u16()),
            });
        }
        answer.series.record(started.elapsed());
        Ok(response)
    }

    /// How an answer is named and counted, looked up once per kind of answer.
    /// Its route is the template of the route poem matched, as the OpenAPI
    /// document writes it (`/api/v1/products/{id}`), so the metrics' series
    /// stay bounded whatever paths and methods clients send.
    fn answer_of(
        &self,
        pattern: Option<&PathPattern>,
        method: &poem::http::Method,
        status: StatusCode,
    ) -> Arc<Answer> {
        // An empty pattern is a nest's that matched nothing inside.
        let pattern = pattern.map(|p| p.0.clone()).filter(|p| !p.is_empty());
        let key = (
            pattern,
            pazar_http::metrics::method_label(method),
            status.as_u16(),
        );
        let known = self.answers.read().unwrap_or_else(|e| e.into_inner());
        if let Some(answer) = known.get(&key) {
            return answer.clone();
        }
        drop(known);
        // The first answer of its kind: routes, methods and statuses are few.
        let route: Option<Arc<str>> =
            key.0
                .as_deref()
                .map(|pattern| match self.allowed.template_of(pattern) {
                    Some(template) => template.into(),
                    None => pazar_http::metrics::route_label(pattern).into(),
                });
        let answer = Arc::new(Answer {
            series: self.state.metrics.series(method, route.as_deref(), status),
            route,
        });
        self.answers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, answer.clone());
        answer
    }

    /// The response, errors included; a 405 says which methods the path does
    /// answer (`Allow`, RFC 9110 §15.5.6).
    async fn answer<E: Endpoint>(&self, endpoint: &E, request: Request) -> Response {
        // A `Uri` clone shares its bytes: no copy of the path per request.
        let uri = request.uri().clone();
        let mut response = match self.guard(endpoint, request).await {
            Ok(response) => response,
            Err(error) => {
                let pattern = error.data::<PathPattern>().cloned();
                let mut response = into_problem_response(error);
                if let Some(pattern) = pattern {
                    response.set_data(pattern);
                }
                response
            }
        };
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            if let Some(value) = self
                .allowed
                .for_path(uri.path())
                .and_then(|methods| poem::http::HeaderValue::from_str(&methods).ok())
            {
                response
                    .headers_mut()
                    .insert(poem::http::header::ALLOW, value);
            }
        }
        response
    }

    async fn guard<E: Endpoint>(
        &self,
        endpoint: &E,
        mut request: Request,
    ) -> poem::Result<Response> {
        if let Some(response) = limit_body(&mut request, self.max_body_bytes).await? {
            return Ok(response);
        }
        let path = request.uri().path();
        if let Some(role) = owner_of(path).filter(|role| !self.roles.runs(*role)) {
            return Err(elsewhere(path, role, self.roles).into());
        }
        Ok(endpoint.call(request).await?.into_response())
    }
}

/// A path of a role this process does not run: 404 problem+json naming the role,
/// so a misrouted request says where it should have gone.
fn elsewhere(path: &str, role: Service, roles: Roles) -> ApiError {
    let mut problem = ApiError::new(
        StatusCode::NOT_FOUND,
        "role-not-here",
        "Not served by this process",
        format!(
            "{path} belongs to the {role} role, which this process does not run (it runs \
             {roles}); send it through the gateway"
        ),
    );
    problem
        .extra
        .insert("role".into(), serde_json::Value::from(role.as_str()));
    problem
}

/// `GET /metrics`: the OpenMetrics text format Prometheus scrapes.
#[poem::handler]
async fn metrics(state: poem::web::Data<&Arc<AppState>>) -> Response {
    let (alive, restarts, passivated) = match &state.shop.catalog {
        Some(catalog) => {
            let tree = catalog.inventory.actors().snapshot(0).await;
            (tree.alive, tree.restarts_total, tree.passivated_total)
        }
        None => (0, 0, 0),
    };
    let body = state.metrics.render(alive, restarts, passivated);
    Response::builder()
        .content_type(pazar_http::metrics::CONTENT_TYPE)
        .body(body)
}

/// Oversized bodies up to this size are read and discarded before the 413.
const DRAIN_AT_MOST: u64 = 16 * 1024 * 1024;

/// Refuses bodies over `limit` bytes with 413, whether or not they declare a
/// length: the 413 to answer, if any (a body without a declared length is read
/// here, up to the limit).
async fn limit_body(request: &mut Request, limit: usize) -> poem::Result<Option<Response>> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the request body exceeds {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| *length > limit as u64) {
        let mut response = too_large().into_response();
        if length <= DRAIN_AT_MOST {
            // Read and discard the body, so that a client still sending it receives
            // the 413 instead of a broken pipe, and the connection stays usable.
            let mut body = request.take_body().into_async_read();
            let _ = tokio::io::copy(&mut body, &mut tokio::io::sink()).await;
        } else {
            // Too much to read: the unread body stays on the wire, so this
            // connection cannot carry another request. Say so.
            response.headers_mut().insert(
                poem::http::header::CONNECTION,
                poem::http::HeaderValue::from_static("close"),
            );
        }
        return Ok(Some(response));
    }
    if declared.is_none() && request.method() != poem::http::Method::GET {
        let body = request.take_body();
        let bytes = body
            .into_bytes_limit(limit)
            .await
            .map_err(|error| match error {
                poem::error::ReadBodyError::PayloadTooLarge => too_large(),
                other => ApiError::malformed(format!("could not read the body: {other}")),
            })?;
        request.set_body(bytes);
    }
    Ok(None)
}

/// Binds `bind`, announces the bound address through `on_bound`, and serves until
/// `shutdown` resolves; in-flight requests get up to 10 s to finish.
pub async fn serve(
    bind: &str,
    state: Arc<AppState>,
    config: HttpConfig,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let acceptor = pazar_http::connection::SilenceTimeout::new(
        TcpListener::bind(bind.to_owned()).into_acceptor().await?,
        config.idle_timeout,
    );
    let local = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
        .ok_or_else(|| std::io::Error::other("the listener has no socket address"))?;
    on_bound(local);
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app(state, config), shutdown, Some(Duration::from_secs(10)))
        .await
}
