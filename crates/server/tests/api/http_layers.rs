//! Request ids, security headers, CORS and compression, on successes and errors alike.

use omnistack_testkit::{TestApp, TestResponse};
use reqwest::Method;

const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
];

fn assert_security_headers(res: &TestResponse) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(res.header(name), Some(value), "{name} on a {}", res.status);
    }
    let permissions = res.header("permissions-policy").expect("permissions-policy");
    for feature in ["camera=()", "microphone=()", "payment=()", "usb=()", "accelerometer=()", "gyroscope=()"] {
        assert!(permissions.contains(feature), "{feature} in {permissions}");
    }
}

#[tokio::test]
async fn a_sane_incoming_request_id_is_echoed() {
    let app = TestApp::spawn().await;
    let req = app.client.request(Method::GET, "/api/v1/public/health").header("x-request-id", "abc.DEF_123-x");
    assert_eq!(app.client.send(req).await.header("x-request-id"), Some("abc.DEF_123-x"));
}

#[tokio::test]
async fn an_unsafe_or_long_request_id_is_replaced() {
    let app = TestApp::spawn().await;
    for bad in ["has space", "semi;colon", &"a".repeat(129), ""] {
        let req = app.client.request(Method::GET, "/api/v1/public/health").header("x-request-id", bad);
        let id = app.client.send(req).await.header("x-request-id").unwrap().to_owned();
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(&id).is_ok_and(|u| u.get_version_num() == 7), "{id}");
    }
    let long_ok = "b".repeat(128);
    let req = app.client.request(Method::GET, "/api/v1/public/health").header("x-request-id", &long_ok);
    assert_eq!(app.client.send(req).await.header("x-request-id"), Some(long_ok.as_str()));
}

#[tokio::test]
async fn every_response_gets_a_fresh_request_id_when_none_is_sent() {
    let app = TestApp::spawn().await;
    let a = app.client.get("/api/v1/public/health").await;
    let b = app.client.get("/nope").await;
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
    assert_eq!(b.json()["error"]["request_id"].as_str(), b.header("x-request-id"));
}

#[tokio::test]
async fn security_headers_are_on_successes_and_errors_without_hsts_outside_production() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/public/health", "/nope"] {
        let res = app.client.get(path).await;
        assert_security_headers(&res);
        assert_eq!(res.header("strict-transport-security"), None);
    }
    let res = app.client.send(app.client.request(Method::PUT, "/api/v1/public/health")).await;
    assert_eq!(res.status, 405);
    assert_security_headers(&res);
}

#[tokio::test]
async fn production_adds_hsts() {
    let app = TestApp::builder()
        .env("ENVIRONMENT", "production")
        .env("SECRET_KEY", "0123456789abcdef0123456789abcdef-production")
        .env("METRICS_TOKEN", "scrape-secret")
        .spawn()
        .await;
    for path in ["/api/v1/public/health", "/nope"] {
        let res = app.client.get(path).await;
        assert_security_headers(&res);
        assert!(res.header("strict-transport-security").unwrap().starts_with("max-age="));
    }
}

#[tokio::test]
async fn a_request_without_origin_gets_vary_and_no_cors_headers() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/public/health", "/nope"] {
        let res = app.client.get(path).await;
        assert_eq!(
            res.header("vary"),
            Some("origin, access-control-request-method, access-control-request-headers"),
            "{path}"
        );
        assert!(res.headers.keys().all(|name| !name.as_str().starts_with("access-control-")), "{path}");
    }
    // A preflight is answered as one, whatever it carries.
    let res = app.client.send(app.client.request(Method::OPTIONS, "/api/v1/app/users/me")).await;
    assert!(res.header("access-control-allow-methods").is_some_and(|m| m.contains("PATCH")));
}

#[tokio::test]
async fn cors_headers_are_on_successes_and_errors_for_allowed_origins() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/public/health", "/nope"] {
        let req = app.client.request(Method::GET, path).header("origin", "http://allowed.example");
        let res = app.client.send(req).await;
        assert_eq!(res.header("access-control-allow-origin"), Some("http://allowed.example"), "{path}");
        let exposed = res.header("access-control-expose-headers").unwrap();
        for name in [
            "x-request-id",
            "x-ratelimit-limit",
            "retry-after",
            "x-api-version",
            "deprecation",
            "sunset",
            "link",
            "x-impersonated-by",
        ] {
            assert!(exposed.contains(name), "{name} exposed");
        }
    }
}

#[tokio::test]
async fn cors_ignores_origins_not_configured() {
    let app = TestApp::spawn().await;
    let req = app.client.request(Method::GET, "/api/v1/public/health").header("origin", "http://evil.example");
    assert_eq!(app.client.send(req).await.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn cors_preflight_is_answered() {
    let app = TestApp::spawn().await;
    let req = app
        .client
        .request(Method::OPTIONS, "/api/v1/public/health")
        .header("origin", "http://allowed.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type");
    let res = app.client.send(req).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("access-control-allow-origin"), Some("http://allowed.example"));
    assert!(res.header("access-control-allow-methods").unwrap().contains("POST"));
    assert!(res.header("access-control-allow-headers").unwrap().contains("authorization"));
}

#[tokio::test]
async fn wildcard_cors_allows_any_origin() {
    let app = TestApp::builder().env("BACKEND_CORS_ORIGINS", "*").spawn().await;
    let req = app.client.request(Method::GET, "/nope").header("origin", "http://anything.example");
    let res = app.client.send(req).await;
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn responses_are_gzip_compressed_when_asked() {
    let app = TestApp::spawn().await;
    let req = app.client.request(Method::GET, "/api/v1/openapi.json").header("accept-encoding", "gzip");
    let res = app.client.send(req).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-encoding"), Some("gzip"));
}

#[tokio::test]
async fn large_bodies_go_out_as_they_are_without_accept_encoding_or_with_identity() {
    let app = TestApp::spawn().await;
    for accept in [None, Some("identity")] {
        let mut req = app.client.request(Method::GET, "/api/v1/openapi.json");
        if let Some(accept) = accept {
            req = req.header("accept-encoding", accept);
        }
        let res = app.client.send(req).await;
        assert_eq!(res.status, 200, "{accept:?}");
        assert_eq!(res.header("content-encoding"), None, "{accept:?}");
        assert!(res.text.len() > 1024 && res.json()["openapi"].is_string(), "{accept:?}");
    }
}

#[tokio::test]
async fn small_bodies_are_sent_uncompressed_even_when_gzip_is_accepted() {
    let app = TestApp::spawn().await;
    let req = app.client.request(Method::GET, "/api/v1/public/health").header("accept-encoding", "gzip");
    let res = app.client.send(req).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.json()["status"], "healthy");
}
