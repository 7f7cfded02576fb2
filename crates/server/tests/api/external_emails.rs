//! Emails asserted by external identity providers: only a verified one becomes the account's
//! email; an unverified one is shown (marked unverified) but never receives a reset link,
//! never blocks the address's owner from registering and never links accounts.

use omnistack_testkit::idp::FakeIdp;
use omnistack_testkit::{TestApp, TestClient};
use serde_json::{Value, json};

const PASSWORD: &str = "correct-horse-battery";

/// These tests take more steps than the per-IP `auth` limit allows in a minute.
fn builder() -> omnistack_testkit::TestAppBuilder {
    TestApp::builder().env("RATE_LIMIT_AUTH", "100/minute")
}

async fn app_trusting(idp: &FakeIdp) -> TestApp {
    builder().env("CLERK_ISSUER_URL", &idp.issuer()).spawn().await
}

fn as_external(app: &TestApp, idp: &FakeIdp, claims: Value) -> TestClient {
    app.client.with_token(&idp.token(idp.claims(claims)))
}

async fn me(client: &TestClient) -> Value {
    let res = client.get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()
}

/// Asks for a reset of `email`, then proves (with a mail that must arrive after it) that no
/// reset mail went to `email`.
async fn forgot_sends_nothing_to(app: &TestApp, email: &str) {
    let res = app.client.post_json("/api/v1/public/auth/password/forgot", &json!({"email": email})).await;
    assert_eq!(res.status, 202, "the same answer as for any address");
    let sentinel = format!("sentinel-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&sentinel, PASSWORD).await;
    app.client.post_json("/api/v1/public/auth/password/forgot", &json!({"email": sentinel})).await;
    app.mail.wait_for(&sentinel, "Reset").await;
    assert!(app.mail.find(email, "Reset").is_none(), "{:#?}", app.mail.messages());
}

#[tokio::test]
async fn an_unverified_external_email_gets_no_reset_link_and_its_owner_registers_a_separate_account() {
    let idp = FakeIdp::start().await;
    let app = app_trusting(&idp).await;
    let attacker = as_external(&app, &idp, json!({"email": "Victim@Example.com", "email_verified": false}));
    let squatter = me(&attacker).await;
    assert_eq!(
        (squatter["email"].as_str(), squatter["email_verified"].as_bool()),
        (Some("victim@example.com"), Some(false))
    );

    forgot_sends_nothing_to(&app, "victim@example.com").await;

    let registered = app.register("victim@example.com", PASSWORD).await;
    assert_ne!(registered["user"]["id"], squatter["id"], "the owner gets an account of their own");
    app.client.post_json("/api/v1/public/auth/password/forgot", &json!({"email": "victim@example.com"})).await;
    let token = app.mail.wait_for("victim@example.com", "Reset").await.token();
    let reset = json!({"token": token, "new_password": "the-owners-new-password"});
    assert_eq!(app.client.post_json("/api/v1/public/auth/password/reset", &reset).await.status, 204);
    let login = json!({"email": "victim@example.com", "password": "the-owners-new-password"});
    let signed_in = app.client.post_json("/api/v1/public/auth/login", &login).await;
    assert_eq!(signed_in.json()["user"]["id"], registered["user"]["id"], "the reset reached the owner's account only");

    let still = me(&attacker).await;
    assert_eq!(still["id"], squatter["id"]);
    assert_eq!(still["email_verified"], false, "still shown, still unverified");
}

#[tokio::test]
async fn an_email_without_the_providers_verification_claim_is_unverified() {
    let idp = FakeIdp::start().await;
    let app = builder().env("OAUTH_JWKS_URL", &idp.jwks_url()).env("OAUTH_ISSUER", &idp.issuer()).spawn().await;
    let claims = json!({"email": "quiet@example.com", "user_metadata": {"email_verified": true}});
    let shown = me(&as_external(&app, &idp, claims)).await;
    assert_eq!((shown["email"].as_str(), shown["email_verified"].as_bool()), (Some("quiet@example.com"), Some(false)));
    forgot_sends_nothing_to(&app, "quiet@example.com").await;
    let owner = app.register("quiet@example.com", PASSWORD).await;
    assert_ne!(owner["user"]["id"], shown["id"]);
}

#[tokio::test]
async fn a_verified_email_is_promoted_only_while_no_other_account_holds_it() {
    let idp = FakeIdp::start().await;
    let app = app_trusting(&idp).await;
    let first = as_external(&app, &idp, json!({"email": "ext@example.com"}));
    assert_eq!(me(&first).await["email_verified"], false);
    let verified = as_external(&app, &idp, json!({"email": "ext@example.com", "email_verified": true}));
    let promoted = me(&verified).await;
    assert_eq!(
        (promoted["email"].as_str(), promoted["email_verified"].as_bool()),
        (Some("ext@example.com"), Some(true))
    );
    let taken = json!({"email": "ext@example.com", "password": PASSWORD});
    assert_eq!(app.client.post_json("/api/v1/public/auth/register", &taken).await.status, 409);

    let other_claims = json!({"sub": "someone-else", "email": "ext@example.com", "email_verified": true});
    let other = me(&as_external(&app, &idp, other_claims)).await;
    assert_ne!(other["id"], promoted["id"], "accounts are never linked by email");
    assert_eq!((other["email"].as_str(), other["email_verified"].as_bool()), (Some("ext@example.com"), Some(false)));
}

#[tokio::test]
async fn an_external_account_without_a_password_gets_no_reset_link() {
    let idp = FakeIdp::start().await;
    let app = app_trusting(&idp).await;
    let client = as_external(&app, &idp, json!({"email": "sso@example.com", "email_verified": true}));
    assert_eq!(me(&client).await["email_verified"], true);
    forgot_sends_nothing_to(&app, "sso@example.com").await;
}

#[tokio::test]
async fn supabase_profile_claims_are_read_from_user_metadata_in_order() {
    let idp = FakeIdp::start_at("/auth/v1").await;
    let app = builder().env("SUPABASE_PROJECT_URL", &idp.base_url()).spawn().await;
    let claims = json!({
        "aud": "authenticated",
        "email": "",
        "user_metadata": {"email": "Meta@Example.com", "email_verified": true, "name": "Short",
                          "full_name": "Meta Full", "picture": "https://m.example/p.png",
                          "avatar_url": "https://m.example/a.png"},
        "app_metadata": {"email": "app@example.com", "email_verified": true},
    });
    let shown = me(&as_external(&app, &idp, claims)).await;
    assert_eq!(shown["email"], "meta@example.com");
    assert_eq!(shown["email_verified"], false, "user_metadata is the user's to write");
    assert_eq!(shown["full_name"], "Meta Full");
    assert_eq!(shown["avatar_url"], "https://m.example/a.png");
}
