//! Every way to authenticate a socket, and every refusal.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use omnistack_testkit::{TestApp, WsClient, refused_handshake};
use serde_json::{Value, json};

use super::{account, connect, socket_url};

#[tokio::test]
async fn a_query_token_connects_on_v1_and_v2() {
    let app = TestApp::spawn().await;
    let (token, id) = account(&app).await;
    for version in ["v1", "v2"] {
        let url = app.ws_url(&format!("/api/{version}/app/ws?token={token}"));
        let (mut socket, connected) = WsClient::connected(&url).await;
        assert_eq!(connected["user_id"], id.as_str());
        assert!(uuid::Uuid::parse_str(connected["connection_id"].as_str().unwrap()).is_ok());
        socket.send(json!({"type": "ping"})).await;
        let pong = socket.next().await;
        assert_eq!(pong["type"], "pong");
        assert_eq!(pong["channel"], Value::Null);
        assert!(pong["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}

#[tokio::test]
async fn a_bad_query_token_or_ticket_is_refused_at_the_handshake_with_401() {
    let app = TestApp::spawn().await;
    for query in ["token=not-a-jwt", "ticket=made-up"] {
        let (status, body) = refused_handshake(&app.ws_url(&format!("/api/v1/app/ws?{query}"))).await;
        assert_eq!(status, 401, "{query}");
        assert_eq!(body["error"]["code"], "AUTHENTICATION_ERROR");
        assert!(body["error"]["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    }
}

#[tokio::test]
async fn a_ticket_works_once() {
    let app = TestApp::spawn().await;
    let (token, id) = account(&app).await;
    assert_eq!(app.client.post_json("/api/v1/app/ws/ticket", &json!({})).await.status, 401, "the route is guarded");
    let res = app.client.with_token(&token).post_json("/api/v1/app/ws/ticket", &json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["expires_in"], 30);
    let ticket = res.json()["ticket"].as_str().unwrap().to_owned();
    let url = app.ws_url(&format!("/api/v1/app/ws?ticket={ticket}"));
    let (_socket, connected) = WsClient::connected(&url).await;
    assert_eq!(connected["user_id"], id.as_str());
    let (status, body) = refused_handshake(&url).await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("ticket is invalid, used or expired")));
}

#[tokio::test]
async fn a_ticket_expires() {
    let app = TestApp::builder().env("WS_TICKET_TTL_SECONDS", "1").spawn().await;
    let (token, _) = account(&app).await;
    let res = app.client.with_token(&token).post_json("/api/v2/app/ws/ticket", &json!({})).await;
    let ticket = res.json()["data"]["ticket"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, _) = refused_handshake(&app.ws_url(&format!("/api/v1/app/ws?ticket={ticket}"))).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_first_message_may_authenticate() {
    let app = TestApp::spawn().await;
    let (token, id) = account(&app).await;
    let mut socket = WsClient::connect(&app.ws_url("/api/v1/app/ws")).await;
    socket.send(json!({"type": "auth", "token": token})).await;
    let connected = socket.next_of_type("connected").await;
    assert_eq!(connected["data"]["user_id"], id.as_str());
}

#[tokio::test]
async fn a_bad_first_message_closes_with_4001() {
    let app = TestApp::spawn().await;
    for first in [json!({"type": "auth", "token": "not-a-jwt"}), json!({"type": "ping"})] {
        let mut socket = WsClient::connect(&app.ws_url("/api/v1/app/ws")).await;
        socket.send(first.clone()).await;
        assert_eq!(socket.close_code(Duration::from_secs(5)).await, 4001, "{first}");
    }
}

#[tokio::test]
async fn no_first_message_in_time_closes_with_4001() {
    let app = TestApp::builder().env("WS_AUTH_TIMEOUT_SECONDS", "1").spawn().await;
    let mut socket = WsClient::connect(&app.ws_url("/api/v1/app/ws")).await;
    let frame = socket.closed_within(Duration::from_secs(3)).await.expect("a close frame");
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (4001, "authentication timeout"));
}

#[tokio::test]
async fn deactivated_accounts_are_refused_by_every_path() {
    let app = TestApp::spawn().await;
    let (token, id) = account(&app).await;
    let ticket = app.client.with_token(&token).post_json("/api/v1/app/ws/ticket", &json!({})).await.json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = uuid::Uuid::parse_str(&id).unwrap();
    omnistack_db::users::deactivate_and_erase(&app.state.db, id).await.unwrap();

    let (status, body) = refused_handshake(&socket_url(&app, &token)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("AUTHORIZATION_ERROR")));
    let (status, _) = refused_handshake(&app.ws_url(&format!("/api/v1/app/ws?ticket={ticket}"))).await;
    assert_eq!(status, 403);
    let mut socket = WsClient::connect(&app.ws_url("/api/v1/app/ws")).await;
    socket.send(json!({"type": "auth", "token": token})).await;
    assert_eq!(socket.close_code(Duration::from_secs(5)).await, 4003);
}

/// An access token for the same session as `token`, expiring in `seconds`.
fn short_lived(app: &TestApp, token: &str, seconds: i64) -> String {
    let mut claims = jsonwebtoken::dangerous::insecure_decode::<Value>(token).unwrap().claims;
    claims["exp"] = json!(chrono::Utc::now().timestamp() + seconds);
    claims["jti"] = json!(uuid::Uuid::new_v4().to_string());
    let key = EncodingKey::from_secret(app.state.config.secret_key.expose().as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

#[tokio::test]
async fn the_socket_closes_with_4001_when_its_token_expires() {
    let app = TestApp::spawn().await;
    let (token, _) = account(&app).await;
    let mut socket = connect(&app, &short_lived(&app, &token, 2)).await;
    let frame = socket.closed_within(Duration::from_secs(5)).await.expect("a close frame");
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (4001, "token expired"));
}

#[tokio::test]
async fn a_fresh_token_keeps_the_socket_open_and_a_bad_one_is_an_error() {
    let app = TestApp::spawn().await;
    let (token, _) = account(&app).await;
    let (other, _) = account(&app).await;
    let mut socket = connect(&app, &short_lived(&app, &token, 2)).await;
    socket.send(json!({"type": "auth", "token": "garbage"})).await;
    super::assert_error(&socket.next().await, "AUTHENTICATION_ERROR");
    socket.send(json!({"type": "auth", "token": other})).await;
    super::assert_error(&socket.next().await, "AUTHENTICATION_ERROR");
    socket.send(json!({"type": "auth", "token": token})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(socket.next_of_type("pong").await["type"], "pong", "still open after the first token expired");
}
