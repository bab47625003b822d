//! Prometheus metrics at `/metrics`, through `prometheus-client` (the Prometheus
//! project's Rust client): requests by route and status, a latency histogram per
//! route, and the supervision tree's actor counts.
//!
//! Routes are recorded as the templates they matched (`/api/v1/products/{id}`),
//! and requests that matched no route are counted under `unmatched`, so the
//! number of series stays bounded whatever paths clients send.
//!
//! The HTTP layer keeps each answer's [`Series`] once it has seen it, so a request
//! looks nothing up here: it increments a counter (an atomic) and observes its
//! route's histogram (prometheus-client keeps that one under a lock of its own, held
//! for a few additions). A family's map is locked exclusively only when a series is
//! first made.

use poem::http::{Method, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// The ProductStock supervisor's figures, read at each scrape.
#[derive(Debug, Default)]
struct TreeFigures {
    alive: AtomicU64,
    restarts: AtomicU64,
    passivated: AtomicU64,
}

impl Collector for TreeFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let kind = [("kind", "product_stock")];
        let alive = ConstGauge::new(self.alive.load(Ordering::Relaxed) as i64);
        let mut metric = encoder.encode_descriptor(
            "pazar_actors_alive",
            "Entity actors alive",
            None,
            alive.metric_type(),
        )?;
        alive.encode(metric.encode_family(&kind)?)?;
        for (name, help, value) in [
            (
                "pazar_actor_restarts",
                "Entity actors restarted after a failure",
                &self.restarts,
            ),
            (
                "pazar_actor_passivations",
                "Entity actors stopped for being idle",
                &self.passivated,
            ),
        ] {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            let mut metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric.encode_family(&kind)?)?;
        }
        Ok(())
    }
}

/// Counters kept by the HTTP middleware.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    tree: Arc<TreeFigures>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "pazar_http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "pazar_http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        let tree = Arc::new(TreeFigures::default());
        registry.register_collector(Box::new(tree.clone()));
        Self {
            registry,
            requests,
            latency,
            tree,
        }
    }
}

impl Metrics {
    /// The series an answer of `method` on `route` with `status` is counted in,
    /// to keep and count into again without looking them up (the HTTP layer
    /// keeps one per route, method and status it has answered).
    pub fn series(&self, method: &Method, route: Option<&str>, status: StatusCode) -> Series {
        let route = route.unwrap_or("unmatched");
        Series {
            latency: self.latency.get_or_create_owned(&RouteLabels {
                route: route.to_owned(),
            }),
            requests: self.requests.get_or_create_owned(&RequestLabels {
                method: method_label(method).to_owned(),
                route: route.to_owned(),
                status: status.as_u16(),
            }),
        }
    }

    /// The OpenMetrics text exposition, with the tree's figures as given.
    pub fn render(
        &self,
        actors_alive: usize,
        restarts_total: u64,
        passivated_total: u64,
    ) -> String {
        self.tree
            .alive
            .store(actors_alive as u64, Ordering::Relaxed);
        self.tree.restarts.store(restarts_total, Ordering::Relaxed);
        self.tree
            .passivated
            .store(passivated_total, Ordering::Relaxed);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The series of one kind of answer (route, method, status).
#[derive(Clone, Debug)]
pub struct Series {
    latency: Histogram,
    requests: Counter,
}

impl Series {
    /// Counts one answer that took `elapsed`.
    pub fn record(&self, elapsed: Duration) {
        self.latency.observe(elapsed.as_secs_f64());
        self.requests.inc();
    }
}

/// A method as the metrics name it: a standard one by its name, any other
/// (a client may send any token as a method) as `other`, so that made-up
/// methods add no series.
pub fn method_label(method: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    STANDARD
        .iter()
        .find(|standard| *standard == method)
        .map_or("other", |standard| standard.as_str())
}

/// `/api/v1/products/0190…/stock-adjustments` → `/api/v1/products/{id}/stock-adjustments`.
/// A route's template as the OpenAPI document writes it: poem's `:id` and `*name`
/// become `{id}` and `{name}`.
pub fn route_label(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains([':', '*']) {
        return Cow::Borrowed(pattern);
    }
    Cow::Owned(
        pattern
            .split('/')
            .map(|segment| match segment.strip_prefix([':', '*']) {
                Some(name) => format!("{{{name}}}"),
                None => segment.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_patterns_are_written_as_the_openapi_document_writes_them() {
        assert_eq!(
            route_label("/api/v1/products/:id/stock-adjustments"),
            "/api/v1/products/{id}/stock-adjustments"
        );
        assert_eq!(route_label("/assets/*name"), "/assets/{name}");
        assert!(matches!(route_label("/health"), Cow::Borrowed("/health")));
    }

    #[test]
    fn exposition_counts_requests_and_buckets() {
        let metrics = Metrics::default();
        let health = Some("/health");
        metrics
            .series(&Method::GET, health, StatusCode::OK)
            .record(Duration::from_millis(2));
        metrics
            .series(&Method::GET, health, StatusCode::OK)
            .record(Duration::from_millis(200));
        metrics
            .series(&Method::GET, None, StatusCode::NOT_FOUND)
            .record(Duration::from_millis(1));
        let made_up = Method::from_bytes(b"BREW").unwrap();
        metrics
            .series(&made_up, None, StatusCode::NOT_FOUND)
            .record(Duration::from_millis(1));
        let text = metrics.render(3, 1, 2);
        assert!(text.contains(
            "pazar_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2"
        ));
        assert!(text.contains("method=\"GET\",route=\"unmatched\",status=\"404\"} 1"));
        assert!(text.contains("method=\"other\",route=\"unmatched\",status=\"404\"} 1"));
        assert!(!text.contains("BREW"), "made-up methods add no series");
        assert!(text.contains(
            "pazar_http_request_duration_seconds_bucket{le=\"0.005\",route=\"/health\"} 1"
        ));
        assert!(text.contains(
            "pazar_http_request_duration_seconds_bucket{le=\"0.25\",route=\"/health\"} 2"
        ));
        assert!(text.contains("pazar_actors_alive{kind=\"product_stock\"} 3"));
        assert!(text.contains("pazar_actor_restarts_total{kind=\"product_stock\"} 1"));
        assert!(text.contains("pazar_actor_passivations_total{kind=\"product_stock\"} 2"));
        assert!(
            text.ends_with("# EOF\n"),
            "a complete OpenMetrics exposition"
        );
    }
}
