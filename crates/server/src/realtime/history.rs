//! Per-channel history for resuming: the last `WS_HISTORY_SIZE` messages and at most
//! `WS_HISTORY_MAX_BYTES`, at most `WS_HISTORY_TTL_SECONDS` old, each with an increasing
//! offset, under an epoch that changes whenever the history is lost (a restart without Redis,
//! an expired Redis key). Messages dropped early (by a bound) make an older position
//! unrecoverable, exactly like expired ones.
//!
//! [`LocalHistory`] keeps it in process; with Redis the same data lives in Redis
//! (`realtime::shared`). Both answer with a [`Snapshot`], and [`replay`] decides what a
//! resuming client gets.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::protocol::{Delivery, Position};

/// A channel's position and (when asked for) its retained messages, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The channel's epoch.
    pub epoch: String,
    /// The offset of the newest message (0 before the first).
    pub offset: u64,
    /// Retained messages, oldest first, already without expired ones.
    pub entries: Vec<Arc<Delivery>>,
}

/// The messages a client resuming after `since` missed, in order; `None` when they cannot all
/// be given (another epoch, a gap older than the history, or a position from the future). An
/// empty epoch means the position could not be read: nothing is recoverable.
pub fn replay(snapshot: &Snapshot, since: &Position) -> Option<Vec<Arc<Delivery>>> {
    if snapshot.epoch.is_empty() || since.epoch != snapshot.epoch || since.offset > snapshot.offset {
        return None;
    }
    if since.offset == snapshot.offset {
        return Some(Vec::new());
    }
    let missed: Vec<Arc<Delivery>> =
        snapshot.entries.iter().filter(|d| d.offset.is_some_and(|o| o > since.offset)).cloned().collect();
    let complete = missed.first().and_then(|d| d.offset) == Some(since.offset + 1)
        && missed.last().and_then(|d| d.offset) == Some(snapshot.offset);
    complete.then_some(missed)
}

/// A new random epoch.
pub fn new_epoch() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// How much history one channel keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Messages (`WS_HISTORY_SIZE`).
    pub count: usize,
    /// Encoded bytes (`WS_HISTORY_MAX_BYTES`).
    pub bytes: usize,
}

/// In-process history of one channel.
#[derive(Debug)]
pub struct LocalHistory {
    epoch: String,
    offset: u64,
    entries: VecDeque<Arc<Delivery>>,
    bytes: usize,
}

impl Default for LocalHistory {
    fn default() -> Self {
        LocalHistory { epoch: new_epoch(), offset: 0, entries: VecDeque::new(), bytes: 0 }
    }
}

impl LocalHistory {
    /// The offset the next message gets.
    pub fn next_offset(&self) -> u64 {
        self.offset + 1
    }

    /// Appends a message (its offset must be [`LocalHistory::next_offset`]), then drops the
    /// oldest ones until both bounds hold. A message larger than the byte bound is not kept.
    pub fn push(&mut self, delivery: Arc<Delivery>, bounds: Bounds) {
        self.offset = delivery.offset.unwrap_or(self.offset + 1);
        if bounds.count == 0 || delivery.text.len() > bounds.bytes {
            return;
        }
        self.bytes += delivery.text.len();
        self.entries.push_back(delivery);
        while self.entries.len() > bounds.count || self.bytes > bounds.bytes {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(gone) = self.entries.pop_front() {
            self.bytes -= gone.text.len();
        }
    }

    /// Drops messages older than `ttl` at `now_ms`.
    pub fn expire(&mut self, now_ms: i64, ttl: Duration) {
        let oldest = now_ms - ttl.as_millis() as i64;
        while self.entries.front().is_some_and(|d| d.sent_at_ms < oldest) {
            self.pop_oldest();
        }
    }

    /// Drops every retained message (the offset and epoch stay).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Whether nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Encoded bytes retained.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Retained messages.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The channel's position, with the retained messages when `with_entries`.
    pub fn snapshot(&mut self, now_ms: i64, ttl: Duration, with_entries: bool) -> Snapshot {
        self.expire(now_ms, ttl);
        let entries = if with_entries { self.entries.iter().cloned().collect() } else { Vec::new() };
        Snapshot { epoch: self.epoch.clone(), offset: self.offset, entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(offset: u64, sent_at_ms: i64) -> Arc<Delivery> {
        Arc::new(Delivery { channel: "room:a".into(), offset: Some(offset), sent_at_ms, text: "{}".into() })
    }

    fn history(count: u64, size: usize) -> LocalHistory {
        let mut history = LocalHistory::default();
        for _ in 0..count {
            history.push(delivery(history.next_offset(), 1_000), Bounds { count: size, bytes: usize::MAX });
        }
        history
    }

    #[test]
    fn history_never_holds_more_than_its_count_or_its_bytes() {
        let mut history = LocalHistory::default();
        let bounds = Bounds { count: 5, bytes: 1_000 };
        for i in 0..50u64 {
            let text = "x".repeat(100 + (i as usize * 37) % 300);
            let message = Delivery { channel: "room:a".into(), offset: Some(i + 1), sent_at_ms: 0, text: text.into() };
            history.push(Arc::new(message), bounds);
            assert!(
                history.len() <= 5 && history.bytes() <= 1_000,
                "{} messages, {} bytes",
                history.len(),
                history.bytes()
            );
            let counted: usize = history.entries.iter().map(|d| d.text.len()).sum();
            assert_eq!(counted, history.bytes());
        }
        let huge =
            Delivery { channel: "room:a".into(), offset: Some(51), sent_at_ms: 0, text: "y".repeat(1_001).into() };
        history.push(Arc::new(huge), bounds);
        assert_eq!(history.next_offset(), 52, "a message too large to keep still takes its offset");
        assert!(history.entries.iter().all(|d| d.text.len() <= 1_000));
    }

    fn offsets(list: &[Arc<Delivery>]) -> Vec<u64> {
        list.iter().filter_map(|d| d.offset).collect()
    }

    #[test]
    fn a_gap_inside_the_history_is_replayed_in_order() {
        let mut history = history(10, 100);
        let snapshot = history.snapshot(1_000, Duration::from_secs(60), true);
        let since = Position { offset: 7, epoch: snapshot.epoch.clone() };
        assert_eq!(offsets(&replay(&snapshot, &since).unwrap()), [8, 9, 10]);
        let current = Position { offset: 10, epoch: snapshot.epoch.clone() };
        assert_eq!(replay(&snapshot, &current).unwrap().len(), 0);
    }

    #[test]
    fn a_gap_beyond_the_history_another_epoch_or_the_future_is_not_recoverable() {
        let mut history = history(10, 3);
        let snapshot = history.snapshot(1_000, Duration::from_secs(60), true);
        assert_eq!(offsets(&snapshot.entries), [8, 9, 10]);
        assert!(replay(&snapshot, &Position { offset: 7, epoch: snapshot.epoch.clone() }).is_some());
        assert!(replay(&snapshot, &Position { offset: 6, epoch: snapshot.epoch.clone() }).is_none());
        assert!(replay(&snapshot, &Position { offset: 9, epoch: "other".into() }).is_none());
        assert!(replay(&snapshot, &Position { offset: 11, epoch: snapshot.epoch.clone() }).is_none());
    }

    #[test]
    fn old_messages_expire() {
        let mut history = history(5, 100);
        let snapshot = history.snapshot(1_000 + 61_000, Duration::from_secs(60), true);
        assert!(snapshot.entries.is_empty());
        assert_eq!(snapshot.offset, 5, "the offset survives its messages");
        assert!(replay(&snapshot, &Position { offset: 4, epoch: snapshot.epoch.clone() }).is_none());
        assert!(replay(&snapshot, &Position { offset: 5, epoch: snapshot.epoch.clone() }).is_some());
    }
}
