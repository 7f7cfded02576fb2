//! Usage metering, the write side: requests, sockets, jobs and emails counted in memory and
//! written exactly once per flush; usage events ingested once per id; Stripe meter events sent
//! once per identifier; nothing lost at a graceful stop, at most one interval at a crash.

#[path = "usage/crash.rs"]
mod crash;
#[path = "usage/ingest.rs"]
mod ingest;
#[path = "usage/meters.rs"]
mod meters;

use std::time::Duration;

use chrono::NaiveDate;
use omnistack_testkit::{TestApp, TestClient, WsClient};
use serde_json::json;
use uuid::Uuid;

/// The server's own API routes in a test (no other flush than the test's).
pub fn quiet(builder: omnistack_testkit::TestAppBuilder) -> omnistack_testkit::TestAppBuilder {
    builder.env("USAGE_FLUSH_SECONDS", "3600").env("RATE_LIMIT_ENABLED", "false")
}

pub fn today() -> NaiveDate {
    omnistack_db::time::now().date_naive()
}

/// `metric`'s usage of `user_id` today, as stored.
pub async fn used(app: &TestApp, user_id: Uuid, metric: &str) -> i64 {
    omnistack_db::usage::total(&app.state.db, user_id, metric, today(), today()).await.unwrap()
}

/// A signed-in account: its client and id.
pub async fn account(app: &TestApp) -> (TestClient, Uuid, String) {
    let (client, session) = app.signed_in_client().await;
    let id = session["user"]["id"].as_str().unwrap().parse().unwrap();
    (client, id, session["access_token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn concurrent_authenticated_requests_are_counted_exactly_once_after_a_flush() {
    const N: usize = 200;
    let app = quiet(TestApp::builder()).spawn().await;
    let (client, id, _) = account(&app).await;
    let (other, other_id, _) = account(&app).await;
    let requests = (0..N).map(|_| {
        let client = client.clone();
        async move { client.get("/api/v1/app/users/me").await.status.as_u16() }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Not counted: answers of 400 and above, requests without a valid token, the other account.
    assert_eq!(client.get(&format!("/api/v1/app/projects/{}", Uuid::now_v7())).await.status, 404);
    assert_eq!(app.client.get("/api/v1/app/users/me").await.status, 401);
    assert_eq!(app.client.with_token("not-a-token").get("/api/v1/app/users/me").await.status, 401);
    assert_eq!(other.get("/api/v1/app/users/me").await.status, 200);

    assert_eq!(used(&app, id, "api_requests").await, 0, "nothing is written per request");
    app.state.usage.flush().await.unwrap();
    assert_eq!(used(&app, id, "api_requests").await, N as i64);
    assert_eq!(used(&app, other_id, "api_requests").await, 1);
    let dims =
        omnistack_db::usage::dimension_totals(&app.state.db, id, "api_requests", today(), today()).await.unwrap();
    assert_eq!(dims, vec![("endpoint".to_owned(), "/api/v1/app/users/me".to_owned(), N as i64)]);

    // A second flush has nothing to add; later requests add to the same day.
    app.state.usage.flush().await.unwrap();
    assert_eq!(client.get("/api/v1/app/users/me").await.status, 200);
    app.state.usage.flush().await.unwrap();
    assert_eq!(used(&app, id, "api_requests").await, N as i64 + 1);
}

#[tokio::test]
async fn route_templates_not_raw_paths_are_the_endpoint_dimension() {
    let app = quiet(TestApp::builder()).spawn().await;
    let (client, id, _) = account(&app).await;
    for _ in 0..3 {
        let res = client.post_json("/api/v1/app/projects", &json!({"name": format!("p-{}", Uuid::now_v7())})).await;
        assert_eq!(res.status, 201, "{}", res.text);
        let project = res.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(client.get(&format!("/api/v1/app/projects/{project}")).await.status, 200);
    }
    app.state.usage.flush().await.unwrap();
    let dims =
        omnistack_db::usage::dimension_totals(&app.state.db, id, "api_requests", today(), today()).await.unwrap();
    assert_eq!(
        dims,
        vec![
            ("endpoint".to_owned(), "/api/v1/app/projects".to_owned(), 3),
            ("endpoint".to_owned(), "/api/v1/app/projects/{id}".to_owned(), 3),
        ]
    );
}

#[tokio::test]
async fn with_metering_off_requests_are_not_counted() {
    let app = quiet(TestApp::builder()).env("USAGE_METERING", "false").spawn().await;
    let (client, id, _) = account(&app).await;
    assert_eq!(client.get("/api/v1/app/users/me").await.status, 200);
    app.state.usage.flush().await.unwrap();
    assert_eq!(used(&app, id, "api_requests").await, 0);
}

#[tokio::test]
async fn a_graceful_stop_writes_what_was_counted() {
    let mut app = quiet(TestApp::builder()).spawn().await;
    let (client, id, _) = account(&app).await;
    for _ in 0..7 {
        assert_eq!(client.get("/api/v1/app/users/me").await.status, 200);
    }
    app.stop().await.unwrap();
    assert_eq!(used(&app, id, "api_requests").await, 7);
}

#[tokio::test]
async fn socket_messages_jobs_and_emails_are_counted_for_their_account() {
    let app = quiet(TestApp::builder()).env("JOBS_POLL_INTERVAL_MS", "20").spawn().await;
    let (client, id, token) = account(&app).await;

    let (mut socket, _) = WsClient::connected(&app.ws_url(&format!("/api/v1/app/ws?token={token}"))).await;
    for _ in 0..4 {
        socket.send(json!({"type": "ping"})).await;
        assert_eq!(socket.next().await["type"], "pong");
    }

    let res = client.post_json("/api/v1/app/users/me/export", &json!({})).await;
    assert_eq!(res.status, 202, "{}", res.text);
    let job = res.json()["job_id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let res = client.get(&format!("/api/v1/app/users/me/export/{job}")).await;
        if res.status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the export did not finish: {}", res.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The welcome email goes to the account's address.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.mail.messages().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no email was sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The count follows the delivery's bookkeeping by a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.state.usage.flush().await.unwrap();
    assert_eq!(used(&app, id, "websocket_messages").await, 4);
    assert!(used(&app, id, "background_jobs").await >= 1);
    assert!(used(&app, id, "emails_sent").await >= 1);
    let jobs =
        omnistack_db::usage::dimension_totals(&app.state.db, id, "background_jobs", today(), today()).await.unwrap();
    assert!(jobs.iter().any(|(name, item, _)| name == "kind" && item == "export"), "{jobs:?}");
}
