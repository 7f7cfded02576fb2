//! This instance's sockets, their subscriptions and the fan-out.
//!
//! Everything sits behind one short-lived mutex that is never held across an `.await`. The
//! fan-out only pushes into each socket's bounded [`Mailbox`], never waiting: a socket whose
//! queue is full is evicted (its driver closes it with 1013) and nobody else waits for it.
//!
//! In local mode the registry also keeps each channel's history, bounded per channel and, over
//! every channel, by `WS_HISTORY_TOTAL_BYTES` (the least recently published channels lose
//! their history first). Each socket's [`Standing`] (role, revocation) is pushed to it here.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::channel::ChannelName;
use super::history::{Bounds, LocalHistory, Snapshot};
use super::mailbox::{Mailbox, Pushed};
use super::protocol::Delivery;
use crate::auth::Role;

/// A socket's end of the registry.
#[derive(Debug)]
pub(crate) struct Attached {
    /// The connection id.
    pub id: Uuid,
    /// Channel messages for this socket, its standing, and whether it was evicted.
    pub mailbox: Arc<Mailbox>,
}

/// What a detached socket leaves behind.
#[derive(Debug, Default)]
pub(crate) struct Detached {
    /// The account.
    pub user_id: Uuid,
    /// Channels where this was the account's last socket on this instance.
    pub left: Vec<ChannelName>,
    /// Whether this was the account's last socket on this instance.
    pub last_of_user: bool,
}

/// How one message spread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FanOut {
    /// Sockets it was queued for.
    pub queued: u64,
    /// Sockets whose queue was full (now evicted).
    pub dropped: u64,
}

/// Who is where on this instance.
#[derive(Debug, Default)]
pub(crate) struct Memberships {
    /// (channel, account) pairs.
    pub members: Vec<(ChannelName, Uuid)>,
    /// (account, socket) pairs.
    pub sockets: Vec<(Uuid, Uuid)>,
}

/// One of the caller's sockets on this instance.
#[derive(Clone, Debug)]
pub(crate) struct LocalConnection {
    pub id: Uuid,
    pub connected_at: DateTime<Utc>,
    pub channels: Vec<String>,
}

#[derive(Debug)]
struct Connection {
    user_id: Uuid,
    session_id: Option<Uuid>,
    connected_at: DateTime<Utc>,
    mailbox: Arc<Mailbox>,
    channels: HashSet<ChannelName>,
}

#[derive(Debug, Default)]
struct Channel {
    subscribers: HashSet<Uuid>,
    members: HashMap<Uuid, usize>,
    history: LocalHistory,
    last_offset: u64,
    touched_ms: i64,
    /// The instance-wide publish count when this channel was last published to: orders
    /// channels for eviction exactly, where times in milliseconds can tie.
    published_seq: u64,
}

#[derive(Debug, Default)]
struct State {
    connections: HashMap<Uuid, Connection>,
    channels: HashMap<ChannelName, Channel>,
    users: HashMap<Uuid, usize>,
    history_bytes: usize,
    published: u64,
}

/// Who a socket is: its account, role and (for own tokens) sign-in session.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Holder {
    pub user_id: Uuid,
    pub role: Role,
    pub session_id: Option<Uuid>,
}

/// The registry of one instance.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    state: Mutex<State>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind; they are still consistent
        // enough to serve, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a socket of `holder` with a queue of `queue` messages, unless the account already
    /// has `limit` sockets here. The flag tells whether it is the account's first socket here.
    pub fn attach(&self, holder: Holder, queue: usize, limit: usize) -> Option<(Attached, bool)> {
        let user_id = holder.user_id;
        let mut state = self.lock();
        let count = state.users.entry(user_id).or_insert(0);
        if *count >= limit {
            if *count == 0 {
                state.users.remove(&user_id);
            }
            return None;
        }
        *count += 1;
        let first = *count == 1;
        let mailbox = Mailbox::new(queue, Standing { role: holder.role, revoked: None });
        let id = Uuid::now_v7();
        let connection = Connection {
            user_id,
            session_id: holder.session_id,
            connected_at: Utc::now(),
            mailbox: mailbox.clone(),
            channels: HashSet::new(),
        };
        state.connections.insert(id, connection);
        Some((Attached { id, mailbox }, first))
    }

    /// A socket proved itself again with a fresh token: its role and session are now these.
    pub fn reauthenticate(&self, id: Uuid, role: Role, session_id: Option<Uuid>) {
        let mut state = self.lock();
        let Some(connection) = state.connections.get_mut(&id) else { return };
        connection.session_id = session_id;
        connection.mailbox.update_standing(|standing| {
            let changed = standing.role != role;
            standing.role = role;
            changed
        });
    }

    /// Applies what the revocation feed reports to every socket here: an inactive account or a
    /// revoked session revokes the socket, a new role replaces the old one. Idempotent; returns
    /// how many sockets changed.
    pub fn apply(&self, accounts: &HashMap<Uuid, (Role, bool)>, sessions: &HashSet<Uuid>) -> usize {
        let state = self.lock();
        let mut changed = 0;
        for connection in state.connections.values() {
            let account = accounts.get(&connection.user_id);
            let revoked = match account {
                Some((_, false)) => Some(Revoked::Deactivated),
                _ => connection.session_id.filter(|id| sessions.contains(id)).map(|_| Revoked::SessionRevoked),
            };
            let modified = connection.mailbox.update_standing(|standing| {
                if standing.revoked.is_some() {
                    return false;
                }
                if revoked.is_some() {
                    standing.revoked = revoked;
                    return true;
                }
                match account {
                    Some((role, _)) if *role != standing.role => {
                        standing.role = *role;
                        true
                    }
                    _ => false,
                }
            });
            changed += usize::from(modified);
        }
        changed
    }

    /// Removes a socket and its subscriptions.
    pub fn detach(&self, id: Uuid) -> Option<Detached> {
        let mut state = self.lock();
        let connection = state.connections.remove(&id)?;
        let mut detached = Detached { user_id: connection.user_id, ..Detached::default() };
        for channel in connection.channels {
            if leave(&mut state, id, connection.user_id, &channel) {
                detached.left.push(channel);
            }
        }
        if let Some(count) = state.users.get_mut(&connection.user_id) {
            *count -= 1;
            if *count == 0 {
                state.users.remove(&connection.user_id);
                detached.last_of_user = true;
            }
        }
        Some(detached)
    }

    /// Subscribes a socket. `Some(joined)`: whether its account just became a member here;
    /// `None`: the socket is gone.
    pub fn subscribe(&self, id: Uuid, channel: &ChannelName, now_ms: i64) -> Option<bool> {
        let mut state = self.lock();
        let connection = state.connections.get_mut(&id)?;
        let user_id = connection.user_id;
        if !connection.channels.insert(channel.clone()) {
            return Some(false);
        }
        let entry = state.channels.entry(channel.clone()).or_default();
        entry.subscribers.insert(id);
        entry.touched_ms = now_ms;
        let members = entry.members.entry(user_id).or_insert(0);
        *members += 1;
        Some(*members == 1)
    }

    /// Unsubscribes a socket; true when its account is no longer a member here.
    pub fn unsubscribe(&self, id: Uuid, channel: &ChannelName) -> bool {
        let mut state = self.lock();
        let Some(connection) = state.connections.get_mut(&id) else { return false };
        let user_id = connection.user_id;
        if !connection.channels.remove(channel) {
            return false;
        }
        leave(&mut state, id, user_id, channel)
    }

    /// Local mode: assigns the next offset, keeps the message and fans it out, in one step so
    /// offsets reach every socket in order.
    pub fn publish(
        &self,
        channel: &ChannelName,
        bounds: Bounds,
        total_bytes: usize,
        build: impl FnOnce(u64) -> Delivery,
    ) -> (Arc<Delivery>, FanOut) {
        let mut state = self.lock();
        state.published += 1;
        let published = state.published;
        let entry = state.channels.entry(channel.clone()).or_default();
        entry.published_seq = published;
        let delivery = Arc::new(build(entry.history.next_offset()));
        let before = entry.history.bytes();
        entry.history.push(delivery.clone(), bounds);
        let after = entry.history.bytes();
        entry.touched_ms = delivery.sent_at_ms;
        state.history_bytes = state.history_bytes + after - before;
        evict(&mut state, channel, total_bytes);
        let fan_out = fan_out(&mut state, &delivery);
        (delivery, fan_out)
    }

    /// Fans out a message that already has its offset (relayed through Redis) or has none
    /// (presence). Offsets at or below the last one seen here are duplicates and dropped.
    pub fn deliver(&self, delivery: &Arc<Delivery>) -> FanOut {
        let mut state = self.lock();
        fan_out(&mut state, delivery)
    }

    /// Local mode: the channel's position (and retained messages).
    pub fn snapshot(&self, channel: &ChannelName, now_ms: i64, ttl: Duration, with_entries: bool) -> Snapshot {
        let mut state = self.lock();
        let entry = state.channels.entry(channel.clone()).or_default();
        entry.touched_ms = now_ms;
        let before = entry.history.bytes();
        let snapshot = entry.history.snapshot(now_ms, ttl, with_entries);
        let freed = before - entry.history.bytes();
        state.history_bytes -= freed;
        snapshot
    }

    /// Bytes of history kept here (local mode), over every channel.
    pub fn history_bytes(&self) -> usize {
        self.lock().history_bytes
    }

    /// Redis mode: a socket that is the channel's only subscriber here starts the instance's
    /// de-duplication at the snapshot it was given (nobody here can miss anything by it).
    pub fn start_at(&self, id: Uuid, channel: &ChannelName, offset: u64) {
        let mut state = self.lock();
        if let Some(entry) = state.channels.get_mut(channel)
            && entry.subscribers.len() == 1
            && entry.subscribers.contains(&id)
        {
            entry.last_offset = entry.last_offset.max(offset);
        }
    }

    /// The accounts subscribed to a channel here.
    pub fn members(&self, channel: &ChannelName) -> Vec<Uuid> {
        let state = self.lock();
        state.channels.get(channel).map(|entry| entry.members.keys().copied().collect()).unwrap_or_default()
    }

    /// Channels with subscribers here and the last offset delivered on each.
    pub fn positions(&self) -> Vec<(ChannelName, u64)> {
        let state = self.lock();
        state
            .channels
            .iter()
            .filter(|(_, entry)| !entry.subscribers.is_empty())
            .map(|(name, entry)| (name.clone(), entry.last_offset))
            .collect()
    }

    /// Every membership and every socket here.
    pub fn memberships(&self) -> Memberships {
        let state = self.lock();
        let members = state
            .channels
            .iter()
            .flat_map(|(name, entry)| entry.members.keys().map(move |user| (name.clone(), *user)))
            .collect();
        let sockets = state.connections.iter().map(|(id, c)| (c.user_id, *id)).collect();
        Memberships { members, sockets }
    }

    /// Forgets channels nobody here subscribes to, once idle for `keep` (local mode keeps them
    /// that long so their history and epoch survive short absences).
    pub fn sweep(&self, now_ms: i64, keep: Duration, history_ttl: Duration) {
        let mut state = self.lock();
        let idle_before = now_ms - keep.as_millis() as i64;
        let mut freed = 0;
        state.channels.retain(|_, entry| {
            let before = entry.history.bytes();
            entry.history.expire(now_ms, history_ttl);
            freed += before - entry.history.bytes();
            !entry.subscribers.is_empty() || entry.touched_ms >= idle_before || !entry.history.is_empty()
        });
        state.history_bytes -= freed;
    }

    /// The caller's sockets here.
    pub fn connections_of(&self, user_id: Uuid) -> Vec<LocalConnection> {
        let state = self.lock();
        let mut list: Vec<LocalConnection> = state
            .connections
            .iter()
            .filter(|(_, c)| c.user_id == user_id)
            .map(|(id, c)| {
                let mut channels: Vec<String> = c.channels.iter().map(|n| n.as_str().to_owned()).collect();
                channels.sort_unstable();
                LocalConnection { id: *id, connected_at: c.connected_at, channels }
            })
            .collect();
        list.sort_by_key(|c| c.id);
        list
    }

    /// Whether any socket here is subscribed to `channel`.
    pub fn has_subscribers(&self, channel: &ChannelName) -> bool {
        self.lock().channels.get(channel).is_some_and(|entry| !entry.subscribers.is_empty())
    }

    /// `(sockets, accounts)` here.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.connections.len(), state.users.len())
    }
}

/// Removes one subscription; true when the account has no other socket in the channel here.
fn leave(state: &mut State, id: Uuid, user_id: Uuid, channel: &ChannelName) -> bool {
    let Some(entry) = state.channels.get_mut(channel) else { return false };
    entry.subscribers.remove(&id);
    let Some(count) = entry.members.get_mut(&user_id) else { return false };
    *count -= 1;
    if *count > 0 {
        return false;
    }
    entry.members.remove(&user_id);
    true
}

/// Drops whole channel histories, least recently published first, until the total is within
/// `limit`. `keep` (the channel just published to, itself within its own bound) is spared.
fn evict(state: &mut State, keep: &ChannelName, limit: usize) {
    while state.history_bytes > limit {
        let oldest = state
            .channels
            .iter()
            .filter(|(name, entry)| *name != keep && !entry.history.is_empty())
            .min_by_key(|(_, entry)| entry.published_seq)
            .map(|(name, _)| name.clone());
        let Some(entry) = oldest.and_then(|name| state.channels.get_mut(&name)) else { return };
        state.history_bytes -= entry.history.bytes();
        entry.history.clear();
    }
}

fn fan_out(state: &mut State, delivery: &Arc<Delivery>) -> FanOut {
    let mut result = FanOut::default();
    let State { connections, channels, .. } = state;
    let Some(entry) = channels.get_mut(&*delivery.channel) else { return result };
    if let Some(offset) = delivery.offset {
        if offset <= entry.last_offset {
            return result;
        }
        entry.last_offset = offset;
    }
    for id in &entry.subscribers {
        let Some(connection) = connections.get(id) else { continue };
        match connection.mailbox.push(delivery) {
            Pushed::Queued => result.queued += 1,
            Pushed::Evicted | Pushed::Gone => result.dropped += 1,
        }
    }
    result
}

/// What a socket's account may still do, as the revocation feed last reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Standing {
    /// The account's role now.
    pub role: Role,
    /// Set once the socket must close.
    pub revoked: Option<Revoked>,
}

/// Why a socket must close (with 4003).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Revoked {
    /// The account was deactivated (or erased).
    Deactivated,
    /// The socket's sign-in session was revoked (logout, password reset, token reuse).
    SessionRevoked,
}

impl Revoked {
    /// The close reason.
    pub fn reason(self) -> &'static str {
        match self {
            Revoked::Deactivated => "account deactivated",
            Revoked::SessionRevoked => "session revoked",
        }
    }
}
