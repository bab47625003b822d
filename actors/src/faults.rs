//! Test-only panic injection into the supervised loops.
//!
//! With the `fault-injection` feature, a test arms a named point
//! ([`arm`]`("store_writer", 1)`) and the loop that passes that point next panics
//! there, once per arming. Without the feature [`point`] is an empty inline
//! function, so production builds carry nothing. The armed points are global to
//! the process: tests that use them run in processes of their own (nextest).

/// Where a loop may be made to panic: `store_writer`, `sweeper`, `hold_sweeper`,
/// `payment_reconciler`, `mailroom`, `delivery:<subscriber>`,
/// `consumer:<group>` (a Kafka consumer's read loop, as a message arrives),
/// `lane:<group>` (one of its lanes, before it hands a message on) or
/// `handled:<group>` (a lane, after a handler succeeded and before the bridge
/// records it).
#[inline]
pub fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    if armed::take(name) {
        panic!("injected fault at {name}");
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}

/// Makes the next `times` passes through `point(name)` panic.
#[cfg(feature = "fault-injection")]
pub fn arm(name: &str, times: u32) {
    armed::add(name, times);
}

/// Panics still armed at `name`.
#[cfg(feature = "fault-injection")]
pub fn armed(name: &str) -> u32 {
    armed::remaining(name)
}

#[cfg(feature = "fault-injection")]
mod armed {
    use std::collections::HashMap;
    use std::sync::Mutex;

    static ARMED: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

    fn with<R>(f: impl FnOnce(&mut HashMap<String, u32>) -> R) -> R {
        let mut armed = ARMED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(armed.get_or_insert_with(HashMap::new))
    }

    pub(super) fn add(name: &str, times: u32) {
        with(|armed| *armed.entry(name.to_owned()).or_default() += times);
    }

    pub(super) fn remaining(name: &str) -> u32 {
        with(|armed| armed.get(name).copied().unwrap_or(0))
    }

    pub(super) fn take(name: &str) -> bool {
        with(|armed| match armed.get_mut(name) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        })
    }
}
