//! The task supervisor: keeps the tree's long-running loops running.
//!
//! The store writer, each subscriber's event delivery, the sweeper, the payment
//! reconciler and the mailroom are loops, not actors: each is a future started by
//! a factory. [`TaskSupervisor::keep_running`] runs it; when it panics, the panic
//! is logged and counted and the factory starts a fresh run after a pause. A fresh
//! run reloads what it needs from the store (a delivery its cursor, the writer its
//! queue, which outlives the run), so a restart loses nothing that was
//! acknowledged, and what was in flight is redone (idempotently).
//!
//! Like an entity supervisor's restart intensity, a loop that panics more than
//! `max_restarts` times within `window` is given up: it stays stopped, its state is
//! `failed` in the inspection snapshot, and the shop reports itself unhealthy, so
//! `/ready` answers 503 and an orchestrator replaces the process.

use crate::snapshot::TaskSnapshot;
use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a loop is restarted.
#[derive(Clone, Copy, Debug)]
pub struct TaskPolicy {
    /// Panics tolerated inside `window` before the loop is given up.
    pub max_restarts: u32,
    /// The restart-intensity window.
    pub window: Duration,
    /// Pause before a restart (so a loop that panics at once does not spin).
    pub pause: Duration,
}

impl Default for TaskPolicy {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            window: Duration::from_secs(60),
            pause: Duration::from_secs(1),
        }
    }
}

/// One supervised loop.
struct Task {
    name: String,
    restarts: AtomicU32,
    /// Given up after too many panics.
    failed: AtomicBool,
    /// Returned (the shop stopped, or what it serves went away).
    finished: AtomicBool,
    last_panic: Mutex<Option<String>>,
}

/// Runs loops, restarting each after a panic within its [`TaskPolicy`].
#[derive(Clone)]
pub struct TaskSupervisor {
    tasks: Arc<Mutex<Vec<Arc<Task>>>>,
    policy: TaskPolicy,
    stopped: Arc<AtomicBool>,
}

impl TaskSupervisor {
    /// A supervisor whose loops are not restarted once `stopped` is set.
    pub fn new(policy: TaskPolicy, stopped: Arc<AtomicBool>) -> Self {
        Self {
            tasks: Arc::default(),
            policy,
            stopped,
        }
    }

    /// Runs `start()` until it returns (its work is over) or the shop stops; after
    /// a panic, logs and counts it and runs a fresh `start()` after a pause, unless
    /// it panicked too often, in which case it is given up.
    pub fn keep_running<F, Fut>(&self, name: impl Into<String>, start: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let task = Arc::new(Task {
            name: name.into(),
            restarts: AtomicU32::new(0),
            failed: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            last_panic: Mutex::new(None),
        });
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(task.clone());
        let (policy, stopped) = (self.policy, self.stopped.clone());
        tokio::spawn(async move {
            let mut recent = VecDeque::new();
            loop {
                let panic = match tokio::spawn(start()).await {
                    Err(error) if error.is_panic() => panic_message(error.into_panic()),
                    _ => break,
                };
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let now = Instant::now();
                recent.push_back(now);
                while recent
                    .front()
                    .is_some_and(|at| now.duration_since(*at) > policy.window)
                {
                    recent.pop_front();
                }
                *task
                    .last_panic
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(panic.clone());
                if recent.len() > policy.max_restarts as usize {
                    task.failed.store(true, Ordering::Relaxed);
                    tracing::error!(
                        task = %task.name,
                        %panic,
                        "a supervised loop panicked too often; giving it up (the shop is no longer ready)"
                    );
                    return;
                }
                task.restarts.fetch_add(1, Ordering::Relaxed);
                tracing::error!(task = %task.name, %panic, "a supervised loop panicked; restarting it");
                tokio::time::sleep(policy.pause).await;
            }
            task.finished.store(true, Ordering::Relaxed);
        });
    }

    /// The first loop given up, if any.
    pub fn failure(&self) -> Option<String> {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .find(|task| task.failed.load(Ordering::Relaxed))
            .map(|task| format!("the {} loop panicked too often", task.name))
    }

    /// Each loop, its state and how often it was restarted.
    pub fn snapshot(&self) -> Vec<TaskSnapshot> {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|task| TaskSnapshot {
                name: task.name.clone(),
                state: if task.failed.load(Ordering::Relaxed) {
                    "failed"
                } else if task.finished.load(Ordering::Relaxed) {
                    "stopped"
                } else {
                    "running"
                }
                .to_owned(),
                restarts: task.restarts.load(Ordering::Relaxed),
                last_panic: task
                    .last_panic
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .clone(),
            })
            .collect()
    }
}

/// What a panic said, when it said it as text.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervisor(max_restarts: u32) -> TaskSupervisor {
        TaskSupervisor::new(
            TaskPolicy {
                max_restarts,
                window: Duration::from_secs(60),
                pause: Duration::from_millis(1),
            },
            Arc::new(AtomicBool::new(false)),
        )
    }

    async fn until(deadline: Duration, mut condition: impl FnMut() -> bool) {
        let end = Instant::now() + deadline;
        while !condition() {
            assert!(
                Instant::now() < end,
                "condition not met within {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_panicking_loop_is_started_again_and_counted() {
        let tasks = supervisor(5);
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        tasks.keep_running("flaky", move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("first run fails");
                }
            }
        });
        until(Duration::from_secs(10), || {
            tasks.snapshot()[0].state == "stopped"
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let snapshot = tasks.snapshot();
        assert_eq!(snapshot[0].name, "flaky");
        assert_eq!(snapshot[0].restarts, 1);
        assert_eq!(snapshot[0].last_panic.as_deref(), Some("first run fails"));
        assert_eq!(tasks.failure(), None);
    }

    #[tokio::test]
    async fn a_loop_past_its_restart_limit_is_given_up_and_reported() {
        let tasks = supervisor(2);
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        tasks.keep_running("doomed", move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { panic!("always") }
        });
        until(Duration::from_secs(10), || tasks.failure().is_some()).await;
        assert_eq!(
            tasks.failure().as_deref(),
            Some("the doomed loop panicked too often")
        );
        // The first run and two restarts; the third panic within the window gives up.
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let snapshot = tasks.snapshot();
        assert_eq!(
            (snapshot[0].state.as_str(), snapshot[0].restarts),
            ("failed", 2)
        );
    }
}
