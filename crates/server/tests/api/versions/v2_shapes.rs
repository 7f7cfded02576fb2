//! v2's shapes: every success body enveloped, errors and 204s not; cursor pages; the account's
//! `is_premium` and `days_since_joined`.

use std::collections::HashSet;

use omnistack_testkit::{TestApp, TestClient, TestResponse};
use serde_json::{Value, json};

use super::{assert_version_headers, keys};

/// Asserts `{"data", "meta": {"request_id", "timestamp", "version": "v2"}}` (plus
/// `next_cursor` for lists) and returns `data`.
fn data(res: &TestResponse, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text);
    assert_version_headers(res, "v2");
    let body = res.json();
    assert_eq!(keys(&body), ["data", "meta"], "{body}");
    let meta = &body["meta"];
    let expected: &[&str] = if body["data"].is_array() {
        &["next_cursor", "request_id", "timestamp", "version"]
    } else {
        &["request_id", "timestamp", "version"]
    };
    assert_eq!(keys(meta), expected, "{meta}");
    assert_eq!(meta["version"], "v2");
    assert_eq!(meta["request_id"].as_str(), res.header("x-request-id"));
    let timestamp = meta["timestamp"].as_str().unwrap();
    assert!(timestamp.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(), "{timestamp}");
    body["data"].clone()
}

fn assert_error(res: &TestResponse, status: u16, code: &str) {
    assert_eq!(res.status, status, "{}", res.text);
    assert_version_headers(res, "v2");
    let body = res.json();
    assert_eq!(keys(&body), ["error"], "errors are not enveloped: {body}");
    assert_eq!(body["error"]["code"], code);
}

fn assert_bodyless(res: &TestResponse, status: u16) {
    assert_eq!((res.status.as_u16(), res.text.as_str()), (status, ""));
    assert_version_headers(res, "v2");
}

async fn sign_up(app: &TestApp, email: &str) -> (TestClient, Value) {
    let body = json!({"email": email, "password": "correct-horse-battery", "full_name": "Vee Two"});
    let session = data(&app.client.post_json("/api/v2/public/auth/register", &body).await, 201);
    let client = app.client.with_token(session["access_token"].as_str().unwrap());
    (client, session)
}

#[tokio::test]
async fn health_and_readiness_are_enveloped() {
    let app = TestApp::spawn().await;
    let health = data(&app.client.get("/api/v2/public/health").await, 200);
    assert_eq!(keys(&health), ["status", "timestamp", "version"]);
    let ready = data(&app.client.get("/api/v2/public/health/ready").await, 200);
    assert_eq!(keys(&ready), ["components", "status", "timestamp"]);
}

#[tokio::test]
async fn auth_answers_are_enveloped_and_bodyless_ones_stay_bodyless() {
    let app = TestApp::spawn().await;
    let (_, session) = sign_up(&app, "vee@example.com").await;
    assert_eq!(keys(&session), ["access_token", "expires_in", "refresh_token", "token_type", "user"]);
    assert_eq!(session["user"]["is_premium"], false);

    let credentials = json!({"email": "vee@example.com", "password": "correct-horse-battery"});
    let login = data(&app.client.post_json("/api/v2/public/auth/login", &credentials).await, 200);
    let refresh = json!({"refresh_token": login["refresh_token"]});
    let refreshed = data(&app.client.post_json("/api/v2/public/auth/refresh", &refresh).await, 200);
    assert_eq!(refreshed["token_type"], "bearer");

    let forgot =
        app.client.post_json("/api/v2/public/auth/password/forgot", &json!({"email": "vee@example.com"})).await;
    assert_bodyless(&forgot, 202);
    let logout = json!({"refresh_token": refreshed["refresh_token"]});
    assert_bodyless(&app.client.post_json("/api/v2/public/auth/logout", &logout).await, 204);

    let wrong = json!({"email": "vee@example.com", "password": "not-the-password"});
    assert_error(&app.client.post_json("/api/v2/public/auth/login", &wrong).await, 401, "AUTHENTICATION_ERROR");
    let taken = json!({"email": "vee@example.com", "password": "correct-horse-battery"});
    assert_error(&app.client.post_json("/api/v2/public/auth/register", &taken).await, 409, "CONFLICT");
}

#[tokio::test]
async fn the_account_is_enveloped_with_its_v2_fields() {
    let app = TestApp::spawn().await;
    let (client, _) = sign_up(&app, "me@example.com").await;
    let me = data(&client.get("/api/v2/app/users/me").await, 200);
    assert_eq!(me["email"], "me@example.com");
    assert_eq!((me["is_premium"].as_bool(), me["days_since_joined"].as_i64()), (Some(false), Some(0)));
    let v1 = client.get("/api/v1/app/users/me").await.json();
    assert!(v1.get("is_premium").is_none() && v1.get("days_since_joined").is_none(), "v1 is frozen: {v1}");

    let patched = data(&client.patch_json("/api/v2/app/users/me", &json!({"full_name": "Renamed"})).await, 200);
    assert_eq!((patched["full_name"].as_str(), patched["is_premium"].as_bool()), (Some("Renamed"), Some(false)));
    let too_long = json!({"full_name": "x".repeat(256)});
    assert_error(&client.patch_json("/api/v2/app/users/me", &too_long).await, 422, "VALIDATION_ERROR");
    assert_error(&app.client.get("/api/v2/app/users/me").await, 401, "AUTHENTICATION_ERROR");
    assert_bodyless(&client.delete("/api/v2/app/users/me").await, 204);
}

#[tokio::test]
async fn premium_means_an_active_or_trial_subscription_to_a_paid_plan() {
    let app = TestApp::spawn().await;
    let (client, session) = sign_up(&app, "payer@example.com").await;
    let id = uuid::Uuid::parse_str(session["user"]["id"].as_str().unwrap()).unwrap();
    for (plan, status, premium) in [
        ("pro", "active", true),
        ("pro", "trialing", true),
        ("pro", "canceled", false),
        ("free", "active", false),
        ("free", "inactive", false),
    ] {
        assert!(omnistack_db::users::set_subscription(&app.state.db, id, plan, status).await.unwrap());
        let me = data(&client.get("/api/v2/app/users/me").await, 200);
        assert_eq!(me["is_premium"], premium, "{plan}/{status}");
        assert_eq!((me["subscription_plan"].as_str(), me["subscription_status"].as_str()), (Some(plan), Some(status)));
    }
}

#[tokio::test]
async fn projects_are_enveloped_and_deleting_is_bodyless() {
    let app = TestApp::spawn().await;
    let (client, _) = sign_up(&app, "maker@example.com").await;
    let created = data(&client.post_json("/api/v2/app/projects", &json!({"name": "Apollo"})).await, 201);
    assert_eq!(keys(&created), ["created_at", "description", "id", "name", "owner_id", "updated_at"]);
    let path = format!("/api/v2/app/projects/{}", created["id"].as_str().unwrap());
    assert_eq!(data(&client.get(&path).await, 200)["name"], "Apollo");
    let patched = data(&client.patch_json(&path, &json!({"description": "moon"})).await, 200);
    assert_eq!(patched["description"], "moon");
    let list = data(&client.get("/api/v2/app/projects").await, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_error(&client.post_json("/api/v2/app/projects", &json!({"name": ""})).await, 422, "VALIDATION_ERROR");
    assert_bodyless(&client.delete(&path).await, 204);
    assert_error(&client.get(&path).await, 404, "NOT_FOUND");
}

#[tokio::test]
async fn cursor_pages_walk_every_project_once_newest_first() {
    let app = TestApp::spawn().await;
    let (client, _) = sign_up(&app, "pager@example.com").await;
    for i in 0..25 {
        let res = client.post_json("/api/v2/app/projects", &json!({"name": format!("project {i:02}")})).await;
        assert_eq!(res.status, 201);
    }
    let (mut names, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v2/app/projects?limit=10&cursor={cursor}"),
            None => "/api/v2/app/projects?limit=10&cursor=".to_owned(),
        };
        let res = client.get(&path).await;
        let page = data(&res, 200);
        let items = page.as_array().unwrap();
        sizes.push(items.len());
        names.extend(items.iter().map(|p| p["name"].as_str().unwrap().to_owned()));
        match res.json()["meta"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(res.json()["meta"]["next_cursor"].is_null());
                break;
            }
        }
        assert!(sizes.len() < 10, "the walk ends");
    }
    assert_eq!(sizes, [10, 10, 5]);
    let expected: Vec<String> = (0..25).rev().map(|i| format!("project {i:02}")).collect();
    assert_eq!(names, expected, "newest first, no gaps");
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), 25, "no duplicates");

    let exact = client.get("/api/v2/app/projects?limit=25").await.json();
    assert!(exact["meta"]["next_cursor"].is_null(), "a page that ends exactly at the end is the last");
    let search = data(&client.get("/api/v2/app/projects?search=PROJECT%202&limit=100").await, 200);
    assert_eq!(search.as_array().map(Vec::len), Some(5), "search still works");
}

#[tokio::test]
async fn a_garbage_cursor_or_limit_is_422_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let (client, _) = sign_up(&app, "garbage@example.com").await;
    for (query, field) in [
        ("cursor=garbage!", "cursor"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
    ] {
        let res = client.get(&format!("/api/v2/app/projects?{query}")).await;
        assert_error(&res, 422, "VALIDATION_ERROR");
        assert_eq!(res.json()["error"]["details"]["fields"][0]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn realtime_tickets_status_and_broadcasts_are_enveloped_and_v1_keeps_its_bodies() {
    let app = TestApp::spawn().await;
    let (client, _) = sign_up(&app, "socket@example.com").await;
    let ticket = data(&client.send(client.request(reqwest::Method::POST, "/api/v2/app/ws/ticket")).await, 200);
    assert_eq!(keys(&ticket), ["expires_in", "ticket"]);
    let status = data(&client.get("/api/v2/app/ws/status").await, 200);
    assert_eq!(keys(&status), ["connections", "instance_id"]);
    assert_error(&app.client.get("/api/v2/app/ws/status").await, 401, "AUTHENTICATION_ERROR");

    let body = json!({"channel": "room:lobby", "type": "message", "data": {"text": "hi"}});
    assert_error(&client.post_json("/api/v2/admin/ws/broadcast", &body).await, 403, "AUTHORIZATION_ERROR");
    omnistack::users::set_role_by_email(&app.state.db, "socket@example.com", omnistack::auth::Role::Admin)
        .await
        .unwrap();
    let published = data(&client.post_json("/api/v2/admin/ws/broadcast", &body).await, 200);
    assert_eq!(published["channel"], "room:lobby");
    assert!(published["offset"].as_u64().is_some(), "{published}");
    let admin_status = data(&client.get("/api/v2/app/ws/status").await, 200);
    assert_eq!(keys(&admin_status), ["connections", "global", "instance_id"]);
    let bad = json!({"channel": "bad channel", "type": "message", "data": 1});
    assert_error(&client.post_json("/api/v2/admin/ws/broadcast", &bad).await, 422, "VALIDATION_ERROR");

    let v1_ticket = client.send(client.request(reqwest::Method::POST, "/api/v1/app/ws/ticket")).await.json();
    assert_eq!(keys(&v1_ticket), ["expires_in", "ticket"], "v1 is not enveloped");
    assert_eq!(keys(&client.get("/api/v1/app/ws/status").await.json()), ["connections", "global", "instance_id"]);
    let v1_published = client.post_json("/api/v1/admin/ws/broadcast", &body).await.json();
    assert_eq!(keys(&v1_published), ["channel", "offset"]);
}
