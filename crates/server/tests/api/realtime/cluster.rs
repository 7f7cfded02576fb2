//! Two instances sharing Redis: delivery exactly once, presence, tickets, limits and counts
//! across instances. Skipped without `TEST_REDIS_URL`.

use std::time::Duration;

use omnistack_testkit::{TestApp, WsClient, refused_handshake};
use serde_json::{Value, json};

use super::{account, admin_account, collect, connect, socket_url, without_redis};

/// Two instances of one deployment, both bridged to Redis.
pub async fn two_instances(vars: &[(&str, &str)]) -> (TestApp, TestApp) {
    let mut first = TestApp::builder();
    for (name, value) in vars {
        first = first.env(name, value);
    }
    let a = first.spawn().await;
    let mut second = TestApp::builder().sharing(&a);
    for (name, value) in vars {
        second = second.env(name, value);
    }
    let b = second.spawn().await;
    bridged(&a).await;
    bridged(&b).await;
    (a, b)
}

/// Waits until the instance's Redis bridge is connected.
pub async fn bridged(app: &TestApp) {
    for _ in 0..200 {
        if app.state.realtime.is_bridged() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the Redis bridge did not connect within 10 s");
}

#[tokio::test]
async fn a_message_published_anywhere_reaches_every_subscriber_exactly_once() {
    if without_redis("a_message_published_anywhere_reaches_every_subscriber_exactly_once") {
        return;
    }
    let (a, b) = two_instances(&[]).await;
    let (alice_token, _) = account(&a).await;
    let (bob_token, _) = account(&a).await;
    let mut alice = connect(&a, &alice_token).await;
    let mut bob = connect(&b, &bob_token).await;
    alice.subscribe("room:x").await;
    bob.subscribe("room:x").await;

    alice.send(json!({"type": "message", "channel": "room:x", "data": "from a"})).await;
    bob.send(json!({"type": "message", "channel": "room:x", "data": "from b"})).await;
    let event = omnistack::realtime::Event::Message { from_user_id: None, content: json!("from the service") };
    b.state.realtime.publish("room:x", event).await.unwrap();
    for socket in [&mut alice, &mut bob] {
        let messages = collect(socket, "message", Duration::from_millis(1500)).await;
        let offsets: Vec<u64> = messages.iter().map(|m| m["offset"].as_u64().unwrap()).collect();
        assert_eq!(offsets, [1, 2, 3], "{messages:?}");
        let mut contents: Vec<&str> = messages.iter().map(|m| m["data"]["content"].as_str().unwrap()).collect();
        contents.sort_unstable();
        assert_eq!(contents, ["from a", "from b", "from the service"]);
    }
}

#[tokio::test]
async fn presence_spans_instances_until_the_last_socket_closes() {
    if without_redis("presence_spans_instances_until_the_last_socket_closes") {
        return;
    }
    let (a, b) = two_instances(&[]).await;
    let (watcher_token, _) = account(&a).await;
    let (token, id) = account(&a).await;
    let mut watcher = connect(&a, &watcher_token).await;
    watcher.subscribe("room:p").await;
    watcher.next_of_type("user_online").await;

    let mut on_a = connect(&a, &token).await;
    let mut on_b = connect(&b, &token).await;
    on_a.subscribe("room:p").await;
    let members = on_b.subscribe("room:p").await["data"]["members"].clone();
    assert_eq!(members.as_array().unwrap().len(), 2);
    let online = collect(&mut watcher, "user_online", Duration::from_millis(800)).await;
    assert_eq!(online.len(), 1, "online once, although on two instances: {online:?}");
    assert_eq!(online[0]["data"]["user_id"], id.as_str());

    on_b.close().await;
    assert!(collect(&mut watcher, "user_offline", Duration::from_millis(800)).await.is_empty());
    on_a.close().await;
    assert_eq!(watcher.next_of_type("user_offline").await["data"]["user_id"], id.as_str());
}

#[tokio::test]
async fn tickets_and_socket_limits_span_instances() {
    if without_redis("tickets_and_socket_limits_span_instances") {
        return;
    }
    let (a, b) = two_instances(&[("WS_MAX_CONNECTIONS_PER_USER", "2")]).await;
    let (token, _) = account(&a).await;
    let ticket = a.client.with_token(&token).post_json("/api/v1/app/ws/ticket", &json!({})).await.json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_on_b, _) = WsClient::connected(&b.ws_url(&format!("/api/v1/app/ws?ticket={ticket}"))).await;
    let (status, _) = refused_handshake(&a.ws_url(&format!("/api/v1/app/ws?ticket={ticket}"))).await;
    assert_eq!(status, 401, "a ticket works once, on any instance");

    let _on_a = connect(&a, &token).await;
    let mut third = WsClient::connect(&socket_url(&a, &token)).await;
    assert_eq!(third.next().await["data"]["code"], "TOO_MANY_CONNECTIONS");
}

#[tokio::test]
async fn admins_see_every_instance() {
    if without_redis("admins_see_every_instance") {
        return;
    }
    let (a, b) = two_instances(&[("WS_PRESENCE_TTL_SECONDS", "3")]).await;
    let (admin_token, _) = admin_account(&a).await;
    let (token, _) = account(&a).await;
    let _admin_socket = connect(&a, &admin_token).await;
    let _one = connect(&b, &token).await;
    let _two = connect(&b, &token).await;
    let mut global = Value::Null;
    for _ in 0..50 {
        let status = a.client.with_token(&admin_token).get("/api/v1/app/ws/status").await.json();
        global = status["global"].clone();
        if global["connections"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(global["connections"], 3, "{global}");
    assert_eq!(global["users_online"], 2);
    let instances = global["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2);
    let mine: Vec<u64> = instances.iter().map(|i| i["connections"].as_u64().unwrap()).collect();
    assert!(mine.contains(&1) && mine.contains(&2), "{instances:?}");

    let own = a.client.with_token(&token).get("/api/v1/app/ws/status").await.json();
    let sockets = own["connections"].as_array().unwrap();
    assert_eq!(sockets.len(), 2, "sockets on the other instance are listed too: {own}");
    assert!(sockets.iter().all(|s| s["instance_id"] == b.state.realtime.instance_id().to_string()));
}
