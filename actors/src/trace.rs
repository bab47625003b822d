//! W3C trace context (`traceparent`): one request followed across processes.
//!
//! The HTTP layer reads a request's `traceparent` (or starts a trace), keeps it
//! for the request's task ([`scope`]) and names its trace id in the request's log
//! span; a message that crosses into an actor carries it ([`current`]); the
//! internal API client sends a child span of it on; the store writer stamps it on
//! the events a traced write causes, and their delivery runs in it, in whichever
//! process. Finished spans go to [`record`], which exports them when an exporter
//! is installed (`pazar_http::otlp`, over OTLP); otherwise they cost nothing.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A trace id and the id of the span that is current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// 16 bytes, never all zero.
    pub trace_id: [u8; 16],
    /// 8 bytes, never all zero.
    pub span_id: [u8; 8],
    /// `01` when sampled.
    pub flags: u8,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// A new trace (sampled).
    pub fn start() -> Self {
        // From the thread's generator (seeded once from the system), not a system
        // call per id; W3C forbids all-zero ids.
        let mut trace_id: [u8; 16] = rand::random();
        let mut span_id: [u8; 8] = rand::random();
        trace_id[15] |= u8::from(trace_id == [0; 16]);
        span_id[7] |= u8::from(span_id == [0; 8]);
        Self {
            trace_id,
            span_id,
            flags: 1,
        }
    }

    /// A child span of the same trace (what a process does for a caller).
    pub fn child(&self) -> Self {
        let mut child = Self::start();
        child.trace_id = self.trace_id;
        child.flags = self.flags;
        child
    }

    /// Reads a `traceparent` header (version 00); `None` when malformed.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        hex_into(trace, &mut trace_id)?;
        hex_into(span, &mut span_id)?;
        let mut flag = [0u8; 1];
        hex_into(flags, &mut flag)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags: flag[0],
        })
    }

    /// The trace id in hex, as log lines and trace backends show it; written
    /// only when a log line is (a `Display`, not a `String` made per request).
    pub fn trace_id_hex(&self) -> Hex<'_> {
        Hex(&self.trace_id)
    }

    /// The `traceparent` header value.
    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }
}

/// Bytes shown as lower-case hex.
pub struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// Lower-case hex, as `traceparent` and OTLP's JSON write ids.
pub fn hex(bytes: &[u8]) -> String {
    Hex(bytes).to_string()
}

fn hex_into(text: &str, out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some(())
}

/// The trace current on this task, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// Runs `future` with `context` current.
pub async fn scope<F: Future>(context: TraceContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// What a span was (OTLP's kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// A request this process answered.
    Server,
    /// A request this process made.
    Client,
    /// An event this process handled.
    Consumer,
}

/// One finished span.
#[derive(Clone, Debug)]
pub struct Span {
    /// Its trace and its own id.
    pub context: TraceContext,
    /// The span it was made for (the caller's, or the event writer's), if any.
    pub parent: Option<[u8; 8]>,
    /// E.g. `POST /api/v1/orders`.
    pub name: String,
    /// Server, client or consumer.
    pub kind: SpanKind,
    /// Start, since the Unix epoch.
    pub start: Duration,
    /// End, since the Unix epoch.
    pub end: Duration,
    /// Whether it failed (a 5xx, no answer, a handler's error).
    pub failed: bool,
    /// The HTTP status answered or received, if any.
    pub status: Option<u16>,
}

impl Span {
    /// The time now, as spans record it.
    pub fn now() -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// Where finished spans go; set once by the exporter.
static SINK: OnceLock<Box<dyn Fn(Span) + Send + Sync>> = OnceLock::new();

/// Installs the exporter's sink (it must never block); `false` if one was
/// installed already.
pub fn install(sink: Box<dyn Fn(Span) + Send + Sync>) -> bool {
    SINK.set(sink).is_ok()
}

/// Whether finished spans are exported (so callers can skip building them).
pub fn exporting() -> bool {
    SINK.get().is_some()
}

/// Hands a finished span to the exporter, if one is installed.
pub fn record(span: Span) {
    if let Some(sink) = SINK.get() {
        sink(span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_refuses_garbage() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(header).unwrap();
        assert_eq!(context.header(), header);
        assert_eq!(
            context.trace_id_hex().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let child = context.child();
        assert_eq!(child.trace_id, context.trace_id);
        assert_ne!(child.span_id, context.span_id);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_scope_makes_its_trace_current() {
        assert!(current().is_none());
        let context = TraceContext::start();
        let seen = scope(context, async { current() }).await;
        assert_eq!(seen, Some(context));
    }
}
