//! Presence in rooms: who is there, who comes and goes.

use std::time::Duration;

use omnistack_testkit::TestApp;
use serde_json::json;

use super::{account, connect};

#[tokio::test]
async fn room_members_see_each_other_come_and_go_once_per_account() {
    let app = TestApp::spawn().await;
    let (alice_token, alice) = account(&app).await;
    let (bob_token, bob) = account(&app).await;
    let mut a = connect(&app, &alice_token).await;
    let subscribed = a.subscribe("room:team").await;
    assert_eq!(subscribed["data"]["members"], json!([alice]));
    let online = a.next_of_type("user_online").await;
    assert_eq!((online["channel"].as_str(), online["data"]["user_id"].as_str()), (Some("room:team"), Some(&*alice)));
    assert!(online.get("offset").is_none(), "presence events are not kept");

    let mut b1 = connect(&app, &bob_token).await;
    let members = b1.subscribe("room:team").await["data"]["members"].clone();
    let mut members: Vec<&str> = members.as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    members.sort_unstable();
    let mut expected = vec![alice.as_str(), bob.as_str()];
    expected.sort_unstable();
    assert_eq!(members, expected);
    assert_eq!(a.next_of_type("user_online").await["data"]["user_id"], bob.as_str());

    let mut b2 = connect(&app, &bob_token).await;
    b2.subscribe("room:team").await;
    b1.close().await;
    assert_eq!(a.next_within(Duration::from_millis(500)).await, None, "bob is still there on his other socket");
    b2.send(json!({"type": "unsubscribe", "channel": "room:team"})).await;
    let offline = a.next_of_type("user_offline").await;
    assert_eq!(offline["data"]["user_id"], bob.as_str());
}

#[tokio::test]
async fn channels_without_presence_send_no_presence_events() {
    let app = TestApp::spawn().await;
    let (token, _) = account(&app).await;
    let (other, _) = account(&app).await;
    let mut a = connect(&app, &token).await;
    let subscribed = a.subscribe("broadcast").await;
    assert!(subscribed["data"].get("members").is_none());
    let mut b = connect(&app, &other).await;
    b.subscribe("broadcast").await;
    assert_eq!(a.next_within(Duration::from_millis(300)).await, None);
}
