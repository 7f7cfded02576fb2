//! Plan limits: `USAGE_ENFORCE_API_REQUESTS` refuses at the boundary through HTTP, the hard
//! limits refuse at theirs, and the 80 % / 100 % alerts are sent once with two instances.

use std::time::Duration;

use chrono::Utc;
use omnistack::error::Error;
use omnistack_testkit::{TestApp, WsClient};
use serde_json::Value;

use crate::jobs::admin_client;
use crate::realtime::connect;
use crate::usage_reports::{member, seed};

const ME: &str = "/api/v1/app/users/me";

fn enforcing(limit: i64) -> omnistack_testkit::TestAppBuilder {
    TestApp::builder()
        .env("USAGE_ENFORCE_API_REQUESTS", "true")
        .env("USAGE_PLAN_LIMITS", &format!(r#"{{"free":{{"api_requests":{limit}}},"pro":{{"api_requests":null}}}}"#))
}

#[tokio::test]
async fn with_a_limit_of_n_n_requests_pass_and_the_next_is_402() {
    let app = enforcing(5).spawn().await;
    let (client, _) = member(&app).await;
    // Answers of 400 or more are not counted.
    assert_eq!(client.get("/api/v1/app/projects/not-a-project").await.status, 404);
    for n in 1..=5 {
        let res = client.get(ME).await;
        assert_eq!(res.status, 200, "request {n}: {}", res.text);
    }
    let res = client.get(ME).await;
    assert_eq!(res.status, 402, "{}", res.text);
    assert_eq!(res.error_code(), "QUOTA_EXCEEDED");
    let details = &res.json()["error"]["details"];
    assert_eq!(
        (details["metric"].as_str(), details["limit"].as_i64(), details["used"].as_i64()),
        (Some("api_requests"), Some(5), Some(5))
    );
    let resets_at: chrono::DateTime<Utc> = details["resets_at"].as_str().unwrap().parse().unwrap();
    assert!(resets_at > Utc::now() && resets_at.format("%d %H:%M:%S").to_string() == "01 00:00:00", "{resets_at}");
    assert_eq!(client.get("/api/v1/app/usage/current-period").await.status, 402, "every app route");

    // Another account, a paying one and an admin are not held by it.
    let (other, _) = member(&app).await;
    assert_eq!(other.get(ME).await.status, 200);
    let (paying, paying_id) = member(&app).await;
    omnistack_db::users::set_subscription(&app.state.db, paying_id, "pro", "active").await.unwrap();
    for _ in 0..7 {
        assert_eq!(paying.get(ME).await.status, 200, "pro is unlimited here");
    }
    let admin = admin_client(&app).await;
    for _ in 0..7 {
        assert_eq!(admin.get("/api/v1/admin/dashboard/stats").await.status, 200);
    }
}

#[tokio::test]
async fn recorded_usage_counts_towards_the_limit() {
    let app = enforcing(10).spawn().await;
    let (client, id) = member(&app).await;
    seed(&app, id, "api_requests", Utc::now().date_naive(), 8, &[]).await;
    assert_eq!(client.get(ME).await.status, 200, "9th");
    assert_eq!(client.get(ME).await.status, 200, "10th");
    let res = client.get(ME).await;
    assert_eq!(res.status, 402, "{}", res.text);
    assert_eq!(res.json()["error"]["details"]["used"], 10);

    // Usage recorded elsewhere (another instance's flush) is seen after the cache's refresh.
    let (late, late_id) = member(&app).await;
    assert_eq!(late.get(ME).await.status, 200);
    seed(&app, late_id, "api_requests", Utc::now().date_naive(), 50, &[]).await;
    tokio::time::sleep(omnistack::usage::limits::REFRESH + Duration::from_millis(100)).await;
    assert_eq!(late.get(ME).await.status, 402);
}

#[tokio::test]
async fn api_requests_only_alert_unless_enforced() {
    let app = TestApp::builder().env("USAGE_PLAN_LIMITS", r#"{"free":{"api_requests":1}}"#).spawn().await;
    let (client, id) = member(&app).await;
    seed(&app, id, "api_requests", Utc::now().date_naive(), 5, &[]).await;
    for _ in 0..3 {
        assert_eq!(client.get(ME).await.status, 200);
    }
    assert!(app.state.usage.ensure_within(&user(&app, id).await, "api_requests", 1).await.is_ok());
}

async fn user(app: &TestApp, id: uuid::Uuid) -> omnistack_db::users::User {
    omnistack_db::users::find_user(&app.state.db, id).await.unwrap().unwrap()
}

fn refused(result: Result<(), Error>) -> omnistack::error::QuotaExceeded {
    match result {
        Err(Error::QuotaExceeded(quota)) => quota,
        other => panic!("expected QUOTA_EXCEEDED, got {other:?}"),
    }
}

#[tokio::test]
async fn hard_limits_refuse_at_their_boundary() {
    let app = TestApp::spawn().await;
    let (_, id) = member(&app).await;
    let today = Utc::now().date_naive();
    seed(&app, id, "ai_requests", today, 49, &[]).await;
    let ada = user(&app, id).await;
    app.state.usage.ensure_within(&ada, "ai_requests", 1).await.unwrap();
    let quota = refused(app.state.usage.ensure_within(&ada, "ai_requests", 2).await);
    assert_eq!((quota.limit, quota.used), (50, 49));
    assert!(quota.resets_at.is_some());
    seed(&app, id, "ai_requests", today, 1, &[]).await;
    refused(app.state.usage.ensure_within(&ada, "ai_requests", 1).await);

    // storage_bytes is a level: last month's bytes still count, and it never resets.
    let last_month = chrono::NaiveDate::from_ymd_opt(2025, 1, 15).unwrap();
    seed(&app, id, "storage_bytes", last_month, 99_999_990, &[]).await;
    app.state.usage.ensure_within(&ada, "storage_bytes", 10).await.unwrap();
    let quota = refused(app.state.usage.ensure_within(&ada, "storage_bytes", 11).await);
    assert_eq!((quota.limit, quota.used, quota.resets_at), (100_000_000, 99_999_990, None));

    // A paying account has the pro limits.
    omnistack_db::users::set_subscription(&app.state.db, id, "pro", "active").await.unwrap();
    let pro = user(&app, id).await;
    app.state.usage.ensure_within(&pro, "ai_requests", 1_950).await.unwrap();
    refused(app.state.usage.ensure_within(&pro, "ai_requests", 1_951).await);
}

/// Messages of `kind` that reached either socket within `wait`.
async fn alerts(sockets: &mut [&mut WsClient], wait: Duration) -> Vec<Value> {
    let mut found = Vec::new();
    for socket in sockets.iter_mut() {
        found.extend(crate::realtime::collect(socket, "usage.alert", wait).await);
    }
    found
}

fn mails(apps: &[&TestApp], subject: &str) -> usize {
    apps.iter().map(|app| app.mail.messages().iter().filter(|m| m.subject().contains(subject)).count()).sum()
}

async fn wait_for_mail(apps: &[&TestApp], subject: &str) {
    for _ in 0..200 {
        if mails(apps, subject) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no email about {subject:?}");
}

#[tokio::test]
async fn alerts_at_80_and_100_percent_are_sent_once_across_two_instances() {
    let vars = [("USAGE_ALERT_SWEEP_MILLISECONDS", "100"), ("USAGE_PLAN_LIMITS", r#"{"free":{"ai_requests":10}}"#)];
    let mut builder = TestApp::builder();
    for (name, value) in vars {
        builder = builder.env(name, value);
    }
    let a = builder.spawn().await;
    let mut builder = TestApp::builder().sharing(&a);
    for (name, value) in vars {
        builder = builder.env(name, value);
    }
    let b = builder.spawn().await;
    if omnistack_testkit::redis_url().is_some() {
        crate::realtime::cluster::bridged(&a).await;
        crate::realtime::cluster::bridged(&b).await;
    }
    let (_, session) = a.signed_in_client().await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let id: uuid::Uuid = session["user"]["id"].as_str().unwrap().parse().unwrap();
    let mut on_a = connect(&a, &token).await;
    let mut on_b = connect(&b, &token).await;
    let today = Utc::now().date_naive();
    // With Redis every socket gets each message once; without, only the sender's own.
    let copies = if omnistack_testkit::redis_url().is_some() { 2 } else { 1 };

    seed(&a, id, "ai_requests", today, 7, &[]).await;
    assert!(alerts(&mut [&mut on_a, &mut on_b], Duration::from_millis(600)).await.is_empty(), "70 % is no alert");

    seed(&a, id, "ai_requests", today, 1, &[]).await;
    wait_for_mail(&[&a, &b], "80% of your ai_requests limit").await;
    let eighty = alerts(&mut [&mut on_a, &mut on_b], Duration::from_secs(1)).await;
    assert_eq!(eighty.len(), copies, "{eighty:?}");
    assert_eq!(eighty[0]["data"]["metric"], "ai_requests");
    assert_eq!(eighty[0]["data"]["percent"], 80);

    seed(&a, id, "ai_requests", today, 1, &[]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    seed(&b, id, "ai_requests", today, 1, &[]).await;
    wait_for_mail(&[&a, &b], "reached your ai_requests limit").await;
    let hundred = alerts(&mut [&mut on_a, &mut on_b], Duration::from_secs(1)).await;
    assert_eq!(hundred.len(), copies, "{hundred:?}");
    assert_eq!(hundred[0]["data"]["percent"], 100);

    // More usage in the period sends nothing more.
    seed(&b, id, "ai_requests", today, 5, &[]).await;
    assert!(alerts(&mut [&mut on_a, &mut on_b], Duration::from_secs(1)).await.is_empty());
    assert_eq!(mails(&[&a, &b], "80% of your ai_requests limit"), 1);
    assert_eq!(mails(&[&a, &b], "reached your ai_requests limit"), 1);
    let period = omnistack::usage::limits::Period::of(Utc::now()).label();
    let claimed = omnistack_db::usage_reports::claimed_alerts(&a.state.db, id, "ai_requests", &period).await.unwrap();
    assert_eq!(claimed, vec![80, 100]);
}

#[tokio::test]
async fn passing_the_limit_at_once_sends_only_the_100_percent_alert() {
    let app = TestApp::builder()
        .env("USAGE_ALERT_SWEEP_MILLISECONDS", "100")
        .env("USAGE_PLAN_LIMITS", r#"{"free":{"emails_sent":4}}"#)
        .spawn()
        .await;
    let (_, session) = app.signed_in_client().await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let id: uuid::Uuid = session["user"]["id"].as_str().unwrap().parse().unwrap();
    let mut socket = connect(&app, &token).await;
    seed(&app, id, "emails_sent", Utc::now().date_naive(), 9, &[]).await;
    wait_for_mail(&[&app], "reached your emails_sent limit").await;
    let sent = alerts(&mut [&mut socket], Duration::from_secs(1)).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["data"]["percent"], 100, "a soft limit alerts too");
    assert_eq!(mails(&[&app], "80% of your emails_sent"), 0);
}
