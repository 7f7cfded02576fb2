//! Channel names and the one place that decides who may subscribe and post: [`ChannelPolicy`].
//!
//! | channel | subscribe | post | presence |
//! |---|---|---|---|
//! | `user:<id>` | that user only | that user only | no |
//! | `room:<name>` | any account | subscribers | yes |
//! | `broadcast` | any account | nobody (server only) | no |
//! | `admin:<name>` | admins | admins | no |
//!
//! An application adds its own kinds by implementing [`ChannelPolicy`] and delegating the
//! built-in ones to [`DefaultPolicy`], then installing it with `Hub::set_policy`.

use std::fmt;

use uuid::Uuid;

use crate::auth::Role;

/// Longest channel name.
pub const MAX_CHANNEL_LEN: usize = 128;

/// A well-formed channel name: 1 to 128 characters of `[A-Za-z0-9:._-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(String);

impl ChannelName {
    /// Checks the name.
    pub fn parse(name: &str) -> Result<ChannelName, String> {
        if name.is_empty() || name.len() > MAX_CHANNEL_LEN {
            return Err(format!("a channel name has 1 to {MAX_CHANNEL_LEN} characters"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-')) {
            return Err("a channel name uses only letters, digits and `:._-`".into());
        }
        Ok(ChannelName(name.to_owned()))
    }

    /// The personal channel of `user_id`.
    pub fn user(user_id: Uuid) -> ChannelName {
        ChannelName(format!("user:{user_id}"))
    }

    /// The channel everyone may receive.
    pub fn broadcast() -> ChannelName {
        ChannelName("broadcast".to_owned())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What kind of channel this is, by prefix.
    pub fn kind(&self) -> ChannelKind<'_> {
        match self.0.split_once(':') {
            None if self.0 == "broadcast" => ChannelKind::Broadcast,
            Some(("user", id)) => Uuid::parse_str(id).map_or(ChannelKind::Other(&self.0), ChannelKind::User),
            Some(("room", name)) if !name.is_empty() => ChannelKind::Room(name),
            Some(("admin", name)) if !name.is_empty() => ChannelKind::Admin(name),
            _ => ChannelKind::Other(&self.0),
        }
    }
}

impl std::borrow::Borrow<str> for ChannelName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The built-in channel kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind<'a> {
    /// `user:<id>`: one account's private channel.
    User(Uuid),
    /// `room:<name>`: open to every account, with presence.
    Room(&'a str),
    /// `broadcast`: everyone receives, only the server publishes.
    Broadcast,
    /// `admin:<name>`: admins only.
    Admin(&'a str),
    /// Anything else (an application's own kinds).
    Other(&'a str),
}

/// Who is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The account.
    pub user_id: Uuid,
    /// Its role, from the database at authentication.
    pub role: Role,
}

/// Decides who may subscribe to and post on which channel. Implementations must be fast and
/// must not block: they run on every subscribe and every post.
pub trait ChannelPolicy: Send + Sync + fmt::Debug {
    /// `Ok` to allow; `Err(reason)` to refuse the subscription.
    fn can_subscribe(&self, caller: &Caller, channel: &ChannelName) -> Result<(), String>;

    /// `Ok` to allow; `Err(reason)` to refuse the post (the caller is already subscribed).
    fn can_publish(&self, caller: &Caller, channel: &ChannelName) -> Result<(), String>;

    /// Whether subscribers see each other come and go (`user_online` / `user_offline`, and
    /// `members` in `subscribed`).
    fn has_presence(&self, channel: &ChannelName) -> bool;
}

/// The built-in rules (see the module documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultPolicy;

impl ChannelPolicy for DefaultPolicy {
    fn can_subscribe(&self, caller: &Caller, channel: &ChannelName) -> Result<(), String> {
        match channel.kind() {
            ChannelKind::User(owner) if owner == caller.user_id => Ok(()),
            ChannelKind::User(_) => Err("another account's channel".into()),
            ChannelKind::Room(_) | ChannelKind::Broadcast => Ok(()),
            ChannelKind::Admin(_) if caller.role >= Role::Admin => Ok(()),
            ChannelKind::Admin(_) => Err("admin channels require the admin role".into()),
            ChannelKind::Other(_) => Err("unknown kind of channel: use user:, room:, admin: or broadcast".into()),
        }
    }

    fn can_publish(&self, caller: &Caller, channel: &ChannelName) -> Result<(), String> {
        match channel.kind() {
            ChannelKind::Broadcast => Err("broadcast is receive-only".into()),
            _ => self.can_subscribe(caller, channel),
        }
    }

    fn has_presence(&self, channel: &ChannelName) -> bool {
        matches!(channel.kind(), ChannelKind::Room(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> ChannelName {
        ChannelName::parse(text).unwrap()
    }

    #[test]
    fn names_are_validated() {
        assert!(ChannelName::parse("room:lobby-1.a_b").is_ok());
        assert!(ChannelName::parse(&"a".repeat(128)).is_ok());
        for bad in ["", "room lobby", "room/x", "rôom:x", &"a".repeat(129)] {
            assert!(ChannelName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_default_policy_applies_the_table() {
        let me = Caller { user_id: Uuid::now_v7(), role: Role::User };
        let admin = Caller { user_id: Uuid::now_v7(), role: Role::Admin };
        let policy = DefaultPolicy;
        assert!(policy.can_subscribe(&me, &ChannelName::user(me.user_id)).is_ok());
        assert!(policy.can_subscribe(&admin, &ChannelName::user(me.user_id)).is_err());
        assert!(policy.can_subscribe(&me, &name("room:x")).is_ok() && policy.can_publish(&me, &name("room:x")).is_ok());
        assert!(policy.can_subscribe(&me, &name("broadcast")).is_ok());
        assert!(policy.can_publish(&admin, &name("broadcast")).is_err());
        assert!(policy.can_subscribe(&me, &name("admin:ops")).is_err());
        assert!(policy.can_subscribe(&admin, &name("admin:ops")).is_ok());
        assert!(policy.can_subscribe(&me, &name("team:x")).is_err());
        assert!(policy.can_subscribe(&me, &name("user:not-a-uuid")).is_err());
        assert!(policy.has_presence(&name("room:x")) && !policy.has_presence(&name("broadcast")));
    }
}
