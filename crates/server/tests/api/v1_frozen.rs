//! v1 is frozen: its JSON responses and its whole OpenAPI document are guarded by snapshots
//! in `snapshots/v1/`. A failing test here means a change broke v1's contract; change v2.
//!
//! Volatile values (ids, timestamps, tokens, request ids, latencies, the server version) are
//! replaced by placeholders before comparison; everything else must match byte for byte.

use omnistack_testkit::{TestApp, TestClient};
use serde_json::{Value, json};

/// Keys whose values change from run to run, and what they are shown as.
const VOLATILE: [(&str, &str); 10] = [
    ("id", "[id]"),
    ("owner_id", "[id]"),
    ("created_at", "[timestamp]"),
    ("updated_at", "[timestamp]"),
    ("timestamp", "[timestamp]"),
    ("access_token", "[token]"),
    ("refresh_token", "[token]"),
    ("request_id", "[request-id]"),
    ("latency_ms", "[latency]"),
    ("version", "[server-version]"),
];

/// Replaces every volatile value (at any depth) by its placeholder.
fn redacted(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    match VOLATILE.iter().find(|(name, _)| name == key) {
                        Some((_, placeholder)) if !item.is_null() => *item = json!(placeholder),
                        _ => walk(item),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

/// Compares `value` with `snapshots/v1/<name>.snap`.
fn assert_frozen(name: &str, value: Value) {
    insta::with_settings!({ snapshot_path => "snapshots/v1", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!(name, value);
    });
}

async fn signed_in(app: &TestApp) -> (TestClient, Value) {
    let session = app.register("frozen@example.com", "correct-horse-battery").await;
    let token = session["access_token"].as_str().expect("access token").to_owned();
    (app.client.with_token(&token), session)
}

async fn create_project(client: &TestClient, name: &str) -> Value {
    let res = client.post_json("/api/v1/app/projects", &json!({"name": name, "description": "frozen"})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.json()
}

#[tokio::test]
async fn register_and_login_token_responses() {
    let app = TestApp::spawn().await;
    let (_, session) = signed_in(&app).await;
    assert_frozen("register", redacted(session));
    let body = json!({"email": "frozen@example.com", "password": "correct-horse-battery"});
    let res = app.client.post_json("/api/v1/public/auth/login", &body).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_frozen("login", redacted(res.json()));
}

#[tokio::test]
async fn users_me() {
    let app = TestApp::spawn().await;
    let (client, _) = signed_in(&app).await;
    let res = client.get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 200);
    assert_frozen("users_me", redacted(res.json()));
}

#[tokio::test]
async fn project_and_project_list() {
    let app = TestApp::spawn().await;
    let (client, _) = signed_in(&app).await;
    let project = create_project(&client, "Apollo").await;
    assert_frozen("project", redacted(project.clone()));
    create_project(&client, "Gemini").await;
    let res = client.get("/api/v1/app/projects?limit=5").await;
    assert_eq!(res.status, 200);
    assert_frozen("project_list", redacted(res.json()));
}

#[tokio::test]
async fn health_and_readiness() {
    // Without Redis, so readiness reads the same whether or not the suite runs with Redis.
    let app = TestApp::builder().env("REDIS_URL", "").spawn().await;
    let res = app.client.get("/api/v1/public/health").await;
    assert_eq!(res.status, 200);
    assert_frozen("health", redacted(res.json()));
    let res = app.client.get("/api/v1/public/health/ready").await;
    assert_eq!(res.status, 200);
    assert_frozen("readiness", redacted(res.json()));
}

#[tokio::test]
async fn error_bodies() {
    let app = TestApp::spawn().await;
    let (client, _) = signed_in(&app).await;
    let res = client.get("/api/v1/app/projects/0190a0a0-0000-7000-8000-000000000000").await;
    assert_eq!(res.status, 404);
    assert_frozen("error_not_found", redacted(res.json()));
    let res = client.post_json("/api/v1/app/projects", &json!({"name": ""})).await;
    assert_eq!(res.status, 422);
    assert_frozen("error_validation", redacted(res.json()));
}

#[tokio::test]
async fn openapi_document() {
    let app = TestApp::spawn().await;
    let res = app.client.get("/api/v1/openapi.json").await;
    assert_eq!(res.status, 200);
    let mut doc = res.json();
    // The package version is not part of the API contract.
    doc["info"]["version"] = json!("[server-version]");
    assert_frozen("openapi", doc);
}
