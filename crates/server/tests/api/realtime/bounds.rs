//! Memory bounds: history per channel (count and bytes, in process and in Redis), history per
//! instance, room joins per account and WebSocket handshakes per client IP.

use omnistack::realtime::Event;
use omnistack_testkit::{TestApp, WsClient, refused_handshake};
use serde_json::{Value, json};

use super::{account, assert_error, connect, socket_url};

async fn publish(app: &TestApp, channel: &str, content: &str) {
    let event = Event::Message { from_user_id: None, content: json!(content) };
    app.state.realtime.publish(channel, event).await.unwrap();
}

/// Resumes `channel` after `offset` on a fresh socket: whether the gap was recoverable, and
/// how many messages were replayed.
async fn resume(app: &TestApp, token: &str, channel: &str, offset: u64, epoch: &str) -> (bool, usize) {
    let mut socket = connect(app, token).await;
    let since = json!({"offset": offset, "epoch": epoch});
    socket.send(json!({"type": "subscribe", "channel": channel, "since": since})).await;
    let subscribed = socket.next_of_type("subscribed").await;
    let recovered = subscribed["data"]["recovered"].as_bool().unwrap();
    let mut replayed = 0;
    if recovered {
        let last = subscribed["data"]["offset"].as_u64().unwrap();
        for _ in offset..last {
            assert_eq!(socket.next().await["type"], "message");
            replayed += 1;
        }
    }
    socket.close().await;
    (recovered, replayed)
}

/// The channel's epoch and offset.
async fn position(app: &TestApp, token: &str, channel: &str) -> (String, u64) {
    let mut socket = connect(app, token).await;
    let subscribed: Value = socket.subscribe(channel).await;
    socket.close().await;
    (subscribed["data"]["epoch"].as_str().unwrap().to_owned(), subscribed["data"]["offset"].as_u64().unwrap())
}

#[tokio::test]
async fn a_channels_history_never_holds_more_than_its_count_or_its_bytes() {
    let app = TestApp::builder()
        .env("WS_HISTORY_SIZE", "5")
        .env("WS_HISTORY_MAX_BYTES", "3000")
        .env("RATE_LIMIT_ROOMS", "1000/minute")
        .spawn()
        .await;
    let (token, _) = account(&app).await;
    for _ in 0..10 {
        publish(&app, "room:big", &"x".repeat(1000)).await;
    }
    let (epoch, offset) = position(&app, &token, "room:big").await;
    assert_eq!(offset, 10);
    assert_eq!(resume(&app, &token, "room:big", 8, &epoch).await, (true, 2), "two 1 KB messages fit in 3,000 bytes");
    assert!(!resume(&app, &token, "room:big", 7, &epoch).await.0, "a third does not");
    let huge = "y".repeat(4000);
    publish(&app, "room:big", &huge).await;
    assert!(!resume(&app, &token, "room:big", 10, &epoch).await.0, "a message over the byte bound is not kept");

    for _ in 0..10 {
        publish(&app, "room:small", "hi").await;
    }
    let (epoch, _) = position(&app, &token, "room:small").await;
    assert_eq!(resume(&app, &token, "room:small", 5, &epoch).await, (true, 5));
    assert!(!resume(&app, &token, "room:small", 4, &epoch).await.0, "only five messages are kept");
}

#[tokio::test]
async fn an_instances_history_is_bounded_by_dropping_the_least_recently_published_channels() {
    if omnistack_testkit::redis_url().is_some() {
        eprintln!("skipping: with Redis, history is kept in Redis, not in process");
        return;
    }
    let app = TestApp::builder()
        .env("WS_HISTORY_MAX_BYTES", "4000")
        .env("WS_HISTORY_TOTAL_BYTES", "8000")
        .env("RATE_LIMIT_ROOMS", "1000/minute")
        .spawn()
        .await;
    let (token, _) = account(&app).await;
    for channel in ["room:first", "room:second", "room:third"] {
        for _ in 0..3 {
            publish(&app, channel, &"z".repeat(1000)).await;
            assert!(app.state.realtime.history_bytes() <= 8000, "{}", app.state.realtime.history_bytes());
        }
    }
    let (first, _) = position(&app, &token, "room:first").await;
    assert!(!resume(&app, &token, "room:first", 2, &first).await.0, "the oldest channel lost its history");
    let (third, _) = position(&app, &token, "room:third").await;
    assert_eq!(resume(&app, &token, "room:third", 0, &third).await, (true, 3));
}

#[tokio::test]
async fn joining_rooms_past_the_accounts_rate_gets_too_many_rooms() {
    let app = TestApp::builder().env("RATE_LIMIT_ROOMS", "3/minute").spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    for room in ["room:1", "room:2", "room:3"] {
        socket.subscribe(room).await;
    }
    socket.send(json!({"type": "subscribe", "channel": "room:4"})).await;
    let refused = socket.next_of_type("error").await;
    assert_error(&refused, "TOO_MANY_ROOMS");
    assert_eq!(refused["channel"], "room:4");
    assert_eq!(socket.subscribe("room:1").await["type"], "subscribed", "a room the socket is in is no new join");
    socket.subscribe("broadcast").await;

    let mut second = connect(&app, &token).await;
    second.send(json!({"type": "subscribe", "channel": "room:5"})).await;
    assert_error(&second.next_of_type("error").await, "TOO_MANY_ROOMS");
    let (other, _) = account(&app).await;
    connect(&app, &other).await.subscribe("room:5").await;
}

#[tokio::test]
async fn websocket_handshakes_over_the_ip_limit_get_429_before_the_upgrade() {
    let app = TestApp::builder().env("RATE_LIMIT_WEBSOCKET", "3/minute").spawn().await;
    let (token, _) = account(&app).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(WsClient::connected(&socket_url(&app, &token)).await.0);
    }
    for url in [socket_url(&app, &token), app.ws_url("/api/v1/app/ws?token=not-a-jwt"), app.ws_url("/api/v2/app/ws")] {
        let (status, body) = refused_handshake(&url).await;
        assert_eq!(status, 429, "{url}: {body}");
        assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED");
        assert!(body["error"]["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    }
}
