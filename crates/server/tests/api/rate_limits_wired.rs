//! The limits applied to the real routes: `auth` per IP and per email, `app` per account.

use omnistack_testkit::{TestApp, redis_url};
use reqwest::Method;
use serde_json::json;

fn login_from(app: &TestApp, ip: &str, email: &str) -> reqwest::RequestBuilder {
    app.client
        .request(Method::POST, "/api/v1/public/auth/login")
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": "wrong-password"}))
}

#[tokio::test]
async fn login_is_limited_per_client_ip() {
    let app = TestApp::builder().env("TRUSTED_PROXIES", "127.0.0.1/32").spawn().await;
    for i in 0..5 {
        let res = app.client.send(login_from(&app, "203.0.113.7", &format!("u{i}@example.com"))).await;
        assert_eq!(res.status, 401);
        assert_eq!(res.header("x-ratelimit-limit"), Some("5"));
    }
    let res = app.client.send(login_from(&app, "203.0.113.7", "u9@example.com")).await;
    assert_eq!(res.status, 429);
    assert_eq!(res.error_code(), "RATE_LIMIT_EXCEEDED");
    assert!(res.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    let other_ip = app.client.send(login_from(&app, "203.0.113.8", "u9@example.com")).await;
    assert_eq!(other_ip.status, 401, "another client has its own budget");
}

#[tokio::test]
async fn login_is_limited_per_email_across_client_ips() {
    let app = TestApp::builder().env("TRUSTED_PROXIES", "127.0.0.1/32").spawn().await;
    for i in 0..5 {
        let res = app.client.send(login_from(&app, &format!("198.51.100.{i}"), "Target@Example.com")).await;
        assert_eq!(res.status, 401);
    }
    let res = app.client.send(login_from(&app, "198.51.100.99", "target@example.com")).await;
    assert_eq!(res.status, 429, "{}", res.text);
}

#[tokio::test]
async fn authenticated_calls_are_limited_per_account_with_headers() {
    let app = TestApp::builder().env("RATE_LIMIT_APP", "3/minute").spawn().await;
    let (client, _) = app.signed_in_client().await;
    let (other, _) = app.signed_in_client().await;
    for remaining in ["2", "1", "0"] {
        let res = client.get("/api/v1/app/users/me").await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("x-ratelimit-remaining"), Some(remaining));
        assert!(res.header("x-ratelimit-reset").unwrap().parse::<u64>().is_ok());
    }
    let res = client.get("/api/v1/app/projects").await;
    assert_eq!(res.status, 429, "one bucket per account, not per path");
    assert_eq!(other.get("/api/v1/app/users/me").await.status, 200);
}

#[tokio::test]
async fn two_instances_sharing_redis_share_the_account_limit() {
    if redis_url().is_none() {
        eprintln!("TEST_REDIS_URL is unset: the shared-limit test runs in the PostgreSQL + Redis pass");
        return;
    }
    let prefix = format!("omnistack-test-{}:", uuid::Uuid::new_v4().simple());
    let secret = "shared-secret-for-two-instances-0123456789";
    let first = TestApp::builder()
        .env("REDIS_KEY_PREFIX", &prefix)
        .env("SECRET_KEY", secret)
        .env("RATE_LIMIT_APP", "4/minute")
        .spawn()
        .await;
    let (client, session) = first.signed_in_client().await;
    for _ in 0..2 {
        assert_eq!(client.get("/api/v1/app/users/me").await.status, 200);
    }
    // The second instance has its own database; what the two share is the Redis counter.
    let second = TestApp::builder()
        .env("REDIS_KEY_PREFIX", &prefix)
        .env("SECRET_KEY", secret)
        .env("RATE_LIMIT_APP", "4/minute")
        .spawn()
        .await;
    let user_id = session["user"]["id"].as_str().unwrap();
    let decision = second.state.limiter.check(omnistack::rate_limit::LimitClass::App, user_id).await;
    assert_eq!(decision.remaining, 1, "the second instance sees the first one's two hits");
    assert_eq!(client.get("/api/v1/app/users/me").await.status, 200);
    assert_eq!(client.get("/api/v1/app/users/me").await.status, 429);
}
