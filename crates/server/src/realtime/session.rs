//! The protocol of one authenticated socket as a pure state machine: an inbound text becomes
//! one [`Step`] for the socket driver (`realtime::connection`), and the driver reports back what
//! the hub answered. No I/O here, so every rule is unit-tested without sockets.
//!
//! The session owns the socket's subscriptions and, per channel, the highest offset it has
//! delivered: live messages at or below it are duplicates of a replay and are dropped, which is
//! what makes resuming exact.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use uuid::Uuid;

use super::channel::{Caller, ChannelName, ChannelPolicy};
use super::history::{Snapshot, replay};
use super::protocol::{self, ClientMessage, Delivery, Position, close, error_code};
use super::rate_limit::{InboundLimit, Verdict};

/// What the driver does next.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Send this encoded message to the client.
    Reply(String),
    /// Register the subscription with the hub, then call [`Session::subscribed`].
    Subscribe {
        /// The channel (allowed by the policy, within the channel limit).
        channel: ChannelName,
        /// Resume after this position.
        since: Option<Position>,
    },
    /// Drop the subscription from the hub (the session already forgot it), then send
    /// [`Session::unsubscribed`].
    Unsubscribe(ChannelName),
    /// Publish `content` from this user on the channel.
    Publish {
        /// The channel (subscribed, allowed by the policy).
        channel: ChannelName,
        /// The client's `data`.
        content: Value,
    },
    /// Verify this fresh token, then call [`Session::reauthenticated`].
    Authenticate(String),
    /// Close the socket.
    Close {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: &'static str,
    },
}

/// A message for the client: encoded for it alone, or shared with every subscriber.
#[derive(Clone, Debug)]
pub enum Outbound {
    /// Encoded for this socket.
    Text(String),
    /// A channel message from the history.
    Shared(Arc<Delivery>),
}

/// Limits a session enforces itself.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    /// `WS_MAX_CHANNELS_PER_CONNECTION`.
    pub max_channels: usize,
    /// `WS_MESSAGES_PER_SECOND`.
    pub messages_per_second: u32,
}

/// One authenticated socket.
#[derive(Debug)]
pub struct Session {
    caller: Caller,
    connection_id: Uuid,
    expires_at: Option<i64>,
    channels: HashMap<ChannelName, u64>,
    limit: InboundLimit,
    max_channels: usize,
    policy: Arc<dyn ChannelPolicy>,
    refused: u64,
}

impl Session {
    /// A session for `caller` whose token expires at `expires_at` (Unix seconds).
    pub fn new(
        caller: Caller,
        connection_id: Uuid,
        expires_at: Option<i64>,
        limits: SessionLimits,
        policy: Arc<dyn ChannelPolicy>,
        now: Instant,
    ) -> Session {
        Session {
            caller,
            connection_id,
            expires_at,
            channels: HashMap::new(),
            limit: InboundLimit::new(limits.messages_per_second, now),
            max_channels: limits.max_channels,
            policy,
            refused: 0,
        }
    }

    /// The caller.
    pub fn caller(&self) -> Caller {
        self.caller
    }

    /// When the current token expires (Unix seconds).
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// Messages refused by the rate limit so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The subscribed channels.
    pub fn channels(&self) -> impl Iterator<Item = &ChannelName> {
        self.channels.keys()
    }

    /// Whether the socket is subscribed to `channel`.
    pub fn is_subscribed(&self, channel: &ChannelName) -> bool {
        self.channels.contains_key(channel)
    }

    /// The account's role changed (the caller's role is replaced). Returns each subscription the
    /// policy no longer allows, now forgotten, with the `unsubscribed` message telling the
    /// client why (`reason: ROLE_CHANGED`). Posting follows the new role from now on.
    pub fn role_changed(&mut self, role: crate::auth::Role) -> Vec<(ChannelName, String)> {
        self.caller.role = role;
        let refused: Vec<(ChannelName, String)> = self
            .channels
            .keys()
            .filter_map(|channel| {
                self.policy.can_subscribe(&self.caller, channel).err().map(|why| (channel.clone(), why))
            })
            .collect();
        let mut ended: Vec<(ChannelName, String)> = refused
            .into_iter()
            .map(|(channel, why)| {
                self.channels.remove(&channel);
                let data = json!({"channel": channel.as_str(), "reason": "ROLE_CHANGED", "message": why});
                let text = protocol::encode("unsubscribed", &data, Some(channel.as_str()));
                (channel, text)
            })
            .collect();
        ended.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        ended
    }

    /// The `connected` message.
    pub fn connected(&self) -> String {
        let data = json!({"user_id": self.caller.user_id, "connection_id": self.connection_id});
        protocol::encode("connected", &data, None)
    }

    /// Handles one inbound text message arriving at `now`.
    pub fn on_text(&mut self, text: &str, now: Instant) -> Step {
        match self.limit.check(now) {
            Verdict::Allow => {}
            Verdict::Refuse => {
                self.refused += 1;
                return error(error_code::RATE_LIMITED, "too many messages: this one was dropped", None);
            }
            Verdict::Disconnect => {
                self.refused += 1;
                return Step::Close { code: close::POLICY, reason: "message rate exceeded" };
            }
        }
        let message = match ClientMessage::parse(text) {
            Ok(message) => message,
            Err((code, why)) => return error(code, &why, None),
        };
        match message {
            ClientMessage::Ping => Step::Reply(protocol::encode("pong", &json!({}), None)),
            ClientMessage::Auth { token } => Step::Authenticate(token),
            ClientMessage::Subscribe { channel, since } => self.subscribe(&channel, since),
            ClientMessage::Unsubscribe { channel } => match ChannelName::parse(&channel) {
                Err(why) => error(error_code::INVALID_CHANNEL, &why, None),
                Ok(name) if self.channels.remove(&name).is_some() => Step::Unsubscribe(name),
                Ok(name) => error(error_code::NOT_SUBSCRIBED, "not subscribed to this channel", Some(&name)),
            },
            ClientMessage::Message { channel, data } => self.post(&channel, data),
        }
    }

    fn subscribe(&mut self, channel: &str, since: Option<Position>) -> Step {
        let name = match ChannelName::parse(channel) {
            Ok(name) => name,
            Err(why) => return error(error_code::INVALID_CHANNEL, &why, None),
        };
        if let Err(why) = self.policy.can_subscribe(&self.caller, &name) {
            return error(error_code::FORBIDDEN, &why, Some(&name));
        }
        if !self.channels.contains_key(&name) && self.channels.len() >= self.max_channels {
            let why = format!("at most {} channels per connection", self.max_channels);
            return error(error_code::TOO_MANY_CHANNELS, &why, Some(&name));
        }
        Step::Subscribe { channel: name, since }
    }

    fn post(&mut self, channel: &str, content: Value) -> Step {
        let name = match ChannelName::parse(channel) {
            Ok(name) => name,
            Err(why) => return error(error_code::INVALID_CHANNEL, &why, None),
        };
        if !self.channels.contains_key(&name) {
            return error(error_code::NOT_SUBSCRIBED, "subscribe to a channel before posting to it", Some(&name));
        }
        if let Err(why) = self.policy.can_publish(&self.caller, &name) {
            return error(error_code::FORBIDDEN, &why, Some(&name));
        }
        Step::Publish { channel: name, content }
    }

    /// The hub registered the subscription; `snapshot` was taken after that. Returns
    /// `subscribed` followed by the replayed messages, if `since` was given and recoverable.
    pub fn subscribed(
        &mut self,
        channel: ChannelName,
        snapshot: &Snapshot,
        since: Option<&Position>,
        members: Option<Vec<Uuid>>,
    ) -> Vec<Outbound> {
        let replayed = since.map(|position| replay(snapshot, position));
        let mut data = json!({"channel": channel.as_str(), "offset": snapshot.offset, "epoch": snapshot.epoch});
        if let Some(replayed) = &replayed {
            data["recovered"] = json!(replayed.is_some());
        }
        if let Some(members) = members {
            data["members"] = json!(members);
        }
        let mut out = vec![Outbound::Text(protocol::encode("subscribed", &data, Some(channel.as_str())))];
        out.extend(replayed.flatten().unwrap_or_default().into_iter().map(Outbound::Shared));
        self.track(channel, snapshot.offset);
        out
    }

    /// Records a subscription made without the client asking (the personal channel).
    pub fn track(&mut self, channel: ChannelName, offset: u64) {
        let delivered = self.channels.entry(channel).or_insert(0);
        *delivered = (*delivered).max(offset);
    }

    /// The `unsubscribed` message.
    pub fn unsubscribed(&self, channel: &ChannelName) -> String {
        protocol::encode("unsubscribed", &json!({"channel": channel.as_str()}), Some(channel.as_str()))
    }

    /// Whether a live message goes to the client: subscribed, and not already delivered.
    pub fn accept(&mut self, delivery: &Delivery) -> bool {
        let Some(delivered) = self.channels.get_mut(&*delivery.channel) else { return false };
        match delivery.offset {
            None => true,
            Some(offset) if offset > *delivered => {
                *delivered = offset;
                true
            }
            Some(_) => false,
        }
    }

    /// A fresh token was verified. It must belong to the same account; its role replaces the
    /// old one and its expiry becomes the session's. `Err` is the error message to send.
    pub fn reauthenticated(&mut self, caller: Caller, expires_at: Option<i64>) -> Result<(), String> {
        if caller.user_id != self.caller.user_id {
            let message = "the token belongs to another account";
            return Err(protocol::error(error_code::AUTHENTICATION_ERROR, message, None));
        }
        self.caller = caller;
        self.expires_at = expires_at;
        Ok(())
    }
}

fn error(code: &str, message: &str, channel: Option<&ChannelName>) -> Step {
    Step::Reply(protocol::error(code, message, channel.map(ChannelName::as_str)))
}

#[cfg(test)]
mod tests;
