//! Usage counted in memory and written in batches: [`Recorder::count`] adds to a map under a
//! short lock (no await, no database, no allocation for a key already counted this interval),
//! and [`Recorder::take`] hands the counts to the flush as one batch with an id of its own.
//!
//! Exactly once: a batch is applied in one transaction that also inserts its id into
//! `usage_flushes`; a batch whose flush failed is kept, and retried under the same id before
//! anything newer, so a flush whose commit succeeded but went unacknowledged is recognised on
//! the retry and adds nothing. A crash loses only counts not yet in a committed batch (at most
//! one interval).
//!
//! Bounded: a dimension name must be in [`DIMENSIONS`], its value is cut to
//! [`MAX_DIMENSION_LEN`] characters, each (account, metric, day, dimension) keeps at most
//! [`MAX_ITEMS_PER_DIMENSION`] values (more add to `other`), and once [`FLUSH_EARLY_AT`]
//! distinct keys are counted the flusher is woken at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use omnistack_db::usage::{DimensionDelta, UsageDelta};
use tokio::sync::Notify;
use uuid::Uuid;

/// The dimension names usage may be split by.
pub const DIMENSIONS: [&str; 8] = ["endpoint", "model", "provider", "kind", "channel", "feature", "region", "source"];

/// The longest dimension value kept (characters); longer values are cut.
pub const MAX_DIMENSION_LEN: usize = 128;

/// Dimensions one count may carry.
pub const MAX_DIMENSIONS: usize = 4;

/// Distinct values one (account, metric, day, dimension) keeps per interval; more are added
/// to [`OTHER`].
pub const MAX_ITEMS_PER_DIMENSION: usize = 200;

/// The value that collects dimension values past [`MAX_ITEMS_PER_DIMENSION`].
pub const OTHER: &str = "other";

/// Distinct keys (totals and dimension values) counted in an interval that wake the flusher
/// early.
pub const FLUSH_EARLY_AT: usize = 20_000;

/// One account's metric on one day.
type Key = (Uuid, &'static str, NaiveDate);

#[derive(Debug, Default)]
struct Entry {
    total: i64,
    dimensions: Vec<(&'static str, HashMap<Arc<str>, i64>)>,
}

#[derive(Debug, Default)]
struct Counts {
    entries: HashMap<Key, Entry>,
    keys: usize,
}

/// Counts taken for one flush: its id (`usage_flushes`), when it was taken, its deltas.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The batch's id: the flush applies it once, and meter identifiers derive from it.
    pub id: Uuid,
    /// When it was taken (the Stripe meter events' timestamp).
    pub taken_at: DateTime<Utc>,
    /// What it adds to the totals (without dimensions).
    pub totals: Vec<UsageDelta>,
    /// What it adds to each dimension value.
    pub dimensions: Vec<DimensionDelta>,
}

/// The in-memory counts. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    counts: Arc<Mutex<Counts>>,
    keys: Arc<AtomicUsize>,
    early: Arc<Notify>,
}

impl Recorder {
    /// Adds `value` of `metric` for `user_id` today, split by `dimensions` (names outside
    /// [`DIMENSIONS`] are ignored, values cut to [`MAX_DIMENSION_LEN`]).
    pub fn count(&self, user_id: Uuid, metric: &'static str, value: i64, dimensions: &[(&str, &str)]) {
        let day = omnistack_db::time::now().date_naive();
        let Ok(mut counts) = self.counts.lock() else { return };
        let counts = &mut *counts;
        let mut added = 0;
        let entry = counts.entries.entry((user_id, metric, day)).or_insert_with(|| {
            added += 1;
            Entry::default()
        });
        entry.total = entry.total.saturating_add(value);
        for (name, item) in dimensions.iter().take(MAX_DIMENSIONS) {
            let Some(name) = DIMENSIONS.iter().copied().find(|known| known == name) else { continue };
            let items = match entry.dimensions.iter_mut().position(|(known, _)| *known == name) {
                Some(at) => &mut entry.dimensions[at].1,
                None => {
                    entry.dimensions.push((name, HashMap::new()));
                    &mut entry.dimensions.last_mut().expect("just pushed").1
                }
            };
            let item = bounded(item);
            if let Some(sum) = items.get_mut(item.as_ref()) {
                *sum = sum.saturating_add(value);
                continue;
            }
            let item: Arc<str> =
                if items.len() >= MAX_ITEMS_PER_DIMENSION { Arc::from(OTHER) } else { Arc::from(item) };
            let sum = items.entry(item).or_insert_with(|| {
                added += 1;
                0
            });
            *sum = sum.saturating_add(value);
        }
        let before = counts.keys;
        counts.keys += added;
        self.keys.store(counts.keys, Ordering::Relaxed);
        if before < FLUSH_EARLY_AT && counts.keys >= FLUSH_EARLY_AT {
            self.early.notify_one();
        }
    }

    /// Distinct keys counted since the last [`Recorder::take`].
    pub fn keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// Resolves when enough keys were counted to flush before the interval ends.
    pub async fn full(&self) {
        self.early.notified().await;
    }

    /// Takes everything counted so far as one batch (`None` when nothing was).
    pub fn take(&self) -> Option<Batch> {
        let taken = match self.counts.lock() {
            Ok(mut counts) => std::mem::take(&mut *counts),
            Err(_) => return None,
        };
        self.keys.store(0, Ordering::Relaxed);
        if taken.entries.is_empty() {
            return None;
        }
        let mut totals = Vec::with_capacity(taken.entries.len());
        let mut dimensions = Vec::new();
        for ((user_id, metric, day), entry) in taken.entries {
            for (name, items) in entry.dimensions {
                for (item, value) in items {
                    dimensions.push(DimensionDelta {
                        user_id,
                        metric: metric.to_owned(),
                        day,
                        name: name.to_owned(),
                        item: item.to_string(),
                        value,
                    });
                }
            }
            totals.push(UsageDelta {
                user_id,
                metric: metric.to_owned(),
                day,
                value: entry.total,
                dimensions: Vec::new(),
            });
        }
        Some(Batch { id: Uuid::now_v7(), taken_at: omnistack_db::time::now(), totals, dimensions })
    }
}

/// `item` cut to [`MAX_DIMENSION_LEN`] characters with control characters replaced (PostgreSQL
/// refuses NUL in text); borrowed when already fine, which is the common case.
fn bounded(item: &str) -> std::borrow::Cow<'_, str> {
    let cut = match item.char_indices().nth(MAX_DIMENSION_LEN) {
        Some((at, _)) => &item[..at],
        None => item,
    };
    if cut.chars().any(char::is_control) {
        std::borrow::Cow::Owned(cut.chars().map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect())
    } else {
        std::borrow::Cow::Borrowed(cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(batch: &Batch) -> Vec<(String, String, i64)> {
        let mut dims: Vec<_> = batch.dimensions.iter().map(|d| (d.name.clone(), d.item.clone(), d.value)).collect();
        dims.sort();
        dims
    }

    #[test]
    fn counts_add_up_per_key_and_a_take_starts_afresh() {
        let recorder = Recorder::default();
        let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
        for _ in 0..3 {
            recorder.count(ada, "api_requests", 1, &[("endpoint", "/a")]);
        }
        recorder.count(ada, "api_requests", 1, &[("endpoint", "/b"), ("colour", "red")]);
        recorder.count(bob, "ai_tokens", -5, &[]);
        assert_eq!(recorder.keys(), 4);
        let batch = recorder.take().unwrap();
        let mut totals: Vec<_> = batch.totals.iter().map(|t| (t.user_id, t.metric.clone(), t.value)).collect();
        totals.sort();
        let mut expected = vec![(ada, "api_requests".to_owned(), 4), (bob, "ai_tokens".to_owned(), -5)];
        expected.sort();
        assert_eq!(totals, expected);
        assert_eq!(sorted(&batch), vec![("endpoint".into(), "/a".into(), 3), ("endpoint".into(), "/b".into(), 1)]);
        assert!(batch.totals.iter().all(|t| t.dimensions.is_empty()));
        assert_eq!(recorder.keys(), 0);
        assert!(recorder.take().is_none());
    }

    #[test]
    fn dimension_values_are_bounded_cut_and_cleaned() {
        let recorder = Recorder::default();
        let ada = Uuid::now_v7();
        for n in 0..MAX_ITEMS_PER_DIMENSION + 50 {
            recorder.count(ada, "api_requests", 1, &[("endpoint", &format!("/e/{n}"))]);
        }
        recorder.count(ada, "api_requests", 1, &[("model", &"é".repeat(500))]);
        recorder.count(ada, "api_requests", 1, &[("model", "a\0b")]);
        let batch = recorder.take().unwrap();
        let endpoints = batch.dimensions.iter().filter(|d| d.name == "endpoint").count();
        assert_eq!(endpoints, MAX_ITEMS_PER_DIMENSION + 1);
        let other = batch.dimensions.iter().find(|d| d.item == OTHER).unwrap();
        assert_eq!(other.value, 50);
        let models: Vec<_> = batch.dimensions.iter().filter(|d| d.name == "model").map(|d| d.item.clone()).collect();
        assert!(models.iter().any(|m| m.chars().count() == MAX_DIMENSION_LEN));
        assert!(models.contains(&"a\u{FFFD}b".to_owned()));
    }

    #[tokio::test]
    async fn many_keys_wake_the_flusher_early() {
        let recorder = Recorder::default();
        let woken = tokio::spawn({
            let recorder = recorder.clone();
            async move { recorder.full().await }
        });
        tokio::task::yield_now().await;
        for _ in 0..FLUSH_EARLY_AT {
            recorder.count(Uuid::now_v7(), "api_requests", 1, &[]);
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), woken).await.unwrap().unwrap();
    }
}
