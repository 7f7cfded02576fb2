//! Counters of the hub, kept as atomics so the hot paths never lock for them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use utoipa::ToSchema;

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections_opened: AtomicU64,
    pub connections_current: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub published: AtomicU64,
    pub dropped: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub rate_limited: AtomicU64,
    pub redis_errors: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HubStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HubStats {
            connections_opened: read(&self.connections_opened),
            connections: read(&self.connections_current),
            messages_in: read(&self.messages_in),
            messages_out: read(&self.messages_out),
            published: read(&self.published),
            dropped: read(&self.dropped),
            slow_consumers: read(&self.slow_consumers),
            rate_limited: read(&self.rate_limited),
            redis_errors: read(&self.redis_errors),
        }
    }
}

/// A reading of the hub's counters on this instance, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct HubStats {
    /// Sockets accepted (authenticated).
    pub connections_opened: u64,
    /// Sockets open now.
    pub connections: u64,
    /// Client messages received.
    pub messages_in: u64,
    /// Messages written to sockets.
    pub messages_out: u64,
    /// Channel messages published from this instance.
    pub published: u64,
    /// Messages not queued because a socket's queue was full.
    pub dropped: u64,
    /// Sockets closed with 1013 for falling behind.
    pub slow_consumers: u64,
    /// Client messages refused by the rate limit.
    pub rate_limited: u64,
    /// Failed Redis operations (the hub then falls back to this instance).
    pub redis_errors: u64,
}

impl HubStats {
    /// Copies the realtime hub's counters (kept as atomics on the hot path) into the registry.
    pub fn record(&self) {
        metrics::gauge!("realtime_connections").set(self.connections as f64);
        metrics::counter!("realtime_connections_opened_total").absolute(self.connections_opened);
        metrics::counter!("realtime_messages_total", "direction" => "in").absolute(self.messages_in);
        metrics::counter!("realtime_messages_total", "direction" => "out").absolute(self.messages_out);
        metrics::counter!("realtime_published_total").absolute(self.published);
        metrics::counter!("realtime_dropped_total", "reason" => "queue_full").absolute(self.dropped);
        metrics::counter!("realtime_dropped_total", "reason" => "slow_consumer").absolute(self.slow_consumers);
        metrics::counter!("realtime_dropped_total", "reason" => "rate_limited").absolute(self.rate_limited);
        metrics::counter!("realtime_redis_errors_total").absolute(self.redis_errors);
    }
}
