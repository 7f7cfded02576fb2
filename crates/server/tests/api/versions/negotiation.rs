//! Which version answers: the path names it; unversioned paths follow `Accept-Version` /
//! `X-API-Version` or `API_DEFAULT_VERSION`; every `/api/…` response says which answered.

use omnistack_testkit::{TestApp, TestClient, TestResponse};
use reqwest::Method;
use serde_json::json;

use super::{assert_version_headers, keys};

async fn get_with(client: &TestClient, path: &str, headers: &[(&str, &str)]) -> TestResponse {
    let request =
        headers.iter().fold(client.request(Method::GET, path), |req, (name, value)| req.header(*name, *value));
    client.send(request).await
}

/// v1's liveness body is flat; v2's is enveloped.
fn answered_by(res: &TestResponse) -> &'static str {
    assert_eq!(res.status, 200, "{}", res.text);
    if res.json()["data"].is_object() { "v2" } else { "v1" }
}

#[tokio::test]
async fn every_api_response_names_its_version_and_the_latest() {
    let app = TestApp::spawn().await;
    for (path, status, version) in [
        ("/api/v1/public/health", 200, "v1"),
        ("/api/v2/public/health", 200, "v2"),
        ("/api/v1/app/users/me", 401, "v1"),
        ("/api/v2/app/projects", 401, "v2"),
        ("/api/v1/no/such/route", 404, "v1"),
        ("/api/v2/no/such/route", 404, "v2"),
        ("/api/no/such/route", 404, "v2"),
        ("/api/v9/public/health", 404, "v2"),
        ("/api/v1/openapi.json", 200, "v1"),
    ] {
        let res = app.client.get(path).await;
        assert_eq!(res.status, status, "{path}: {}", res.text);
        assert_version_headers(&res, version);
    }
    let res = app.client.send(app.client.request(Method::DELETE, "/api/v1/public/health")).await;
    assert_eq!(res.status, 405);
    assert_version_headers(&res, "v1");
    for path in ["/docs/", "/nope"] {
        let res = app.client.get(path).await;
        assert_eq!((res.header("x-api-version"), res.header("x-api-latest-version")), (None, None), "{path}");
    }
}

#[tokio::test]
async fn browsers_may_read_the_version_headers() {
    let app = TestApp::spawn().await;
    let res = get_with(&app.client, "/api/v1/public/health", &[("origin", "http://allowed.example")]).await;
    let exposed = res.header("access-control-expose-headers").unwrap().to_ascii_lowercase();
    for name in ["x-api-version", "x-api-latest-version", "deprecation", "sunset", "link"] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
}

#[tokio::test]
async fn unversioned_paths_follow_either_header_in_any_form() {
    let app = TestApp::spawn().await;
    for (header, value, version) in [
        ("accept-version", "1", "v1"),
        ("accept-version", "v1", "v1"),
        ("accept-version", "2", "v2"),
        ("accept-version", "v2", "v2"),
        ("x-api-version", "1", "v1"),
        ("x-api-version", "v1", "v1"),
        ("x-api-version", "2", "v2"),
        ("x-api-version", "V2", "v2"),
    ] {
        let res = get_with(&app.client, "/api/public/health", &[(header, value)]).await;
        assert_eq!(answered_by(&res), version, "{header}: {value}");
        assert_version_headers(&res, version);
    }
    let both = [("accept-version", "1"), ("x-api-version", "2")];
    assert_eq!(answered_by(&get_with(&app.client, "/api/public/health", &both).await), "v1", "Accept-Version wins");
    let named = get_with(&app.client, "/api/v2/public/health", &[("accept-version", "1")]).await;
    assert_eq!(answered_by(&named), "v2", "a versioned path wins over the headers");
}

#[tokio::test]
async fn without_a_header_the_default_version_answers() {
    let app = TestApp::spawn().await;
    let res = app.client.get("/api/public/health").await;
    assert_eq!(answered_by(&res), "v2");
    assert_version_headers(&res, "v2");

    let app = TestApp::builder().env("API_DEFAULT_VERSION", "v1").spawn().await;
    let res = app.client.get("/api/public/health").await;
    assert_eq!(answered_by(&res), "v1");
    assert_version_headers(&res, "v1");
}

#[tokio::test]
async fn unversioned_routing_keeps_the_query_body_and_authentication() {
    let app = TestApp::spawn().await;
    let register = app.client.request(Method::POST, "/api/public/auth/register").header("accept-version", "1");
    let res = app
        .client
        .send(register.json(&json!({"email": "plain@example.com", "password": "correct-horse-battery"})))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let client = app.client.with_token(res.json()["access_token"].as_str().unwrap());
    for name in ["a", "b"] {
        let create = client.request(Method::POST, "/api/app/projects").header("x-api-version", "2");
        let res = client.send(create.json(&json!({"name": name}))).await;
        assert_eq!(res.status, 201, "{}", res.text);
        assert_eq!(res.json()["data"]["name"], name);
    }
    let page = get_with(&client, "/api/app/projects?limit=1", &[("accept-version", "1")]).await.json();
    assert_eq!(
        (page["limit"].as_i64(), page["total"].as_i64(), page["items"][0]["name"].as_str()),
        (Some(1), Some(2), Some("b"))
    );
    let me = client.get("/api/app/users/me").await;
    assert_eq!(me.json()["data"]["is_premium"], false, "{}", me.text);
}

#[tokio::test]
async fn an_unknown_version_is_400_listing_the_supported_ones_through_every_layer() {
    let app = TestApp::spawn().await;
    for headers in [
        vec![("accept-version", "3")],
        vec![("x-api-version", "v7")],
        vec![("accept-version", "latest"), ("x-api-version", "2")],
    ] {
        let mut with_origin = headers.clone();
        with_origin.push(("origin", "http://allowed.example"));
        let res = get_with(&app.client, "/api/app/users/me", &with_origin).await;
        assert_eq!(res.status, 400, "{headers:?}: {}", res.text);
        let body = res.json();
        assert_eq!(keys(&body), ["error"]);
        assert_eq!(body["error"]["code"], "BAD_REQUEST");
        assert!(body["error"]["message"].as_str().unwrap().contains("supported versions: v1, v2"), "{body}");
        assert_eq!(body["error"]["details"]["supported_versions"], json!(["v1", "v2"]));
        assert_eq!(body["error"]["details"]["requested"], headers[0].1);
        assert_eq!(body["error"]["request_id"].as_str(), res.header("x-request-id"));
        assert_eq!(res.header("access-control-allow-origin"), Some("http://allowed.example"));
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        assert_version_headers(&res, "v2");
    }
}
