//! Presence in channels whose policy has it (rooms): `user_online` when an account's first
//! socket (on any instance) joins, `user_offline` when its last one leaves, or when the
//! instance holding it dies and its entries expire.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::channel::ChannelName;
use super::engine::Engine;
use super::protocol::{self, Delivery};

impl Engine {
    /// The account's first socket here joined `channel`.
    pub(super) async fn join_presence(&self, channel: &ChannelName, user_id: Uuid) {
        let first = match &self.shared {
            None => true,
            Some(shared) => match shared.join(Some(channel.as_str()), user_id, self.settings.presence_ttl).await {
                Ok(first) => first,
                Err(err) => {
                    self.redis_failed("record presence", &err);
                    true
                }
            },
        };
        if first {
            self.announce(channel, "user_online", user_id).await;
        }
    }

    /// The account's last socket here left `channel`.
    pub(super) async fn leave_presence(&self, channel: &ChannelName, user_id: Uuid) {
        let last = match &self.shared {
            None => true,
            Some(shared) => match shared.leave(Some(channel.as_str()), user_id).await {
                Ok(last) => last,
                Err(err) => {
                    self.redis_failed("remove presence", &err);
                    true
                }
            },
        };
        if last {
            self.announce(channel, "user_offline", user_id).await;
        }
    }

    /// Tells the channel's subscribers on every instance (presence events are not kept).
    pub(super) async fn announce(&self, channel: &ChannelName, kind: &str, user_id: Uuid) {
        let text = protocol::encode(kind, &json!({"user_id": user_id}), Some(channel.as_str()));
        let delivery = Arc::new(Delivery {
            channel: channel.as_str().into(),
            offset: None,
            sent_at_ms: Utc::now().timestamp_millis(),
            text: text.into(),
        });
        if let Some(shared) = &self.shared {
            match shared.relay(&delivery.text).await {
                Ok(()) => return,
                Err(err) => self.redis_failed("relay a presence event", &err),
            }
        }
        self.fan_out(&delivery);
    }

    /// The accounts present in `channel`, on every instance.
    pub(super) async fn members(&self, channel: &ChannelName) -> Vec<Uuid> {
        if let Some(shared) = &self.shared {
            match shared.present(Some(channel.as_str())).await {
                Ok(members) => return members,
                Err(err) => self.redis_failed("read presence", &err),
            }
        }
        let mut members = self.registry.members(channel);
        members.sort_unstable();
        members
    }
}
