//! Channel rules, posting, message shapes and server-side publishing.

use std::sync::Arc;
use std::time::Duration;

use omnistack::realtime::{Caller, ChannelKind, ChannelName, ChannelPolicy, DefaultPolicy, Event};
use omnistack_testkit::TestApp;
use serde_json::{Value, json};

use super::{account, admin_account, assert_error, connect};

#[tokio::test]
async fn rooms_are_open_and_posts_reach_every_subscriber_with_an_offset() {
    let app = TestApp::spawn().await;
    let (alice_token, alice) = account(&app).await;
    let (bob_token, _) = account(&app).await;
    let mut a = connect(&app, &alice_token).await;
    let mut b = connect(&app, &bob_token).await;
    let subscribed = a.subscribe("room:lobby").await;
    assert_eq!(subscribed["channel"], "room:lobby");
    assert_eq!(subscribed["data"]["offset"], 0);
    assert!(subscribed["data"]["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    b.subscribe("room:lobby").await;

    a.send(json!({"type": "message", "channel": "room:lobby", "data": {"text": "hi"}})).await;
    for socket in [&mut a, &mut b] {
        let message = socket.next_of_type("message").await;
        assert_eq!(message["channel"], "room:lobby");
        assert_eq!(message["offset"], 1);
        assert_eq!(message["data"], json!({"from_user_id": alice, "content": {"text": "hi"}}));
        assert!(message["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}

#[tokio::test]
async fn long_messages_arrive_whole_whatever_their_characters() {
    let app = TestApp::spawn().await;
    let (alice_token, _) = account(&app).await;
    let (bob_token, _) = account(&app).await;
    let mut a = connect(&app, &alice_token).await;
    let mut b = connect(&app, &bob_token).await;
    a.subscribe("room:long").await;
    b.subscribe("room:long").await;
    // Longer than a fragment (2 KiB), in characters of one to four bytes.
    let text = "a€\u{1F600}\n\"é".repeat(1_000);
    a.send(json!({"type": "message", "channel": "room:long", "data": {"text": text}})).await;
    for socket in [&mut a, &mut b] {
        assert_eq!(socket.next_of_type("message").await["data"]["content"]["text"], text.as_str());
    }
}

#[tokio::test]
async fn posting_requires_a_subscription_and_subscriptions_belong_to_the_socket() {
    let app = TestApp::spawn().await;
    let (token, _) = account(&app).await;
    let mut first = connect(&app, &token).await;
    let mut second = connect(&app, &token).await;
    first.send(json!({"type": "message", "channel": "room:x", "data": 1})).await;
    assert_error(&first.next().await, "NOT_SUBSCRIBED");
    first.subscribe("room:x").await;
    first.send(json!({"type": "message", "channel": "room:x", "data": 2})).await;
    assert_eq!(first.next_of_type("message").await["data"]["content"], 2);
    assert_eq!(second.next_within(Duration::from_millis(300)).await, None, "the other socket did not subscribe");
    second.send(json!({"type": "message", "channel": "room:x", "data": 3})).await;
    assert_error(&second.next().await, "NOT_SUBSCRIBED");
}

#[tokio::test]
async fn personal_channels_belong_to_their_account_and_are_subscribed_automatically() {
    let app = TestApp::spawn().await;
    let (token, id) = account(&app).await;
    let (other_token, other_id) = account(&app).await;
    let mut mine = connect(&app, &token).await;
    let mut theirs = connect(&app, &other_token).await;
    theirs.send(json!({"type": "subscribe", "channel": format!("user:{id}")})).await;
    assert_error(&theirs.next().await, "FORBIDDEN");

    let user_id = uuid::Uuid::parse_str(&id).unwrap();
    let event = Event::Notification { title: "Hello".into(), body: "Welcome".into(), data: json!({"n": 1}) };
    let published = app.state.realtime.publish_to_user(user_id, event).await.unwrap();
    assert_eq!(published.channel, format!("user:{id}"));
    let notification = mine.next_of_type("notification").await;
    assert_eq!(notification["data"], json!({"title": "Hello", "body": "Welcome", "data": {"n": 1}}));
    assert_eq!(notification["channel"], format!("user:{id}"));
    assert!(notification["offset"].as_u64().is_some());
    assert_eq!(theirs.next_within(Duration::from_millis(300)).await, None, "{other_id} gets nothing");
}

#[tokio::test]
async fn broadcast_is_receive_only_and_admin_channels_are_for_admins() {
    let app = TestApp::spawn().await;
    let (token, _) = account(&app).await;
    let (admin_token, _) = admin_account(&app).await;
    let mut user = connect(&app, &token).await;
    let mut admin = connect(&app, &admin_token).await;
    user.subscribe("broadcast").await;
    user.send(json!({"type": "message", "channel": "broadcast", "data": "spam"})).await;
    assert_error(&user.next().await, "FORBIDDEN");
    user.send(json!({"type": "subscribe", "channel": "admin:ops"})).await;
    assert_error(&user.next().await, "FORBIDDEN");

    admin.subscribe("admin:ops").await;
    admin.send(json!({"type": "message", "channel": "admin:ops", "data": "deploying"})).await;
    assert_eq!(admin.next_of_type("message").await["data"]["content"], "deploying");

    let event = Event::Update {
        resource: "project".into(),
        action: "deleted".into(),
        resource_id: Some("p1".into()),
        data: Value::Null,
    };
    app.state.realtime.publish("broadcast", event).await.unwrap();
    let update = user.next_of_type("update").await;
    assert_eq!(update["data"], json!({"resource": "project", "action": "deleted", "resource_id": "p1", "data": null}));
}

#[tokio::test]
async fn malformed_input_gets_an_error_not_a_disconnect() {
    let app = TestApp::spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    let long = "a".repeat(129);
    let cases = [
        ("{oops".to_owned(), "INVALID_JSON"),
        (json!({"type": "dance"}).to_string(), "UNKNOWN_TYPE"),
        (json!({"type": "subscribe"}).to_string(), "INVALID_MESSAGE"),
        (json!({"type": "subscribe", "channel": "room:a b"}).to_string(), "INVALID_CHANNEL"),
        (json!({"type": "subscribe", "channel": format!("room:{long}")}).to_string(), "INVALID_CHANNEL"),
        (json!({"type": "subscribe", "channel": "team:x"}).to_string(), "FORBIDDEN"),
        (json!({"type": "unsubscribe", "channel": "room:never"}).to_string(), "NOT_SUBSCRIBED"),
    ];
    for (text, code) in cases {
        socket.send_text(&text).await;
        assert_error(&socket.next().await, code);
    }
    socket.send_binary(vec![1, 2, 3]).await;
    assert_error(&socket.next().await, "INVALID_JSON");
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(socket.next().await["type"], "pong");
}

#[tokio::test]
async fn unsubscribing_stops_delivery() {
    let app = TestApp::spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    socket.subscribe("room:a").await;
    socket.send(json!({"type": "unsubscribe", "channel": "room:a"})).await;
    let unsubscribed = socket.next_of_type("unsubscribed").await;
    assert_eq!(unsubscribed["channel"], "room:a");
    app.state.realtime.publish("room:a", Event::Message { from_user_id: None, content: json!(1) }).await.unwrap();
    assert_eq!(socket.next_within(Duration::from_millis(300)).await, None);
}

/// An application's own channel kind: `team:<name>`, open to everyone, on top of the defaults.
#[derive(Debug)]
struct TeamPolicy;

impl ChannelPolicy for TeamPolicy {
    fn can_subscribe(&self, caller: &Caller, channel: &ChannelName) -> Result<(), String> {
        match channel.kind() {
            ChannelKind::Other(name) if name.starts_with("team:") => Ok(()),
            _ => DefaultPolicy.can_subscribe(caller, channel),
        }
    }

    fn can_publish(&self, caller: &Caller, channel: &ChannelName) -> Result<(), String> {
        self.can_subscribe(caller, channel)
    }

    fn has_presence(&self, channel: &ChannelName) -> bool {
        DefaultPolicy.has_presence(channel)
    }
}

#[tokio::test]
async fn an_application_extends_the_channel_policy() {
    let app = TestApp::spawn().await;
    app.state.realtime.set_policy(Arc::new(TeamPolicy));
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &token).await;
    assert_eq!(socket.subscribe("team:red").await["type"], "subscribed");
    socket.send(json!({"type": "subscribe", "channel": "admin:ops"})).await;
    assert_error(&socket.next().await, "FORBIDDEN");
}
