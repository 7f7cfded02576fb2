//! Rate limiting end to end: headers, the 429, Redis and in-process counting, the fallback
//! when Redis is down, trusted proxies and the exempt paths.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use omnistack::rate_limit::{LimitClass, by_ip};
use omnistack::state::AppState;
use omnistack_testkit::{TestApp, TestResponse, redis_url};
use reqwest::Method;

/// `GET /probe/limited` and a look-alike health probe limited as `public`, `GET /probe/auth`
/// limited as `auth`, all per client IP.
fn limited_routes() -> Router<AppState> {
    let public = Router::new()
        .route("/probe/limited", get(|| async { "ok" }))
        .route("/api/v9/public/health", get(|| async { "ok" }))
        .route_layer(by_ip(LimitClass::Public));
    let auth = Router::new().route("/probe/auth", get(|| async { "ok" })).route_layer(by_ip(LimitClass::Auth));
    public.merge(auth)
}

async fn spawn(vars: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder().routes(limited_routes());
    for (name, value) in vars {
        builder = builder.env(name, value);
    }
    builder.spawn().await
}

async fn get_from(app: &TestApp, path: &str, forwarded_for: Option<&str>) -> TestResponse {
    let mut request = app.client.request(Method::GET, path);
    if let Some(hops) = forwarded_for {
        request = request.header("x-forwarded-for", hops);
    }
    app.client.send(request).await
}

fn number(res: &TestResponse, header: &str) -> u64 {
    res.header(header).unwrap_or_else(|| panic!("{header} on a {}", res.status)).parse().unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn assert_rate_limited(res: &TestResponse) {
    assert_eq!(res.status, 429, "{}", res.text);
    assert_eq!(res.error_code(), "RATE_LIMIT_EXCEEDED");
    let retry_after = res.json()["error"]["details"]["retry_after"].as_u64().expect("details.retry_after");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(number(res, "retry-after"), retry_after);
    assert_eq!(number(res, "x-ratelimit-remaining"), 0);
}

#[tokio::test]
async fn limited_responses_carry_the_budget_counting_down() {
    let app = spawn(&[("RATE_LIMIT_PUBLIC", "5/minute")]).await;
    let before = unix_now();
    for remaining in [4, 3, 2] {
        let res = app.client.get("/probe/limited").await;
        assert_eq!(res.status, 200);
        assert_eq!(number(&res, "x-ratelimit-limit"), 5);
        assert_eq!(number(&res, "x-ratelimit-remaining"), remaining);
        let reset = number(&res, "x-ratelimit-reset");
        assert!((before..=unix_now() + 61).contains(&reset), "reset {reset} is within the window");
        assert_eq!(res.header("retry-after"), None);
    }
}

#[tokio::test]
async fn over_the_limit_is_429_in_the_one_error_shape_with_cors_and_request_id() {
    let app = spawn(&[("RATE_LIMIT_PUBLIC", "2/minute")]).await;
    for _ in 0..2 {
        assert_eq!(app.client.get("/probe/limited").await.status, 200);
    }
    let request = app
        .client
        .request(Method::GET, "/probe/limited")
        .header("origin", "http://allowed.example")
        .header("x-request-id", "rate-limited-1");
    let res = app.client.send(request).await;
    assert_rate_limited(&res);
    assert_eq!(number(&res, "x-ratelimit-limit"), 2);
    assert!(number(&res, "x-ratelimit-reset") >= unix_now());
    assert_eq!(res.header("access-control-allow-origin"), Some("http://allowed.example"));
    assert!(res.header("access-control-expose-headers").unwrap().contains("retry-after"));
    assert_eq!(res.header("x-request-id"), Some("rate-limited-1"));
    assert_eq!(res.json()["error"]["request_id"], "rate-limited-1");
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(res.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn in_process_counting_limits_without_redis() {
    let app = spawn(&[("REDIS_URL", ""), ("RATE_LIMIT_PUBLIC", "3/minute")]).await;
    assert!(app.state.redis.is_none());
    for remaining in [2, 1, 0] {
        assert_eq!(number(&app.client.get("/probe/limited").await, "x-ratelimit-remaining"), remaining);
    }
    assert_rate_limited(&app.client.get("/probe/limited").await);
}

async fn redis_value(key: &str) -> (Option<u64>, i64) {
    let url = redis_url().expect("TEST_REDIS_URL");
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let count: Option<u64> = redis::cmd("GET").arg(key).query_async(&mut conn).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap();
    (count, ttl)
}

#[tokio::test]
async fn redis_counts_under_the_key_prefix_with_the_window_as_expiry() {
    if redis_url().is_none() {
        eprintln!("skipped: set TEST_REDIS_URL to run");
        return;
    }
    let prefix = format!("rl-test-{}:", uuid::Uuid::new_v4().simple());
    let app = spawn(&[("REDIS_KEY_PREFIX", &prefix), ("RATE_LIMIT_PUBLIC", "3/minute")]).await;
    for _ in 0..2 {
        assert_eq!(app.client.get("/probe/limited").await.status, 200);
    }
    let (count, ttl) = redis_value(&format!("{prefix}rl:public:127.0.0.1")).await;
    assert_eq!(count, Some(2));
    assert!((1..=60_000).contains(&ttl), "PTTL {ttl}");
    app.client.get("/probe/limited").await;
    assert_rate_limited(&app.client.get("/probe/limited").await);
}

#[tokio::test]
async fn instances_sharing_a_key_prefix_share_the_limit() {
    if redis_url().is_none() {
        eprintln!("skipped: set TEST_REDIS_URL to run");
        return;
    }
    let prefix = format!("rl-test-{}:", uuid::Uuid::new_v4().simple());
    let vars = [("REDIS_KEY_PREFIX", prefix.as_str()), ("RATE_LIMIT_PUBLIC", "3/minute")];
    let (first, second) = (spawn(&vars).await, spawn(&vars).await);
    assert_eq!(number(&first.client.get("/probe/limited").await, "x-ratelimit-remaining"), 2);
    assert_eq!(number(&second.client.get("/probe/limited").await, "x-ratelimit-remaining"), 1);
    assert_eq!(number(&first.client.get("/probe/limited").await, "x-ratelimit-remaining"), 0);
    assert_rate_limited(&second.client.get("/probe/limited").await);
    // Another prefix is another set of buckets.
    let other = spawn(&[("RATE_LIMIT_PUBLIC", "3/minute")]).await;
    assert_eq!(other.client.get("/probe/limited").await.status, 200);
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_to_in_process_limits_and_never_answers_5xx() {
    let app = spawn(&[("REDIS_URL", "redis://127.0.0.1:1"), ("RATE_LIMIT_PUBLIC", "3/minute")]).await;
    assert!(app.state.redis.is_some());
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = app.client.get("/probe/limited").await;
        assert!(res.headers.contains_key("x-ratelimit-remaining"), "{}", res.status);
        statuses.push(res.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert_rate_limited(&app.client.get("/probe/limited").await);
}

#[tokio::test]
async fn a_redis_that_never_answers_times_out_into_in_process_limits() {
    // Accepts connections and holds them open without ever replying.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let app = spawn(&[("REDIS_URL", &url), ("RATE_LIMIT_PUBLIC", "3/minute")]).await;
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(app.client.get("/probe/limited").await.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429, 429, 429]);
    // One bounded wait, then Redis is left alone for a while instead of delaying every request.
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited() {
    let app = spawn(&[("TRUSTED_PROXIES", "127.0.0.1/32, ::1"), ("RATE_LIMIT_PUBLIC", "2/minute")]).await;
    for _ in 0..2 {
        assert_eq!(get_from(&app, "/probe/limited", Some("203.0.113.7")).await.status, 200);
    }
    assert_rate_limited(&get_from(&app, "/probe/limited", Some("203.0.113.7")).await);
    // A forged hop on the left does not help: the proxy's own entry is the right-most.
    assert_rate_limited(&get_from(&app, "/probe/limited", Some("198.51.100.1, 203.0.113.7")).await);
    // Another client behind the same proxy has its own budget.
    assert_eq!(get_from(&app, "/probe/limited", Some("203.0.113.8")).await.status, 200);
    // The proxy's own requests are its own.
    assert_eq!(get_from(&app, "/probe/limited", None).await.status, 200);
    if redis_url().is_some() {
        let prefix = &app.state.config.redis_key_prefix;
        assert_eq!(redis_value(&format!("{prefix}rl:public:203.0.113.7")).await.0, Some(4));
    }
}

#[tokio::test]
async fn an_untrusted_peer_cannot_choose_its_address_with_x_forwarded_for() {
    let app = spawn(&[("RATE_LIMIT_PUBLIC", "2/minute")]).await;
    for hop in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(get_from(&app, "/probe/limited", Some(hop)).await.status, 200);
    }
    assert_rate_limited(&get_from(&app, "/probe/limited", Some("203.0.113.3")).await);
}

#[tokio::test]
async fn classes_have_their_own_budgets_and_services_check_other_keys() {
    let app = spawn(&[("RATE_LIMIT_PUBLIC", "1/minute"), ("RATE_LIMIT_AUTH", "2/minute")]).await;
    assert_eq!(app.client.get("/probe/limited").await.status, 200);
    assert_rate_limited(&app.client.get("/probe/limited").await);
    let auth = app.client.get("/probe/auth").await;
    assert_eq!((auth.status.as_u16(), number(&auth, "x-ratelimit-limit")), (200, 2));
    // The auth service's per-email check: its own bucket, apart from the per-IP one.
    let limiter = &app.state.limiter;
    assert!(limiter.check(LimitClass::Auth, "a@example.com").await.allowed);
    assert!(limiter.check(LimitClass::Auth, "a@example.com").await.allowed);
    let denied = limiter.check(LimitClass::Auth, "a@example.com").await;
    assert!(!denied.allowed && denied.retry_after >= 1);
    assert_eq!(number(&app.client.get("/probe/auth").await, "x-ratelimit-remaining"), 0);
}

#[tokio::test]
async fn disabled_limiting_adds_no_headers_and_never_denies() {
    let app = spawn(&[("RATE_LIMIT_ENABLED", "false"), ("RATE_LIMIT_PUBLIC", "1/minute")]).await;
    for _ in 0..3 {
        let res = app.client.get("/probe/limited").await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("x-ratelimit-limit"), None);
    }
}

#[tokio::test]
async fn health_and_docs_are_never_limited() {
    let app = spawn(&[("RATE_LIMIT_PUBLIC", "1/minute")]).await;
    for _ in 0..3 {
        // Even when a limited group holds a health path, it stays exempt.
        let res = app.client.get("/api/v9/public/health").await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("x-ratelimit-limit"), None);
        // `/api/public/health` is rewritten to a version first; the exemption sees that path.
        for path in [
            "/api/v1/public/health",
            "/api/public/health",
            "/api/v2/public/health/ready",
            "/api/v1/openapi.json",
            "/docs/",
        ] {
            let res = app.client.get(path).await;
            assert_eq!(res.status, 200, "{path}");
            assert_eq!(res.header("x-ratelimit-limit"), None, "{path}");
        }
    }
    assert_eq!(app.client.get("/probe/limited").await.status, 200, "the exempt requests spent nothing");
}
