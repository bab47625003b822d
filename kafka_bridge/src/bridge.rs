//! The bridge actors: one Kafka consumer group per role, feeding its subscribers.
//!
//! A [`Bridge`] is a ractor supervisor with one **consumer actor** per group
//! (`{prefix}.{role}`). A consumer actor creates the topics it needs, joins its
//! group, and runs its read loop; when the loop dies (a fatal client error, a
//! panic) the actor fails, and the supervisor counts the restart and starts a
//! fresh one a moment later, which resumes from the group's committed offsets.
//!
//! The read loop hands each message to the [`KeyedLanes`] of its partition, by
//! key (the event's subject): one subject's events in order, other subjects'
//! at once. A lane decodes the envelope and gives the event to each subscriber
//! of the group the routing table names for its type:
//!
//! 1. a subscriber that has processed the event id before (its record in the
//!    store) skips it: a redelivery changes nothing;
//! 2. otherwise it is handled, retried with backoff; an outage (the handler's
//!    store or a service it needs unavailable) is retried without limit, any
//!    other failure up to `max_attempts`, after which — or at once, when the
//!    message cannot be read at all — it becomes a dead letter;
//! 3. then the processed-event record is written. Where the handler's effect
//!    is an entity actor's write, the record was already committed in that
//!    write's transaction (the bridge makes it current while the handler runs,
//!    `pazar_actors::events::handling`), so a crash between the effect and
//!    this step cannot apply the message twice; this write covers handlers
//!    whose effect is no write, or is idempotent by its own key.
//!
//! A partition's offset is committed only up to its lanes' watermark: past
//! messages every subscriber has finished (or dead-lettered). After a crash or a
//! rebalance the group resumes there; the records absorb what is read twice.

use crate::dead_letters::DeadLetterOffice;
use crate::{ensure_topics, KafkaSettings, OffRuntime};
use futures_util::FutureExt;
use pazar_actors::events::{attempt, handling, Lags};
use pazar_actors::lanes::KeyedLanes;
use pazar_actors::{
    AttemptError, BridgeLedger, Event, EventError, EventSubscriber, Handled, StoredEvent,
};
pub use pazar_supervisor::{ConsumerSnapshot, PartitionSnapshot};
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A topic and one of its partitions.
type PartitionKey = (String, i32);

/// Each partition's lanes' watermark (the last offset done), shared with the
/// consumer's context, which commits it when the partition is taken away.
type Watermarks = Arc<Mutex<HashMap<PartitionKey, watch::Receiver<i64>>>>;

/// The subscribers of one role: one consumer group.
pub struct Group {
    /// The role (`orders`, `payments`, `notifications`, …).
    pub role: String,
    /// Its subscribers; the routing table says what each one handles.
    pub subscribers: Vec<Arc<dyn EventSubscriber>>,
    /// Its handlers of inbound topics (messages from outside systems).
    pub inbound: Vec<Arc<dyn InboundHandler>>,
}

/// Reads an inbound topic (`{prefix}.{topic}`): messages outside systems send,
/// which are not Pazar's events.
#[async_trait::async_trait]
pub trait InboundHandler: Send + Sync + 'static {
    /// Its name: the key of its processed-messages record.
    fn name(&self) -> &str;
    /// Its topic, after the prefix (e.g. `inbound.stock`).
    fn topic(&self) -> &str;
    /// The id a message is remembered by once applied (the sender's id for it),
    /// or why the message cannot be read (it becomes a dead letter at once).
    fn dedup_id(&self, payload: &[u8]) -> Result<uuid::Uuid, String>;
    /// Applies the message.
    async fn handle(&self, payload: &[u8]) -> Result<(), InboundError>;
}

/// Why an inbound message was not applied.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// A rule refuses it (an unknown product, fewer units than reserved): a
    /// retry would say the same, so it becomes a dead letter at once.
    #[error("refused: {0}")]
    Refused(String),
    /// It could not be applied now; `transient` when a store or service is
    /// unavailable (retried without limit), otherwise retried up to the
    /// attempts.
    #[error("{message}")]
    Failed {
        /// What went wrong.
        message: String,
        /// An outage to wait out.
        transient: bool,
    },
}

/// The bridge: the supervisor of the consumer groups of this process.
#[derive(Clone)]
pub struct Bridge {
    supervisor: ActorRef<SupervisorMessage>,
    groups: Vec<Arc<Runtime>>,
}

impl Bridge {
    /// Starts a consumer actor per group under a supervisor linked to `parent`.
    pub async fn start(
        settings: &KafkaSettings,
        ledger: Arc<dyn BridgeLedger>,
        office: Arc<DeadLetterOffice>,
        lags: Arc<Lags>,
        groups: Vec<Group>,
        parent: ActorCell,
    ) -> Result<Self, ractor::SpawnErr> {
        let groups: Vec<Arc<Runtime>> = groups
            .into_iter()
            .filter(|group| !group.subscribers.is_empty() || !group.inbound.is_empty())
            .map(|group| {
                let mut topics: Vec<String> = group
                    .subscribers
                    .iter()
                    .flat_map(|subscriber| {
                        pazar_actors::EventType::ALL
                            .iter()
                            .filter(|kind| subscriber.wants(**kind))
                            .map(|kind| settings.topic_of(kind.as_str()))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let inbound: HashMap<String, Arc<dyn InboundHandler>> = group
                    .inbound
                    .into_iter()
                    .map(|handler| (settings.inbound_topic(handler.topic()), handler))
                    .collect();
                topics.extend(inbound.keys().cloned());
                topics.sort();
                topics.dedup();
                Arc::new(Runtime {
                    lane_fault: format!("lane:{}", settings.group_of(&group.role)),
                    handled_fault: format!("handled:{}", settings.group_of(&group.role)),
                    group: settings.group_of(&group.role),
                    topics,
                    subscribers: group.subscribers,
                    inbound,
                    lags: lags.clone(),
                    settings: settings.clone(),
                    ledger: ledger.clone(),
                    office: office.clone(),
                    status: Status::default(),
                })
            })
            .collect();
        let (supervisor, _) =
            Actor::spawn_linked(None, BridgeSupervisor, groups.clone(), parent).await?;
        Ok(Self { supervisor, groups })
    }

    /// Every consumer group's state.
    pub fn snapshot(&self) -> Vec<ConsumerSnapshot> {
        self.groups.iter().map(|group| group.snapshot()).collect()
    }

    /// Stops the consumers (their offsets are committed up to what is done).
    pub fn stop(&self) {
        self.supervisor.stop(Some("shutdown".into()));
    }
}

/// A consumer group's client.
type GroupConsumer = StreamConsumer<GroupContext>;

/// What a consumer group needs, shared by its successive consumer actors.
struct Runtime {
    group: String,
    topics: Vec<String>,
    subscribers: Vec<Arc<dyn EventSubscriber>>,
    /// Inbound handlers by their full topic name.
    inbound: HashMap<String, Arc<dyn InboundHandler>>,
    lags: Arc<Lags>,
    /// The test fault point in its lanes, `lane:<group>`.
    lane_fault: String,
    /// The test fault point between a handler's success and the bridge's
    /// record of it, `handled:<group>`.
    handled_fault: String,
    settings: KafkaSettings,
    ledger: Arc<dyn BridgeLedger>,
    office: Arc<DeadLetterOffice>,
    status: Status,
}

/// A group's counters and state, kept across restarts of its consumer.
#[derive(Default)]
struct Status {
    state: Mutex<&'static str>,
    restarts: AtomicU64,
    last_error: Mutex<Option<String>>,
    handled: AtomicU64,
    duplicates: AtomicU64,
    dead_letters: AtomicU64,
    /// Per partition: next offset to read, reported end.
    partitions: Mutex<BTreeMap<PartitionKey, (i64, Option<i64>)>>,
    /// Per partition: the group's committed offset, as the broker last said.
    committed: Mutex<HashMap<PartitionKey, i64>>,
    /// Per partition: the lanes' watermark (last offset done).
    watermarks: Watermarks,
}

impl Status {
    fn set_state(&self, state: &'static str) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    fn error(&self, error: impl ToString) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
    }
}

impl Runtime {
    fn snapshot(&self) -> ConsumerSnapshot {
        let status = &self.status;
        let committed = status.committed.lock().unwrap_or_else(|e| e.into_inner());
        let watermarks = status.watermarks.lock().unwrap_or_else(|e| e.into_inner());
        let partitions = status
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|((topic, partition), (position, high_watermark))| {
                let key = (topic.clone(), *partition);
                let committed = committed.get(&key).copied();
                let done = watermarks.get(&key).map(|mark| *mark.borrow() + 1);
                let end = high_watermark.unwrap_or(0).max(*position);
                PartitionSnapshot {
                    topic: topic.clone(),
                    partition: *partition,
                    committed,
                    position: *position,
                    in_flight: done.map_or(0, |done| (position - done).max(0)),
                    high_watermark: *high_watermark,
                    lag: (end - committed.or(done).unwrap_or(0)).max(0),
                }
            })
            .collect();
        ConsumerSnapshot {
            group: self.group.clone(),
            topics: self.topics.clone(),
            subscribers: self
                .subscribers
                .iter()
                .map(|subscriber| subscriber.name().to_owned())
                .chain(
                    self.inbound
                        .values()
                        .map(|handler| handler.name().to_owned()),
                )
                .collect(),
            state: status
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .to_string(),
            restarts: status.restarts.load(Ordering::Relaxed) as u32,
            last_error: status
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            handled: status.handled.load(Ordering::Relaxed),
            duplicates_skipped: status.duplicates.load(Ordering::Relaxed),
            dead_letters: status.dead_letters.load(Ordering::Relaxed),
            partitions,
        }
    }

    /// A consumer in the group, subscribed to its topics.
    fn consumer(&self) -> KafkaResult<GroupConsumer> {
        let context = GroupContext {
            watermarks: self.status.watermarks.clone(),
            revoked: Arc::default(),
        };
        let consumer: GroupConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.settings.brokers)
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                self.settings.session_timeout.as_millis().to_string(),
            )
            .set(
                "max.poll.interval.ms",
                self.settings
                    .max_poll_interval
                    .max(self.settings.session_timeout)
                    .as_millis()
                    .to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (self.settings.session_timeout.as_millis() / 3)
                    .max(100)
                    .to_string(),
            )
            .set("topic.metadata.refresh.interval.ms", "5000")
            // How long the broker may hold a fetch open waiting for new
            // messages: librdkafka's 500 ms is what an event waits on a broker
            // that answers a fetch only when the wait is over (tansu does).
            .set(
                "fetch.wait.max.ms",
                self.settings.fetch_wait.as_millis().max(1).to_string(),
            )
            .create_with_context(context)?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(consumer)
    }

    /// The read loop: returns why it stopped (it only stops on a fatal error).
    async fn consume(self: Arc<Self>, consumer: Arc<OffRuntime<GroupConsumer>>) -> String {
        let mut partitions: HashMap<PartitionKey, PartitionLanes> = HashMap::new();
        let mut commit_every = tokio::time::interval(Duration::from_millis(100));
        commit_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ends_every = tokio::time::interval(Duration::from_secs(2));
        ends_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.status.set_state("running");
        let fault_point = format!("consumer:{}", self.group);
        // A lane whose work panicked outside a handler (which `attempt` catches)
        // can never finish its message: the loop ends, and the restarted
        // consumer reads it again from the committed offset.
        let (broken, mut lane_broke) = watch::channel(None::<String>);
        let broken = Arc::new(broken);
        loop {
            tokio::select! {
                _ = lane_broke.changed() => {
                    return lane_broke.borrow().clone().unwrap_or_default();
                }
                received = consumer.recv() => match received {
                    Ok(message) => {
                        pazar_actors::faults::point(&fault_point);
                        let message = message.detach();
                        self.dispatch(&consumer, &mut partitions, &broken, message).await;
                    }
                    Err(error) => {
                        if let Some((code, reason)) = consumer.client().fatal_error() {
                            return format!("fatal consumer error {code}: {reason}");
                        }
                        // The broker is away or the group rebalances: librdkafka
                        // reconnects and rejoins on its own.
                        tracing::debug!(group = %self.group, %error, "consumer error");
                        self.status.error(&error);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = commit_every.tick() => self.commit(&consumer, &mut partitions),
                _ = ends_every.tick() => self.refresh(&consumer, &mut partitions).await,
            }
            for revoked in consumer.context().take_revoked() {
                partitions.remove(&revoked);
                self.status
                    .partitions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&revoked);
            }
        }
    }

    /// Hands `message` to the lanes of its partition (new lanes when the
    /// partition is new to this loop, or is read again from an earlier offset
    /// after a rebalance).
    async fn dispatch(
        self: &Arc<Self>,
        consumer: &GroupConsumer,
        partitions: &mut HashMap<PartitionKey, PartitionLanes>,
        broken: &Arc<watch::Sender<Option<String>>>,
        message: OwnedMessage,
    ) {
        let key = (message.topic().to_owned(), message.partition());
        let offset = message.offset();
        let fresh = partitions
            .get(&key)
            .is_none_or(|lanes| offset <= lanes.last_offset);
        if fresh {
            let (runtime, broken) = (self.clone(), broken.clone());
            let lanes = KeyedLanes::start(64, 16, offset - 1, move |message: OwnedMessage| {
                let (runtime, broken) = (runtime.clone(), broken.clone());
                async move {
                    let delivered = AssertUnwindSafe(runtime.deliver(message))
                        .catch_unwind()
                        .await;
                    if delivered.is_err() {
                        let _ = broken.send(Some("a delivery lane panicked".into()));
                        // Never done: the watermark stays before this message.
                        std::future::pending::<()>().await;
                    }
                }
            });
            let watermark = lanes.watermark();
            consumer
                .context()
                .watermarks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone(), watermark.clone());
            partitions.insert(
                key.clone(),
                PartitionLanes {
                    lanes,
                    watermark,
                    last_offset: offset - 1,
                    commit_sent: None,
                },
            );
        }
        let Some(partition) = partitions.get_mut(&key) else {
            return;
        };
        partition.last_offset = offset;
        self.status
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .and_modify(|(position, _)| *position = offset + 1)
            .or_insert((offset + 1, None));
        let subject = message
            .key()
            .map(|key| String::from_utf8_lossy(key).into_owned())
            .unwrap_or_default();
        partition.lanes.dispatch(offset, &subject, message).await;
    }

    /// Commits each partition's offset past its watermark, where it moved
    /// beyond the last commit sent (asynchronously: [`refresh`](Self::refresh)
    /// reads back what the broker holds, and a commit that did not land is sent
    /// again).
    fn commit(
        &self,
        consumer: &GroupConsumer,
        partitions: &mut HashMap<PartitionKey, PartitionLanes>,
    ) {
        let mut list = TopicPartitionList::new();
        let mut sending = Vec::new();
        for ((topic, partition), lanes) in partitions.iter() {
            let next = *lanes.watermark.borrow() + 1;
            if next > 0 && lanes.commit_sent.is_none_or(|sent| next > sent) {
                let _ = list.add_partition_offset(topic, *partition, Offset::Offset(next));
                sending.push(((topic.clone(), *partition), next));
            }
        }
        if sending.is_empty() {
            return;
        }
        match consumer.commit(&list, CommitMode::Async) {
            Ok(()) => {
                for (key, next) in sending {
                    if let Some(lanes) = partitions.get_mut(&key) {
                        lanes.commit_sent = Some(next);
                    }
                }
            }
            Err(error) => {
                tracing::debug!(group = %self.group, %error, "cannot commit offsets yet");
                self.status.error(format!("committing offsets: {error}"));
            }
        }
    }

    /// Asks the broker what it holds of each partition read so far: its end
    /// and the group's committed offset. A commit sent but not held is sent
    /// again on the next tick.
    async fn refresh(
        &self,
        consumer: &Arc<OffRuntime<GroupConsumer>>,
        partitions: &mut HashMap<PartitionKey, PartitionLanes>,
    ) {
        let known: Vec<PartitionKey> = partitions.keys().cloned().collect();
        if known.is_empty() {
            return;
        }
        let asking = consumer.clone();
        let (ends, committed) = tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(1);
            let mut list = TopicPartitionList::new();
            let ends: Vec<(PartitionKey, i64)> = known
                .into_iter()
                .filter_map(|(topic, partition)| {
                    list.add_partition(&topic, partition);
                    asking
                        .fetch_watermarks(&topic, partition, timeout)
                        .ok()
                        .map(|(_, high)| ((topic, partition), high))
                })
                .collect();
            let committed = asking
                .committed_offsets(list, timeout)
                .map(|list| list.to_topic_map())
                .unwrap_or_default();
            (ends, committed)
        })
        .await
        .unwrap_or_default();
        {
            let mut status = self
                .status
                .partitions
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (key, high) in ends {
                if let Some((_, end)) = status.get_mut(&key) {
                    *end = Some(high);
                }
            }
        }
        let mut held = self
            .status
            .committed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (key, offset) in committed {
            let Offset::Offset(offset) = offset else {
                continue;
            };
            held.insert(key.clone(), offset);
            if let Some(lanes) = partitions.get_mut(&key) {
                if lanes.commit_sent.is_some_and(|sent| sent > offset) {
                    lanes.commit_sent = Some(offset);
                }
            }
        }
    }

    /// Gives one message to every subscriber of this group that handles its
    /// type (a lane's work: it returns when each is done or dead-lettered).
    async fn deliver(&self, message: OwnedMessage) {
        pazar_actors::faults::point(&self.lane_fault);
        if let Some(handler) = self.inbound.get(message.topic()) {
            return self.deliver_inbound(&**handler, &message).await;
        }
        let event = match message.payload().map(serde_json::from_slice::<Event>) {
            Some(Ok(event)) => event,
            Some(Err(error)) => {
                return self
                    .dead_letter(
                        None,
                        &message,
                        &format!("not an event envelope: {error}"),
                        1,
                    )
                    .await
            }
            None => {
                return self
                    .dead_letter(None, &message, "an empty message", 1)
                    .await
            }
        };
        let Some(kind) = event.event_type() else {
            let error = EventError::UnknownType(event.kind.clone());
            return self
                .dead_letter(None, &message, &format!("refused: {error}"), 1)
                .await;
        };
        let stored = StoredEvent {
            seq: message.offset(),
            event,
        };
        for subscriber in self.subscribers.iter().filter(|s| s.wants(kind)) {
            self.deliver_to(&**subscriber, &stored, &message).await;
        }
    }

    /// One subscriber's turn at one event: skipped if processed before, else
    /// handled (with retries) and recorded, or dead-lettered.
    async fn deliver_to(
        &self,
        subscriber: &dyn EventSubscriber,
        event: &StoredEvent,
        message: &OwnedMessage,
    ) {
        self.once(subscriber.name(), event.event.id, message, || async {
            attempt(subscriber, event, &self.lags)
                .await
                .map_err(|error| match error {
                    AttemptError::Refused(_) => Failure::Refused(error.to_string()),
                    AttemptError::Failed { message, transient } => {
                        Failure::Failed { message, transient }
                    }
                })
        })
        .await
    }

    /// An inbound message: skipped if applied before (by its sender's id),
    /// else applied (with retries) and recorded, or dead-lettered.
    async fn deliver_inbound(&self, handler: &dyn InboundHandler, message: &OwnedMessage) {
        let name = handler.name();
        let payload = message.payload().unwrap_or_default();
        let id = match handler.dedup_id(payload) {
            Ok(id) => id,
            Err(error) => {
                return self
                    .dead_letter(Some(name), message, &format!("refused: {error}"), 1)
                    .await
            }
        };
        self.once(name, id, message, || async {
            AssertUnwindSafe(handler.handle(payload))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Err(InboundError::Failed {
                        message: "the handler panicked".into(),
                        transient: false,
                    })
                })
                .map_err(|error| match error {
                    InboundError::Refused(_) => Failure::Refused(error.to_string()),
                    InboundError::Failed { message, transient } => {
                        Failure::Failed { message, transient }
                    }
                })
        })
        .await
    }

    /// `name`'s turn at message `id`: skipped when its record says it was done
    /// before; otherwise `work` is tried until it succeeds (then recorded) or
    /// the message becomes a dead letter — at once when refused, after
    /// `max_attempts` failures, never for an outage.
    async fn once<F, Fut>(&self, name: &str, id: uuid::Uuid, message: &OwnedMessage, work: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), Failure>>,
    {
        if self.until_stored(|| self.ledger.processed(name, id)).await {
            self.status.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // While the work runs, its record is current: an entity actor's write
        // that applies the message commits the record with it.
        let record = Handled {
            subscriber: name.to_owned(),
            message: id,
        };
        let mut attempts = 0;
        let mut delay = self.settings.retry_backoff;
        while let Err(failure) = handling(record.clone(), work()).await {
            attempts += 1;
            let error = match failure {
                Failure::Refused(error) => {
                    return self
                        .dead_letter(Some(name), message, &error, attempts)
                        .await
                }
                Failure::Failed {
                    message: error,
                    transient,
                } => {
                    if !transient && attempts >= self.settings.max_attempts.max(1) {
                        return self
                            .dead_letter(Some(name), message, &error, attempts)
                            .await;
                    }
                    error
                }
            };
            tracing::warn!(
                group = %self.group,
                subscriber = name,
                message = %id,
                %error,
                attempts,
                retry_in_ms = delay.as_millis() as u64,
                "handling failed"
            );
            self.status.error(format!("{name}: {error}"));
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.settings.max_backoff);
        }
        // A crash here leaves a write's effect with its record (the same
        // transaction) and anything else to be done again: idempotent by key.
        pazar_actors::faults::point(&self.handled_fault);
        self.until_stored(|| self.ledger.mark_processed(name, id))
            .await;
        self.status.handled.fetch_add(1, Ordering::Relaxed);
    }

    async fn dead_letter(
        &self,
        subscriber: Option<&str>,
        message: &OwnedMessage,
        error: &str,
        attempts: u32,
    ) {
        self.office
            .post(&self.group, subscriber, message, error, attempts)
            .await;
        self.status.dead_letters.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs a store step until it succeeds: the bridge never moves past a
    /// message without its record.
    async fn until_stored<T, F, Fut>(&self, step: F) -> T
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, pazar_actors::StoreError>>,
    {
        let mut delay = self.settings.retry_backoff;
        loop {
            match step().await {
                Ok(value) => return value,
                Err(error) => {
                    tracing::warn!(group = %self.group, %error, "the store is unavailable; retrying");
                    self.status.error(format!("store: {error}"));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.settings.max_backoff);
                }
            }
        }
    }
}

/// Why one try at a message failed.
enum Failure {
    /// It cannot be applied, ever: a dead letter at once.
    Refused(String),
    /// It failed this time; `transient` for an outage.
    Failed { message: String, transient: bool },
}

/// The lanes of one partition.
struct PartitionLanes {
    lanes: KeyedLanes<OwnedMessage>,
    watermark: watch::Receiver<i64>,
    /// The last offset handed to the lanes.
    last_offset: i64,
    /// The last offset a commit was sent for.
    commit_sent: Option<i64>,
}

/// The consumer's context: before partitions are taken away it commits what is
/// done in them and tells the read loop to drop their lanes.
struct GroupContext {
    watermarks: Watermarks,
    revoked: Arc<Mutex<HashSet<PartitionKey>>>,
}

impl GroupContext {
    fn take_revoked(&self) -> Vec<PartitionKey> {
        self.revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect()
    }
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let mut done = TopicPartitionList::new();
        {
            let mut watermarks = self.watermarks.lock().unwrap_or_else(|e| e.into_inner());
            let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            for element in list.elements() {
                let key = (element.topic().to_owned(), element.partition());
                if let Some(mark) = watermarks.remove(&key) {
                    let next = *mark.borrow() + 1;
                    let _ = done.add_partition_offset(&key.0, key.1, Offset::Offset(next));
                }
                revoked.insert(key);
            }
        }
        if done.count() > 0 {
            if let Err(error) = consumer.commit(&done, CommitMode::Async) {
                tracing::debug!(%error, "cannot commit revoked partitions");
            }
        }
    }
}

/// Messages of the consumer actor.
enum ConsumerMessage {
    /// Its read loop stopped, saying why: the actor fails, and is restarted.
    Stopped(String),
}

/// A consumer actor: joins its group and runs the read loop.
struct ConsumerActor;

impl Actor for ConsumerActor {
    type Msg = ConsumerMessage;
    /// The read loop (which holds the consumer too: the consumer closes, off
    /// the runtime, when both have let go of it).
    type State = JoinHandle<()>;
    type Arguments = Arc<Runtime>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        runtime: Arc<Runtime>,
    ) -> Result<Self::State, ActorProcessingErr> {
        runtime.status.set_state("starting");
        ensure_topics(&runtime.settings).await?;
        let consumer = Arc::new(OffRuntime::new(runtime.consumer()?));
        let task = tokio::spawn(async move {
            let reason = match AssertUnwindSafe(runtime.consume(consumer))
                .catch_unwind()
                .await
            {
                Ok(reason) => reason,
                Err(_) => "the read loop panicked".to_owned(),
            };
            let _ = myself.cast(ConsumerMessage::Stopped(reason));
        });
        Ok(task)
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        message: Self::Msg,
        _: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ConsumerMessage::Stopped(reason) => Err(reason.into()),
        }
    }

    async fn post_stop(
        &self,
        _: ActorRef<Self::Msg>,
        task: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        task.abort();
        Ok(())
    }
}

/// Messages of the bridge supervisor.
enum SupervisorMessage {
    /// Start (again) the consumer of group `index`.
    Start(usize),
}

/// Keeps one consumer actor per group running.
struct BridgeSupervisor;

struct SupervisorState {
    groups: Vec<Arc<Runtime>>,
    children: HashMap<ActorId, usize>,
    /// When each group's consumer last started, to back off a crash loop.
    started: HashMap<usize, Instant>,
}

impl BridgeSupervisor {
    async fn start(
        myself: &ActorRef<SupervisorMessage>,
        state: &mut SupervisorState,
        index: usize,
    ) {
        let runtime = state.groups[index].clone();
        state.started.insert(index, Instant::now());
        match Actor::spawn_linked(None, ConsumerActor, runtime.clone(), myself.get_cell()).await {
            Ok((actor, _)) => {
                state.children.insert(actor.get_id(), index);
            }
            Err(error) => {
                tracing::warn!(group = %runtime.group, %error, "cannot start the consumer; retrying");
                Self::restart_later(myself, state, index, error.to_string());
            }
        }
    }

    fn restart_later(
        myself: &ActorRef<SupervisorMessage>,
        state: &SupervisorState,
        index: usize,
        reason: String,
    ) {
        let runtime = &state.groups[index];
        runtime.status.restarts.fetch_add(1, Ordering::Relaxed);
        runtime.status.error(&reason);
        runtime.status.set_state("restarting");
        // Straight away after a long run; a second after a quick death.
        let ran = state
            .started
            .get(&index)
            .map_or(Duration::ZERO, Instant::elapsed);
        let wait = if ran > Duration::from_secs(30) {
            Duration::from_millis(50)
        } else {
            Duration::from_secs(1)
        };
        myself.send_after(wait, move || SupervisorMessage::Start(index));
    }
}

impl Actor for BridgeSupervisor {
    type Msg = SupervisorMessage;
    type State = SupervisorState;
    type Arguments = Vec<Arc<Runtime>>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        groups: Vec<Arc<Runtime>>,
    ) -> Result<Self::State, ActorProcessingErr> {
        for index in 0..groups.len() {
            myself.send_message(SupervisorMessage::Start(index))?;
        }
        Ok(SupervisorState {
            groups,
            children: HashMap::new(),
            started: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMessage::Start(index) => Self::start(&myself, state, index).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        if let Some(index) = state.children.remove(&cell.get_id()) {
            tracing::warn!(group = %state.groups[index].group, %reason, "a consumer died: restarting it");
            Self::restart_later(&myself, state, index, reason);
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.children.clear();
        myself.stop_children(Some("the bridge stops".into()));
        Ok(())
    }
}
