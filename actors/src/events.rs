//! Domain events, the transactional outbox, and in-process delivery.
//!
//! Every state change other parts care about writes an [`Event`] to the outbox in
//! the *same transaction* as the change. The store numbers outbox rows in commit
//! order (`seq`), so a subscriber that reads rows in `seq` order and remembers the
//! last one it finished (its cursor, stored too) sees every event at least once and
//! each subject's events in order. A subscriber that must not act twice
//! deduplicates by [`Event::id`] (a redelivery happens only when the process died
//! between handling an event and saving the cursor).
//!
//! [`EventBus::subscribe`] starts one delivery task per subscriber; it sleeps until
//! an [`EventSignal`] says a commit wrote events (with a slow poll as a safety net),
//! so a slow subscriber never holds up another. Within a subscriber, events fan
//! out to [`KeyedLanes`] by subject: one subject's events are handled in order,
//! different subjects' at once (so their writes share group commits), and the
//! cursor is the lanes' watermark — the highest `seq` below which everything is
//! done — saved at most every `cursor_every`. This subscriber interface is the
//! one the Kafka bridge will use.

use crate::lanes::KeyedLanes;
use crate::trace;
use crate::{DomainError, Store};
use async_trait::async_trait;
use futures_util::FutureExt;
pub use pazar_events::{DomainEvent, Event, EventError, EventType, Payload, SOURCE};
use serde::Serialize;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// An event as stored in the outbox, with its commit-order position.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Position in the outbox: increases in commit order.
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// Something that wants to hear about events.
#[async_trait]
pub trait EventSubscriber: Send + Sync + 'static {
    /// A stable name: the key of its cursor in the store.
    fn name(&self) -> &str;
    /// Whether it cares about events of this type (others are skipped, not
    /// handled). An event of a type this build does not know is wanted by no one.
    /// By default, what the routing table (`pazar_events::routing`) says.
    fn wants(&self, kind: EventType) -> bool {
        pazar_events::routing::reacts(self.name(), kind)
    }
    /// Handles one event, given with its decoded payload; an error makes the bus
    /// retry it (with backoff) before the subject's next event, so each subject's
    /// order is kept. Events of different subjects are handled concurrently.
    async fn handle(&self, event: &StoredEvent, payload: &DomainEvent) -> Result<(), DomainError>;
}

/// The subscribers the services of a process start, handed to whichever
/// transport feeds them: the outbox's deliveries (the embedded default) or the
/// Kafka bridge. A service adds its subscribers; the process takes them.
#[derive(Default)]
pub struct Listeners(Mutex<Vec<Arc<dyn EventSubscriber>>>);

impl Listeners {
    /// Adds a subscriber.
    pub fn add(&self, subscriber: Arc<dyn EventSubscriber>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(subscriber);
    }

    /// Takes the subscribers added so far.
    pub fn take(&self) -> Vec<Arc<dyn EventSubscriber>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How long events took from being written to being handled, per subscriber
/// (whichever transport fed it): the latest [`Lags::SAMPLES`] of each, for the
/// inspection snapshot and the benchmarks.
#[derive(Default)]
pub struct Lags(Mutex<std::collections::HashMap<String, std::collections::VecDeque<Duration>>>);

/// A subscriber's recent lags.
#[derive(Clone, Debug, Serialize)]
pub struct LagSummary {
    /// The subscriber.
    pub subscriber: String,
    /// Events measured (the latest, at most [`Lags::SAMPLES`]).
    pub samples: usize,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Longest, in milliseconds.
    pub max_ms: f64,
}

impl Lags {
    /// Lags kept per subscriber.
    pub const SAMPLES: usize = 4096;

    /// Records that `subscriber` finished `event` now.
    pub fn record(&self, subscriber: &str, event: &Event) {
        let lag = (chrono::Utc::now() - event.time)
            .to_std()
            .unwrap_or(Duration::ZERO);
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let recent = match all.get_mut(subscriber) {
            Some(recent) => recent,
            None => all.entry(subscriber.to_owned()).or_default(),
        };
        if recent.len() == Self::SAMPLES {
            recent.pop_front();
        }
        recent.push_back(lag);
    }

    /// Each subscriber's recent lags, by name.
    pub fn summary(&self) -> Vec<LagSummary> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut summary: Vec<LagSummary> = all
            .iter()
            .map(|(subscriber, recent)| {
                let mut sorted: Vec<Duration> = recent.iter().copied().collect();
                sorted.sort();
                let at = |q: f64| {
                    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
                    sorted[index - 1].as_secs_f64() * 1000.0
                };
                LagSummary {
                    subscriber: subscriber.clone(),
                    samples: sorted.len(),
                    p50_ms: at(0.5),
                    p99_ms: at(0.99),
                    max_ms: at(1.0),
                }
            })
            .collect();
        summary.sort_by(|a, b| a.subscriber.cmp(&b.subscriber));
        summary
    }

    /// Forgets what was measured (benchmarks, between phases).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Tells delivery tasks that a commit wrote events, and of which types, so that a
/// subscriber is woken only by events it wants. Cheap to clone.
#[derive(Clone)]
pub struct EventSignal(Arc<SignalState>);

struct SignalState {
    /// Raised after every commit that wrote events: wakes the delivery loops.
    wake: watch::Sender<u64>,
    /// Per event type (by its place in `EventType::ALL`), how many commits wrote
    /// one: a woken subscriber whose types' counts did not move goes back to sleep.
    written: Vec<AtomicU64>,
}

impl EventSignal {
    /// Call after a transaction that wrote events has committed, when which types
    /// it wrote is not known: wakes every subscriber.
    pub fn committed(&self) {
        self.committed_types(EventType::ALL.iter().copied());
    }

    /// Call after a transaction that wrote events of `types` has committed.
    pub fn committed_types(&self, types: impl IntoIterator<Item = EventType>) {
        for kind in types {
            self.0.written[kind as usize].fetch_add(1, Ordering::SeqCst);
        }
        self.0
            .wake
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    /// How many commits wrote an event `wants` takes: a subscriber compares it
    /// before and after a wake-up.
    fn written_for(&self, wants: impl Fn(EventType) -> bool) -> u64 {
        EventType::ALL
            .iter()
            .filter(|kind| wants(**kind))
            .map(|kind| self.0.written[*kind as usize].load(Ordering::SeqCst))
            .fold(0, u64::wrapping_add)
    }
}

impl Default for EventSignal {
    fn default() -> Self {
        Self(Arc::new(SignalState {
            wake: watch::channel(0).0,
            written: EventType::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        }))
    }
}

/// Delivery settings.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryPolicy {
    /// Events read from the outbox at a time.
    pub batch: i64,
    /// Poll interval when no signal arrives (events written by another process).
    pub poll: Duration,
    /// First retry delay after a failed `handle`; doubles up to `max_backoff`.
    pub backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Lanes per subscriber: events of one subject are handled in order, events
    /// of subjects in different lanes at once.
    pub lanes: usize,
    /// Events waiting in one lane before reading the outbox waits.
    pub lane_depth: usize,
    /// The shortest time between two saves of a subscriber's cursor.
    pub cursor_every: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            batch: 256,
            poll: Duration::from_secs(1),
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(30),
            lanes: 64,
            lane_depth: 16,
            cursor_every: Duration::from_millis(50),
        }
    }
}

/// Delivers outbox events to subscribers.
#[derive(Clone)]
pub struct EventBus {
    store: Arc<dyn Store>,
    signal: EventSignal,
    policy: DeliveryPolicy,
    /// Names of the subscribers started on this bus, for inspection.
    subscribers: Arc<Mutex<Vec<String>>>,
    /// How far behind the subscribers are (both transports record here).
    lags: Arc<Lags>,
}

impl EventBus {
    /// A bus over a store, woken by `signal`.
    pub fn new(store: Arc<dyn Store>, signal: EventSignal, policy: DeliveryPolicy) -> Self {
        Self {
            store,
            signal,
            policy,
            subscribers: Arc::default(),
            lags: Arc::default(),
        }
    }

    /// The subscribers' recent lags.
    pub fn lags(&self) -> &Arc<Lags> {
        &self.lags
    }

    /// The signal writers call after committing events.
    pub fn signal(&self) -> EventSignal {
        self.signal.clone()
    }

    /// Registers `subscriber` and returns its delivery loop, for a supervisor to
    /// run (and run again after a panic): each run resumes just after the
    /// subscriber's saved cursor.
    pub fn delivery(&self, subscriber: Arc<dyn EventSubscriber>) -> Delivery {
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(subscriber.name().to_owned());
        Delivery {
            bus: self.clone(),
            subscriber,
        }
    }

    /// Starts delivering to `subscriber` on a task of its own, unsupervised
    /// (tests; the shop runs [`delivery`](Self::delivery) under its supervisor).
    pub fn subscribe(&self, subscriber: Arc<dyn EventSubscriber>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.delivery(subscriber).run())
    }

    async fn deliver(self, subscriber: Arc<dyn EventSubscriber>) {
        let name = subscriber.name().to_owned();
        let fault_point = format!("delivery:{name}");
        let mut wake = self.signal.0.wake.subscribe();
        let cursor = loop {
            match self.store.event_cursor(&name).await {
                Ok(cursor) => break cursor,
                Err(error) => {
                    tracing::warn!(subscriber = %name, %error, "cannot read cursor; retrying");
                    tokio::time::sleep(self.policy.poll).await;
                }
            }
        };
        let policy = self.policy;
        let lanes = {
            let subscriber = subscriber.clone();
            let lags = self.lags.clone();
            KeyedLanes::start(policy.lanes, policy.lane_depth, cursor, move |event| {
                let subscriber = subscriber.clone();
                let lags = lags.clone();
                async move { handle_until_done(&*subscriber, &event, policy, &lags).await }
            })
        };
        let saver = tokio::spawn(save_cursor(
            self.store.clone(),
            name.clone(),
            lanes.watermark(),
            cursor,
            policy,
        ));
        let _stop_saver = AbortOnDrop(saver);
        let mut read = cursor;
        let wanted = |kind: EventType| subscriber.wants(kind);
        loop {
            // Noted before the read: a commit after this point wakes the wait below,
            // one before it is in what the read returns.
            wake.borrow_and_update();
            let seen = self.signal.written_for(wanted);
            crate::faults::point(&fault_point);
            let events = match self.store.events_after(read, policy.batch).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(subscriber = %name, %error, "cannot read the outbox; retrying");
                    tokio::time::sleep(policy.poll).await;
                    continue;
                }
            };
            let drained = (events.len() as i64) < policy.batch;
            for event in events {
                read = event.seq;
                if event.event.event_type().is_some_and(wanted) {
                    let subject = event.event.subject.clone();
                    lanes.dispatch(event.seq, &subject, event).await;
                } else {
                    lanes.pass(event.seq);
                }
            }
            if drained {
                // Until a commit writes an event this subscriber wants, or the poll
                // interval passes (another process's events, the ones it skipped).
                let deadline = tokio::time::Instant::now() + policy.poll;
                while self.signal.written_for(wanted) == seen {
                    let woken = tokio::time::timeout_at(deadline, wake.changed()).await;
                    if !matches!(woken, Ok(Ok(()))) {
                        break;
                    }
                }
            }
        }
    }

    /// The newest outbox `seq`, and how far each subscriber of this bus has got.
    pub async fn progress(&self) -> Result<(i64, Vec<(String, i64)>), DomainError> {
        let head = self.store.last_event_seq().await?;
        let names = self
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut cursors = Vec::with_capacity(names.len());
        for name in names {
            let cursor = self.store.event_cursor(&name).await?;
            cursors.push((name, cursor));
        }
        Ok((head, cursors))
    }

    /// A page of the outbox after `seq` (for inspection and the Kafka bridge).
    pub async fn events_after(
        &self,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, DomainError> {
        Ok(self.store.events_after(seq, limit).await?)
    }
}

/// One subscriber's delivery loop (see [`EventBus::delivery`]).
pub struct Delivery {
    bus: EventBus,
    subscriber: Arc<dyn EventSubscriber>,
}

impl Delivery {
    /// The subscriber's name.
    pub fn name(&self) -> &str {
        self.subscriber.name()
    }

    /// One run: reads the saved cursor, then delivers until the process stops.
    /// A panic ends the run; in-flight events are redelivered by the next one.
    pub fn run(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.bus.clone().deliver(self.subscriber.clone())
    }
}

/// Handles one event until it succeeds, waiting longer after each failure; a
/// panicking handler counts as a failure. An event whose payload cannot be read
/// (a version this build does not read, a payload that does not match its
/// schema) is refused the same way: never half-applied, retried with a clear
/// error until a build that reads it takes over, holding up only its subject.
async fn handle_until_done(
    subscriber: &dyn EventSubscriber,
    event: &StoredEvent,
    policy: DeliveryPolicy,
    lags: &Lags,
) {
    let mut delay = policy.backoff;
    while let Err(error) = attempt(subscriber, event, lags).await {
        tracing::warn!(
            subscriber = subscriber.name(),
            event = %event.event.id,
            kind = %event.event.kind,
            %error,
            retry_in_ms = delay.as_millis() as u64,
            "event handling failed"
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(policy.max_backoff);
    }
}

/// A handler's record that it has applied one message (an event, or an inbound
/// message by its sender's id), for the Kafka bridge: written **in the same
/// transaction as the write the message causes**, so a crash between the two
/// cannot leave the effect without its record and a redelivery cannot apply it
/// again. The bridge makes it current ([`handling`]) while a handler runs; the
/// service that turns the message into an entity actor's write reads it
/// ([`handled`]) and hands it to the store writer with the write. A message
/// that causes several writes passes it with the one that completes its
/// effect, and only that one (the record makes a redelivery skip them all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    /// The handler's name (the key of its processed-messages record).
    pub subscriber: String,
    /// The message's id.
    pub message: uuid::Uuid,
}

tokio::task_local! {
    static HANDLING: Handled;
}

/// Runs `future` (a handler's attempt at a message) with `record` current.
pub async fn handling<F: std::future::Future>(record: Handled, future: F) -> F::Output {
    HANDLING.scope(record, future).await
}

/// The record of the message being handled on this task, if any (none outside
/// the Kafka bridge: the outbox delivery keeps cursors, not records).
pub fn handled() -> Option<Handled> {
    HANDLING.try_with(Clone::clone).ok()
}

/// Why one attempt at handling an event failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// The event cannot be read by this build (unknown type or version, a
    /// payload that does not match its schema): no retry will help.
    #[error("refused: {0}")]
    Refused(#[from] EventError),
    /// The handler failed or panicked; a retry may succeed.
    #[error("{message}")]
    Failed {
        /// What went wrong.
        message: String,
        /// The handler said its store or a service it needs is unavailable
        /// ([`DomainError::Unavailable`]): an outage to wait out.
        transient: bool,
    },
}

/// One attempt at handling `event` (decoded first), in the trace of the request
/// that caused it: log lines name its trace id, internal calls send it on, the
/// events its writes cause carry it, and its span is exported when tracing is on.
/// A panicking handler is a failed attempt. Both transports call this; a
/// success is recorded in `lags`.
pub async fn attempt(
    subscriber: &dyn EventSubscriber,
    event: &StoredEvent,
    lags: &Lags,
) -> Result<(), AttemptError> {
    let cause = event
        .event
        .traceparent
        .as_deref()
        .and_then(trace::TraceContext::parse);
    let context = cause.map(|cause| cause.child());
    let begun = trace::Span::now();
    let run = async {
        let payload = DomainEvent::decode(&event.event)?;
        match AssertUnwindSafe(subscriber.handle(event, &payload))
            .catch_unwind()
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(AttemptError::Failed {
                transient: matches!(error, DomainError::Unavailable(_)),
                message: error.to_string(),
            }),
            Err(_) => Err(AttemptError::Failed {
                message: "the handler panicked".to_owned(),
                transient: false,
            }),
        }
    };
    let outcome = match context {
        Some(context) => {
            let span = tracing::info_span!(
                "event",
                trace_id = %context.trace_id_hex(),
                subscriber = subscriber.name(),
                kind = %event.event.kind
            );
            trace::scope(context, run.instrument(span)).await
        }
        None => run.await,
    };
    if let (Some(cause), Some(context), true) = (cause, context, trace::exporting()) {
        trace::record(trace::Span {
            context,
            parent: Some(cause.span_id),
            name: format!("{} → {}", event.event.kind, subscriber.name()),
            kind: trace::SpanKind::Consumer,
            start: begun,
            end: trace::Span::now(),
            failed: outcome.is_err(),
            status: None,
        });
    }
    if outcome.is_ok() {
        lags.record(subscriber.name(), &event.event);
    }
    outcome
}

/// Saves a subscriber's cursor as its watermark moves: at most once per
/// `policy.cursor_every`, so one save covers every event finished meanwhile.
async fn save_cursor(
    store: Arc<dyn Store>,
    name: String,
    mut watermark: watch::Receiver<i64>,
    mut saved: i64,
    policy: DeliveryPolicy,
) {
    while watermark.changed().await.is_ok() {
        let done = *watermark.borrow_and_update();
        if done <= saved {
            continue;
        }
        while let Err(error) = store.save_event_cursor(&name, done).await {
            tracing::warn!(subscriber = %name, %error, "cannot save cursor; retrying");
            tokio::time::sleep(policy.poll).await;
        }
        saved = done;
        tokio::time::sleep(policy.cursor_every).await;
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Panics on its first call, then succeeds.
    struct PanicsOnce(AtomicU32);

    #[async_trait]
    impl EventSubscriber for PanicsOnce {
        fn name(&self) -> &str {
            "panics-once"
        }

        fn wants(&self, _kind: EventType) -> bool {
            true
        }

        async fn handle(
            &self,
            _event: &StoredEvent,
            _payload: &DomainEvent,
        ) -> Result<(), DomainError> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("a bug in a handler");
            }
            Ok(())
        }
    }

    /// An event this build cannot read (here a version it does not know) never
    /// reaches the handler: it is refused, and stays refused (retried, never
    /// skipped), so its subject's later events wait behind it.
    #[tokio::test]
    async fn an_unreadable_event_is_refused_and_never_handled() {
        let subscriber = PanicsOnce(AtomicU32::new(0));
        let mut event = Event::of(
            "subject",
            &pazar_events::catalog::ProductDeleted {
                product_id: uuid::Uuid::now_v7(),
            },
        );
        event.version = 2;
        let event = StoredEvent { seq: 1, event };
        let policy = DeliveryPolicy {
            backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..DeliveryPolicy::default()
        };
        let handled = tokio::time::timeout(
            Duration::from_millis(200),
            handle_until_done(&subscriber, &event, policy, &Lags::default()),
        )
        .await;
        assert!(handled.is_err(), "an unreadable event was let through");
        assert_eq!(subscriber.0.load(Ordering::SeqCst), 0);
    }

    /// A panicking handler is retried like a failing one; its lane lives on.
    #[tokio::test]
    async fn a_panicking_handler_is_retried() {
        let subscriber = PanicsOnce(AtomicU32::new(0));
        let event = StoredEvent {
            seq: 1,
            event: Event::of(
                "subject",
                &pazar_events::catalog::ProductDeleted {
                    product_id: uuid::Uuid::now_v7(),
                },
            ),
        };
        let policy = DeliveryPolicy {
            backoff: Duration::from_millis(1),
            ..DeliveryPolicy::default()
        };
        tokio::time::timeout(
            Duration::from_secs(10),
            handle_until_done(&subscriber, &event, policy, &Lags::default()),
        )
        .await
        .expect("handled within 10 s");
        assert_eq!(subscriber.0.load(Ordering::SeqCst), 2);
    }

    /// The outbox in memory, counting the subscriber's reads.
    #[derive(Default)]
    struct Outbox {
        events: Mutex<Vec<StoredEvent>>,
        reads: AtomicU32,
    }

    impl Outbox {
        fn append(&self, event: Event) {
            let mut events = self.events.lock().unwrap();
            let seq = events.len() as i64 + 1;
            events.push(StoredEvent { seq, event });
        }
    }

    #[async_trait]
    impl Store for Outbox {
        async fn ping(&self) -> Result<(), crate::StoreError> {
            Ok(())
        }
        async fn commit_batch(
            &self,
            _writes: &crate::WriteSet<'_>,
            _events: &[Event],
        ) -> Result<(), crate::StoreError> {
            unreachable!("the bus never writes")
        }
        async fn events_after(
            &self,
            after: i64,
            limit: i64,
        ) -> Result<Vec<StoredEvent>, crate::StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let events = self.events.lock().unwrap();
            Ok(events
                .iter()
                .filter(|e| e.seq > after)
                .take(limit as usize)
                .cloned()
                .collect())
        }
        async fn last_event_seq(&self) -> Result<i64, crate::StoreError> {
            Ok(self.events.lock().unwrap().len() as i64)
        }
        async fn event_cursor(&self, _subscriber: &str) -> Result<i64, crate::StoreError> {
            Ok(0)
        }
        async fn save_event_cursor(
            &self,
            _subscriber: &str,
            _seq: i64,
        ) -> Result<(), crate::StoreError> {
            Ok(())
        }
    }

    /// Wants `catalog.product_deleted` only; counts what it handles.
    #[derive(Default)]
    struct DeletedOnly(AtomicU32);

    #[async_trait]
    impl EventSubscriber for DeletedOnly {
        fn name(&self) -> &str {
            "deleted-only"
        }
        fn wants(&self, kind: EventType) -> bool {
            kind == EventType::ProductDeleted
        }
        async fn handle(&self, _: &StoredEvent, _: &DomainEvent) -> Result<(), DomainError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn deleted() -> Event {
        Event::of(
            "product",
            &pazar_events::catalog::ProductDeleted {
                product_id: uuid::Uuid::now_v7(),
            },
        )
    }

    /// An event of a type the subscriber does not want (never decoded).
    fn unwanted() -> Event {
        let mut event = deleted();
        event.kind = EventType::StockChanged.as_str().to_owned();
        event
    }

    async fn until(what: &str, condition: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A commit of events a subscriber does not want does not make it read the
    /// outbox; one it wants does, and the read takes the skipped events along.
    /// Events written without a signal (another process) are read at the poll.
    #[tokio::test]
    async fn a_subscriber_wakes_only_for_events_it_wants() {
        let outbox = Arc::new(Outbox::default());
        let signal = EventSignal::default();
        let policy = DeliveryPolicy {
            poll: Duration::from_secs(3600),
            ..DeliveryPolicy::default()
        };
        let bus = EventBus::new(outbox.clone(), signal.clone(), policy);
        let subscriber = Arc::new(DeletedOnly::default());
        let _delivery = bus.subscribe(subscriber.clone());
        until("the first read", || {
            outbox.reads.load(Ordering::SeqCst) == 1
        })
        .await;

        outbox.append(unwanted());
        signal.committed_types([EventType::StockChanged]);
        // This test's runtime has one thread: each yield lets the woken delivery
        // loop run until it waits again.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(outbox.reads.load(Ordering::SeqCst), 1, "woken for nothing");

        outbox.append(deleted());
        signal.committed_types([EventType::ProductDeleted]);
        until("the wanted event handled", || {
            subscriber.0.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(outbox.reads.load(Ordering::SeqCst), 2);

        // Not signalled: read at the next poll (a second bus with a short one).
        let bus = EventBus::new(
            outbox.clone(),
            EventSignal::default(),
            DeliveryPolicy {
                poll: Duration::from_millis(20),
                ..DeliveryPolicy::default()
            },
        );
        let late = Arc::new(DeletedOnly::default());
        let _delivery = bus.subscribe(late.clone());
        until("the existing event handled", || {
            late.0.load(Ordering::SeqCst) == 1
        })
        .await;
        outbox.append(deleted());
        until("the unsignalled event handled", || {
            late.0.load(Ordering::SeqCst) == 2
        })
        .await;
    }
}
