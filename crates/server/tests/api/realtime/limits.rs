//! Each limit: sockets per account, channels per socket, message size, message rate, and the
//! bounded outbound queue (a slow consumer is dropped without slowing anyone else).

use std::time::{Duration, Instant};

use omnistack::realtime::Event;
use omnistack_testkit::{TestApp, WsClient};
use serde_json::json;

use super::{account, assert_error, connect, socket_url};

#[tokio::test]
async fn an_account_has_a_limited_number_of_sockets() {
    let app = TestApp::builder().env("WS_MAX_CONNECTIONS_PER_USER", "2").spawn().await;
    let (token, _) = account(&app).await;
    let first = connect(&app, &token).await;
    let _second = connect(&app, &token).await;
    let mut third = WsClient::connect(&socket_url(&app, &token)).await;
    assert_error(&third.next().await, "TOO_MANY_CONNECTIONS");
    let frame = third.closed_within(Duration::from_secs(5)).await.expect("a close frame");
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1008, "too many connections"));
    first.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _fourth = connect(&app, &token).await;
    let (other, _) = account(&app).await;
    let _unaffected = connect(&app, &other).await;
}

#[tokio::test]
async fn a_socket_has_a_limited_number_of_channels_counting_its_own() {
    let app = TestApp::builder().env("WS_MAX_CHANNELS_PER_CONNECTION", "3").spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    socket.subscribe("room:a").await;
    socket.subscribe("room:b").await;
    socket.send(json!({"type": "subscribe", "channel": "room:c"})).await;
    assert_error(&socket.next_of_type("error").await, "TOO_MANY_CHANNELS");
    assert_eq!(socket.subscribe("room:a").await["type"], "subscribed", "subscribing again is not a new channel");
    socket.send(json!({"type": "unsubscribe", "channel": "room:b"})).await;
    socket.next_of_type("unsubscribed").await;
    socket.subscribe("room:c").await;
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009() {
    let app = TestApp::builder().env("WS_MAX_MESSAGE_BYTES", "1024").spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    socket.send(json!({"type": "message", "channel": "room:a", "data": "x".repeat(900)})).await;
    assert_error(&socket.next().await, "NOT_SUBSCRIBED");
    socket.send(json!({"type": "message", "channel": "room:a", "data": "x".repeat(2000)})).await;
    assert_eq!(socket.close_code(Duration::from_secs(5)).await, 1009);
}

#[tokio::test]
async fn a_flood_gets_errors_then_a_1008_close() {
    let app = TestApp::builder().env("WS_MESSAGES_PER_SECOND", "5").spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    for _ in 0..6 {
        socket.send(json!({"type": "ping"})).await;
    }
    for _ in 0..5 {
        assert_eq!(socket.next().await["type"], "pong");
    }
    assert_error(&socket.next().await, "RATE_LIMITED");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(socket.next().await["type"], "pong", "the limit is a rate, not a quota");
    for _ in 0..20 {
        socket.send(json!({"type": "ping"})).await;
    }
    let frame = socket.closed_within(Duration::from_secs(5)).await.expect("a close frame");
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1008, "message rate exceeded"));
    assert!(app.state.realtime.stats().rate_limited >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_dropped_with_1013_and_slows_nobody() {
    let app = TestApp::builder().env("WS_OUTBOUND_QUEUE", "32").env("WS_HISTORY_SIZE", "10").spawn().await;
    let (fast_token, _) = account(&app).await;
    let (slow_token, _) = account(&app).await;
    let mut fast = connect(&app, &fast_token).await;
    let mut slow = connect(&app, &slow_token).await;
    fast.subscribe("room:firehose").await;
    slow.subscribe("room:firehose").await;
    fast.next_of_type("user_online").await;
    fast.next_of_type("user_online").await;

    // 20 MB in about 2.5 s: more than the slow socket's kernel buffers hold, at a pace the
    // fast one keeps up with.
    const COUNT: u64 = 1000;
    let reader = tokio::spawn(async move {
        let started = Instant::now();
        let mut last = 0;
        while last < COUNT {
            let message = fast.next().await;
            if message["type"] == "message" {
                last = message["data"]["content"]["n"].as_u64().unwrap();
            }
        }
        started.elapsed()
    });
    let payload = "x".repeat(20 * 1024);
    for n in 1..=COUNT {
        let event = Event::Message { from_user_id: None, content: json!({"n": n, "payload": payload}) };
        app.state.realtime.publish("room:firehose", event).await.unwrap();
        tokio::time::sleep(Duration::from_micros(2500)).await;
    }
    let elapsed =
        tokio::time::timeout(Duration::from_secs(30), reader).await.expect("the fast reader finishes").unwrap();
    assert!(elapsed < Duration::from_secs(20), "the fast consumer took {elapsed:?}");
    assert_eq!(slow.close_code(Duration::from_secs(10)).await, 1013);
    let stats = app.state.realtime.stats();
    assert_eq!(stats.slow_consumers, 1, "{stats:?}");
    assert!(stats.dropped >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_leaves_at_once_and_still_gets_its_1013_when_it_reads_late() {
    let app = TestApp::builder()
        .env("WS_OUTBOUND_QUEUE", "4")
        .env("WS_HISTORY_SIZE", "4")
        .env("WS_MAX_CONNECTIONS_PER_USER", "1")
        .spawn()
        .await;
    let (token, _) = account(&app).await;
    let mut slow = connect(&app, &token).await;
    slow.subscribe("room:stall").await;

    // The socket reads nothing: once the kernel buffers are full its queue fills and it is
    // evicted, with megabytes written ahead of its close frame.
    let payload = "x".repeat(64 * 1024);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while app.state.realtime.stats().slow_consumers == 0 {
        assert!(Instant::now() < deadline, "no eviction after {n} messages");
        n += 1;
        let event = Event::Message { from_user_id: None, content: json!({"n": n, "payload": payload}) };
        app.state.realtime.publish("room:stall", event).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    // Its slot is free before the client has read a byte of the backlog.
    let mut again = WsClient::connect(&socket_url(&app, &token)).await;
    assert_eq!(again.next().await["type"], "connected", "the evicted socket still holds the account's only slot");

    // Reading only now, later than a close frame used to be waited for, still ends in 1013.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let frame = slow.closed_within(Duration::from_secs(20)).await.expect("a close frame after the backlog");
    assert_eq!(u16::from(frame.code), 1013);
}
