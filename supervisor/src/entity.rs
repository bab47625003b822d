//! Entity supervisors: one per kind of entity, spawning actors on demand.
//!
//! The registry (key → actor) is shared: callers read it without a message hop,
//! and only the supervisor actor writes it. A key has at most one actor at a time:
//! while an actor is stopping (passivation, failure) a caller asking for its key
//! waits until it has terminated, and the new actor starts by flushing the store
//! writer, so it always loads what its predecessor committed.

use crate::snapshot::{ActorSnapshot, KindSnapshot};
use dashmap::DashMap;
use pazar_actors::DomainError;
use ractor::rpc::CallResult;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Display;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Describes one kind of entity: how to build its actor for a key.
pub trait EntityKind: Send + Sync + 'static {
    /// The entity's identity, e.g. a product id.
    type Key: Copy + Eq + Hash + Ord + Display + Send + Sync + 'static;
    /// The entity actor.
    type Actor: Actor;
    /// A stable name used in logs, metrics and the snapshot, e.g. `product_stock`.
    const NAME: &'static str;
    /// A fresh actor value (entity actors are empty structs).
    fn actor(&self) -> Self::Actor;
    /// The start arguments for `key`; the actor loads its state from them.
    fn arguments(&self, key: Self::Key) -> <Self::Actor as Actor>::Arguments;
}

type EntityMsg<K> = <<K as EntityKind>::Actor as Actor>::Msg;
type EntityArgs<K> = <<K as EntityKind>::Actor as Actor>::Arguments;
/// Builds an adopted entity's start arguments from its kind (see [`EntityHandle::adopt`]).
type Adoption<K> = Box<dyn FnOnce(&K) -> EntityArgs<K> + Send>;
type LocateReply<K> = RpcReplyPort<Result<ActorRef<EntityMsg<K>>, DomainError>>;

/// How an entity supervisor treats its actors.
#[derive(Clone, Copy, Debug)]
pub struct EntityPolicy {
    /// An actor that received no message for this long is stopped (its state is in the store).
    pub idle_timeout: Duration,
    /// The longest a caller waits for any actor's answer.
    pub call_timeout: Duration,
    /// Failures tolerated within `restart_window` before the supervisor gives up.
    pub max_restarts: u32,
    /// The sliding window for `max_restarts`.
    pub restart_window: Duration,
}

impl Default for EntityPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            call_timeout: Duration::from_secs(5),
            max_restarts: 10,
            restart_window: Duration::from_secs(10),
        }
    }
}

/// One live actor in the registry.
struct Slot<M: ractor::Message> {
    actor: ActorRef<M>,
    /// Milliseconds since the supervisor's epoch when a caller last routed to it.
    last_used_ms: AtomicU64,
    /// Set when it is on its way out; callers then go to the supervisor.
    stopping: bool,
    /// Set when the supervisor drained it for being idle (counted as a passivation).
    passivating: bool,
    started_at: Instant,
    restarts: u32,
}

/// The clock and registry shared by the supervisor and its handles.
struct Shared<K: EntityKind> {
    registry: DashMap<K::Key, Slot<EntityMsg<K>>>,
    epoch: Instant,
}

impl<K: EntityKind> Shared<K> {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// Messages of an entity supervisor.
pub enum EntitySupervisorMessage<K: EntityKind> {
    /// The actor for `key`, spawned if needed (waits while a previous one stops).
    Locate {
        /// The entity key.
        key: K::Key,
        /// Answered with the live actor, or why it could not start.
        reply: LocateReply<K>,
    },
    /// Start the actor for `key` from the state its creator hands over (no
    /// load), unless it is live or starting; nobody waits for it.
    Adopt {
        /// The entity key.
        key: K::Key,
        /// Its start arguments, holding the state.
        arguments: Adoption<K>,
    },
    /// An actor started in the background for a `Locate` or an `Adopt` has
    /// loaded (or failed to).
    Started {
        /// The entity key.
        key: K::Key,
        /// The actor, or why it could not start.
        outcome: Result<ActorRef<EntityMsg<K>>, DomainError>,
    },
    /// Periodic: stop actors idle for longer than the policy allows.
    PassivateIdle,
    /// Inspection.
    Snapshot {
        /// At most this many actors are listed.
        limit: usize,
        /// The snapshot.
        reply: RpcReplyPort<KindSnapshot>,
    },
}

/// The supervisor actor for one entity kind.
pub struct EntitySupervisor<K: EntityKind>(std::marker::PhantomData<fn() -> K>);

impl<K: EntityKind> Default for EntitySupervisor<K> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// Start arguments of an [`EntitySupervisor`].
pub struct EntitySupervisorArgs<K: EntityKind> {
    kind: K,
    policy: EntityPolicy,
    shared: Arc<Shared<K>>,
}

/// The supervisor's private state.
pub struct EntitySupervisorState<K: EntityKind> {
    kind: K,
    policy: EntityPolicy,
    shared: Arc<Shared<K>>,
    /// Which key each live actor serves, to interpret supervision events.
    keys: HashMap<ActorId, K::Key>,
    /// Callers waiting for a stopping actor of their key to terminate, or for
    /// their key's actor to finish starting.
    waiting: HashMap<K::Key, Vec<LocateReply<K>>>,
    /// Keys whose actor is loading in the background (see `spawn_in_background`).
    starting: HashSet<K::Key>,
    /// When recent failures happened, for the restart-intensity limit.
    failures_in_window: VecDeque<Instant>,
    spawned_total: u64,
    passivated_total: u64,
    restarts_total: u64,
}

impl<K: EntityKind> EntitySupervisorState<K> {
    /// Spawns the actor for `key` linked to this supervisor and registers it,
    /// waiting for it to load (used for restarts and replacements, which are rare).
    async fn spawn(
        &mut self,
        supervisor: ActorCell,
        key: K::Key,
        restarts: u32,
    ) -> Result<ActorRef<EntityMsg<K>>, DomainError> {
        let spawned = Actor::spawn_linked(
            None,
            self.kind.actor(),
            self.kind.arguments(key),
            supervisor,
        )
        .await;
        let actor = started::<K>(key, spawned.map(|(actor, _)| actor))?;
        self.register(key, actor.clone(), restarts);
        Ok(actor)
    }

    /// Starts the actor for `key` without waiting for it to load: the supervisor
    /// goes on serving other keys, and `myself` hears [`EntitySupervisorMessage::Started`].
    /// Callers for `key` wait in `waiting` until then.
    fn spawn_in_background(
        &mut self,
        myself: ActorRef<EntitySupervisorMessage<K>>,
        key: K::Key,
        arguments: EntityArgs<K>,
    ) {
        self.starting.insert(key);
        let actor = self.kind.actor();
        tokio::spawn(async move {
            let spawned = Actor::spawn_linked(None, actor, arguments, myself.get_cell()).await;
            let outcome = started::<K>(key, spawned.map(|(actor, _)| actor));
            let told = myself.cast(EntitySupervisorMessage::Started { key, outcome });
            if let Err(ractor::MessagingErr::SendErr(EntitySupervisorMessage::Started {
                outcome: Ok(orphan),
                ..
            })) = told
            {
                // The supervisor stopped while the actor loaded: nobody may use it.
                orphan.stop(Some("its supervisor stopped".into()));
            }
        });
    }

    /// Records a started actor in the registry.
    fn register(&mut self, key: K::Key, actor: ActorRef<EntityMsg<K>>, restarts: u32) {
        self.spawned_total += 1;
        self.keys.insert(actor.get_id(), key);
        self.shared.registry.insert(
            key,
            Slot {
                actor,
                last_used_ms: AtomicU64::new(self.shared.now_ms()),
                stopping: false,
                passivating: false,
                started_at: Instant::now(),
                restarts,
            },
        );
    }

    /// Answers everyone waiting for `key` with a fresh actor (or the start error).
    async fn serve_waiters(&mut self, supervisor: ActorCell, key: K::Key, restarts: u32) {
        let Some(waiters) = self.waiting.remove(&key) else {
            return;
        };
        let live = self
            .shared
            .registry
            .get(&key)
            .filter(|slot| !slot.stopping)
            .map(|slot| slot.actor.clone());
        let answer = match live {
            Some(actor) => Ok(actor),
            None => self.spawn(supervisor, key, restarts).await,
        };
        for reply in waiters {
            let _ = reply.send(answer.clone());
        }
    }

    /// Forgets the actor with `id`; returns its key, its restart count and whether
    /// it was being passivated.
    fn forget(&mut self, id: ActorId) -> Option<(K::Key, u32, bool)> {
        let key = self.keys.remove(&id)?;
        let ours = self
            .shared
            .registry
            .remove_if(&key, |_, slot| slot.actor.get_id() == id);
        Some(match ours {
            Some((_, slot)) => (key, slot.restarts, slot.passivating),
            None => (key, 0, false),
        })
    }
}

impl<K: EntityKind> Actor for EntitySupervisor<K> {
    type Msg = EntitySupervisorMessage<K>;
    type State = EntitySupervisorState<K>;
    type Arguments = EntitySupervisorArgs<K>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let sweep_every = (args.policy.idle_timeout / 4).max(Duration::from_millis(10));
        myself.send_interval(sweep_every, || EntitySupervisorMessage::PassivateIdle);
        Ok(EntitySupervisorState {
            kind: args.kind,
            policy: args.policy,
            shared: args.shared,
            keys: HashMap::new(),
            waiting: HashMap::new(),
            starting: HashSet::new(),
            failures_in_window: VecDeque::new(),
            spawned_total: 0,
            passivated_total: 0,
            restarts_total: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EntitySupervisorMessage::Locate { key, reply } => {
                let existing = state.shared.registry.get_mut(&key).map(|mut slot| {
                    let alive = matches!(
                        slot.actor.get_status(),
                        ActorStatus::Starting | ActorStatus::Running
                    );
                    if !alive {
                        // It is on its way out (retired, drained): wait for it to end.
                        slot.stopping = true;
                    }
                    (slot.stopping, slot.actor.clone())
                });
                match existing {
                    Some((false, actor)) => {
                        let _ = reply.send(Ok(actor));
                    }
                    Some((true, _)) => state.waiting.entry(key).or_default().push(reply),
                    None => {
                        // Loading an actor's state takes a store read: many load at
                        // once, and callers of the same key wait for the one load.
                        state.waiting.entry(key).or_default().push(reply);
                        if !state.starting.contains(&key) {
                            let arguments = state.kind.arguments(key);
                            state.spawn_in_background(myself.clone(), key, arguments);
                        }
                    }
                }
            }
            EntitySupervisorMessage::Adopt { key, arguments } => {
                // A live or starting actor has the state already (the creator
                // committed it before handing it over): it stays as it is.
                if !state.shared.registry.contains_key(&key) && !state.starting.contains(&key) {
                    let arguments = arguments(&state.kind);
                    state.spawn_in_background(myself.clone(), key, arguments);
                }
            }
            EntitySupervisorMessage::Started { key, outcome } => {
                state.starting.remove(&key);
                let outcome = outcome.and_then(|actor| {
                    if matches!(
                        actor.get_status(),
                        ActorStatus::Starting | ActorStatus::Running
                    ) {
                        state.register(key, actor.clone(), 0);
                        Ok(actor)
                    } else {
                        Err(DomainError::Unavailable(format!(
                            "{} {key} stopped as it started",
                            K::NAME
                        )))
                    }
                });
                for reply in state.waiting.remove(&key).unwrap_or_default() {
                    let _ = reply.send(outcome.clone());
                }
            }
            EntitySupervisorMessage::PassivateIdle => {
                let now = state.shared.now_ms();
                let idle_ms = state.policy.idle_timeout.as_millis() as u64;
                for mut slot in state.shared.registry.iter_mut() {
                    let last = slot.last_used_ms.load(Ordering::Relaxed);
                    if !slot.stopping && now.saturating_sub(last) >= idle_ms {
                        slot.stopping = true;
                        slot.passivating = true;
                        // Drain: messages already queued are still handled, later ones
                        // bounce back to their callers, who then ask us again.
                        let _ = slot.actor.drain();
                    }
                }
            }
            EntitySupervisorMessage::Snapshot { limit, reply } => {
                let _ = reply.send(snapshot(state, limit, "running"));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let Some((key, restarts, passivated)) = state.forget(cell.get_id()) else {
                    return Ok(());
                };
                if passivated {
                    state.passivated_total += 1;
                }
                tracing::debug!(kind = K::NAME, %key, ?reason, "entity actor stopped");
                state.serve_waiters(myself.get_cell(), key, restarts).await;
            }
            SupervisionEvent::ActorFailed(cell, error) => {
                let Some((key, restarts, _)) = state.forget(cell.get_id()) else {
                    return Ok(());
                };
                let now = Instant::now();
                state.failures_in_window.push_back(now);
                while state
                    .failures_in_window
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > state.policy.restart_window)
                {
                    state.failures_in_window.pop_front();
                }
                if state.failures_in_window.len() > state.policy.max_restarts as usize {
                    tracing::error!(
                        kind = K::NAME, %key, %error,
                        failures = state.failures_in_window.len(),
                        "restart intensity exceeded: escalating"
                    );
                    for (_, waiters) in state.waiting.drain() {
                        for reply in waiters {
                            let _ = reply.send(Err(DomainError::Unavailable(format!(
                                "the {} supervisor gave up",
                                K::NAME
                            ))));
                        }
                    }
                    state.shared.registry.clear();
                    myself.stop_children(Some("supervisor escalated".into()));
                    return Err(format!(
                        "{}: more than {} failures within {:?} (last: {key}: {error})",
                        K::NAME,
                        state.policy.max_restarts,
                        state.policy.restart_window
                    )
                    .into());
                }
                tracing::warn!(kind = K::NAME, %key, %error, "entity actor failed: restarting");
                state.restarts_total += 1;
                match state.spawn(myself.get_cell(), key, restarts + 1).await {
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(kind = K::NAME, %key, %error, "restart failed; will retry on next message")
                    }
                }
                state
                    .serve_waiters(myself.get_cell(), key, restarts + 1)
                    .await;
            }
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {}
        }
        Ok(())
    }
}

/// A spawn's outcome as callers see it: the actor, or why it could not start (a
/// `DomainError` from its `pre_start`, e.g. NotFound, is passed on as it is).
fn started<K: EntityKind>(
    key: K::Key,
    spawned: Result<ActorRef<EntityMsg<K>>, SpawnErr>,
) -> Result<ActorRef<EntityMsg<K>>, DomainError> {
    match spawned {
        Ok(actor) => Ok(actor),
        Err(SpawnErr::StartupFailed(error)) => Err(error
            .downcast_ref::<DomainError>()
            .cloned()
            .unwrap_or_else(|| {
                DomainError::Unavailable(format!("{} {key} failed to start: {error}", K::NAME))
            })),
        Err(other) => Err(DomainError::Unavailable(format!(
            "{} {key} failed to start: {other}",
            K::NAME
        ))),
    }
}

fn snapshot<K: EntityKind>(
    state: &EntitySupervisorState<K>,
    limit: usize,
    status: &str,
) -> KindSnapshot {
    let now = state.shared.now_ms();
    let mut keys: Vec<K::Key> = state.shared.registry.iter().map(|s| *s.key()).collect();
    keys.sort();
    let truncated = keys.len() > limit;
    let actors = keys
        .into_iter()
        .take(limit)
        .filter_map(|key| {
            let slot = state.shared.registry.get(&key)?;
            Some(ActorSnapshot {
                key: key.to_string(),
                status: format!("{:?}", slot.actor.get_status()).to_lowercase(),
                restarts: slot.restarts,
                uptime_seconds: slot.started_at.elapsed().as_secs_f64(),
                idle_seconds: now.saturating_sub(slot.last_used_ms.load(Ordering::Relaxed)) as f64
                    / 1000.0,
                mailbox_depth: None,
            })
        })
        .collect();
    KindSnapshot {
        kind: K::NAME.to_owned(),
        status: status.to_owned(),
        alive: state.shared.registry.len(),
        spawned_total: state.spawned_total,
        passivated_total: state.passivated_total,
        restarts_total: state.restarts_total,
        recent_failures: state.failures_in_window.len(),
        max_restarts: state.policy.max_restarts,
        restart_window_seconds: state.policy.restart_window.as_secs_f64(),
        idle_timeout_seconds: state.policy.idle_timeout.as_secs_f64(),
        actors,
        truncated,
    }
}

/// How callers reach the entities of one kind.
pub struct EntityHandle<K: EntityKind> {
    supervisor: ActorRef<EntitySupervisorMessage<K>>,
    shared: Arc<Shared<K>>,
    policy: EntityPolicy,
}

impl<K: EntityKind> Clone for EntityHandle<K> {
    fn clone(&self) -> Self {
        Self {
            supervisor: self.supervisor.clone(),
            shared: self.shared.clone(),
            policy: self.policy,
        }
    }
}

impl<K: EntityKind> EntityHandle<K> {
    /// Starts the supervisor for `kind`, linked to `parent`.
    pub async fn start(
        kind: K,
        policy: EntityPolicy,
        parent: ActorCell,
    ) -> Result<Self, DomainError> {
        let shared = Arc::new(Shared {
            registry: DashMap::new(),
            epoch: Instant::now(),
        });
        let args = EntitySupervisorArgs {
            kind,
            policy,
            shared: shared.clone(),
        };
        let (supervisor, _) =
            Actor::spawn_linked(None, EntitySupervisor::<K>::default(), args, parent)
                .await
                .map_err(|e| DomainError::Unavailable(format!("{} supervisor: {e}", K::NAME)))?;
        Ok(Self {
            supervisor,
            shared,
            policy,
        })
    }

    /// Sends a message built by `message` to the actor of `key` and waits for the reply.
    ///
    /// The wait is bounded by the policy's call timeout. If the actor dies with the
    /// message in hand the reply port is dropped and the caller gets `Unavailable`
    /// at once. A message that never reached the actor (it had just stopped) is sent
    /// again to its successor, which is safe because it was never handled.
    pub async fn call<R, F>(&self, key: K::Key, message: F) -> Result<R, DomainError>
    where
        R: Send + 'static,
        F: Fn(RpcReplyPort<R>) -> EntityMsg<K>,
    {
        const ATTEMPTS: usize = 3;
        for attempt in 0..ATTEMPTS {
            // After a message bounced, the registry may still name the dead actor:
            // ask the supervisor, which waits for the successor.
            let actor = self.locate(key, attempt == 0).await?;
            match actor.call(&message, Some(self.policy.call_timeout)).await {
                Ok(CallResult::Success(reply)) => return Ok(reply),
                Ok(CallResult::Timeout) => {
                    return Err(DomainError::Unavailable(format!(
                        "{} {key} did not answer within {:?}",
                        K::NAME,
                        self.policy.call_timeout
                    )))
                }
                Ok(CallResult::SenderError) => {
                    return Err(DomainError::Unavailable(format!(
                        "{} {key} stopped before answering; it is being restarted",
                        K::NAME
                    )))
                }
                Err(_not_delivered) => continue,
            }
        }
        Err(DomainError::Unavailable(format!(
            "{} {key} kept stopping; try again",
            K::NAME
        )))
    }

    /// The live actor for `key`: from the registry (when `use_registry`), or from
    /// the supervisor, which starts it or waits for a stopping one to end.
    async fn locate(
        &self,
        key: K::Key,
        use_registry: bool,
    ) -> Result<ActorRef<EntityMsg<K>>, DomainError> {
        if let Some(slot) = self.shared.registry.get(&key).filter(|_| use_registry) {
            if !slot.stopping {
                slot.last_used_ms
                    .store(self.shared.now_ms(), Ordering::Relaxed);
                return Ok(slot.actor.clone());
            }
        }
        let located = self
            .supervisor
            .call(
                |reply| EntitySupervisorMessage::Locate { key, reply },
                Some(self.policy.call_timeout),
            )
            .await;
        match located {
            Ok(CallResult::Success(answer)) => answer,
            Ok(CallResult::Timeout) => Err(DomainError::Unavailable(format!(
                "the {} supervisor did not answer in time",
                K::NAME
            ))),
            _ => Err(DomainError::Unavailable(format!(
                "the {} supervisor has stopped",
                K::NAME
            ))),
        }
    }

    /// Starts the actor for `key` from state its creator has just committed,
    /// instead of loading it from the store when first asked: `arguments` builds
    /// its start arguments from the kind. Nothing happens when the key's actor is
    /// live or starting (it has that state already). Returns at once; a caller
    /// asking for `key` meanwhile waits for this start.
    pub fn adopt(&self, key: K::Key, arguments: impl FnOnce(&K) -> EntityArgs<K> + Send + 'static) {
        let _ = self.supervisor.cast(EntitySupervisorMessage::Adopt {
            key,
            arguments: Box::new(arguments),
        });
    }

    /// Live actors of this kind.
    pub fn alive(&self) -> usize {
        self.shared.registry.len()
    }

    /// The supervisor's snapshot, listing at most `limit` actors; a stopped
    /// supervisor yields a snapshot with status `stopped` and no actors.
    pub async fn snapshot(&self, limit: usize) -> KindSnapshot {
        let answer = self
            .supervisor
            .call(
                |reply| EntitySupervisorMessage::Snapshot { limit, reply },
                Some(self.policy.call_timeout),
            )
            .await;
        match answer {
            Ok(CallResult::Success(snapshot)) => snapshot,
            _ => KindSnapshot {
                kind: K::NAME.to_owned(),
                status: "stopped".to_owned(),
                alive: 0,
                spawned_total: 0,
                passivated_total: 0,
                restarts_total: 0,
                recent_failures: 0,
                max_restarts: self.policy.max_restarts,
                restart_window_seconds: self.policy.restart_window.as_secs_f64(),
                idle_timeout_seconds: self.policy.idle_timeout.as_secs_f64(),
                actors: Vec::new(),
                truncated: false,
            },
        }
    }

    /// True while the supervisor actor runs (false after it escalated).
    pub fn is_running(&self) -> bool {
        matches!(
            self.supervisor.get_status(),
            ActorStatus::Starting | ActorStatus::Running
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::watch;

    /// An entity whose key 1 takes until `release` to load.
    struct Slow {
        release: watch::Receiver<bool>,
    }

    struct SlowActor;

    impl Actor for SlowActor {
        type Msg = RpcReplyPort<u32>;
        type State = u32;
        type Arguments = (u32, watch::Receiver<bool>);

        async fn pre_start(
            &self,
            _myself: ActorRef<Self::Msg>,
            (key, mut release): Self::Arguments,
        ) -> Result<u32, ActorProcessingErr> {
            if key == 1 {
                let _ = release.wait_for(|released| *released).await;
            }
            Ok(key)
        }

        async fn handle(
            &self,
            _myself: ActorRef<Self::Msg>,
            reply: Self::Msg,
            key: &mut u32,
        ) -> Result<(), ActorProcessingErr> {
            let _ = reply.send(*key);
            Ok(())
        }
    }

    impl EntityKind for Slow {
        type Key = u32;
        type Actor = SlowActor;
        const NAME: &'static str = "slow";

        fn actor(&self) -> SlowActor {
            SlowActor
        }

        fn arguments(&self, key: u32) -> (u32, watch::Receiver<bool>) {
            (key, self.release.clone())
        }
    }

    struct Parent;

    impl Actor for Parent {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    /// The `Slow` kind's supervisor under a fresh parent (stop the parent to end it).
    async fn slow_kind(released: watch::Receiver<bool>) -> (ActorRef<()>, EntityHandle<Slow>) {
        let (parent, _) = Actor::spawn(None, Parent, ()).await.unwrap();
        let handle = EntityHandle::start(
            Slow { release: released },
            EntityPolicy::default(),
            parent.get_cell(),
        )
        .await
        .unwrap();
        (parent, handle)
    }

    /// An actor still loading holds up only the callers of its own key: others
    /// start and answer meanwhile (the supervisor used to await each load in turn,
    /// so every fresh order waited behind every other's store read).
    #[tokio::test]
    async fn a_slow_load_holds_up_only_its_own_key() {
        let (release, released) = watch::channel(false);
        let (parent, handle) = slow_kind(released).await;
        let slow = {
            let handle = handle.clone();
            tokio::spawn(async move { handle.call(1, |reply| reply).await })
        };
        tokio::task::yield_now().await;
        for key in 2..6 {
            let answer = tokio::time::timeout(Duration::from_secs(2), handle.call(key, |r| r))
                .await
                .expect("another key answers while key 1 loads");
            assert_eq!(answer.unwrap(), key);
        }
        assert!(!slow.is_finished());
        release.send(true).unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), 1);
        parent.stop(None);
    }

    /// An adopted actor starts from the arguments handed over (here its state is
    /// 700, where a load would give 7), once: a second adoption of a live key
    /// changes nothing, and other keys still load.
    #[tokio::test]
    async fn an_adopted_actor_starts_from_the_state_handed_over() {
        let (_release, released) = watch::channel(false);
        let (parent, handle) = slow_kind(released).await;
        handle.adopt(7, |kind| (700, kind.release.clone()));
        assert_eq!(handle.call(7, |reply| reply).await.unwrap(), 700);
        handle.adopt(7, |kind| (900, kind.release.clone()));
        assert_eq!(handle.call(7, |reply| reply).await.unwrap(), 700);
        assert_eq!(handle.call(8, |reply| reply).await.unwrap(), 8);
        let snapshot = handle.snapshot(10).await;
        assert_eq!((snapshot.alive, snapshot.spawned_total), (2, 2));
        parent.stop(None);
    }
}
