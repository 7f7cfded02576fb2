//! The link between instances: one Redis pub/sub connection per instance, subscribed to the
//! events channel. Every channel message published anywhere (here included) arrives here once
//! and is fanned out to this instance's subscribers.
//!
//! When the connection drops (Redis restarted, connection killed), the bridge reconnects with
//! exponential backoff and, once subscribed again, catches up: for every channel with
//! subscribers here it replays from the shared history what was published meanwhile. The
//! registry drops offsets it has already delivered, so nothing arrives twice.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::watch;

use super::engine::{Engine, until_stopped};
use super::protocol::Delivery;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts the bridge; it ends when the hub stops or is dropped.
pub(super) fn spawn(engine: &Arc<Engine>, client: redis::Client) {
    let weak: Weak<Engine> = Arc::downgrade(engine);
    let mut stopping = engine.stopping();
    let Some(channel) = engine.shared.as_ref().map(|shared| shared.events_channel()) else { return };
    tokio::spawn(async move {
        let mut retry = FIRST_RETRY;
        loop {
            let Some(engine) = weak.upgrade() else { return };
            match connect(&client, &channel).await {
                Ok((sink, stream)) => {
                    retry = FIRST_RETRY;
                    engine.set_bridged(true);
                    tracing::info!(instance.id = %engine.instance_id, "realtime: Redis bridge connected");
                    catch_up(&engine).await;
                    let stopped = relay(&engine, sink, stream, &mut stopping).await;
                    engine.set_bridged(false);
                    if stopped {
                        return;
                    }
                    tracing::warn!("realtime: Redis bridge lost; reconnecting");
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_ms = retry.as_millis() as u64, "realtime: Redis bridge cannot connect");
                }
            }
            drop(engine);
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
    engine: &Engine,
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    stopping: &mut watch::Receiver<bool>,
) -> bool {
    let every = engine.settings.ping_interval.min(Duration::from_secs(10));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            () = until_stopped(stopping) => return true,
            message = stream.next() => {
                let Some(message) = message else { return false };
                match message.get_payload::<String>().ok().and_then(Delivery::decode) {
                    Some(delivery) => engine.fan_out(&Arc::new(delivery)),
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

/// Replays, from the shared history, what this instance's channels missed.
async fn catch_up(engine: &Engine) {
    let Some(shared) = &engine.shared else { return };
    let ttl = engine.settings.history_ttl;
    for (channel, last) in engine.registry.positions() {
        match shared.snapshot(channel.as_str(), true, ttl).await {
            Ok(snapshot) => {
                for delivery in snapshot.entries.iter().filter(|d| d.offset.is_some_and(|o| o > last)) {
                    engine.fan_out(delivery);
                }
            }
            Err(err) => {
                engine.redis_failed("catch up a channel", &err);
                return;
            }
        }
    }
}
