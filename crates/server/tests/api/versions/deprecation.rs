//! Deprecation is configuration: headers (RFC 9745, RFC 8594) on deprecated versions and
//! routes, 410 `API_VERSION_SUNSET` after the sunset, `deprecated: true` in the OpenAPI documents.

use omnistack_testkit::{TestApp, TestResponse};
use reqwest::Method;
use serde_json::{Value, json};

use super::{assert_version_headers, keys};

/// 2026-12-01T00:00:00Z.
const DEPRECATED_AT: &str = "@1796083200";
/// 2099-06-30, far enough ahead that the tests never reach it.
const SUNSET_AHEAD: &str = "Tue, 30 Jun 2099 00:00:00 GMT";

fn assert_not_deprecated(res: &TestResponse) {
    for name in ["deprecation", "sunset", "link"] {
        assert_eq!(res.header(name), None, "{name} on {}", res.text);
    }
}

async fn signed_in(app: &TestApp) -> omnistack_testkit::TestClient {
    app.signed_in_client().await.0
}

#[tokio::test]
async fn a_deprecated_version_announces_its_dates_and_successor_on_every_response() {
    let app =
        TestApp::builder().env("API_DEPRECATIONS", "v1=2026-12-01").env("API_SUNSETS", "v1=2099-06-30").spawn().await;
    let client = signed_in(&app).await;
    let project = client.post_json("/api/v1/app/projects", &json!({"name": "Old"})).await;
    assert_eq!(project.status, 201);
    let id = project.json()["id"].as_str().unwrap().to_owned();
    for (path, status) in [
        (format!("/api/v1/app/projects/{id}"), 200),
        ("/api/v1/app/projects?limit=5".to_owned(), 200),
        ("/api/v1/public/health".to_owned(), 200),
        ("/api/v1/app/projects/not-a-uuid".to_owned(), 404),
    ] {
        let res = client.get(&path).await;
        assert_eq!(res.status, status, "{path}");
        assert_eq!(res.header("deprecation"), Some(DEPRECATED_AT), "{path}");
        assert_eq!(res.header("sunset"), Some(SUNSET_AHEAD), "{path}");
        let successor = path.split('?').next().unwrap().replace("/api/v1/", "/api/v2/");
        let link = format!("<{successor}>; rel=\"successor-version\", </docs>; rel=\"deprecation\"");
        assert_eq!(res.header("link"), Some(link.as_str()), "{path}");
        assert_version_headers(&res, "v1");
    }
    assert_eq!(client.get("/api/v1/app/users/me").await.header("deprecation"), Some(DEPRECATED_AT));
    assert_eq!(app.client.get("/api/v1/app/users/me").await.header("deprecation"), Some(DEPRECATED_AT), "on a 401 too");
    let unversioned =
        app.client.send(app.client.request(Method::GET, "/api/public/health").header("accept-version", "1")).await;
    assert_eq!(
        unversioned.header("link"),
        Some("</api/v2/public/health>; rel=\"successor-version\", </docs>; rel=\"deprecation\"")
    );
    assert_not_deprecated(&client.get(&format!("/api/v2/app/projects/{id}")).await);
    assert_not_deprecated(&app.client.get("/api/public/health").await);
}

#[tokio::test]
async fn a_single_route_can_be_deprecated_by_method_and_template() {
    let routes = "GET /api/v1/app/projects=2026-12-01, DELETE /api/v1/app/projects/{id}=2026-12-01, \
                  GET /api/v2/app/users/me=2026-12-01";
    let app = TestApp::builder().env("API_DEPRECATED_ROUTES", routes).spawn().await;
    let client = signed_in(&app).await;

    let list = client.get("/api/v1/app/projects?limit=3").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.header("deprecation"), Some(DEPRECATED_AT));
    assert_eq!(list.header("sunset"), None, "v1 has no sunset");
    assert_eq!(
        list.header("link"),
        Some("</api/v2/app/projects>; rel=\"successor-version\", </docs>; rel=\"deprecation\"")
    );

    let created = client.post_json("/api/v1/app/projects", &json!({"name": "Kept"})).await;
    assert_not_deprecated(&created);
    let path = format!("/api/v1/app/projects/{}", created.json()["id"].as_str().unwrap());
    assert_not_deprecated(&client.get(&path).await);
    assert_not_deprecated(&client.get("/api/v2/app/projects").await);
    let deleted = client.delete(&path).await;
    assert_eq!((deleted.status.as_u16(), deleted.header("deprecation")), (204, Some(DEPRECATED_AT)));

    let me = client.get("/api/v2/app/users/me").await;
    assert_eq!(me.header("deprecation"), Some(DEPRECATED_AT));
    assert_eq!(me.header("link"), Some("</docs>; rel=\"deprecation\""), "the latest version has no successor");
    assert_not_deprecated(&client.get("/api/v1/app/users/me").await);
}

#[tokio::test]
async fn after_its_sunset_a_version_answers_410_in_the_error_shape() {
    let app =
        TestApp::builder().env("API_DEPRECATIONS", "v1=2020-01-01").env("API_SUNSETS", "v1=2021-01-01").spawn().await;
    for path in ["/api/v1/public/health", "/api/v1/app/users/me"] {
        let res = app.client.get(path).await;
        assert_eq!(res.status, 410, "{path}: {}", res.text);
        let body = res.json();
        assert_eq!(keys(&body), ["error"]);
        assert_eq!(body["error"]["code"], "API_VERSION_SUNSET");
        let successor = path.replace("/api/v1/", "/api/v2/");
        assert_eq!(body["error"]["details"], json!({"version": "v1", "sunset": "2021-01-01", "successor": successor}));
        assert!(body["error"]["message"].as_str().unwrap().contains("2021-01-01"));
        assert_eq!(body["error"]["request_id"].as_str(), res.header("x-request-id"));
        assert_eq!(res.header("sunset"), Some("Fri, 01 Jan 2021 00:00:00 GMT"));
        assert_eq!(res.header("deprecation"), Some("@1577836800"));
        assert!(res.header("link").unwrap().starts_with(&format!("<{successor}>; rel=\"successor-version\"")));
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        assert_version_headers(&res, "v1");
    }
    let register = json!({"email": "late@example.com", "password": "correct-horse-battery"});
    assert_eq!(app.client.post_json("/api/v1/public/auth/register", &register).await.status, 410);
    assert_eq!(app.client.get("/api/v2/public/health").await.status, 200, "v2 is untouched");
}

#[tokio::test]
async fn with_enforcement_off_a_retired_version_keeps_answering() {
    let app = TestApp::builder()
        .env("API_DEPRECATIONS", "v1=2020-01-01")
        .env("API_SUNSETS", "v1=2021-01-01")
        .env("API_SUNSET_ENFORCED", "false")
        .spawn()
        .await;
    let res = app.client.get("/api/v1/public/health").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("sunset"), Some("Fri, 01 Jan 2021 00:00:00 GMT"));
    assert_eq!(res.header("deprecation"), Some("@1577836800"));
}

/// `(path, method)` of every operation marked `deprecated: true`.
fn deprecated_operations(doc: &Value) -> Vec<String> {
    let mut marked = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation["deprecated"] == json!(true) {
                marked.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    marked.sort();
    marked
}

#[tokio::test]
async fn openapi_documents_mark_what_the_configuration_deprecates() {
    let plain = TestApp::spawn().await;
    for version in ["v1", "v2"] {
        let doc = plain.client.get(&format!("/api/{version}/openapi.json")).await.json();
        assert!(deprecated_operations(&doc).is_empty(), "{version}");
    }

    let app = TestApp::builder()
        .env("API_DEPRECATIONS", "v1=2026-12-01")
        .env("API_DEPRECATED_ROUTES", "PATCH /api/v2/app/projects/{id}=2026-12-01")
        .spawn()
        .await;
    let v1 = app.client.get("/api/v1/openapi.json").await.json();
    let operations: usize = v1["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
    assert!(operations > 10);
    assert_eq!(deprecated_operations(&v1).len(), operations, "every v1 operation");
    let v2 = app.client.get("/api/v2/openapi.json").await.json();
    assert_eq!(deprecated_operations(&v2), ["PATCH /api/v2/app/projects/{id}"]);
}
