//! The process allocator, and giving memory back after passivation.
//!
//! Binaries install [`Allocator`] as their `#[global_allocator]` and build their
//! tokio runtime with [`on_worker_park`] as the `on_thread_park` hook. mimalloc
//! keeps freed memory in per-thread heaps for reuse, so when many entity actors are
//! passivated at once the resident size stays high. [`spawn_reclaimer`] notices a
//! large drop in live actors and requests a release; each worker thread performs
//! it for its own heap the next time it goes idle, and the resident size falls back
//! near where it was. This crate is the only place with `unsafe` code: one FFI
//! call without preconditions.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many releases have been requested so far.
static RELEASES_REQUESTED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// How many of those this thread has performed.
    static RELEASES_DONE: Cell<u64> = const { Cell::new(0) };
}

/// Asks every worker thread to release its free memory when it next goes idle.
pub fn request_release() {
    RELEASES_REQUESTED.fetch_add(1, Ordering::SeqCst);
}

/// The tokio `on_thread_park` hook: performs a requested release on this thread.
pub fn on_worker_park() {
    let requested = RELEASES_REQUESTED.load(Ordering::Relaxed);
    RELEASES_DONE.with(|done| {
        if done.get() < requested {
            done.set(requested);
            release_free_memory();
        }
    });
}

/// The allocator to install with `#[global_allocator]`.
pub type Allocator = mimalloc::MiMalloc;

/// Asks the allocator to return the free memory of this thread's heap (and any
/// abandoned by finished threads) to the system.
pub fn release_free_memory() {
    // SAFETY: `mi_collect` takes a plain bool, has no preconditions and may be
    // called from any thread at any time; it only walks mimalloc's own free lists.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Every `period`, compares `alive()` with its previous value and releases free
/// memory when at least `threshold` actors went away since the last release.
pub fn spawn_reclaimer<F>(
    alive: F,
    period: Duration,
    threshold: usize,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> usize + Send + 'static,
{
    tokio::spawn(async move {
        let mut peak = alive();
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            let now = alive();
            if now + threshold <= peak {
                tracing::debug!(
                    from = peak,
                    to = now,
                    "releasing memory of passivated actors"
                );
                request_release();
                peak = now;
            }
            peak = peak.max(now);
        }
    })
}
