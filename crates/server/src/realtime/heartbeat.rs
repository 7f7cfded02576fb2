//! The hub's periodic work: forget idle channels and expired tickets, and with Redis keep this
//! instance's presence, socket slots and counts alive (refreshing them well before
//! `WS_PRESENCE_TTL_SECONDS`) and sweep presence that dead instances left behind.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::channel::ChannelName;
use super::engine::{Engine, until_stopped};
use super::registry::Memberships;
use super::shared::{CHANNEL_RETENTION, Liveness};

/// How often the heartbeat runs: at least three times per presence lifetime.
pub(super) fn interval(engine: &Engine) -> Duration {
    let settings = &engine.settings;
    settings.ping_interval.min(settings.presence_ttl / 3).max(Duration::from_millis(200))
}

/// Starts the heartbeat; it ends when the hub stops or is dropped.
pub(super) fn spawn(engine: &Arc<Engine>) {
    let weak = Arc::downgrade(engine);
    let mut stopping = engine.stopping();
    let every = interval(engine);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = until_stopped(&mut stopping) => return,
                () = tokio::time::sleep(every) => {}
            }
            let Some(engine) = weak.upgrade() else { return };
            beat(&engine).await;
        }
    });
}

async fn beat(engine: &Engine) {
    let settings = &engine.settings;
    engine.registry.sweep(Utc::now().timestamp_millis(), CHANNEL_RETENTION, settings.history_ttl);
    engine.tickets.prune();
    let Some(shared) = &engine.shared else { return };
    let policy = engine.policy();
    let Memberships { members, sockets } = engine.registry.memberships();
    let presence: Vec<(String, uuid::Uuid)> = members
        .into_iter()
        .filter(|(channel, _)| policy.has_presence(channel))
        .map(|(channel, user)| (channel.as_str().to_owned(), user))
        .collect();
    let channels: BTreeSet<String> = presence.iter().map(|(channel, _)| channel.clone()).collect();
    let live = Liveness { presence, sockets, counts: engine.registry.counts() };
    match shared.refresh(&live, settings.presence_ttl).await {
        Ok(revived) => {
            for (channel, user) in revived {
                if let Ok(channel) = ChannelName::parse(&channel) {
                    engine.announce(&channel, "user_online", user).await;
                }
            }
        }
        Err(err) => engine.redis_failed("refresh presence", &err),
    }
    for channel in channels.iter().filter_map(|c| ChannelName::parse(c).ok()) {
        match shared.sweep(Some(channel.as_str())).await {
            Ok(gone) => {
                for user in gone {
                    engine.announce(&channel, "user_offline", user).await;
                }
            }
            Err(err) => engine.redis_failed("sweep presence", &err),
        }
    }
    if let Err(err) = shared.sweep(None).await {
        engine.redis_failed("sweep online accounts", &err);
    }
}
