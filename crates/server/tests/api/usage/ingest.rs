//! `POST /api/v1/admin/usage/events`: once per event id, per-event results, and who may call.

use omnistack::auth::Role;
use omnistack_testkit::{TestApp, TestClient};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{account, quiet, used};

const KEY: &str = "usage-key-0123456789abcdef0123456789";
const PATH: &str = "/api/v1/admin/usage/events";

async fn app() -> TestApp {
    quiet(TestApp::builder())
        .env("USAGE_API_KEY", KEY)
        .env("USAGE_CUSTOM_METRICS", "widgets, reports_built")
        .spawn()
        .await
}

async fn post(client: &TestClient, body: &Value) -> omnistack_testkit::TestResponse {
    client.post_json(PATH, body).await
}

fn statuses(body: &Value) -> Vec<String> {
    body["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_same_batch_posted_twice_counts_once() {
    let app = app().await;
    let (_, ada, _) = account(&app).await;
    let backend = app.client.with_token(KEY);
    let ten_days_ago = (omnistack_db::time::now() - chrono::Duration::days(10)).to_rfc3339();
    let batch = json!({"events": [
        {"id": format!("evt-{}", Uuid::now_v7()), "user_id": ada, "metric": "ai_tokens", "value": 120,
         "dimensions": {"model": "gpt-4o", "provider": "openai"}},
        {"id": format!("evt-{}", Uuid::now_v7()), "user_id": ada, "metric": "ai_tokens", "value": -20},
        {"id": format!("evt-{}", Uuid::now_v7()), "user_id": ada, "metric": "widgets", "value": 3,
         "timestamp": ten_days_ago},
    ]});
    let first = post(&backend, &batch).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json()["accepted"], 3);
    assert_eq!(statuses(&first.json()), ["accepted", "accepted", "accepted"]);
    let second = post(&backend, &batch).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!((second.json()["accepted"].as_i64(), second.json()["duplicates"].as_i64()), (Some(0), Some(3)));

    assert_eq!(used(&app, ada, "ai_tokens").await, 100);
    assert_eq!(used(&app, ada, "widgets").await, 0, "counted on the day it happened");
    let day = (omnistack_db::time::now() - chrono::Duration::days(10)).date_naive();
    assert_eq!(omnistack_db::usage::total(&app.state.db, ada, "widgets", day, day).await.unwrap(), 3);
    let dims = omnistack_db::usage::dimension_totals(&app.state.db, ada, "ai_tokens", super::today(), super::today())
        .await
        .unwrap();
    assert_eq!(dims, vec![("model".into(), "gpt-4o".into(), 120), ("provider".into(), "openai".into(), 120)]);

    // Concurrent retries of one batch still count once.
    let retry = json!({"events": [{"id": "evt-concurrent", "user_id": ada, "metric": "widgets", "value": 1}]});
    let retries = (0..8).map(|_| post(&backend, &retry));
    let answers = futures::future::join_all(retries).await;
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(answers.iter().filter(|a| a.json()["accepted"] == 1).count(), 1);
    assert_eq!(used(&app, ada, "widgets").await, 1);
}

#[tokio::test]
async fn bad_events_are_rejected_one_by_one_and_the_rest_counts() {
    let app = app().await;
    let (_, ada, _) = account(&app).await;
    let admin = super::super::admin::account(&app, Role::Admin).await.client;
    let now = omnistack_db::time::now();
    let event = |id: &str, extra: Value| {
        let mut event = json!({"id": id, "user_id": ada, "metric": "api_requests", "value": 1});
        for (k, v) in extra.as_object().unwrap() {
            event[k] = v.clone();
        }
        event
    };
    let batch = json!({"events": [
        event("ok-1", json!({})),
        event("unknown-metric", json!({"metric": "bitcoins"})),
        event("unknown-user", json!({"user_id": Uuid::now_v7()})),
        event("not-a-uuid", json!({"user_id": "42"})),
        event("too-old", json!({"timestamp": (now - chrono::Duration::days(36)).to_rfc3339()})),
        event("too-new", json!({"timestamp": (now + chrono::Duration::minutes(10)).timestamp()})),
        event("bad-dim", json!({"dimensions": {"colour": "red"}})),
        event("bidi-dim", json!({"dimensions": {"model": "gpt\u{202E}4"}})),
        event("long-dim", json!({"dimensions": {"model": "x".repeat(129)}})),
        event("float", json!({"value": 1.5})),
        event("ｆｕｌｌｗｉｄｔｈ-id", json!({})),
        event("ok-1", json!({})),
        json!("not an object"),
        event("ok-2", json!({"value": -1, "timestamp": (now - chrono::Duration::days(34)).timestamp()})),
    ]});
    let res = post(&admin, &batch).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(
        statuses(&body),
        [
            "accepted",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "duplicate",
            "rejected",
            "accepted"
        ]
    );
    assert_eq!(body["results"][1]["reason"], "unknown metric");
    assert_eq!(body["results"][2]["reason"], "unknown user_id");
    assert_eq!(body["results"][4]["reason"], "timestamp is more than 35 days old");
    assert_eq!(body["results"][5]["reason"], "timestamp is more than 5 minutes ahead");
    assert_eq!(body["results"][10]["id"], Value::Null);
    assert_eq!(
        (body["accepted"].as_i64(), body["duplicates"].as_i64(), body["rejected"].as_i64()),
        (Some(2), Some(1), Some(11))
    );
    assert_eq!(used(&app, ada, "api_requests").await, 1);
}

#[tokio::test]
async fn only_admins_and_the_usage_key_may_send_events() {
    let app = app().await;
    let (user, ada, _) = account(&app).await;
    let body = json!({"events": [{"id": "e1", "user_id": ada, "metric": "widgets", "value": 1}]});

    assert_eq!(post(&app.client, &body).await.status, 401);
    assert_eq!(post(&app.client.with_token("usage-key-0123456789abcdef0123456788"), &body).await.status, 401);
    assert_eq!(post(&app.client.with_token(&KEY[..KEY.len() - 1]), &body).await.status, 401);
    assert_eq!(post(&app.client.with_token(&format!("{KEY}x")), &body).await.status, 401);
    let refused = post(&user, &body).await;
    assert_eq!((refused.status.as_u16(), refused.error_code().as_str()), (403, "AUTHORIZATION_ERROR"));
    assert_eq!(used(&app, ada, "widgets").await, 0);

    // An admin may, until the role is taken away.
    let admin = super::super::admin::account(&app, Role::Admin).await;
    assert_eq!(post(&admin.client, &body).await.status, 200);
    omnistack::users::set_role_by_email(&app.state.db, &admin.email, Role::User).await.unwrap();
    let body = json!({"events": [{"id": "e2", "user_id": ada, "metric": "widgets", "value": 1}]});
    assert_eq!(post(&admin.client, &body).await.status, 403);
    assert_eq!(used(&app, ada, "widgets").await, 1);

    // Without USAGE_API_KEY, no key is accepted.
    let keyless = quiet(TestApp::builder()).spawn().await;
    let (_, bob, _) = account(&keyless).await;
    let body = json!({"events": [{"id": "e1", "user_id": bob, "metric": "api_requests", "value": 1}]});
    assert_eq!(post(&keyless.client.with_token(KEY), &body).await.status, 401);
}

#[tokio::test]
async fn whole_body_problems_are_422_413_or_415() {
    let app = app().await;
    let (_, ada, _) = account(&app).await;
    let backend = app.client.with_token(KEY);
    let event = |n: usize| json!({"id": format!("e{n}"), "user_id": ada, "metric": "widgets", "value": 1});

    let too_many = json!({"events": (0..1001).map(event).collect::<Vec<_>>()});
    let res = post(&backend, &too_many).await;
    assert_eq!((res.status.as_u16(), res.error_code().as_str()), (422, "VALIDATION_ERROR"), "{}", res.text);
    let exactly = json!({"events": (0..1000).map(event).collect::<Vec<_>>()});
    let res = post(&backend, &exactly).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["accepted"], 1000);
    assert_eq!(used(&app, ada, "widgets").await, 1000);

    for body in [json!({"events": []}), json!({}), json!({"events": "all"}), json!([event(1)])] {
        let res = post(&backend, &body).await;
        assert_eq!((res.status.as_u16(), res.error_code().as_str()), (422, "VALIDATION_ERROR"), "{body}: {}", res.text);
    }
    // NUL anywhere in the body is refused before any event is looked at.
    let nul = json!({"events": [{"id": "nul\u{0}id", "user_id": ada, "metric": "widgets", "value": 1}]});
    assert_eq!(post(&backend, &nul).await.status, 422);
    let nul_dim = json!({"events": [{"id": "nul-dim", "user_id": ada, "metric": "widgets", "value": 1,
        "dimensions": {"model": "a\u{0}b"}}]});
    assert_eq!(post(&backend, &nul_dim).await.status, 422);

    let huge = json!({"events": [{"id": "big", "user_id": ada, "metric": "widgets", "value": 1,
        "dimensions": {"model": "x".repeat(2 << 20)}}]});
    assert_eq!(post(&backend, &huge).await.status, 413);
    let text = backend.request(Method::POST, PATH).header("content-type", "text/plain").body("events").send().await;
    assert_eq!(text.unwrap().status(), 415);
    assert_eq!(used(&app, ada, "widgets").await, 1000);
}

#[tokio::test]
async fn stripe_sync_is_for_admins_only() {
    let app = app().await;
    let (user, _, _) = account(&app).await;
    assert_eq!(app.client.get("/api/v1/admin/usage/stripe-sync").await.status, 401);
    assert_eq!(user.get("/api/v1/admin/usage/stripe-sync").await.status, 403);
    assert_eq!(app.client.with_token(KEY).get("/api/v1/admin/usage/stripe-sync").await.status, 401);
    let admin = super::super::admin::account(&app, Role::Admin).await.client;
    let res = admin.get("/api/v1/admin/usage/stripe-sync").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json(), json!({"pending": 0, "sent": 0, "failed": 0, "oldest_pending_at": null}));
}
