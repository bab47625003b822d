//! Prometheus metrics at `/metrics`: requests by route and status, a latency
//! histogram per route, and the supervision tree's actor counts.
//!
//! Routes are recorded as templates (`/api/v1/products/{id}`): every path segment
//! that parses as a UUID is replaced by `{id}`, and requests that matched no route
//! are counted under `unmatched`, so the number of series stays bounded.

use poem::http::StatusCode;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters kept by the HTTP middleware.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<HashMap<(String, String, u16), u64>>,
    latency: Mutex<HashMap<String, Histogram>>,
}

impl Metrics {
    /// Records one finished request.
    pub fn record(&self, method: &str, path: &str, status: StatusCode, elapsed: Duration) {
        let route = if status == StatusCode::NOT_FOUND && !path.starts_with("/api/") {
            "unmatched".to_owned()
        } else {
            route_template(path)
        };
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((method.to_owned(), route.clone(), status.as_u16()))
            .or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let histogram = latency.entry(route).or_default();
        for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The Prometheus text exposition, with the tree's gauges appended.
    pub fn render(
        &self,
        actors_alive: usize,
        restarts_total: u64,
        passivated_total: u64,
    ) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP pazar_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE pazar_http_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<_> = requests.keys().collect();
        keys.sort();
        for key in keys {
            let (method, route, status) = key;
            let _ = writeln!(
                out,
                "pazar_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                requests[key]
            );
        }
        drop(requests);
        out.push_str("# HELP pazar_http_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE pazar_http_request_duration_seconds histogram\n");
        let latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let mut routes: Vec<_> = latency.keys().collect();
        routes.sort();
        for route in routes {
            let histogram = &latency[route];
            for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
                let _ = writeln!(
                    out,
                    "pazar_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "pazar_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "pazar_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "pazar_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
        drop(latency);
        let _ = writeln!(
            out,
            "# HELP pazar_actors_alive Entity actors alive.\n# TYPE pazar_actors_alive gauge\npazar_actors_alive{{kind=\"product_stock\"}} {actors_alive}"
        );
        let _ = writeln!(
            out,
            "# HELP pazar_actor_restarts_total Entity actors restarted after a failure.\n# TYPE pazar_actor_restarts_total counter\npazar_actor_restarts_total{{kind=\"product_stock\"}} {restarts_total}"
        );
        let _ = writeln!(
            out,
            "# HELP pazar_actor_passivations_total Entity actors stopped for being idle.\n# TYPE pazar_actor_passivations_total counter\npazar_actor_passivations_total{{kind=\"product_stock\"}} {passivated_total}"
        );
        out
    }
}

/// `/api/v1/products/0190…/stock-adjustments` → `/api/v1/products/{id}/stock-adjustments`.
fn route_template(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.len() == 36 && uuid::Uuid::parse_str(segment).is_ok() {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_placeholders() {
        assert_eq!(
            route_template(
                "/api/v1/products/01a21bea-85f2-7788-9ff5-c84b9c8bb938/stock-adjustments"
            ),
            "/api/v1/products/{id}/stock-adjustments"
        );
    }

    #[test]
    fn exposition_counts_requests_and_buckets() {
        let metrics = Metrics::default();
        metrics.record("GET", "/health", StatusCode::OK, Duration::from_millis(2));
        metrics.record("GET", "/health", StatusCode::OK, Duration::from_millis(200));
        metrics.record(
            "GET",
            "/nope",
            StatusCode::NOT_FOUND,
            Duration::from_millis(1),
        );
        let text = metrics.render(3, 1, 2);
        assert!(text.contains(
            "pazar_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2"
        ));
        assert!(text.contains("route=\"unmatched\",status=\"404\"} 1"));
        assert!(text.contains(
            "pazar_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "pazar_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.25\"} 2"
        ));
        assert!(text.contains("pazar_actors_alive{kind=\"product_stock\"} 3"));
    }
}
