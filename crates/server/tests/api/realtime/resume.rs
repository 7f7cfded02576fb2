//! Resuming after a reconnect: replay of the gap, or `recovered: false` when it is gone.

use std::time::Duration;

use omnistack::realtime::Event;
use omnistack_testkit::{TestApp, WsClient};
use serde_json::{Value, json};

use super::{account, collect, connect};

async fn publish(app: &TestApp, channel: &str, n: u64) -> u64 {
    let event = Event::Message { from_user_id: None, content: json!(n) };
    app.state.realtime.publish(channel, event).await.unwrap().offset.expect("an offset")
}

async fn resume(socket: &mut WsClient, channel: &str, offset: u64, epoch: &str) -> Value {
    socket.send(json!({"type": "subscribe", "channel": channel, "since": {"offset": offset, "epoch": epoch}})).await;
    socket.next_of_type("subscribed").await
}

#[tokio::test]
async fn a_gap_is_replayed_in_order_without_duplicates() {
    let app = TestApp::spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    let subscribed = socket.subscribe("room:r").await;
    let epoch = subscribed["data"]["epoch"].as_str().unwrap().to_owned();
    for n in 1..=3 {
        publish(&app, "room:r", n).await;
    }
    let mut seen = 0;
    for _ in 1..=3 {
        let message = socket.next_of_type("message").await;
        seen = message["offset"].as_u64().unwrap();
        if message["data"]["content"] == 2 {
            break;
        }
    }
    socket.close().await;
    for n in 4..=5 {
        publish(&app, "room:r", n).await;
    }

    let mut socket = connect(&app, &token).await;
    let subscribed = resume(&mut socket, "room:r", seen, &epoch).await;
    assert_eq!(subscribed["data"]["recovered"], true);
    assert_eq!(subscribed["data"]["offset"], 5);
    assert_eq!(subscribed["data"]["epoch"], epoch.as_str());
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(socket.next_of_type("message").await["offset"].as_u64().unwrap());
    }
    assert_eq!(replayed, [3, 4, 5]);
    publish(&app, "room:r", 6).await;
    let live = socket.next_of_type("message").await;
    assert_eq!((live["offset"].as_u64(), &live["data"]["content"]), (Some(6), &json!(6)));
    assert!(collect(&mut socket, "message", Duration::from_millis(300)).await.is_empty(), "no duplicates");
}

#[tokio::test]
async fn no_gap_means_recovered_with_nothing_to_replay() {
    let app = TestApp::spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    let epoch = socket.subscribe("room:r").await["data"]["epoch"].as_str().unwrap().to_owned();
    publish(&app, "room:r", 1).await;
    let offset = socket.next_of_type("message").await["offset"].as_u64().unwrap();
    socket.close().await;

    let mut socket = connect(&app, &token).await;
    let subscribed = resume(&mut socket, "room:r", offset, &epoch).await;
    assert_eq!(
        (subscribed["data"]["recovered"].as_bool(), subscribed["data"]["offset"].as_u64()),
        (Some(true), Some(offset))
    );
    assert!(collect(&mut socket, "message", Duration::from_millis(300)).await.is_empty());
}

#[tokio::test]
async fn a_gap_beyond_the_history_or_another_epoch_is_not_recovered() {
    let app = TestApp::builder().env("WS_HISTORY_SIZE", "3").spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    let epoch = socket.subscribe("room:r").await["data"]["epoch"].as_str().unwrap().to_owned();
    socket.close().await;
    for n in 1..=10 {
        publish(&app, "room:r", n).await;
    }
    let mut socket = connect(&app, &token).await;
    let subscribed = resume(&mut socket, "room:r", 1, &epoch).await;
    assert_eq!(
        (subscribed["data"]["recovered"].as_bool(), subscribed["data"]["offset"].as_u64()),
        (Some(false), Some(10))
    );
    let subscribed = resume(&mut socket, "room:r", 9, "another-epoch").await;
    assert_eq!(subscribed["data"]["recovered"], false);
    assert!(collect(&mut socket, "message", Duration::from_millis(300)).await.is_empty(), "nothing is replayed");
    let subscribed = resume(&mut socket, "room:r", 7, &epoch).await;
    assert_eq!(subscribed["data"]["recovered"], true, "the last three are kept");
    let replayed: Vec<Value> = collect(&mut socket, "message", Duration::from_millis(500)).await;
    assert_eq!(replayed.iter().map(|m| m["offset"].as_u64().unwrap()).collect::<Vec<_>>(), [8, 9, 10]);
}

#[tokio::test]
async fn history_expires_after_its_lifetime() {
    let app = TestApp::builder().env("WS_HISTORY_TTL_SECONDS", "1").spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    let epoch = socket.subscribe("room:r").await["data"]["epoch"].as_str().unwrap().to_owned();
    socket.close().await;
    publish(&app, "room:r", 1).await;
    publish(&app, "room:r", 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut socket = connect(&app, &token).await;
    assert_eq!(resume(&mut socket, "room:r", 0, &epoch).await["data"]["recovered"], false);
    assert_eq!(resume(&mut socket, "room:r", 2, &epoch).await["data"]["recovered"], true);
}
