//! The link between instances: one Redis pub/sub connection per instance, subscribed to the
//! events channel. Every channel message published anywhere (here included) arrives here once
//! and is fanned out to this instance's subscribers.
//!
//! When the connection drops (Redis restarted, connection killed), the bridge reconnects with
//! exponential backoff and, once subscribed again, catches up: for every channel with
//! subscribers here it replays from the shared history what was published meanwhile. The
//! registry drops offsets it has already delivered, so nothing arrives twice.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::watch;

use super::hub::{Hub, until_stopped};
use super::protocol::Delivery;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts the bridge; it ends when the hub stops.
pub(super) fn spawn(hub: &Hub, client: redis::Client) {
    let weak = Arc::downgrade(&hub.inner);
    let mut stopping = hub.stopping();
    let Some(channel) = hub.inner.shared.as_ref().map(|shared| shared.events_channel()) else { return };
    tokio::spawn(async move {
        let mut retry = FIRST_RETRY;
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let hub = Hub { inner };
            match connect(&client, &channel).await {
                Ok((sink, stream)) => {
                    retry = FIRST_RETRY;
                    hub.set_bridged(true);
                    tracing::info!(instance.id = %hub.instance_id(), "realtime: Redis bridge connected");
                    hub.catch_up().await;
                    let stopped = relay(&hub, sink, stream, &mut stopping).await;
                    hub.set_bridged(false);
                    if stopped {
                        return;
                    }
                    tracing::warn!("realtime: Redis bridge lost; reconnecting");
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_ms = retry.as_millis() as u64, "realtime: Redis bridge cannot connect");
                }
            }
            drop(hub);
            tokio::select! {
                () = until_stopped(&mut stopping) => return,
                () = tokio::time::sleep(retry) => {}
            }
            retry = (retry * 2).min(LAST_RETRY);
        }
    });
}

async fn connect(client: &redis::Client, channel: &str) -> redis::RedisResult<(PubSubSink, PubSubStream)> {
    let timed_out = || redis::RedisError::from((redis::ErrorKind::Io, "timed out connecting"));
    let mut pubsub =
        tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await.map_err(|_| timed_out())??;
    tokio::time::timeout(CONNECT_TIMEOUT, pubsub.subscribe(channel)).await.map_err(|_| timed_out())??;
    Ok(pubsub.split())
}

/// Relays messages until the connection is lost (false) or the hub stops (true). A ping every
/// few seconds (`WS_PING_INTERVAL_SECONDS`, at most 10) notices a connection that died
/// silently: no reply within the connect timeout.
async fn relay(
    hub: &Hub,
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    stopping: &mut watch::Receiver<bool>,
) -> bool {
    let every = hub.settings().ping_interval.min(Duration::from_secs(10));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            () = until_stopped(stopping) => return true,
            message = stream.next() => {
                let Some(message) = message else { return false };
                match message.get_payload::<String>().ok().and_then(Delivery::decode) {
                    Some(delivery) => hub.fan_out(&Arc::new(delivery)),
                    None => tracing::warn!("realtime: ignored a malformed message on the events channel"),
                }
            }
            _ = ping.tick() => {
                // A subscribed RESP2 connection answers PING with the array `["pong", ""]`, not
                // `+PONG`: any reply proves the connection alive, so it is read as a `Value`.
                let answered = tokio::time::timeout(CONNECT_TIMEOUT, sink.ping::<redis::Value>()).await;
                if !matches!(answered, Ok(Ok(_))) {
                    return false;
                }
            }
        }
    }
}

impl Hub {
    /// Replays, from the shared history, what this instance's channels missed.
    async fn catch_up(&self) {
        let Some(shared) = &self.inner.shared else { return };
        let ttl = self.inner.settings.history_ttl;
        for (channel, last) in self.inner.registry.positions() {
            match shared.snapshot(channel.as_str(), true, ttl).await {
                Ok(snapshot) => {
                    for delivery in snapshot.entries.iter().filter(|d| d.offset.is_some_and(|o| o > last)) {
                        self.fan_out(delivery);
                    }
                }
                Err(err) => {
                    self.redis_failed("catch up a channel", &err);
                    return;
                }
            }
        }
    }
}
