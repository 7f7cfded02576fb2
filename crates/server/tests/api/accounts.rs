//! Own accounts: registration, sign-in, refresh rotation, sign-out, password reset, email
//! verification, and access-token checks.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use omnistack_testkit::TestApp;
use serde_json::json;

const PASSWORD: &str = "correct-horse-battery";

#[tokio::test]
async fn registering_returns_201_with_a_token_pair_and_sends_a_verification_email() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post_json(
            "/api/v1/public/auth/register",
            &json!({"email": "  Ada@Example.COM ", "password": PASSWORD, "full_name": "Ada"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let body = res.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["email_verified"], false);
    assert_eq!(body["user"]["role"], "user");
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    let mail = app.mail.wait_for("ada@example.com", "Confirm").await;
    assert!(mail.body().contains("http://localhost:3000/verify-email?token="));
}

#[tokio::test]
async fn registering_a_taken_email_in_any_case_is_409() {
    let app = TestApp::spawn().await;
    app.register("taken@example.com", PASSWORD).await;
    let res = app
        .client
        .post_json("/api/v1/public/auth/register", &json!({"email": "TAKEN@example.com", "password": PASSWORD}))
        .await;
    assert_eq!(res.status, 409);
    assert_eq!(res.error_code(), "CONFLICT");
}

#[tokio::test]
async fn registering_with_a_bad_email_or_short_password_is_422_naming_both_fields() {
    let app = TestApp::spawn().await;
    let res =
        app.client.post_json("/api/v1/public/auth/register", &json!({"email": "nope", "password": "short"})).await;
    assert_eq!(res.status, 422);
    let fields: Vec<String> = res.json()["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["email", "password"]);
    let long = "x".repeat(129);
    let res = app.client.post_json("/api/v1/public/auth/register", &json!({"email": "a@b.co", "password": long})).await;
    assert_eq!(res.status, 422);
}

#[tokio::test]
async fn login_with_wrong_email_or_password_gives_the_same_401() {
    let app = TestApp::spawn().await;
    app.register("login@example.com", PASSWORD).await;
    let ok = app
        .client
        .post_json("/api/v1/public/auth/login", &json!({"email": "LOGIN@example.com", "password": PASSWORD}))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["user"]["email"], "login@example.com");
    let wrong_password = app
        .client
        .post_json("/api/v1/public/auth/login", &json!({"email": "login@example.com", "password": "wrong-password"}))
        .await;
    let wrong_email = app
        .client
        .post_json("/api/v1/public/auth/login", &json!({"email": "nobody@example.com", "password": PASSWORD}))
        .await;
    assert_eq!(wrong_password.status, 401);
    assert_eq!(wrong_email.status, 401);
    assert_eq!(wrong_password.json()["error"]["message"], wrong_email.json()["error"]["message"]);
    assert_eq!(wrong_password.error_code(), "AUTHENTICATION_ERROR");
}

#[tokio::test]
async fn login_records_the_sign_in_but_authenticated_reads_do_not_write() {
    let app = TestApp::spawn().await;
    let session = app.register("count@example.com", PASSWORD).await;
    let id = uuid::Uuid::parse_str(session["user"]["id"].as_str().unwrap()).unwrap();
    app.client
        .post_json("/api/v1/public/auth/login", &json!({"email": "count@example.com", "password": PASSWORD}))
        .await;
    let after_login = omnistack_db::users::find_user(&app.state.db, id).await.unwrap().unwrap();
    assert_eq!(after_login.login_count, 1);
    assert!(after_login.last_login_at.is_some());
    let client = app.client.with_token(session["access_token"].as_str().unwrap());
    for _ in 0..5 {
        assert_eq!(client.get("/api/v1/app/users/me").await.status, 200);
    }
    let after_reads = omnistack_db::users::find_user(&app.state.db, id).await.unwrap().unwrap();
    assert_eq!(after_reads, after_login, "reads leave the row untouched until the activity flush");
    app.state.activity.flush(&app.state.db).await;
    let flushed = omnistack_db::users::find_user(&app.state.db, id).await.unwrap().unwrap();
    assert!(flushed.last_login_at > after_login.last_login_at);
    assert_eq!(flushed.login_count, 1, "activity right after a sign-in is the same visit");
}

#[tokio::test]
async fn refresh_rotates_the_pair_and_each_refresh_token_works_once() {
    let app = TestApp::spawn().await;
    let first = app.register("rotate@example.com", PASSWORD).await;
    let res =
        app.client.post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": first["refresh_token"]})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let second = res.json();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);
    let me = app.client.with_token(second["access_token"].as_str().unwrap()).get("/api/v1/app/users/me").await;
    assert_eq!(me.status, 200);
    let third =
        app.client.post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": second["refresh_token"]})).await;
    assert_eq!(third.status, 200);
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_the_whole_session() {
    let app = TestApp::spawn().await;
    let first = app.register("theft@example.com", PASSWORD).await;
    let second = app
        .client
        .post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": first["refresh_token"]}))
        .await
        .json();
    // The stolen first token is presented again.
    let reuse =
        app.client.post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": first["refresh_token"]})).await;
    assert_eq!(reuse.status, 401);
    assert!(reuse.header("www-authenticate").unwrap().contains("invalid_token"));
    // The legitimate successor is dead too, and so are the session's access tokens.
    let successor =
        app.client.post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": second["refresh_token"]})).await;
    assert_eq!(successor.status, 401);
    let me = app.client.with_token(second["access_token"].as_str().unwrap()).get("/api/v1/app/users/me").await;
    assert_eq!(me.status, 401);
    assert_eq!(me.json()["error"]["message"], "session has been revoked");
}

#[tokio::test]
async fn an_unknown_refresh_token_is_401() {
    let app = TestApp::spawn().await;
    let res = app.client.post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": "made-up"})).await;
    assert_eq!(res.status, 401);
    assert_eq!(res.error_code(), "AUTHENTICATION_ERROR");
}

#[tokio::test]
async fn logout_revokes_the_session() {
    let app = TestApp::spawn().await;
    let session = app.register("bye@example.com", PASSWORD).await;
    // Used once first, so the server has verified (and remembers) the access token.
    let me = app.client.with_token(session["access_token"].as_str().unwrap()).get("/api/v1/app/users/me").await;
    assert_eq!(me.status, 200);
    let res =
        app.client.post_json("/api/v1/public/auth/logout", &json!({"refresh_token": session["refresh_token"]})).await;
    assert_eq!(res.status, 204);
    let refresh =
        app.client.post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": session["refresh_token"]})).await;
    assert_eq!(refresh.status, 401);
    let me = app.client.with_token(session["access_token"].as_str().unwrap()).get("/api/v1/app/users/me").await;
    assert_eq!(me.status, 401);
}

#[tokio::test]
async fn forgot_password_answers_202_either_way_and_mails_only_real_accounts() {
    let app = TestApp::spawn().await;
    app.register("forgot@example.com", PASSWORD).await;
    for email in ["forgot@example.com", "ghost@example.com"] {
        let res = app.client.post_json("/api/v1/public/auth/password/forgot", &json!({"email": email})).await;
        assert_eq!(res.status, 202);
        assert_eq!(res.text, "");
    }
    let mail = app.mail.wait_for("forgot@example.com", "Reset").await;
    assert!(mail.body().contains("/reset-password?token="));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(app.mail.messages().iter().all(|m| !m.to.contains(&"ghost@example.com".to_owned())));
}

#[tokio::test]
async fn resetting_the_password_works_once_and_revokes_every_session() {
    // Seven `auth`-class requests from one client: more than the default per-IP limit.
    let app = TestApp::builder().env("RATE_LIMIT_AUTH", "100/minute").spawn().await;
    let session = app.register("reset@example.com", PASSWORD).await;
    app.client.post_json("/api/v1/public/auth/password/forgot", &json!({"email": "reset@example.com"})).await;
    let token = app.mail.wait_for("reset@example.com", "Reset").await.token();

    let weak = app
        .client
        .post_json("/api/v1/public/auth/password/reset", &json!({"token": token, "new_password": "short"}))
        .await;
    assert_eq!(weak.status, 422);
    let res = app
        .client
        .post_json(
            "/api/v1/public/auth/password/reset",
            &json!({"token": token, "new_password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let again = app
        .client
        .post_json("/api/v1/public/auth/password/reset", &json!({"token": token, "new_password": "another-password"}))
        .await;
    assert_eq!(again.status, 400);

    let old = app
        .client
        .post_json("/api/v1/public/auth/login", &json!({"email": "reset@example.com", "password": PASSWORD}))
        .await;
    assert_eq!(old.status, 401);
    let new = app
        .client
        .post_json(
            "/api/v1/public/auth/login",
            &json!({"email": "reset@example.com", "password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(new.status, 200);
    let refresh =
        app.client.post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": session["refresh_token"]})).await;
    assert_eq!(refresh.status, 401, "sessions from before the reset are revoked");
}

#[tokio::test]
async fn verifying_the_email_marks_the_account_and_the_token_is_single_use() {
    let app = TestApp::spawn().await;
    let session = app.register("verify@example.com", PASSWORD).await;
    let token = app.mail.wait_for("verify@example.com", "Confirm").await.token();
    let res = app.client.post_json("/api/v1/public/auth/verify-email", &json!({"token": token})).await;
    assert_eq!(res.status, 204, "{}", res.text);
    let me = app.client.with_token(session["access_token"].as_str().unwrap()).get("/api/v1/app/users/me").await;
    assert_eq!(me.json()["email_verified"], true);
    let again = app.client.post_json("/api/v1/public/auth/verify-email", &json!({"token": token})).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.error_code(), "BAD_REQUEST");
}

#[tokio::test]
async fn protected_routes_require_a_bearer_token() {
    let app = TestApp::spawn().await;
    let res = app.client.get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 401);
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    let garbage = app.client.with_token("not-a-jwt").get("/api/v1/app/projects").await;
    assert_eq!(garbage.status, 401);
    assert_eq!(garbage.header("www-authenticate"), Some("Bearer error=\"invalid_token\""));
}

fn forge(claims: serde_json::Value, secret: &str, alg: Algorithm) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

#[tokio::test]
async fn expired_forged_and_unsigned_access_tokens_are_rejected() {
    let app = TestApp::spawn().await;
    let session = app.register("forge@example.com", PASSWORD).await;
    let user = session["user"]["id"].as_str().unwrap();
    let claims =
        jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(session["access_token"].as_str().unwrap())
            .unwrap()
            .claims;
    let secret = app.state.config.secret_key.expose().to_owned();
    let now = chrono::Utc::now().timestamp();

    let mut expired = claims.clone();
    expired["exp"] = json!(now - 10);
    let res = app.client.with_token(&forge(expired, &secret, Algorithm::HS256)).get("/api/v1/app/users/me").await;
    assert_eq!((res.status.as_u16(), res.json()["error"]["message"].as_str().unwrap()), (401, "token expired"));

    let res = app
        .client
        .with_token(&forge(claims.clone(), "another-secret", Algorithm::HS256))
        .get("/api/v1/app/users/me")
        .await;
    assert_eq!(
        (res.status.as_u16(), res.json()["error"]["message"].as_str().unwrap()),
        (401, "token signature is invalid")
    );

    let res =
        app.client.with_token(&forge(claims.clone(), &secret, Algorithm::HS512)).get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 401, "only HS256 is accepted for own tokens");

    let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64_url(serde_json::to_string(&claims).unwrap().as_bytes());
    let unsigned = format!("{header}.{payload}.");
    let res = app.client.with_token(&unsigned).get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 401);

    let mut other_user = claims;
    other_user["sub"] = json!(uuid::Uuid::now_v7().to_string());
    let res = app.client.with_token(&forge(other_user, &secret, Algorithm::HS256)).get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 401, "a session belongs to one user: {user}");
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
