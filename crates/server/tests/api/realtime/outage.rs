//! Failures with Redis: a dead instance leaves no ghosts, a lost bridge reconnects and catches
//! up, and an unreachable Redis leaves local delivery working. Skipped without
//! `TEST_REDIS_URL`. Redis is shared with other suites: connections are cut only for an ACL
//! user made for the test, never for everyone.

use std::process::{Child, Stdio};
use std::time::Duration;

use omnistack_testkit::TestApp;
use serde_json::json;

use super::cluster::bridged;
use super::{account, admin_account, collect, connect, without_redis};
use crate::binary::{free_port, omnistack, wait_until_up};

/// Another instance of `app`'s deployment, as a separate process (so it can really die).
struct Process {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Process {
    async fn start(app: &TestApp, vars: &[(&str, &str)]) -> Process {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let config = &app.state.config;
        let (port_text, data_dir) = (port.to_string(), dir.path().display().to_string());
        let deployment = [
            ("ENVIRONMENT", "test"),
            ("PORT", &port_text),
            ("DATA_DIR", &data_dir),
            ("LOG_LEVEL", "warn"),
            ("DATABASE_URL", config.database_url.expose()),
            ("SECRET_KEY", config.secret_key.expose()),
            ("REDIS_URL", config.redis_url.as_ref().unwrap().expose()),
            ("REDIS_KEY_PREFIX", &config.redis_key_prefix),
        ];
        let child = omnistack(dir.path(), &[&deployment[..], vars].concat())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the binary");
        let process = Process { child, port, _dir: dir };
        wait_until_up(&format!("http://127.0.0.1:{port}/api/v1/public/health")).await;
        process
    }

    fn ws_url(&self, token: &str) -> String {
        format!("ws://127.0.0.1:{}/api/v1/app/ws?token={token}", self.port)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_killed_instance_leaves_no_ghost_users() {
    if without_redis("a_killed_instance_leaves_no_ghost_users") {
        return;
    }
    let fast = [("WS_PRESENCE_TTL_SECONDS", "3"), ("WS_PING_INTERVAL_SECONDS", "1"), ("WS_IDLE_TIMEOUT_SECONDS", "5")];
    let mut builder = TestApp::builder();
    for (name, value) in fast {
        builder = builder.env(name, value);
    }
    let a = builder.spawn().await;
    bridged(&a).await;
    let mut b = Process::start(&a, &fast).await;
    let (admin_token, _) = admin_account(&a).await;
    let (token, id) = account(&a).await;
    let mut watcher = connect(&a, &admin_token).await;
    watcher.subscribe("room:ghosts").await;
    let (mut ghost, _) = omnistack_testkit::WsClient::connected(&b.ws_url(&token)).await;
    ghost.subscribe("room:ghosts").await;
    let online = watcher.next_of_type("user_online").await;
    let online =
        if online["data"]["user_id"] == id.as_str() { online } else { watcher.next_of_type("user_online").await };
    assert_eq!(online["data"]["user_id"], id.as_str());

    b.child.kill().expect("kill the second instance");
    b.child.wait().unwrap();
    let offline = watcher.next_of_type_within("user_offline", Duration::from_secs(10)).await;
    assert_eq!(offline["data"]["user_id"], id.as_str(), "announced once its presence expired");

    let status = a.client.with_token(&admin_token).get("/api/v1/app/ws/status").await.json();
    assert_eq!(status["global"]["users_online"], 1, "{status}");
    assert_eq!(status["global"]["instances"].as_array().unwrap().len(), 1, "{status}");
    let members = watcher.subscribe("room:ghosts").await["data"]["members"].clone();
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
}

/// A Redis ACL user for one test, so its connections can be cut without touching anyone else's.
struct RedisUser {
    name: String,
    admin: redis::Client,
}

impl RedisUser {
    async fn create() -> RedisUser {
        let admin = redis::Client::open(omnistack_testkit::redis_url().unwrap()).unwrap();
        let user = RedisUser { name: format!("omnistack-test-{}", uuid::Uuid::new_v4().simple()), admin };
        user.command(&["SETUSER", "on", ">test-password", "~*", "&*", "+@all"]).await;
        user
    }

    /// `REDIS_URL` for this user.
    fn url(&self) -> String {
        let base = omnistack_testkit::redis_url().unwrap();
        base.replacen("redis://", &format!("redis://{}:test-password@", self.name), 1)
    }

    async fn command(&self, args: &[&str]) {
        let mut connection = self.admin.get_multiplexed_async_connection().await.unwrap();
        let mut command = redis::cmd("ACL");
        command.arg(args[0]).arg(&self.name).arg(&args[1..]);
        let () = command.query_async(&mut connection).await.unwrap();
    }

    /// Closes this user's connections (`pubsub`: only its pub/sub connection).
    async fn kill(&self, pubsub_only: bool) {
        let mut connection = self.admin.get_multiplexed_async_connection().await.unwrap();
        let mut command = redis::cmd("CLIENT");
        command.arg("KILL").arg("USER").arg(&self.name);
        if pubsub_only {
            command.arg("TYPE").arg("pubsub");
        }
        let killed: i64 = command.query_async(&mut connection).await.unwrap();
        assert!(killed >= 1, "killed {killed} connections");
    }
}

impl Drop for RedisUser {
    fn drop(&mut self) {
        let (client, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let mut connection = client.get_connection()?;
            redis::cmd("ACL").arg("DELUSER").arg(&name).query::<i64>(&mut connection)
        })
        .join();
    }
}

/// Two instances sharing Redis through a Redis user this test may cut off, both bridged, and an
/// account's token.
async fn two_bridged_instances() -> (RedisUser, TestApp, TestApp, String) {
    let user = RedisUser::create().await;
    let a = TestApp::builder().env("REDIS_URL", &user.url()).spawn().await;
    let b = TestApp::builder().sharing(&a).spawn().await;
    bridged(&a).await;
    bridged(&b).await;
    let (token, _) = account(&a).await;
    (user, a, b, token)
}

#[tokio::test]
async fn the_bridge_reconnects_and_catches_up_on_what_it_missed() {
    if without_redis("the_bridge_reconnects_and_catches_up_on_what_it_missed") {
        return;
    }
    let (user, a, b, token) = two_bridged_instances().await;
    let mut on_a = connect(&a, &token).await;
    let mut on_b = connect(&b, &token).await;
    on_a.subscribe("room:r").await;
    on_b.subscribe("room:r").await;

    user.kill(true).await;
    on_b.send(json!({"type": "message", "channel": "room:r", "data": "while a was cut off"})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    bridged(&a).await;
    on_b.send(json!({"type": "message", "channel": "room:r", "data": "after"})).await;
    let messages = collect(&mut on_a, "message", Duration::from_millis(1500)).await;
    let contents: Vec<&str> = messages.iter().map(|m| m["data"]["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["while a was cut off", "after"], "each once, in order");
}

#[tokio::test]
async fn without_redis_local_delivery_continues_and_the_bridge_comes_back() {
    if without_redis("without_redis_local_delivery_continues_and_the_bridge_comes_back") {
        return;
    }
    let (user, a, b, token) = two_bridged_instances().await;
    let mut a1 = connect(&a, &token).await;
    let mut a2 = connect(&a, &token).await;
    let mut on_b = connect(&b, &token).await;
    for socket in [&mut a1, &mut a2, &mut on_b] {
        socket.subscribe("room:r").await;
    }

    user.command(&["SETUSER", "off"]).await;
    user.kill(false).await;
    a1.send(json!({"type": "message", "channel": "room:r", "data": "local"})).await;
    let local = a2.next_of_type("message").await;
    assert_eq!(local["data"]["content"], "local");
    assert!(local.get("offset").is_none(), "not sequenced while Redis is unreachable");
    assert!(collect(&mut on_b, "message", Duration::from_millis(500)).await.is_empty());
    assert!(a.state.realtime.stats().redis_errors >= 1);

    user.command(&["SETUSER", "on"]).await;
    bridged(&a).await;
    on_b.send(json!({"type": "message", "channel": "room:r", "data": "back"})).await;
    let back = collect(&mut a2, "message", Duration::from_millis(1000)).await;
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0]["data"]["content"], "back");
}

#[tokio::test]
async fn a_healthy_idle_bridge_stays_on_one_connection_across_ping_intervals() {
    if without_redis("a_healthy_idle_bridge_stays_on_one_connection_across_ping_intervals") {
        return;
    }
    let app = TestApp::builder().env("WS_PING_INTERVAL_SECONDS", "1").env("WS_IDLE_TIMEOUT_SECONDS", "5").spawn().await;
    bridged(&app).await;
    // Four bridge pings (one a second) go by; each must be counted as answered.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(app.state.realtime.is_bridged());
    assert_eq!(app.state.realtime.bridge_connections(), 1, "the bridge reconnected on a healthy Redis");
}
