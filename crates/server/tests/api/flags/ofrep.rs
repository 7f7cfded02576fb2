//! OFREP: `POST /ofrep/v1/evaluate/flags[/{key}]` for server-side SDKs, with the flags API
//! key or an admin token, answering in the OFREP specification's shapes.

use omnistack_testkit::{TestApp, TestClient, TestResponse};
use serde_json::{Value, json};

use super::{FLAGS, create, user};
use crate::jobs::admin_client;

const API_KEY: &str = "ofrep-test-key-0123456789abcdef0123";
const ONE: &str = "/ofrep/v1/evaluate/flags";

async fn app_with_flags() -> (TestApp, TestClient) {
    let app = TestApp::builder().env("FLAGS_API_KEY", API_KEY).spawn().await;
    let admin = admin_client(&app).await;
    create(&admin, json!({"key": "split", "group_id": "gr1", "enabled": true, "rollout_percentage": 73})).await;
    create(&admin, json!({"key": "off", "enabled": false})).await;
    create(&admin, json!({"key": "pro", "enabled": true, "plans": ["pro"]})).await;
    (app, admin)
}

async fn evaluate(client: &TestClient, path: &str, body: Value) -> TestResponse {
    client.post_json(path, &body).await
}

#[tokio::test]
async fn a_single_flag_is_evaluated_in_the_ofrep_shape() {
    let (app, _) = app_with_flags().await;
    let sdk = app.client.with_token(API_KEY);
    let res =
        evaluate(&sdk, &format!("{ONE}/split"), json!({"context": {"targetingKey": "123", "country": "NL"}})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json(), json!({"key": "split", "value": true, "reason": "SPLIT", "variant": "on", "metadata": {}}));
    let off = evaluate(&sdk, &format!("{ONE}/off"), json!({"context": {"targetingKey": "123"}})).await.json();
    assert_eq!(off, json!({"key": "off", "value": false, "reason": "DISABLED", "variant": "off", "metadata": {}}));

    // The plan rule reads the account's plan when the targeting key is an account id.
    let (_, alice) = user(&app).await;
    let body = json!({"context": {"targetingKey": alice}});
    assert_eq!(evaluate(&sdk, &format!("{ONE}/pro"), body.clone()).await.json()["value"], false);
    omnistack_db::users::set_subscription(&app.state.db, alice.parse().unwrap(), "pro", "trialing").await.unwrap();
    let pro = evaluate(&sdk, &format!("{ONE}/pro"), body).await.json();
    assert_eq!((pro["value"].as_bool(), pro["reason"].as_str()), (Some(true), Some("STATIC")));
}

#[tokio::test]
async fn failures_carry_the_ofrep_error_codes() {
    let (app, _) = app_with_flags().await;
    let sdk = app.client.with_token(API_KEY);
    let missing = evaluate(&sdk, &format!("{ONE}/nope"), json!({"context": {"targetingKey": "1"}})).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["key"], "nope");
    assert_eq!(missing.json()["errorCode"], "FLAG_NOT_FOUND");
    assert!(missing.json()["errorDetails"].is_string());

    let bad_contexts = [
        json!({}),
        json!({"context": "x"}),
        json!({"context": {}}),
        json!({"context": {"targetingKey": 42}}),
        json!({"context": {"targetingKey": ""}}),
        json!({"context": {"targetingKey": "a\u{0}b"}}),
        json!({"context": {"targetingKey": "k".repeat(256)}}),
    ];
    for body in bad_contexts {
        let res = evaluate(&sdk, &format!("{ONE}/split"), body.clone()).await;
        assert_eq!(res.status, 400, "{body}: {}", res.text);
        assert_eq!(
            (res.json()["key"].as_str(), res.json()["errorCode"].as_str()),
            (Some("split"), Some("INVALID_CONTEXT"))
        );
        let bulk = evaluate(&sdk, ONE, body.clone()).await;
        assert_eq!(bulk.status, 400, "{body}: {}", bulk.text);
        assert_eq!(bulk.json()["errorCode"], "INVALID_CONTEXT");
    }
    let garbage = sdk.send(sdk.request(reqwest::Method::POST, &format!("{ONE}/split")).body("{not json")).await;
    assert_eq!((garbage.status.as_u16(), garbage.json()["errorCode"].as_str()), (400, Some("PARSE_ERROR")));
    let huge = json!({"context": {"targetingKey": "1", "blob": "x".repeat(20_000)}});
    assert_eq!(evaluate(&sdk, &format!("{ONE}/split"), huge).await.status, 413, "bodies are limited to 16 KiB");
}

#[tokio::test]
async fn bulk_evaluation_lists_every_flag_with_an_etag() {
    let (app, admin) = app_with_flags().await;
    let sdk = app.client.with_token(API_KEY);
    let body = json!({"context": {"targetingKey": "123"}});
    let res = evaluate(&sdk, ONE, body.clone()).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let flags = res.json()["flags"].clone();
    let keys: Vec<&str> = flags.as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["off", "pro", "split"]);
    assert_eq!(flags[2], json!({"key": "split", "value": true, "reason": "SPLIT", "variant": "on", "metadata": {}}));
    let etag = res.header("etag").expect("an ETag").to_owned();

    let again = sdk.send(sdk.request(reqwest::Method::POST, ONE).header("If-None-Match", &etag).json(&body)).await;
    assert_eq!(again.status, 304);
    admin.patch_json(&format!("{FLAGS}/off"), &json!({"enabled": true})).await;
    let changed = sdk.send(sdk.request(reqwest::Method::POST, ONE).header("If-None-Match", &etag).json(&body)).await;
    assert_eq!(changed.status, 200, "a change gives a new ETag");
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
}

#[tokio::test]
async fn only_the_api_key_or_an_admin_token_may_evaluate() {
    let (app, admin) = app_with_flags().await;
    let body = json!({"context": {"targetingKey": "123"}});
    for path in [format!("{ONE}/split"), ONE.to_owned()] {
        assert_eq!(evaluate(&admin, &path, body.clone()).await.status, 200, "an admin token");
        let anonymous = evaluate(&app.client, &path, body.clone()).await;
        assert_eq!((anonymous.status.as_u16(), anonymous.error_code().as_str()), (401, "AUTHENTICATION_ERROR"));
        let wrong = evaluate(&app.client.with_token(&format!("{API_KEY}x")), &path, body.clone()).await;
        assert_eq!(wrong.status, 401);
        let (plain, _) = user(&app).await;
        let forbidden = evaluate(&plain, &path, body.clone()).await;
        assert_eq!((forbidden.status.as_u16(), forbidden.error_code().as_str()), (403, "AUTHORIZATION_ERROR"));
    }
    // Demoted, the admin's token no longer evaluates.
    let email = admin.get("/api/v1/app/users/me").await.json()["email"].as_str().unwrap().to_owned();
    omnistack::users::set_role_by_email(&app.state.db, &email, omnistack::auth::Role::User).await.unwrap();
    assert_eq!(evaluate(&admin, ONE, body.clone()).await.status, 403);

    // Without FLAGS_API_KEY, no bearer string is a key.
    let keyless = TestApp::spawn().await;
    let res = evaluate(&keyless.client.with_token(API_KEY), ONE, body).await;
    assert_eq!(res.status, 401);
}
