//! The hub's state, shared with the work it starts: the Redis bridge, the heartbeat and the
//! revocation feed hold it weakly (they end when the hub is dropped), presence and the fan-out
//! are methods on it. [`Hub`](super::Hub) wraps it with the public API; the modules below the
//! hub import this one, never the hub.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;
use uuid::Uuid;

use super::channel::ChannelPolicy;
use super::protocol::Delivery;
use super::registry::{FanOut, Registry};
use super::shared::Shared;
use super::stats::Counters;
use super::tickets::LocalTickets;
use crate::config::RealtimeSettings;

/// This instance's sockets, channels, Redis link and counters.
pub(super) struct Engine {
    pub instance_id: Uuid,
    pub settings: RealtimeSettings,
    pub registry: Registry,
    pub shared: Option<Shared>,
    pub tickets: LocalTickets,
    pub counters: Counters,
    pub policy: RwLock<Arc<dyn ChannelPolicy>>,
    pub stopping: watch::Sender<bool>,
    pub bridged: AtomicBool,
    /// Times the Redis bridge connected (1 while it stays up).
    pub bridge_connections: AtomicU64,
}

impl Engine {
    /// The channel policy in force.
    pub fn policy(&self) -> Arc<dyn ChannelPolicy> {
        self.policy.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// A receiver to pass to [`until_stopped`].
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Records whether the Redis bridge is connected.
    pub fn set_bridged(&self, up: bool) {
        if up {
            self.bridge_connections.fetch_add(1, Ordering::Relaxed);
        }
        self.bridged.store(up, Ordering::Relaxed);
    }

    /// Queues a message for this instance's subscribers.
    pub fn fan_out(&self, delivery: &Arc<Delivery>) {
        let fan_out = self.registry.deliver(delivery);
        self.record(fan_out);
    }

    /// Counts what a fan-out could not queue.
    pub fn record(&self, fan_out: FanOut) {
        Counters::add(&self.counters.dropped, fan_out.dropped);
    }

    /// Counts and logs a failed Redis operation; the caller falls back to this instance.
    pub fn redis_failed(&self, what: &str, err: &redis::RedisError) {
        Counters::add(&self.counters.redis_errors, 1);
        tracing::warn!(error = %err, "realtime: could not {what} in Redis; continuing on this instance");
    }
}

/// Resolves once the hub starts stopping (or is gone).
pub(crate) async fn until_stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}
