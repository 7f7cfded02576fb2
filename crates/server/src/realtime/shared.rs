//! What instances share through Redis: channel offsets, epochs and history, presence, socket
//! counts per account, instance counts and tickets. Every key starts with `REDIS_KEY_PREFIX`
//! then `rt:`.
//!
//! A publish is one Lua script: it takes the next offset, appends to the capped history and
//! `PUBLISH`es on the one events channel, atomically, so every instance sees a channel's
//! messages in offset order; the history is capped by count and by bytes (the byte total is
//! kept in the channel's meta hash). Presence entries are sorted-set members `<user>/<instance>` scored
//! by their expiry time: an instance that stops refreshing them (because it died) leaves
//! nothing behind once they expire, and the sweep announces those users as offline.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use uuid::Uuid;

use super::history::{Bounds, Snapshot, new_epoch};
use super::protocol::Delivery;
use crate::redis_pool::{self, RedisPool};

/// How long a channel's offset and epoch outlive its last publish or subscribe.
pub(crate) const CHANNEL_RETENTION: Duration = Duration::from_secs(3600);

/// The shared state of one deployment (one key prefix).
#[derive(Clone)]
pub(crate) struct Shared {
    connection: ConnectionManager,
    prefix: String,
    instance: Uuid,
    scripts: Arc<Scripts>,
}

struct Scripts {
    publish: Script,
    snapshot: Script,
    join: Script,
    leave: Script,
    sweep: Script,
    claim: Script,
}

/// One instance's counts, as it last reported them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InstanceCount {
    pub instance_id: String,
    pub connections: u64,
    pub users: u64,
}

/// What a heartbeat refreshes.
#[derive(Debug, Default)]
pub(crate) struct Liveness {
    /// (channel, account) memberships with presence.
    pub presence: Vec<(String, Uuid)>,
    /// (account, socket) pairs.
    pub sockets: Vec<(Uuid, Uuid)>,
    /// `(sockets, accounts)` on this instance.
    pub counts: (usize, usize),
}

impl Shared {
    /// Shared state under `prefix`, for `instance`.
    pub fn new(pool: &RedisPool, prefix: &str, instance: Uuid) -> Shared {
        let scripts = Scripts {
            publish: Script::new(include_str!("lua/publish.lua")),
            snapshot: Script::new(include_str!("lua/snapshot.lua")),
            join: Script::new(include_str!("lua/join.lua")),
            leave: Script::new(include_str!("lua/leave.lua")),
            sweep: Script::new(include_str!("lua/sweep.lua")),
            claim: Script::new(include_str!("lua/claim.lua")),
        };
        Shared { connection: pool.connection(), prefix: prefix.to_owned(), instance, scripts: Arc::new(scripts) }
    }

    fn key(&self, parts: &[&str]) -> String {
        format!("{}rt:{}", self.prefix, parts.join(":"))
    }

    /// The pub/sub channel every instance listens on.
    pub fn events_channel(&self) -> String {
        self.key(&["events"])
    }

    fn member(&self, user_id: Uuid) -> String {
        format!("{user_id}/{}", self.instance)
    }

    /// Sequences, keeps and relays a channel message; `body` is the encoded message without
    /// its offset. Returns the offset.
    pub async fn publish(&self, channel: &str, body: &str, bounds: Bounds, ttl: Duration) -> redis::RedisResult<u64> {
        let mut connection = self.connection.clone();
        let mut invocation = self.scripts.publish.prepare_invoke();
        let call = invocation
            .key(self.key(&["meta", channel]))
            .key(self.key(&["history", channel]))
            .arg(self.events_channel())
            .arg(body)
            .arg(new_epoch())
            .arg(bounds.count)
            .arg(ttl.as_millis() as u64)
            .arg(CHANNEL_RETENTION.as_millis() as u64)
            .arg(bounds.bytes)
            .invoke_async(&mut connection);
        redis_pool::traced("EVALSHA", call).await
    }

    /// Relays a message that is not kept (presence).
    pub async fn relay(&self, text: &str) -> redis::RedisResult<()> {
        let mut connection = self.connection.clone();
        redis_pool::traced("PUBLISH", connection.publish::<_, _, ()>(self.events_channel(), text)).await
    }

    /// A channel's position, and its retained messages (younger than `ttl`) when asked.
    pub async fn snapshot(&self, channel: &str, with_entries: bool, ttl: Duration) -> redis::RedisResult<Snapshot> {
        let mut connection = self.connection.clone();
        let mut invocation = self.scripts.snapshot.prepare_invoke();
        let call = invocation
            .key(self.key(&["meta", channel]))
            .key(self.key(&["history", channel]))
            .arg(new_epoch())
            .arg(CHANNEL_RETENTION.as_millis() as u64)
            .arg(if with_entries { "1" } else { "0" })
            .invoke_async(&mut connection);
        let (epoch, offset, entries): (String, u64, Vec<String>) = redis_pool::traced("EVALSHA", call).await?;
        let oldest = chrono::Utc::now().timestamp_millis() - ttl.as_millis() as i64;
        let entries =
            entries.into_iter().filter_map(Delivery::decode).filter(|d| d.sent_at_ms >= oldest).map(Arc::new).collect();
        Ok(Snapshot { epoch, offset, entries })
    }

    fn presence_key(&self, channel: Option<&str>) -> String {
        match channel {
            Some(channel) => self.key(&["presence", channel]),
            None => self.key(&["online"]),
        }
    }

    /// Marks the account present in `channel` (`None`: online at all) from this instance.
    /// True when it was not present from any instance before.
    pub async fn join(&self, channel: Option<&str>, user_id: Uuid, ttl: Duration) -> redis::RedisResult<bool> {
        let mut connection = self.connection.clone();
        let now = now_ms();
        let joined: i64 = self
            .scripts
            .join
            .key(self.presence_key(channel))
            .arg(self.member(user_id))
            .arg(now + ttl.as_millis() as i64)
            .arg(now)
            .arg(format!("{user_id}/"))
            .arg(CHANNEL_RETENTION.as_millis() as u64)
            .invoke_async(&mut connection)
            .await?;
        Ok(joined == 1)
    }

    /// Removes this instance's presence of the account; true when no instance has it any more.
    pub async fn leave(&self, channel: Option<&str>, user_id: Uuid) -> redis::RedisResult<bool> {
        let mut connection = self.connection.clone();
        let left: i64 = self
            .scripts
            .leave
            .key(self.presence_key(channel))
            .arg(self.member(user_id))
            .arg(now_ms())
            .arg(format!("{user_id}/"))
            .invoke_async(&mut connection)
            .await?;
        Ok(left == 1)
    }

    /// Removes expired presence (left by dead instances); returns the accounts now absent.
    pub async fn sweep(&self, channel: Option<&str>) -> redis::RedisResult<Vec<Uuid>> {
        let mut connection = self.connection.clone();
        let gone: Vec<String> =
            self.scripts.sweep.key(self.presence_key(channel)).arg(now_ms()).invoke_async(&mut connection).await?;
        Ok(gone.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect())
    }

    /// The accounts present in `channel` (`None`: online anywhere).
    pub async fn present(&self, channel: Option<&str>) -> redis::RedisResult<Vec<Uuid>> {
        let mut connection = self.connection.clone();
        let live: Vec<String> = connection.zrangebyscore(self.presence_key(channel), now_ms(), "+inf").await?;
        let mut users: Vec<Uuid> =
            live.iter().filter_map(|m| m.split_once('/')).filter_map(|(u, _)| Uuid::parse_str(u).ok()).collect();
        users.sort_unstable();
        users.dedup();
        Ok(users)
    }

    /// Takes one of the account's `limit` socket slots (across instances); false when full.
    pub async fn claim_socket(&self, user_id: Uuid, id: Uuid, limit: usize, ttl: Duration) -> redis::RedisResult<bool> {
        let mut connection = self.connection.clone();
        let now = now_ms();
        let claimed: i64 = self
            .scripts
            .claim
            .key(self.key(&["sockets", &user_id.to_string()]))
            .arg(format!("{}/{id}", self.instance))
            .arg(now + ttl.as_millis() as i64)
            .arg(now)
            .arg(limit)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut connection)
            .await?;
        Ok(claimed == 1)
    }

    /// Gives a socket slot back.
    pub async fn release_socket(&self, user_id: Uuid, id: Uuid) -> redis::RedisResult<()> {
        let mut connection = self.connection.clone();
        let key = self.key(&["sockets", &user_id.to_string()]);
        connection.zrem::<_, _, ()>(key, format!("{}/{id}", self.instance)).await
    }

    /// The account's live sockets on every instance, as `(instance, socket)`.
    pub async fn sockets_of(&self, user_id: Uuid) -> redis::RedisResult<Vec<(String, Uuid)>> {
        let mut connection = self.connection.clone();
        let key = self.key(&["sockets", &user_id.to_string()]);
        let live: Vec<String> = connection.zrangebyscore(key, now_ms(), "+inf").await?;
        Ok(live
            .iter()
            .filter_map(|m| m.split_once('/'))
            .filter_map(|(instance, id)| Some((instance.to_owned(), Uuid::parse_str(id).ok()?)))
            .collect())
    }

    /// Extends everything this instance holds by `ttl` and reports its counts. Returns the
    /// presence memberships that had expired meanwhile (and were swept): they are new again.
    pub async fn refresh(&self, live: &Liveness, ttl: Duration) -> redis::RedisResult<Vec<(String, Uuid)>> {
        let mut connection = self.connection.clone();
        let expiry = now_ms() + ttl.as_millis() as i64;
        let retention = CHANNEL_RETENTION.as_millis() as i64;
        let mut pipe = redis::pipe();
        for (channel, user) in &live.presence {
            pipe.zadd(self.presence_key(Some(channel)), self.member(*user), expiry);
        }
        let mut channels: Vec<&String> = live.presence.iter().map(|(channel, _)| channel).collect();
        channels.sort_unstable();
        channels.dedup();
        for channel in channels {
            pipe.pexpire(self.presence_key(Some(channel)), retention).ignore();
        }
        let mut users: Vec<Uuid> = live.sockets.iter().map(|(user, _)| *user).collect();
        users.sort_unstable();
        users.dedup();
        for user in &users {
            pipe.zadd(self.presence_key(None), self.member(*user), expiry).ignore();
        }
        pipe.pexpire(self.presence_key(None), retention).ignore();
        for (user, id) in &live.sockets {
            let key = self.key(&["sockets", &user.to_string()]);
            pipe.zadd(&key, format!("{}/{id}", self.instance), expiry).ignore();
            pipe.pexpire(&key, ttl.as_millis() as i64).ignore();
        }
        let counts = format!("{} {} {expiry}", live.counts.0, live.counts.1);
        pipe.hset(self.key(&["instances"]), self.instance.to_string(), counts).ignore();
        pipe.pexpire(self.key(&["instances"]), retention).ignore();
        let added: Vec<i64> = pipe.query_async(&mut connection).await?;
        Ok(live.presence.iter().zip(added).filter(|(_, added)| *added == 1).map(|(m, _)| m.clone()).collect())
    }

    /// Every instance's last reported counts; stale reports (dead instances) are removed.
    pub async fn instances(&self) -> redis::RedisResult<Vec<InstanceCount>> {
        let mut connection = self.connection.clone();
        let key = self.key(&["instances"]);
        let all: Vec<(String, String)> = connection.hgetall(&key).await?;
        let now = now_ms();
        let mut live = Vec::new();
        for (instance_id, report) in all {
            let numbers: Vec<i64> = report.split(' ').filter_map(|n| n.parse().ok()).collect();
            match numbers[..] {
                [connections, users, expiry] if expiry >= now => {
                    live.push(InstanceCount { instance_id, connections: connections as u64, users: users as u64 })
                }
                _ => connection.hdel::<_, _, ()>(&key, &instance_id).await?,
            }
        }
        live.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(live)
    }

    /// Removes this instance's report (at shutdown).
    pub async fn forget_instance(&self) -> redis::RedisResult<()> {
        let mut connection = self.connection.clone();
        connection.hdel::<_, _, ()>(self.key(&["instances"]), self.instance.to_string()).await
    }

    /// Stores a ticket for `ttl`.
    pub async fn store_ticket(&self, hash: &str, claims: &str, ttl: Duration) -> redis::RedisResult<()> {
        let mut connection = self.connection.clone();
        let options = redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl.as_millis() as u64));
        connection.set_options::<_, _, ()>(self.key(&["ticket", hash]), claims, options).await
    }

    /// Takes a ticket (once: `GETDEL`).
    pub async fn redeem_ticket(&self, hash: &str) -> redis::RedisResult<Option<String>> {
        let mut connection = self.connection.clone();
        connection.get_del(self.key(&["ticket", hash])).await
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
