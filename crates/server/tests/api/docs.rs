//! The OpenAPI documents and the offline docs page.

use omnistack_testkit::TestApp;

#[tokio::test]
async fn each_version_has_an_openapi_3_1_document_generated_from_the_routes() {
    let app = TestApp::spawn().await;
    for version in ["v1", "v2"] {
        let res = app.client.get(&format!("/api/{version}/openapi.json")).await;
        assert_eq!(res.status, 200);
        let doc = res.json();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for path in ["public/health", "public/health/ready"] {
            let path = format!("/api/{version}/{path}");
            assert!(paths.contains_key(&path), "{path} documented");
        }
        let ready = &doc["paths"][format!("/api/{version}/public/health/ready")]["get"]["responses"];
        assert!(ready["503"].is_object(), "error responses are documented");
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    }
}

#[tokio::test]
async fn docs_page_and_its_assets_are_served_by_the_binary_with_their_own_csp() {
    let app = TestApp::spawn().await;
    let page = app.client.get("/docs/").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("swagger-ui"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("http"), "no third-party origins: {csp}");
    for asset in ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/swagger-initializer.js"] {
        assert_eq!(app.client.get(asset).await.status, 200, "{asset}");
    }
    let initializer = app.client.get("/docs/swagger-initializer.js").await.text;
    assert!(initializer.contains("/api/v1/openapi.json") && initializer.contains("/api/v2/openapi.json"));
}

#[tokio::test]
async fn docs_can_be_switched_off() {
    let app = TestApp::builder().env("DOCS_ENABLED", "false").spawn().await;
    assert_eq!(app.client.get("/docs/").await.status, 404);
    assert_eq!(app.client.get("/api/v1/openapi.json").await.status, 404);
    assert_eq!(app.client.get("/api/v1/public/health").await.status, 200);
}
