//! Password reset and email verification tokens: a reset revokes every other reset token, a
//! bogus token (like a taken email at registration) costs no password hash, and both routes
//! are on the `auth` rate class.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use omnistack_testkit::{TestApp, TestResponse};
use serde_json::{Value, json};

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

/// Sends `body` to `path` while hashes queue in the process-wide hashing pool, and returns the
/// answer with how many of those hashes finished before it: a request that hashed would wait
/// behind all of them.
async fn answer_while_hashes_queue(app: &TestApp, path: &str, body: &Value) -> (TestResponse, usize) {
    let finished = Arc::new(AtomicUsize::new(0));
    let hashes: Vec<_> = (0..QUEUED)
        .map(|_| {
            let finished = finished.clone();
            tokio::spawn(async move {
                omnistack::auth::password::hash("a-queued-password".into()).await.unwrap();
                finished.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let res = app.client.post_json(path, body).await;
    let hashed_meanwhile = finished.load(Ordering::SeqCst);
    for hash in hashes {
        hash.await.unwrap();
    }
    (res, hashed_meanwhile)
}

/// Hashes queued by [`answer_while_hashes_queue`].
const QUEUED: usize = 24;

#[tokio::test]
async fn a_bogus_reset_token_is_refused_without_hashing_the_password() {
    let app = TestApp::spawn().await;
    let bogus = json!({"token": "made-up-token", "new_password": "a-long-enough-password"});
    let (res, hashed_meanwhile) = answer_while_hashes_queue(&app, "/api/v1/public/auth/password/reset", &bogus).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(res.error_code(), "BAD_REQUEST");
    assert!(hashed_meanwhile < QUEUED / 2, "the refusal waited for {hashed_meanwhile} queued hashes");
}

#[tokio::test]
async fn registering_a_taken_email_is_refused_without_hashing_the_password() {
    let app = TestApp::spawn().await;
    app.register("taken@example.com", PASSWORD).await;
    let again = json!({"email": "taken@example.com", "password": PASSWORD});
    let (res, hashed_meanwhile) = answer_while_hashes_queue(&app, "/api/v1/public/auth/register", &again).await;
    assert_eq!(res.status, 409, "{}", res.text);
    assert!(hashed_meanwhile < QUEUED / 2, "the refusal waited for {hashed_meanwhile} queued hashes");
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
