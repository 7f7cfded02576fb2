//! Accounts of external identity providers through the API: provisioning, re-sync, roles.

use omnistack_testkit::idp::{FakeIdp, SUBJECT};
use omnistack_testkit::{TestApp, TestClient};
use serde_json::json;

async fn app_trusting(idp: &FakeIdp, extra: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder().env("CLERK_ISSUER_URL", &idp.issuer());
    for (name, value) in extra {
        builder = builder.env(name, value);
    }
    builder.spawn().await
}

fn as_external(app: &TestApp, idp: &FakeIdp, claims: serde_json::Value) -> TestClient {
    app.client.with_token(&idp.token(idp.claims(claims)))
}

#[tokio::test]
async fn the_first_valid_token_provisions_the_account_from_its_claims() {
    let idp = FakeIdp::start().await;
    let app = app_trusting(&idp, &[]).await;
    let claims = json!({"email": "Ext@Example.com", "email_verified": true, "name": "Ext User",
                        "picture": "https://img.example.com/e.png"});
    let res = as_external(&app, &idp, claims.clone()).get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let me = res.json();
    assert_eq!(me["email"], "ext@example.com");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["full_name"], "Ext User");
    assert_eq!(me["avatar_url"], "https://img.example.com/e.png");
    assert_eq!(me["role"], "user");
    let again = as_external(&app, &idp, claims).get("/api/v1/app/users/me").await.json();
    assert_eq!(again["id"], me["id"], "the same account every time");
}

#[tokio::test]
async fn concurrent_first_requests_of_a_new_external_user_both_succeed_with_one_account() {
    let idp = FakeIdp::start().await;
    let app = app_trusting(&idp, &[]).await;
    let client = as_external(&app, &idp, json!({"email": "race@example.com"}));
    let requests = (0..6).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.get("/api/v1/app/users/me").await })
    });
    let mut ids = Vec::new();
    for request in requests {
        let res = request.await.unwrap();
        assert_eq!(res.status, 200, "{}", res.text);
        ids.push(res.json()["id"].as_str().unwrap().to_owned());
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

#[tokio::test]
async fn changed_claims_are_re_synced_and_absent_ones_never_clear_or_invent() {
    let idp = FakeIdp::start().await;
    let app = app_trusting(&idp, &[]).await;
    as_external(&app, &idp, json!({"email": "old@example.com", "name": "Old"})).get("/api/v1/app/users/me").await;
    let me = as_external(&app, &idp, json!({"email": "new@example.com", "name": "New"}))
        .get("/api/v1/app/users/me")
        .await
        .json();
    assert_eq!((me["email"].as_str(), me["full_name"].as_str()), (Some("new@example.com"), Some("New")));
    let me = as_external(&app, &idp, json!({})).get("/api/v1/app/users/me").await.json();
    assert_eq!((me["email"].as_str(), me["full_name"].as_str()), (Some("new@example.com"), Some("New")));

    let nobody = idp.token(idp.claims(json!({"sub": "no-email-user"})));
    let me = app.client.with_token(&nobody).get("/api/v1/app/users/me").await.json();
    assert_eq!(me["email"], serde_json::Value::Null, "no placeholder email is invented");
}

#[tokio::test]
async fn a_role_claim_counts_only_when_the_operator_names_it() {
    let idp = FakeIdp::start().await;
    let claims =
        json!({"public_metadata": {"role": "admin"}, "unsafe_metadata": {"role": "super_admin"}, "role": "admin"});
    let ignoring = app_trusting(&idp, &[]).await;
    assert_eq!(as_external(&ignoring, &idp, claims.clone()).get("/api/v1/app/users/me").await.json()["role"], "user");

    let trusting = app_trusting(&idp, &[("AUTH_ROLE_CLAIM", "public_metadata.role")]).await;
    assert_eq!(as_external(&trusting, &idp, claims).get("/api/v1/app/users/me").await.json()["role"], "admin");
    let demoted = json!({"public_metadata": {"role": "user"}});
    assert_eq!(as_external(&trusting, &idp, demoted).get("/api/v1/app/users/me").await.json()["role"], "user");
}

#[tokio::test]
async fn a_deactivated_external_account_is_refused_with_403() {
    let idp = FakeIdp::start().await;
    let app = app_trusting(&idp, &[]).await;
    let client = as_external(&app, &idp, json!({"email": "gone@example.com"}));
    assert_eq!(client.delete("/api/v1/app/users/me").await.status, 204);
    let res = client.get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 403);
    let user = omnistack_db::identities::find_user_by_identity(&app.state.db, "clerk", SUBJECT).await.unwrap().unwrap();
    assert!(!user.is_active, "the provider's tokens keep landing on the deactivated account");
    assert_eq!((user.email, user.full_name), (None, None));
}

#[tokio::test]
async fn tokens_of_unconfigured_issuers_and_bad_signatures_are_401_invalid_token() {
    let idp = FakeIdp::start().await;
    let unconfigured = TestApp::spawn().await;
    let res = as_external(&unconfigured, &idp, json!({})).get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 401);
    assert_eq!(res.json()["error"]["message"], "token issuer is not accepted");

    let app = app_trusting(&idp, &[]).await;
    let forged = idp.forged_token(idp.claims(json!({})));
    let res = app.client.with_token(&forged).get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 401);
    assert_eq!(res.header("www-authenticate"), Some("Bearer error=\"invalid_token\""));
    assert_eq!(res.json()["error"]["message"], "token signature is invalid");
}

#[tokio::test]
async fn a_signed_subject_with_control_characters_or_of_any_length_is_refused_not_stored() {
    let idp = FakeIdp::start().await;
    let app = app_trusting(&idp, &[]).await;
    for subject in ["user\u{0}id".to_owned(), "user\u{1b}[2Jid".to_owned(), "s".repeat(256)] {
        let res = as_external(&app, &idp, json!({"sub": subject})).get("/api/v1/app/users/me").await;
        assert_eq!(res.status, 401, "{}", res.text);
        assert_eq!(res.error_code(), "AUTHENTICATION_ERROR");
    }
    let res = as_external(&app, &idp, json!({"sub": "s".repeat(255)})).get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 200, "{}", res.text);
}
