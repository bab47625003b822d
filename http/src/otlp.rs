//! OpenTelemetry export of spans over OTLP/HTTP (JSON encoding), off unless
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! Each HTTP request is a server span, each internal API call a client span, each
//! event handled a consumer span (`pazar_actors::trace::Span`); they are queued
//! without blocking (a full queue drops spans, never requests) and posted in
//! batches to `{endpoint}/v1/traces` by [`ExportLoop`],
//! which the app runs under its task supervisor. The JSON form of OTLP needs no
//! protobuf or gRPC stack; any OpenTelemetry collector accepts it.

use crate::trace::{self, hex, Span, SpanKind};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex};

fn to_json(span: &Span) -> Value {
    let mut json = json!({
        "traceId": hex(&span.context.trace_id),
        "spanId": hex(&span.context.span_id),
        "name": span.name,
        "kind": match span.kind { SpanKind::Server => 2, SpanKind::Client => 3, SpanKind::Consumer => 5 },
        "startTimeUnixNano": span.start.as_nanos().to_string(),
        "endTimeUnixNano": span.end.as_nanos().to_string(),
        "attributes": [],
        // 2 = error, 0 = unset.
        "status": {"code": if span.failed { 2 } else { 0 }},
    });
    if let Some(status) = span.status {
        json["attributes"] = json!([
            {"key": "http.response.status_code", "value": {"intValue": status.to_string()}}
        ]);
    }
    if let Some(parent) = span.parent {
        json["parentSpanId"] = Value::from(hex(&parent));
    }
    json
}

/// Spans queued but not yet posted.
const QUEUE: usize = 8192;
/// The most spans in one post.
const BATCH: usize = 512;

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
    // A full queue drops the span: telemetry never waits.
    let installed = trace::install(Box::new(move |span| {
        let _ = sender.try_send(span);
    }));
    if !installed {
        return None;
    }
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
                    "spans": batch.iter().map(to_json).collect::<Vec<_>>(),
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
