//! The hub: this instance's sockets, publishing, and (with Redis) the link to every other
//! instance. Cheap to clone; one per process, in `AppState::realtime`.
//!
//! Delivery has exactly one path per mode. Without Redis, a publish takes the next offset,
//! keeps the message and fans it out under one lock. With Redis, a publish is a Lua script
//! that takes the offset, keeps the message and `PUBLISH`es it; every instance, the publishing
//! one included, delivers it only when it comes back from the events channel (`bridge`). Each
//! instance holds one subscription, so each socket gets each message once, in offset order.
//! If Redis cannot be reached the message is delivered on this instance only, without an
//! offset (see `docs/adr/0005-realtime-delivery-through-redis.md`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::Utc;
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use super::channel::{Caller, ChannelName, ChannelPolicy, DefaultPolicy};
use super::engine::Engine;
use super::event::{Event, Published};
use super::history::{Bounds, Snapshot};
use super::protocol::{self, Delivery};
use super::registry::{Attached, Holder, Registry};
use super::shared::Shared;
use super::stats::{Counters, HubStats};
use super::tickets::{LocalTickets, TicketClaims};
use super::{bridge, heartbeat, revocation};
use crate::config::{Config, RealtimeSettings};
use crate::error::{Error, FieldError, Result};
use crate::redis_pool::RedisPool;

/// The realtime hub of this instance.
#[derive(Clone)]
pub struct Hub {
    pub(super) inner: Arc<Engine>,
}

/// A subscription the hub registered, and what the socket needs to answer `subscribe`.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// The channel's position (with retained messages when asked), taken after registering.
    pub snapshot: Snapshot,
    /// Accounts present in the channel, for channels with presence.
    pub members: Option<Vec<Uuid>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("instance_id", &self.inner.instance_id)
            .field("redis", &self.inner.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub for this configuration, sharing state through `redis` when given. Starts the
    /// heartbeat (and the Redis bridge), so it must be called inside the Tokio runtime.
    pub fn new(config: &Config, redis: Option<&RedisPool>) -> anyhow::Result<Hub> {
        let instance_id = Uuid::now_v7();
        let shared = redis.map(|pool| Shared::new(pool, &config.redis_key_prefix, instance_id));
        let client = match (&config.redis_url, &shared) {
            (Some(url), Some(_)) => Some(redis::Client::open(url.expose())?),
            _ => None,
        };
        let inner = Arc::new(Engine {
            instance_id,
            settings: config.realtime.clone(),
            registry: Registry::default(),
            shared,
            tickets: LocalTickets::default(),
            counters: Counters::default(),
            policy: RwLock::new(Arc::new(DefaultPolicy)),
            stopping: watch::channel(false).0,
            bridged: AtomicBool::new(false),
            bridge_connections: AtomicU64::new(0),
        });
        heartbeat::spawn(&inner);
        if let Some(client) = client {
            bridge::spawn(&inner, client);
        }
        Ok(Hub { inner })
    }

    /// This instance's id (as reported in status).
    pub fn instance_id(&self) -> Uuid {
        self.inner.instance_id
    }

    /// The realtime settings.
    pub fn settings(&self) -> &RealtimeSettings {
        &self.inner.settings
    }

    /// The channel policy in force.
    pub fn policy(&self) -> Arc<dyn ChannelPolicy> {
        self.inner.policy()
    }

    /// Replaces the channel policy (an application's own channel kinds). Applies to every
    /// later subscribe and post.
    pub fn set_policy(&self, policy: Arc<dyn ChannelPolicy>) {
        *self.inner.policy.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = policy;
    }

    /// Publishes `event` on `channel` to every subscriber on every instance. A malformed
    /// channel name is a validation error; an unreachable Redis is not an error (the message
    /// then reaches this instance's subscribers only, and `offset` is `None`).
    pub async fn publish(&self, channel: &str, event: Event) -> Result<Published> {
        let name =
            ChannelName::parse(channel).map_err(|why| Error::Validation(vec![FieldError::new("channel", why)]))?;
        let offset = self.publish_on(&name, event.kind(), &event.data()).await;
        Ok(Published { channel: name.as_str().to_owned(), offset })
    }

    /// Publishes `event` on the account's personal channel (`user:<id>`), which every socket
    /// of the account is subscribed to.
    pub async fn publish_to_user(&self, user_id: Uuid, event: Event) -> Result<Published> {
        self.publish(ChannelName::user(user_id).as_str(), event).await
    }

    /// Whether any socket on this instance is subscribed to `channel`: lets a periodic
    /// publisher skip its work when nobody here listens.
    pub fn has_local_subscribers(&self, channel: &ChannelName) -> bool {
        self.inner.registry.has_subscribers(channel)
    }

    /// Delivers a message to this instance's subscribers of `channel` only: not relayed to
    /// other instances, not kept in history, without an offset. For what every instance
    /// publishes for itself (the admin dashboard's periodic stats).
    pub fn publish_local(&self, channel: &ChannelName, kind: &str, data: &Value) {
        Counters::add(&self.inner.counters.published, 1);
        let now = Utc::now();
        let delivery = Delivery {
            channel: channel.as_str().into(),
            offset: None,
            sent_at_ms: now.timestamp_millis(),
            text: protocol::encode_at(kind, data, Some(channel.as_str()), None, now).into(),
        };
        self.inner.fan_out(&Arc::new(delivery));
    }

    /// The hub's counters.
    pub fn stats(&self) -> HubStats {
        self.inner.counters.snapshot()
    }

    /// Whether the Redis bridge is connected (always false without Redis).
    pub fn is_bridged(&self) -> bool {
        self.inner.bridged.load(Ordering::Relaxed)
    }

    /// How many times the Redis bridge has connected since start (a healthy Redis keeps it
    /// at 1; each reconnect adds one).
    pub fn bridge_connections(&self) -> u64 {
        self.inner.bridge_connections.load(Ordering::Relaxed)
    }

    /// Bytes of channel history this instance keeps in process (without Redis), at most
    /// `WS_HISTORY_TOTAL_BYTES`.
    pub fn history_bytes(&self) -> usize {
        self.inner.registry.history_bytes()
    }

    /// Starts stopping: every socket is closed with 1012 and background work ends.
    pub fn begin_shutdown(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// A receiver to pass to [`until_stopped`](super::engine::until_stopped).
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stopping()
    }

    /// Closes every socket with 1012 and waits until they are gone (see
    /// [`Hub::begin_shutdown`] and [`Hub::drained`]; `app::serve` calls both when the stop
    /// signal arrives).
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        self.drained().await;
    }

    /// Waits until every socket of this instance has closed, then withdraws the instance from
    /// the shared counts. Call after [`Hub::begin_shutdown`].
    pub async fn drained(&self) {
        while self.inner.registry.counts().0 > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if let Some(shared) = &self.inner.shared
            && let Err(err) = shared.forget_instance().await
        {
            self.inner.redis_failed("withdraw the instance", &err);
        }
    }

    /// Registers a socket of `caller` (signed in with `session_id`, for own tokens), unless the
    /// account has all its sockets open already.
    pub(crate) async fn attach(&self, caller: Caller, session_id: Option<Uuid>) -> Option<Attached> {
        let settings = &self.inner.settings;
        let limit = settings.max_connections_per_user;
        let holder = Holder { user_id: caller.user_id, role: caller.role, session_id };
        let (attached, first) = self.inner.registry.attach(holder, settings.outbound_queue, limit)?;
        if let Some(shared) = &self.inner.shared {
            match shared.claim_socket(caller.user_id, attached.id, limit, settings.presence_ttl).await {
                Ok(true) => {}
                Ok(false) => {
                    self.inner.registry.detach(attached.id);
                    return None;
                }
                Err(err) => self.inner.redis_failed("claim a socket slot", &err),
            }
            if first && let Err(err) = shared.join(None, caller.user_id, settings.presence_ttl).await {
                self.inner.redis_failed("mark the account online", &err);
            }
        }
        Counters::add(&self.inner.counters.connections_opened, 1);
        Counters::add(&self.inner.counters.connections_current, 1);
        Some(attached)
    }

    /// Socket `id` proved itself with a fresh token: this role and session now apply to it.
    pub(crate) fn reauthenticated(&self, id: Uuid, caller: Caller, session_id: Option<Uuid>) {
        self.inner.registry.reauthenticate(id, caller.role, session_id);
    }

    /// Unregisters a socket: its subscriptions, presence and slot.
    pub(crate) async fn detach(&self, id: Uuid) {
        let Some(gone) = self.inner.registry.detach(id) else { return };
        self.inner.counters.connections_current.fetch_sub(1, Ordering::Relaxed);
        let policy = self.policy();
        for channel in gone.left.iter().filter(|channel| policy.has_presence(channel)) {
            self.inner.leave_presence(channel, gone.user_id).await;
        }
        if let Some(shared) = &self.inner.shared {
            if let Err(err) = shared.release_socket(gone.user_id, id).await {
                self.inner.redis_failed("release a socket slot", &err);
            }
            if gone.last_of_user
                && let Err(err) = shared.leave(None, gone.user_id).await
            {
                self.inner.redis_failed("mark the account offline", &err);
            }
        }
    }

    /// Subscribes socket `id`, then reads the channel's position (with its history when
    /// `with_history`). `None` when the socket is gone.
    pub(crate) async fn subscribe(
        &self,
        id: Uuid,
        caller: Caller,
        channel: &ChannelName,
        with_history: bool,
    ) -> Option<Subscription> {
        let now_ms = Utc::now().timestamp_millis();
        let joined = self.inner.registry.subscribe(id, channel, now_ms)?;
        let ttl = self.inner.settings.history_ttl;
        let snapshot = match &self.inner.shared {
            None => self.inner.registry.snapshot(channel, now_ms, ttl, with_history),
            Some(shared) => match shared.snapshot(channel.as_str(), with_history, ttl).await {
                Ok(snapshot) => {
                    self.inner.registry.start_at(id, channel, snapshot.offset);
                    snapshot
                }
                Err(err) => {
                    self.inner.redis_failed("read a channel position", &err);
                    Snapshot::default()
                }
            },
        };
        let members = if self.policy().has_presence(channel) {
            if joined {
                self.inner.join_presence(channel, caller.user_id).await;
            }
            Some(self.inner.members(channel).await)
        } else {
            None
        };
        Some(Subscription { snapshot, members })
    }

    /// Unsubscribes socket `id`.
    pub(crate) async fn unsubscribe(&self, id: Uuid, caller: Caller, channel: &ChannelName) {
        if self.inner.registry.unsubscribe(id, channel) && self.policy().has_presence(channel) {
            self.inner.leave_presence(channel, caller.user_id).await;
        }
    }

    /// Publishes an encoded message; returns its offset (`None` if it reached this instance
    /// only).
    pub(crate) async fn publish_on(&self, channel: &ChannelName, kind: &str, data: &Value) -> Option<u64> {
        Counters::add(&self.inner.counters.published, 1);
        let now = Utc::now();
        let settings = &self.inner.settings;
        let Some(shared) = &self.inner.shared else {
            let bounds = Bounds { count: settings.history_size, bytes: settings.history_max_bytes };
            let total = settings.history_total_bytes;
            let (delivery, fan_out) = self.inner.registry.publish(channel, bounds, total, |offset| Delivery {
                channel: channel.as_str().into(),
                offset: Some(offset),
                sent_at_ms: now.timestamp_millis(),
                text: protocol::encode_at(kind, data, Some(channel.as_str()), Some(offset), now).into(),
            });
            self.inner.record(fan_out);
            return delivery.offset;
        };
        let body = protocol::encode_at(kind, data, Some(channel.as_str()), None, now);
        let bounds = Bounds { count: settings.history_size, bytes: settings.history_max_bytes };
        match shared.publish(channel.as_str(), &body, bounds, settings.history_ttl).await {
            Ok(offset) => Some(offset),
            Err(err) => {
                self.inner.redis_failed("publish", &err);
                let delivery = Delivery {
                    channel: channel.as_str().into(),
                    offset: None,
                    sent_at_ms: now.timestamp_millis(),
                    text: body.into(),
                };
                self.inner.fan_out(&Arc::new(delivery));
                None
            }
        }
    }

    /// Starts reading the revocation feed from `db`; it ends when the hub stops or is dropped.
    /// `app` calls it once, after building the hub.
    pub fn watch_revocations(&self, db: omnistack_db::Db) {
        revocation::watch(&self.inner, db);
    }

    /// Keeps a ticket (by hash) for `WS_TICKET_TTL_SECONDS`: in Redis when configured and
    /// reachable, else in process.
    pub(crate) async fn store_ticket(&self, hash: String, claims: TicketClaims) {
        let ttl = self.inner.settings.ticket_ttl;
        if let Some(shared) = &self.inner.shared {
            let text = serde_json::to_string(&claims).unwrap_or_default();
            match shared.store_ticket(&hash, &text, ttl).await {
                Ok(()) => return,
                Err(err) => self.inner.redis_failed("store a ticket", &err),
            }
        }
        self.inner.tickets.store(hash, claims, ttl);
    }

    /// Takes a ticket (by hash), wherever it was kept.
    pub(crate) async fn redeem_ticket(&self, hash: &str) -> Option<TicketClaims> {
        if let Some(claims) = self.inner.tickets.redeem(hash) {
            return Some(claims);
        }
        let shared = self.inner.shared.as_ref()?;
        match shared.redeem_ticket(hash).await {
            Ok(text) => serde_json::from_str(&text?).ok(),
            Err(err) => {
                self.inner.redis_failed("redeem a ticket", &err);
                None
            }
        }
    }
}
