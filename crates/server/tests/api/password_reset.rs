//! Password reset and email verification tokens: a reset revokes every other reset token, a
//! bogus token costs no password hash, and both routes are on the `auth` rate class.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use omnistack_testkit::TestApp;
use serde_json::json;

const PASSWORD: &str = "correct-horse-battery";

/// The tokens of the first `count` reset mails to `email`, waiting (up to 5 s) for them.
async fn reset_tokens(app: &TestApp, email: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tokens: Vec<String> = app
            .mail
            .messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == email) && m.subject().contains("Reset"))
            .map(|m| m.token())
            .collect();
        if tokens.len() >= count {
            return tokens;
        }
        assert!(Instant::now() < deadline, "{} of {count} reset mails arrived", tokens.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_successful_reset_revokes_every_other_reset_token() {
    // Six `auth`-class requests from one client: more than the default per-IP limit.
    let app = TestApp::builder().env("RATE_LIMIT_AUTH", "100/minute").spawn().await;
    app.register("twice@example.com", PASSWORD).await;
    for _ in 0..2 {
        let res =
            app.client.post_json("/api/v1/public/auth/password/forgot", &json!({"email": "twice@example.com"})).await;
        assert_eq!(res.status, 202);
    }
    let tokens = reset_tokens(&app, "twice@example.com", 2).await;
    assert_ne!(tokens[0], tokens[1]);
    let first = json!({"token": tokens[1], "new_password": "the-first-new-password"});
    assert_eq!(app.client.post_json("/api/v1/public/auth/password/reset", &first).await.status, 204);
    let second = json!({"token": tokens[0], "new_password": "an-attackers-password"});
    let res = app.client.post_json("/api/v1/public/auth/password/reset", &second).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(res.error_code(), "BAD_REQUEST");
    let login = json!({"email": "twice@example.com", "password": "the-first-new-password"});
    assert_eq!(app.client.post_json("/api/v1/public/auth/login", &login).await.status, 200);
}

#[tokio::test]
async fn a_bogus_reset_token_is_refused_without_hashing_the_password() {
    let app = TestApp::spawn().await;
    // Queue hashes in the process-wide hashing pool first: a reset that hashed before looking
    // at its token would wait behind all of them.
    let queued = 24;
    let finished = Arc::new(AtomicUsize::new(0));
    let hashes: Vec<_> = (0..queued)
        .map(|_| {
            let finished = finished.clone();
            tokio::spawn(async move {
                omnistack::auth::password::hash("a-queued-password".into()).await.unwrap();
                finished.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let bogus = json!({"token": "made-up-token", "new_password": "a-long-enough-password"});
    let res = app.client.post_json("/api/v1/public/auth/password/reset", &bogus).await;
    let hashed_meanwhile = finished.load(Ordering::SeqCst);
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(res.error_code(), "BAD_REQUEST");
    assert!(hashed_meanwhile < queued / 2, "the refusal waited for {hashed_meanwhile} queued hashes");
    for hash in hashes {
        hash.await.unwrap();
    }
}

#[tokio::test]
async fn reset_and_verify_are_limited_by_the_auth_class_in_every_version() {
    let app = TestApp::spawn().await;
    let reset = json!({"token": "made-up-token", "new_password": "a-long-enough-password"});
    let verify = json!({"token": "made-up-token"});
    for (path, body) in [
        ("/api/v1/public/auth/password/reset", &reset),
        ("/api/v1/public/auth/verify-email", &verify),
        ("/api/v1/public/auth/password/reset", &reset),
        ("/api/v1/public/auth/verify-email", &verify),
        ("/api/v1/public/auth/password/reset", &reset),
    ] {
        let res = app.client.post_json(path, body).await;
        assert_eq!(res.status, 400, "{path}: {}", res.text);
        assert_eq!(res.header("x-ratelimit-limit"), Some("5"), "{path}");
    }
    for (path, body) in [
        ("/api/v1/public/auth/verify-email", &verify),
        ("/api/v1/public/auth/password/reset", &reset),
        ("/api/v2/public/auth/verify-email", &verify),
        ("/api/v2/public/auth/password/reset", &reset),
    ] {
        let res = app.client.post_json(path, body).await;
        assert_eq!(res.status, 429, "{path}: {}", res.text);
        assert_eq!(res.error_code(), "RATE_LIMIT_EXCEEDED");
    }
}
