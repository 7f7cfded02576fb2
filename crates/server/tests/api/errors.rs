//! Every error kind answers in the one shape, with the request id.

use omnistack_testkit::{TestApp, TestResponse};
use reqwest::Method;
use serde_json::json;

use crate::probes;

fn assert_error_shape(res: &TestResponse, status: u16, code: &str) {
    assert_eq!(res.status, status, "{}", res.text);
    assert_eq!(res.header("content-type"), Some("application/json"));
    let body = res.json();
    let error = &body["error"];
    assert_eq!(error["code"], code, "{}", res.text);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error["details"].is_object());
    assert_eq!(error["request_id"].as_str(), res.header("x-request-id"));
    assert_eq!(body.as_object().unwrap().len(), 1, "only the error key");
}

async fn probe_app() -> TestApp {
    TestApp::builder()
        .env("MAX_BODY_BYTES", "2048")
        .env("REQUEST_TIMEOUT_SECONDS", "1")
        .routes(probes::routes())
        .spawn()
        .await
}

#[tokio::test]
async fn unknown_route_is_404_not_found() {
    let app = TestApp::spawn().await;
    let res = app.client.get("/api/v1/does-not-exist").await;
    assert_error_shape(&res, 404, "NOT_FOUND");
}

#[tokio::test]
async fn wrong_method_is_405_with_allow_header() {
    let app = TestApp::spawn().await;
    let res = app.client.send(app.client.request(Method::DELETE, "/api/v1/public/health")).await;
    assert_error_shape(&res, 405, "METHOD_NOT_ALLOWED");
    assert!(res.header("allow").unwrap().contains("GET"));
}

#[tokio::test]
async fn malformed_json_is_400_bad_request() {
    let app = probe_app().await;
    let req =
        app.client.request(Method::POST, "/probe/echo").header("content-type", "application/json").body("{\"name\": ");
    assert_error_shape(&app.client.send(req).await, 400, "BAD_REQUEST");
}

#[tokio::test]
async fn wrong_field_type_is_422_naming_the_field() {
    let app = probe_app().await;
    let res = app.client.post_json("/probe/echo", &json!({"name": 5, "count": 1})).await;
    assert_error_shape(&res, 422, "VALIDATION_ERROR");
    let fields = &res.json()["error"]["details"]["fields"];
    assert_eq!(fields[0]["field"], "name");
}

#[tokio::test]
async fn missing_field_is_422_field_required() {
    let app = probe_app().await;
    let res = app.client.post_json("/probe/echo", &json!({"name": "x"})).await;
    assert_error_shape(&res, 422, "VALIDATION_ERROR");
    assert_eq!(res.json()["error"]["details"]["fields"], json!([{"field": "count", "message": "field required"}]));
}

#[tokio::test]
async fn valid_json_passes_through() {
    let app = probe_app().await;
    let res = app.client.post_json("/probe/echo", &json!({"name": "x", "count": 2})).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), json!({"name": "x", "count": 2}));
}

#[tokio::test]
async fn missing_content_type_is_415() {
    let app = probe_app().await;
    let req = app.client.request(Method::POST, "/probe/echo").body("{\"name\":\"x\",\"count\":1}");
    assert_error_shape(&app.client.send(req).await, 415, "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn oversized_body_is_413_payload_too_large() {
    let app = probe_app().await;
    let res = app.client.post_json("/probe/echo", &json!({"name": "x".repeat(4096), "count": 1})).await;
    assert_error_shape(&res, 413, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn oversized_chunked_body_is_413_payload_too_large() {
    let app = probe_app().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..8).map(|_| Ok(vec![b' '; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let req = app.client.request(Method::POST, "/probe/echo").header("content-type", "application/json").body(body);
    assert_error_shape(&app.client.send(req).await, 413, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn panic_is_500_internal_error_without_the_panic_message() {
    let app = probe_app().await;
    let res = app.client.get("/probe/panic").await;
    assert_error_shape(&res, 500, "INTERNAL_ERROR");
    assert!(!res.text.contains("secret detail"));
    // The server keeps serving.
    assert_eq!(app.client.get("/api/v1/public/health").await.status, 200);
    assert_counted(&app, "/probe/panic", 500).await;
}

/// The request metrics name the route that failed.
async fn assert_counted(app: &TestApp, route: &str, status: u16) {
    let scrape = app.client.get("/metrics").await.text;
    let series = format!(r#"http_requests_total{{method="GET",route="{route}",status="{status}"}}"#);
    assert!(scrape.lines().any(|line| line.starts_with(&series)), "no {series} in:\n{scrape}");
}

#[tokio::test]
async fn slow_request_is_504_gateway_timeout() {
    let app = probe_app().await;
    let res = app.client.get("/probe/slow?ms=3000").await;
    assert_error_shape(&res, 504, "GATEWAY_TIMEOUT");
    assert_counted(&app, "/probe/slow", 504).await;
}

#[tokio::test]
async fn bad_query_parameter_is_422_naming_the_parameter() {
    let app = probe_app().await;
    let res = app.client.get("/probe/slow?ms=soon").await;
    assert_error_shape(&res, 422, "VALIDATION_ERROR");
    assert_eq!(res.json()["error"]["details"]["fields"][0]["field"], "ms");
}
