//! What refuses a chat before any provider sees it: no token, a revoked session, an
//! impersonation token, bad input, the plan's limit, the `ai` rate class, no provider.

use chrono::Utc;
use omnistack::auth::Role;
use omnistack_db::usage::UsageDelta;
use omnistack_testkit::TestApp;
use omnistack_testkit::ai::DEFAULT_REPLY;
use serde_json::{Value, json};

use super::{ask, stand, user};
use crate::admin::account;
use crate::webhooks::assert_refused;

const ROUTES: [(&str, &str); 3] =
    [("GET", "/api/v1/app/ai/status"), ("POST", "/api/v1/app/ai/chat"), ("POST", "/api/v1/app/ai/chat/routed")];

async fn call(client: &omnistack_testkit::TestClient, method: &str, path: &str) -> omnistack_testkit::TestResponse {
    if method == "GET" {
        client.get(path).await
    } else if path.ends_with("/routed") {
        client.post_json(path, &json!({"prompt": "Hi", "complexity": "simple"})).await
    } else {
        client.post_json(path, &ask("Hi")).await
    }
}

#[tokio::test]
async fn without_a_token_or_with_a_revoked_one_every_route_is_401() {
    let stand = stand(&[]).await;
    for (method, path) in ROUTES {
        assert_refused(&call(&stand.app.client, method, path).await, 401, "AUTHENTICATION_ERROR");
    }
    let (client, session) = stand.app.signed_in_client().await;
    assert_eq!(call(&client, "POST", "/api/v1/app/ai/chat").await.status, 200);
    let res = stand
        .app
        .client
        .post_json("/api/v1/public/auth/logout", &json!({"refresh_token": session["refresh_token"]}))
        .await;
    assert!(res.status.is_success(), "{}", res.text);
    for (method, path) in ROUTES {
        assert_refused(&call(&client, method, path).await, 401, "AUTHENTICATION_ERROR");
    }
    assert_eq!(stand.fake.requests().len(), 1);
}

#[tokio::test]
async fn an_impersonating_admin_reads_the_status_but_cannot_spend_the_users_ai() {
    let stand = stand(&[]).await;
    let admin = account(&stand.app, Role::Admin).await;
    let target = account(&stand.app, Role::User).await;
    let res = admin
        .client
        .post_json(
            "/api/v1/admin/impersonations",
            &json!({"user_id": target.id, "reason": "support ticket #4521: AI question", "duration_minutes": 5}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let acting = stand.app.client.with_token(res.json()["access_token"].as_str().unwrap());
    assert_eq!(call(&acting, "GET", "/api/v1/app/ai/status").await.status, 200);
    for (method, path) in &ROUTES[1..] {
        assert_refused(&call(&acting, method, path).await, 403, "AUTHORIZATION_ERROR");
    }
    assert!(stand.fake.requests().is_empty());
}

#[tokio::test]
async fn bad_input_is_422_and_reaches_no_provider() {
    let stand = stand(&[("AI_MAX_TOKENS", "512")]).await;
    let (client, _) = user(&stand.app).await;
    let message = |content: Value| json!({"messages": [{"role": "user", "content": content}]});
    let many: Vec<Value> = (0..101).map(|_| json!({"role": "user", "content": "x"})).collect();
    let cases = [
        json!({"model": "openai/gpt-4-unlisted", "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "mistral/large", "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "openai/gpt-4o-mini/../x", "messages": [{"role": "user", "content": "x"}]}),
        json!({"messages": []}),
        json!({"messages": many}),
        json!({"messages": [{"role": "tool", "content": "x"}]}),
        json!({"messages": [{"role": "system", "content": "only instructions"}]}),
        json!({"messages": [{"role": "user"}]}),
        message(json!("   \n\t ")),
        message(json!("x".repeat(100_001))),
        message(json!("nul \u{0000} inside")),
        message(json!(42)),
        json!({"messages": [{"role": "user", "content": "x"}], "temperature": 2.5}),
        json!({"messages": [{"role": "user", "content": "x"}], "temperature": -0.1}),
        json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 513}),
        json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
        json!({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
    ];
    for body in &cases {
        let res = client.post_json("/api/v1/app/ai/chat", body).await;
        assert_refused(&res, 422, "VALIDATION_ERROR");
    }
    let routed = [
        json!({"prompt": "x", "complexity": "extreme"}),
        json!({"prompt": "", "complexity": "simple"}),
        json!({"prompt": "x", "system": " ", "complexity": "simple"}),
        json!({"prompt": "x\u{0000}", "complexity": "simple"}),
        json!({"complexity": "simple"}),
        json!({"prompt": "x", "complexity": "simple", "max_tokens": 10_000}),
    ];
    for body in &routed {
        assert_refused(&client.post_json("/api/v1/app/ai/chat/routed", body).await, 422, "VALIDATION_ERROR");
    }
    // Oversized bodies stop at the body limit.
    let huge = message(json!("y".repeat(2 << 20)));
    assert_eq!(client.post_json("/api/v1/app/ai/chat", &huge).await.status, 413);
    assert!(stand.fake.requests().is_empty(), "{:?}", stand.fake.requests());
}

#[tokio::test]
async fn odd_unicode_reaches_the_provider_and_comes_back_unchanged() {
    let stand = stand(&[]).await;
    let (client, _) = user(&stand.app).await;
    stand.fake.echo();
    let text = "\u{feff}RTL \u{202e}desserts\u{202c} zwj 👩\u{200d}💻 combining e\u{301}\u{301} \u{fffd} 𝕏 \u{2028}\u{2029} tab\t end";
    let res = client.post_json("/api/v1/app/ai/chat", &ask(text)).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["content"], text);
    assert_eq!(stand.fake.requests()[0].body["messages"][0]["content"], text);
}

#[tokio::test]
async fn the_plans_ai_limit_refuses_with_402_before_any_provider_call() {
    let stand = stand(&[]).await;
    let (client, user_id) = user(&stand.app).await;
    let mut tx = stand.app.state.db.begin().await.unwrap();
    let delta = UsageDelta {
        user_id,
        metric: "ai_requests".into(),
        day: UsageDelta::day_of(Utc::now()),
        value: 49,
        dimensions: vec![("provider".into(), "openai".into()), ("model".into(), "gpt-4o-mini".into())],
    };
    omnistack_db::usage::add(&mut tx, &[delta]).await.unwrap();
    tx.commit().await.unwrap();
    let res = client.post_json("/api/v1/app/ai/chat", &ask("Hi")).await;
    assert_eq!(res.status, 200, "the 50th request of the free plan: {}", res.text);
    assert_eq!(res.json()["content"], DEFAULT_REPLY);
    for path in ["/api/v1/app/ai/chat", "/api/v1/app/ai/chat/routed"] {
        let res = call(&client, "POST", path).await;
        assert_refused(&res, 402, "QUOTA_EXCEEDED");
    }
    let streamed = json!({"stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    assert_refused(&client.post_json("/api/v1/app/ai/chat", &streamed).await, 402, "QUOTA_EXCEEDED");
    assert_eq!(stand.fake.requests().len(), 1);
    let (other, _) = user(&stand.app).await;
    assert_eq!(call(&other, "POST", "/api/v1/app/ai/chat").await.status, 200, "another account has its own quota");
}

#[tokio::test]
async fn the_ai_rate_class_limits_each_account() {
    let stand = stand(&[("RATE_LIMIT_AI", "2/minute")]).await;
    let (client, _) = user(&stand.app).await;
    for _ in 0..2 {
        assert_eq!(call(&client, "POST", "/api/v1/app/ai/chat").await.status, 200);
    }
    assert_refused(&call(&client, "POST", "/api/v1/app/ai/chat/routed").await, 429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(call(&client, "GET", "/api/v1/app/ai/status").await.status, 200, "the status is not an AI call");
    let (other, _) = user(&stand.app).await;
    assert_eq!(call(&other, "POST", "/api/v1/app/ai/chat").await.status, 200);
}

#[tokio::test]
async fn without_a_provider_the_chat_routes_are_503_and_the_status_says_so() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    for (method, path) in &ROUTES[1..] {
        assert_refused(&call(&client, method, path).await, 503, "SERVICE_UNAVAILABLE");
    }
    let status = client.get("/api/v1/app/ai/status").await.json();
    assert_eq!(status["enabled"], false);
    assert!(status["providers"].as_array().unwrap().iter().all(|p| p["configured"] == false));
}
