//! The inspection snapshot served at `GET /api/v1/admin/supervisor`.

use serde::Serialize;

/// The whole tree at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct TreeSnapshot {
    /// `running`, or `failed` once a child supervisor escalated.
    pub status: String,
    /// The roles this process runs (`all`, or e.g. `catalog,orders`).
    pub roles: String,
    /// The role leases held, with their epochs (`catalog@3,orders@1`); null when
    /// the process takes none (SQLite, or tests).
    pub leases: Option<String>,
    /// Seconds since the tree started.
    pub uptime_seconds: f64,
    /// One entry per entity kind.
    pub supervisors: Vec<KindSnapshot>,
    /// The supervised loops (store writer, event deliveries, sweeper, reconciler,
    /// mailroom), restarted if they panic.
    pub tasks: Vec<TaskSnapshot>,
    /// The Kafka consumer groups of this process (none without `KAFKA_BROKERS`).
    pub consumers: Vec<ConsumerSnapshot>,
    /// Per subscriber of this process, how long its latest events took from
    /// being written to being handled (outbox or Kafka).
    pub event_lag: Vec<pazar_actors::events::LagSummary>,
}

/// A supervised loop.
#[derive(Clone, Debug, Serialize)]
pub struct TaskSnapshot {
    /// e.g. `sweeper`, `store_writer`, `delivery:notifier`.
    pub name: String,
    /// `running`; `stopped` once its work is over; `failed` when it panicked more
    /// often than its restart limit allows (the shop is then not ready).
    pub state: String,
    /// How often it panicked and was started again.
    pub restarts: u32,
    /// What its last panic said.
    pub last_panic: Option<String>,
}

/// One entity supervisor and (some of) its actors.
#[derive(Clone, Debug, Serialize)]
pub struct KindSnapshot {
    /// The entity kind, e.g. `product_stock`.
    pub kind: String,
    /// `running` or `stopped` (after escalation).
    pub status: String,
    /// Entity actors alive now.
    pub alive: usize,
    /// Actors spawned since start (first messages, restarts and reactivations).
    pub spawned_total: u64,
    /// Actors stopped for being idle.
    pub passivated_total: u64,
    /// Actors restarted after a failure.
    pub restarts_total: u64,
    /// Failures counted inside the current restart-intensity window.
    pub recent_failures: usize,
    /// Failures tolerated inside the window before escalating.
    pub max_restarts: u32,
    /// The restart-intensity window in seconds.
    pub restart_window_seconds: f64,
    /// Idle time after which an actor is passivated, in seconds.
    pub idle_timeout_seconds: f64,
    /// The first `limit` actors, ordered by key.
    pub actors: Vec<ActorSnapshot>,
    /// True when `actors` was cut at the limit.
    pub truncated: bool,
}

/// One entity actor.
#[derive(Clone, Debug, Serialize)]
pub struct ActorSnapshot {
    /// The entity key (e.g. a product id).
    pub key: String,
    /// ractor's status of the actor: `running`, `draining`, `stopping`, …
    pub status: String,
    /// How often this key's actor was restarted after a failure.
    pub restarts: u32,
    /// Seconds since this incarnation started.
    pub uptime_seconds: f64,
    /// Seconds since the last message was routed to it.
    pub idle_seconds: f64,
    /// Messages waiting in its mailbox. ractor 0.16 does not expose the queue
    /// length, so this is always `null` for now.
    pub mailbox_depth: Option<usize>,
}

/// One consumer group as the inspection endpoint shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ConsumerSnapshot {
    /// The group id, `{prefix}.{role}`.
    pub group: String,
    /// The topics it reads.
    pub topics: Vec<String>,
    /// The subscribers it feeds.
    pub subscribers: Vec<String>,
    /// `starting`, `running`, or `restarting` (after its consumer died).
    pub state: String,
    /// How often its consumer died and was started again.
    pub restarts: u32,
    /// The last error its consumer saw (broker unreachable, a handler failing…).
    pub last_error: Option<String>,
    /// Events handed to a subscriber and finished.
    pub handled: u64,
    /// Events a subscriber had processed before, skipped.
    pub duplicates_skipped: u64,
    /// Messages turned into dead letters.
    pub dead_letters: u64,
    /// The partitions assigned to it that it has read from.
    pub partitions: Vec<PartitionSnapshot>,
}

/// One partition of a consumer group.
#[derive(Clone, Debug, Serialize)]
pub struct PartitionSnapshot {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset the broker has acknowledged as committed: the next one the
    /// group reads after a restart.
    pub committed: Option<i64>,
    /// The next offset the consumer will read.
    pub position: i64,
    /// Messages read and not yet finished.
    pub in_flight: i64,
    /// The partition's end as the broker last reported it.
    pub high_watermark: Option<i64>,
    /// Messages not yet committed: from the committed offset to the further of
    /// the reported end and what was read (a broker whose reported end lags
    /// behind what it serves — tansu does, for batches — never shows less lag
    /// than the messages in flight).
    pub lag: i64,
}
