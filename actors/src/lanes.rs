//! Keyed lanes: work ordered per key and concurrent across keys, with a
//! watermark of what is done.
//!
//! A stream of positioned items (outbox events by `seq`; Kafka messages by offset,
//! one set of lanes per partition) is fanned out to a fixed number of lanes by the
//! hash of each item's key (the event's subject). A lane works through its items
//! one at a time, so one key's items are handled in order; different lanes run at
//! once, so a slow subject no longer holds up every other, and the writes of many
//! handlers share the store writer's group commits.
//!
//! The **watermark** is the highest position at and below which every item is
//! done (handled, or passed over as unwanted). It only grows. A consumer saves it
//! as its cursor (or commits it as its offset): after a crash it resumes just after
//! the watermark, redelivering at most the items that were in flight — which
//! idempotent handlers absorb, exactly as before.
//!
//! Each lane holds at most `depth` items; when the lane an item hashes to is full,
//! [`KeyedLanes::dispatch`] waits, so memory stays bounded however far behind the
//! handlers are.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Positions dispatched and not yet done, and the watermark they imply.
struct Progress {
    state: Mutex<Positions>,
    watermark: watch::Sender<i64>,
}

struct Positions {
    /// Dispatched to a lane and not yet done.
    in_flight: BTreeSet<i64>,
    /// The highest position dispatched or passed.
    highest: i64,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, Positions> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes the watermark of `positions` if it moved.
    fn publish(&self, positions: &Positions) {
        let watermark = match positions.in_flight.first() {
            Some(oldest) => oldest - 1,
            None => positions.highest,
        };
        self.watermark.send_if_modified(|current| {
            let moved = watermark > *current;
            if moved {
                *current = watermark;
            }
            moved
        });
    }
}

/// Lanes for items of type `T`; dropping it stops the lanes (items in them are
/// abandoned, and stay after the watermark to be delivered again).
pub struct KeyedLanes<T> {
    lanes: Vec<mpsc::Sender<(i64, T)>>,
    progress: Arc<Progress>,
    tasks: Vec<JoinHandle<()>>,
}

impl<T: Send + 'static> KeyedLanes<T> {
    /// Starts `lanes` lanes of `depth` items each, resuming after position `after`;
    /// each item is handed to `work`, which returns when the item is done (it
    /// retries on its own; the lanes do not).
    pub fn start<W, F>(lanes: usize, depth: usize, after: i64, work: W) -> Self
    where
        W: Fn(T) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let progress = Arc::new(Progress {
            state: Mutex::new(Positions {
                in_flight: BTreeSet::new(),
                highest: after,
            }),
            watermark: watch::channel(after).0,
        });
        let work = Arc::new(work);
        let (senders, tasks) = (0..lanes.max(1))
            .map(|_| {
                let (sender, mut receiver) = mpsc::channel::<(i64, T)>(depth.max(1));
                let (work, progress) = (work.clone(), progress.clone());
                let task = tokio::spawn(async move {
                    while let Some((position, item)) = receiver.recv().await {
                        work(item).await;
                        let mut positions = progress.lock();
                        positions.in_flight.remove(&position);
                        progress.publish(&positions);
                    }
                });
                (sender, task)
            })
            .unzip();
        Self {
            lanes: senders,
            progress,
            tasks,
        }
    }

    /// Hands `item` at `position` to the lane of `key`, waiting while that lane is
    /// full. Positions must increase from one call (of this or [`pass`](Self::pass))
    /// to the next.
    pub async fn dispatch(&self, position: i64, key: &str, item: T) {
        // Wait for room first: a dispatch abandoned while waiting leaves no trace.
        let room = self.lanes[lane_of(key, self.lanes.len())].reserve().await;
        let mut positions = self.progress.lock();
        debug_assert!(position > positions.highest, "positions must increase");
        positions.in_flight.insert(position);
        positions.highest = position;
        match room {
            Ok(room) => room.send((position, item)),
            // The lane's task is gone (only when the runtime shuts down): the item
            // stays in flight, so the watermark never passes it.
            Err(_) => tracing::warn!(position, "a delivery lane has stopped"),
        }
    }

    /// Records that the item at `position` needs no work (e.g. an event type the
    /// subscriber does not want).
    pub fn pass(&self, position: i64) {
        let mut positions = self.progress.lock();
        debug_assert!(position > positions.highest, "positions must increase");
        positions.highest = position;
        self.progress.publish(&positions);
    }

    /// The watermark: every position up to and including it is done.
    pub fn watermark(&self) -> watch::Receiver<i64> {
        self.progress.watermark.subscribe()
    }
}

impl<T> Drop for KeyedLanes<T> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The lane of a key: the same key always goes to the same lane.
fn lane_of(key: &str, lanes: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;
    use std::time::Duration;

    async fn wait_for(watermark: &mut watch::Receiver<i64>, at_least: i64) {
        tokio::time::timeout(
            Duration::from_secs(10),
            watermark.wait_for(|done| *done >= at_least),
        )
        .await
        .expect("the watermark reached its target within 10 s")
        .expect("lanes alive");
    }

    #[tokio::test]
    async fn one_key_is_handled_in_order_while_other_keys_overtake_a_slow_one() {
        let seen: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
        let (release_slow, slow_released) = watch::channel(false);
        let lanes = {
            let seen = seen.clone();
            KeyedLanes::start(8, 4, 0, move |(key, position): (String, i64)| {
                let seen = seen.clone();
                let mut slow_released = slow_released.clone();
                async move {
                    if key == "slow" && position == 1 {
                        let _ = slow_released.wait_for(|released| *released).await;
                    }
                    seen.lock().unwrap().push((key, position));
                }
            })
        };
        let mut watermark = lanes.watermark();
        lanes.dispatch(1, "slow", ("slow".into(), 1)).await;
        lanes.dispatch(2, "slow", ("slow".into(), 2)).await;
        // Another key hashing to a different lane finishes while "slow" waits.
        let other = (0..100)
            .map(|i| format!("other-{i}"))
            .find(|key| lane_of(key, 8) != lane_of("slow", 8))
            .unwrap();
        lanes.dispatch(3, &other, (other.clone(), 3)).await;
        lanes.pass(4);
        tokio::time::timeout(Duration::from_secs(10), async {
            while !seen.lock().unwrap().iter().any(|(key, _)| *key == other) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the other key was handled while the slow one waited");
        // Nothing before the slow item is done, so the watermark has not moved.
        assert_eq!(*watermark.borrow(), 0);
        release_slow.send(true).unwrap();
        wait_for(&mut watermark, 4).await;
        let seen = seen.lock().unwrap().clone();
        let slow: Vec<i64> = seen
            .iter()
            .filter(|(key, _)| key == "slow")
            .map(|(_, position)| *position)
            .collect();
        assert_eq!(slow, vec![1, 2], "one key's items in order");
    }

    #[tokio::test]
    async fn a_full_lane_makes_dispatch_wait() {
        let (release, released) = watch::channel(false);
        let lanes = KeyedLanes::start(1, 1, 0, move |_: ()| {
            let mut released = released.clone();
            async move {
                let _ = released.wait_for(|released| *released).await;
            }
        });
        lanes.dispatch(1, "k", ()).await; // taken by the lane's task
        lanes.dispatch(2, "k", ()).await; // waits in the lane
        let third = tokio::time::timeout(Duration::from_millis(100), lanes.dispatch(3, "k", ()));
        assert!(third.await.is_err(), "the third item waits for room");
        release.send(true).unwrap();
        lanes.dispatch(4, "k", ()).await;
        wait_for(&mut lanes.watermark(), 4).await;
    }

    /// Property: whatever the keys, delays and passed positions, every key's items
    /// are handled in position order, each exactly once, and the watermark never
    /// covers an item that is not done.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn per_key_order_and_an_honest_watermark() {
        let mut rng = StdRng::seed_from_u64(0x1a7e);
        for case in 0..64 {
            let lanes = rng.gen_range(1..6);
            let items: Vec<(u8, bool, u64)> = (0..rng.gen_range(1..120))
                .map(|_| (rng.gen_range(0..6), rng.gen_bool(0.7), rng.gen_range(0..3)))
                .collect();
            let done: Arc<Mutex<Vec<(u8, i64)>>> = Arc::default();
            let under_test = {
                let done = done.clone();
                KeyedLanes::start(
                    lanes,
                    2,
                    0,
                    move |(key, position, delay): (u8, i64, u64)| {
                        let done = done.clone();
                        async move {
                            tokio::time::sleep(Duration::from_micros(delay * 200)).await;
                            done.lock().unwrap().push((key, position));
                        }
                    },
                )
            };
            let mut watermark = under_test.watermark();
            let mut handled = Vec::new();
            for (index, (key, wanted, delay)) in items.iter().enumerate() {
                let position = index as i64 + 1;
                if *wanted {
                    handled.push((*key, position));
                    under_test
                        .dispatch(position, &key.to_string(), (*key, position, *delay))
                        .await;
                } else {
                    under_test.pass(position);
                }
                // Read the mark first: whatever it covers must already be done.
                let mark = *watermark.borrow();
                let finished: Vec<i64> = done.lock().unwrap().iter().map(|(_, p)| *p).collect();
                for (_, p) in handled.iter().filter(|(_, p)| *p <= mark) {
                    assert!(
                        finished.contains(p),
                        "case {case}: watermark {mark} covers unfinished item {p}"
                    );
                }
            }
            wait_for(&mut watermark, items.len() as i64).await;
            drop(under_test);
            let mut by_key: HashMap<u8, Vec<i64>> = HashMap::new();
            for (key, position) in done.lock().unwrap().iter() {
                by_key.entry(*key).or_default().push(*position);
            }
            let mut expected: HashMap<u8, Vec<i64>> = HashMap::new();
            for (key, position) in &handled {
                expected.entry(*key).or_default().push(*position);
            }
            assert_eq!(
                by_key, expected,
                "case {case}: each key's items once, in order"
            );
        }
    }
}
