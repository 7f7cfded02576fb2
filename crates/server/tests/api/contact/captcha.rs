//! The captcha against an in-test verifier speaking the providers' protocol: a form-encoded
//! `secret`, `response` and `remoteip`, a JSON verdict.

use omnistack_testkit::TestApp;
use serde_json::json;

use super::{FakeServer, app_with, assert_received, form, form_with, stored, submit};

async fn captcha_app(provider: &str, verifier: &FakeServer) -> TestApp {
    app_with(&[
        ("CAPTCHA_PROVIDER", provider),
        ("CAPTCHA_SECRET", "captcha-secret"),
        ("CAPTCHA_SITE_KEY", "site-key-123"),
        ("CAPTCHA_VERIFY_URL", &verifier.url),
    ])
    .await
}

fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.split('&')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            (key.to_owned(), value.replace("%2E", ".").to_owned())
        })
        .collect()
}

#[tokio::test]
async fn each_provider_accepts_a_solved_token_checked_with_the_secret_and_the_client_ip() {
    for (provider, verdict) in [
        ("hcaptcha", r#"{"success":true,"hostname":"example.com"}"#),
        ("recaptcha", r#"{"success":true,"score":0.9,"action":"contact"}"#),
        ("turnstile", r#"{"success":true,"error-codes":[]}"#),
    ] {
        let verifier = FakeServer::start(&[], (200, verdict)).await;
        let app = captcha_app(provider, &verifier).await;
        let status = app.client.get(super::STATUS).await.json();
        assert_eq!(status["captcha"], json!({"provider": provider, "site_key": "site-key-123"}));
        assert_received(&submit(&app, &form_with(json!({"captcha_token": "token-abc"}))).await);
        let seen = verifier.seen();
        assert_eq!(seen.len(), 1, "{provider}");
        assert_eq!(seen[0].header("content-type"), "application/x-www-form-urlencoded");
        let fields = form_fields(&seen[0].body);
        let expected = [("secret", "captcha-secret"), ("response", "token-abc"), ("remoteip", "127.0.0.1")];
        assert_eq!(fields, expected.map(|(k, v)| (k.to_owned(), v.to_owned())), "{provider}");
        assert_eq!(stored(&app).await.len(), 1);
    }
}

#[tokio::test]
async fn a_refused_missing_or_low_scoring_token_is_400_captcha_failed_and_nothing_is_stored() {
    for (provider, verdict) in [
        ("hcaptcha", r#"{"success":false,"error-codes":["invalid-input-response"]}"#),
        ("turnstile", r#"{"success":false,"error-codes":["timeout-or-duplicate"]}"#),
        ("recaptcha", r#"{"success":true,"score":0.3,"action":"contact"}"#),
        ("recaptcha", r#"{"success":true}"#),
    ] {
        let verifier = FakeServer::start(&[], (200, verdict)).await;
        let app = captcha_app(provider, &verifier).await;
        let refused = submit(&app, &form_with(json!({"captcha_token": "token-abc"}))).await;
        assert_eq!((refused.status.as_u16(), refused.error_code()), (400, "CAPTCHA_FAILED".to_owned()), "{verdict}");
        let missing = submit(&app, &form()).await;
        assert_eq!((missing.status.as_u16(), missing.error_code()), (400, "CAPTCHA_FAILED".to_owned()));
        let status = app.client.get("/api/v1/public/contact/status").await.json();
        assert_eq!(status["rate_limit"]["remaining"], 3, "a failed captcha spends the budget: {status}");
        assert_eq!(verifier.seen().len(), 1, "a missing token is refused without asking the provider");
        assert!(stored(&app).await.is_empty());
    }
}

#[tokio::test]
async fn a_score_at_the_configured_minimum_passes() {
    let verifier = FakeServer::start(&[], (200, r#"{"success":true,"score":0.3}"#)).await;
    let app = app_with(&[
        ("CAPTCHA_PROVIDER", "recaptcha"),
        ("CAPTCHA_SECRET", "captcha-secret"),
        ("CAPTCHA_MIN_SCORE", "0.3"),
        ("CAPTCHA_VERIFY_URL", &verifier.url),
    ])
    .await;
    assert_received(&submit(&app, &form_with(json!({"captcha_token": "t"}))).await);
}

#[tokio::test]
async fn a_failing_or_unreachable_provider_is_502_and_nothing_is_stored() {
    let failing = FakeServer::start(&[], (503, "unavailable")).await;
    let app = captcha_app("turnstile", &failing).await;
    let remaining =
        || async { app.client.get("/api/v1/public/contact/status").await.json()["rate_limit"]["remaining"].clone() };
    let before = remaining().await;
    let res = submit(&app, &form_with(json!({"captcha_token": "t"}))).await;
    assert_eq!((res.status.as_u16(), res.error_code()), (502, "EXTERNAL_SERVICE_ERROR".to_owned()));
    assert!(stored(&app).await.is_empty());
    assert_eq!(remaining().await, before, "an outage costs the sender no budget");

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/siteverify", closed.local_addr().unwrap());
    drop(closed);
    let app =
        app_with(&[("CAPTCHA_PROVIDER", "hcaptcha"), ("CAPTCHA_SECRET", "s"), ("CAPTCHA_VERIFY_URL", &url)]).await;
    let res = submit(&app, &form_with(json!({"captcha_token": "t"}))).await;
    assert_eq!((res.status.as_u16(), res.error_code()), (502, "EXTERNAL_SERVICE_ERROR".to_owned()));
    assert!(stored(&app).await.is_empty());
    assert!(!res.text.contains("captcha-secret") && !res.text.contains(&url), "{}", res.text);
}

#[tokio::test]
async fn spam_is_answered_before_the_captcha_is_asked() {
    let verifier = FakeServer::start(&[], (200, r#"{"success":false}"#)).await;
    let app = captcha_app("hcaptcha", &verifier).await;
    assert_received(&submit(&app, &form_with(json!({"website": "bot"}))).await);
    assert!(verifier.seen().is_empty());
    assert_eq!(stored(&app).await[0].status, "spam");
}
