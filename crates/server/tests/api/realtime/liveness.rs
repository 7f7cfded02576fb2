//! Heartbeats, idle sockets and shutdown.

use std::time::Duration;

use omnistack_testkit::TestApp;
use serde_json::json;

use super::{account, connect};

#[tokio::test]
async fn a_socket_that_never_answers_pings_is_dropped() {
    let app = TestApp::builder().env("WS_PING_INTERVAL_SECONDS", "1").env("WS_IDLE_TIMEOUT_SECONDS", "2").spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    // Not reading means the client never answers the server's pings.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let frame = socket.closed_within(Duration::from_secs(3)).await.expect("a close frame");
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1001, "idle timeout"));
}

#[tokio::test]
async fn a_socket_that_answers_pings_stays_open() {
    let app = TestApp::builder().env("WS_PING_INTERVAL_SECONDS", "1").env("WS_IDLE_TIMEOUT_SECONDS", "2").spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    // Reading answers the pings (the client library replies with pongs).
    assert_eq!(socket.next_within(Duration::from_millis(4000)).await, None);
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(socket.next().await["type"], "pong");
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1012() {
    let mut app = TestApp::spawn().await;
    let (token, _) = account(&app).await;
    let mut first = connect(&app, &token).await;
    let mut second = connect(&app, &token).await;
    let started = std::time::Instant::now();
    app.begin_shutdown();
    for socket in [&mut first, &mut second] {
        let frame = socket.closed_within(Duration::from_secs(5)).await.expect("a close frame");
        assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1012, "server restarting"));
    }
    app.shutdown().await.expect("the server stops cleanly");
    assert!(started.elapsed() < Duration::from_secs(5), "stopped after {:?}", started.elapsed());
}
