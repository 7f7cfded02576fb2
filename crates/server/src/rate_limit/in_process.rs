//! Fixed-window counters in this process: used without Redis, and for any check Redis
//! cannot answer.
//!
//! Memory is bounded: the counters are split into [`SHARDS`] independently locked shards
//! (so concurrent requests rarely wait on each other), each shard drops windows that have
//! ended at most every [`SWEEP_INTERVAL`], and the whole table never holds more than its
//! capacity ([`MAX_ENTRIES`] in the server). A new key arriving at a full shard first evicts
//! ended windows, then, if none have ended, the window closest to its end: the count that
//! would soon be forgotten anyway.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Hit, LimitClass};

/// The most counters kept in memory; beyond it the oldest windows are evicted.
pub const MAX_ENTRIES: usize = 100_000;

/// How many independently locked parts the table has.
const SHARDS: usize = 32;

/// How often a shard drops windows that have ended.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// One key's current window.
#[derive(Clone, Copy, Debug)]
struct Window {
    count: u64,
    ends_at: Instant,
}

/// One lock's worth of counters: a map per class, so lookups borrow the key.
struct Shard {
    classes: [HashMap<Box<str>, Window>; LimitClass::ALL.len()],
    next_sweep: Instant,
}

impl Shard {
    fn len(&self) -> usize {
        self.classes.iter().map(HashMap::len).sum()
    }

    fn drop_ended(&mut self, now: Instant) {
        for map in &mut self.classes {
            map.retain(|_, window| window.ends_at > now);
        }
        self.next_sweep = now + SWEEP_INTERVAL;
    }

    /// Makes room for one more key: ended windows go first, else the one closest to its end.
    fn make_room(&mut self, now: Instant, capacity: usize) {
        self.drop_ended(now);
        while self.len() >= capacity {
            let soonest = self
                .classes
                .iter()
                .enumerate()
                .flat_map(|(class, map)| map.iter().map(move |(key, window)| (window.ends_at, class, key)))
                .min_by_key(|(ends_at, _, _)| *ends_at)
                .map(|(_, class, key)| (class, key.clone()));
            let Some((class, key)) = soonest else { return };
            self.classes[class].remove(&key);
        }
    }
}

/// Sharded, bounded fixed-window counters.
pub(super) struct InProcessCounters {
    shards: Box<[Mutex<Shard>]>,
    shard_capacity: usize,
    hasher: RandomState,
}

impl InProcessCounters {
    /// Counters holding at most `max_entries` keys (rounded up to a multiple of the shard count).
    pub(super) fn new(max_entries: usize) -> Self {
        let now = Instant::now();
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard { classes: std::array::from_fn(|_| HashMap::new()), next_sweep: now + SWEEP_INTERVAL })
            })
            .collect();
        InProcessCounters { shards, shard_capacity: max_entries.div_ceil(SHARDS).max(1), hasher: RandomState::new() }
    }

    /// Counts one request for `key` in `class` at `now`; a window of `length` starts at the
    /// first request after the previous one ended.
    pub(super) fn hit(&self, class: LimitClass, key: &str, length: Duration, now: Instant) -> Hit {
        let index = self.hasher.hash_one((class, key)) as usize % self.shards.len();
        let mut shard = self.shards[index].lock().unwrap_or_else(PoisonError::into_inner);
        if now >= shard.next_sweep {
            shard.drop_ended(now);
        }
        if let Some(window) = shard.classes[class.index()].get_mut(key) {
            if window.ends_at > now {
                window.count = window.count.saturating_add(1);
            } else {
                *window = Window { count: 1, ends_at: now + length };
            }
            return Hit { count: window.count, resets_in: window.ends_at - now };
        }
        if shard.len() >= self.shard_capacity {
            shard.make_room(now, self.shard_capacity);
        }
        shard.classes[class.index()].insert(key.into(), Window { count: 1, ends_at: now + length });
        Hit { count: 1, resets_in: length }
    }

    /// `key`'s live window in `class` at `now`, without counting; `None` when it has none.
    pub(super) fn peek(&self, class: LimitClass, key: &str, now: Instant) -> Option<Hit> {
        let index = self.hasher.hash_one((class, key)) as usize % self.shards.len();
        let shard = self.shards[index].lock().unwrap_or_else(PoisonError::into_inner);
        let window = shard.classes[class.index()].get(key).filter(|window| window.ends_at > now)?;
        Some(Hit { count: window.count, resets_in: window.ends_at - now })
    }

    /// Takes one request back from `key`'s live window in `class`, if it has one.
    pub(super) fn refund(&self, class: LimitClass, key: &str, now: Instant) {
        let index = self.hasher.hash_one((class, key)) as usize % self.shards.len();
        let mut shard = self.shards[index].lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(window) = shard.classes[class.index()].get_mut(key).filter(|window| window.ends_at > now) {
            window.count = window.count.saturating_sub(1);
        }
    }

    /// How many keys are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn counts_within_a_window_and_reports_the_time_left() {
        let counters = InProcessCounters::new(MAX_ENTRIES);
        let start = Instant::now();
        for n in 1..=5 {
            let hit = counters.hit(LimitClass::Public, "1.2.3.4", MINUTE, start + Duration::from_secs(n));
            assert_eq!(hit.count, n);
            assert_eq!(hit.resets_in, MINUTE - Duration::from_secs(n - 1), "the window started at the first hit");
        }
    }

    #[test]
    fn a_peek_reads_the_live_window_without_counting() {
        let counters = InProcessCounters::new(MAX_ENTRIES);
        let start = Instant::now();
        assert_eq!(counters.peek(LimitClass::Contact, "a", start), None);
        counters.hit(LimitClass::Contact, "a", MINUTE, start);
        let seen = counters.peek(LimitClass::Contact, "a", start + Duration::from_secs(1));
        assert_eq!(seen, Some(Hit { count: 1, resets_in: MINUTE - Duration::from_secs(1) }));
        assert_eq!(counters.hit(LimitClass::Contact, "a", MINUTE, start).count, 2, "the peek did not count");
        assert_eq!(counters.peek(LimitClass::Contact, "a", start + MINUTE), None, "an ended window is none");
    }

    #[test]
    fn keys_and_classes_count_separately() {
        let counters = InProcessCounters::new(MAX_ENTRIES);
        let now = Instant::now();
        counters.hit(LimitClass::Public, "a", MINUTE, now);
        counters.hit(LimitClass::Public, "a", MINUTE, now);
        assert_eq!(counters.hit(LimitClass::Public, "b", MINUTE, now).count, 1);
        assert_eq!(counters.hit(LimitClass::Auth, "a", MINUTE, now).count, 1);
        assert_eq!(counters.hit(LimitClass::Public, "a", MINUTE, now).count, 3);
    }

    #[test]
    fn a_new_window_starts_when_the_old_one_ends() {
        let counters = InProcessCounters::new(MAX_ENTRIES);
        let start = Instant::now();
        for _ in 0..3 {
            counters.hit(LimitClass::Auth, "a@example.com", MINUTE, start);
        }
        let late = counters.hit(LimitClass::Auth, "a@example.com", MINUTE, start + MINUTE - Duration::from_millis(1));
        assert_eq!((late.count, late.resets_in), (4, Duration::from_millis(1)));
        let next = counters.hit(LimitClass::Auth, "a@example.com", MINUTE, start + MINUTE);
        assert_eq!((next.count, next.resets_in), (1, MINUTE));
    }

    #[test]
    fn ended_windows_are_swept_away() {
        let counters = InProcessCounters::new(MAX_ENTRIES);
        let start = Instant::now();
        for n in 0..1000 {
            counters.hit(LimitClass::Public, &format!("10.0.{}.{}", n / 256, n % 256), MINUTE, start);
        }
        assert_eq!(counters.len(), 1000);
        // Past the end of those windows and the sweep interval, traffic on every shard sweeps it.
        let later = start + MINUTE + SWEEP_INTERVAL * 2;
        for n in 0..2000 {
            counters.hit(LimitClass::App, &format!("user-{n}"), MINUTE, later);
        }
        assert_eq!(counters.len(), 2000);
    }

    #[test]
    fn the_table_never_exceeds_its_capacity() {
        let capacity = SHARDS * 4;
        let counters = InProcessCounters::new(capacity);
        let start = Instant::now();
        // Live windows only (none ends during the test): eviction must still hold the bound.
        for n in 0..(capacity as u64 * 20) {
            counters.hit(LimitClass::Public, &format!("key-{n}"), MINUTE, start + Duration::from_millis(n));
            assert!(counters.len() <= capacity, "{} > {capacity} after {n}", counters.len());
        }
        // The newest key was kept, with its count.
        let last = format!("key-{}", capacity as u64 * 20 - 1);
        assert_eq!(counters.hit(LimitClass::Public, &last, MINUTE, start + Duration::from_secs(3)).count, 2);
    }

    #[test]
    fn a_full_shard_evicts_the_window_closest_to_its_end() {
        let counters = InProcessCounters::new(SHARDS * 2);
        assert_eq!(counters.shard_capacity, 2);
        let start = Instant::now();
        let shard_of = |key: &str| counters.hasher.hash_one((LimitClass::Public, key)) as usize % SHARDS;
        let same_shard: Vec<String> =
            (0..).map(|n| format!("k-{n}")).filter(|key| shard_of(key) == shard_of("k-0")).take(3).collect();
        let [oldest, middle, newest] = [&same_shard[0], &same_shard[1], &same_shard[2]];
        counters.hit(LimitClass::Public, oldest, MINUTE, start);
        counters.hit(LimitClass::Public, middle, MINUTE, start + Duration::from_secs(1));
        counters.hit(LimitClass::Public, newest, MINUTE, start + Duration::from_secs(2));
        let at = start + Duration::from_secs(3);
        assert_eq!(counters.hit(LimitClass::Public, middle, MINUTE, at).count, 2, "kept");
        assert_eq!(counters.hit(LimitClass::Public, newest, MINUTE, at).count, 2, "kept");
        assert_eq!(counters.hit(LimitClass::Public, oldest, MINUTE, at).count, 1, "evicted, counting afresh");
    }
}
