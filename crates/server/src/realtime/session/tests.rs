use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::auth::Role;
use crate::realtime::channel::DefaultPolicy;
use crate::realtime::history::{Bounds, LocalHistory};

const LIMITS: SessionLimits = SessionLimits { max_channels: 3, messages_per_second: 100 };

fn session(role: Role) -> (Session, Instant) {
    let now = Instant::now();
    let caller = Caller { user_id: Uuid::now_v7(), role };
    (Session::new(caller, Uuid::now_v7(), None, LIMITS, Arc::new(DefaultPolicy), now), now)
}

fn reply(step: Step) -> Value {
    match step {
        Step::Reply(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn error_code(step: Step) -> String {
    let value = reply(step);
    assert_eq!(value["type"], "error", "{value}");
    value["data"]["code"].as_str().unwrap().to_owned()
}

fn name(text: &str) -> ChannelName {
    ChannelName::parse(text).unwrap()
}

fn delivery(channel: &str, offset: Option<u64>) -> Delivery {
    Delivery { channel: channel.into(), offset, sent_at_ms: 0, text: "{}".into() }
}

#[test]
fn ping_gets_pong_and_garbage_gets_an_error_not_a_disconnect() {
    let (mut s, now) = session(Role::User);
    assert_eq!(reply(s.on_text(r#"{"type":"ping"}"#, now))["type"], "pong");
    assert_eq!(error_code(s.on_text("{not json", now)), "INVALID_JSON");
    assert_eq!(error_code(s.on_text(r#"{"type":"teleport"}"#, now)), "UNKNOWN_TYPE");
    assert_eq!(error_code(s.on_text(r#"{"type":"subscribe","channel":7}"#, now)), "INVALID_MESSAGE");
}

#[test]
fn subscribing_follows_the_policy_and_the_channel_limit() {
    let (mut s, now) = session(Role::User);
    let own = format!(r#"{{"type":"subscribe","channel":"user:{}"}}"#, s.caller().user_id);
    assert!(matches!(s.on_text(&own, now), Step::Subscribe { .. }));
    let other = format!(r#"{{"type":"subscribe","channel":"user:{}"}}"#, Uuid::now_v7());
    assert_eq!(error_code(s.on_text(&other, now)), "FORBIDDEN");
    assert_eq!(error_code(s.on_text(r#"{"type":"subscribe","channel":"admin:ops"}"#, now)), "FORBIDDEN");
    assert_eq!(error_code(s.on_text(r#"{"type":"subscribe","channel":"room/bad"}"#, now)), "INVALID_CHANNEL");
    for channel in ["room:a", "room:b", "room:c"] {
        s.track(name(channel), 0);
    }
    assert_eq!(error_code(s.on_text(r#"{"type":"subscribe","channel":"room:d"}"#, now)), "TOO_MANY_CHANNELS");
    assert!(matches!(s.on_text(r#"{"type":"subscribe","channel":"room:a"}"#, now), Step::Subscribe { .. }));
}

#[test]
fn admins_may_join_admin_channels() {
    let (mut s, now) = session(Role::Admin);
    let step = s.on_text(r#"{"type":"subscribe","channel":"admin:ops","since":{"offset":1,"epoch":"e"}}"#, now);
    let since = Some(Position { offset: 1, epoch: "e".into() });
    assert_eq!(step, Step::Subscribe { channel: name("admin:ops"), since });
}

#[test]
fn posting_needs_a_subscription_and_broadcast_is_receive_only() {
    let (mut s, now) = session(Role::Admin);
    let post = r#"{"type":"message","channel":"room:a","data":{"text":"hi"}}"#;
    assert_eq!(error_code(s.on_text(post, now)), "NOT_SUBSCRIBED");
    s.track(name("room:a"), 0);
    assert!(matches!(s.on_text(post, now), Step::Publish { .. }));
    s.track(name("broadcast"), 0);
    assert_eq!(error_code(s.on_text(r#"{"type":"message","channel":"broadcast","data":1}"#, now)), "FORBIDDEN");
}

#[test]
fn unsubscribing_forgets_the_channel_at_once() {
    let (mut s, now) = session(Role::User);
    s.track(name("room:a"), 5);
    assert_eq!(s.on_text(r#"{"type":"unsubscribe","channel":"room:a"}"#, now), Step::Unsubscribe(name("room:a")));
    assert!(!s.accept(&delivery("room:a", Some(6))));
    assert_eq!(error_code(s.on_text(r#"{"type":"unsubscribe","channel":"room:a"}"#, now)), "NOT_SUBSCRIBED");
}

#[test]
fn flooding_gets_errors_then_a_1008_close() {
    let now = Instant::now();
    let caller = Caller { user_id: Uuid::now_v7(), role: Role::User };
    let limits = SessionLimits { max_channels: 3, messages_per_second: 4 };
    let mut s = Session::new(caller, Uuid::now_v7(), None, limits, Arc::new(DefaultPolicy), now);
    let steps: Vec<Step> = (0..8).map(|_| s.on_text(r#"{"type":"ping"}"#, now)).collect();
    assert!(steps[..4].iter().all(|step| matches!(step, Step::Reply(text) if text.contains("pong"))));
    assert!(matches!(&steps[4], Step::Reply(text) if text.contains("RATE_LIMITED")));
    assert_eq!(steps[7], Step::Close { code: close::POLICY, reason: "message rate exceeded" });
    let later = now + Duration::from_secs(1);
    assert!(matches!(s.on_text(r#"{"type":"ping"}"#, later), Step::Reply(text) if text.contains("pong")));
}

#[test]
fn live_messages_are_filtered_by_subscription_and_deduplicated_by_offset() {
    let (mut s, _) = session(Role::User);
    assert!(!s.accept(&delivery("room:a", Some(1))));
    s.track(name("room:a"), 3);
    assert!(!s.accept(&delivery("room:a", Some(3))), "already covered by the snapshot");
    assert!(s.accept(&delivery("room:a", Some(4))));
    assert!(!s.accept(&delivery("room:a", Some(4))), "a duplicate");
    assert!(s.accept(&delivery("room:a", None)), "presence events have no offset");
}

#[test]
fn subscribed_reports_position_recovery_and_replays_the_gap() {
    let (mut s, _) = session(Role::User);
    let mut history = LocalHistory::default();
    for _ in 0..5 {
        let offset = history.next_offset();
        history.push(Arc::new(delivery("room:a", Some(offset))), Bounds { count: 100, bytes: 1 << 20 });
    }
    let snapshot = history.snapshot(0, Duration::from_secs(60), true);
    let since = Position { offset: 2, epoch: snapshot.epoch.clone() };
    let out = s.subscribed(name("room:a"), &snapshot, Some(&since), Some(vec![]));
    let Outbound::Text(first) = &out[0] else { panic!("subscribed first") };
    let first: Value = serde_json::from_str(first).unwrap();
    assert_eq!((first["type"].as_str(), first["data"]["recovered"].as_bool()), (Some("subscribed"), Some(true)));
    assert_eq!(
        (first["data"]["offset"].as_u64(), first["data"]["members"].as_array().map(Vec::len)),
        (Some(5), Some(0))
    );
    let replayed: Vec<u64> =
        out[1..].iter().map(|o| if let Outbound::Shared(d) = o { d.offset.unwrap() } else { 0 }).collect();
    assert_eq!(replayed, [3, 4, 5]);
    assert!(!s.accept(&delivery("room:a", Some(5))), "replayed messages are not sent twice");

    let stale = Position { offset: 2, epoch: "another".into() };
    let out = s.subscribed(name("room:b"), &snapshot, Some(&stale), None);
    assert_eq!(out.len(), 1);
    let Outbound::Text(text) = &out[0] else { panic!() };
    assert!(text.contains(r#""recovered":false"#));
    let out = s.subscribed(name("room:c"), &snapshot, None, None);
    let Outbound::Text(text) = &out[0] else { panic!() };
    assert!(!text.contains("recovered"), "no `since`, no `recovered`");
}

#[test]
fn reauthentication_must_keep_the_account() {
    let (mut s, now) = session(Role::User);
    assert_eq!(s.on_text(r#"{"type":"auth","token":"t"}"#, now), Step::Authenticate("t".into()));
    let stranger = Caller { user_id: Uuid::now_v7(), role: Role::User };
    assert!(s.reauthenticated(stranger, Some(10)).is_err());
    let same = Caller { role: Role::Admin, ..s.caller() };
    assert!(s.reauthenticated(same, Some(99)).is_ok());
    assert_eq!((s.expires_at(), s.caller().role), (Some(99), Role::Admin));
}

#[test]
fn a_demotion_ends_the_subscriptions_and_posts_the_new_role_no_longer_allows() {
    let (mut s, now) = session(Role::Admin);
    for channel in ["admin:ops", "room:a", "broadcast"] {
        s.track(name(channel), 0);
    }
    let ended = s.role_changed(Role::User);
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].0, name("admin:ops"));
    let told: Value = serde_json::from_str(&ended[0].1).unwrap();
    assert_eq!((told["type"].as_str(), told["data"]["reason"].as_str()), (Some("unsubscribed"), Some("ROLE_CHANGED")));
    assert!(!s.accept(&delivery("admin:ops", Some(1))), "no more admin messages");
    assert_eq!(error_code(s.on_text(r#"{"type":"message","channel":"admin:ops","data":1}"#, now)), "NOT_SUBSCRIBED");
    assert!(matches!(s.on_text(r#"{"type":"message","channel":"room:a","data":1}"#, now), Step::Publish { .. }));
    assert!(s.role_changed(Role::Admin).is_empty(), "a promotion ends nothing");
}
