//! `ENVIRONMENT=production` through the real binary: no mail provider refuses to start, the
//! console mailer never logs a usable token, docs are off and metrics need a token unless
//! told otherwise; access and refresh tokens are never logged.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::binary::{free_port, omnistack, wait_until_up};

const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef-production";

/// The binary serving in production with `vars`, both output streams into `dir/out.log`.
async fn serve(dir: &Path, vars: &[(&str, &str)]) -> (Child, String) {
    let port = free_port().to_string();
    let log = std::fs::File::create(dir.join("out.log")).unwrap();
    let mut all = vec![
        ("ENVIRONMENT", "production"),
        ("SECRET_KEY", SECRET_KEY),
        ("PORT", port.as_str()),
        ("DATA_DIR", "."),
        ("LOG_LEVEL", "debug"),
    ];
    all.extend_from_slice(vars);
    let child =
        omnistack(dir, &all).stdout(Stdio::from(log.try_clone().unwrap())).stderr(Stdio::from(log)).spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{base}/api/v1/public/health")).await;
    (child, base)
}

fn stop(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The log so far, once it contains `needle` (at most 10 s).
async fn log_with(dir: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(dir.join("out.log")).unwrap_or_default();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "{needle:?} never logged:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let res = http.post(url).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[test]
fn production_without_a_mail_provider_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        omnistack(dir.path(), &[("ENVIRONMENT", "production"), ("SECRET_KEY", SECRET_KEY), ("METRICS_PUBLIC", "true")])
            .arg("serve")
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("EMAIL_PROVIDER: production needs a mail provider"));
    let out =
        omnistack(dir.path(), &[("ENVIRONMENT", "production"), ("SECRET_KEY", SECRET_KEY), ("SMTP_HOST", "mail")])
            .arg("serve")
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("METRICS_TOKEN: is required in production"));
}

#[tokio::test]
async fn no_log_line_in_production_holds_a_usable_token() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = serve(dir.path(), &[("EMAIL_PROVIDER", "console"), ("METRICS_TOKEN", "scrape-secret")]).await;
    let http = reqwest::Client::new();
    let credentials = json!({"email": "owner@example.com", "password": "correct-horse-battery"});
    let (status, signed_up) = post(&http, format!("{base}/api/v1/public/auth/register"), credentials.clone()).await;
    assert_eq!(status, 201, "{signed_up}");
    let (status, signed_in) = post(&http, format!("{base}/api/v1/public/auth/login"), credentials).await;
    assert_eq!(status, 200, "{signed_in}");
    let refresh = json!({"refresh_token": signed_in["refresh_token"]});
    let (status, refreshed) = post(&http, format!("{base}/api/v1/public/auth/refresh"), refresh).await;
    assert_eq!(status, 200, "{refreshed}");
    let access = refreshed["access_token"].as_str().unwrap();
    let me = http.get(format!("{base}/api/v1/app/users/me")).bearer_auth(access).send().await.unwrap();
    assert_eq!(me.status(), 200);
    // A token in a socket URL, as browsers send it.
    let ws = base.replace("http://", "ws://");
    let (socket, _) = tokio_tungstenite::connect_async(format!("{ws}/api/v1/app/ws?token={access}")).await.unwrap();
    drop(socket);
    let (status, _) =
        post(&http, format!("{base}/api/v1/public/auth/password/forgot"), json!({"email": "owner@example.com"})).await;
    assert!(status < 300, "{status}");

    let log = log_with(dir.path(), "reset-password?token=").await;
    let log = log_with(dir.path(), "verify-email?token=").await.max(log);
    stop(child);
    for (what, secret) in [
        ("sign-up access token", &signed_up["access_token"]),
        ("sign-up refresh token", &signed_up["refresh_token"]),
        ("sign-in access token", &signed_in["access_token"]),
        ("sign-in refresh token", &signed_in["refresh_token"]),
        ("refreshed access token", &refreshed["access_token"]),
        ("refreshed refresh token", &refreshed["refresh_token"]),
    ] {
        let secret = secret.as_str().unwrap();
        assert!(!log.contains(secret), "the {what} was logged:\n{log}");
    }
    for (at, _) in log.match_indices("token=") {
        let value = &log[at + "token=".len()..];
        assert!(
            value.starts_with("[REDACTED]") || value.starts_with(|c: char| c.is_whitespace()),
            "a token was logged: {}",
            &log[at..(at + 60).min(log.len())]
        );
    }
    assert!(log.contains("reset-password?token=[REDACTED]"), "{log}");
}

#[tokio::test]
async fn production_serves_no_docs_and_guards_metrics_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = serve(dir.path(), &[("SMTP_HOST", "127.0.0.1"), ("METRICS_TOKEN", "scrape-secret")]).await;
    let http = reqwest::Client::new();
    for path in ["/docs", "/docs/", "/api/v1/openapi.json", "/api/v2/openapi.json"] {
        assert_eq!(http.get(format!("{base}{path}")).send().await.unwrap().status(), 404, "{path}");
    }
    assert_eq!(http.get(format!("{base}/metrics")).send().await.unwrap().status(), 401);
    let scrape = http.get(format!("{base}/metrics")).bearer_auth("scrape-secret").send().await.unwrap();
    assert_eq!(scrape.status(), 200);
    stop(child);

    let dir = tempfile::tempdir().unwrap();
    let (child, base) =
        serve(dir.path(), &[("SMTP_HOST", "127.0.0.1"), ("METRICS_PUBLIC", "true"), ("DOCS_ENABLED", "true")]).await;
    for path in ["/api/v1/openapi.json", "/metrics"] {
        assert_eq!(http.get(format!("{base}{path}")).send().await.unwrap().status(), 200, "{path}");
    }
    stop(child);
}
