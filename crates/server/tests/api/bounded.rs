//! What an outsider sends cannot grow metric labels without bound, and costs its client IP
//! budget even when it is refused (unknown paths, bad tokens).

use omnistack_testkit::TestApp;
use reqwest::Method;

#[tokio::test]
async fn made_up_methods_are_counted_under_one_label() {
    let app = TestApp::spawn().await;
    let made_up: Vec<String> = (0..20).map(|n| format!("PROBE{n}{}", uuid::Uuid::new_v4().simple())).collect();
    for method in &made_up {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for path in ["/api/v1/public/health", "/no/such/path"] {
            let res = app.client.send(app.client.request(method.clone(), path)).await;
            assert!(res.status == 405 || res.status == 404, "{} {}", res.status, res.text);
        }
    }
    let scrape = app.client.get("/metrics").await.text;
    for method in &made_up {
        assert!(!scrape.contains(method.as_str()), "{method} became a label");
    }
    assert!(
        scrape.lines().any(|l| l.starts_with("http_requests_total{") && l.contains("method=\"OTHER\"")),
        "no OTHER series"
    );
    assert!(scrape.lines().any(|l| l.starts_with("http_requests_total{") && l.contains("route=\"unmatched\"")));
}

#[tokio::test]
async fn unknown_paths_are_limited_per_client_ip() {
    let app = TestApp::builder().env("RATE_LIMIT_PUBLIC", "3/minute").spawn().await;
    for n in 0..3 {
        let res = app.client.get(&format!("/wp-admin/{n}.php")).await;
        assert_eq!(res.status, 404, "{}", res.text);
        assert_eq!(res.header("x-ratelimit-remaining"), Some((2 - n).to_string().as_str()));
    }
    let res = app.client.get("/wp-admin/again.php").await;
    assert_eq!(res.status, 429, "{}", res.text);
    assert_eq!(res.error_code(), "RATE_LIMIT_EXCEEDED");
    assert!(res.header("retry-after").is_some());
}

#[tokio::test]
async fn bad_tokens_are_limited_per_client_ip() {
    let app = TestApp::builder().env("RATE_LIMIT_PUBLIC", "3/minute").spawn().await;
    let guessing = app.client.with_token("not-a-token");
    for _ in 0..3 {
        assert_eq!(guessing.get("/api/v1/app/users/me").await.status, 401);
    }
    let res = guessing.get("/api/v2/app/projects").await;
    assert_eq!(res.status, 429, "{}", res.text);
    assert_eq!(res.error_code(), "RATE_LIMIT_EXCEEDED");
    // No token at all is refused the same way, from the same budget.
    assert_eq!(app.client.get("/api/v1/admin/ws/broadcast").await.status, 429);
}

#[tokio::test]
async fn a_valid_token_is_not_charged_to_the_ip_budget() {
    let app = TestApp::builder().env("RATE_LIMIT_PUBLIC", "2/minute").spawn().await;
    let (client, _) = app.signed_in_client().await;
    for _ in 0..5 {
        assert_eq!(client.get("/api/v1/app/users/me").await.status, 200);
    }
}

#[tokio::test]
async fn a_user_calling_admin_routes_spends_their_own_budget() {
    let app = TestApp::builder().env("RATE_LIMIT_APP", "3/minute").spawn().await;
    let (client, _) = app.signed_in_client().await;
    for _ in 0..3 {
        let res = client.post_json("/api/v1/admin/ws/broadcast", &serde_json::json!({})).await;
        assert_eq!(res.status, 403, "{}", res.text);
    }
    let res = client.post_json("/api/v1/admin/ws/broadcast", &serde_json::json!({})).await;
    assert_eq!(res.status, 429, "{}", res.text);
}
