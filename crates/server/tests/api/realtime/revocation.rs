//! Revocation reaches sockets already open, within a second, on every instance sharing the
//! database: logout and a password reset close the session's sockets, deleting or deactivating
//! the account closes all of them, a demotion ends what the new role no longer allows. Runs on
//! SQLite alone (two instances share the database file) and with PostgreSQL + Redis.

use std::time::Duration;

use omnistack::auth::Role;
use omnistack_testkit::{TestApp, WsClient, refused_handshake};
use serde_json::{Value, json};

use super::{admin_account, assert_error, connect};

/// The promise is one second; the margin keeps a loaded machine from failing the test.
const WITHIN: Duration = Duration::from_millis(1500);
const PASSWORD: &str = "correct-horse-battery";

/// A second instance of `app`'s deployment (same database, secret and Redis prefix).
async fn second_instance(app: &TestApp) -> TestApp {
    TestApp::builder().sharing(app).spawn().await
}

async fn assert_closed(socket: &mut WsClient, reason: &str) {
    let frame = socket.closed_within(WITHIN).await.expect("a close frame");
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (4003, reason));
}

async fn assert_open(socket: &mut WsClient) {
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(socket.next_of_type("pong").await["type"], "pong");
}

/// Signs `email` in once more: another session of the same account.
async fn sign_in(app: &TestApp, email: &str) -> Value {
    let res = app.client.post_json("/api/v1/public/auth/login", &json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()
}

fn access(session: &Value) -> &str {
    session["access_token"].as_str().unwrap()
}

async fn log_out(app: &TestApp, session: &Value) {
    let res =
        app.client.post_json("/api/v1/public/auth/logout", &json!({"refresh_token": session["refresh_token"]})).await;
    assert_eq!(res.status, 204, "{}", res.text);
}

#[tokio::test]
async fn logging_out_closes_that_sessions_sockets_on_every_instance_with_4003() {
    let a = TestApp::spawn().await;
    let b = second_instance(&a).await;
    let (_, session) = a.signed_in_client().await;
    let other = sign_in(&a, session["user"]["email"].as_str().unwrap()).await;
    let mut here = connect(&a, access(&session)).await;
    let mut there = connect(&b, access(&session)).await;
    let mut other_session = connect(&b, access(&other)).await;

    log_out(&a, &session).await;
    assert_closed(&mut here, "session revoked").await;
    assert_closed(&mut there, "session revoked").await;
    assert_open(&mut other_session).await;
}

#[tokio::test]
async fn a_ticket_issued_before_a_logout_is_refused() {
    let a = TestApp::spawn().await;
    let b = second_instance(&a).await;
    let (_, session) = a.signed_in_client().await;
    let mut tickets = Vec::new();
    for _ in 0..2 {
        let res = a.client.with_token(access(&session)).post_json("/api/v1/app/ws/ticket", &json!({})).await;
        tickets.push(res.json()["ticket"].as_str().unwrap().to_owned());
    }
    log_out(&a, &session).await;
    // Without Redis tickets are kept by the instance that issued them.
    let elsewhere = if omnistack_testkit::redis_url().is_some() { &b } else { &a };
    for (app, ticket) in [(&a, &tickets[0]), (elsewhere, &tickets[1])] {
        let (status, body) = refused_handshake(&app.ws_url(&format!("/api/v1/app/ws?ticket={ticket}"))).await;
        assert_eq!((status, body["error"]["message"].as_str()), (401, Some("session has been revoked")));
    }
}

#[tokio::test]
async fn deleting_the_account_closes_all_its_sockets_on_every_instance_with_4003() {
    let a = TestApp::spawn().await;
    let b = second_instance(&a).await;
    let (client, session) = a.signed_in_client().await;
    let other = sign_in(&a, session["user"]["email"].as_str().unwrap()).await;
    let mut here = connect(&a, access(&session)).await;
    let mut there = connect(&b, access(&other)).await;

    assert_eq!(client.delete("/api/v1/app/users/me").await.status, 204);
    assert_closed(&mut here, "account deactivated").await;
    assert_closed(&mut there, "account deactivated").await;
}

#[tokio::test]
async fn a_password_reset_closes_every_session_socket_on_every_instance_with_4003() {
    let a = TestApp::spawn().await;
    let b = second_instance(&a).await;
    let session = a.register("socket-reset@example.com", PASSWORD).await;
    let other = sign_in(&a, "socket-reset@example.com").await;
    let mut here = connect(&a, access(&session)).await;
    let mut there = connect(&b, access(&other)).await;

    a.client.post_json("/api/v1/public/auth/password/forgot", &json!({"email": "socket-reset@example.com"})).await;
    let token = a.mail.wait_for("socket-reset@example.com", "Reset").await.token();
    let body = json!({"token": token, "new_password": "a-brand-new-password"});
    let res = a.client.post_json("/api/v1/public/auth/password/reset", &body).await;
    assert!(res.status.is_success(), "{}", res.text);
    assert_closed(&mut here, "session revoked").await;
    assert_closed(&mut there, "session revoked").await;
}

#[tokio::test]
async fn a_demotion_ends_admin_subscriptions_and_admin_posting_on_every_instance() {
    let a = TestApp::spawn().await;
    let b = second_instance(&a).await;
    let (token, _) = admin_account(&a).await;
    let email =
        a.client.with_token(&token).get("/api/v1/app/users/me").await.json()["email"].as_str().unwrap().to_owned();
    let mut here = connect(&a, &token).await;
    let mut there = connect(&b, &token).await;
    for socket in [&mut here, &mut there] {
        socket.subscribe("admin:ops").await;
        socket.subscribe("room:kept").await;
    }

    omnistack::users::set_role_by_email(&a.state.db, &email, Role::User).await.unwrap();
    for socket in [&mut here, &mut there] {
        let ended = socket.next_of_type_within("unsubscribed", WITHIN).await;
        assert_eq!(ended["channel"], "admin:ops", "{ended}");
        assert_eq!(ended["data"]["reason"], "ROLE_CHANGED", "{ended}");
        socket.send(json!({"type": "message", "channel": "admin:ops", "data": "still here?"})).await;
        assert_error(&socket.next_of_type("error").await, "NOT_SUBSCRIBED");
        socket.send(json!({"type": "subscribe", "channel": "admin:ops"})).await;
        assert_error(&socket.next_of_type("error").await, "FORBIDDEN");
        socket.send(json!({"type": "message", "channel": "room:kept", "data": "still allowed"})).await;
        assert_eq!(socket.next_of_type("message").await["data"]["content"], "still allowed");
    }
}

#[tokio::test]
async fn a_promotion_applies_to_open_sockets_without_reconnecting() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_in_client().await;
    let email = session["user"]["email"].as_str().unwrap();
    let mut socket = connect(&app, access(&session)).await;
    socket.send(json!({"type": "subscribe", "channel": "admin:ops"})).await;
    assert_error(&socket.next_of_type("error").await, "FORBIDDEN");

    omnistack::users::set_role_by_email(&app.state.db, email, Role::Admin).await.unwrap();
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        socket.send(json!({"type": "subscribe", "channel": "admin:ops"})).await;
        let answer = socket.next().await;
        if answer["type"] == "subscribed" {
            break;
        }
        assert_error(&answer, "FORBIDDEN");
        assert!(tokio::time::Instant::now() < deadline, "the promotion did not reach the socket");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn deactivating_an_external_providers_account_closes_its_sockets_too() {
    let idp = omnistack_testkit::idp::FakeIdp::start().await;
    let app = TestApp::builder().env("CLERK_ISSUER_URL", &idp.issuer()).spawn().await;
    let token = idp.token(idp.claims(json!({"email": "ext-socket@example.com", "email_verified": true})));
    let me = app.client.with_token(&token).get("/api/v1/app/users/me").await.json();
    let mut socket = connect(&app, &token).await;

    let id = uuid::Uuid::parse_str(me["id"].as_str().unwrap()).unwrap();
    omnistack_db::users::deactivate_and_erase(&app.state.db, id).await.unwrap();
    assert_closed(&mut socket, "account deactivated").await;
}
