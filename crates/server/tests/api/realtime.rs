//! Realtime WebSockets over real sockets: authentication, channels, presence, limits,
//! liveness, resume, and (with `TEST_REDIS_URL`) several instances sharing Redis.

mod admin;
mod auth;
mod bounds;
mod channels;
pub mod cluster;
mod limits;
mod liveness;
mod outage;
mod presence;
mod resume;
mod revocation;

use omnistack_testkit::{TestApp, WsClient};
use std::time::Duration;

use serde_json::Value;

/// A fresh account: its access token and id.
pub async fn account(app: &TestApp) -> (String, String) {
    let (_, session) = app.signed_in_client().await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let id = session["user"]["id"].as_str().unwrap().to_owned();
    (token, id)
}

/// A fresh admin account: its access token and id.
pub async fn admin_account(app: &TestApp) -> (String, String) {
    let (_, session) = app.signed_in_client().await;
    let email = session["user"]["email"].as_str().unwrap();
    omnistack::users::set_role_by_email(&app.state.db, email, omnistack::auth::Role::Admin).await.unwrap();
    (session["access_token"].as_str().unwrap().to_owned(), session["user"]["id"].as_str().unwrap().to_owned())
}

/// The v1 socket URL with a token.
pub fn socket_url(app: &TestApp, token: &str) -> String {
    app.ws_url(&format!("/api/v1/app/ws?token={token}"))
}

/// A connected socket (after `connected`).
pub async fn connect(app: &TestApp, token: &str) -> WsClient {
    WsClient::connected(&socket_url(app, token)).await.0
}

/// Asserts an `error` message with this code.
pub fn assert_error(message: &Value, code: &str) {
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["data"]["code"], code, "{message}");
}

/// Every message of `kind` that arrives within `wait`.
pub async fn collect(socket: &mut WsClient, kind: &str, wait: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut found = Vec::new();
    while let Some(message) = socket.next_within(deadline.saturating_duration_since(tokio::time::Instant::now())).await
    {
        if message["type"] == kind {
            found.push(message);
        }
    }
    found
}

/// Skips the test (returning true) when no Redis is configured.
pub fn without_redis(test: &str) -> bool {
    if omnistack_testkit::redis_url().is_none() {
        eprintln!("skipping {test}: set TEST_REDIS_URL to run it");
        return true;
    }
    false
}
