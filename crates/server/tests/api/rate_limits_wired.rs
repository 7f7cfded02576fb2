//! The limits applied to the real routes: `auth` per IP and per email, failed sign-ins per
//! (email, IP) and per email, `app` per account.

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

fn login_with(app: &TestApp, ip: &str, email: &str, password: &str) -> reqwest::RequestBuilder {
    app.client
        .request(Method::POST, "/api/v1/public/auth/login")
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
}

const PASSWORD: &str = "correct-horse-battery";

#[tokio::test]
async fn failed_sign_ins_from_one_client_do_not_lock_the_owner_out_from_another() {
    let app = TestApp::builder().env("TRUSTED_PROXIES", "127.0.0.1/32").spawn().await;
    app.register("owner@example.com", PASSWORD).await;
    for _ in 0..5 {
        let res = app.client.send(login_from(&app, "203.0.113.7", "Owner@Example.com")).await;
        assert_eq!(res.status, 401);
    }
    let res = app.client.send(login_from(&app, "203.0.113.7", "owner@example.com")).await;
    assert_eq!(res.status, 429, "the guessing client is stopped");
    let owner = app.client.send(login_with(&app, "198.51.100.20", "owner@example.com", PASSWORD)).await;
    assert_eq!(owner.status, 200, "{}", owner.text);
}

#[tokio::test]
async fn only_failed_sign_ins_count_per_email_and_client() {
    let app = TestApp::builder()
        .env("TRUSTED_PROXIES", "127.0.0.1/32")
        .env("RATE_LIMIT_AUTH", "100/minute")
        .env("RATE_LIMIT_LOGIN_FAILURES", "2/minute")
        .spawn()
        .await;
    app.register("busy@example.com", PASSWORD).await;
    for _ in 0..4 {
        let res = app.client.send(login_with(&app, "203.0.113.9", "busy@example.com", PASSWORD)).await;
        assert_eq!(res.status, 200, "{}", res.text);
    }
    for _ in 0..2 {
        assert_eq!(app.client.send(login_from(&app, "203.0.113.9", "busy@example.com")).await.status, 401);
    }
    let res = app.client.send(login_with(&app, "203.0.113.9", "busy@example.com", PASSWORD)).await;
    assert_eq!(res.status, 429, "two failures spend this client's budget for the account");
    let elsewhere = app.client.send(login_with(&app, "203.0.113.10", "busy@example.com", PASSWORD)).await;
    assert_eq!(elsewhere.status, 200);
}

#[tokio::test]
async fn a_distributed_guess_meets_the_per_email_ceiling() {
    let app = TestApp::builder()
        .env("TRUSTED_PROXIES", "127.0.0.1/32")
        .env("RATE_LIMIT_LOGIN_CEILING", "5/hour")
        .spawn()
        .await;
    app.register("target@example.com", PASSWORD).await;
    for i in 0..5 {
        let res = app.client.send(login_from(&app, &format!("198.51.100.{i}"), "Target@Example.com")).await;
        assert_eq!(res.status, 401);
    }
    let res = app.client.send(login_from(&app, "198.51.100.99", "target@example.com")).await;
    assert_eq!(res.status, 429, "{}", res.text);
    let owner = app.client.send(login_with(&app, "198.51.100.100", "target@example.com", PASSWORD)).await;
    assert_eq!(owner.status, 429, "at the ceiling every client waits");
    let other = app.client.send(login_with(&app, "198.51.100.100", "other@example.com", PASSWORD)).await;
    assert_eq!(other.status, 401, "other accounts are not affected");
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
