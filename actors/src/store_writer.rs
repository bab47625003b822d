//! The store writer: group commit for every entity actor of a store (stock
//! changes, the orders checkouts create, orders' status transitions and payment
//! sessions' updates).
//!
//! An entity actor validates a message against its memory, applies it there, and
//! [`submit`](StoreWriter::submit)s the durable change with a completion that
//! answers the caller. The writer takes everything queued, commits it in **one**
//! transaction, and only then runs the completions. While one commit runs the next
//! batch gathers, so batches grow with load and stay at one write when it is quiet.
//!
//! The queue is bounded: when the store falls behind, `submit` waits for room, and
//! callers see that wait through their call timeout rather than through unbounded
//! memory growth.

use crate::events::{Event, EventSignal, EventType, Handled};
use crate::ports::WriteSet;
use crate::{
    DomainError, Order, OrderTransition, PaymentSession, ProductId, StockChange, StockLevels,
    Store, StoreError,
};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Runs once the write it belongs to is committed (`Ok`) or has failed (`Err`).
pub type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send + 'static>;

/// One durable change the writer commits for an entity actor.
pub enum Write {
    /// A stock change of a ProductStock actor.
    Stock {
        /// The change.
        change: StockChange,
        /// The product's levels once it is applied, for its event.
        levels: StockLevels,
    },
    /// A checkout's new order (its `orders.created` event is written with it and
    /// its user's cart is emptied).
    CreateOrder(Box<Order>),
    /// An order's status transition and its event.
    Transition {
        /// The move.
        transition: OrderTransition,
        /// Its event (`orders.<status>`).
        event: Box<Event>,
    },
    /// A new payment session (its order's provider intent, just created);
    /// `Conflict` if the order has one.
    OpenPayment(Box<PaymentSession>),
    /// A payment session's new status, with its event if the change has one.
    Payment {
        /// The session as it now stands.
        session: Box<PaymentSession>,
        /// `payments.<status>`, for a change others hear about.
        event: Option<Box<Event>>,
    },
}

enum Command {
    Write {
        write: Write,
        on_done: Pending,
        /// The submitter's trace (`traceparent`), stamped on the write's events.
        trace: Option<String>,
        /// The message the write applies, recorded in its transaction.
        handled: Option<Handled>,
    },
    /// Answered once every write queued before it is committed (or failed).
    Barrier(oneshot::Sender<()>),
}

/// Tuning of the writer.
#[derive(Clone, Copy, Debug)]
pub struct StoreWriterConfig {
    /// Writes that may wait in the queue before `submit` waits for room.
    pub queue_capacity: usize,
    /// The most writes committed in one transaction.
    pub max_batch: usize,
}

impl Default for StoreWriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 8192,
            max_batch: 512,
        }
    }
}

/// A cheap, clonable handle to the store's one writer task.
#[derive(Clone)]
pub struct StoreWriter {
    queue: mpsc::Sender<Command>,
}

/// The writer's loop, to be run (and, after a panic, run again) by a supervisor.
/// The queue belongs to it, not to a run: writes queued while a run restarts wait
/// for the next one. The writes of the batch a panic interrupted are answered with
/// an error (their callers were not told they were committed).
#[derive(Clone)]
pub struct WriterLoop {
    store: Arc<dyn Store>,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Command>>>,
    max_batch: usize,
    signal: EventSignal,
}

impl WriterLoop {
    /// One run of the loop; returns when every [`StoreWriter`] handle is dropped.
    pub fn run(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move {
            let mut receiver = this.receiver.lock_owned().await;
            run(&*this.store, &mut receiver, this.max_batch, &this.signal).await;
        }
    }
}

impl StoreWriter {
    /// The writer's handle and its loop, not yet running; `signal` is raised after
    /// every commit (each writes events).
    pub fn new(
        store: Arc<dyn Store>,
        config: StoreWriterConfig,
        signal: EventSignal,
    ) -> (Self, WriterLoop) {
        let (queue, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let run = WriterLoop {
            store,
            receiver: Arc::new(tokio::sync::Mutex::new(receiver)),
            max_batch: config.max_batch.max(1),
            signal,
        };
        (Self { queue }, run)
    }

    /// Starts the writer's loop on a task of its own, unsupervised (tests and
    /// benchmarks; the shop runs it under its task supervisor). The task ends
    /// when every handle is dropped.
    pub fn start(
        store: Arc<dyn Store>,
        config: StoreWriterConfig,
        signal: EventSignal,
    ) -> (Self, JoinHandle<()>) {
        let (writer, run) = Self::new(store, config, signal);
        (writer, tokio::spawn(run.run()))
    }

    /// Queues a write; `on_done` runs after its transaction commits or fails, or
    /// with [`StoreError::Interrupted`] if the writer stops before it knows which.
    pub async fn submit(&self, write: Write, on_done: Completion) -> Result<(), DomainError> {
        self.submit_handled(write, None, on_done).await
    }

    /// [`submit`](Self::submit) for a write that applies a message the Kafka
    /// bridge is handling: `handled`, its record, commits in the same
    /// transaction, so the write and the record exist together or not at all.
    pub async fn submit_handled(
        &self,
        write: Write,
        handled: Option<Handled>,
        on_done: Completion,
    ) -> Result<(), DomainError> {
        let on_done = Pending(Some(on_done));
        let trace = crate::trace::current().map(|context| context.header());
        self.queue
            .send(Command::Write {
                write,
                on_done,
                trace,
                handled,
            })
            .await
            .map_err(|_| DomainError::Unavailable("the store writer has stopped".into()))
    }

    /// Queues a write and waits until it is committed (`Ok`) or has failed.
    pub async fn write(&self, write: Write) -> Result<(), DomainError> {
        self.write_handled(write, None).await
    }

    /// [`write`](Self::write) with the record of the message it applies
    /// (see [`submit_handled`](Self::submit_handled)).
    pub async fn write_handled(
        &self,
        write: Write,
        handled: Option<Handled>,
    ) -> Result<(), DomainError> {
        let (done, committed) = oneshot::channel();
        let on_done = Box::new(move |outcome: Result<(), StoreError>| {
            let _ = done.send(outcome);
        });
        self.submit_handled(write, handled, on_done).await?;
        committed
            .await
            .unwrap_or(Err(StoreError::Interrupted))
            .map_err(DomainError::from)
    }

    /// Waits until everything submitted before this call has been committed or failed.
    ///
    /// An entity actor calls this before loading its state, so a restarted actor
    /// never reads the store while its predecessor's last writes are still queued.
    pub async fn flush(&self) -> Result<(), DomainError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Command::Barrier(done))
            .await
            .map_err(|_| DomainError::Unavailable("the store writer has stopped".into()))?;
        wait.await
            .map_err(|_| DomainError::Unavailable("the store writer has stopped".into()))
    }
}

async fn run(
    store: &dyn Store,
    receiver: &mut mpsc::Receiver<Command>,
    max_batch: usize,
    signal: &EventSignal,
) {
    let mut commands = Vec::with_capacity(max_batch);
    let mut last_batch = 0;
    while receiver.recv_many(&mut commands, max_batch).await > 0 {
        gather(receiver, &mut commands, last_batch, max_batch).await;
        crate::faults::point("store_writer");
        last_batch = commands.len();
        let mut batch = Batch::with_capacity(commands.len());
        let mut completions = Vec::with_capacity(commands.len());
        let mut barriers = Vec::new();
        for command in commands.drain(..) {
            match command {
                Command::Write {
                    write,
                    on_done,
                    trace,
                    handled,
                } => {
                    batch.push(write, trace, handled);
                    completions.push(on_done);
                }
                Command::Barrier(done) => barriers.push(done),
            }
        }
        if !completions.is_empty() {
            let outcomes = commit_isolating(completions.len(), |writes, failed| {
                batch.commit(store, writes, failed)
            })
            .await;

            let committed = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
            if committed > 0 {
                tracing::trace!(writes = committed, "batch committed");
                signal.committed_types(batch.event_types());
            }
            for (on_done, outcome) in completions.into_iter().zip(outcomes) {
                on_done.finish(outcome);
            }
        }
        for done in barriers {
            let _ = done.send(());
        }
    }
}

/// A completion not yet run. Dropped unrun (the writer's run panicked, or the
/// writer stopped with writes queued), it runs with [`StoreError::Interrupted`]:
/// every caller hears something, and an entity actor that applied the change to
/// its memory reloads from the store.
struct Pending(Option<Completion>);

impl Pending {
    fn finish(mut self, outcome: Result<(), StoreError>) {
        if let Some(on_done) = self.0.take() {
            on_done(outcome);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(on_done) = self.0.take() {
            on_done(Err(StoreError::Interrupted));
        }
    }
}

/// Lets the callers answered by the last commit come back before committing again.
///
/// When a batch of `n` writes commits, its `n` callers are answered and most send
/// their next write at once; but the first to arrive would otherwise be committed
/// alone while the rest queue behind it, and batches would alternate between large
/// and tiny — two commits where one would do. So the writer yields to let the
/// answered callers run, taking what they queue, until at least `expected` writes
/// (the last batch's size) are queued and a yield brings no more — at most a
/// bounded number of times, and with no timer, so a quiet store (where `expected`
/// is 1) never waits. Returns how many times it yielded.
async fn gather(
    receiver: &mut mpsc::Receiver<Command>,
    commands: &mut Vec<Command>,
    expected: usize,
    max_batch: usize,
) -> usize {
    const MOST_YIELDS: usize = 32;
    let mut yields = 0;
    while expected > 1 && yields < MOST_YIELDS && commands.len() < max_batch {
        tokio::task::yield_now().await;
        yields += 1;
        let before = commands.len();
        while commands.len() < max_batch {
            match receiver.try_recv() {
                Ok(command) => commands.push(command),
                Err(_) => break,
            }
        }
        if commands.len() == before && commands.len() >= expected {
            break;
        }
    }
    yields
}

/// How many writes of each kind came before a write of a batch.
#[derive(Clone, Copy, Default)]
struct Counts {
    stock: usize,
    orders: usize,
    transitions: usize,
    opened: usize,
    payments: usize,
    /// Events of transitions and payment updates.
    events: usize,
    /// Records of handled messages.
    handled: usize,
}

/// The writes of one batch, by kind, in submission order. Writes `a..b` are the
/// stock changes `before[a].stock..before[b].stock`, and likewise for each kind,
/// so any run of writes is one slice per kind.
struct Batch {
    changes: Vec<StockChange>,
    levels: Vec<StockLevels>,
    orders: Vec<Order>,
    /// The trace of each new order's checkout, for its `orders.created`.
    order_traces: Vec<Option<String>>,
    transitions: Vec<OrderTransition>,
    /// New payment sessions.
    opened: Vec<PaymentSession>,
    /// Payment sessions' updates.
    payments: Vec<PaymentSession>,
    /// The events of transitions and payment updates, in submission order.
    events: Vec<Event>,
    /// The records of the messages writes apply (most writes apply none).
    handled: Vec<Handled>,
    before: Vec<Counts>,
}

impl Batch {
    fn with_capacity(capacity: usize) -> Self {
        let mut before = Vec::with_capacity(capacity + 1);
        before.push(Counts::default());
        Self {
            changes: Vec::with_capacity(capacity),
            levels: Vec::with_capacity(capacity),
            orders: Vec::new(),
            order_traces: Vec::new(),
            transitions: Vec::new(),
            opened: Vec::new(),
            payments: Vec::new(),
            events: Vec::new(),
            handled: Vec::new(),
            before,
        }
    }

    /// Adds a write; `trace` is its submitter's, for the events it causes (a
    /// product's stock events sum many writes and carry none); `handled`, the
    /// record of the message it applies, if any.
    fn push(&mut self, write: Write, trace: Option<String>, handled: Option<Handled>) {
        let traced = |mut event: Event| {
            if event.traceparent.is_none() {
                event.traceparent.clone_from(&trace);
            }
            event
        };
        self.handled.extend(handled);
        match write {
            Write::Stock { change, levels } => {
                self.changes.push(change);
                self.levels.push(levels);
            }
            Write::CreateOrder(order) => {
                self.orders.push(*order);
                self.order_traces.push(trace.clone());
            }
            Write::Transition { transition, event } => {
                self.transitions.push(transition);
                self.events.push(traced(*event));
            }
            Write::OpenPayment(session) => self.opened.push(*session),
            Write::Payment { session, event } => {
                self.payments.push(*session);
                self.events.extend(event.map(|event| traced(*event)));
            }
        }
        self.before.push(Counts {
            stock: self.changes.len(),
            orders: self.orders.len(),
            transitions: self.transitions.len(),
            opened: self.opened.len(),
            payments: self.payments.len(),
            events: self.events.len(),
            handled: self.handled.len(),
        });
    }

    /// Commits writes `writes` in one transaction. `failed` are the writes of this
    /// batch that have already failed, whose effect the levels of later writes of
    /// the same product must not include in their events.
    async fn commit(
        &self,
        store: &dyn Store,
        writes: Range<usize>,
        failed: Vec<usize>,
    ) -> Result<(), StoreError> {
        let (from, to) = (self.before[writes.start], self.before[writes.end]);
        let orders = &self.orders[from.orders..to.orders];
        let mut events = batch_events(
            &self.changes[from.stock..to.stock],
            &self.levels[from.stock..to.stock],
            &self.failed_effects(&failed, from.stock),
        );
        let traces = &self.order_traces[from.orders..to.orders];
        events.extend(orders.iter().zip(traces).map(|(order, trace)| {
            let mut event = order.event();
            event.traceparent.clone_from(trace);
            event
        }));
        events.extend_from_slice(&self.events[from.events..to.events]);
        let set = WriteSet {
            stock: &self.changes[from.stock..to.stock],
            orders,
            transitions: &self.transitions[from.transitions..to.transitions],
            opened: &self.opened[from.opened..to.opened],
            payments: &self.payments[from.payments..to.payments],
            handled: self.handled_of(writes),
        };
        store.commit_batch(&set, &events).await
    }

    /// The types of event the batch writes (or may: a superset wakes a
    /// subscriber for nothing, never misses one).
    fn event_types(&self) -> Vec<EventType> {
        let mut types = Vec::new();
        if !self.changes.is_empty() {
            types.extend([EventType::StockChanged, EventType::ProductDeleted]);
        }
        if !self.orders.is_empty() {
            types.push(EventType::OrderCreated);
        }
        for event in &self.events {
            match event.event_type() {
                Some(kind) => types.push(kind),
                None => return EventType::ALL.to_vec(),
            }
        }
        types.sort_unstable_by_key(|kind| *kind as usize);
        types.dedup();
        types
    }

    /// The records of the messages writes `writes` apply.
    fn handled_of(&self, writes: Range<usize>) -> &[Handled] {
        &self.handled[self.before[writes.start].handled..self.before[writes.end].handled]
    }

    /// Per product, the (on_hand, reserved) the failed stock writes before
    /// `before` (a stock index) had added to the levels that follow them.
    fn failed_effects(&self, failed: &[usize], before: usize) -> HashMap<ProductId, (i64, i64)> {
        let mut effects = HashMap::new();
        for &write in failed {
            let index = self.before[write].stock;
            if index >= before || self.before[write + 1].stock == index {
                continue; // a later write, or not a stock change
            }
            if let Some((product_id, effect)) = effect(&self.changes[index]) {
                let entry: &mut (i64, i64) = effects.entry(product_id).or_default();
                entry.0 += effect.0;
                entry.1 += effect.1;
            }
        }
        effects
    }
}

/// What a stock change does to its product's (on_hand, reserved).
fn effect(change: &StockChange) -> Option<(ProductId, (i64, i64))> {
    match change {
        StockChange::Reserve {
            product_id,
            reservation,
        } => Some((*product_id, (0, reservation.quantity))),
        StockChange::Release {
            product_id,
            quantity,
            ..
        } => Some((*product_id, (0, -quantity))),
        StockChange::Commit {
            product_id,
            quantity,
            ..
        } => Some((*product_id, (-quantity, -quantity))),
        StockChange::Adjust {
            product_id, delta, ..
        } => Some((*product_id, (*delta, 0))),
        StockChange::Return {
            product_id,
            quantity,
            ..
        } => Some((*product_id, (*quantity, 0))),
        StockChange::Retire { .. } => None,
    }
}

/// Commits writes `0..count` with `commit`, isolating failures: the whole run is
/// tried as one transaction; if the database refuses it
/// ([`StoreError::Rejected`]), it is split in halves, each tried on its own, down
/// to single writes, so a refused write fails alone and every other write commits.
/// Writes are committed in order; `commit` is told which writes failed before.
/// Any other error (the database unreachable) fails the whole run at once.
///
/// The happy path is one transaction, as before; a poisoned write among `n` costs
/// about `2·log2(n)` extra transactions.
pub(crate) async fn commit_isolating<F, Fut>(
    count: usize,
    mut commit: F,
) -> Vec<Result<(), StoreError>>
where
    F: FnMut(Range<usize>, Vec<usize>) -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let mut outcomes: Vec<Option<Result<(), StoreError>>> = vec![None; count];
    let mut failed: Vec<usize> = Vec::new();
    // Runs still to try, the next one last.
    let mut pending: Vec<Range<usize>> = Vec::with_capacity(16);
    pending.push(0..count);
    while let Some(writes) = pending.pop() {
        if writes.is_empty() {
            continue;
        }
        match commit(writes.clone(), failed.clone()).await {
            Ok(()) => outcomes[writes].fill(Some(Ok(()))),
            // A refused write, or a transition whose order moved on (another
            // process): find it by halves.
            Err(StoreError::Rejected(_) | StoreError::Conflict { .. }) if writes.len() > 1 => {
                let middle = writes.start + writes.len() / 2;
                pending.push(middle..writes.end);
                pending.push(writes.start..middle);
            }
            Err(error) => {
                tracing::error!(%error, writes = writes.len(), "writes failed to commit");
                failed.extend(writes.clone());
                outcomes[writes].fill(Some(Err(error)));
            }
        }
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every write is tried"))
        .collect()
}

/// One event per product touched by the batch: `catalog.stock_changed` with its
/// levels after the batch, or `catalog.product_deleted` if it was retired.
/// `failed` is subtracted from a product's levels (see [`Batch::failed_effects`]).
fn batch_events(
    changes: &[StockChange],
    levels: &[StockLevels],
    failed: &HashMap<ProductId, (i64, i64)>,
) -> Vec<Event> {
    let mut order: Vec<ProductId> = Vec::new();
    let mut last: HashMap<ProductId, Option<StockLevels>> = HashMap::new();
    for (change, after) in changes.iter().zip(levels) {
        let (product_id, outcome) = match change {
            StockChange::Retire { product_id } => (*product_id, None),
            StockChange::Reserve { product_id, .. }
            | StockChange::Release { product_id, .. }
            | StockChange::Commit { product_id, .. }
            | StockChange::Adjust { product_id, .. }
            | StockChange::Return { product_id, .. } => (*product_id, Some(*after)),
        };
        if last.insert(product_id, outcome).is_none() {
            order.push(product_id);
        }
    }
    order
        .into_iter()
        .map(|product_id| match last[&product_id] {
            Some(levels) => {
                let levels = match failed.get(&product_id) {
                    Some((on_hand, reserved)) => {
                        StockLevels::new(levels.on_hand - on_hand, levels.reserved - reserved)
                    }
                    None => levels,
                };
                crate::catalog::stock_changed_event(product_id, levels)
            }
            None => crate::catalog::product_deleted_event(product_id),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use std::collections::BTreeSet;

    fn barrier() -> Command {
        Command::Barrier(oneshot::channel().0)
    }

    /// A write dropped unanswered (its run panicked, or the writer stopped with it
    /// queued) still answers its caller, with `Interrupted`; a finished one answers
    /// exactly once.
    #[test]
    fn a_write_dropped_unanswered_hears_interrupted() {
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let on_done = |heard: Arc<std::sync::Mutex<Vec<_>>>| -> Completion {
            Box::new(move |outcome| heard.lock().unwrap().push(outcome))
        };
        drop(Pending(Some(on_done(heard.clone()))));
        Pending(Some(on_done(heard.clone()))).finish(Ok(()));
        assert_eq!(
            *heard.lock().unwrap(),
            [Err(StoreError::Interrupted), Ok(())]
        );
    }

    /// After a batch of 64 is answered, its callers come back a few task hops
    /// later: the next batch waits for them instead of committing the first alone
    /// (batches alternated 63, 1, 63, 1… and took two commits per round).
    // One thread: the interleaving is the scheduler's, not the machine's load.
    #[tokio::test]
    async fn the_answered_callers_of_a_batch_make_the_next_one() {
        let (queue, mut receiver) = mpsc::channel(1024);
        let mut commands = vec![barrier()];
        for _ in 1..64 {
            let queue = queue.clone();
            tokio::spawn(async move {
                // Reply, actor mailbox, actor: a few hops before the next write.
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                let _ = queue.send(barrier()).await;
            });
        }
        // The writer is a task among the callers' tasks, as in `StoreWriter::start`.
        let gathered = tokio::spawn(async move {
            gather(&mut receiver, &mut commands, 64, 512).await;
            commands.len()
        });
        assert_eq!(gathered.await.unwrap(), 64);
    }

    #[tokio::test]
    async fn a_quiet_store_never_waits_to_gather() {
        let (_queue, mut receiver) = mpsc::channel(8);
        let mut commands = vec![barrier()];
        assert_eq!(gather(&mut receiver, &mut commands, 1, 512).await, 0);
        assert_eq!(commands.len(), 1);
    }

    /// Property: for any batch size and any set of poisoned writes, exactly the
    /// poisoned writes fail, every other write commits exactly once and in order,
    /// and no transaction that holds a poisoned write is counted as committed.
    #[tokio::test]
    async fn refused_writes_fail_alone_and_the_rest_commit_once_in_order() {
        let mut rng = StdRng::seed_from_u64(0x9a2a);
        for case in 0..500 {
            let count = rng.gen_range(1..=300);
            let poisoned: BTreeSet<usize> = (0..rng.gen_range(0..=4))
                .map(|_| rng.gen_range(0..count))
                .collect();
            let mut committed = Vec::new();
            let mut transactions = 0;
            let outcomes = commit_isolating(count, |writes, failed| {
                transactions += 1;
                // What the writer is told has failed is exactly the poisoned
                // writes before this run.
                let expected: Vec<usize> = poisoned.range(..writes.start).copied().collect();
                assert_eq!(failed, expected, "case {case}");
                let refused = poisoned.range(writes.clone()).next().is_some();
                if !refused {
                    committed.extend(writes);
                }
                async move {
                    if refused {
                        Err(StoreError::Rejected(crate::error::Cause::message(
                            "poisoned",
                        )))
                    } else {
                        Ok(())
                    }
                }
            })
            .await;
            for (i, outcome) in outcomes.iter().enumerate() {
                assert_eq!(
                    outcome.is_err(),
                    poisoned.contains(&i),
                    "case {case}, write {i}"
                );
            }
            let expected: Vec<usize> = (0..count).filter(|i| !poisoned.contains(i)).collect();
            assert_eq!(committed, expected, "case {case}");
            // The happy path is one transaction; each poisoned write costs a bisection.
            let bound = 1 + poisoned.len() * 2 * (usize::BITS - count.leading_zeros()) as usize;
            assert!(
                transactions <= bound,
                "case {case}: {transactions} > {bound}"
            );
        }
    }

    /// A store that cannot be reached fails the whole run at once: no bisection.
    #[tokio::test]
    async fn an_unreachable_store_fails_the_batch_without_bisecting() {
        let mut transactions = 0;
        let outcomes = commit_isolating(512, |_, _| {
            transactions += 1;
            async {
                Err(StoreError::Other(crate::error::Cause::message(
                    "connection refused",
                )))
            }
        })
        .await;
        assert_eq!(transactions, 1);
        assert!(outcomes.iter().all(Result::is_err));
    }

    /// A transition whose order moved on (another process wrote it) fails alone:
    /// the other orders' transitions in its batch commit.
    #[tokio::test]
    async fn a_conflicting_transition_fails_alone() {
        let outcomes = commit_isolating(8, |writes, _| async move {
            if writes.contains(&5) {
                Err(StoreError::Conflict {
                    constraint: "orders_status".into(),
                })
            } else {
                Ok(())
            }
        })
        .await;
        let failed: Vec<usize> = (0..8).filter(|i| outcomes[*i].is_err()).collect();
        assert_eq!(failed, vec![5]);
    }

    /// The levels of a product's later writes no longer count a failed write.
    #[test]
    fn events_after_a_failed_write_leave_its_effect_out() {
        let product_id = ProductId::new();
        let adjust = |delta| Write::Stock {
            change: StockChange::Adjust {
                product_id,
                delta,
                reason: String::new(),
            },
            levels: StockLevels::new(10 + delta, 0),
        };
        let mut batch = Batch::with_capacity(2);
        batch.push(adjust(5), None, None); // fails
        batch.push(adjust(5 + 3), None, None); // memory counted the failed +5
        let effects = batch.failed_effects(&[0], 1);
        let events = batch_events(&batch.changes[1..], &batch.levels[1..], &effects);
        assert_eq!(events[0].data["on_hand"], 13);
    }

    /// Each run of writes a batch commits carries the records of exactly the
    /// messages its writes apply: a write that fails alone takes its record
    /// with it, and the others' records commit with them.
    #[test]
    fn a_write_carries_its_handled_record_into_its_own_transaction() {
        let product_id = ProductId::new();
        let adjust = || Write::Stock {
            change: StockChange::Adjust {
                product_id,
                delta: 1,
                reason: String::new(),
            },
            levels: StockLevels::new(1, 0),
        };
        let record = |n: u128| Handled {
            subscriber: "inbound-stock".into(),
            message: uuid::Uuid::from_u128(n),
        };
        let mut batch = Batch::with_capacity(4);
        batch.push(adjust(), None, Some(record(1)));
        batch.push(adjust(), None, None);
        batch.push(adjust(), None, Some(record(3)));
        batch.push(adjust(), None, Some(record(4)));
        assert_eq!(batch.handled_of(0..4), [record(1), record(3), record(4)]);
        assert_eq!(batch.handled_of(0..2), [record(1)]);
        assert_eq!(batch.handled_of(1..2), []);
        assert_eq!(batch.handled_of(2..3), [record(3)]);
        assert_eq!(batch.handled_of(3..4), [record(4)]);
    }
}
