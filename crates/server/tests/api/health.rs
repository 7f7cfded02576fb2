use omnistack_testkit::{TestApp, redis_url};
use serde_json::Value;

/// The body itself: v2 envelopes it in `data`.
fn unwrapped(version: &str, body: Value) -> Value {
    if version == "v2" { body["data"].clone() } else { body }
}

#[tokio::test]
async fn liveness_reports_healthy_with_version_and_utc_timestamp() {
    let app = TestApp::spawn().await;
    for version in ["v1", "v2"] {
        let res = app.client.get(&format!("/api/{version}/public/health")).await;
        assert_eq!(res.status, 200);
        let body = unwrapped(version, res.json());
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        let timestamp = body["timestamp"].as_str().unwrap();
        assert!(timestamp.ends_with('Z'), "{timestamp}");
        assert!(chrono::DateTime::parse_from_rfc3339(timestamp).is_ok());
    }
}

#[tokio::test]
async fn readiness_is_healthy_when_every_component_answers() {
    let app = TestApp::spawn().await;
    for version in ["v1", "v2"] {
        let res = app.client.get(&format!("/api/{version}/public/health/ready")).await;
        assert_eq!(res.status, 200, "{}", res.text);
        let body = unwrapped(version, res.json());
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["components"]["database"]["status"], "healthy");
        assert!(body["components"]["database"]["latency_ms"].is_number());
        let redis = if redis_url().is_some() { "healthy" } else { "not_configured" };
        assert_eq!(body["components"]["redis"]["status"], redis);
    }
}

#[tokio::test]
async fn readiness_is_503_when_the_database_is_unreachable() {
    let app = TestApp::spawn().await;
    app.state.db.close().await;
    let res = app.client.get("/api/v1/public/health/ready").await;
    assert_eq!(res.status, 503);
    let body = res.json();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["components"]["database"]["status"], "unhealthy");
    assert_eq!(body["components"]["database"]["error"], "database unreachable");
    // Liveness does not depend on the database.
    assert_eq!(app.client.get("/api/v1/public/health").await.status, 200);
}

#[tokio::test]
async fn readiness_is_degraded_but_200_when_redis_is_unreachable() {
    let app = TestApp::builder().env("REDIS_URL", "redis://127.0.0.1:1").spawn().await;
    let res = app.client.get("/api/v1/public/health/ready").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["components"]["database"]["status"], "healthy");
    assert_eq!(body["components"]["redis"]["status"], "unhealthy");
    assert_eq!(body["components"]["redis"]["error"], "redis unreachable");
}
