//! OpenTelemetry export of spans over OTLP/HTTP (JSON encoding), off unless
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! Each HTTP request is a server span, each internal API call a client span
//! ([`Span`]); they are queued without blocking (a full queue drops spans, never
//! requests) and posted in batches to `{endpoint}/v1/traces` by [`ExportLoop`],
//! which the app runs under its task supervisor. The JSON form of OTLP needs no
//! protobuf or gRPC stack; any OpenTelemetry collector accepts it.

use crate::trace::TraceContext;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, Mutex};

/// What a span was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// A request this process answered.
    Server,
    /// A request this process made.
    Client,
}

/// One finished span.
#[derive(Clone, Debug)]
pub struct Span {
    /// Its trace and its own id.
    pub context: TraceContext,
    /// The span it was made for (the caller's), if any.
    pub parent: Option<[u8; 8]>,
    /// E.g. `POST /api/v1/orders`.
    pub name: String,
    /// Server or client.
    pub kind: SpanKind,
    /// Start, since the Unix epoch.
    pub start: Duration,
    /// End, since the Unix epoch.
    pub end: Duration,
    /// The HTTP status answered or received (0: none).
    pub status: u16,
}

impl Span {
    /// The time now, as spans record it.
    pub fn now() -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }

    fn to_json(&self) -> Value {
        let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
        let mut span = json!({
            "traceId": hex(&self.context.trace_id),
            "spanId": hex(&self.context.span_id),
            "name": self.name,
            "kind": match self.kind { SpanKind::Server => 2, SpanKind::Client => 3 },
            "startTimeUnixNano": self.start.as_nanos().to_string(),
            "endTimeUnixNano": self.end.as_nanos().to_string(),
            "attributes": [
                {"key": "http.response.status_code", "value": {"intValue": self.status.to_string()}}
            ],
            // 2 = error (a 5xx or no answer), 0 = unset.
            "status": {"code": if self.status >= 500 || self.status == 0 { 2 } else { 0 }},
        });
        if let Some(parent) = self.parent {
            span["parentSpanId"] = Value::from(hex(&parent));
        }
        span
    }
}

/// Spans queued but not yet posted.
const QUEUE: usize = 8192;
/// The most spans in one post.
const BATCH: usize = 512;

static EXPORTER: OnceLock<mpsc::Sender<Span>> = OnceLock::new();

/// Queues a finished span, if export is on; never waits.
pub fn record(span: Span) {
    if let Some(queue) = EXPORTER.get() {
        let _ = queue.try_send(span);
    }
}

/// Whether spans are exported (so callers can skip building them).
pub fn enabled() -> bool {
    EXPORTER.get().is_some()
}

/// The loop that posts queued spans; run it under a supervisor (a fresh run
/// picks up the same queue).
#[derive(Clone)]
pub struct ExportLoop {
    queue: Arc<Mutex<mpsc::Receiver<Span>>>,
    url: String,
    service: String,
    http: reqwest::Client,
}

/// Turns export on for this process: spans go to `{endpoint}/v1/traces` as
/// `service`. `None` when export was already on.
pub fn start(endpoint: &str, service: &str) -> Option<ExportLoop> {
    let (sender, receiver) = mpsc::channel(QUEUE);
    EXPORTER.set(sender).ok()?;
    Some(ExportLoop {
        queue: Arc::new(Mutex::new(receiver)),
        url: format!("{}/v1/traces", endpoint.trim_end_matches('/')),
        service: service.to_owned(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
    })
}

impl ExportLoop {
    /// Posts batches until the queue closes; a collector that is down loses the
    /// batch in hand (telemetry never holds up the shop) and is tried again with
    /// the next one.
    pub async fn run(self) {
        let mut queue = self.queue.lock().await;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            if queue.recv_many(&mut batch, BATCH).await == 0 {
                return;
            }
            let body = json!({"resourceSpans": [{
                "resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": self.service}}
                ]},
                "scopeSpans": [{
                    "scope": {"name": "pazar", "version": env!("CARGO_PKG_VERSION")},
                    "spans": batch.iter().map(Span::to_json).collect::<Vec<_>>(),
                }],
            }]});
            match self.http.post(&self.url).json(&body).send().await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    tracing::warn!(status = %response.status(), spans = batch.len(), "the OTLP collector refused spans")
                }
                Err(error) => {
                    tracing::warn!(%error, spans = batch.len(), "the OTLP collector is unreachable")
                }
            }
            batch.clear();
        }
    }
}
